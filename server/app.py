"""``create_app(settings)``: the Starlette app whose lifespan owns every shared resource."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from db.engine import Database
from db.migrate import ensure_migrated
from pubsub import EventHub
from scheduling.clock import Clock, system_clock
from server import health
from server.body_limit import BodyLimitMiddleware
from server.cross_origin import open_to_every_site
from server.graphql_view import answering_endpoint, graphql_app
from server.metrics import Metrics, MetricsMiddleware
from server.oauth_routes import oauth_routes
from server.public_routes import public_routes
from server.settings import Settings, load_settings
from server.static_files import static_routes
from server.token_sockets import TokenSockets
from server.webhook_routes import webhook_routes
from server.wiring import build_services

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0  # seconds background workers get to finish their pass when the server stops


def create_app(settings: Settings, *, clock: Clock = system_clock, freeze_gc: bool = False) -> Starlette:
    """A fresh app; nothing is connected until its lifespan starts.

    ``freeze_gc`` (for server processes) moves everything alive after start-up out of the
    garbage collector's reach: full collections then scan only request garbage, which took
    them from 100-250 ms pauses every few seconds to a fraction of that.
    """
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        try:
            await ensure_migrated(db.engine)
        except BaseException:
            await db.dispose()
            raise
        hub = EventHub(settings.broadcast_url)
        await hub.connect()
        metrics.watch_hub(hub)
        services = build_services(settings, db=db, hub=hub, clock=clock)
        app.state.services = services
        app.state.token_sockets = sockets = TokenSockets(services.bus)
        metrics.watch_answer_cache(services.answers)
        metrics.watch_busy_check(services.busy_check)
        metrics.watch_sync(services.busy_sync)
        follower = asyncio.create_task(services.answers.run(), name="kokous-answer-cache")
        revocations = asyncio.create_task(sockets.run(), name="kokous-token-sockets")
        workers = [
            asyncio.create_task(services.outbox.run(), name="kokous-outbox"),
            asyncio.create_task(services.busy_sync.run(), name="kokous-busy-sync"),
        ]
        if freeze_gc:
            gc.collect()
            gc.freeze()
        logger.info("kokous ready", extra={"database": db.engine.url.render_as_string(hide_password=True)})
        try:
            yield
        finally:
            # The answer cache only follows events (it runs until cancelled): nothing to finish.
            follower.cancel()
            revocations.cancel()
            # Workers finish the pass under way, so no transaction is cut off; whatever is still
            # running after the grace period (a slow provider call) is cancelled.
            services.outbox.stop()
            services.busy_sync.stop()
            workers.append(asyncio.create_task(services.busy_sync.finish_pushed(), name="kokous-pushed-syncs"))
            _, running = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE)
            for task in running:
                task.cancel()
            await asyncio.gather(follower, revocations, *workers, return_exceptions=True)
            await services.live.close()
            await services.limits.close()
            await hub.disconnect()
            await db.dispose()

    graphql = graphql_app(settings)
    graphql_http = open_to_every_site(answering_endpoint(graphql))
    app = Starlette(
        routes=[
            Route("/graphql", graphql_http, methods=["GET", "POST", "OPTIONS"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", health.healthz),
            Route("/readyz", health.readyz),
            Route("/metrics", health.metrics),
            *oauth_routes(),
            *webhook_routes(),
            *public_routes(),
            *static_routes(),  # last: one mount per folder of static/
        ],
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.graphql = graphql
    app.state.metrics = metrics
    return app


def app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory`` worker processes, which read their own environment."""
    return create_app(load_settings(), freeze_gc=True)
