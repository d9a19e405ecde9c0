"""The one small tree of provider failures; every adapter maps its library's errors onto it.

* ProviderError
  + ProviderAuthError          - access lost: the calendars turn inactive
  + ProviderRateLimited        - retried, not before ``retry_after``
  + ProviderUnavailable        - timeout, network, server error: retried with backoff
    - ProviderMisconfigured    - this server's own client refused: an operator's error, retried
  + ProviderNotFound           - the thing is already gone
    - CalendarGone             - one calendar deleted or unshared: that calendar turns inactive
  + SyncTokenExpired           - the provider forgot where the last sync stopped: sync everything again
  + ProviderRefused            - never accepted as sent: explained to the owner
    - ProviderUnsupported      - the server is too old (Exchange before 2010 SP2)

What happens next depends only on the class, never on the provider.
"""

from __future__ import annotations

import re

# A provider's code is shown to owners only when it looks like one (``invalid_grant``,
# ``ErrorAccessDenied``, ``AADSTS50173``); anything else the far side sent stays in the logs.
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DETAIL_LIMIT = 300  # characters of the far side's own words kept for the logs


class ProviderError(Exception):
    """Base of every expected provider failure.

    ``message`` is ours and safe to show an owner: it never quotes what the provider answered,
    which for an owner-supplied server may be anything (an internal page, a redirect target).
    The provider's own words go to ``detail``, which only the logs see (``str(error)``).
    """

    def __init__(self, message: str, *, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None and _CODE.match(code) else None
        self.detail = brief(detail) if detail else None

    def __str__(self) -> str:
        return f"{self.message} [{self.detail}]" if self.detail else self.message


def brief(text: object) -> str:
    """Text from the far side, cut short for a log line (some libraries quote whole answers)."""
    words = " ".join(str(text).split())
    return words if len(words) <= DETAIL_LIMIT else words[: DETAIL_LIMIT - 3] + "..."


class ProviderAuthError(ProviderError):
    """Credentials wrong, expired or revoked: the connection needs the owner."""


class ProviderRateLimited(ProviderError):
    """Too many requests; try again after ``retry_after`` seconds when the provider said so."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message, code=code, detail=detail)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """Timeout, network failure or a server error: worth retrying with backoff."""


class ProviderMisconfigured(ProviderUnavailable):
    """The provider refuses this server's own client (wrong or expired client secret).

    Not the owner's lost access: every owner's calls fail alike, and only an operator can fix
    the settings. Retried like an outage, so calendars stay active and nobody is told to
    reconnect.
    """


class ProviderNotFound(ProviderError):
    """The calendar or event does not exist (any more)."""


class CalendarGone(ProviderNotFound):
    """One calendar of the account is gone or no longer shared with it (``calendar_id`` says
    which): the owner must act for that calendar, while the account's others still work."""

    def __init__(self, message: str, *, calendar_id: str, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(message, code=code, detail=detail)
        self.calendar_id = calendar_id


class SyncTokenExpired(ProviderError):
    """The provider no longer knows the state a sync token stands for (Google 410 Gone,
    ``fullSyncRequired``): clear what was kept of the calendar and sync it in full."""


class ProviderRefused(ProviderError):
    """A request the provider will never accept as sent (forbidden, invalid, unsupported)."""


class ProviderUnsupported(ProviderRefused):
    """The server is too old or lacks a feature we need (Exchange before 2010 SP2)."""
