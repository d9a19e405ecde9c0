"""A private redis-server for tests that stop and restart Redis (never the shared one).

The process is owned by its ``RedisProcess`` handle and stopped through it, even when the
test fails; it can be killed and started again on the same port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """One redis-server subprocess on a fixed port, with no persistence."""

    def __init__(self, port: int | None = None, executable: str = "redis-server") -> None:
        found = shutil.which(executable)
        if found is None:
            raise FileNotFoundError(f"{executable} is not installed")
        self.executable = found
        self.port = port or free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="kokous-redis-")
        self._log_path = os.path.join(self._directory.name, "redis.log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            raise RuntimeError("redis-server is already running")
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._directory.name,
            "--logfile", self._log_path,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not answers_ping(self.port):
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"redis-server on port {self.port} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def kill(self) -> None:
        """Crash it (SIGKILL): clients see their connections drop."""
        self._halt(graceful=False)

    def stop(self) -> None:
        self._halt(graceful=True)

    def _halt(self, *, graceful: bool) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            if graceful:
                process.terminate()
            else:
                process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def log_tail(self) -> str:
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as log:
                return log.read()[-2000:]
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        self._directory.cleanup()


@contextmanager
def redis_server(port: int | None = None) -> Iterator[RedisProcess]:
    server = RedisProcess(port)
    try:
        server.start()
        yield server
    finally:
        server.close()
