"""The visitors' side of the web: ``GET /meetings/{slug}`` and ``GET /robots.txt``, both per host.

The ``Host`` header chooses what is served: the app's own host (from ``KOKOUS_PUBLIC_URL``)
serves every page, a connected domain the pages whose link is on it, any other host nothing.
The page is a document of its own (name, owner, durations, time zone) around the
``<kokous-booking>`` widget, which fetches the rest over GraphQL from the public URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from db.models import SchedulingPage
from scheduling import validation
from scheduling.errors import ValidationFailed
from scheduling.pages.links import MEETINGS_PATH
from scheduling.pages.service import HostPages
from scheduling.services import Services
from server.security_headers import page_headers

# Every template is HTML: autoescape is on for all of them, whatever their name.
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
)

_HOST_HEADER = re.compile(r"^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
PREFILL_MAX_CHARS = 500  # a prefilled value longer than this is cut: it is a hint, not data


def request_host(request: Request) -> str | None:
    """The host name the visitor asked for, lower-case and without port; None when there is none."""
    match = _HOST_HEADER.match(request.headers.get("host", ""))
    if match is None:
        return None
    return match.group(1).strip("[]").lower().rstrip(".") or None


def _services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def _html(template: str, base: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    body = templates.get_template(template).render(base=base, **values)
    return HTMLResponse(body, status_code=status_code, headers={**page_headers(base), "Cache-Control": "no-cache"})


def _slug(value: str) -> str | None:
    """A slug as pages have them; anything else (a NUL byte, a path) is no page, not a query."""
    try:
        return validation.slug("slug", value)
    except ValidationFailed:
        return None


def _timezone(params: QueryParams) -> str | None:
    """``?timezone=Area/City`` when it names an IANA zone; anything else is ignored."""
    value = params.get("timezone")
    if not value:
        return None
    try:
        return validation.timezone("timezone", value)
    except ValidationFailed:
        return None


def _prefill(params: QueryParams, page: SchedulingPage) -> dict[str, str]:
    """``?name=``, ``?email=`` and ``?<field key>=`` for the page's own fields, by form input name."""
    inputs = {"name": "name", "email": "email"} | {
        field["key"]: f"answers.{field['key']}" for field in page.form_fields
    }
    prefill = {}
    for key, input_name in inputs.items():
        value = (params.get(key) or "").strip()
        if value:
            prefill[input_name] = value[:PREFILL_MAX_CHARS]
    return prefill


async def meeting_page(request: Request) -> Response:
    services = _services(request)
    links = services.links
    host, slug = request_host(request), _slug(request.path_params["slug"])
    view = await services.pages.public_page(slug, host) if host and slug else None
    if view is None:
        return _html("not_found.html", links.app_origin, status_code=404)
    params = request.query_params
    return _html(
        "meeting_page.html",
        links.app_origin,
        page=view.page,
        durations=sorted(view.page.durations),
        owner_name=view.owner.name,
        hidden=view.owner.hide_from_search_engines,
        canonical_url=view.url,
        domain=None if host == links.app_host else host,
        timezone=_timezone(params),
        source="CHAT" if params.get("source", "").lower() == "chat" else "PAGE",
        prefill=_prefill(params, view.page),
    )


def robots_text(pages: HostPages) -> str:
    """Hidden pages are disallowed one by one, or all at once when the host shows none.

    On a connected domain of one owner who hides pages that is ``Disallow: /meetings*``; the
    app's host serves every owner's pages, so it lists the hidden ones unless all are hidden.
    """
    lines = ["User-agent: *"]
    if pages.hidden and not pages.shown:
        lines.append(f"Disallow: {MEETINGS_PATH}*")
    elif pages.hidden:
        lines.extend(f"Disallow: {MEETINGS_PATH}/{slug}" for slug in pages.hidden)
    else:
        lines.append("Allow: /")
    return "\n".join(lines) + "\n"


async def robots(request: Request) -> Response:
    host = request_host(request)
    pages = await _services(request).pages.host_pages(host) if host else None
    nosniff = {"X-Content-Type-Options": "nosniff"}
    if pages is None:
        return PlainTextResponse("Not Found\n", status_code=404, headers=nosniff)
    return PlainTextResponse(robots_text(pages), headers=nosniff)


def public_routes() -> list[Route]:
    return [
        Route(MEETINGS_PATH + "/{slug}", meeting_page, methods=["GET"]),
        Route("/robots.txt", robots, methods=["GET"]),
    ]
