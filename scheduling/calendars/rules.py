"""What an owner may connect, and what they type in to connect a calendar by form.

The forms are the domain's own: the API fills them, ``checked_*`` validates them into what the
provider adapters take, so nothing above the domain knows the adapters' types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from db.models import User
from providers.caldav import CalDAVForm
from providers.exchange import VERSION_BUILDS, ExchangeForm
from scheduling import validation
from scheduling.errors import ConnectionLimitReached, ValidationFailed

ONE_CONNECTION_CUTOVER = datetime(2023, 3, 13, tzinfo=UTC)  # older accounts may hold two connections


@dataclass(frozen=True)
class ExchangeAccountForm:
    """An on-premises Exchange mailbox: empty ``ews_url`` means autodiscover, empty ``version`` detect."""

    email: str
    password: str = field(repr=False)
    username: str | None = None
    ews_url: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class CalDAVAccountForm:
    """Any CalDAV server (iCloud, Fastmail, Nextcloud, ...), usually with an app password."""

    url: str
    username: str
    password: str = field(repr=False)


def checked_exchange(form: ExchangeAccountForm) -> ExchangeForm:
    """The form validated into what the Exchange adapter takes; raises ``ValidationFailed``."""
    if form.version is not None and form.version not in VERSION_BUILDS:
        raise ValidationFailed("version", f"version must be one of {', '.join(VERSION_BUILDS)}")
    return ExchangeForm(
        email=validation.email("email", form.email),
        password=_password(form.password),
        username=validation.text("username", form.username, max_length=254) if form.username else None,
        ews_url=validation.web_url("ewsUrl", form.ews_url) if form.ews_url else None,
        version=form.version,
    )


def checked_caldav(form: CalDAVAccountForm) -> CalDAVForm:
    """The form validated into what the CalDAV adapter takes; raises ``ValidationFailed``."""
    return CalDAVForm(
        url=validation.web_url("url", form.url),
        username=validation.text("username", form.username, max_length=254),
        password=_password(form.password),
    )


def _password(value: str) -> str:
    if not value or len(value) > 1_000:
        raise ValidationFailed("password", "password must be 1 to 1,000 characters")
    return value


def connection_limit(owner: User) -> int:
    """Accounts from before 2023-03-13 may hold two connections, until they disconnect one."""
    legacy = owner.created_at < ONE_CONNECTION_CUTOVER and owner.single_connection_since is None
    return 2 if legacy else 1


def limit_reached(owner: User) -> ConnectionLimitReached:
    limit = connection_limit(owner)
    noun = "connection" if limit == 1 else "connections"
    return ConnectionLimitReached(
        message=f"this account may hold {limit} calendar {noun}; remove one before connecting another"
    )
