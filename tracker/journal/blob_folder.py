"""The journal's artifact files: a folder beside the journal (`runs.jsonl.artifacts/`), one
compressed file per distinct content, named by its SHA-256. A file is written (temporary file,
fsync, rename) before the journal line that refers to it, so a crash leaves at most an unused
file, which compaction removes."""

from __future__ import annotations

from pathlib import Path

from tracker.errors import NotFoundError, ReadOnlyStoreError, StoreError
from tracker.journal.file import write_atomically
from tracker.store import blobs


class BlobFolder:
    """Content-addressed files in `<journal>.artifacts/`."""

    def __init__(self, journal: Path) -> None:
        self.path = journal.with_name(journal.name + ".artifacts")

    def file(self, sha: str) -> Path:
        """The file holding the content `sha`: a tag byte (Z zstd, N none), then the bytes."""
        return self.path / f"{sha}.zst"

    def put(self, sha: str, data: bytes) -> None:
        """Store `data` under its SHA-256 (nothing to do when it is there already)."""
        target = self.file(sha)
        if target.exists():
            return
        codec, packed = blobs.pack(data)
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as exc:
            raise ReadOnlyStoreError(f"cannot create the artifact folder {self.path}: {exc.strerror}") from None
        write_atomically(target, [b"Z" if codec == "zstd" else b"N", packed])

    def get(self, sha: str) -> bytes:
        """The bytes stored under `sha`; raises NotFoundError when the file is gone."""
        target = self.file(sha)
        try:
            payload = target.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"the artifact file {target} is missing; restore the folder {self.path} from a backup"
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot read {target}: {exc.strerror}") from None
        return blobs.unpack("zstd" if payload[:1] == b"Z" else "none", payload[1:])

    def prune(self, keep: set[str]) -> int:
        """Delete the files no artifact refers to (and leftovers of interrupted writes)."""
        if not self.path.is_dir():
            return 0
        removed = 0
        for entry in self.path.iterdir():
            if entry.name.startswith(".") or entry.name.removesuffix(".zst") not in keep:
                entry.unlink(missing_ok=True)
                removed += 1
        return removed
