"""Liveness, readiness (database and pub/sub reachable) and the Prometheus endpoint."""

from __future__ import annotations

import asyncio
from typing import cast

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scheduling.services import Services
from server.metrics import Metrics


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = cast(Services, request.app.state.services)
    database, pubsub = await asyncio.gather(services.db.ping(), services.bus.hub.ping())
    checks = {"database": "ok" if database else "unreachable", "pubsub": "ok" if pubsub else "unreachable"}
    ready = database and pubsub
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    registry = cast(Metrics, request.app.state.metrics).registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
