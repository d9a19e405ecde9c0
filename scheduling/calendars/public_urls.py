"""URLs owners type (EWS, CalDAV) must lead to the internet, not into the server's own network.

Otherwise a form could make the server probe its neighbours (server-side request forgery). This is
the early check of the typed URL, so that the form can name the field; the outbound gate
(``providers.outbound``) applies the same rule again to every connection, on the address it connects to.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio.to_thread

from providers.outbound import OutboundPolicy

RESTRICTED = OutboundPolicy(restrict=True)


async def points_inside(url: str, policy: OutboundPolicy = RESTRICTED) -> bool:
    """True when the URL's host is, or resolves to, an address the policy does not connect to."""
    host = urlsplit(url).hostname or ""
    return await anyio.to_thread.run_sync(policy.refuses, host)
