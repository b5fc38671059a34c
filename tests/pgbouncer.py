"""A real PgBouncer for the tests: the config they use, and starting it as user postgres.

`.ci/run` starts one with `python -m tests.pgbouncer start DIR SERVER_URL` (it prints the pooler's
URL, exported as TRACKER_TEST_PGBOUNCER_URL); the `pgbouncer_url` fixture starts its own when that
variable is unset and Debian's pgbouncer is installed. Every database name is passed through to the
same PostgreSQL server (`* =`), so each test works in a database of its own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

PGBOUNCER = "/usr/sbin/pgbouncer"
SERVER_CONNECTIONS = 8
"""Server connections per database and user: the pool every test shares."""
RUN_AS = "postgres"


def config_text(server_host: str, server_port: int, listen_port: int, folder: Path, pool_mode: str) -> str:
    """pgbouncer.ini: `pool_mode` pooling (transaction for CI), 8 server connections, trust auth, loopback only."""
    return f"""[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = {pool_mode}
default_pool_size = {SERVER_CONNECTIONS}
max_db_connections = {SERVER_CONNECTIONS}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 2000
server_lifetime = 3600
logfile = {folder / "pgbouncer.log"}
log_connections = 0
log_disconnections = 0
pidfile = {folder / "pgbouncer.pid"}
admin_users = {RUN_AS}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(folder: Path, server_url: str, listen_port: int, pool_mode: str = "transaction") -> Path:
    """Write pgbouncer.ini and its user list into `folder`, owned by user postgres when run as root."""
    server = make_url(server_url)
    folder.mkdir(parents=True, exist_ok=True)
    user = server.username or RUN_AS
    (folder / "userlist.txt").write_text(f'"{user}" ""\n"{RUN_AS}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(config_text(server.host or "127.0.0.1", server.port or 5432, listen_port, folder, pool_mode))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(RUN_AS)
        for path in (folder, *folder.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    return ini


def command(ini: Path, *, daemon: bool) -> list[str]:
    """The command that runs pgbouncer on `ini`, as user postgres when we are root."""
    run = [shutil.which("pgbouncer") or PGBOUNCER, *(["-d"] if daemon else []), str(ini)]
    as_postgres = ["setpriv", f"--reuid={RUN_AS}", f"--regid={RUN_AS}", "--init-groups", "--"]
    return [*as_postgres, *run] if os.geteuid() == 0 else run


def wait_until_listening(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def pooler_url(server_url: str, port: int) -> str:
    """The server URL with the pooler's host and port instead (same user and database)."""
    return make_url(server_url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def start(
    folder: Path, server_url: str, *, daemon: bool, pool_mode: str = "transaction"
) -> tuple[str, subprocess.Popen[bytes] | None]:
    """Start pgbouncer in front of the server of `server_url`; its URL and (in the foreground) its process."""
    port = free_port()
    ini = write_config(folder, server_url, port, pool_mode)
    process = None
    if daemon:
        subprocess.run(command(ini, daemon=True), check=True)
    else:
        process = subprocess.Popen(command(ini, daemon=False), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_listening(port)
    return pooler_url(server_url, port), process


@contextmanager
def running(server_url: str, prefix: str, pool_mode: str = "transaction") -> Iterator[str]:
    """A pgbouncer in the foreground, in a new folder named with `prefix`, for the block: its URL.
    Stopped and its folder removed after."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    url, process = start(folder, server_url, daemon=False, pool_mode=pool_mode)
    assert process is not None
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":  # python -m tests.pgbouncer start DIR SERVER_URL
    if len(sys.argv) != 4 or sys.argv[1] != "start":
        sys.exit("usage: python -m tests.pgbouncer start DIR SERVER_URL")
    url, _ = start(Path(sys.argv[2]), sys.argv[3], daemon=True)
    sys.stdout.write(url + "\n")
