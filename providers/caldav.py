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
- Sync (``list_changes``): the same search lists a window's events. An event's id is its
  resource's URL, spelled as ``create_event`` spells it, so a booking's own event is known;
  an instance of a recurring resource adds ``#<RECURRENCE-ID in UTC>``. The token is taken
  *before* the listing, so a change made meanwhile is seen again next round, never lost:
  ``sync:<mask>:<DAV:sync-token>`` where the server offers sync-collection (RFC 6578), then
  one REPORT says what changed. Changed resources are fetched with calendar-multiget; a
  deletion (a 404 member) or a recurring resource changes instances whose ids cannot be
  listed, so those rounds re-read the window (``full``). ``mask`` is a 256-bit filter of the
  recurring resources the last window held, so a series turned into a single event also
  re-reads (its instances' rows would stay otherwise). Servers without sync-collection (no
  ``DAV:sync-token``, sync-collection not among the reports, or the REPORT refused) are
  polled with one PROPFIND of ``CS:getctag`` (``ctag:``), or of every member's ETag when there
  is no ctag either (``etags:<hash>``); any change re-reads the window. A token the server
  refuses (403 or 409 with ``DAV:valid-sync-token``, which is what Radicale answers) is
  ``SyncTokenExpired``; a calendar answering 404 is ``CalendarGone``. caldav's own sync
  (``get_objects_by_sync_token``) is not used: on a server without sync-collection it
  silently lists everything under a made-up token.
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

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio.to_thread
import icalendar
import niquests
import wassima
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.lib import error
from caldav.response import DAVResponse, PropfindResult, SyncCollectionResult

from providers.base import (
    AppMark,
    BusyBlock,
    CalendarAccess,
    CalendarEvent,
    EventChanges,
    EventDraft,
    ProviderCalendar,
    WrittenEvent,
)
from providers.errors import (
    CalendarGone,
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
    SyncTokenExpired,
)
from providers.outbound import UNRESTRICTED, OutboundPolicy, caldav_session
from providers.plumbing import aware_utc

log = logging.getLogger(__name__)

T = TypeVar("T")

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_CALENDARSERVER = "{http://calendarserver.org/ns/}"
_WRITE_PRIVILEGES = {"write", "write-content", "bind"}

_AUTH_MESSAGE = (
    "The CalDAV server refused the user name or password. With two-factor authentication "
    "(Apple iCloud, Fastmail, Nextcloud) sign in with an app-specific password, not the account password."
)


_NAMESPACES = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"'


def _propfind_body(*props: str) -> str:
    """A PROPFIND body asking for ``props`` (``d:`` is DAV, ``c:`` CalDAV, ``cs:`` CalendarServer)."""
    wanted = "".join(f"<{prop}/>" for prop in props)
    return f'<?xml version="1.0" encoding="utf-8"?><d:propfind {_NAMESPACES}><d:prop>{wanted}</d:prop></d:propfind>'


_PRINCIPAL_PROPS = _propfind_body("d:current-user-principal")
_HOME_PROPS = _propfind_body("c:calendar-home-set", "c:schedule-inbox-URL")
_DEFAULT_CALENDAR_PROPS = _propfind_body("c:schedule-default-calendar-URL")
_TIMEZONE_PROPS = _propfind_body("c:calendar-timezone-id", "c:calendar-timezone")
_CALENDAR_PROPS = _propfind_body(
    "d:resourcetype",
    "d:displayname",
    "d:current-user-privilege-set",
    "c:supported-calendar-component-set",
    "c:calendar-timezone-id",
    "c:calendar-timezone",
)
# What a sync round asks of the calendar first: where changes stand, and its zone with it.
_STATE_PROPS = _propfind_body(
    "d:sync-token", "cs:getctag", "d:supported-report-set", "c:calendar-timezone-id", "c:calendar-timezone"
)
_ETAG_PROPS = _propfind_body("d:getetag")


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


def _status_error(status: int) -> ProviderError:
    if status in (404, 410):
        return ProviderNotFound("The calendar or event no longer exists on the CalDAV server.", code=str(status))
    if status >= 500:
        return ProviderUnavailable(f"The CalDAV server failed ({status}).", code=str(status))
    return ProviderRefused(f"The CalDAV server refused the request ({status}).", code=str(status) if status else None)


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


def _check(response: DAVResponse) -> None:
    """Raise the error tree's class for a non-2xx answer caldav handed back without raising."""
    if not 200 <= response.status < 300:
        raise _status_error(response.status)


def _propfind(client: DAVClient, url: str, body: str, depth: int) -> list[PropfindResult]:
    """PROPFIND results; anything but a multistatus is not WebDAV."""
    response = client.propfind(url, props=body, depth=depth)
    _check(response)
    if response.status != 207:
        raise ProviderRefused(f"{url} is not a CalDAV address (no WebDAV answer).")
    return [result for result in response.results or [] if isinstance(result, PropfindResult)]


def _properties(client: DAVClient, url: str, body: str) -> dict[str, Any]:
    results = _propfind(client, url, body, 0)
    return dict(results[0].properties) if results else {}


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


def _iana_zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _timezone_of(properties: dict[str, Any]) -> str | None:
    """The calendar's IANA zone from ``calendar-timezone-id`` or the TZID in ``calendar-timezone``."""
    zone_id = properties.get(f"{_CALDAV}calendar-timezone-id")
    if isinstance(zone_id, str) and _iana_zone(zone_id):
        return zone_id
    text = properties.get(f"{_CALDAV}calendar-timezone")
    if not isinstance(text, str):
        return None
    try:
        timezones = icalendar.Calendar.from_ical(text).walk("VTIMEZONE")
    except ValueError:
        log.debug("unreadable calendar-timezone ignored")
        return None
    return next((str(zone["TZID"]) for zone in timezones if _iana_zone(str(zone.get("TZID", "")))), None)


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


def _is_busy(event: icalendar.Event) -> bool:
    transparent = str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT"
    return not transparent and str(event.get("STATUS", "")).upper() != "CANCELLED"


_Zone = Callable[[], tzinfo]  # the calendar's zone, asked of the server only when a time needs it


def _instant(value: date, zone: _Zone) -> datetime:
    """Aware UTC; all-day (a date) and local times without zone are in the calendar's zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=zone()).astimezone(UTC)
    return datetime.combine(value, time(), zone()).astimezone(UTC)


def _zone_of(properties: dict[str, Any]) -> tzinfo:
    zone = _timezone_of(properties)
    return ZoneInfo(zone) if zone else UTC


def _calendar_zone(client: DAVClient, calendar_url: str) -> _Zone:
    """The calendar's zone, read once and only if asked."""
    return functools.cache(lambda: _zone_of(_properties(client, calendar_url, _TIMEZONE_PROPS)))


def _member_url(calendar_id: str, name: str) -> str:
    """The URL of the calendar's resource ``name`` (not quoted), spelled as ``create_event`` spells it.

    Servers and caldav spell one resource differently (``%40`` or ``@``; caldav unquotes the
    hrefs it parses); an event's id must be the same every round and equal the written event's.
    """
    return f"{calendar_id.rstrip('/')}/{quote(name, safe='@')}"


def _name_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _calendar_event(url: str, event: icalendar.Event, zone: _Zone, me: frozenset[str] = frozenset()) -> CalendarEvent:
    """One event, or one instance of a recurring resource: its id then adds the RECURRENCE-ID.

    ``me``: the account's addresses, to tell its own ATTENDEE and ORGANIZER lines. CalDAV shows
    no app's mark but ours (the UID we give our events): other apps' X- properties are neither
    standard nor kept by every server.
    """
    start, end = _instant(event.start, zone), _instant(event.end, zone)
    event_id = url
    if "RECURRENCE-ID" in event:
        event_id = f"{url}#{_instant(event.decoded('RECURRENCE-ID'), zone).isoformat()}"
    uid = str(event.get("UID", ""))
    people = [(_address(line), line) for line in _lines(event.get("ATTENDEE"))]
    organizer = _address(event.get("ORGANIZER")) if "ORGANIZER" in event else None
    return CalendarEvent(
        event_id,
        start,
        end,
        busy=_is_busy(event) and start < end,
        ical_uid=uid or None,
        title=str(event.get("SUMMARY", "")),
        attendees=tuple(
            address
            for address, line in people
            if address and address not in me and _param(line, "CUTYPE") not in _NOT_PEOPLE
        ),
        organizer_self=organizer is None or organizer in me,
        all_day=not isinstance(event.start, datetime),
        free=str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT",
        declined=any(address in me and _param(line, "PARTSTAT") == "DECLINED" for address, line in people),
        cancelled=str(event.get("STATUS", "")).upper() == "CANCELLED",
        app=AppMark(ours=True, what="Kokous's booking key") if uid.endswith(_OUR_UID) else None,
        series_id=url if "RECURRENCE-ID" in event or "RRULE" in event or "RDATE" in event else None,
    )


_NOT_PEOPLE = frozenset({"ROOM", "RESOURCE"})
_OUR_UID = "@kokous"  # our events' UIDs end so (see ``create_event``)


def _lines(value: Any) -> list[Any]:
    """A property that may occur once or several times, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _address(value: Any) -> str:
    """The lower-cased address of a cal-address (``mailto:`` taken off)."""
    text = str(value or "").strip()
    return (text[7:] if text.lower().startswith("mailto:") else text).lower()


def _param(line: Any, name: str) -> str:
    params = getattr(line, "params", {})
    return str(params.get(name, "")).upper()


def _vevents(resource: icalendar.Calendar) -> list[icalendar.Event]:
    return [event for event in resource.walk("VEVENT") if isinstance(event, icalendar.Event)]


def _events_of(
    client: DAVClient,
    calendar_id: str,
    start: datetime,
    end: datetime,
    zone: _Zone,
    me: frozenset[str] = frozenset(),
) -> list[CalendarEvent]:
    """Every event instance overlapping [start, end), recurring events expanded."""
    calendar = Calendar(client=client, url=calendar_id)
    found = cast(list[Any], calendar.search(start=start, end=end, event=True, expand=True))  # sync client: a list
    events = [
        _calendar_event(_member_url(calendar_id, unquote(_name_of(urlsplit(str(resource.url)).path))), event, zone, me)
        for resource in found
        for event in _vevents(icalendar.Calendar.from_ical(resource.data))
    ]
    return [event for event in events if event.start < end and event.end > start]


def _busy_of(client: DAVClient, calendar_id: str, start: datetime, end: datetime) -> list[BusyBlock]:
    events = _events_of(client, calendar_id, start, end, _calendar_zone(client, calendar_id))
    return [BusyBlock(calendar_id, event.start, event.end) for event in events if event.busy]


# -- sync --------------------------------------------------------------------------------------

_SYNC = "sync"
_CTAG = "ctag"
_ETAGS = "etags"
_MASK_BITS = 256
_MAX_SYNC_PAGES = 100  # truncated (507) answers followed before giving up on a round


class _SyncUnsupported(Exception):
    """The server refused a sync-collection REPORT as a report it does not offer."""


def _report(client: DAVClient, url: str, body: str, depth: int | None) -> DAVResponse:
    response = client.report(url, body, depth=depth)
    _check(response)
    return response


def _sync_page(client: DAVClient, calendar_id: str, token: str) -> SyncCollectionResult:
    """One sync-collection answer, its refusals told apart: a token the server no longer knows,
    a report it does not offer, and the rest (mapped as every failure is)."""
    try:
        response = client.report(calendar_id, _sync_collection_body(token), depth=0)
    except error.AuthorizationError as exc:  # caldav raises a 403 itself, with its DAV:error
        _refused_sync(exc.status or 0, exc.preconditions)
        raise
    if not 200 <= response.status < 300:
        _refused_sync(response.status, error.parse_preconditions(response.raw))
    _check(response)
    return response.parse_sync_collection()


def _refused_sync(status: int, preconditions: list[str]) -> None:
    if f"{_DAV}valid-sync-token" in preconditions:  # RFC 6578 3.2; Radicale answers 403
        raise SyncTokenExpired("The CalDAV server no longer knows this sync token.", code=str(status))
    if status in (405, 501) or f"{_DAV}supported-report" in preconditions:  # RFC 3253 3.6
        raise _SyncUnsupported(status)


def _sync_collection_body(token: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><d:sync-collection {_NAMESPACES}>'
        f"<d:sync-token>{escape(token)}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def _multiget_body(urls: Iterable[str]) -> str:
    hrefs = "".join(f"<d:href>{escape(urlsplit(url).path)}</d:href>" for url in urls)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><c:calendar-multiget {_NAMESPACES}>'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{hrefs}</c:calendar-multiget>"
    )


def _is_member(calendar_id: str, href: str) -> bool:
    """An event resource of the calendar, not the collection itself (iCloud lists it too)."""
    return not href.endswith("/") and href.rstrip("/") != unquote(urlsplit(calendar_id).path).rstrip("/")


def _collection_changes(client: DAVClient, calendar_id: str, token: str) -> tuple[str, set[str], set[str]]:
    """The new token and the URLs of changed and deleted resources since ``token``.

    A truncated answer (RFC 6578 3.6: a 507 for the collection) is followed from the token it
    gives until the server has said everything.
    """
    changed: set[str] = set()
    deleted: set[str] = set()
    for _ in range(_MAX_SYNC_PAGES):
        result = _sync_page(client, calendar_id, token)
        for item in result.changed:
            if _is_member(calendar_id, item.href):
                url = _member_url(calendar_id, _name_of(item.href))
                changed.add(url)
                deleted.discard(url)
        for href in result.deleted:
            if _is_member(calendar_id, href):
                url = _member_url(calendar_id, _name_of(href))
                deleted.add(url)
                changed.discard(url)
        if not result.sync_token:
            raise ProviderRefused("The CalDAV server answered a sync without a sync token.")
        token = result.sync_token
        if not result.truncated:
            return token, changed, deleted
    raise ProviderUnavailable(f"The CalDAV server kept truncating its changes after {_MAX_SYNC_PAGES} answers.")


def _resources(client: DAVClient, calendar_id: str, urls: set[str]) -> dict[str, icalendar.Calendar | None]:
    """The changed resources (calendar-multiget); None for one that is gone meanwhile."""
    response = _report(client, calendar_id, _multiget_body(sorted(urls)), None)
    found: dict[str, icalendar.Calendar | None] = dict.fromkeys(urls)
    for result in response.parse_calendar_query():
        url = _member_url(calendar_id, _name_of(result.href))
        if url in found and result.status == 200 and result.calendar_data:
            found[url] = icalendar.Calendar.from_ical(result.calendar_data)
    return found


def _is_recurring(resource: icalendar.Calendar) -> bool:
    """A resource whose instances carry ids of their own (or one with several events)."""
    events = _vevents(resource)
    return len(events) > 1 or any(key in event for event in events for key in ("RRULE", "RDATE", "RECURRENCE-ID"))


def _mask_bit(url: str) -> int:
    return 1 << int.from_bytes(hashlib.sha256(url.encode()).digest()[:4], "big") % _MASK_BITS


def _recurring_mask(events: Iterable[CalendarEvent]) -> int:
    """A filter of the window's recurring resources (a false hit only costs a full round)."""
    mask = 0
    for event in events:
        url, instance, _ = event.event_id.partition("#")
        mask |= _mask_bit(url) if instance else 0
    return mask


def _sync_text(mask: int, server_token: str) -> str:
    return f"{_SYNC}:{mask:x}:{server_token}"


def _etags_hash(client: DAVClient, calendar_id: str) -> str:
    """A hash of every member's ETag: it changes whenever a member does."""
    members = sorted(
        (result.href, str(result.properties.get(f"{_DAV}getetag", "")))
        for result in _propfind(client, calendar_id, _ETAG_PROPS, 1)
        if _is_member(calendar_id, result.href)
    )
    return hashlib.sha256(json.dumps(members).encode()).hexdigest()


def _server_sync_token(properties: dict[str, Any]) -> str | None:
    """The collection's ``DAV:sync-token``, unless the server says it offers no sync-collection."""
    token = properties.get(f"{_DAV}sync-token")
    reports = properties.get(f"{_DAV}supported-report-set")
    offered = not isinstance(reports, list) or not reports or f"{_DAV}sync-collection" in reports
    return token if isinstance(token, str) and token and offered else None


def _tag_token(client: DAVClient, calendar_id: str, properties: dict[str, Any]) -> str:
    ctag = properties.get(f"{_CALENDARSERVER}getctag")
    if isinstance(ctag, str) and ctag:
        return f"{_CTAG}:{ctag}"
    return f"{_ETAGS}:{_etags_hash(client, calendar_id)}"


def _synced_window(
    client: DAVClient,
    calendar_id: str,
    start: datetime,
    end: datetime,
    zone: _Zone,
    server_token: str,
    me: frozenset[str],
) -> EventChanges:
    """Every event of the window, under a server token taken before the listing."""
    events = _events_of(client, calendar_id, start, end, zone, me)
    return EventChanges(tuple(events), (), _sync_text(_recurring_mask(events), server_token), full=True)


def _polled(
    client: DAVClient,
    calendar_id: str,
    start: datetime,
    end: datetime,
    properties: dict[str, Any],
    since: str | None,
    me: frozenset[str],
) -> EventChanges:
    """A server without sync-collection: nothing changed since ``since`` (the same ctag, or the
    same ETags when there is no ctag), or every event of the window again."""
    token = _tag_token(client, calendar_id, properties)
    if token == since:
        return EventChanges((), (), token, full=False)
    events = _events_of(client, calendar_id, start, end, lambda: _zone_of(properties), me)
    return EventChanges(tuple(events), (), token, full=True)


def _sync_round(
    client: DAVClient, calendar_id: str, token: str, start: datetime, end: datetime, me: frozenset[str]
) -> EventChanges:
    """sync-collection from ``token``: the changed events, or the window where ids cannot say it."""
    mask_text, _, server_token = token.partition(":")
    try:
        mask = int(mask_text, 16)
    except ValueError:
        raise SyncTokenExpired(f"Not a CalDAV sync token of Kokous: {token[:40]!r}") from None
    try:
        new_token, changed, deleted = _collection_changes(client, calendar_id, server_token)
    except _SyncUnsupported as exc:
        log.info("CalDAV calendar %s refuses sync-collection (%s); its ctag is polled instead", calendar_id, exc)
        return _polled(client, calendar_id, start, end, _properties(client, calendar_id, _STATE_PROPS), None, me)
    if not changed and not deleted:
        return EventChanges((), (), _sync_text(mask, new_token), full=False)
    zone = _calendar_zone(client, calendar_id)
    if deleted or any(_mask_bit(url) & mask for url in changed):  # instances' ids are not known
        return _synced_window(client, calendar_id, start, end, zone, new_token, me)
    resources = _resources(client, calendar_id, changed)
    if any(resource is None or _is_recurring(resource) for resource in resources.values()):
        return _synced_window(client, calendar_id, start, end, zone, new_token, me)
    events: list[CalendarEvent] = []
    gone: list[str] = []
    for url, resource in sorted(resources.items()):
        found = _vevents(resource) if resource else []
        events += [_calendar_event(url, event, zone, me) for event in found]
        gone += [] if found else [url]  # no event in it any more (a task now, say)
    return EventChanges(tuple(events), tuple(gone), _sync_text(mask, new_token), full=False)


def _list_changes(
    client: DAVClient, calendar_id: str, sync_token: str | None, start: datetime, end: datetime, me: frozenset[str]
) -> EventChanges:
    if sync_token is None:
        properties = _properties(client, calendar_id, _STATE_PROPS)
        server_token = _server_sync_token(properties)
        if server_token is None:
            return _polled(client, calendar_id, start, end, properties, None, me)
        return _synced_window(client, calendar_id, start, end, lambda: _zone_of(properties), server_token, me)
    kind, _, rest = sync_token.partition(":")
    if kind == _SYNC:
        return _sync_round(client, calendar_id, rest, start, end, me)
    if kind in (_CTAG, _ETAGS):
        state = _properties(client, calendar_id, _STATE_PROPS)
        return _polled(client, calendar_id, start, end, state, sync_token, me)
    raise SyncTokenExpired(f"Not a CalDAV sync token of Kokous: {sync_token[:40]!r}")


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
