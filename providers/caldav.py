"""CalDAV calendars (RFC 4791) through the ``caldav`` client: iCloud, Fastmail, Nextcloud, Radicale...

The owner connects with a form: the server's DAV address, a user name and a password.

- Apple iCloud: ``https://caldav.icloud.com`` with the Apple ID and an app-specific password
  (appleid.apple.com → Sign-In and Security → App-Specific Passwords).
- Fastmail: ``https://caldav.fastmail.com/dav/`` with the account address and an app password.
- Nextcloud: ``https://HOST/remote.php/dav`` with the user name and an app password.

How it works, and why:

- caldav is synchronous, so every call runs in a worker thread (``anyio.to_thread``). Each call
  makes its own ``DAVClient`` and closes it at the end: the ``CalendarClient`` protocol has no
  ``close``, so a long-lived client would leak its HTTP session, and a fresh one per call needs
  no lock around a session shared between threads. The cost is one extra round trip per call
  (the 401 challenge that negotiates Basic or Digest), which is cheap next to the call itself.
- Discovery (``connect``): ``current-user-principal`` of the given address, then the principal's
  ``calendar-home-set``; an address without them is not a CalDAV server. DNS-based discovery
  (RFC 6764) is off: the address is taken as given, and nothing is asked of the owner's DNS.
- Listing: every calendar collection in the home that can hold events (task lists are left
  out). ``external_id`` is the calendar's absolute URL. Access comes from the calendar's
  ``current-user-privilege-set``: ``all`` → OWNER, a write privilege → WRITER, ``read`` →
  READER, otherwise FREE_BUSY; a server that reports no privileges is taken to mean OWNER,
  since the calendar lives in the owner's own home. The primary calendar is the one the
  schedule inbox names as ``schedule-default-calendar-URL`` (RFC 6638) when the server says,
  otherwise the first calendar the owner can write to.
- Busy time: ``calendar.search(start, end, event=True, expand=True)`` so recurring events come
  back as their instances. TRANSP:TRANSPARENT and STATUS:CANCELLED events are not busy. All-day
  events and floating times have no zone of their own; they are read in the calendar's zone
  (``calendar-timezone-id`` or the TZID of ``calendar-timezone``) and in UTC when the calendar
  names none, because the adapter does not know the owner's zone.
- Sync (``list_changes``): sync-collection (RFC 6578) where the server offers it, else its ctag
  or its members' ETags; see ``providers.caldav_sync``. Events are read by
  ``providers.caldav_reading``, for busy time and sync alike.
- Writing: the event's UID is ``<idempotency key>@kokous`` and it is stored at
  ``<calendar URL>/<UID>.ics`` with ``If-None-Match: *``, so a retry after a success finds the
  resource there (412) and returns it instead of writing a second event. ``WrittenEvent.event_id``
  is the event's absolute URL: updates and deletes address it directly, without a search.
  Attendees carry ``SCHEDULE-AGENT=CLIENT``: Kokous sends the invitation itself, so a
  server with implicit scheduling must not send a second one.
- The CA bundle, when configured, is trusted in addition to the system store (see ``_verify``).
- Every connection passes the outbound gate (``providers.outbound``): in production only public
  addresses (and the operator's allowed networks), checked on the resolved address when
  connecting; redirects to another server are refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import anyio.to_thread
import icalendar
import niquests
import wassima
from caldav.davclient import DAVClient
from caldav.lib import error

from providers.base import (
    BusyBlock,
    CalendarAccess,
    EventChanges,
    EventDraft,
    ProviderCalendar,
    WrittenEvent,
)
from providers.caldav_reading import (
    _CALDAV,
    _DAV,
    _calendar_zone,
    _check,
    _events_of,
    _iana_zone,
    _member_url,
    _properties,
    _propfind,
    _propfind_body,
    _status_error,
    _timezone_of,
)
from providers.caldav_sync import _list_changes
from providers.errors import (
    CalendarGone,
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
)
from providers.outbound import UNRESTRICTED, OutboundPolicy, caldav_session
from providers.plumbing import aware_utc

log = logging.getLogger(__name__)

T = TypeVar("T")

_WRITE_PRIVILEGES = {"write", "write-content", "bind"}

_AUTH_MESSAGE = (
    "The CalDAV server refused the user name or password. With two-factor authentication "
    "(Apple iCloud, Fastmail, Nextcloud) sign in with an app-specific password, not the account password."
)


_PRINCIPAL_PROPS = _propfind_body("d:current-user-principal")
_HOME_PROPS = _propfind_body("c:calendar-home-set", "c:schedule-inbox-URL")
_DEFAULT_CALENDAR_PROPS = _propfind_body("c:schedule-default-calendar-URL")
_CALENDAR_PROPS = _propfind_body(
    "d:resourcetype",
    "d:displayname",
    "d:current-user-privilege-set",
    "c:supported-calendar-component-set",
    "c:calendar-timezone-id",
    "c:calendar-timezone",
)


@dataclass(frozen=True)
class CalDAVForm:
    """What the owner types in to connect."""

    url: str
    username: str
    password: str = field(repr=False)  # never in logs


@dataclass(frozen=True)
class CalDAVConfig:
    ca_bundle: str | None = None  # PEM file of extra certificate authorities trusted besides the system's
    timeout: float = 10.0  # seconds, for every request
    outbound: OutboundPolicy = UNRESTRICTED  # which addresses the server may be on (SEC-1)


@dataclass(frozen=True)
class CalDAVCredentials:
    """A tested connection: the form's fields and the principal discovered from them."""

    url: str
    username: str
    password: str = field(repr=False)
    principal_url: str

    @property
    def account_email(self) -> str:
        """The user name, with the server's host when it is not an address already."""
        if "@" in self.username:
            return self.username
        return f"{self.username}@{urlsplit(self.url).hostname or 'caldav'}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CalDAVCredentials:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("CalDAV credentials must be a JSON object")
        return cls(
            url=str(data["url"]),
            username=str(data["username"]),
            password=str(data["password"]),
            principal_url=str(data["principal_url"]),
        )


# -- errors ------------------------------------------------------------------------------------


def _provider_error(exc: Exception) -> ProviderError:
    """The error tree's class for a failure of caldav, niquests or the server's data."""
    if isinstance(exc, error.RateLimitError):
        if exc.status == 429:
            return ProviderRateLimited("The CalDAV server asks to slow down.", retry_after=exc.retry_after_seconds)
        return ProviderUnavailable("The CalDAV server is unavailable.")
    if isinstance(exc, error.AuthorizationError):
        if exc.status == 403:
            return ProviderAuthError("The CalDAV server no longer allows access to this calendar.", code="403")
        return ProviderAuthError(_AUTH_MESSAGE, code="401")
    if isinstance(exc, error.NotFoundError):
        return ProviderNotFound("The calendar or event no longer exists on the CalDAV server.")
    if isinstance(exc, error.DAVError):
        return _status_error(exc.status or 0)
    if isinstance(exc, niquests.exceptions.Timeout):
        return ProviderUnavailable("The CalDAV server did not answer in time.")
    if isinstance(exc, OSError):  # niquests' connection and TLS errors are OSErrors too
        return ProviderUnavailable(f"Could not reach the CalDAV server: {type(exc).__name__}.")
    log.warning("unexpected answer from a CalDAV server", exc_info=exc)
    return ProviderRefused("The CalDAV server gave an answer that could not be understood.")


async def _off_loop(work: Callable[[], T]) -> T:
    """Run blocking caldav work in a thread; whatever fails leaves as a ``ProviderError``."""
    try:
        return await anyio.to_thread.run_sync(work)
    except ProviderError:
        raise
    except Exception as exc:
        raise _provider_error(exc) from exc


# -- requests ----------------------------------------------------------------------------------


def _verify(config: CalDAVConfig) -> bool | str:
    """The system trust store plus the configured CA bundle, as PEM text.

    niquests takes PEM text as ``verify``; handing it the bundle's path instead would make it
    the only trusted file, and iCloud must stay trusted when an on-premises CA is added.
    """
    if config.ca_bundle is None:
        return True
    return wassima.generate_ca_bundle() + "\n" + Path(config.ca_bundle).read_text()


def _dav_client(config: CalDAVConfig, url: str, username: str, password: str) -> DAVClient:
    """A DAVClient whose session passes the outbound gate on every connection and stays on one server."""
    client = DAVClient(
        url=url,
        username=username,
        password=password,
        timeout=config.timeout,  # type: ignore[arg-type]  # annotated int; niquests takes float seconds
        ssl_verify_cert=_verify(config),
        enable_rfc6764=False,
        rate_limit_handle=False,  # callers retry; a worker thread must not sleep
    )
    own = client.session  # DAVClient has made no request yet
    client.session = caldav_session(config.outbound, multiplexed=bool(own.multiplexed))
    own.close()
    return client


def _href(value: Any) -> str | None:
    """One href from a parsed property (caldav gives a list when there are several)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def _collection_url(base: str, href: str) -> str:
    url = urljoin(base, href)
    return url if url.endswith("/") else url + "/"


def _principal_url(client: DAVClient, url: str) -> str:
    """The ``current-user-principal``; servers without one serve the principal at the address."""
    principal = _href(_properties(client, url, _PRINCIPAL_PROPS).get(f"{_DAV}current-user-principal"))
    return _collection_url(url, principal) if principal else url


def _home_and_inbox(client: DAVClient, principal_url: str) -> tuple[str, str | None]:
    properties = _properties(client, principal_url, _HOME_PROPS)
    home = _href(properties.get(f"{_CALDAV}calendar-home-set"))
    if home is None:
        raise ProviderRefused("This address has no CalDAV calendars (no calendar-home-set).")
    inbox = _href(properties.get(f"{_CALDAV}schedule-inbox-URL"))
    return _collection_url(principal_url, home), _collection_url(principal_url, inbox) if inbox else None


def _discover(config: CalDAVConfig, form: CalDAVForm) -> str:
    with _dav_client(config, form.url, form.username, form.password) as client:
        principal_url = _principal_url(client, form.url)
        _home_and_inbox(client, principal_url)
        return principal_url


async def connect(form: CalDAVForm, config: CalDAVConfig) -> CalDAVCredentials:
    """Discover and test the connection before it is saved."""
    if urlsplit(form.url).scheme not in ("http", "https") or not urlsplit(form.url).netloc:
        raise ProviderRefused("The CalDAV address must be a full https:// URL.")
    try:
        principal_url = await _off_loop(lambda: _discover(config, form))
    except ProviderNotFound as exc:
        raise ProviderRefused("There is no CalDAV server at this address.", code=exc.code) from exc
    log.info("connected to CalDAV principal %s", principal_url)
    return CalDAVCredentials(form.url, form.username, form.password, principal_url)


# -- calendars ---------------------------------------------------------------------------------


def _access(privileges: Any) -> CalendarAccess:
    if not isinstance(privileges, list):
        return CalendarAccess.OWNER
    names = {str(privilege).rsplit("}", 1)[-1] for privilege in privileges}
    if "all" in names:
        return CalendarAccess.OWNER
    if names & _WRITE_PRIVILEGES:
        return CalendarAccess.WRITER
    return CalendarAccess.READER if "read" in names else CalendarAccess.FREE_BUSY


def _calendar(home: str, href: str, properties: dict[str, Any]) -> ProviderCalendar | None:
    """A calendar for events, or None for the home itself, task lists and other collections."""
    if f"{_CALDAV}calendar" not in (properties.get(f"{_DAV}resourcetype") or []):
        return None
    components = properties.get(f"{_CALDAV}supported-calendar-component-set")
    if isinstance(components, list) and components and "VEVENT" not in components:
        return None
    url = _collection_url(home, href)
    name = properties.get(f"{_DAV}displayname")
    return ProviderCalendar(
        external_id=url,
        name=name if isinstance(name, str) and name else url.rstrip("/").rsplit("/", 1)[-1],
        access=_access(properties.get(f"{_DAV}current-user-privilege-set")),
        timezone=_timezone_of(properties),
    )


def _with_primary(calendars: list[ProviderCalendar], default_url: str | None) -> list[ProviderCalendar]:
    """Mark the server's default calendar as primary, else the writable one with the first URL.

    Servers list calendars in no promised order; sorting keeps the choice the same on every
    connect, so bookings keep going to the same calendar.
    """
    chosen = next((c for c in calendars if c.external_id == default_url), None)
    writable = sorted((c for c in calendars if c.access.may_write), key=lambda c: c.external_id)
    chosen = chosen or next(iter(writable), None)
    return [ProviderCalendar(c.external_id, c.name, c.access, c is chosen, c.timezone) for c in calendars]


def _default_calendar_url(client: DAVClient, inbox: str | None) -> str | None:
    if inbox is None:
        return None
    default = _href(_properties(client, inbox, _DEFAULT_CALENDAR_PROPS).get(f"{_CALDAV}schedule-default-calendar-URL"))
    return _collection_url(inbox, default) if default else None


# -- busy time ---------------------------------------------------------------------------------


def _busy_of(client: DAVClient, calendar_id: str, start: datetime, end: datetime) -> list[BusyBlock]:
    events = _events_of(client, calendar_id, start, end, _calendar_zone(client, calendar_id))
    return [BusyBlock(calendar_id, event.start, event.end) for event in events if event.busy]


# -- events ------------------------------------------------------------------------------------


def _checked_zone(draft: EventDraft) -> ZoneInfo:
    """Refuse drafts that would write a wrong event: naive or reversed times, an unknown zone."""
    start, end = aware_utc(draft.start, "start"), aware_utc(draft.end, "end")
    if end <= start:
        raise ValueError(f"the event must end after it starts ({draft.start} .. {draft.end})")
    if _iana_zone(draft.timezone) is None:
        raise ValueError(f"unknown IANA time zone {draft.timezone!r}")
    return ZoneInfo(draft.timezone)


def _attendee(email: str, name: str) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = name
    address.params.update({"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "SCHEDULE-AGENT": "CLIENT"})
    return address


def _ics(draft: EventDraft, uid: str, organizer: str | None, sequence: int) -> str:
    """The VCALENDAR of one event, in the draft's zone (with its VTIMEZONE)."""
    zone = _checked_zone(draft)
    event = icalendar.Event.new(
        uid=uid,
        start=draft.start.astimezone(zone),
        end=draft.end.astimezone(zone),
        summary=draft.summary,
        description=draft.description or None,
        location=draft.location or None,
        sequence=sequence,
    )
    if organizer:
        event.add("organizer", icalendar.vCalAddress(f"mailto:{organizer}"))
    for attendee in draft.attendees:
        event.add("attendee", _attendee(attendee.email, attendee.name))
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Kokous//Kokous//EN")
    calendar.add("version", "2.0")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    ics: bytes = calendar.to_ical()
    return ics.decode("utf-8")


def _event_url(calendar_id: str, uid: str) -> str:
    return _member_url(calendar_id, f"{uid}.ics")


def _check_event_of(calendar_id: str, event_id: str) -> None:
    if not event_id.startswith(calendar_id.rstrip("/") + "/"):
        raise ValueError(f"{event_id!r} is not an event of calendar {calendar_id!r}")


_ICS_HEADERS = {"Content-Type": "text/calendar; charset=utf-8"}


def _create(client: DAVClient, url: str, body: str) -> None:
    response = client.put(url, body, {**_ICS_HEADERS, "If-None-Match": "*"})
    if response.status == 412:
        log.info("CalDAV event %s already written; the retry keeps it", url)
        return
    _check(response)


def _next_sequence(client: DAVClient, url: str) -> tuple[str, int]:
    """The stored event's UID and the SEQUENCE its update must carry (RFC 5545 3.8.7.4)."""
    response = client.request(url, "GET")
    _check(response)
    event = icalendar.Calendar.from_ical(response.raw).walk("VEVENT")[0]
    return str(event["UID"]), int(event.get("SEQUENCE", 0)) + 1


class CalDAVCalendarClient:
    """The ``CalendarClient`` and ``IncrementalSync`` of one CalDAV connection (no push: polled)."""

    def __init__(self, config: CalDAVConfig, credentials: CalDAVCredentials) -> None:
        self._config = config
        self._credentials = credentials

    @property
    def _me(self) -> frozenset[str]:
        """The account's addresses as its events name it (the user name, when it is one)."""
        credentials = self._credentials
        return frozenset({credentials.account_email.lower(), credentials.username.lower()} - {""})

    def _client(self) -> DAVClient:
        credentials = self._credentials
        return _dav_client(self._config, credentials.url, credentials.username, credentials.password)

    def _organizer(self, draft: EventDraft) -> str | None:
        """The draft's organizer, else the user name when it is an address (iCloud, Fastmail)."""
        username = self._credentials.username
        return draft.organizer_email or (username if "@" in username else None)

    async def revoke(self) -> None:
        """CalDAV logs in with a password; there is no grant to revoke."""

    async def aclose(self) -> None:
        """Nothing stays open between calls: each call makes and closes its own connection."""

    def credentials_json(self) -> str:
        return self._credentials.to_json()

    async def list_calendars(self) -> list[ProviderCalendar]:
        def work() -> list[ProviderCalendar]:
            with self._client() as client:
                home, inbox = _home_and_inbox(client, self._credentials.principal_url)
                found = [_calendar(home, r.href, r.properties) for r in _propfind(client, home, _CALENDAR_PROPS, 1)]
                return _with_primary([c for c in found if c], _default_calendar_url(client, inbox))

        return await _off_loop(work)

    async def busy_intervals(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> list[BusyBlock]:
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if not calendar_ids or end <= start:
            return []

        def work() -> list[BusyBlock]:
            with self._client() as client:
                blocks = [block for calendar_id in calendar_ids for block in _busy_of(client, calendar_id, start, end)]
            return sorted(blocks, key=lambda block: (block.start, block.end))

        return await _off_loop(work)

    async def list_changes(
        self, calendar_id: str, *, sync_token: str | None, start: datetime, end: datetime
    ) -> EventChanges:
        """See the module's notes on sync: one cheap request when nothing changed."""
        start, end = aware_utc(start, "start"), aware_utc(end, "end")

        def work() -> EventChanges:
            with self._client() as client:
                return _list_changes(client, calendar_id, sync_token, start, end, self._me)

        try:
            return await _off_loop(work)
        except ProviderNotFound as exc:  # every request of a round goes to the calendar itself
            raise CalendarGone(exc.message, calendar_id=calendar_id, code=exc.code) from exc

    async def create_event(self, calendar_id: str, draft: EventDraft) -> WrittenEvent:
        uid = f"{draft.idempotency_key}@kokous"
        url = _event_url(calendar_id, uid)
        body = _ics(draft, uid, self._organizer(draft), sequence=0)

        def work() -> None:
            with self._client() as client:
                _create(client, url, body)

        await _off_loop(work)
        return WrittenEvent(calendar_id=calendar_id, event_id=url)

    async def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> WrittenEvent:
        _check_event_of(calendar_id, event_id)
        _checked_zone(draft)

        def work() -> None:
            with self._client() as client:
                uid, sequence = _next_sequence(client, event_id)
                body = _ics(draft, uid, self._organizer(draft), sequence)
                response = client.put(event_id, body, {**_ICS_HEADERS, "If-Match": "*"})
                if response.status == 412:
                    raise ProviderNotFound("The event was deleted from the CalDAV calendar.", code="412")
                _check(response)

        await _off_loop(work)
        return WrittenEvent(calendar_id=calendar_id, event_id=event_id)

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        _check_event_of(calendar_id, event_id)

        def work() -> None:
            with self._client() as client:
                response = client.delete(event_id)
                if response.status in (404, 410):
                    log.info("CalDAV event %s was already gone", event_id)
                    return
                _check(response)

        await _off_loop(work)
