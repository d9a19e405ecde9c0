"""Headers of the public pages: a strict Content-Security-Policy that still lets any site frame them.

The page loads only what comes from the app's public origin (``KOKOUS_PUBLIC_URL``): the widget
module, the page's stylesheet, GraphQL over HTTP and WebSocket. Nothing inline runs or styles
(values reach the page through autoescaped attributes), no form posts anywhere, and every site
may frame it: embedding the page in an iframe is part of the product.
"""

from __future__ import annotations

from functools import cache
from urllib.parse import urlsplit


def _socket_origin(origin: str) -> str:
    parts = urlsplit(origin)
    return f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"


@cache
def page_headers(origin: str) -> dict[str, str]:
    """The headers of every public HTML answer, for the app's public ``origin``."""
    policy = {
        "default-src": "'none'",
        "script-src": origin,
        "style-src": origin,
        "connect-src": f"{origin} {_socket_origin(origin)}",
        "img-src": f"'self' {origin} data:",
        "form-action": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "*",
    }
    return {
        "Content-Security-Policy": "; ".join(f"{name} {sources}" for name, sources in policy.items()),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
