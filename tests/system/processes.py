"""``kokous serve`` as real processes, stopped by their own handles even when a test fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"kokous serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"kokous serve was not ready within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def spawn_server(port: int, env: dict[str, str], log: Path, cwd: Path, *, workers: int = 1) -> ServerProcess:
    """``kokous serve`` on ``port`` with the environment extended by ``env``, output appended to ``log``."""
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(port), "--workers", str(workers)],
            env={**os.environ, **env},
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ServerProcess(process=process, port=port, log=log)


@contextmanager
def kokous_servers(
    count: int, env: dict[str, str], log_dir: Path, *, workers: int = 1
) -> Iterator[list[ServerProcess]]:
    """Start ``count`` servers (each with ``workers`` worker processes) on free ports and wait until ready."""
    with ExitStack() as stack:
        servers = []
        for index in range(count):
            server = spawn_server(free_port(), env, log_dir / f"server-{index}.log", log_dir, workers=workers)
            stack.callback(server.stop)
            servers.append(server)
        for server in servers:
            server.wait_ready()
        yield servers
