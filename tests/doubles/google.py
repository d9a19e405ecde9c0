"""A Google double: the OAuth 2.0 endpoints and the Calendar v3 calls Kokous makes, with state.

It speaks the wire format of Google's public references: token errors as
``{"error": "invalid_grant", "error_description": ...}``, Calendar errors as
``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}``.
It keeps accounts, their calendar lists (with access roles), busy periods and the events
written, so tests can assert what ended up where. It is stricter than Google in a few ways: an
authorization request must use PKCE (S256) and carry a state, which Google only recommends.

It also speaks incremental sync and push notifications as Google's guides describe them
("Synchronize resources efficiently", "Push notifications"):

* ``events.list`` pages (``maxResults``, ``pageToken``) with ``nextSyncToken`` only on the last
  page; with ``syncToken`` it answers every event changed since, deleted ones as
  ``{"id", "status": "cancelled"}``; the parameters Google forbids beside a sync token get a
  400, and a token made stale by ``invalidate_sync_tokens`` a 410 ``fullSyncRequired``.
  Each calendar counts its changes; a sync token means "changes after change N".
* ``events.watch`` opens a ``web_hook`` channel, posts the ``sync`` message, then one ``exists``
  message per change (from a background thread, never blocking the request that made the
  change); ``channels.stop`` ends it. Deliveries are recorded in ``notifications_sent``.

Where Google leaves behaviour undefined the double refuses instead: a ``pageToken`` must come
with exactly the parameters of the request that gave it (Google: "perform the exact same
request"), and ``singleEvents`` must match the request a sync token came from. Message numbers
increase but are not consecutive, as Google warns. Events the owner makes in Google's UI
(``add_busy``, ``add_event``) are listed and notified like any other, but ``events_on`` shows only
the events written through the API, the ones a test wants to assert. Such events carry what Google
shows on the calendar's copy: ``eventType``, ``organizer`` and ``attendees`` with ``self`` and
``organizer`` marks, and, for events an app made, its ``source`` or private ``extendedProperties``.
A series (``add_recurring``) is listed as its instances with ``singleEvents=true`` (each with
``recurringEventId`` and ``originalStartTime``) and as itself, with its ``recurrence``, without.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.doubles.notifier import Notifier
from tests.doubles.server import DoubleServer, TLSFiles

Json = dict[str, Any]

READONLY = "https://www.googleapis.com/auth/calendar.readonly"
EVENTS = "https://www.googleapis.com/auth/calendar.events"
FULL = "https://www.googleapis.com/auth/calendar"
KNOWN_SCOPES = {READONLY, EVENTS, FULL, "openid", "email", "profile", "https://www.googleapis.com/auth/userinfo.email"}
READ_SCOPES = {READONLY, FULL}
WRITE_SCOPES = {EVENTS, FULL}
FREEBUSY_MAX_SPAN = timedelta(days=90)
FREEBUSY_MAX_CALENDARS = 50
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
EVENT_TYPES = ("default", "outOfOffice", "focusTime", "workingLocation", "birthday", "fromGmail")
TOKEN_LIFETIME = 3599
EVENTS_PAGE_DEFAULT = 250
EVENTS_PAGE_MAX = 2500
# Google's list: "cannot be specified together with nextSyncToken to ensure consistency".
NOT_WITH_SYNC_TOKEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
CHANNEL_ID = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")
CHANNEL_TOKEN_MAX = 256
CHANNEL_MAX_TTL = 604800  # seconds: a Calendar channel lives at most a week
NOTIFIER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(status: int, reason: str, message: str, *, domain: str = "global") -> Json:
    """Google's Calendar v3 error body; also handy as the body of a planned fault."""
    error: Json = {
        "code": status,
        "message": message,
        "errors": [{"domain": domain, "reason": reason, "message": message}],
    }
    if status in _STATUS_NAMES:
        error["status"] = _STATUS_NAMES[status]
    return {"error": error}


def token_error(error: str, description: str) -> Json:
    """The OAuth token endpoint's error body."""
    return {"error": error, "error_description": description}


@dataclass
class _Calendar:
    id: str
    summary: str
    time_zone: str
    events: dict[str, Json] = field(default_factory=dict)  # every event, deleted ones too (status cancelled)
    made_by_owner: set[str] = field(default_factory=set)  # ids of events made in the UI, not through the API
    changes: int = 0  # how many changes the calendar has seen
    changed_at: dict[str, int] = field(default_factory=dict)  # event id -> its last change, oldest first
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    token_generation: int = 0  # sync tokens of an older generation are gone (410)
    resource_id: str = field(default_factory=lambda: _opaque_id(19))


@dataclass(frozen=True)
class _SyncToken:
    calendar_id: str
    after: int  # the token stands for "changes after this one"
    generation: int
    single_events: str


@dataclass(frozen=True)
class _Page:
    """Where a paged events.list stands: the ids it answers, in order, fixed at its first page."""

    calendar_id: str
    query: tuple[tuple[str, tuple[str, ...]], ...]
    ids: tuple[str, ...]
    offset: int
    changes: int  # the calendar's change count at the first page: the next sync token starts there
    incremental: bool


@dataclass
class _Channel:
    id: str
    calendar_id: str
    account: str
    address: str
    token: str | None
    resource_uri: str
    expiration: datetime
    message_number: int = 0
    ended: bool = False  # stopped, or expired through ``expire_channel``


@dataclass(frozen=True)
class Notification:
    """One push message the double delivered (or tried to) to a channel's address."""

    channel_id: str
    state: str  # "sync" or "exists"
    message_number: int
    address: str
    headers: dict[str, str]
    status: int | None  # what the receiver answered; None when it could not be reached
    error: str | None = None


@dataclass(frozen=True)
class _Delivery:
    channel: _Channel
    state: str
    message_number: int
    headers: dict[str, str]


@dataclass(frozen=True)
class _Grant:
    """What an authorization code stands for until it is exchanged (once)."""

    email: str
    redirect_uri: str
    code_challenge: str
    scopes: tuple[str, ...]
    offline: bool


@dataclass(frozen=True)
class _Access:
    email: str
    scopes: tuple[str, ...]


class GoogleDouble(DoubleServer):
    """Google's OAuth endpoints and Calendar v3 on 127.0.0.1 (HTTPS when given ``tls``)."""

    def __init__(
        self,
        *,
        client_id: str = "kokous-test.apps.googleusercontent.com",
        client_secret: str = "kokous-test-secret",
        tls: TLSFiles | None = None,
        page_size: int = 3,
        events_page_size: int | None = None,
        require_https: bool = False,
        notification_timeout: float = 2.0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size  # calendarList pages never hold more, so paging is exercised
        self.events_page_size = events_page_size  # when set, events.list pages never hold more
        self.require_https = require_https  # Google refuses a channel address that is not https://
        self.notification_timeout = notification_timeout
        self.redirect_uris: set[str] = set()
        self.authorization_requests: list[dict[str, str]] = []
        self._tls = tls
        self._state_lock = threading.Lock()
        self._accounts: dict[str, dict[str, str]] = {}  # email -> calendar id -> access role
        self._calendars: dict[str, _Calendar] = {}
        self._codes: dict[str, _Grant] = {}
        self._refresh_tokens: dict[str, _Access] = {}
        self._access_tokens: dict[str, _Access] = {}
        self._consented: set[str] = set()
        self._sync_tokens: dict[str, _SyncToken] = {}
        self._pages: dict[str, _Page] = {}
        self._channels: dict[str, _Channel] = {}  # channel id -> its latest channel
        self._notifier: Notifier[_Delivery, Notification] = Notifier(self._send, name="google-push")
        self._notification_verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(tls.ca_path)) if tls else True
        )
        super().__init__(self._app(), tls=tls)

    def stop(self) -> None:
        self._notifier.closing = True  # undelivered notifications are dropped
        super().stop()
        self._notifier.close(timeout=self.notification_timeout + 5)

    def config_for(self, redirect_uri: str) -> Json:
        """``GoogleConfig`` keyword arguments pointing at this double (registers the redirect URI)."""
        self.redirect_uris.add(redirect_uri)
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": redirect_uri,
            "auth_uri": f"{self.url}/o/oauth2/auth",
            "token_uri": f"{self.url}/token",
            "api_endpoint": f"{self.url}/calendar/v3/",
            "ca_bundle": str(self._tls.ca_path) if self._tls else None,
            "insecure_transport": self._tls is None,
        }

    # -- test helpers ----------------------------------------------------------------------

    def add_account(self, email: str, *, time_zone: str = "UTC") -> None:
        """An account with its primary calendar (whose id is the email, as at Google)."""
        with self._state_lock:
            self._accounts.setdefault(email, {})
            self._calendars.setdefault(email, _Calendar(email, email, time_zone))
            self._accounts[email][email] = "owner"

    def add_calendar(
        self, email: str, calendar_id: str, *, summary: str = "", access_role: str = "reader", time_zone: str = "UTC"
    ) -> None:
        """Put a calendar on the account's list with the account's access role to it."""
        assert access_role in ("owner", "writer", "reader", "freeBusyReader"), access_role
        with self._state_lock:
            self._calendars.setdefault(calendar_id, _Calendar(calendar_id, summary or calendar_id, time_zone))
            self._accounts[email][calendar_id] = access_role

    def unshare(self, email: str, calendar_id: str) -> None:
        """The calendar's owner stops sharing it with the account: it leaves the account's list."""
        with self._state_lock:
            self._accounts[email].pop(calendar_id, None)

    def add_busy(self, calendar_id: str, start: datetime, end: datetime) -> None:
        """The owner has a meeting: busy for freeBusy, an (untitled) event for events.list."""
        assert start.tzinfo is not None
        assert end.tzinfo is not None
        assert start < end
        self.add_event(calendar_id, start, end)

    def add_event(
        self,
        calendar_id: str,
        start: datetime | date,
        end: datetime | date,
        *,
        event_id: str | None = None,
        transparency: str | None = None,
        all_day: bool = False,
        declined: bool = False,
        summary: str = "",
        status: str = "confirmed",
        guests: Sequence[str] = (),
        organizer: str | None = None,
        source: Json | None = None,
        private: dict[str, str] | None = None,
        event_type: str = "default",
    ) -> str:
        """The owner adds an event in Google's UI (or an app does, with the owner's grant); its id.

        ``all_day`` takes ``start`` and ``end`` as dates (the end date is exclusive, as at Google),
        or, given datetimes, the calendar days they touch in its time zone; ``declined`` makes it
        an invitation from someone else that the owner declined; ``transparency="transparent"``
        shows the owner as free. ``guests`` are invited (the organizer is then an attendee too, as
        Google lists it); ``organizer`` makes it someone else's invitation the owner has not
        answered. An app that makes events leaves ``source`` (``{"title", "url"}``), ``private``
        extended properties or, for Gmail and Contacts, an ``event_type`` of its own.
        """
        assert transparency in (None, "opaque", "transparent"), transparency
        assert status in ("confirmed", "tentative"), status
        assert event_type in EVENT_TYPES, event_type
        with self._state_lock:
            calendar = self._calendars[calendar_id]
            zone = ZoneInfo(calendar.time_zone)
            event_id = event_id or _new_event_id()
            assert EVENT_ID.match(event_id), f"Google would refuse the event id {event_id!r}"
            assert event_id not in calendar.events, f"{event_id} exists already on {calendar_id}"
            event = _owner_event(calendar.id, event_id, status, _owner_times(start, end, all_day, zone), event_type)
            if summary:
                event["summary"] = summary
            if transparency:
                event["transparency"] = transparency
            if declined:
                organizer = "organizer@example.net"
            if organizer or guests:
                event |= _people(calendar.id, organizer, guests, "declined" if declined else "needsAction")
            if source:
                event["source"] = dict(source)
            if private:
                event["extendedProperties"] = {"private": dict(private)}
            calendar.events[event_id] = event
            calendar.made_by_owner.add(event_id)
            self._changed(calendar, event_id)
        return event_id

    def add_recurring(
        self,
        calendar_id: str,
        start: datetime,
        end: datetime,
        *,
        count: int,
        summary: str = "",
        guests: Sequence[str] = (),
    ) -> list[str]:
        """The owner adds a weekly series of ``count`` events in Google's UI; its instances' ids.

        With ``singleEvents=true`` (what Kokous asks) Google lists each instance as an event of
        its own (``{master id}_{UTC start}``, with ``recurringEventId`` and ``originalStartTime``);
        without it, the series once, with its ``recurrence`` rule.
        """
        with self._state_lock:
            calendar = self._calendars[calendar_id]
            zone = ZoneInfo(calendar.time_zone)
            master_id = _new_event_id()
            master = _owner_event(calendar.id, master_id, "confirmed", _owner_times(start, end, False, zone), "default")
            master["recurrence"] = [f"RRULE:FREQ=WEEKLY;COUNT={count}"]
            if summary:
                master["summary"] = summary
            if guests:
                master |= _people(calendar.id, None, guests, "needsAction")
            calendar.events[master_id] = master
            calendar.made_by_owner.add(master_id)
            self._changed(calendar, master_id)
            instances = []
            for week in range(count):
                moved = timedelta(weeks=week)
                instance_id = f"{master_id}_{(start + moved).astimezone(UTC):%Y%m%dT%H%M%SZ}"
                instance = copy.deepcopy(master) | _owner_times(start + moved, end + moved, False, zone)
                del instance["recurrence"]
                instance |= {
                    "id": instance_id,
                    "recurringEventId": master_id,
                    "originalStartTime": instance["start"],
                }
                calendar.events[instance_id] = instance
                calendar.made_by_owner.add(instance_id)
                self._changed(calendar, instance_id)
                instances.append(instance_id)
        return instances

    def set_guests(self, calendar_id: str, event_id: str, guests: Sequence[str]) -> None:
        """The owner changes who is invited to one of their events."""
        with self._state_lock:
            calendar = self._calendars[calendar_id]
            event = calendar.events[event_id]
            assert event["status"] != "cancelled", f"{event_id} is deleted"
            event.pop("attendees", None)
            if guests:
                event |= _people(calendar.id, None, guests, "needsAction")
            event |= {"sequence": event["sequence"] + 1, "updated": _rfc3339(datetime.now(UTC)), "etag": _etag()}
            self._changed(calendar, event_id)

    def move_event(self, calendar_id: str, event_id: str, start: datetime | date, end: datetime | date) -> None:
        """The owner drags an event to another time (an all-day event stays all-day)."""
        with self._state_lock:
            calendar = self._calendars[calendar_id]
            event = calendar.events[event_id]
            assert event["status"] != "cancelled", f"{event_id} is deleted"
            all_day = "date" in event["start"]
            event |= _owner_times(start, end, all_day, ZoneInfo(calendar.time_zone))
            event |= {"sequence": event["sequence"] + 1, "updated": _rfc3339(datetime.now(UTC)), "etag": _etag()}
            self._changed(calendar, event_id)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """The owner deletes an event: Google keeps it as cancelled, for sync."""
        with self._state_lock:
            calendar = self._calendars[calendar_id]
            event = calendar.events[event_id]
            assert event["status"] != "cancelled", f"{event_id} is deleted already"
            event |= {"status": "cancelled", "updated": _rfc3339(datetime.now(UTC)), "etag": _etag()}
            self._changed(calendar, event_id)

    def events_on(self, calendar_id: str) -> list[Json]:
        """The events written through the API that are not cancelled, as Google would answer them.

        Events the owner made (``add_busy``, ``add_event``) are left out: they are not Kokous's.
        """
        with self._state_lock:
            calendar = self._calendars[calendar_id]
            return [
                copy.deepcopy(event)
                for event_id, event in calendar.events.items()
                if event["status"] != "cancelled" and event_id not in calendar.made_by_owner
            ]

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        """Google drops the calendar's sync tokens: each one issued so far answers 410 Gone."""
        with self._state_lock:
            self._calendars[calendar_id].token_generation += 1

    def channels(self) -> list[Json]:
        """The live notification channels: id, resourceId, resourceUri, calendarId, address, token, expiration."""
        with self._state_lock:
            return [
                {
                    "id": channel.id,
                    "resourceId": self._calendars[channel.calendar_id].resource_id,
                    "resourceUri": channel.resource_uri,
                    "calendarId": channel.calendar_id,
                    "address": channel.address,
                    "token": channel.token,
                    "expiration": _epoch_ms(channel.expiration),
                }
                for channel in self._channels.values()
                if self._live(channel)
            ]

    def expire_channel(self, channel_id: str) -> None:
        """The channel reaches its expiration: Google delivers nothing more through it."""
        with self._state_lock:
            channel = self._channels[channel_id]
            channel.ended = True
            channel.expiration = min(channel.expiration, datetime.now(UTC))

    @property
    def notifications_sent(self) -> list[Notification]:
        """Every notification delivered (or attempted), in the order they were sent."""
        return self._notifier.records

    def wait_for_notifications(
        self, count: int, *, channel_id: str | None = None, state: str | None = None, timeout: float = 5.0
    ) -> list[Notification]:
        """Wait until ``count`` notifications (of the channel, of the state) were sent; all of them."""
        return self._notifier.wait_for(
            count,
            lambda notification: (
                (channel_id is None or notification.channel_id == channel_id)
                and (state is None or notification.state == state)
            ),
            timeout=timeout,
        )

    def settle_notifications(self, timeout: float = 5.0) -> None:
        """Wait until every notification queued so far has been delivered or dropped."""
        self._notifier.settle(timeout=timeout)

    def revoke(self, account_email: str) -> None:
        """The owner removed the app's access: every token of the account stops working."""
        with self._state_lock:
            for tokens in (self._refresh_tokens, self._access_tokens):
                for token in [token for token, access in tokens.items() if access.email == account_email]:
                    del tokens[token]

    def expire_access_tokens(self) -> None:
        with self._state_lock:
            self._access_tokens.clear()

    def access_tokens_of(self, account_email: str) -> list[str]:
        with self._state_lock:
            return [token for token, access in self._access_tokens.items() if access.email == account_email]

    def consent(self, authorization_url: str, *, account_email: str, granted_scopes: list[str] | None = None) -> str:
        """The owner signs in as ``account_email`` and clicks Allow: the redirect URL Google sends back.

        ``granted_scopes`` simulates granular consent (some boxes left unticked).
        """
        parts = urlsplit(authorization_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{self.url}/o/oauth2/auth", authorization_url
        params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        problem = self._authorization_problem(params)
        if problem:
            raise ValueError(f"Google would refuse this authorization request: {problem}")
        requested = params["scope"].split()
        scopes = tuple(granted_scopes if granted_scopes is not None else requested)
        code = secrets.token_urlsafe(24)
        with self._state_lock:
            assert account_email in self._accounts, f"no account {account_email}; add_account first"
            first_time = account_email not in self._consented
            self._consented.add(account_email)
            self._codes[code] = _Grant(
                email=account_email,
                redirect_uri=params["redirect_uri"],
                code_challenge=params["code_challenge"],
                scopes=scopes,
                offline=params.get("access_type") == "offline"
                and (first_time or "consent" in params.get("prompt", "")),
            )
        answer = urlencode({"state": params["state"], "code": code, "scope": " ".join(scopes)})
        return f"{params['redirect_uri']}?{answer}"

    # -- the app ---------------------------------------------------------------------------

    def _app(self) -> Starlette:
        events = "/calendar/v3/calendars/{calendar_id}/events"
        return Starlette(
            routes=[
                Route("/o/oauth2/auth", self._authorize, methods=["GET"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/revoke", self._revoke, methods=["POST"]),
                Route("/calendar/v3/users/me/calendarList", self._calendar_list, methods=["GET"]),
                Route("/calendar/v3/calendars", self._calendar_insert, methods=["POST"]),
                Route("/calendar/v3/calendars/{calendar_id}", self._calendar_get, methods=["GET"]),
                Route("/calendar/v3/calendars/{calendar_id}", self._calendar_delete, methods=["DELETE"]),
                Route("/calendar/v3/freeBusy", self._free_busy, methods=["POST"]),
                Route(events, self._events_list, methods=["GET"]),
                Route(events, self._event_insert, methods=["POST"]),
                Route(events + "/watch", self._events_watch, methods=["POST"]),
                Route("/calendar/v3/channels/stop", self._channel_stop, methods=["POST"]),
                Route(events + "/{event_id}", self._event_get, methods=["GET"]),
                Route(events + "/{event_id}", self._event_update, methods=["PUT", "PATCH"]),
                Route(events + "/{event_id}", self._event_delete, methods=["DELETE"]),
            ]
        )

    # -- OAuth -----------------------------------------------------------------------------

    def _authorization_problem(self, params: dict[str, str]) -> str | None:
        if params.get("client_id") != self.client_id:
            return "invalid_client"
        if params.get("redirect_uri") not in self.redirect_uris:
            return "redirect_uri_mismatch"
        if params.get("response_type") != "code":
            return "unsupported_response_type"
        scopes = params.get("scope", "").split()
        if not scopes or not set(scopes) <= KNOWN_SCOPES:
            return "invalid_scope"
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return "invalid_request (PKCE with S256 expected)"
        if not params.get("state"):
            return "invalid_request (state expected)"
        return None

    async def _authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        with self._state_lock:
            self.authorization_requests.append(params)
        problem = self._authorization_problem(params)
        if problem:
            return HTMLResponse(f"<h1>Error 400: {problem}</h1>", status_code=400)
        return HTMLResponse("<h1>Kokous wants to access your Google Account</h1><button>Allow</button>")

    async def _token(self, request: Request) -> Response:
        fields = {key: values[-1] for key, values in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = _client_credentials(request, fields)
        if client_id != self.client_id:
            return JSONResponse(token_error("invalid_client", "The OAuth client was not found."), status_code=401)
        if client_secret != self.client_secret:
            return JSONResponse(token_error("invalid_client", "Unauthorized"), status_code=401)
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(fields)
        if grant_type == "refresh_token":
            return self._refresh(fields)
        return JSONResponse(token_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}"), status_code=400)

    async def _revoke(self, request: Request) -> Response:
        """Revoking a refresh (or access) token ends the whole grant, as at Google."""
        token = parse_qs((await request.body()).decode()).get("token", [""])[-1]
        with self._state_lock:
            access = self._refresh_tokens.get(token) or self._access_tokens.get(token)
        if access is None:
            return JSONResponse(token_error("invalid_token", "Token expired or revoked"), status_code=400)
        self.revoke(access.email)
        return JSONResponse({})

    def _exchange_code(self, fields: dict[str, str]) -> Response:
        with self._state_lock:
            grant = self._codes.pop(fields.get("code", ""), None)  # a code works once
        if grant is None:
            return JSONResponse(token_error("invalid_grant", "Malformed auth code."), status_code=400)
        if fields.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse(token_error("redirect_uri_mismatch", "Bad Request"), status_code=400)
        verifier = fields.get("code_verifier")
        if not verifier:
            return JSONResponse(token_error("invalid_grant", "Missing code verifier."), status_code=400)
        if _s256(verifier) != grant.code_challenge:
            return JSONResponse(token_error("invalid_grant", "Invalid code verifier."), status_code=400)
        access = _Access(grant.email, grant.scopes)
        answer = self._new_access_token(access)
        if grant.offline:
            refresh_token = "1//" + secrets.token_urlsafe(32)
            with self._state_lock:
                self._refresh_tokens[refresh_token] = access
            answer["refresh_token"] = refresh_token
        return JSONResponse(answer)

    def _refresh(self, fields: dict[str, str]) -> Response:
        with self._state_lock:
            access = self._refresh_tokens.get(fields.get("refresh_token", ""))
        if access is None:
            return JSONResponse(token_error("invalid_grant", "Token has been expired or revoked."), status_code=400)
        return JSONResponse(self._new_access_token(access))

    def _new_access_token(self, access: _Access) -> Json:
        token = "ya29." + secrets.token_urlsafe(32)
        with self._state_lock:
            self._access_tokens[token] = access
        return {
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "scope": " ".join(access.scopes),
            "token_type": "Bearer",
        }

    # -- Calendar v3 -----------------------------------------------------------------------

    def _caller(self, request: Request, needs: set[str]) -> str | Response:
        """The account behind the bearer token, or the answer Google gives instead."""
        header = request.headers.get("authorization", "")
        with self._state_lock:
            access = self._access_tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if access is None:
            body = google_error(401, "authError", "Invalid Credentials")
            body["error"]["errors"][0] |= {"location": "Authorization", "locationType": "header"}
            headers = {"www-authenticate": 'Bearer realm="https://accounts.google.com/"'}
            return JSONResponse(body, status_code=401, headers=headers)
        if not needs.intersection(access.scopes):
            message = "Request had insufficient authentication scopes."
            return JSONResponse(google_error(403, "insufficientPermissions", message), status_code=403)
        return access.email

    def _visible(self, email: str, calendar_id: str) -> tuple[_Calendar, str] | None:
        """The calendar and the account's role on it, if the account can see it."""
        calendar_id = email if calendar_id == "primary" else calendar_id
        role = self._accounts.get(email, {}).get(calendar_id)
        return (self._calendars[calendar_id], role) if role else None

    async def _calendar_list(self, request: Request) -> Response:
        email = self._caller(request, READ_SCOPES)
        if isinstance(email, Response):
            return email
        size = min(int(request.query_params.get("maxResults", "100")), self.page_size)
        offset = int(request.query_params.get("pageToken", "0"))
        with self._state_lock:
            roles = list(self._accounts[email].items())
            items = [self._list_entry(email, calendar_id, role) for calendar_id, role in roles[offset : offset + size]]
        answer: Json = {"kind": "calendar#calendarList", "etag": f'"{secrets.token_hex(4)}"', "items": items}
        if offset + size < len(roles):
            answer["nextPageToken"] = str(offset + size)
        else:
            answer["nextSyncToken"] = secrets.token_urlsafe(12)
        return JSONResponse(answer)

    def _list_entry(self, email: str, calendar_id: str, role: str) -> Json:
        calendar = self._calendars[calendar_id]
        entry: Json = {
            "kind": "calendar#calendarListEntry",
            "etag": f'"{secrets.token_hex(4)}"',
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "accessRole": role,
        }
        if calendar_id == email:
            entry["primary"] = True
        return entry

    def _seen(self, request: Request, scopes: set[str]) -> tuple[_Calendar, str, str] | Response:
        """The request's calendar as its caller sees it (calendar, role, email), or Google's refusal."""
        email = self._caller(request, scopes)
        if isinstance(email, Response):
            return email
        with self._state_lock:
            visible = self._visible(email, request.path_params["calendar_id"])
        return _not_found() if visible is None else (*visible, email)

    async def _calendar_get(self, request: Request) -> Response:
        seen = self._seen(request, READ_SCOPES)
        if isinstance(seen, Response):
            return seen
        return JSONResponse(_calendar_resource(seen[0]))

    async def _calendar_insert(self, request: Request) -> Response:
        """``calendars.insert``: a secondary calendar the caller owns (a title is required)."""
        email = self._caller(request, WRITE_SCOPES)
        if isinstance(email, Response):
            return email
        body = json.loads(await request.body() or b"{}")
        summary = body.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            return _bad_request("required", "Missing title.")
        calendar = _Calendar(
            f"{_opaque_id(26).lower()}@group.calendar.google.com", summary, body.get("timeZone", "UTC")
        )
        with self._state_lock:
            self._calendars[calendar.id] = calendar
            self._accounts[email][calendar.id] = "owner"
        return JSONResponse({**_calendar_resource(calendar), "etag": _etag()})

    async def _calendar_delete(self, request: Request) -> Response:
        """``calendars.delete`` of a secondary calendar the caller owns (the primary is refused)."""
        email = self._caller(request, WRITE_SCOPES)
        if isinstance(email, Response):
            return email
        calendar_id = request.path_params["calendar_id"]
        with self._state_lock:
            role = self._accounts.get(email, {}).get(calendar_id)
            if role is None:
                return _not_found()
            if calendar_id in (email, "primary"):
                return _bad_request("cannotDeletePrimaryCalendar", "Cannot delete primary calendar.")
            if role != "owner":
                message = "You need to have owner access to this calendar."
                return JSONResponse(google_error(403, "requiredAccessLevel", message), status_code=403)
            del self._accounts[email][calendar_id]
        return Response(status_code=204)

    def calendars_named(self, email: str, summary: str) -> list[str]:
        """Ids of the account's calendars with this title."""
        with self._state_lock:
            return [cid for cid in self._accounts.get(email, {}) if self._calendars[cid].summary == summary]

    async def _free_busy(self, request: Request) -> Response:
        email = self._caller(request, READ_SCOPES)
        if isinstance(email, Response):
            return email
        body = json.loads(await request.body())
        try:
            start, end = _parse_time(body["timeMin"]), _parse_time(body["timeMax"])
        except (KeyError, ValueError):
            return _bad_request("badRequest", "Bad Request")
        if end <= start:
            return _bad_request("timeRangeEmpty", "The specified time range is empty.", domain="calendar")
        if end - start > FREEBUSY_MAX_SPAN:
            return _bad_request("timeRangeTooLong", "The requested time range is too long.", domain="calendar")
        calendars: Json = {}
        with self._state_lock:
            for index, item in enumerate(body.get("items", [])):
                calendars[item["id"]] = self._busy_answer(email, item["id"], index, start, end)
        return JSONResponse(
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": calendars,
            }
        )

    def _busy_answer(self, email: str, calendar_id: str, index: int, start: datetime, end: datetime) -> Json:
        """One calendar's busy periods, merged and clipped to the window."""
        if index >= FREEBUSY_MAX_CALENDARS:
            return {"errors": [{"domain": "global", "reason": "tooManyCalendarsRequested"}], "busy": []}
        visible = self._visible(email, calendar_id)
        if visible is None:
            return {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
        calendar = visible[0]
        zone = ZoneInfo(calendar.time_zone)
        periods = [_span(event, zone) for event in calendar.events.values() if _busy(event)]
        merged: list[list[datetime]] = []
        for busy_start, busy_end in sorted(periods):
            if busy_end <= start or busy_start >= end:
                continue
            if merged and busy_start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], busy_end)
            else:
                merged.append([busy_start, busy_end])
        return {"busy": [{"start": _rfc3339(max(s, start)), "end": _rfc3339(min(e, end))} for s, e in merged]}

    def _writable(self, request: Request) -> tuple[_Calendar, str] | Response:
        """The calendar of a write, or Google's refusal."""
        seen = self._seen(request, WRITE_SCOPES)
        if isinstance(seen, Response):
            return seen
        calendar, role, email = seen
        if role not in ("owner", "writer"):
            message = "You need to have writer access to this calendar."
            return JSONResponse(google_error(403, "requiredAccessLevel", message, domain="calendar"), status_code=403)
        return calendar, email

    async def _events_list(self, request: Request) -> Response:
        seen = self._seen(request, READ_SCOPES | WRITE_SCOPES)
        if isinstance(seen, Response):
            return seen
        calendar, role, _ = seen
        params = request.query_params
        query = _ListQuery.parse(params, calendar.time_zone)
        if isinstance(query, Response):
            return query
        size = min(query.max_results, self.events_page_size or EVENTS_PAGE_MAX)
        signature = tuple(
            sorted((key, tuple(params.getlist(key))) for key in params if key not in ("pageToken", "maxResults"))
        )
        with self._state_lock:
            if query.page_token is not None:
                page = self._pages.get(query.page_token)
                if page is None or page.calendar_id != calendar.id:
                    return _bad_request("invalid", "Invalid page token value.")
                if page.query != signature:
                    return _bad_request("invalid", "The page token belongs to a request with other parameters.")
            elif query.sync_token is not None:
                token = self._sync_tokens.get(query.sync_token)
                if token is None or token.calendar_id != calendar.id:
                    return _bad_request("invalid", "Invalid sync token value.")
                if token.generation != calendar.token_generation:
                    return _error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
                if token.single_events != query.single_events:
                    message = "singleEvents must be the same as in the request that gave the sync token."
                    return _bad_request("invalid", message)
                changed = tuple(event_id for event_id, n in calendar.changed_at.items() if n > token.after)
                page = _Page(calendar.id, signature, changed, 0, calendar.changes, incremental=True)
            else:
                ids = tuple(event["id"] for event in query.ordered(query.select(calendar.events.values())))
                page = _Page(calendar.id, signature, ids, 0, calendar.changes, incremental=False)
            shown = page.ids[page.offset : page.offset + size]
            items = [self._listed(calendar.events[event_id], query, page.incremental) for event_id in shown]
            answer: Json = {
                "kind": "calendar#events",
                "etag": _etag(),
                "summary": calendar.summary,
                "updated": _rfc3339(calendar.updated),
                "timeZone": calendar.time_zone,
                "accessRole": role,
                "defaultReminders": [],
                "items": [item for item in items if item is not None],
            }
            if page.offset + size < len(page.ids):
                next_page = _opaque_token()
                self._pages[next_page] = _Page(
                    page.calendar_id, page.query, page.ids, page.offset + size, page.changes, page.incremental
                )
                answer["nextPageToken"] = next_page
            else:
                sync_token = _opaque_token()
                self._sync_tokens[sync_token] = _SyncToken(
                    calendar.id, page.changes, calendar.token_generation, query.single_events
                )
                answer["nextSyncToken"] = sync_token
        return JSONResponse(answer)

    def _listed(self, event: Json, query: _ListQuery, incremental: bool) -> Json | None:
        """An event as events.list shows it; None when it was deleted while a plain list paged, or
        is not listed in this mode (a series or its instances: ``singleEvents``)."""
        if not query.shows(event):
            return None
        if event["status"] == "cancelled":
            if not (incremental or query.show_deleted or query.updated_min):
                return None
            return {key: copy.deepcopy(event[key]) for key in _DELETED_FIELDS if key in event}
        listed = copy.deepcopy(event)
        for key in ("start", "end"):
            listed[key] = _shown_time(listed[key], query.zone)
        if not listed.get("attendees"):
            listed.pop("attendees", None)
        return listed

    async def _events_watch(self, request: Request) -> Response:
        seen = self._seen(request, READ_SCOPES | WRITE_SCOPES)
        if isinstance(seen, Response):
            return seen
        calendar, _, email = seen
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _bad_request("parseError", "Parse Error")
        problem = self._channel_problem(body)
        if isinstance(problem, Response):
            return problem
        expiration = problem
        resource_uri = f"{self.url}/calendar/v3/calendars/{quote(request.path_params['calendar_id'])}/events?alt=json"
        with self._state_lock:
            existing = self._channels.get(body["id"])
            if existing is not None and self._live(existing):
                return _bad_request("channelIdNotUnique", f"Channel id {body['id']} not unique")
            channel = _Channel(
                id=body["id"],
                calendar_id=calendar.id,
                account=email,
                address=body["address"],
                token=body.get("token"),
                resource_uri=resource_uri,
                expiration=expiration,
            )
            self._channels[channel.id] = channel
            self._notify(channel, "sync")
        answer: Json = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": calendar.resource_id,
            "resourceUri": resource_uri,
            "expiration": _epoch_ms(expiration),
        }
        if channel.token is not None:
            answer["token"] = channel.token
        return JSONResponse(answer)

    def _channel_problem(self, body: Json) -> datetime | Response:
        """The channel's expiration, or Google's refusal of the watch request."""
        channel_id, kind, address, token = body.get("id"), body.get("type"), body.get("address"), body.get("token")
        if not channel_id:
            return _bad_request("required", "Required channel id.")
        if not isinstance(channel_id, str) or not CHANNEL_ID.match(channel_id):
            return _bad_request("invalid", f"Invalid channel id {channel_id!r}: at most 64 of [A-Za-z0-9-_+/=].")
        if kind != "web_hook":
            return _bad_request("invalid", f"Invalid value for channel type: {kind!r}.")
        if not address:
            return _bad_request("required", "Required channel address.")
        scheme = urlsplit(address).scheme if isinstance(address, str) else ""
        if scheme not in ("http", "https") or not urlsplit(address).netloc:
            return _bad_request("invalid", f"Invalid channel address: {address!r}.")
        if self.require_https and scheme != "https":
            return _bad_request("push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}")
        if token is not None and (not isinstance(token, str) or len(token) > CHANNEL_TOKEN_MAX):
            return _bad_request("invalid", "Invalid channel token: at most 256 characters.")
        now = datetime.now(UTC)
        latest = now + timedelta(seconds=CHANNEL_MAX_TTL)
        params = body.get("params") or {}
        if not isinstance(params, dict):
            return _bad_request("invalid", "Invalid channel params.")
        try:
            if "ttl" in params:
                ttl = int(params["ttl"])
                if ttl <= 0:
                    raise ValueError(ttl)
                return min(now + timedelta(seconds=ttl), latest)
            if body.get("expiration") is not None:
                asked = datetime.fromtimestamp(int(body["expiration"]) / 1000, UTC)
                if asked <= now:
                    raise ValueError(asked)
                return min(asked, latest)
        except (TypeError, ValueError, OverflowError, OSError):
            return _bad_request("invalid", "Invalid channel expiration or ttl.")
        return latest

    async def _channel_stop(self, request: Request) -> Response:
        email = self._caller(request, READ_SCOPES | WRITE_SCOPES)
        if isinstance(email, Response):
            return email
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _bad_request("parseError", "Parse Error")
        if not body.get("id") or not body.get("resourceId"):
            return _bad_request("required", "Required channel id and resourceId.")
        with self._state_lock:
            channel = self._channels.get(body["id"])
            if (
                channel is None
                or not self._live(channel)
                or channel.account != email
                or self._calendars[channel.calendar_id].resource_id != body["resourceId"]
            ):
                return _error(404, "notFound", f"Channel '{body['id']}' not found for project '{self.client_id}'")
            channel.ended = True
        return Response(status_code=204)

    # -- changes and notifications (callers hold the state lock) ---------------------------

    def _changed(self, calendar: _Calendar, event_id: str) -> None:
        """Count a change to the event and tell the calendar's live channels."""
        calendar.changes += 1
        calendar.changed_at.pop(event_id, None)
        calendar.changed_at[event_id] = calendar.changes  # kept oldest first
        calendar.updated = datetime.now(UTC)
        for channel in self._channels.values():
            if channel.calendar_id == calendar.id and self._live(channel):
                self._notify(channel, "exists")

    def _live(self, channel: _Channel) -> bool:
        return not channel.ended and channel.expiration > datetime.now(UTC)

    def _notify(self, channel: _Channel, state: str) -> None:
        """Queue a message for the channel; the notifier thread posts it."""
        # Always 1 for the sync message, then increasing but, as Google warns, not consecutive.
        channel.message_number = 1 if state == "sync" else channel.message_number + 1 + secrets.randbelow(50)
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": format_datetime(channel.expiration, usegmt=True),
            "X-Goog-Resource-ID": self._calendars[channel.calendar_id].resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.message_number),
            "User-Agent": NOTIFIER_AGENT,
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        self._notifier.queue(_Delivery(channel, state, channel.message_number, headers))

    def _send(self, deliveries: list[_Delivery]) -> None:
        """The notifier thread's work: post each message whose channel is still live."""
        for delivery in deliveries:
            with self._state_lock:
                current = self._channels.get(delivery.channel.id) is delivery.channel
                live = current and self._live(delivery.channel)
            if live and not self._notifier.closing:
                self._deliver(delivery)

    def _deliver(self, delivery: _Delivery) -> None:
        status: int | None = None
        error: str | None = None
        try:
            with httpx.Client(
                timeout=self.notification_timeout, verify=self._notification_verify, trust_env=False
            ) as client:
                status = client.post(delivery.channel.address, headers=delivery.headers).status_code
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        notification = Notification(
            channel_id=delivery.channel.id,
            state=delivery.state,
            message_number=delivery.message_number,
            address=delivery.channel.address,
            headers=dict(delivery.headers),
            status=status,
            error=error,
        )
        self._notifier.record(notification)

    async def _event_insert(self, request: Request) -> Response:
        target = self._writable(request)
        if isinstance(target, Response):
            return target
        calendar, email = target
        body = json.loads(await request.body())
        event_id = body.get("id") or _new_event_id()
        if not EVENT_ID.match(event_id):
            return _bad_request("invalid", "Invalid resource id value.")
        problem = _times_problem(body)
        if problem:
            return problem
        now = _rfc3339(datetime.now(UTC))
        event = {
            **body,
            "kind": "calendar#event",
            "etag": _etag(),
            "id": event_id,
            "status": "confirmed",
            "created": now,
            "updated": now,
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "organizer": {"email": calendar.id, "self": True},
            "creator": {"email": email, "self": True},
            "attendees": [{**attendee, "responseStatus": "needsAction"} for attendee in body.get("attendees", [])],
            "eventType": body.get("eventType", "default"),
        }
        with self._state_lock:
            if event_id in calendar.events:
                return _error(409, "duplicate", "The requested identifier already exists.")
            calendar.events[event_id] = event
            self._changed(calendar, event_id)
        return JSONResponse(event)

    async def _event_get(self, request: Request) -> Response:
        seen = self._seen(request, READ_SCOPES | WRITE_SCOPES)
        if isinstance(seen, Response):
            return seen
        with self._state_lock:
            event = seen[0].events.get(request.path_params["event_id"])
            return JSONResponse(copy.deepcopy(event)) if event else _not_found()

    async def _event_update(self, request: Request) -> Response:
        """PUT replaces the event's fields, PATCH merges them; the server's own fields stay."""
        target = self._writable(request)
        if isinstance(target, Response):
            return target
        calendar = target[0]
        body = json.loads(await request.body())
        with self._state_lock:
            event = calendar.events.get(request.path_params["event_id"])
            if event is None:
                return _not_found()
            kept = {key: event[key] for key in ("kind", "id", "created", "iCalUID", "organizer", "creator", "status")}
            updated = {**(event if request.method == "PATCH" else {}), **body, **kept}
            problem = _times_problem(updated)
            if problem:
                return problem
            updated |= {"sequence": event["sequence"] + 1, "updated": _rfc3339(datetime.now(UTC)), "etag": _etag()}
            calendar.events[event["id"]] = updated
            self._changed(calendar, event["id"])
            return JSONResponse(copy.deepcopy(updated))

    async def _event_delete(self, request: Request) -> Response:
        target = self._writable(request)
        if isinstance(target, Response):
            return target
        calendar = target[0]
        with self._state_lock:
            event = calendar.events.get(request.path_params["event_id"])
            if event is None:
                return _not_found()
            if event["status"] == "cancelled":
                return _error(410, "deleted", "Resource has been deleted")
            event |= {"status": "cancelled", "updated": _rfc3339(datetime.now(UTC)), "etag": _etag()}
            self._changed(calendar, event["id"])
        return Response(status_code=204)


def _client_credentials(request: Request, fields: dict[str, str]) -> tuple[str | None, str | None]:
    """Client authentication by HTTP Basic or by form fields, as the token endpoint allows both."""
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id, client_secret
    return fields.get("client_id"), fields.get("client_secret")


def _times_problem(event: Json) -> Response | None:
    try:
        start, end = event["start"], event["end"]
        if "dateTime" not in start and "dateTime" not in end:  # an all-day event
            start_time, end_time = date.fromisoformat(start["date"]), date.fromisoformat(end["date"])
        else:
            start_time, end_time = _parse_time(start["dateTime"]), _parse_time(end["dateTime"])
    except (KeyError, TypeError, ValueError):
        return _bad_request("required", "Missing or invalid start or end time.")
    for name, moment in (("start", start), ("end", end)):
        if "timeZone" in moment:
            try:
                ZoneInfo(moment["timeZone"])
            except (ZoneInfoNotFoundError, ValueError):
                return _bad_request("invalid", f"Invalid time zone definition for {name} time.")
    if end_time <= start_time:
        return _bad_request("timeRangeEmpty", "The specified time range is empty.", domain="calendar")
    return None


_DELETED_FIELDS = ("id", "status", "recurringEventId", "originalStartTime")  # all a deleted event keeps


@dataclass(frozen=True)
class _ListQuery:
    """The parameters of an events.list request, checked as Google checks them."""

    zone: ZoneInfo  # the time zone of the answer: ``timeZone``, else the calendar's
    max_results: int
    page_token: str | None
    sync_token: str | None
    single_events: str
    show_deleted: bool
    order_by: str | None
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    text: str | None
    ical_uid: str | None
    private: tuple[tuple[str, str], ...]
    shared: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, params: Any, calendar_zone: str) -> _ListQuery | Response:
        sync_token = params.get("syncToken")
        if sync_token is not None:
            for name in NOT_WITH_SYNC_TOKEN:
                if name in params:
                    return _bad_request("invalid", f"The {name} parameter cannot be used together with syncToken.")
            if params.get("showDeleted") == "false":
                return _bad_request("invalid", "showDeleted cannot be false together with syncToken.")
        booleans = {}
        for name in ("singleEvents", "showDeleted"):
            value = params.get(name, "false")
            if value not in ("true", "false"):
                return _bad_request("invalid", f"Invalid boolean value for {name}: {value!r}.")
            booleans[name] = value
        try:
            max_results = int(params.get("maxResults", str(EVENTS_PAGE_DEFAULT)))
        except ValueError:
            return _bad_request("invalid", "Invalid value for maxResults.")
        if max_results < 1:
            return _bad_request("invalid", "Invalid value for maxResults: it must be at least 1.")
        order_by = params.get("orderBy")
        if order_by not in (None, "startTime", "updated"):
            return _bad_request("invalid", f"Invalid value for orderBy: {order_by!r}.")
        if order_by == "startTime" and booleans["singleEvents"] != "true":
            return _bad_request("badRequest", "The requested ordering is not available for the particular query.")
        try:
            zone = ZoneInfo(params.get("timeZone", calendar_zone))
        except (ZoneInfoNotFoundError, ValueError):
            return _bad_request("invalid", "Invalid time zone definition.")
        times: dict[str, datetime | None] = {}
        for name in ("timeMin", "timeMax", "updatedMin"):
            try:
                times[name] = _parse_time(params[name]) if name in params else None
            except ValueError:
                return _bad_request("invalid", f"Bad Request: {name} must be an RFC3339 time with an offset.")
        time_min, time_max = times["timeMin"], times["timeMax"]
        if time_min is not None and time_max is not None and time_max <= time_min:
            return _bad_request("timeRangeEmpty", "The specified time range is empty.", domain="calendar")
        properties: dict[str, tuple[tuple[str, str], ...]] = {}
        for name in ("privateExtendedProperty", "sharedExtendedProperty"):
            pairs = [value.partition("=") for value in params.getlist(name)]
            if any(not key or not equals for key, equals, _ in pairs):
                return _bad_request("invalid", f"Invalid {name}: propertyName=value expected.")
            properties[name] = tuple((key, value) for key, _, value in pairs)
        return cls(
            zone=zone,
            max_results=min(max_results, EVENTS_PAGE_MAX),
            page_token=params.get("pageToken"),
            sync_token=sync_token,
            single_events=booleans["singleEvents"],
            show_deleted=booleans["showDeleted"] == "true",
            order_by=order_by,
            time_min=time_min,
            time_max=time_max,
            updated_min=times["updatedMin"],
            text=params.get("q"),
            ical_uid=params.get("iCalUID"),
            private=properties["privateExtendedProperty"],
            shared=properties["sharedExtendedProperty"],
        )

    def select(self, events: Any) -> list[Json]:
        return [event for event in events if self._matches(event)]

    def shows(self, event: Json) -> bool:
        """``singleEvents=true`` lists a series' instances, ``false`` the series itself."""
        if self.single_events == "true":
            return "recurrence" not in event
        return "recurringEventId" not in event

    def _matches(self, event: Json) -> bool:
        if not self.shows(event):
            return False
        if event["status"] == "cancelled" and not self.show_deleted and self.updated_min is None:
            return False  # with updatedMin, events deleted since are always included
        if self.updated_min is not None and _parse_time(event["updated"]) < self.updated_min:
            return False
        start, end = _span(event, self.zone)
        if self.time_min is not None and end <= self.time_min:
            return False
        if self.time_max is not None and start >= self.time_max:
            return False
        if self.ical_uid is not None and event.get("iCalUID") != self.ical_uid:
            return False
        if self.text is not None:
            words = " ".join(
                [str(event.get(key, "")) for key in ("summary", "description", "location")]
                + [attendee.get("email", "") for attendee in event.get("attendees", [])]
            ).lower()
            if self.text.lower() not in words:
                return False
        extended = event.get("extendedProperties", {})
        for kind, wanted in (("private", self.private), ("shared", self.shared)):
            if any(extended.get(kind, {}).get(key) != value for key, value in wanted):
                return False
        return True

    def ordered(self, events: list[Json]) -> list[Json]:
        if self.order_by == "startTime":
            return sorted(events, key=lambda event: _span(event, self.zone)[0])
        if self.order_by == "updated":
            return sorted(events, key=lambda event: _parse_time(event["updated"]))
        return events


def _span(event: Json, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """When the event starts and ends, in UTC; an all-day event spans its days in ``zone``."""
    start, end = event["start"], event["end"]
    if "dateTime" in start:
        return _parse_time(start["dateTime"]), _parse_time(end["dateTime"])
    midnight = datetime.min.time()
    return (
        datetime.combine(date.fromisoformat(start["date"]), midnight, zone).astimezone(UTC),
        datetime.combine(date.fromisoformat(end["date"]), midnight, zone).astimezone(UTC),
    )


def _busy(event: Json) -> bool:
    """Whether freeBusy counts the event: not deleted, not transparent, not declined by the owner."""
    if event["status"] == "cancelled" or event.get("transparency") == "transparent":
        return False
    own = [attendee for attendee in event.get("attendees", []) if attendee.get("self")]
    return not (own and own[0].get("responseStatus") == "declined")


def _shown_time(moment: Json, zone: ZoneInfo) -> Json:
    """A start or end as events.list shows it: a time in the answer's zone, with its offset."""
    if "dateTime" not in moment:
        return moment
    local = _parse_time(moment["dateTime"]).astimezone(zone).isoformat()
    return {**moment, "dateTime": local.replace("+00:00", "Z") if zone.key == "UTC" else local}


def _owner_times(start: datetime | date, end: datetime | date, all_day: bool, zone: ZoneInfo) -> Json:
    if all_day:  # dates as given (the end is exclusive), or the days that datetimes touch in the zone
        first = start.astimezone(zone).date() if isinstance(start, datetime) else start
        last = end
        if isinstance(end, datetime):
            local_end = end.astimezone(zone)
            last = local_end.date() + timedelta(days=0 if local_end.time() == datetime.min.time() else 1)
        assert first < last, "an all-day event ends on a later date (the end date is exclusive)"
        return {"start": {"date": first.isoformat()}, "end": {"date": last.isoformat()}}
    assert isinstance(start, datetime), "a timed event needs datetimes"
    assert isinstance(end, datetime), "a timed event needs datetimes"
    assert start.tzinfo is not None
    assert end.tzinfo is not None
    assert start < end
    return {
        "start": {"dateTime": start.astimezone(zone).isoformat(), "timeZone": zone.key},
        "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": zone.key},
    }


def _owner_event(calendar_id: str, event_id: str, status: str, times: Json, event_type: str) -> Json:
    """An event made in Google's UI by the calendar's owner, as Google keeps it."""
    now = _rfc3339(datetime.now(UTC))
    return {
        "kind": "calendar#event",
        "etag": _etag(),
        "id": event_id,
        "status": status,
        "created": now,
        "updated": now,
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "creator": {"email": calendar_id, "self": True},
        "organizer": {"email": calendar_id, "self": True},
        **times,
        "eventType": event_type,
    }


def _people(calendar_id: str, organizer: str | None, guests: Sequence[str], own_response: str) -> Json:
    """``organizer``, ``creator`` and ``attendees`` as Google shows them on the calendar's copy:
    the organizer is an attendee too; ``self`` marks the calendar's own entries."""
    if organizer is None:
        return {
            "attendees": [
                {"email": calendar_id, "organizer": True, "self": True, "responseStatus": "accepted"},
                *({"email": guest, "responseStatus": "needsAction"} for guest in guests),
            ]
        }
    return {
        "creator": {"email": organizer},
        "organizer": {"email": organizer},
        "attendees": [
            {"email": organizer, "organizer": True, "responseStatus": "accepted"},
            {"email": calendar_id, "self": True, "responseStatus": own_response},
            *({"email": guest, "responseStatus": "needsAction"} for guest in guests),
        ],
    }


def _calendar_resource(calendar: _Calendar) -> Json:
    return {"kind": "calendar#calendar", "id": calendar.id, "summary": calendar.summary, "timeZone": calendar.time_zone}


def _new_event_id() -> str:
    return base64.b32hexencode(secrets.token_bytes(10)).decode().lower()


def _opaque_id(length: int) -> str:
    return base64.b32hexencode(secrets.token_bytes(length)).decode().lower()[:length]


def _opaque_token() -> str:
    """A sync or page token: like Google's, base64 with characters a client must URL-encode."""
    return base64.b64encode(secrets.token_bytes(25)).decode()


def _etag() -> str:
    return f'"{secrets.randbelow(10**16):016d}"'


def _epoch_ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def _error(status: int, reason: str, message: str, *, domain: str = "global") -> Response:
    return JSONResponse(google_error(status, reason, message, domain=domain), status_code=status)


def _bad_request(reason: str, message: str, *, domain: str = "global") -> Response:
    return _error(400, reason, message, domain=domain)


def _not_found() -> Response:
    return _error(404, "notFound", "Not Found")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a time without an offset")
    return moment.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
