"""The per-request (or per-WebSocket) context handed to every resolver."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from db.models import User
from scheduling.live.answer_cache import AnswerScope
from scheduling.services import Services


@dataclass
class RequestContext:
    services: Services
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    user: User | None = None
    token_id: uuid.UUID | None = None  # the bearer token the user authenticated with
    auth_error: str | None = None
    # Filled by strawberry with the WebSocket ``connection_init`` payload.
    connection_params: dict[str, Any] | None = None
    # Set when the answer may be cached: resolvers record what it depends on.
    answer_scope: AnswerScope | None = None
    # The request's batch loaders by name (``resolvers/crm_loaders.py``): a list's items share one query.
    loaders: dict[str, Any] = field(default_factory=dict)
