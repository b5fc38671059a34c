"""The journal's artifact files: a folder beside the journal (`runs.jsonl.artifacts/`), one
compressed file per distinct content, named by its SHA-256. A file is written (temporary file,
fsync, rename) before the journal line that refers to it, so a crash leaves at most an unused
file, which compaction removes."""

from __future__ import annotations

from pathlib import Path

from tracker.errors import CorruptStoreError, NotFoundError, ReadOnlyStoreError, StoreError
from tracker.journal.file import write_atomically
from tracker.store import blobs
from tracker.store.blobs import is_sha256


class BlobFolder:
    """Content-addressed files in `<journal>.artifacts/`."""

    def __init__(self, journal: Path) -> None:
        self.path = journal.with_name(journal.name + ".artifacts")

    def file(self, sha: str) -> Path:
        """The file holding the content `sha`: a tag byte (Z zstd, N none), then the bytes. Raises
        CorruptStoreError when `sha` is not a content name (a journal line is data, never a path)."""
        if not is_sha256(sha):
            raise CorruptStoreError(f"{sha!r} is not a SHA-256 (64 lowercase hex digits); the journal is damaged")
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

    def remove(self, shas: set[str]) -> None:
        """Delete the files of these contents (those nothing refers to any more)."""
        for sha in shas:
            self.file(sha).unlink(missing_ok=True)

    def prune(self, keep: set[str]) -> dict[str, int]:
        """Delete the files no artifact refers to (and leftovers of interrupted writes); return
        how many files and bytes were removed."""
        removed = {"files_removed": 0, "bytes_freed": 0}
        if not self.path.is_dir():
            return removed
        for entry in self.path.iterdir():
            if entry.name.startswith(".") or entry.name.removesuffix(".zst") not in keep:
                size = entry.stat().st_size
                entry.unlink(missing_ok=True)
                removed["files_removed"] += 1
                removed["bytes_freed"] += size
        return removed
