"""Reading a CalDAV calendar: the PROPFIND requests and their answers, the calendar's zone, its events.

Busy time (``providers.caldav``) and sync (``providers.caldav_sync``) both read events the same
way; this is that one way, kept apart so neither of them has to import the other.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.response import DAVResponse, PropfindResult

from providers.base import AppMark, CalendarEvent
from providers.errors import ProviderError, ProviderNotFound, ProviderRefused, ProviderUnavailable

log = logging.getLogger(__name__)

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_CALENDARSERVER = "{http://calendarserver.org/ns/}"

_NAMESPACES = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"'


def _propfind_body(*props: str) -> str:
    """A PROPFIND body asking for ``props`` (``d:`` is DAV, ``c:`` CalDAV, ``cs:`` CalendarServer)."""
    wanted = "".join(f"<{prop}/>" for prop in props)
    return f'<?xml version="1.0" encoding="utf-8"?><d:propfind {_NAMESPACES}><d:prop>{wanted}</d:prop></d:propfind>'


_TIMEZONE_PROPS = _propfind_body("c:calendar-timezone-id", "c:calendar-timezone")


# -- requests ----------------------------------------------------------------------------------


def _status_error(status: int) -> ProviderError:
    if status in (404, 410):
        return ProviderNotFound("The calendar or event no longer exists on the CalDAV server.", code=str(status))
    if status >= 500:
        return ProviderUnavailable(f"The CalDAV server failed ({status}).", code=str(status))
    return ProviderRefused(f"The CalDAV server refused the request ({status}).", code=str(status) if status else None)


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


# -- zones -------------------------------------------------------------------------------------


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


# -- events ------------------------------------------------------------------------------------


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
