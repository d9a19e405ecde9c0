"""Another site on another origin that embeds Kokous: the widget by its attributes or by the
snippet an owner pasted, or the whole Kokous page in an iframe. Its pages keep a strict CSP of their own and run no inline script.

Served by a ``DoubleServer`` at ``http://localhost:<port>`` while Kokous answers at
``http://127.0.0.1:<port>``: another host, so another origin and another site.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

# Records what the embedded booking reports: the element's DOM event and the iframe's message.
HOST_SCRIPT = """
window.kokousEvents = [];
window.kokousMessages = [];
document.addEventListener("kokous:booked", (event) => window.kokousEvents.push(event.detail));
window.addEventListener("message", (event) => window.kokousMessages.push({origin: event.origin, data: event.data}));
"""


def _policy(base: str) -> str:
    parts = urlsplit(base)
    socket = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
    return (
        f"default-src 'none'; script-src 'self' {base}; connect-src {base} {socket}; style-src 'self'; frame-src {base}"
    )


def _document(base: str, title: str, body: str, *, widget: bool) -> str:
    module = f'<script type="module" src="{escape(base)}/widget/kokous.js"></script>' if widget else ""
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="Content-Security-Policy" content="{escape(_policy(base))}">
  <title>{escape(title)}</title>
  <script src="/host.js"></script>
  {module}
</head>
<body>
  <h1>{escape(title)}</h1>
  {body}
</body>
</html>
"""


async def embed(request: Request) -> Response:
    """``/embed?base=…&page=…[&<attribute>=…]``: the snippet, with any extra attributes given."""
    params = dict(request.query_params)
    base = params.pop("base")
    attributes = {"page": params.pop("page"), "base": base, **params}
    element = " ".join(f'{escape(name)}="{escape(value)}"' for name, value in attributes.items())
    return HTMLResponse(
        _document(base, "Our partner's site", f"<kokous-booking {element}></kokous-booking>", widget=True)
    )


async def snippet(request: Request) -> Response:
    """``/snippet?base=…&html=…``: a snippet as Kokous gives it to owners, pasted into the page as it is."""
    base = request.query_params["base"]
    return HTMLResponse(_document(base, "Chat with us", request.query_params["html"], widget=False))


async def framed(request: Request) -> Response:
    """``/frame?base=…&src=…``: the Kokous page in an iframe."""
    base = request.query_params["base"]
    src = request.query_params["src"]
    frame = f'<iframe src="{escape(src)}" title="Book a meeting" width="720" height="900"></iframe>'
    return HTMLResponse(_document(base, "Framed booking", frame, widget=False))


async def thanks(request: Request) -> Response:
    """Where an owner sends visitors after they booked (the page's redirect URL)."""
    return HTMLResponse('<!doctype html><html lang="en"><title>Thanks</title><h1>Thank you for booking</h1></html>')


async def host_script(request: Request) -> Response:
    return Response(HOST_SCRIPT, media_type="text/javascript")


def host_site() -> Starlette:
    return Starlette(
        routes=[
            Route("/embed", embed),
            Route("/snippet", snippet),
            Route("/frame", framed),
            Route("/host.js", host_script),
            Route("/thanks", thanks),
        ]
    )
