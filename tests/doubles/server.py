"""The shared frame of every provider double: a Starlette app on 127.0.0.1 in its own thread.

A double runs in its own thread and event loop, so synchronous client libraries (called from
worker threads), async tests and separate server processes can all reach it. It records every
request, can answer with a planned fault (status, body, headers, delay) for requests whose
path or body matches, and can add latency to every answer (benchmark B3).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import trustme
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Json = dict[str, Any]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Fault:
    """An answer to give instead of the real one, ``times`` times, to requests that match."""

    match: str  # a substring of "METHOD /path" or of the request body ("" matches everything)
    status: int = 500
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (longer than a client's timeout: a timeout)
    times: int = 1

    def matches(self, request: RecordedRequest) -> bool:
        return self.match in f"{request.method} {request.path}" or self.match.encode() in request.body


@dataclass(frozen=True)
class TLSFiles:
    """A certificate authority made for one test session, and a server certificate it signed."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls_files(folder: Path) -> TLSFiles:
    authority = trustme.CA()
    server_cert = authority.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(ca_path=folder / "ca.pem", cert_path=folder / "server.pem", key_path=folder / "server.key")
    authority.cert_pem.write_to_path(str(files.ca_path))
    server_cert.cert_chain_pems[0].write_to_path(str(files.cert_path))
    server_cert.private_key_pem.write_to_path(str(files.key_path))
    return files


class _Recorder:
    """ASGI wrapper: records the request, then applies latency and planned faults."""

    def __init__(self, app: ASGIApp, double: DoubleServer) -> None:
        self.app = app
        self.double = double

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
        )
        fault = self.double.record(request)
        if self.double.latency:
            await asyncio.sleep(self.double.latency)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            await _answer(send, fault.status, fault.body, fault.headers)
            return

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw_headers = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    if not any(key == b"content-type" for key, _ in raw_headers):
        raw_headers.append((b"content-type", b"application/json"))
    raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class DoubleServer:
    """Serves ``app`` on a free loopback port until ``stop``; use as a context manager."""

    def __init__(self, app: ASGIApp, *, tls: TLSFiles | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self.latency = 0.0
        self._tls = tls
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Without it every keep-alive answer waits ~40 ms for a delayed ACK (Nagle).
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            _Recorder(app, self),
            lifespan="off",
            log_config=None,
            access_log=False,
            ssl_certfile=str(tls.cert_path) if tls else None,
            ssl_keyfile=str(tls.key_path) if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"double-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the double did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests plan and inspect -------------------------------------------------------

    def fail(
        self,
        match: str = "",
        *,
        status: int = 500,
        body: bytes | str | Json = b"",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with this instead of the real answer."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
        with self._lock:
            self._faults.append(Fault(match, status, raw, dict(headers or {}), delay, times))

    def clear_faults(self) -> None:
        """Forget planned faults that have not happened yet: the provider answers normally again."""
        with self._lock:
            self._faults.clear()

    def record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self._requests.append(request)
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, fragment: str) -> list[RecordedRequest]:
        """Recorded requests whose "METHOD /path" contains ``fragment``."""
        return [request for request in self.requests if fragment in f"{request.method} {request.path}"]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
