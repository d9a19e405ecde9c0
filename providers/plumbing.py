"""Small pieces every adapter needs the same way: aware UTC times, Retry-After, TLS trust.

Each adapter maps its own library onto these, so a fix (an HTTP-date Retry-After, a trust store
that must not pick up certifi) lands once for every provider.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import ssl
from datetime import UTC, datetime
from typing import Any

from requests.adapters import HTTPAdapter


def aware_utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC; a naive datetime is refused (a bug in the caller, never guessed at)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got a naive {value!r}")
    return value.astimezone(UTC)


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds, given as seconds or as an HTTP date; None when not said."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        moment = email.utils.parsedate_to_datetime(value)
        return max(0.0, (moment - datetime.now(UTC)).total_seconds())
    return None


@functools.lru_cache(maxsize=8)
def trust_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The system trust store plus the configured extra authorities.

    Loading the system store costs tens of milliseconds, so one context per bundle path is kept
    for the process (a changed bundle file needs a restart); contexts are safe to share.
    """
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


class TrustAdapter(HTTPAdapter):
    """Makes requests verify with our SSL context alone (None: requests' own defaults).

    requests would otherwise load certifi's bundle into the context on every connection, and
    the context is shared by every client of the process.
    """

    def __init__(self, context: ssl.SSLContext | None, **kwargs: Any) -> None:
        self._context = context  # before super().__init__, which builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._context is not None:
            kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if self._context is None:
            super().cert_verify(conn, url, verify, cert)
