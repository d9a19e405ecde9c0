"""A real Radicale CalDAV server in its own process, for the CalDAV adapter's tests.

Not a double: the CalDAV adapter is tested against a real server, because CalDAV servers differ
in what they accept and Radicale is a strict, small, spec-following one. It runs with htpasswd
(plain) authentication so that a wrong password is a real 401, and with ``--auth-delay 0`` so
that a refused login costs no time. The process belongs to its ``RadicaleServer`` handle and is
stopped through it, also when a test fails (use it as a context manager or in a fixture's
``finally``).

Radicale cannot be told to fail, so ``ForwardingApp`` puts a ``DoubleServer`` in front of it:
requests are passed through unchanged until a test plans a fault (503, 429, a delay) on the
double, which then answers instead of Radicale.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.doubles.server import TLSFiles

# Hop-by-hop headers, and those httpx has already acted on (it decodes gzip itself).
_NOT_FORWARDED = {"host", "content-length", "content-encoding", "transfer-encoding", "connection"}


def free_port() -> int:
    """A port nobody listens on right now (Radicale cannot be told to pick one itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listens(port: int) -> bool:
    """Whether the port accepts connections: Radicale binds only once it is ready to serve."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RadicaleServer:
    """``python -m radicale`` on a free loopback port, storing its data under ``folder``.

    ``users`` maps user names to plain passwords (written to an htpasswd file); every user
    owns ``/<name>/`` and sees nothing else. With ``tls`` it serves HTTPS with that certificate.
    """

    def __init__(self, folder: Path, users: dict[str, str], *, tls: TLSFiles | None = None) -> None:
        self.folder = folder
        self.users = dict(users)
        self.tls = tls
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = folder / "radicale.log"

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/"

    def user_url(self, user: str) -> str:
        """The user's principal, which is also their calendar home on Radicale."""
        return f"{self.url}{user}/"

    def set_password(self, user: str, password: str) -> None:
        """Change (or add) a user's password while Radicale runs.

        Radicale reads the htpasswd file on every login (``htpasswd_cache`` and ``cache_logins``
        are off by default), so the next request is checked against the new password.
        """
        self.users[user] = password
        self._write_htpasswd()

    def _write_htpasswd(self) -> Path:
        """Written beside and moved into place, so a login never reads a half-written file."""
        path = self.folder / "htpasswd"
        written = path.with_suffix(".new")
        written.write_text("".join(f"{name}:{password}\n" for name, password in self.users.items()))
        written.replace(path)
        return path

    def _command(self, htpasswd: Path) -> list[str]:
        command = [
            sys.executable, "-m", "radicale",
            "--config", "",
            "--server-hosts", f"127.0.0.1:{self.port}",
            "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(htpasswd),
            "--auth-htpasswd-encryption", "plain",
            "--auth-delay", "0",
            "--rights-type", "owner_only",
            "--storage-filesystem-folder", str(self.folder / "collections"),
            "--logging-level", "warning",
        ]  # fmt: skip
        if self.tls:
            command += [
                "--server-ssl", "True",
                "--server-certificate", str(self.tls.cert_path),
                "--server-key", str(self.tls.key_path),
            ]  # fmt: skip
        return command

    def start(self, timeout: float = 15.0) -> RadicaleServer:
        if self._process is not None:
            raise RuntimeError("Radicale is already running")
        self.folder.mkdir(parents=True, exist_ok=True)
        command = self._command(self._write_htpasswd())
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not _listens(self.port):
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"Radicale on port {self.port} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Radicale on port {self.port} did not answer: {self.log_tail()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the process this handle started (terminate, then kill if it lingers)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        if not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> RadicaleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ForwardingApp:
    """An ASGI app passing every request to ``upstream`` (a plain-HTTP Radicale) unchanged.

    Radicale's hrefs are absolute paths, so they stay valid through the forwarder.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        headers = {key: value for key, value in request.headers.items() if key not in _NOT_FORWARDED}
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                request.method,
                f"{self.upstream}{request.url.path}",
                params=request.url.query,
                headers=headers,
                content=await request.body(),
            )
        kept = {key: value for key, value in answer.headers.items() if key.lower() not in _NOT_FORWARDED}
        await Response(answer.content, status_code=answer.status_code, headers=kept)(scope, receive, send)
