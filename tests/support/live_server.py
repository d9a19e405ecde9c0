"""Serve an app with uvicorn on a free loopback port inside the test's own event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import uvicorn
from starlette.applications import Starlette

from scheduling.clock import Clock, system_clock
from scheduling.services import Services
from server.app import create_app
from server.settings import Settings


@dataclass
class LiveServer:
    app: Starlette
    base_url: str
    http: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/graphql"

    @property
    def services(self) -> Services:
        return cast(Services, self.app.state.services)

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """POST a GraphQL request; the HTTP status must be 200 (no 500 for any input)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, (response.status_code, response.text)
        return cast(dict[str, Any], response.json())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def start_live_server(
    settings: Settings, *, clock: Clock = system_clock, own_webhook_url: bool = False, own_public_url: bool = False
) -> AsyncIterator[LiveServer]:
    """``own_webhook_url``: providers' doubles post their change notifications to this server.
    ``own_public_url``: this server's address is the public URL (pages link to it and load the
    widget from it, as browsers then do)."""
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on accepted connections: without it every
    # answer on a kept-alive connection waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if own_webhook_url:
        settings = settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}"})
    if own_public_url:
        settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, ws_ping_interval=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        assert server.started, "the server did not start within 5 s"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield LiveServer(app=app, base_url=f"http://127.0.0.1:{port}", http=http)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()
