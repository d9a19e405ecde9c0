"""A Microsoft identity platform and Microsoft Graph double, over HTTPS, for the Microsoft adapter's tests.

msal insists on HTTPS, so the double serves a certificate from the session's own CA
(``make_tls_files``); clients trust it only through ``ca_bundle``.

Identity platform (v2.0 endpoints under ``/{tenant}``), as msal 1.39 uses them with
``instance_discovery=False``: ``GET /{tenant}/v2.0/.well-known/openid-configuration``,
``GET /{tenant}/oauth2/v2.0/authorize`` (a signed-in browser session, the ``ESTSAUTH`` cookie,
gets a 302 back to the redirect URI with ``code`` and ``state``) and ``POST
/{tenant}/oauth2/v2.0/token`` (authorization_code with PKCE S256, refresh_token with rotation;
errors as ``{"error", "error_description": "AADSTS…", "error_codes": […]}``). The id_token is an
unsigned but well-formed JWT: msal decodes it without checking signatures.

Graph (``/v1.0``): ``/me/calendars``, ``/me/calendars/{id}/calendarView`` (honours ``Prefer:
outlook.timezone``), ``POST /me/calendars/{id}/events`` (a repeated ``transactionId`` answers the
event made the first time), ``PATCH`` / ``DELETE /me/events/{id}``. Collections are paged with
``@odata.nextLink`` (``$skip``) at ``page_size`` items. A missing, unknown, expired or revoked
Bearer token gets 401 ``InvalidAuthenticationToken``. Errors are ``{"error": {"code", "message",
"innerError"}}``.

It also speaks change tracking as Graph's pages "event: delta", "Get incremental changes to events
in a calendar view", "subscription resource type", "Receive change notifications through
webhooks" and "Reduce missing subscriptions and change notifications" describe it:

* ``GET /me/calendars/{id}/calendarView/delta`` (and ``/me/calendarView/delta`` for the default
  calendar). The first call of a round needs ``startDateTime`` and ``endDateTime``; the window is
  then fixed in the opaque ``$skiptoken`` / ``$deltatoken`` of ``@odata.nextLink`` /
  ``@odata.deltaLink`` (a window sent again beside a token is ignored). Pages hold ``Prefer:
  odata.maxpagesize`` events (``delta_page_size`` without it), times in ``Prefer:
  outlook.timezone`` (UTC without it). ``$select``, ``$filter``, ``$expand``, ``$orderby``,
  ``$search``, ``$top`` and any other ``$`` option get 400 ``ErrorInvalidUrlQuery`` (the words
  Graph uses for the CalendarView resource). A delta token answers every event of the calendar
  changed since it: events now in the window in full, deleted ones and changed ones outside the
  window as ``{"@odata.type", "id", "@removed": {"reason": "deleted"}}``. Full events carry what
  Graph returns without ``$select``: ``attendees`` (each with its ``status``), ``isOrganizer``,
  ``organizer``, ``responseStatus``, ``isAllDay``, ``showAs``, ``type`` and ``seriesMasterId`` (a
  series is listed as its occurrences, never its master), and ``transactionId`` (null unless an app
  set one). Each calendar counts
  its changes (the helpers' and Graph writes alike); ``expire_delta_tokens`` makes every token
  issued so far answer 410 ``SyncStateNotFound``.
* ``POST /subscriptions`` for ``me/events`` (the default calendar) or ``me/calendars/{id}/events``
  (or ``me/calendars('{id}')/events``) of the caller's own calendars (delegated access cannot
  subscribe to a shared one). Graph first validates ``notificationUrl`` (and
  ``lifecycleNotificationUrl``): a POST with
  ``?validationToken=…`` that must be answered 200, ``text/plain``, with the decoded token within
  ``validation_timeout`` seconds, or there is no subscription (400 ``ValidationError``, or
  ``InvalidRequest`` "…timed out."). ``changeType``, ``clientState`` (128 characters at most),
  ``latestSupportedTlsVersion`` and ``expirationDateTime`` (at most ``max_expiration_minutes``
  ahead, the limit live Graph reports for Outlook events) are checked as Graph checks them;
  ``require_https`` refuses plain-http addresses as Graph always does. ``GET``/``PATCH``
  (renew, or move ``notificationUrl``)/``DELETE /subscriptions/{id}``, ``POST
  /subscriptions/{id}/reauthorize`` and ``GET /subscriptions``; a subscription that is unknown,
  expired, removed or another mailbox's is 404 ``ResourceNotFound``.
* Every change to an event of a subscribed calendar posts a ``changeNotificationCollection``
  (``{"value": [{"subscriptionId", "subscriptionExpirationDateTime", "changeType", "resource",
  "resourceData", "clientState", "tenantId"}]}``) from a background thread; items for one
  address queued before the thread picks the first of them up go in one POST
  (``hold_notifications`` makes that deterministic). Lifecycle notifications
  (``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``) go to
  ``lifecycleNotificationUrl`` when one was given. While a reauthorization is pending, change
  notifications are lost, as Graph warns they eventually are. Deliveries are recorded in
  ``notifications_sent``; expired and removed subscriptions deliver nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from providers.microsoft import MicrosoftConfig
from tests.doubles.notifier import Notifier
from tests.doubles.server import DoubleServer, TLSFiles

Json = dict[str, Any]

CLIENT_ID = "6f1c2a4e-0b8d-4c52-9a0e-kokous-test"
CLIENT_SECRET = "double-client-secret"
TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
REDIRECT_URI = "https://kokous.test/oauth/microsoft/callback"
_TENANTS = {"common", "organizations", TENANT_ID}
_RESERVED_SCOPES = {"offline_access", "openid", "profile"}
_NOT_IN_STORE = "The specified object was not found in the store."
_WINDOW_REQUIRED = (
    "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime."
)
# calendarView delta: what Graph refuses beside change tracking, in its own words.
_DELTA_NOT_SUPPORTED = ("$orderby", "$filter", "$select", "$expand", "$search")
_DELTA_TOKENS = ("$skiptoken", "$deltatoken")
DELTA_PAGE_SIZE = 10
# Subscriptions.
CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
MAX_EXPIRATION_MINUTES = 10070  # what live Graph answers for Outlook events ("…can only be 10070 minutes…")
CLIENT_STATE_MAX = 128
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2")
_RESOURCE = re.compile(r"^/?me/(?:events|calendars/(?P<id>[^/()']+)/events|calendars\('(?P<quoted>[^/']+)'\)/events)$")
_PAYLOAD = "Could not process subscription creation payload. Are all property names spelled and camelCased properly?"
_VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
)


def _zone(name: str) -> ZoneInfo:
    """A Windows or IANA zone name as zoneinfo, by CLDR's table (the same source Graph follows)."""
    return ZoneInfo(MS_TIMEZONE_TO_IANA_MAP.get(name, name))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    inner = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "request-id": str(uuid.uuid4())}
    return JSONResponse({"error": {"code": code, "message": message, "innerError": inner}}, status, headers)


def _graph_time(moment: datetime) -> str:
    """A time as Graph writes it: UTC, seven fractional digits, ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _not_found() -> JSONResponse:
    return _graph_error(404, "ErrorItemNotFound", _NOT_IN_STORE)


def _no_subscription() -> JSONResponse:
    return _graph_error(404, "ResourceNotFound", "The object was not found.")


def _oauth_error(status: int, error: str, code: int, text: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {uuid.uuid4()} Timestamp: {datetime.now(UTC)}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
        status,
    )


@dataclass
class _Account:
    email: str
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    revoked: bool = False


@dataclass
class _Calendar:
    id: str
    mailbox: str
    name: str
    can_edit: bool
    owner_email: str
    is_default: bool

    def resource(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "color": "auto",
            "hexColor": "",
            "isDefaultCalendar": self.is_default,
            "changeKey": _b64url(self.id.encode())[:16],
            "canShare": self.owner_email == self.mailbox,
            "canViewPrivateItems": self.owner_email == self.mailbox,
            "canEdit": self.can_edit,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "isTallyingResponses": True,
            "isRemovable": not self.is_default,
            "owner": {"name": self.owner_email.split("@")[0], "address": self.owner_email},
        }


@dataclass
class _Event:
    id: str
    calendar_id: str
    mailbox: str
    start: datetime  # aware UTC
    end: datetime
    zone: str  # the zone it was written in (Windows or IANA name)
    show_as: str = "busy"
    cancelled: bool = False
    subject: str = ""
    transaction_id: str | None = None
    extra: Json = field(default_factory=dict)  # body, location, attendees as written
    all_day: bool = False
    organizer: str | None = None  # someone else's invitation: the organizer's address
    response: str = "organizer"  # the mailbox's own response (``responseStatus``)
    series_master_id: str | None = None  # an occurrence of a series: its master (never listed itself)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: int = 0  # how many times it changed: its etag and changeKey follow it

    @property
    def change_key(self) -> str:
        return _b64url(hashlib.sha256(f"{self.id}:{self.version}".encode()).digest())[:16]

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    def touched(self) -> None:
        self.version += 1
        self.modified = datetime.now(UTC)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and self.end > start

    def resource(self, zone_name: str | None = "UTC") -> Json:
        """The Graph event with times in ``zone_name`` (None: in the zone it was written in)."""
        shown = zone_name or self.zone
        return {
            "@odata.etag": self.etag,
            "id": self.id,
            "createdDateTime": _graph_time(self.created),
            "lastModifiedDateTime": _graph_time(self.modified),
            "changeKey": self.change_key,
            "transactionId": self.transaction_id,
            "originalStartTimeZone": self.zone,
            "originalEndTimeZone": self.zone,
            "iCalUId": "040000008200E00074C5B7101A82E008" + self.id[-16:],
            "subject": self.subject,
            "isAllDay": self.all_day,
            "isCancelled": self.cancelled,
            "isOrganizer": self.organizer is None,
            "showAs": self.show_as,
            "type": "singleInstance" if self.series_master_id is None else "occurrence",
            "seriesMasterId": self.series_master_id,
            "responseStatus": {"response": self.response, "time": "0001-01-01T00:00:00Z"},
            "start": self._time(self.start, shown),
            "end": self._time(self.end, shown),
            "organizer": {
                "emailAddress": {"name": self.organizer or self.mailbox, "address": self.organizer or self.mailbox}
            },
            "body": {"contentType": "text", "content": ""},
            "location": {"displayName": ""},
            **self.extra,
            # As Graph answers them: each with the status of its response ("none" until one comes).
            "attendees": [
                {"status": {"response": "none", "time": "0001-01-01T00:00:00Z"}, **attendee}
                for attendee in self.extra.get("attendees", [])
            ],
        }

    @staticmethod
    def _time(moment: datetime, zone_name: str) -> Json:
        local = moment.astimezone(_zone(zone_name)).replace(tzinfo=None)
        return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


@dataclass
class _Code:
    email: str
    redirect_uri: str
    challenge: str
    scope: str
    nonce: str | None


@dataclass
class _ChangeLog:
    """What changed on one calendar, for delta: change N is the calendar's Nth change."""

    changes: int = 0
    changed_at: dict[str, int] = field(default_factory=dict)  # event id -> its last change, oldest first
    generation: int = 0  # delta tokens of an older generation are gone (410)


@dataclass(frozen=True)
class _DeltaRound:
    """What a ``$skiptoken`` or ``$deltatoken`` stands for: a window, and where its round is."""

    kind: str  # "skip" or "delta"
    mailbox: str
    calendar_id: str
    start: datetime
    end: datetime
    generation: int
    watermark: int  # the round reports changes up to this one; its delta token, the changes after it
    ids: tuple[str, ...] = ()  # the events the round answers, in order (skip tokens only)
    offset: int = 0


@dataclass
class _Subscription:
    id: str
    mailbox: str
    calendar_id: str
    resource: str  # as the client wrote it
    change_type: str  # as the client wrote it
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    tls_version: str
    removed: bool = False
    reauthorization_required: bool = False

    @property
    def change_types(self) -> set[str]:
        return set(self.change_type.split(","))

    def live(self) -> bool:
        return not self.removed and self.expiration > datetime.now(UTC)


@dataclass(frozen=True)
class GraphNotification:
    """One item of a change or lifecycle notification the double posted (or tried to)."""

    subscription_id: str
    kind: str  # "change", or the lifecycle event: "reauthorizationRequired", "subscriptionRemoved", "missed"
    change_type: str | None  # "created", "updated" or "deleted" for a change
    url: str
    batch: int  # which POST carried it, counted from 1: items posted together share it
    item: Json
    status: int | None  # what the receiver answered; None when it could not be reached
    error: str | None = None


@dataclass(frozen=True)
class ValidationRequest:
    """One validation request Graph made before creating or moving a subscription, and its outcome."""

    url: str  # the address validated, without the validation token
    token: str  # the token sent (decoded)
    status: int | None
    content_type: str | None
    body: str | None
    error: str | None
    accepted: bool


@dataclass(frozen=True)
class _Outgoing:
    subscription: _Subscription
    kind: str
    change_type: str | None
    url: str  # where it goes, as the subscription said when it was queued
    item: Json


class MicrosoftDouble(DoubleServer):
    """The identity platform and Graph for accounts the test adds; state is kept until ``stop``."""

    def __init__(
        self,
        tls: TLSFiles,
        *,
        page_size: int = 2,
        token_lifetime: int = 3600,
        require_https: bool = False,
        validation_timeout: float = 10.0,
        notification_timeout: float = 3.0,
    ) -> None:
        self.tls = tls
        self.page_size = page_size
        self.token_lifetime = token_lifetime  # seconds; under 300 msal treats a new token as expired
        self.honours_timezone_preference = True  # False: answer times in each event's own zone
        self.delta_page_size = DELTA_PAGE_SIZE  # calendarView delta pages without Prefer: odata.maxpagesize
        self.require_https = require_https  # Graph refuses http:// addresses; tests on loopback use http
        self.validation_timeout = validation_timeout  # seconds the validation request waits (Graph: 10)
        self.notification_timeout = notification_timeout  # seconds a notification POST waits (Graph: 3)
        self.max_expiration_minutes = MAX_EXPIRATION_MINUTES
        self._state = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._calendars: dict[str, _Calendar] = {}
        self._events: dict[str, _Event] = {}
        self._sessions: dict[str, str] = {}  # ESTSAUTH cookie -> email
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, str] = {}  # token -> email
        self._access_tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expires at)
        self._logs: dict[str, _ChangeLog] = {}  # calendar id -> its changes
        self._delta_tokens: dict[str, _DeltaRound] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._validations: list[ValidationRequest] = []
        self._batches = 0  # POSTs made by the notifier thread
        self._client_tls = ssl.create_default_context(cafile=str(tls.ca_path))
        self._notifier: Notifier[_Outgoing, GraphNotification] = Notifier(self._send, name="graph-notifications")
        subscription = "/v1.0/subscriptions/{subscription_id}"
        self._routes = [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration),
            Route("/{tenant}/oauth2/v2.0/authorize", self._authorize),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            Route("/v1.0/me/calendars", self._calendar_list, methods=["GET"]),
            Route("/v1.0/me/calendars", self._calendar_create, methods=["POST"]),
            Route("/v1.0/me/calendars/{calendar_id}", self._calendar_delete, methods=["DELETE"]),
            Route("/v1.0/me/calendars/{calendar_id}/calendarView", self._calendar_view),
            Route("/v1.0/me/calendars/{calendar_id}/calendarView/delta", self._calendar_view_delta),
            Route("/v1.0/me/calendarView/delta", self._calendar_view_delta),
            Route("/v1.0/me/calendars/{calendar_id}/events", self._create_event, methods=["POST"]),
            Route("/v1.0/me/events/{event_id}", self._event, methods=["PATCH", "DELETE"]),
            Route("/v1.0/subscriptions", self._subscription_list, methods=["GET"]),
            Route("/v1.0/subscriptions", self._subscription_create, methods=["POST"]),
            Route(subscription, self._subscription, methods=["GET", "PATCH", "DELETE"]),
            Route(subscription + "/reauthorize", self._subscription_reauthorize, methods=["POST"]),
        ]
        super().__init__(Starlette(routes=self._routes), tls=tls)

    def stop(self) -> None:
        self._notifier.closing = True  # undelivered notifications are dropped
        super().stop()
        self._notifier.close(timeout=self.notification_timeout + 5)

    @property
    def authority(self) -> str:
        return f"{self.url}/common"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    def config(self, *, timeout: float = 5.0, ca_bundle: str | None = "session CA") -> MicrosoftConfig:
        """Settings pointing the real adapter here, trusting the session's CA (pass None to trust nothing extra)."""
        return MicrosoftConfig(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uri=REDIRECT_URI,
            authority=self.authority,
            graph_url=self.graph_url,
            ca_bundle=str(self.tls.ca_path) if ca_bundle == "session CA" else ca_bundle,
            timeout=timeout,
        )

    # -- helpers for tests --------------------------------------------------------------------

    def add_account(self, email: str) -> None:
        with self._state:
            self._accounts[email] = _Account(email)

    def add_calendar(
        self,
        email: str,
        calendar_id: str,
        name: str,
        *,
        can_edit: bool = True,
        owner_email: str | None = None,
        is_default: bool = False,
    ) -> None:
        with self._state:
            self._calendars[calendar_id] = _Calendar(
                calendar_id, email, name, can_edit, owner_email or email, is_default
            )

    def calendars_named(self, email: str, name: str) -> list[str]:
        """Ids of the mailbox's calendars with this name."""
        with self._state:
            return [item.id for item in self._calendars.values() if item.mailbox == email and item.name == name]

    def unshare(self, calendar_id: str) -> None:
        """The calendar's owner stops sharing it with the mailbox. As Graph does then, it leaves
        ``/me/calendars`` and every request naming it (calendarView, events) answers 404
        ``ErrorItemNotFound``; its events are kept for ``events_on``."""
        with self._state:
            del self._calendars[calendar_id]

    def add_busy(
        self,
        calendar_id: str,
        start: datetime,
        end: datetime,
        *,
        show_as: str = "busy",
        time_zone: str = "UTC",
        cancelled: bool = False,
    ) -> str:
        """An event; naive times are wall-clock times in ``time_zone`` (a Windows or IANA name)."""
        return self.add_event(
            calendar_id, start, end, subject="Busy", show_as=show_as, time_zone=time_zone, cancelled=cancelled
        )

    def add_event(
        self,
        calendar_id: str,
        start: datetime,
        end: datetime,
        *,
        subject: str = "",
        guests: Sequence[str] = (),
        show_as: str = "busy",
        time_zone: str = "UTC",
        cancelled: bool = False,
        all_day: bool = False,
        organizer: str | None = None,
        response: str | None = None,
        transaction_id: str | None = None,
        series_master_id: str | None = None,
    ) -> str:
        """An event the owner makes in Outlook (naive times are wall-clock times in ``time_zone``;
        all-day ones run from midnight to midnight), with ``guests`` as required attendees;
        ``organizer`` makes it someone else's invitation, answered with ``response``. An app
        making events through Graph sets a ``transaction_id``."""
        zone = _zone(time_zone)
        with self._state:
            calendar = self._calendars[calendar_id]
            event = _Event(
                id=self._new_event_id(),
                calendar_id=calendar_id,
                mailbox=calendar.mailbox,
                start=(start if start.tzinfo else start.replace(tzinfo=zone)).astimezone(UTC),
                end=(end if end.tzinfo else end.replace(tzinfo=zone)).astimezone(UTC),
                zone=time_zone,
                show_as=show_as,
                cancelled=cancelled,
                subject=subject,
                transaction_id=transaction_id,
                extra={"attendees": _required(guests)},
                all_day=all_day,
                organizer=organizer,
                response=response or ("organizer" if organizer is None else "notResponded"),
                series_master_id=series_master_id,
            )
            self._events[event.id] = event
            self._changed(event, "created")
            return event.id

    def add_recurring(
        self,
        calendar_id: str,
        start: datetime,
        end: datetime,
        *,
        count: int,
        subject: str = "",
        guests: Sequence[str] = (),
    ) -> list[str]:
        """A weekly series the owner makes in Outlook: calendarView (and its delta) lists each
        occurrence with an id of its own, ``type: occurrence`` and the master's ``seriesMasterId``;
        the master itself is never listed there. The occurrences' ids, in order."""
        master = "AAMkAGI2" + secrets.token_urlsafe(30)
        return [
            self.add_event(
                calendar_id,
                start + timedelta(weeks=week),
                end + timedelta(weeks=week),
                subject=subject,
                guests=guests,
                series_master_id=master,
            )
            for week in range(count)
        ]

    def set_guests(self, event_id: str, guests: Sequence[str]) -> None:
        """The owner changes who is invited to one of their events."""
        with self._state:
            event = self._events[event_id]
            event.extra["attendees"] = _required(guests)
            event.touched()
            self._changed(event, "updated")

    def move_event(self, event_id: str, start: datetime, end: datetime) -> None:
        """The owner drags an event to another time; naive times are wall-clock times in its zone."""
        with self._state:
            event = self._events[event_id]
            zone = _zone(event.zone)
            event.start = (start if start.tzinfo else start.replace(tzinfo=zone)).astimezone(UTC)
            event.end = (end if end.tzinfo else end.replace(tzinfo=zone)).astimezone(UTC)
            assert event.start < event.end
            event.touched()
            self._changed(event, "updated")

    def set_show_as(self, event_id: str, show_as: str) -> None:
        """The owner marks an event free, tentative, busy, oof or workingElsewhere."""
        assert show_as in ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"), show_as
        with self._state:
            event = self._events[event_id]
            event.show_as = show_as
            event.touched()
            self._changed(event, "updated")

    def delete_event(self, event_id: str) -> None:
        """The owner deletes an event."""
        with self._state:
            event = self._events.pop(event_id)
            self._changed(event, "deleted")

    def expire_delta_tokens(self, calendar_id: str) -> None:
        """Graph drops the calendar's sync state: every skip or delta token issued so far answers 410."""
        with self._state:
            self._logs.setdefault(calendar_id, _ChangeLog()).generation += 1

    def subscriptions(self) -> list[Json]:
        """The live subscriptions, as Graph shows them."""
        with self._state:
            return [self._subscription_json(item) for item in self._subscriptions.values() if item.live()]

    def expire_subscription(self, subscription_id: str) -> None:
        """The subscription reaches its expiration: Graph delivers nothing more and forgets it."""
        with self._state:
            item = self._subscriptions[subscription_id]
            item.expiration = min(item.expiration, datetime.now(UTC) - timedelta(milliseconds=1))

    def require_reauthorization(self, subscription_id: str) -> None:
        """Graph challenges the subscription: ``reauthorizationRequired`` is posted, and change
        notifications are lost until the app reauthorizes (``/reauthorize``) or renews it."""
        with self._state:
            item = self._live_subscription(subscription_id)
            item.reauthorization_required = True
            self._lifecycle(item, "reauthorizationRequired")

    def remove_subscription(self, subscription_id: str) -> None:
        """Graph removes the subscription (say, the owner's password changed): ``subscriptionRemoved``."""
        with self._state:
            item = self._live_subscription(subscription_id)
            item.removed = True
            self._lifecycle(item, "subscriptionRemoved")

    def miss_notifications(self, subscription_id: str) -> None:
        """Graph could not deliver some change notifications (throttling, say): ``missed``."""
        with self._state:
            self._lifecycle(self._live_subscription(subscription_id), "missed")

    @property
    def notifications_sent(self) -> list[GraphNotification]:
        """Every notification item delivered (or attempted), in the order they were sent."""
        return self._notifier.records

    def wait_for_notifications(
        self, count: int, *, subscription_id: str | None = None, kind: str | None = None, timeout: float = 5.0
    ) -> list[GraphNotification]:
        """Wait until ``count`` notification items (of the subscription, of the kind) were sent; all of them."""
        return self._notifier.wait_for(
            count,
            lambda sent: (
                (subscription_id is None or sent.subscription_id == subscription_id)
                and (kind is None or sent.kind == kind)
            ),
            timeout=timeout,
        )

    def settle_notifications(self, timeout: float = 5.0) -> None:
        """Wait until every notification queued so far has been delivered or dropped."""
        self._notifier.settle(timeout=timeout)

    @contextmanager
    def hold_notifications(self) -> Iterator[None]:
        """Inside the block nothing is posted; after it, what was queued for one address goes in one POST."""
        with self._notifier.hold():
            yield

    @property
    def validation_requests(self) -> list[ValidationRequest]:
        with self._state:
            return list(self._validations)

    def request_counts(self) -> dict[str, int]:
        """Recorded requests (planned faults included) by route, as ``"GET /v1.0/me/calendarView/delta"``."""
        counts: Counter[str] = Counter()
        for request in self.requests:
            for route in self._routes:
                if route.path_regex.match(request.path) and request.method in (route.methods or ()):
                    counts[f"{request.method} {route.path}"] += 1
                    break
        return dict(counts)

    def events_on(self, calendar_id: str) -> list[Json]:
        """The calendar's events as Graph shows them, times in UTC, in creation order."""
        with self._state:
            return [event.resource() for event in self._events.values() if event.calendar_id == calendar_id]

    def revoke(self, email: str) -> None:
        """The account's grant is revoked (password changed): its tokens stop working."""
        with self._state:
            self._accounts[email].revoked = True
            self._access_tokens = {token: value for token, value in self._access_tokens.items() if value[0] != email}

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired for Graph (msal still believes they are good)."""
        with self._state:
            self._access_tokens = {token: (email, 0.0) for token, (email, _) in self._access_tokens.items()}

    def consent(self, authorization_url: str, account_email: str) -> str:
        """A browser signed in as ``account_email`` opens the URL and consents; returns where it is sent back."""
        session = secrets.token_urlsafe(16)
        with self._state:
            self._sessions[session] = account_email
        context = ssl.create_default_context(cafile=str(self.tls.ca_path))
        with httpx.Client(verify=context, follow_redirects=False) as browser:
            response = browser.get(authorization_url, headers={"Cookie": f"ESTSAUTH={session}"})
        assert response.status_code == 302, response.text
        return response.headers["location"]

    # -- identity platform --------------------------------------------------------------------

    async def _openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant not in _TENANTS:
            return _oauth_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self.url}/{tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.url}/{{tenantid}}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.graph_url}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "oid",
                ],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": "graph.microsoft.com",
            }
        )

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        if params.get("client_id") != CLIENT_ID:
            return HTMLResponse("AADSTS700016: Application not found in the directory.", 400)
        if params.get("response_type") != "code" or not params.get("redirect_uri"):
            return HTMLResponse("AADSTS900144: The request body must contain 'response_type' and 'redirect_uri'.", 400)
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return HTMLResponse("AADSTS501491: Invalid size of Code_Challenge parameter.", 400)
        with self._state:
            email = self._sessions.get(request.cookies.get("ESTSAUTH", ""))
            if email is None or email not in self._accounts:
                return HTMLResponse("<title>Sign in to your account</title>")
            code = "0.A" + secrets.token_urlsafe(24)
            self._codes[code] = _Code(
                email, params["redirect_uri"], params["code_challenge"], params.get("scope", ""), params.get("nonce")
            )
        answer = {"code": code, "state": params.get("state", ""), "session_state": str(uuid.uuid4())}
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(answer)}", 302)

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _oauth_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if form.get("grant_type") == "authorization_code":
            return self._redeem_code(form)
        if form.get("grant_type") == "refresh_token":
            return self._redeem_refresh_token(form)
        return _oauth_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")

    def _redeem_code(self, form: dict[str, str]) -> Response:
        with self._state:
            code = self._codes.pop(form.get("code", ""), None)
        if code is None:
            return _oauth_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
        if form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(400, "invalid_grant", 50011, "The redirect URI does not match the one in the request.")
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != code.challenge:
            return _oauth_error(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge.")
        return self._issue(code.email, form.get("scope", code.scope), code.nonce)

    def _redeem_refresh_token(self, form: dict[str, str]) -> Response:
        with self._state:
            email = self._refresh_tokens.get(form.get("refresh_token", ""))
            account = self._accounts.get(email or "")
        if account is None:
            return _oauth_error(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if account.revoked:
            return _oauth_error(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
            )
        return self._issue(account.email, form.get("scope", ""), None)

    def _issue(self, email: str, scope: str, nonce: str | None) -> Response:
        access, refresh = "EwB" + secrets.token_urlsafe(32), "M.C5" + secrets.token_urlsafe(32)
        with self._state:
            account = self._accounts[email]
            self._access_tokens[access] = (email, time.time() + self.token_lifetime)
            self._refresh_tokens[refresh] = email
        granted = " ".join(name for name in scope.split() if name not in _RESERVED_SCOPES)
        return JSONResponse(
            {
                "token_type": "Bearer",
                "scope": f"{granted} openid profile",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": access,
                "refresh_token": refresh,
                "id_token": self._id_token(account, nonce),
                "client_info": _b64url(json.dumps({"uid": account.oid, "utid": TENANT_ID}).encode()),
            }
        )

    def _id_token(self, account: _Account, nonce: str | None) -> str:
        now = int(time.time())
        claims: Json = {
            "aud": CLIENT_ID,
            "iss": f"{self.url}/{TENANT_ID}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": account.email.split("@")[0],
            "oid": account.oid,
            "preferred_username": account.email,
            "sub": _b64url(hashlib.sha256(account.oid.encode()).digest()),
            "tid": TENANT_ID,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        header = _b64url(json.dumps({"typ": "JWT", "alg": "none"}).encode())
        return f"{header}.{_b64url(json.dumps(claims).encode())}."

    # -- Graph --------------------------------------------------------------------------------

    def _mailbox(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._state:
            email, expires_at = self._access_tokens.get(token, ("", 0.0))
        return email if scheme == "Bearer" and expires_at > time.time() else None

    def _unauthenticated(self) -> JSONResponse:
        return _graph_error(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
            {"WWW-Authenticate": f'Bearer realm="", authorization_uri="{self.authority}/oauth2/authorize"'},
        )

    def _page(self, request: Request, items: list[Json]) -> JSONResponse:
        skip = int(request.query_params.get("$skip", "0"))
        size = min(self.page_size, int(request.query_params.get("$top", str(self.page_size))))
        selected = request.query_params.get("$select")
        fields = set(selected.split(",")) | {"id", "@odata.etag"} if selected else None
        page = [{key: value for key, value in item.items() if fields is None or key in fields} for item in items]
        body: Json = {"@odata.context": f"{self.graph_url}/$metadata#Collection", "value": page[skip : skip + size]}
        if skip + size < len(items):
            query = {key: value for key, value in request.query_params.items() if key != "$skip"}
            body["@odata.nextLink"] = (
                f"{self.url}{quote(request.url.path)}?{urlencode({**query, '$skip': skip + size})}"
            )
        return JSONResponse(body)

    def _own_calendar(self, mailbox: str, calendar_id: str) -> _Calendar | None:
        calendar = self._calendars.get(calendar_id)
        return calendar if calendar and calendar.mailbox == mailbox else None

    async def _calendar_list(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        with self._state:
            items = [calendar.resource() for calendar in self._calendars.values() if calendar.mailbox == mailbox]
        return self._page(request, items)

    async def _calendar_create(self, request: Request) -> Response:
        """``POST /me/calendars``: a calendar in the mailbox's default group (a name is required,
        and two calendars of one mailbox never share a name)."""
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        body = await request.json()
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            return _graph_error(400, "ErrorInvalidRequest", "The Name property is required.")
        with self._state:
            if any(item.mailbox == mailbox and item.name == name for item in self._calendars.values()):
                return _graph_error(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            calendar = _Calendar(
                "AAMkAGI2cal" + secrets.token_urlsafe(20), mailbox, name, True, mailbox, is_default=False
            )
            self._calendars[calendar.id] = calendar
        return JSONResponse(calendar.resource(), 201)

    async def _calendar_delete(self, request: Request) -> Response:
        """``DELETE /me/calendars/{id}``: the default calendar cannot be deleted."""
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        with self._state:
            calendar = self._own_calendar(mailbox, request.path_params["calendar_id"])
            if calendar is None:
                return _not_found()
            if calendar.is_default:
                return _graph_error(400, "ErrorInvalidRequest", "The default calendar cannot be deleted.")
            del self._calendars[calendar.id]
        return Response(status_code=204)

    async def _calendar_view(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        preferred = self._preferred_zone(request)
        try:
            window_start = self._moment(request.query_params["startDateTime"], preferred or "UTC")
            window_end = self._moment(request.query_params["endDateTime"], preferred or "UTC")
        except (KeyError, ValueError):
            return _graph_error(400, "ErrorInvalidParameter", _WINDOW_REQUIRED)
        shown = (preferred or "UTC") if self.honours_timezone_preference else None
        with self._state:
            if self._own_calendar(mailbox, request.path_params["calendar_id"]) is None:
                return _not_found()
            events = sorted(
                (
                    event
                    for event in self._events.values()
                    if event.calendar_id == request.path_params["calendar_id"]
                    and event.start < window_end
                    and event.end > window_start
                ),
                key=lambda event: event.start,
            )
            items = [event.resource(shown) for event in events]
        return self._page(request, items)

    @staticmethod
    def _preferences(request: Request) -> dict[str, str]:
        """The ``Prefer`` header(s) as name -> value (quotes taken off)."""
        found: dict[str, str] = {}
        for header in request.headers.getlist("prefer"):
            for preference in header.split(","):
                name, _, value = preference.strip().partition("=")
                if name:
                    found[name.lower()] = value.strip().strip('"')
        return found

    @classmethod
    def _preferred_zone(cls, request: Request) -> str | None:
        return cls._preferences(request).get("outlook.timezone")

    @staticmethod
    def _moment(text: str, zone_name: str) -> datetime:
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=_zone(zone_name))).astimezone(UTC)

    def _parse_event(self, body: Json) -> tuple[Json, JSONResponse | None]:
        """Event fields from a request body, with times as aware UTC; or the 400 Graph answers."""
        fields: Json = {}
        for key in ("start", "end"):
            if key not in body:
                continue
            value = body[key]
            try:
                fields[key] = self._moment(value["dateTime"], value["timeZone"])
                fields["zone"] = value["timeZone"]
            except (KeyError, TypeError, ValueError):
                message = f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{value}'."
                return {}, _graph_error(400, "TimeZoneNotSupportedException", message)
        for attendee in body.get("attendees", []):
            if attendee.get("type") not in {"required", "optional", "resource"} or "@" not in str(
                attendee.get("emailAddress", {}).get("address", "")
            ):
                return {}, _graph_error(400, "ErrorInvalidRequest", "Attendee type and email address are required.")
        fields["extra"] = {key: body[key] for key in ("body", "location", "attendees") if key in body}
        if "subject" in body:
            fields["subject"] = str(body["subject"])
        return fields, None

    async def _create_event(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        body = await request.json()
        fields, refusal = self._parse_event(body)
        if refusal is not None:
            return refusal
        if "start" not in fields or "end" not in fields:
            return _graph_error(400, "ErrorInvalidRequest", "Start and End are required.")
        with self._state:
            calendar = self._own_calendar(mailbox, request.path_params["calendar_id"])
            if calendar is None:
                return _not_found()
            if not calendar.can_edit:
                return _graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            transaction_id = body.get("transactionId")
            for existing in self._events.values():
                if transaction_id and existing.mailbox == mailbox and existing.transaction_id == transaction_id:
                    return JSONResponse(existing.resource(), 201)
            event = _Event(
                id=self._new_event_id(),
                calendar_id=calendar.id,
                mailbox=mailbox,
                start=fields["start"],
                end=fields["end"],
                zone=fields["zone"],
                subject=fields.get("subject", ""),
                transaction_id=transaction_id,
                extra=fields["extra"],
            )
            self._events[event.id] = event
            self._changed(event, "created")
        location = f"{self.graph_url}/users('{self._accounts[mailbox].oid}')/events('{event.id}')"
        return JSONResponse(event.resource(), 201, {"Location": location})

    async def _event(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        fields, refusal = self._parse_event(await request.json()) if request.method == "PATCH" else ({}, None)
        if refusal is not None:
            return refusal
        with self._state:
            event = self._events.get(request.path_params["event_id"])
            if event is None or event.mailbox != mailbox:
                return _not_found()
            if request.method == "DELETE":
                del self._events[event.id]
                self._changed(event, "deleted")
                return Response(status_code=204)
            event.start = fields.get("start", event.start)
            event.end = fields.get("end", event.end)
            event.zone = fields.get("zone", event.zone)
            event.subject = fields.get("subject", event.subject)
            event.extra.update(fields["extra"])
            event.touched()
            self._changed(event, "updated")
            return JSONResponse(event.resource())

    @staticmethod
    def _new_event_id() -> str:
        return "AAMkAGI2" + secrets.token_urlsafe(30)

    # -- calendarView delta ---------------------------------------------------------------------

    async def _calendar_view_delta(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        params = {key.lower(): value for key, value in request.query_params.items()}  # Graph ignores their case
        refusal = _delta_query_problem(params)
        if refusal is not None:
            return refusal
        preferences = self._preferences(request)
        applied: list[str] = []
        size = self.delta_page_size
        if preferences.get("odata.maxpagesize", "").isdigit() and int(preferences["odata.maxpagesize"]) > 0:
            size = int(preferences["odata.maxpagesize"])
            applied.append(f"odata.maxpagesize={size}")
        zone: str | None = "UTC"
        if "outlook.timezone" in preferences:
            try:
                _zone(preferences["outlook.timezone"])
                zone = preferences["outlook.timezone"]
                applied.append(f'outlook.timezone="{zone}"')
            except (ZoneInfoNotFoundError, ValueError):
                pass  # not a zone Graph knows: it answers in UTC
        if not self.honours_timezone_preference:
            zone = None
        with self._state:
            calendar = self._delta_calendar(mailbox, request.path_params.get("calendar_id"))
            if calendar is None:
                return _not_found()
            log = self._logs.setdefault(calendar.id, _ChangeLog())
            round_ = self._delta_round(mailbox, calendar, log, params)
            if isinstance(round_, Response):
                return round_
            shown = round_.ids[round_.offset : round_.offset + size]
            body: Json = {
                "@odata.context": f"{self.graph_url}/$metadata#Collection(event)",
                "value": [self._delta_item(event_id, round_, zone) for event_id in shown],
            }
            link = f"{self.url}{quote(request.url.path)}"
            token = secrets.token_urlsafe(36)
            if round_.offset + size < len(round_.ids):
                self._delta_tokens[token] = replace(round_, offset=round_.offset + size)
                body["@odata.nextLink"] = f"{link}?$skiptoken={token}"
            else:
                self._delta_tokens[token] = replace(round_, kind="delta", ids=(), offset=0)
                body["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        headers = {"Preference-Applied": ", ".join(applied)} if applied else None
        return JSONResponse(body, headers=headers)

    def _delta_calendar(self, mailbox: str, calendar_id: str | None) -> _Calendar | None:
        if calendar_id is not None:
            return self._own_calendar(mailbox, calendar_id)
        defaults = [item for item in self._calendars.values() if item.mailbox == mailbox and item.is_default]
        return defaults[0] if defaults else None

    def _delta_round(
        self, mailbox: str, calendar: _Calendar, log: _ChangeLog, params: dict[str, str]
    ) -> _DeltaRound | Response:
        """The page of a round to answer: a new round, or where a token says one stands."""
        skip, delta = params.get("$skiptoken"), params.get("$deltatoken")
        if skip is not None and delta is not None:
            return _graph_error(400, "ErrorInvalidUrlQuery", "Only one of $skiptoken and $deltatoken can be given.")
        if skip is None and delta is None:  # the first call of a first round: the window is fixed here
            try:
                start = self._moment(params["startdatetime"], "UTC")
                end = self._moment(params["enddatetime"], "UTC")
            except (KeyError, ValueError):
                return _graph_error(400, "ErrorInvalidParameter", _WINDOW_REQUIRED)
            events = sorted(
                (
                    item
                    for item in self._events.values()
                    if item.calendar_id == calendar.id and item.overlaps(start, end)
                ),
                key=lambda item: item.start,
            )
            ids = tuple(item.id for item in events)
            return _DeltaRound("skip", mailbox, calendar.id, start, end, log.generation, log.changes, ids)
        text, kind = (skip, "skip") if skip is not None else (delta, "delta")
        round_ = self._delta_tokens.get(text or "")
        if round_ is None or round_.kind != kind or (round_.mailbox, round_.calendar_id) != (mailbox, calendar.id):
            return _graph_error(
                400, "ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid."
            )
        if round_.generation != log.generation:
            message = (
                f"The sync state generation is not found; generation={round_.generation};[highest={log.generation}]."
            )
            return _graph_error(410, "SyncStateNotFound", message)
        if kind == "delta":  # a new round: every event of the calendar changed since the token
            changed = tuple(event_id for event_id, number in log.changed_at.items() if number > round_.watermark)
            return replace(round_, kind="skip", ids=changed, offset=0, watermark=log.changes)
        return round_

    def _delta_item(self, event_id: str, round_: _DeltaRound, zone: str | None) -> Json:
        """The event in full when it is in the round's window now; else Graph's ``@removed`` entry."""
        event = self._events.get(event_id)
        if event is not None and event.calendar_id == round_.calendar_id and event.overlaps(round_.start, round_.end):
            return {"@odata.type": "#microsoft.graph.event", **event.resource(zone)}
        return {"@odata.type": "#microsoft.graph.event", "id": event_id, "@removed": {"reason": "deleted"}}

    # -- subscriptions --------------------------------------------------------------------------

    async def _subscription_list(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        with self._state:
            mine = [
                self._subscription_json(item) for item in self._subscriptions.values() if self._touchable(item, mailbox)
            ]
        return JSONResponse({"@odata.context": f"{self.graph_url}/$metadata#subscriptions", "value": mine})

    async def _subscription_create(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        body = _json_object(await request.body())
        if body is None:
            return _graph_error(400, "InvalidRequest", _PAYLOAD)
        for name in ("changeType", "notificationUrl", "resource"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _graph_error(400, "InvalidRequest", _PAYLOAD)
        if "expirationDateTime" not in body:
            return _graph_error(
                400, "InvalidRequest", "expirationDateTime is a required property for subscription creation"
            )
        change_type = body["changeType"]
        for value in change_type.split(","):
            if value not in CHANGE_TYPES:
                return _graph_error(400, "InvalidRequest", f"Invalid 'changeType' attribute: '{value}'.")
        lifecycle_url = body.get("lifecycleNotificationUrl")
        refusal = self._url_problem(body["notificationUrl"], "NotificationUrl") or (
            self._url_problem(lifecycle_url, "LifecycleNotificationUrl") if lifecycle_url is not None else None
        )
        if refusal is not None:
            return refusal
        client_state = body.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > CLIENT_STATE_MAX):
            return _graph_error(400, "InvalidRequest", f"clientState can be {CLIENT_STATE_MAX} characters at most.")
        tls_version = body.get("latestSupportedTlsVersion", "v1_2")
        if tls_version not in TLS_VERSIONS:
            return _graph_error(400, "ValidationError", "Invalid property value for LatestSupportedTlsVersion")
        if body.get("includeResourceData"):
            return _graph_error(
                400, "InvalidRequest", "The double does not speak rich notifications (includeResourceData)."
            )
        expiration = self._expiration(body["expirationDateTime"])
        if isinstance(expiration, Response):
            return expiration
        with self._state:
            calendar = self._subscribed_calendar(mailbox, body["resource"])
        if isinstance(calendar, Response):
            return calendar
        for url in (body["notificationUrl"], lifecycle_url):
            if url is not None and (refusal := await self._validate(url)) is not None:
                return refusal
        item = _Subscription(
            id=str(uuid.uuid4()),
            mailbox=mailbox,
            calendar_id=calendar.id,
            resource=body["resource"],
            change_type=change_type,
            notification_url=body["notificationUrl"],
            lifecycle_url=lifecycle_url,
            client_state=client_state,
            expiration=expiration,
            tls_version=tls_version,
        )
        with self._state:
            self._subscriptions[item.id] = item
            return JSONResponse(self._subscription_json(item, context=True), 201)

    async def _subscription(self, request: Request) -> Response:
        """GET, PATCH (renew, or move notificationUrl) and DELETE of one subscription."""
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        subscription_id = request.path_params["subscription_id"]
        with self._state:
            item = self._subscriptions.get(subscription_id)
            if item is None or not self._touchable(item, mailbox):
                return _no_subscription()
            if request.method == "GET":
                return JSONResponse(self._subscription_json(item, context=True))
            if request.method == "DELETE":
                del self._subscriptions[item.id]
                return Response(status_code=204)
        body = _json_object(await request.body())
        if body is None:
            return _graph_error(400, "InvalidRequest", _PAYLOAD)
        if "lifecycleNotificationUrl" in body:
            message = "lifecycleNotificationUrl cannot be added or changed on an existing subscription."
            return _graph_error(400, "InvalidRequest", message)
        if body.get("expirationDateTime") is None and body.get("notificationUrl") is None:
            message = (
                "Subscription must contain either the 'expirationDateTime' or 'notificationUrl' property and its value."
            )
            return _graph_error(400, "InvalidRequest", message)
        expiration = item.expiration
        if body.get("expirationDateTime") is not None:
            parsed = self._expiration(body["expirationDateTime"])
            if isinstance(parsed, Response):
                return parsed
            expiration = parsed
        url = body.get("notificationUrl")
        if url is not None:
            refusal = self._url_problem(url, "NotificationUrl") or await self._validate(url)
            if refusal is not None:
                return refusal
        with self._state:
            if not self._touchable(item, mailbox) or self._subscriptions.get(item.id) is not item:
                return _no_subscription()
            item.expiration = expiration
            item.notification_url = url or item.notification_url
            item.reauthorization_required = False  # renewing reauthorizes too
            return JSONResponse(self._subscription_json(item, context=True))

    async def _subscription_reauthorize(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        with self._state:
            item = self._subscriptions.get(request.path_params["subscription_id"])
            if item is None or not self._touchable(item, mailbox):
                return _no_subscription()
            item.reauthorization_required = False
        return Response(status_code=204)

    @staticmethod
    def _touchable(item: _Subscription, mailbox: str) -> bool:
        """Whether the caller sees the subscription: a live one it made (Graph forgets expired ones)."""
        return item.mailbox == mailbox and item.live()

    def _live_subscription(self, subscription_id: str) -> _Subscription:
        item = self._subscriptions[subscription_id]
        assert item.live(), f"subscription {subscription_id} is expired or removed"
        return item

    def _url_problem(self, url: object, name: str) -> Response | None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            label = "notification url" if name == "NotificationUrl" else "lifecycle notification url"
            return _graph_error(400, "InvalidRequest", f"Invalid {label}='{url}'.")
        if self.require_https and parts.scheme != "https":
            return _graph_error(400, "InvalidRequest", f"{name} scheme='{parts.scheme}' is not supported.")
        return None

    def _expiration(self, value: object) -> datetime | Response:
        """The asked expiration, or Graph's refusal of it."""
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError(value)
        except ValueError:
            return _graph_error(400, "InvalidRequest", _PAYLOAD)
        now = datetime.now(UTC)
        if moment <= now:
            return _graph_error(400, "ExtensionError", "Subscription expiration must be in the future.")
        if moment > now + timedelta(minutes=self.max_expiration_minutes):
            message = f"Subscription expiration can only be {self.max_expiration_minutes} minutes in the future."
            return _graph_error(400, "ExtensionError", message)
        return moment.astimezone(UTC)

    def _subscribed_calendar(self, mailbox: str, resource: str) -> _Calendar | Response:
        """The calendar a ``resource`` names: ``me/events`` is the default one."""
        match = _RESOURCE.match(resource)
        if match is None:
            reason = f"Unsupported resource '{resource}'."
            return _graph_error(
                400, "ExtensionError", f"Operation: Create; Exception: [Status Code: BadRequest; Reason: {reason}]"
            )
        calendar_id = match.group("id") or match.group("quoted")
        calendar = self._delta_calendar(mailbox, calendar_id)
        if calendar is None:
            reason = _NOT_IN_STORE
            return _graph_error(
                404, "ExtensionError", f"Operation: Create; Exception: [Status Code: NotFound; Reason: {reason}]"
            )
        if calendar.owner_email != mailbox:  # shared with the mailbox: delegated access cannot subscribe
            reason = "Access is denied. Check credentials and try again."
            return _graph_error(
                403, "ExtensionError", f"Operation: Create; Exception: [Status Code: Forbidden; Reason: {reason}]"
            )
        return calendar

    async def _validate(self, url: str) -> Response | None:
        """Graph's validation request to an address; None when the address passed it."""
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        parts = urlsplit(url)
        joiner = "&" if parts.query else "" if url.endswith("?") else "?"
        target = f"{url}{joiner}validationToken={quote(token, safe='')}"
        status = content_type = text = error = None
        try:
            async with httpx.AsyncClient(
                timeout=self.validation_timeout, verify=self._client_tls, trust_env=False
            ) as client:
                answer = await client.post(target, content=b"", headers={"Content-Type": "text/plain; charset=utf-8"})
            status, content_type, text = answer.status_code, answer.headers.get("content-type"), answer.text
        except httpx.TimeoutException as failure:
            error = f"{type(failure).__name__}: {failure}"
            self._record_validation(ValidationRequest(url, token, None, None, None, error, accepted=False))
            return _graph_error(400, "InvalidRequest", "Subscription validation request timed out.")
        except (httpx.HTTPError, OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        accepted = status == 200 and (content_type or "").startswith("text/plain") and text == token
        self._record_validation(ValidationRequest(url, token, status, content_type, text, error, accepted))
        return None if accepted else _graph_error(400, "ValidationError", _VALIDATION_FAILED)

    def _record_validation(self, validation: ValidationRequest) -> None:
        with self._state:
            self._validations.append(validation)

    def _subscription_json(self, item: _Subscription, *, context: bool = False) -> Json:
        answer: Json = {"@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity"} if context else {}
        return answer | {
            "id": item.id,
            "resource": item.resource,
            "applicationId": CLIENT_ID,
            "changeType": item.change_type,
            "clientState": item.client_state,
            "notificationUrl": item.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": item.lifecycle_url,
            "expirationDateTime": _graph_time(item.expiration),
            "creatorId": self._oid(item.mailbox),
            "includeResourceData": False,
            "latestSupportedTlsVersion": item.tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def _oid(self, mailbox: str) -> str:
        account = self._accounts.get(mailbox)
        return account.oid if account else str(uuid.uuid5(uuid.NAMESPACE_DNS, mailbox))

    # -- changes and notifications (callers hold the state lock) -------------------------------

    def _changed(self, event: _Event, change_type: str) -> None:
        """Count a change to the event, for delta, and tell the subscriptions on its calendar."""
        log = self._logs.setdefault(event.calendar_id, _ChangeLog())
        log.changes += 1
        log.changed_at.pop(event.id, None)
        log.changed_at[event.id] = log.changes  # kept oldest first
        resource = f"Users/{self._oid(event.mailbox)}/Events/{event.id}"
        for item in self._subscriptions.values():
            if item.calendar_id != event.calendar_id or not item.live() or change_type not in item.change_types:
                continue
            if item.reauthorization_required:
                continue  # delivery is paused until the app reauthorizes: these are lost
            notification = {
                "subscriptionId": item.id,
                "subscriptionExpirationDateTime": _graph_time(item.expiration),
                "changeType": change_type,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": event.etag,
                    "id": event.id,
                },
                "clientState": item.client_state,
                "tenantId": TENANT_ID,
            }
            outgoing = _Outgoing(item, "change", change_type, item.notification_url, notification)
            self._notifier.queue(outgoing, batch_key=("change", item.notification_url))

    def _lifecycle(self, item: _Subscription, event: str) -> None:
        """Queue a lifecycle notification; a subscription made without a lifecycle address gets none."""
        assert event in LIFECYCLE_EVENTS, event
        if item.lifecycle_url is None:
            return
        notification = {
            "subscriptionId": item.id,
            "subscriptionExpirationDateTime": _graph_time(item.expiration),
            "tenantId": TENANT_ID,
            "clientState": item.client_state,
            "lifecycleEvent": event,
        }
        outgoing = _Outgoing(item, event, None, item.lifecycle_url, notification)
        self._notifier.queue(outgoing, batch_key=("lifecycle", item.lifecycle_url))

    def _send(self, batch: list[_Outgoing]) -> None:
        """The notifier thread's work: one POST of the batch's items that may still go."""
        with self._state:
            going = [outgoing for outgoing in batch if outgoing.kind != "change" or outgoing.subscription.live()]
        if not going or self._notifier.closing:
            return
        url = going[0].url  # a batch is for one address
        self._batches += 1
        status: int | None = None
        error: str | None = None
        try:
            with httpx.Client(timeout=self.notification_timeout, verify=self._client_tls, trust_env=False) as client:
                answer = client.post(
                    url,
                    content=json.dumps({"value": [outgoing.item for outgoing in going]}).encode(),
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
            status = answer.status_code
        except (httpx.HTTPError, OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        for outgoing in going:
            self._notifier.record(
                GraphNotification(
                    subscription_id=outgoing.subscription.id,
                    kind=outgoing.kind,
                    change_type=outgoing.change_type,
                    url=url,
                    batch=self._batches,
                    item=outgoing.item,
                    status=status,
                    error=error,
                )
            )


def _delta_query_problem(params: dict[str, str]) -> Response | None:
    """Graph's refusal of query options that change tracking over calendarView does not take."""
    if any(name in params for name in _DELTA_NOT_SUPPORTED):
        names = ", ".join(_DELTA_NOT_SUPPORTED)
        message = f"The following parameters are not supported with change tracking over the 'CalendarView' resource: '{names}'."
        return _graph_error(400, "ErrorInvalidUrlQuery", message)
    if "$top" in params:
        message = "The '$top' parameter is not supported with change tracking over the 'CalendarView' resource as page size cannot be guaranteed."
        return _graph_error(400, "ErrorInvalidUrlQuery", message)
    others = sorted(name for name in params if name.startswith("$") and name not in _DELTA_TOKENS)
    if others:
        names = ", ".join(others)
        message = f"The following parameters are not supported with change tracking over the 'CalendarView' resource: '{names}'."
        return _graph_error(400, "ErrorInvalidUrlQuery", message)
    return None


def _json_object(raw: bytes) -> Json | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _required(guests: Sequence[str]) -> list[Json]:
    return [{"type": "required", "emailAddress": {"name": guest, "address": guest}} for guest in guests]


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL, as a callback handler receives them."""
    return dict(parse_qsl(urlsplit(url).query))
