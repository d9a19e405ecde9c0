"""A lean HTTP/1.1 keep-alive load generator on asyncio streams.

httpx costs ~5 ms of client CPU per request with 20 pooled connections (measured here: 4.9 s of
client CPU for 1,000 requests at concurrency 20, 2.4 s at concurrency 5), more than the server
spends answering ``{__typename}``, so on two cores it would measure itself. This client writes
prepared request bytes on N persistent connections and reads ``Content-Length`` responses:
~0.1 ms per request. It speaks just enough HTTP for a JSON POST to our own server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    failures: int = 0
    first_failure: str | None = None

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else float("nan")


def post_request(host: str, port: int, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    length = None
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            raise RuntimeError("chunked responses are not supported by the load generator")
    if length is None:
        raise RuntimeError("a response without Content-Length")
    return status, await reader.readexactly(length)


async def run_load(
    port: int,
    request: bytes,
    *,
    requests: int,
    concurrency: int,
    check: Any = None,
    host: str = "127.0.0.1",
) -> LoadResult:
    """Send ``requests`` copies of ``request`` over ``concurrency`` keep-alive connections.

    ``check(status, body)`` returns True for a good answer (default: status 200).
    """
    shares = [requests // concurrency + (1 if index < requests % concurrency else 0) for index in range(concurrency)]
    result = LoadResult(seconds=0.0)
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            status, body = await read_response(reader)
            result.latencies.append(time.perf_counter() - started)
            good = check(status, body) if check is not None else status == 200
            if not good:
                result.failures += 1
                result.first_failure = result.first_failure or f"{status} {body[:200]!r}"

    started = time.perf_counter()
    try:
        async with asyncio.timeout(max(60.0, requests * 0.05)):  # bounded even if the server stalls
            await asyncio.gather(
                *(worker(reader, writer, share) for (reader, writer), share in zip(connections, shares, strict=True))
            )
    finally:
        result.seconds = time.perf_counter() - started
        for _, writer in connections:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for _, writer in connections), return_exceptions=True)
    return result


async def open_connections(port: int, count: int, host: str = "127.0.0.1") -> list[Connection]:
    """``count`` keep-alive connections for requests that differ per client (see :func:`exchange`)."""
    opened: list[Connection] = []
    try:
        for _ in range(count):
            opened.append(await asyncio.open_connection(host, port))
    except BaseException:
        await close_connections(opened)
        raise
    return opened


async def close_connections(connections: list[Connection]) -> None:
    for _, writer in connections:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for _, writer in connections), return_exceptions=True)


async def exchange(connection: Connection, request: bytes) -> tuple[int, bytes, float]:
    """One request on a keep-alive connection: (status, body, seconds)."""
    reader, writer = connection
    started = time.perf_counter()
    writer.write(request)
    status, body = await read_response(reader)
    return status, body, time.perf_counter() - started
