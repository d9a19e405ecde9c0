"""Provider change notifications: ``POST /webhooks/google``.

A notification is only a trigger: it carries no data we trust. Unknown channels answer 404 and
forged tokens 403 (both change nothing); a genuine one starts a sync and is answered at once,
well within the provider's delivery timeout.
"""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduling.services import Services

MAX_NOTIFICATION_BYTES = 4_096  # Google's notifications have no body at all


async def google_notification(request: Request) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_NOTIFICATION_BYTES:
        return Response(status_code=413)
    channel_id = request.headers.get("x-goog-channel-id")
    state = request.headers.get("x-goog-resource-state")
    if not channel_id or not state:
        return Response(status_code=400)
    services = cast(Services, request.app.state.services)
    notice = await services.busy_sync.notified(
        channel_id, request.headers.get("x-goog-channel-token"), request.headers.get("x-goog-resource-id"), state
    )
    return Response(status_code=notice.http_status)


def webhook_routes() -> list[Route]:
    return [Route("/webhooks/google", google_notification, methods=["POST"], name="webhook_google")]
