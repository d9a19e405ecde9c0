"""``/graphql`` over HTTP for pages on any site: CORS for everyone, GET queries for our own pages only.

Nothing rides on ambient credentials: callers authenticate with an ``Authorization: Bearer``
header (never a cookie), so a page on another site can do nothing its visitor could not do
without Kokous. Any origin may therefore POST GraphQL (``Access-Control-Allow-Origin: *``,
no credentials) and the widget embeds anywhere without set-up. GET never mutates (strawberry
refuses mutations over GET) and a GET query from another site is refused outright: a browser
sends such requests without asking first (an ``<img>``, a link), so they are no API of ours.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

ALLOWED_HEADERS = ("content-type", "authorization")
PREFLIGHT_MAX_AGE = 600  # seconds a browser may keep a preflight answer
REFUSED_GET = "GraphQL over GET is refused from other sites: POST the request as JSON"


def _cross_site(headers: Headers, public_origin: str) -> bool:
    """Whether a browser sent the request for a page of another origin.

    ``Sec-Fetch-Site`` says so when the browser sends it; otherwise an ``Origin`` that is neither
    the public URL's nor the requested host's. Clients outside browsers send neither.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    return origin != public_origin and urlsplit(origin).netloc != headers.get("host")


class CrossSiteGetRefusal:
    """Refuses ``GET /graphql?…`` from other sites; without parameters (GraphiQL opened by a link) it passes."""

    def __init__(self, app: ASGIApp, *, public_origin: str) -> None:
        self.app = app
        self.public_origin = public_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._refused(scope):
            refusal = JSONResponse({"errors": [{"message": REFUSED_GET}]}, status_code=403)
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refused(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not scope["query_string"]:
            return False
        return _cross_site(Headers(scope=scope), self.public_origin)


def open_to_every_site(app: ASGIApp, *, public_origin: str) -> ASGIApp:
    """The GraphQL HTTP endpoint as pages on any origin may call it."""
    return CORSMiddleware(
        CrossSiteGetRefusal(app, public_origin=public_origin),
        allow_origins=("*",),
        allow_methods=("GET", "POST"),
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE,
    )
