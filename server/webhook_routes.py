"""Provider change notifications: ``POST /webhooks/google``, ``/webhooks/microsoft``, ``/webhooks/exchange``.

A notification is only a trigger: it carries no data we trust. Unknown channels answer 404 and
forged tokens 403 (both change nothing); a genuine one starts a sync and is answered at once,
well within the provider's delivery timeout (Graph wants an answer within 3 s).
"""

from __future__ import annotations

import json
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from providers.exchange import PUSH_HEARTBEAT, push_answer, read_push
from scheduling.calendars.channels import Lifecycle, Notice
from scheduling.services import Services

MAX_NOTIFICATION_BYTES = 4_096  # Google's notifications have no body at all
MAX_GRAPH_NOTIFICATION_BYTES = 256 * 1024  # Graph batches items of about 1 KiB each
MAX_VALIDATION_TOKEN_CHARS = 1_024
MAX_EWS_NOTIFICATION_BYTES = 256 * 1024  # a SendNotification of many events


def _too_big(request: Request, limit: int) -> bool:
    try:
        return int(request.headers.get("content-length") or 0) > limit
    except ValueError:
        return True


async def _body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` (a missing length header is no way around it)."""
    if _too_big(request, limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def google_notification(request: Request) -> Response:
    if await _body(request, MAX_NOTIFICATION_BYTES) is None:
        return Response(status_code=413)
    channel_id = request.headers.get("x-goog-channel-id")
    state = request.headers.get("x-goog-resource-state")
    if not channel_id or not state:
        return Response(status_code=400)
    services = cast(Services, request.app.state.services)
    notice = await services.busy_sync.notified(
        channel_id,
        request.headers.get("x-goog-channel-token"),
        request.headers.get("x-goog-resource-id"),
        changed=state != "sync",  # the channel's first message: nothing changed yet
    )
    return Response(status_code=notice.http_status)


async def microsoft_notification(request: Request) -> Response:
    """Graph's change and lifecycle notifications (one address serves both), and its handshake.

    Before Graph agrees to a subscription it posts ``?validationToken=…`` and wants the token
    back, decoded, as text/plain within 10 seconds. A batch of items is answered 202 when any
    item is genuine (each is checked on its own), else 403 when any is forged, else 404.
    """
    token = request.query_params.get("validationToken")
    if token is not None:
        if not token or len(token) > MAX_VALIDATION_TOKEN_CHARS:
            return Response(status_code=400)
        return PlainTextResponse(token)
    body = await _body(request, MAX_GRAPH_NOTIFICATION_BYTES)
    if body is None:
        return Response(status_code=413)
    items = _graph_items(body)
    if items is None:
        return Response(status_code=400)
    services = cast(Services, request.app.state.services)
    notices = set()
    for item in items:
        lifecycle = item.get("lifecycleEvent")
        notices.add(
            await services.busy_sync.notified_subscription(
                str(item["subscriptionId"]),
                item["clientState"] if isinstance(item.get("clientState"), str) else None,
                Lifecycle(lifecycle) if lifecycle in {event.value for event in Lifecycle} else None,
            )
        )
    if Notice.SYNCED in notices:
        return Response(status_code=202)
    return Response(status_code=Notice.FORGED.http_status if Notice.FORGED in notices else Notice.UNKNOWN.http_status)


async def exchange_notification(request: Request) -> Response:
    """Exchange's push notifications: a SOAP ``SendNotification`` to the address we subscribed
    with, whose query carries our channel id and its secret (EWS has no other place for one).

    A genuine one is answered ``OK`` (and keeps the channel alive: Exchange also posts a status
    message every few minutes when nothing changed); one for a channel we no longer keep is
    answered ``Unsubscribe``, the only way EWS lets a push subscription be ended; a wrong
    secret gets 403.
    """
    body = await _body(request, MAX_EWS_NOTIFICATION_BYTES)
    if body is None:
        return Response(status_code=413)
    channel_id = request.query_params.get("channel")
    if not channel_id:
        return Response(status_code=400)
    try:
        notices = read_push(body)
    except ValueError:
        return Response(status_code=400)
    services = cast(Services, request.app.state.services)
    outcomes = {
        await services.busy_sync.notified(
            channel_id,
            request.query_params.get("token"),
            notice.subscription_id,
            changed=notice.changed,
            heartbeat=PUSH_HEARTBEAT,
        )
        for notice in notices
    }
    if Notice.FORGED in outcomes:
        return Response(status_code=Notice.FORGED.http_status)
    keep = bool(outcomes & {Notice.SYNCED, Notice.IGNORED})
    return Response(push_answer(keep=keep), media_type="text/xml; charset=utf-8")


def _graph_items(body: bytes) -> list[dict[str, Any]] | None:
    """The items of ``{"value": [...]}``, each naming its subscription; None when it is not that."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    items = document.get("value") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        return None
    if not all(isinstance(item, dict) and isinstance(item.get("subscriptionId"), str) for item in items):
        return None
    return items


def webhook_routes() -> list[Route]:
    return [
        Route("/webhooks/google", google_notification, methods=["POST"], name="webhook_google"),
        Route("/webhooks/microsoft", microsoft_notification, methods=["POST"], name="webhook_microsoft"),
        Route("/webhooks/exchange", exchange_notification, methods=["POST"], name="webhook_exchange"),
    ]
