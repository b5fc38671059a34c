"""A Dask cluster as the executor of look-ahead checks (`tracker ttpt check --dask`): connect to a
running scheduler, or start a LocalCluster of process workers. Needs the `[dask]` extra."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import AbstractContextManager, contextmanager, nullcontext

from tracker.errors import DISTRIBUTION, ValidationError

LOCAL = "local"


def optional_executor(address: str | None, n_workers: int) -> AbstractContextManager[Executor | None]:
    """`dask_executor(address, n_workers)` (at least 1 worker) when `address` is given, else none:
    the CLI's `--dask ADDRESS|local` with `--n-jobs`."""
    return nullcontext() if address is None else dask_executor(address, max(1, n_workers))


@contextmanager
def dask_executor(address: str, n_workers: int = 1) -> Iterator[Executor]:
    """The executor of a Dask cluster: the scheduler at `address` (tcp://HOST:8786), or with
    `address` "local" a LocalCluster of `n_workers` single-threaded worker processes, closed after.
    Raises ValidationError when distributed is not installed or the address is malformed,
    or when no scheduler answers there."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValidationError(
            "--dask", f"needs Dask's distributed package: pip install '{DISTRIBUTION}[dask]'"
        ) from None
    if address == LOCAL:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        with cluster, Client(cluster) as local:  # type: ignore[no-untyped-call]
            yield local.get_executor()
        return
    if "://" not in address:
        raise ValidationError(
            "--dask", f"expected a scheduler address such as tcp://HOST:8786, or 'local'; got {address!r}"
        )
    try:
        client = Client(address, timeout=30)  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise ValidationError("--dask", f"no Dask scheduler answers at {address}: {exc}") from None
    with client:
        yield client.get_executor()  # type: ignore[no-untyped-call]
