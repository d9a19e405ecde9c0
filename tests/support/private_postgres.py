"""A PostgreSQL cluster of the test's own (initdb, pg_ctl), to stop and restart under a server.

The shared test server must not be restarted (other runs use it), so a test that restarts
PostgreSQL starts its own on a free loopback port, with Debian's server binaries
(``KOKOUS_TEST_PG_BIN`` names another folder). PostgreSQL refuses to run as root: as root the
cluster belongs to the ``postgres`` user and its commands run through ``runuser``. The cluster
is stopped and removed by the context that created it, even when the test fails.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.live_server import free_port
from tests.support.services_available import unavailable

PG_BIN = Path(os.environ.get("KOKOUS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OWNER = "postgres"  # the system user that owns the cluster when the tests run as root


@dataclass
class PrivatePostgres:
    folder: Path
    port: int
    as_owner: tuple[str, ...]  # the prefix that runs a command as the cluster's owner

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    async def _run(self, *command: str, check: bool = True) -> None:
        """Runs without blocking the event loop, which may be serving the server under test."""
        process = await asyncio.create_subprocess_exec(
            *self.as_owner,
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        output, _ = await process.communicate()
        if check and process.returncode != 0:
            server_log = self.folder / "server.log"
            log = server_log.read_text(errors="replace")[-2000:] if server_log.exists() else ""
            raise AssertionError(f"{' '.join(command)} failed:\n{output.decode(errors='replace')}\n{log}")

    async def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        log = str(self.folder / "server.log")
        await self._run(str(PG_BIN / "pg_ctl"), action, "-D", str(self.data), "-l", log, "-o", options, "-w", *extra)

    async def start(self) -> None:
        await self._ctl("start")

    async def stop(self) -> None:
        """A fast shutdown: every connection is terminated, then the server exits."""
        await self._ctl("stop", "-m", "fast")

    async def restart(self) -> None:
        await self._ctl("restart", "-m", "fast")

    async def kill(self) -> None:
        """The end of the test: stop at once, if it still runs."""
        await self._run(str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w", check=False)


def _as_owner(folder: Path) -> tuple[str, ...]:
    """Nothing when not root; else the folder is handed to ``postgres`` and commands run as it."""
    if os.geteuid() != 0:
        return ()
    owner = next((user for user in pwd.getpwall() if user.pw_name == OWNER), None)
    if owner is None or shutil.which("runuser") is None:
        unavailable(f"running as root without a {OWNER!r} user or runuser, so a private PostgreSQL cannot start")
        return ()
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    return ("runuser", "-u", OWNER, "--")


@asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A fresh cluster, started; stopped and deleted at the end."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        unavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found in {PG_BIN}")
    # Not under pytest's tmp_path: its folders are private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="kokous-pg-"))
    try:
        cluster = PrivatePostgres(folder=folder, port=free_port(), as_owner=_as_owner(folder))
        initdb = [str(PG_BIN / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres"]
        await cluster._run(*initdb, "-E", "UTF8", "--no-sync")
        await cluster.start()
        try:
            yield cluster
        finally:
            await cluster.kill()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
