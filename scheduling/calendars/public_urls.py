"""URLs owners type (EWS, CalDAV) must lead to the internet, not into the server's own network.

Otherwise a form could make the server probe its neighbours (server-side request forgery). The
host is resolved and every address it resolves to must be a public one.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import anyio.to_thread


async def points_inside(url: str) -> bool:
    """True when the URL's host is, or resolves to, a loopback, private, link-local or reserved address."""
    host = urlsplit(url).hostname or ""
    try:
        infos = await anyio.to_thread.run_sync(socket.getaddrinfo, host, None)
    except OSError:
        return False  # unresolvable: the connection test will fail on its own
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return any(
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        for address in addresses
    )
