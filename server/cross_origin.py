"""``/graphql`` over HTTP for pages on any site: CORS for everyone, and no request a browser
would send without asking first.

Nothing rides on ambient credentials: callers authenticate with an ``Authorization: Bearer``
header (never a cookie), so a page on another site can do nothing its visitor could not do
without Kokous. Any origin may therefore call GraphQL (``Access-Control-Allow-Origin: *``, no
credentials) and the widget embeds anywhere without set-up.

What is left is the request a browser sends without a CORS preflight: a link or an ``<img>``
(GET) or a plain form (POST). Such a request cannot carry a custom header nor a content type
outside the three a form may use, so, as Apollo's CSRF prevention does, a GraphQL request must
carry one or the other: ``Content-Type: application/json`` (every POST of ours and of every
GraphQL client does) or one of ``PREFLIGHT_HEADERS`` (what a GET query adds). ``GET /graphql``
with no parameters (GraphiQL opened by a link) runs nothing and passes.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")
ALLOWED_HEADERS = ("content-type", "authorization", *PREFLIGHT_HEADERS)
PREFLIGHT_MAX_AGE = 600  # seconds a browser may keep a preflight answer
# The content types a browser sends across sites without a preflight (a form's).
SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
_MEDIA_TYPE = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+$")
REFUSED = (
    "This request was refused as a possible cross-site request forgery: send it with a "
    "'Content-Type: application/json' header, or with an 'Apollo-Require-Preflight: true' header "
    "for a GET query."
)


def needs_no_preflight(headers: Headers) -> bool:
    """Whether a browser would send a request with these headers to another site without asking.

    A content type browsers cannot parse is never sent without a preflight, so only the three
    simple types (or none) count, as in the Fetch standard.
    """
    if any(headers.get(name) for name in PREFLIGHT_HEADERS):
        return False
    content_type = headers.get("content-type")
    if content_type is None:
        return True
    essence = content_type.split(";", 1)[0].strip().lower()
    return not _MEDIA_TYPE.match(essence) or essence in SIMPLE_CONTENT_TYPES


class CsrfPrevention:
    """Refuses GraphQL requests a page on another site could have sent without a preflight."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._refused(scope):
            refusal = JSONResponse({"errors": [{"message": REFUSED}]}, status_code=400)
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _refused(scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            return False
        if scope["method"] in ("GET", "HEAD") and not scope["query_string"]:
            return False
        return needs_no_preflight(Headers(scope=scope))


def open_to_every_site(app: ASGIApp) -> ASGIApp:
    """The GraphQL HTTP endpoint as pages on any origin may call it."""
    return CORSMiddleware(
        CsrfPrevention(app),
        allow_origins=("*",),
        allow_methods=("GET", "POST"),
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE,
    )
