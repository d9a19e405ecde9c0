"""Google Calendar adapter: OAuth 2.0 with PKCE, then Calendar v3 through google-api-python-client.

googleapiclient, google-auth and httplib2 are synchronous and an ``httplib2.Http`` is not
thread-safe, so every adapter call runs in a worker thread with a fresh ``Http`` of its own
(the config's timeout and trusted CAs). Building the service per call costs about 1 ms (the
bundled discovery document is read and parsed) plus about 2 ms the first time a resource's
methods are made; that is small beside one network round trip, so nothing is cached and no
discovery state is shared between threads. Requests are never retried here (``num_retries=0``):
callers retry on ``ProviderUnavailable`` and ``ProviderRateLimited``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import html
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio.to_thread
import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from providers.base import (
    AppMark,
    AuthorizationStart,
    BusyBlock,
    CalendarAccess,
    CalendarEvent,
    EventChanges,
    EventDraft,
    ProviderCalendar,
    WatchChannel,
    WrittenEvent,
)
from providers.errors import (
    CalendarGone,
    ProviderAuthError,
    ProviderError,
    ProviderMisconfigured,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
    SyncTokenExpired,
)
from providers.plumbing import aware_utc, retry_after

log = logging.getLogger(__name__)

T = TypeVar("T")

CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events"
CALENDAR_FULL = "https://www.googleapis.com/auth/calendar"
# Read calendars and free/busy, write events. The account's email is the primary calendar's id,
# so neither ``openid`` nor ``userinfo.email`` is needed.
SCOPES = (CALENDAR_READONLY, CALENDAR_EVENTS)

FREEBUSY_MAX_SPAN = timedelta(days=90)  # freeBusy answers 400 timeRangeTooLong beyond this
FREEBUSY_MAX_CALENDARS = 50  # calendarExpansionMax: "Maximum value is 50"

_ACCESS = {
    "owner": CalendarAccess.OWNER,
    "writer": CalendarAccess.WRITER,
    "reader": CalendarAccess.READER,
    "freeBusyReader": CalendarAccess.FREE_BUSY,
}
# The private extended property our booking events carry (their idempotency key): calendar sync
# tells them from the owner's own events by it, even before the booking has stored the event id.
BOOKING_PROPERTY = "kokousIdempotencyKey"
# Event types that are no meeting, and those only apps make ("fromGmail" events cannot be created
# through the API at all).
_SPECIAL_EVENT_TYPES = {
    "outOfOffice": "out of office",
    "focusTime": "focus time",
    "workingLocation": "a working location",
}
_APP_EVENT_TYPES = {"fromGmail": "made by Gmail from an email", "birthday": "made by Google Contacts (a birthday)"}
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"})
# A 403 with these reasons means the account lost access (sharing removed, a scope unticked or
# revoked): the owner must act, as for a 401. Any other 403 (forbiddenForNonOrganizer,
# accessNotConfigured, ...) refuses this one request and is final.
_ACCESS_LOST_REASONS = frozenset({"requiredAccessLevel", "insufficientPermissions"})
# Token endpoint errors about this server's OAuth client, not about the owner's grant.
_CLIENT_REFUSED = frozenset({"invalid_client", "unauthorized_client", "deleted_client"})


@dataclass(frozen=True, kw_only=True)
class GoogleConfig:
    """Where Google lives; endpoints are settings so sovereign clouds and doubles work.

    ``api_endpoint`` replaces googleapiclient's whole base path, so it ends in ``/calendar/v3/``.
    ``insecure_transport`` allows ``http://`` endpoints, for test doubles only; without it such a
    config is refused so that tokens never travel in clear text by mistake. oauthlib refuses an
    ``http://`` authorization URI unless the process-wide ``OAUTHLIB_INSECURE_TRANSPORT`` is set;
    rather than flip a switch every thread would see, ``GoogleOAuth.start`` lets oauthlib build
    the URL on the ``https://`` form and puts the scheme back. The token exchange and API calls go
    through httplib2, which has no such check.
    """

    client_id: str
    client_secret: str
    redirect_uri: str
    auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
    api_endpoint: str = "https://www.googleapis.com/calendar/v3/"
    ca_bundle: str | None = None  # a PEM file of CAs trusted in addition to the default ones
    timeout: float = 10.0
    insecure_transport: bool = False

    def __post_init__(self) -> None:
        for name in ("auth_uri", "token_uri", "api_endpoint"):
            url: str = getattr(self, name)
            if not (url.startswith("https://") or (self.insecure_transport and url.startswith("http://"))):
                raise ValueError(f"{name} must be an https:// URL (http:// only with insecure_transport)")
        if not self.api_endpoint.endswith("/"):
            raise ValueError("api_endpoint must end with '/' (e.g. https://www.googleapis.com/calendar/v3/)")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True)
class GoogleCredentials:
    """What a Google connection stores (encrypted): the refresh token is what lasts."""

    refresh_token: str
    account_email: str
    access_token: str | None = None
    expiry: datetime | None = None  # aware UTC

    def __post_init__(self) -> None:
        if self.expiry is not None:
            object.__setattr__(self, "expiry", aware_utc(self.expiry, "expiry"))

    def to_json(self) -> str:
        return json.dumps(
            {
                "refresh_token": self.refresh_token,
                "account_email": self.account_email,
                "access_token": self.access_token,
                "expiry": self.expiry.isoformat() if self.expiry else None,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> GoogleCredentials:
        data = json.loads(text)
        expiry = data.get("expiry")
        return cls(
            refresh_token=data["refresh_token"],
            account_email=data["account_email"],
            access_token=data.get("access_token"),
            expiry=datetime.fromisoformat(expiry) if expiry else None,
        )


def event_id_for(idempotency_key: str) -> str:
    """The Google event id of a booking: base32hex (a-v, 0-9) of SHA-256, so a retry reuses it."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).digest()
    return base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()


class GoogleOAuth:
    """The authorization code flow with PKCE and offline access."""

    def __init__(self, config: GoogleConfig) -> None:
        self._config = config

    async def start(self, state: str) -> AuthorizationStart:
        """The consent URL; ``verifier`` holds the PKCE code verifier the callback needs."""
        flow = Flow.from_client_config(
            self._client_config(), scopes=list(SCOPES), redirect_uri=self._config.redirect_uri
        )
        url, _ = flow.authorization_url(state=state, access_type="offline", prompt="consent")
        if self._config.auth_uri.startswith("http://"):
            url = "http://" + url.removeprefix("https://")
        return AuthorizationStart(url=url, verifier={"code_verifier": flow.code_verifier})

    async def finish(self, query_params: dict[str, str], verifier: dict[str, str]) -> GoogleCredentials:
        """Exchange the code, check what was granted, and read the account's email."""
        code = query_params.get("code")
        if not code:
            error = query_params.get("error") or "no_code"
            raise ProviderAuthError("Google did not grant access.", code=error)
        token = await anyio.to_thread.run_sync(self._exchange, code, verifier["code_verifier"])
        _require_scopes(token.get("scope"))
        refresh_token = token.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise ProviderAuthError(
                "Google granted no offline access; connect the calendar again", code="no_refresh_token"
            )
        credentials = _google_credentials(self._config, refresh_token, token["access_token"], _expiry(token))
        primary = await anyio.to_thread.run_sync(_call_api, self._config, credentials, _primary_calendar)
        return _our_credentials(credentials, str(primary["id"]))

    def _client_config(self) -> dict[str, dict[str, str]]:
        auth_uri = self._config.auth_uri
        if auth_uri.startswith("http://"):  # see GoogleConfig: oauthlib insists on https
            auth_uri = "https://" + auth_uri.removeprefix("http://")
        return {
            "web": {
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret,
                "auth_uri": auth_uri,
                "token_uri": self._config.token_uri,
            }
        }

    def _exchange(self, code: str, code_verifier: str) -> dict[str, Any]:
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._config.redirect_uri,
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
            "code_verifier": code_verifier,
        }
        return _token_request(self._config, fields)


class GoogleCalendarClient:
    """An authorized Calendar v3 client for one connection.

    The google-auth ``Credentials`` object is shared by this client's calls and refreshes itself
    (before a call when expired, and after a 401); ``credentials_json`` reports the result.
    """

    def __init__(self, config: GoogleConfig, credentials: GoogleCredentials) -> None:
        self._config = config
        self._account_email = credentials.account_email
        self._google = _google_credentials(
            config, credentials.refresh_token, credentials.access_token, credentials.expiry
        )

    async def list_calendars(self) -> list[ProviderCalendar]:
        entries = await self._run(_calendar_list)
        return [_calendar(entry) for entry in entries]

    async def busy_intervals(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> list[BusyBlock]:
        """Busy time in queries of at most 90 days and 50 calendars, run one after another.

        Any per-calendar error fails the whole answer (callers fail closed): ``notFound`` is
        ``ProviderNotFound`` (Google reports a calendar the account can no longer see this way,
        e.g. when sharing was removed), ``tooManyCalendarsRequested``/``groupTooBig`` are
        ``ProviderRefused``, anything else (``internalError``, new reasons) ``ProviderUnavailable``.
        The freeBusy reference documents no per-calendar ``forbidden``.
        """
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        if start >= end:
            raise ValueError("start must be before end")
        ids = list(dict.fromkeys(calendar_ids))
        if not ids:
            return []
        queries = [(window, batch) for window in _windows(start, end) for batch in _batches(ids)]
        return await self._run(partial(_query_free_busy, queries))

    async def create_event(self, calendar_id: str, draft: EventDraft) -> WrittenEvent:
        """Insert with an id derived from the idempotency key (a 409 means an earlier try wrote it),
        carrying the key as a private property so calendar sync knows the event for ours."""
        body = {
            "id": event_id_for(draft.idempotency_key),
            **_event_body(draft),
            "extendedProperties": {"private": {BOOKING_PROPERTY: draft.idempotency_key}},
        }
        return await self._run(partial(_insert_event, calendar_id, body))

    async def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> WrittenEvent:
        """Patch, so whatever the owner added to the event (a video link, notes) stays."""
        await self._run(partial(_patch_event, calendar_id, event_id, _event_body(draft)))
        return WrittenEvent(calendar_id=calendar_id, event_id=event_id)

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        try:
            await self._run(partial(_delete_event, calendar_id, event_id))
        except ProviderNotFound:
            log.info("Google event %s on %s was already gone", event_id, calendar_id)

    async def create_calendar(self, name: str) -> str:
        """``calendars.insert``: a secondary calendar the account owns."""
        created = await self._run(partial(_insert_calendar, {"summary": name}))
        return str(created["id"])

    async def delete_calendar(self, calendar_id: str) -> None:
        try:
            await self._run(partial(_delete_calendar, calendar_id))
        except ProviderNotFound:
            log.info("Google calendar %s was already gone", calendar_id)

    async def list_changes(
        self, calendar_id: str, *, sync_token: str | None, start: datetime, end: datetime
    ) -> EventChanges:
        """``events.list`` with single events, page by page: the window on a full round, the
        token on an incremental one (Google allows no window with a token). A token Google
        forgot (410 Gone) is ``SyncTokenExpired``."""
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        return await self._run(partial(_list_changes, calendar_id, sync_token, start, end))

    async def watch(
        self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl: timedelta
    ) -> WatchChannel:
        """``events.watch``: Google posts to ``address`` (https in production) on every change."""
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(int(ttl.total_seconds()))},
        }
        return await self._run(partial(_watch, calendar_id, body))

    async def stop_watch(self, channel_id: str, resource_id: str) -> None:
        try:
            await self._run(partial(_stop_channel, channel_id, resource_id))
        except ProviderNotFound:
            log.info("Google channel %s was already gone", channel_id)

    async def revoke(self) -> None:
        """Tell Google to end the grant (the refresh token and every access token of it)."""
        refresh_token = self._google.refresh_token
        if refresh_token:
            await anyio.to_thread.run_sync(_revoke, self._config, refresh_token)

    async def aclose(self) -> None:
        """Nothing stays open between calls: each call makes and closes its own connection."""

    def credentials_json(self) -> str:
        return _our_credentials(self._google, self._account_email).to_json()

    async def _run(self, operation: Callable[[Any], T]) -> T:
        return await anyio.to_thread.run_sync(_call_api, self._config, self._google, operation)


# -- calls (these run in a worker thread) -----------------------------------------------------


def _call_api(config: GoogleConfig, credentials: Credentials, operation: Callable[[Any], T]) -> T:
    """Run ``operation(service)`` over a fresh Http, with every failure mapped to our errors."""
    http = _new_http(config)
    try:
        with _provider_errors():
            service = build(
                "calendar",
                "v3",
                http=google_auth_httplib2.AuthorizedHttp(credentials, http=http),
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": config.api_endpoint},
            )
            return operation(service)
    finally:
        http.close()


def _primary_calendar(service: Any) -> dict[str, Any]:
    result: dict[str, Any] = service.calendars().get(calendarId="primary").execute(num_retries=0)
    return result


def _calendar_list(service: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    calendar_list = service.calendarList()
    request = calendar_list.list(maxResults=250)
    while request is not None:
        page = request.execute(num_retries=0)
        entries.extend(page.get("items", []))
        request = calendar_list.list_next(request, page)
    return entries


def _query_free_busy(queries: list[tuple[tuple[datetime, datetime], list[str]]], service: Any) -> list[BusyBlock]:
    blocks: set[BusyBlock] = set()  # a busy period crossing a window edge may come back twice
    for (start, end), ids in queries:
        body = {
            "timeMin": _rfc3339(start),
            "timeMax": _rfc3339(end),
            "timeZone": "UTC",
            "items": [{"id": calendar_id} for calendar_id in ids],
        }
        answer = service.freebusy().query(body=body).execute(num_retries=0)
        calendars = answer.get("calendars", {})
        for calendar_id in ids:
            blocks.update(_busy_blocks(calendar_id, calendars.get(calendar_id)))
    return sorted(blocks, key=lambda block: (block.start, block.end, block.calendar_id))


def _list_changes(
    calendar_id: str, sync_token: str | None, start: datetime, end: datetime, service: Any
) -> EventChanges:
    """Every page of one ``events.list`` round; ``nextSyncToken`` comes on the last page only."""
    query: dict[str, Any] = {"calendarId": calendar_id, "singleEvents": True, "maxResults": 2500}
    if sync_token is None:
        query.update(timeMin=_rfc3339(start), timeMax=_rfc3339(end))
    else:
        query["syncToken"] = sync_token
    events = service.events()
    request = events.list(**query)
    changed: list[CalendarEvent] = []
    deleted: list[str] = []
    next_token: str | None = None
    while request is not None:
        try:
            page = request.execute(num_retries=0)
        except HttpError as error:
            if int(error.resp.status) == 404:  # deleted, or no longer shared with the account
                raise CalendarGone(
                    f"Google no longer shows calendar {calendar_id} to this account",
                    calendar_id=calendar_id,
                    code="notFound",
                ) from error
            if int(error.resp.status) == 410:  # fullSyncRequired
                raise SyncTokenExpired(
                    "Google needs a full sync of this calendar again", code="fullSyncRequired"
                ) from error
            raise
        try:
            zone = _zone(str(page.get("timeZone") or "UTC"))
        except ValueError:  # a zone this server's tzdata lacks: all-day events are read in UTC
            zone = ZoneInfo("UTC")
        for item in page.get("items", []):
            event = _calendar_event(item, zone)
            if event is None:
                deleted.append(str(item["id"]))
            else:
                changed.append(event)
        next_token = page.get("nextSyncToken") or next_token
        request = events.list_next(request, page)
    if not next_token:
        raise ProviderUnavailable("Google ended an events list without a sync token")
    return EventChanges(changed=tuple(changed), deleted=tuple(deleted), sync_token=next_token, full=sync_token is None)


def _calendar_event(item: dict[str, Any], zone: ZoneInfo) -> CalendarEvent | None:
    """The event as a sync keeps it; None for a deleted (cancelled) one."""
    if item.get("status") == "cancelled":
        return None
    start, end = _event_time(item.get("start", {}), zone), _event_time(item.get("end", {}), zone)
    attendees = [attendee for attendee in item.get("attendees", []) if isinstance(attendee, dict)]
    declined = any(attendee.get("self") and attendee.get("responseStatus") == "declined" for attendee in attendees)
    free = item.get("transparency", "opaque") == "transparent"
    # ``organizer.self`` is there only when true; an event without an organizer is the calendar's own.
    organizer = item.get("organizer")
    return CalendarEvent(
        event_id=str(item["id"]),
        start=start,
        end=end,
        busy=not free and not declined and start < end,
        ical_uid=item.get("iCalUID"),
        title=str(item.get("summary") or ""),
        attendees=tuple(
            str(attendee["email"]).lower()
            for attendee in attendees
            if attendee.get("email") and not attendee.get("self") and not attendee.get("resource")
        ),
        organizer_self=bool(organizer.get("self")) if isinstance(organizer, dict) else True,
        all_day="date" in item.get("start", {}),
        free=free,
        declined=declined,
        app=_app_mark(item),
        special=_SPECIAL_EVENT_TYPES.get(str(item.get("eventType", "default"))),
        series_id=item.get("recurringEventId"),
    )


def _app_mark(item: dict[str, Any]) -> AppMark | None:
    """Who marked the event, by the signals Google shows (it has no "made by app" field).

    Our private property marks a booking's event. ``source`` is set by the app that made an
    event (only its maker sees it), private properties are what apps keep on their own events,
    and Gmail and Contacts make events of their own kinds.
    """
    extended = item.get("extendedProperties")
    private = extended.get("private") if isinstance(extended, dict) else None
    private = private if isinstance(private, dict) else {}
    if private.get(BOOKING_PROPERTY):
        return AppMark(ours=True, what="Kokous's booking key")
    source = item.get("source")
    if isinstance(source, dict) and (source.get("title") or source.get("url")):
        return AppMark(ours=False, what=f"its source is {source.get('title') or source.get('url')}")
    if private:
        return AppMark(ours=False, what="another app's private properties")
    maker = _APP_EVENT_TYPES.get(str(item.get("eventType", "default")))
    return AppMark(ours=False, what=maker) if maker else None


def _event_time(value: dict[str, Any], zone: ZoneInfo) -> datetime:
    """A ``dateTime`` (with its offset) or an all-day ``date``, which starts at midnight in the calendar's zone."""
    if "dateTime" in value:
        return _parse_time(str(value["dateTime"]))
    day = datetime.fromisoformat(str(value["date"]))
    return day.replace(tzinfo=zone).astimezone(UTC)


def _watch(calendar_id: str, body: dict[str, Any], service: Any) -> WatchChannel:
    channel: dict[str, Any] = service.events().watch(calendarId=calendar_id, body=body).execute(num_retries=0)
    expires_at = datetime.fromtimestamp(int(channel["expiration"]) / 1000, tz=UTC)
    return WatchChannel(channel_id=str(channel["id"]), resource_id=str(channel["resourceId"]), expires_at=expires_at)


def _stop_channel(channel_id: str, resource_id: str, service: Any) -> None:
    service.channels().stop(body={"id": channel_id, "resourceId": resource_id}).execute(num_retries=0)


def _insert_event(calendar_id: str, body: dict[str, Any], service: Any) -> WrittenEvent:
    events = service.events()
    try:
        created = events.insert(calendarId=calendar_id, body=body, sendUpdates="all").execute(num_retries=0)
    except HttpError as error:
        if error.resp.status != 409:
            raise
        log.info("Google event %s on %s exists already: an earlier attempt wrote it", body["id"], calendar_id)
        created = events.get(calendarId=calendar_id, eventId=body["id"]).execute(num_retries=0)
    return WrittenEvent(calendar_id=calendar_id, event_id=str(created["id"]))


def _patch_event(calendar_id: str, event_id: str, body: dict[str, Any], service: Any) -> None:
    """Google keeps a deleted event (cancelled) and patches it as it is, still deleted: that is
    an event gone, as Microsoft 365 says with a 404."""
    patched = (
        service.events()
        .patch(calendarId=calendar_id, eventId=event_id, body=body, sendUpdates="all")
        .execute(num_retries=0)
    )
    if patched.get("status") == "cancelled":
        raise ProviderNotFound("The event was deleted in Google Calendar.", code="deleted")


def _insert_calendar(body: dict[str, Any], service: Any) -> dict[str, Any]:
    created: dict[str, Any] = service.calendars().insert(body=body).execute(num_retries=0)
    return created


def _delete_calendar(calendar_id: str, service: Any) -> None:
    service.calendars().delete(calendarId=calendar_id).execute(num_retries=0)


def _delete_event(calendar_id: str, event_id: str, service: Any) -> None:
    service.events().delete(calendarId=calendar_id, eventId=event_id, sendUpdates="all").execute(num_retries=0)


def _token_request(config: GoogleConfig, fields: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint; answers the token JSON or raises what the error means."""
    http = _new_http(config)
    try:
        with _provider_errors():
            response, content = http.request(
                config.token_uri,
                "POST",
                body=urlencode(fields),
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            )
    finally:
        http.close()
    status = int(response.status)
    data = _json_object(content)
    if status == 200 and isinstance(data.get("access_token"), str):
        return data
    raise _from_token_error(status, data)


def _revoke(config: GoogleConfig, token: str) -> None:
    """POST the token to the revocation endpoint beside the token endpoint; an unknown token is gone already."""
    http = _new_http(config)
    try:
        with _provider_errors():
            response, content = http.request(
                config.token_uri.rsplit("/", 1)[0] + "/revoke",
                "POST",
                body=urlencode({"token": token}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
    finally:
        http.close()
    status = int(response.status)
    if status != 200 and _json_object(content).get("error") != "invalid_token":
        raise ProviderUnavailable(f"Google did not revoke the grant (HTTP {status})")


# -- errors ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _provider_errors() -> Iterator[None]:
    try:
        yield
    except HttpError as error:
        raise _from_http_error(error) from error
    except RefreshError as error:
        raise _from_refresh_error(error) from error
    except (TransportError, httplib2.HttpLib2Error, OSError) as error:
        # OSError covers socket timeouts, refused connections and TLS verification failures.
        raise ProviderUnavailable("Google could not be reached.", detail=str(error)) from error


def _from_http_error(error: HttpError) -> ProviderError:
    status = int(error.resp.status)
    reasons, message = _google_error(error.content)
    code = reasons[0] if reasons else None
    text = f"Google answered HTTP {status}" + (f" ({code})." if code else ".")
    if status == 429 or (status == 403 and _RATE_LIMIT_REASONS.intersection(reasons)):
        return ProviderRateLimited(
            text, retry_after=retry_after(error.resp.get("retry-after")), code=code, detail=message
        )
    if status == 401 or (status == 403 and _ACCESS_LOST_REASONS.intersection(reasons)):
        return ProviderAuthError(text, code=code, detail=message)
    if status in (404, 410):
        return ProviderNotFound(text, code=code, detail=message)
    if status >= 500:
        return ProviderUnavailable(text, code=code, detail=message)
    return ProviderRefused(text, code=code, detail=message)


def _from_refresh_error(error: RefreshError) -> ProviderError:
    """google-auth raises RefreshError with the token endpoint's JSON as its second argument."""
    data = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], dict) else {}
    code = data.get("error") if isinstance(data.get("error"), str) else None
    if error.retryable:
        return ProviderUnavailable("Google's token service failed; try again later", code=code)
    if code in _CLIENT_REFUSED:
        return _client_refused(code)
    return ProviderAuthError("Google no longer accepts this connection's authorization; reconnect it", code=code)


def _client_refused(code: str) -> ProviderMisconfigured:
    log.error("Google refuses this server's OAuth client (%s): check the client id and secret settings", code)
    return ProviderMisconfigured(f"Google refuses this server's OAuth client ({code})", code=code)


def _from_token_error(status: int, data: dict[str, Any]) -> ProviderError:
    """The token endpoint's ``{"error": "invalid_grant", "error_description": ...}`` mapped."""
    code = data.get("error") if isinstance(data.get("error"), str) else None
    description = str(data.get("error_description") or code or f"HTTP {status}")
    if status == 429:
        return ProviderRateLimited("Google's token service is limiting requests.", code=code, detail=description)
    if status >= 500 or status == 200:
        return ProviderUnavailable("Google's token service failed.", code=code, detail=description)
    if code in _CLIENT_REFUSED:
        return _client_refused(code)
    return ProviderAuthError("Google refused the authorization.", code=code, detail=description)


def _from_free_busy_error(calendar_id: str, reason: str | None) -> ProviderError:
    text = f"Google could not answer free/busy for calendar {calendar_id} ({reason})"
    if reason == "notFound":  # deleted, or no longer shared with the account
        return CalendarGone(text, calendar_id=calendar_id, code=reason)
    if reason in ("tooManyCalendarsRequested", "groupTooBig"):
        return ProviderRefused(text, code=reason)
    return ProviderUnavailable(text, code=reason)


def _google_error(content: bytes) -> tuple[list[str], str]:
    """The reasons and message of Google's ``{"error": {"message", "errors": [{"reason"}]}}``."""
    error = _json_object(content).get("error")
    if not isinstance(error, dict):
        return [], ""
    details = error.get("errors")
    if not isinstance(details, list):
        details = []
    reasons = [str(item["reason"]) for item in details if isinstance(item, dict) and "reason" in item]
    return reasons, str(error.get("message") or "")


def _require_scopes(granted: object) -> None:
    """With granular consent the owner may untick a scope; without both we cannot work."""
    scopes = set(granted.split()) if isinstance(granted, str) else set()
    if CALENDAR_FULL in scopes:
        return
    missing = set(SCOPES) - scopes
    if missing:
        raise ProviderAuthError(
            "Google did not grant access to read calendars and write events; connect again and allow both",
            code="insufficient_scope",
        )


# -- values ------------------------------------------------------------------------------------


def _busy_blocks(calendar_id: str, entry: dict[str, Any] | None) -> list[BusyBlock]:
    if entry is None:
        raise ProviderUnavailable(f"Google's free/busy answer left out calendar {calendar_id}")
    errors = entry.get("errors") or []
    if errors:
        raise _from_free_busy_error(calendar_id, errors[0].get("reason"))
    return [
        BusyBlock(calendar_id=calendar_id, start=_parse_time(period["start"]), end=_parse_time(period["end"]))
        for period in entry.get("busy", [])
    ]


def _calendar(entry: dict[str, Any]) -> ProviderCalendar:
    """Unknown access roles count as free/busy only, the least that can be integrated (none)."""
    return ProviderCalendar(
        external_id=str(entry["id"]),
        name=str(entry.get("summaryOverride") or entry.get("summary") or entry["id"]),
        access=_ACCESS.get(str(entry.get("accessRole")), CalendarAccess.FREE_BUSY),
        primary=bool(entry.get("primary", False)),
        timezone=entry.get("timeZone"),
    )


def _event_body(draft: EventDraft) -> dict[str, Any]:
    start, end = aware_utc(draft.start, "start"), aware_utc(draft.end, "end")
    if start >= end:
        raise ValueError("the event must start before it ends")
    zone = _zone(draft.timezone)
    attendees = [
        {"email": attendee.email, "displayName": attendee.name} if attendee.name else {"email": attendee.email}
        for attendee in draft.attendees
    ]
    return {
        "summary": draft.summary,
        # Google reads the description as HTML: escaped, the text a visitor wrote stays text
        # (no links or markup in the invitation Google mails from the owner's account).
        "description": html.escape(draft.description, quote=False) if draft.description else draft.description,
        "location": draft.location,
        "start": {"dateTime": start.astimezone(zone).isoformat(), "timeZone": draft.timezone},
        "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": draft.timezone},
        "attendees": attendees,
    }


def _windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    windows = []
    while start < end:
        stop = min(start + FREEBUSY_MAX_SPAN, end)
        windows.append((start, stop))
        start = stop
    return windows


def _batches(ids: list[str]) -> list[list[str]]:
    return [ids[index : index + FREEBUSY_MAX_CALENDARS] for index in range(0, len(ids), FREEBUSY_MAX_CALENDARS)]


def _google_credentials(
    config: GoogleConfig, refresh_token: str, access_token: str | None, expiry: datetime | None
) -> Credentials:
    """google-auth compares ``expiry`` with a naive UTC clock, so it gets naive UTC."""
    return Credentials(  # type: ignore[no-untyped-call]
        token=access_token,
        refresh_token=refresh_token,
        token_uri=config.token_uri,
        client_id=config.client_id,
        client_secret=config.client_secret,
        expiry=expiry.astimezone(UTC).replace(tzinfo=None) if expiry else None,
    )


def _our_credentials(credentials: Credentials, account_email: str) -> GoogleCredentials:
    expiry = credentials.expiry
    return GoogleCredentials(
        refresh_token=str(credentials.refresh_token),
        account_email=account_email,
        access_token=credentials.token,
        expiry=expiry.replace(tzinfo=UTC) if expiry else None,
    )


def _expiry(token: dict[str, Any]) -> datetime | None:
    expires_in = token.get("expires_in")
    return datetime.now(UTC) + timedelta(seconds=float(expires_in)) if isinstance(expires_in, int | float) else None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    return aware_utc(datetime.fromisoformat(text), "a time from Google")


def _json_object(content: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# -- transport ---------------------------------------------------------------------------------


def _new_http(config: GoogleConfig) -> httplib2.Http:
    ca_certs = _trusted_cas(config.ca_bundle) if config.ca_bundle else None
    return httplib2.Http(timeout=config.timeout, ca_certs=ca_certs)


@lru_cache(maxsize=8)
def _trusted_cas(ca_bundle: str) -> str:
    """httplib2's ``ca_certs`` replaces its default CAs, but the setting adds to them: join both."""
    with open(httplib2.certs.where(), encoding="utf-8") as defaults, open(ca_bundle, encoding="utf-8") as extra:
        pem = defaults.read() + "\n" + extra.read()
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", prefix="kokous-ca-", suffix=".pem", delete=False) as file:
        file.write(pem)
    atexit.register(_remove_file, file.name)
    return file.name


def _remove_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
