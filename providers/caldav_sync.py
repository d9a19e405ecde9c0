"""Incremental change listing of a CalDAV calendar (``list_changes``): sync-collection, else ctag or ETags.

Kept apart from the adapter (``providers.caldav``) because it is one concept with its own token
format and fallbacks; the events themselves are read as busy time reads them
(``providers.caldav_reading``).

A window's events are listed by the same search as busy time. An event's id is its resource's
URL, spelled as ``create_event`` spells it, so a booking's own event is known;
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
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import icalendar
from caldav.davclient import DAVClient
from caldav.lib import error
from caldav.response import DAVResponse, SyncCollectionResult

from providers.base import CalendarEvent, EventChanges
from providers.caldav_reading import (
    _CALENDARSERVER,
    _DAV,
    _NAMESPACES,
    _calendar_event,
    _calendar_zone,
    _check,
    _events_of,
    _member_url,
    _name_of,
    _properties,
    _propfind,
    _propfind_body,
    _vevents,
    _Zone,
    _zone_of,
)
from providers.errors import ProviderRefused, ProviderUnavailable, SyncTokenExpired

log = logging.getLogger(__name__)

# What a sync round asks of the calendar first: where changes stand, and its zone with it.
_STATE_PROPS = _propfind_body(
    "d:sync-token", "cs:getctag", "d:supported-report-set", "c:calendar-timezone-id", "c:calendar-timezone"
)
_ETAG_PROPS = _propfind_body("d:getetag")

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
