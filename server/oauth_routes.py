"""The OAuth callbacks: redeem the code, then send the browser back to the dashboard."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from common.values import CalendarProvider
from scheduling.services import Services
from server.providers import GOOGLE_CALLBACK, MICROSOFT_CALLBACK


def _callback(provider: CalendarProvider) -> Route:
    async def callback(request: Request) -> Response:
        services = cast(Services, request.app.state.services)
        target = await services.connections.finish_oauth(provider, dict(request.query_params))
        return RedirectResponse(target, status_code=302, headers={"cache-control": "no-store"})

    return Route(
        GOOGLE_CALLBACK if provider is CalendarProvider.GOOGLE else MICROSOFT_CALLBACK,
        callback,
        methods=["GET"],
        name=f"oauth_{provider.value.lower()}_callback",
    )


def oauth_routes() -> list[Route]:
    return [_callback(CalendarProvider.GOOGLE), _callback(CalendarProvider.MICROSOFT)]
