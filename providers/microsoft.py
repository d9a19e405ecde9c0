"""Microsoft 365 calendars: sign-in with msal (authorization code flow), calendars through Microsoft Graph.

msal is synchronous, so every msal call runs in a worker thread; Graph is plain JSON over httpx.
The identity endpoints come from the configured authority (``instance_discovery=False``, so only
the configured host is ever contacted) and Graph from the configured base URL.

Trust: the optional ``ca_bundle`` adds certificate authorities to the system trust store, for both
msal (our own ``requests.Session`` with ``trust_env=False``, so ``REQUESTS_CA_BUNDLE`` cannot change
it) and Graph.

Mappings chosen here:

* Calendar access: ``isDefaultCalendar`` marks the primary calendar. ``canEdit`` true means OWNER
  when the calendar's owner is the mailbox itself (the owner of the default calendar, else the
  signed-in address), WRITER otherwise; ``canEdit`` false means READER. Graph lists a shared
  calendar only once its owner shared it with the account, and has no free/busy-only level here;
  ``canShare`` and ``canViewPrivateItems`` do not change the level.
* Busy time: ``showAs`` ``free`` and ``workingElsewhere`` (the person is available, just remote) and
  cancelled events are not busy; ``busy``, ``tentative``, ``oof`` and ``unknown`` are.
* Changes: ``calendarView/delta`` per calendar (the delta link is the sync token; 410 or
  ``SyncStateNotFound`` means a full round again) and subscriptions on the calendar's events,
  whose ``clientState`` is the secret our webhook checks; declined events are not busy.
* Failures: 401 is retried once with a forced token refresh (Graph may reject a token msal still
  thinks valid), then ``ProviderAuthError``. 403 is ``ProviderAuthError`` when Graph says access
  is denied (sharing removed, consent withdrawn: the calendar turns inactive), else
  ``ProviderRefused``. 404 ``ProviderNotFound``; 429, and 503 with Retry-After,
  ``ProviderRateLimited``; other 5xx, timeouts and network errors ``ProviderUnavailable``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import msal
import requests
from msal.exceptions import MsalServiceError

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
    brief,
)
from providers.plumbing import TrustAdapter, aware_utc, retry_after, trust_context
from providers.windows_zones import windows_name, zone_named

logger = logging.getLogger(__name__)

Json = dict[str, Any]

# msal adds the reserved offline_access, openid and profile scopes itself.
SCOPES = ["Calendars.ReadWrite", "User.Read"]
# Graph dedupes event creation by transactionId; ours derives from the booking's idempotency key.
_TRANSACTION_NAMESPACE = uuid.UUID("5b0c7c1e-4f4e-4a38-9a53-2f6a1d0e7c11")
_NOT_BUSY = frozenset({"free", "workingElsewhere"})
# 403 codes that mean the account lost access, not that this one request is wrong.
_ACCESS_LOST = frozenset({"ErrorAccessDenied", "AccessDenied", "Authorization_RequestDenied"})
# OAuth errors worth retrying; every other OAuth error needs the owner to sign in again.
_OAUTH_TRANSIENT = frozenset({"temporarily_unavailable", "server_error"})
_AADSTS = re.compile(r"AADSTS\d+")
_CALENDAR_FIELDS = "id,name,isDefaultCalendar,canEdit,owner"
_BUSY_FIELDS = "start,end,showAs,isCancelled"
_EVENTS_PER_PAGE = 500
_PAGED_IN_UTC = f'outlook.timezone="UTC", odata.maxpagesize={_EVENTS_PER_PAGE}'
# Graph's answers when it no longer knows the state a delta link stands for.
_DELTA_FORGOTTEN = frozenset({"SyncStateNotFound", "SyncStateInvalid", "resyncRequired"})
# Outlook event subscriptions live at most 4,230 minutes on some tenants and 10,080 on others:
# ask for what every tenant grants, and keep the expiry Graph answers.
_LONGEST_SUBSCRIPTION = timedelta(minutes=4200)
# The authority's OpenID configuration: msal fetches it whenever an application is built, and one is
# built per connection client, so without this every busy-time fetch waited one more round trip
# (bar B3). Kept per (CA bundle, URL) for a day, as msal's own http_cache keeps it for a long-lived app.
_DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
_DISCOVERY_TTL = 24 * 3600.0
_discovered: dict[tuple[str | None, str], tuple[float, requests.Response]] = {}
_discovered_lock = threading.Lock()


@dataclass(frozen=True)
class MicrosoftConfig:
    client_id: str
    client_secret: str
    redirect_uri: str
    authority: str = "https://login.microsoftonline.com/common"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    ca_bundle: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class MicrosoftCredentials:
    """What a connection keeps: msal's serialized token cache and which account in it is ours."""

    token_cache: str
    home_account_id: str
    account_email: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MicrosoftCredentials:
        """Stored credentials that cannot be read need a new sign-in, like revoked ones."""
        try:
            data = json.loads(text)
            return cls(str(data["token_cache"]), str(data["home_account_id"]), str(data["account_email"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise ProviderAuthError("The stored Microsoft credentials are unreadable", code="bad_credentials") from exc


# -- trust and identity plumbing ---------------------------------------------------------------


class _IdentitySession(requests.Session):
    """msal's HTTP client: our trust, our timeout, the discovery document kept, and no say for the
    environment (REQUESTS_CA_BUNDLE)."""

    def __init__(self, config: MicrosoftConfig) -> None:
        super().__init__()
        self.trust_env = False
        self._timeout = config.timeout
        self._ca_bundle = config.ca_bundle
        self.mount("https://", TrustAdapter(trust_context(config.ca_bundle)))

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        address = url.decode() if isinstance(url, bytes) else url
        if method.upper() != "GET" or not address.endswith(_DISCOVERY_SUFFIX):
            return super().request(method, url, *args, **kwargs)
        key = (self._ca_bundle, address)
        with _discovered_lock:
            kept = _discovered.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 200 and _json_object(response):  # a broken answer is not kept
            with _discovered_lock:
                _discovered[key] = (time.monotonic() + _DISCOVERY_TTL, response)
        return response


def _json_object(response: requests.Response) -> bool:
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


@contextlib.contextmanager
def _identity_failures() -> Iterator[None]:
    """Network and identity-server failures of msal as our errors."""
    try:
        yield
    except requests.RequestException as exc:
        raise ProviderUnavailable("The Microsoft sign-in service could not be reached") from exc
    except MsalServiceError as exc:
        raise ProviderUnavailable("The Microsoft sign-in service failed") from exc
    except ValueError as exc:  # a token answer that is not JSON
        raise ProviderUnavailable("The Microsoft sign-in service sent an unreadable answer") from exc


def _application(config: MicrosoftConfig, session: requests.Session, cache: msal.SerializableTokenCache) -> Any:
    """A msal application; building it reads the authority's OpenID configuration (fetched once a day)."""
    try:
        return msal.ConfidentialClientApplication(
            config.client_id,
            client_credential=config.client_secret,
            authority=config.authority,
            instance_discovery=False,
            token_cache=cache,
            http_client=session,
        )
    except ValueError as exc:  # msal refuses the authority: http, unknown tenant, bad discovery document
        raise ProviderRefused("The Microsoft authority setting is not usable", code="bad_authority") from exc


def _oauth_error(result: Json) -> ProviderError:
    """An OAuth error answer as ours, carrying the AADSTS code when the identity platform gave one."""
    error = str(result.get("error", "unknown_error"))
    description = str(result.get("error_description", ""))
    codes = result.get("error_codes") or []
    found = _AADSTS.search(description)
    code = f"AADSTS{codes[0]}" if codes else found.group(0) if found else error
    logger.info("microsoft sign-in refused: %s (%s)", error, code)
    if error in _OAUTH_TRANSIENT:
        return ProviderUnavailable("The Microsoft sign-in service is temporarily unavailable", code=code)
    if error == "invalid_client":  # AADSTS7000215 / 7000222: this server's client secret is wrong or expired
        logger.error("Microsoft refuses this server's client (%s): check the client secret setting", code)
        return ProviderMisconfigured(f"Microsoft refuses this server's client ({code})", code=code)
    return ProviderAuthError(f"Microsoft refused the sign-in ({code}); the owner must reconnect", code=code)


class MicrosoftOAuth:
    """The two halves of the authorization code flow."""

    def __init__(self, config: MicrosoftConfig) -> None:
        self._config = config

    async def start(self, state: str) -> AuthorizationStart:
        """Async because msal fetches the authority's configuration before it can build the URL."""
        return await anyio.to_thread.run_sync(self._start, state)

    async def finish(self, query_params: dict[str, str], verifier: dict[str, str]) -> MicrosoftCredentials:
        """Redeem the code the callback received; the flow kept in ``verifier`` checks state and PKCE."""
        try:
            flow = json.loads(verifier["flow"])
        except (KeyError, ValueError) as exc:
            raise ProviderAuthError("The sign-in was not started here", code="state_mismatch") from exc
        return await anyio.to_thread.run_sync(self._finish, flow, dict(query_params))

    def _start(self, state: str) -> AuthorizationStart:
        with _identity_failures(), _IdentitySession(self._config) as session:
            app = _application(self._config, session, msal.SerializableTokenCache())
            flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=self._config.redirect_uri, state=state)
        return AuthorizationStart(url=flow["auth_uri"], verifier={"flow": json.dumps(flow)})

    def _finish(self, flow: Json, response: dict[str, str]) -> MicrosoftCredentials:
        cache = msal.SerializableTokenCache()
        with _identity_failures(), _IdentitySession(self._config) as session:
            app = _application(self._config, session, cache)
            result = self._redeem(app, flow, response)
            if "access_token" not in result:
                raise _oauth_error(result)
            accounts = app.get_accounts()
        if not accounts:
            raise ProviderAuthError("Microsoft did not say which account signed in", code="no_account")
        account = accounts[0]
        return MicrosoftCredentials(cache.serialize(), str(account["home_account_id"]), str(account["username"]))

    @staticmethod
    def _redeem(app: Any, flow: Json, response: dict[str, str]) -> Json:
        if not flow.get("state") or response.get("state") != flow.get("state"):
            raise ProviderAuthError("The sign-in reply does not match the sign-in we started", code="state_mismatch")
        try:
            result: Json = app.acquire_token_by_auth_code_flow(flow, response)
        except (ValueError, RuntimeError) as exc:  # a nonce mismatch, a reply with neither code nor error
            raise ProviderAuthError("The sign-in reply could not be used", code="bad_reply") from exc
        return result


# -- Graph --------------------------------------------------------------------------------------


def _query_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _graph_time(value: Json) -> datetime:
    """A Graph ``{dateTime, timeZone}`` as aware UTC; we ask for UTC, other zones are converted."""
    local = datetime.fromisoformat(str(value["dateTime"]))
    name = str(value.get("timeZone") or "UTC")
    zone = zone_named(name)
    if zone is None:
        logger.warning("graph time zone %r is unknown; reading the time as UTC", name)
        return local.replace(tzinfo=UTC)
    return local.replace(tzinfo=zone).astimezone(UTC)


def _zoned(value: datetime, iana_name: str) -> Json:
    """Our time as Graph wants it: wall-clock time in the Windows zone, or UTC when unmapped."""
    zone_name, zone = windows_name(iana_name), zone_named(iana_name)
    if zone_name is None or zone is None:
        return {"dateTime": value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "UTC"}
    return {
        "dateTime": value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds"),
        "timeZone": zone_name,
    }


def _transaction_id(idempotency_key: str) -> str:
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, idempotency_key))


def _event_body(draft: EventDraft) -> Json:
    """The event Graph should hold; the organizer is always the signed-in mailbox, so it is not sent."""
    start = aware_utc(draft.start, "start")
    end = aware_utc(draft.end, "end")
    return {
        "subject": draft.summary,
        "body": {"contentType": "text", "content": draft.description},
        "start": _zoned(start, draft.timezone),
        "end": _zoned(end, draft.timezone),
        "location": {"displayName": draft.location},
        "attendees": [
            {"emailAddress": {"address": attendee.email, "name": attendee.name or attendee.email}, "type": "required"}
            for attendee in draft.attendees
        ],
    }


def _graph_error(response: httpx.Response) -> tuple[str | None, str]:
    """The code and message of Graph's ``{"error": {"code", "message"}}`` body, when it has one."""
    with contextlib.suppress(ValueError, KeyError, AttributeError, TypeError):
        error = response.json()["error"]
        return str(error["code"]), str(error.get("message", ""))
    return None, response.reason_phrase


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    code, detail = _graph_error(response)
    message = f"Microsoft Graph answered {status}" + (f" ({code})." if code else ".")
    wait = retry_after(response.headers.get("retry-after"))
    logger.info("graph error: %s %s", message, brief(detail))
    if status == 401 or (status == 403 and code in _ACCESS_LOST):
        raise ProviderAuthError(message, code=code, detail=detail)
    if status == 404:
        raise ProviderNotFound(message, code=code, detail=detail)
    if status == 410 or code in _DELTA_FORGOTTEN:
        raise SyncTokenExpired(message, code=code, detail=detail)
    if status == 429 or (status == 503 and wait is not None):
        raise ProviderRateLimited(message, retry_after=wait, code=code, detail=detail)
    if status >= 500 or status == 408:
        raise ProviderUnavailable(message, code=code, detail=detail)
    raise ProviderRefused(message, code=code, detail=detail)


@contextlib.contextmanager
def _readable() -> Iterator[None]:
    """A Graph answer that lacks what the reference promises is a provider failure."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable("Microsoft Graph sent an answer we could not read") from exc


def _access(calendar: Json, mailbox: str) -> CalendarAccess:
    if not calendar.get("canEdit"):
        return CalendarAccess.READER
    owner = str((calendar.get("owner") or {}).get("address", ""))
    return CalendarAccess.OWNER if owner.lower() == mailbox.lower() else CalendarAccess.WRITER


def _mailbox(calendars: list[Json]) -> str | None:
    """The mailbox's own address: the owner of its default calendar (the sign-in name may be a UPN)."""
    for calendar in calendars:
        if calendar.get("isDefaultCalendar"):
            return (calendar.get("owner") or {}).get("address") or None
    return None


def _is_busy(event: Json) -> bool:
    return not event.get("isCancelled") and event.get("showAs", "busy") not in _NOT_BUSY


def _calendar_event(item: Json) -> CalendarEvent:
    """A delta item as we keep it; an event the mailbox declined does not block its time.

    Graph has no "made by app" field: an app that writes events sets ``transactionId`` (ours
    does, for idempotent creates), and Graph shows it only when one was set. Which app set it
    Graph does not say.
    """
    declined = (item.get("responseStatus") or {}).get("response") == "declined"
    transaction_id = item.get("transactionId")
    return CalendarEvent(
        event_id=str(item["id"]),
        start=_graph_time(item["start"]),
        end=_graph_time(item["end"]),
        busy=_is_busy(item) and not declined,
        ical_uid=item.get("iCalUId"),
        title=str(item.get("subject") or ""),
        attendees=tuple(
            str(attendee["emailAddress"]["address"]).lower()
            for attendee in item.get("attendees") or []
            if attendee.get("type") != "resource" and (attendee.get("emailAddress") or {}).get("address")
        ),
        organizer_self=bool(item.get("isOrganizer", True)),
        all_day=bool(item.get("isAllDay")),
        free=item.get("showAs") == "free",
        declined=declined,
        cancelled=bool(item.get("isCancelled")),
        app=AppMark(ours=None, what="an app set its transactionId") if transaction_id else None,
        series_id=item.get("seriesMasterId"),
    )


def _graph_instant(value: datetime) -> str:
    """An expiration as Graph writes it: UTC with seven fractional digits."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _subscription_end(ttl: timedelta) -> str:
    return _graph_instant(datetime.now(UTC) + min(ttl, _LONGEST_SUBSCRIPTION))


def _parse_instant(text: str) -> datetime:
    """Graph's ``2026-12-10T09:00:00.0000000Z``: Python reads at most six fractional digits."""
    head, dot, rest = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{rest[:6]}" if dot else head).replace(tzinfo=UTC)


class MicrosoftCalendarClient:
    """A CalendarClient for one Microsoft 365 connection."""

    def __init__(
        self, config: MicrosoftConfig, credentials: MicrosoftCredentials, http: httpx.AsyncClient | None = None
    ) -> None:
        self._config = config
        self._credentials = credentials
        self._base = config.graph_url.rstrip("/")
        self._cache = msal.SerializableTokenCache()
        try:
            self._cache.deserialize(credentials.token_cache)
        except ValueError as exc:
            raise ProviderAuthError("The stored Microsoft token cache is unreadable", code="bad_credentials") from exc
        self._session = _IdentitySession(config)
        self._app: Any = None
        self._token_lock = anyio.Lock()
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(verify=trust_context(config.ca_bundle), timeout=config.timeout)

    async def revoke(self) -> None:
        """Microsoft offers no revocation of one app's grant: removing the credentials is what ends it."""

    async def aclose(self) -> None:
        self._session.close()
        if self._owns_http:
            await self._http.aclose()

    def credentials_json(self) -> str:
        current = MicrosoftCredentials(
            self._cache.serialize(), self._credentials.home_account_id, self._credentials.account_email
        )
        return current.to_json()

    # -- CalendarClient ---------------------------------------------------------------------

    async def list_calendars(self) -> list[ProviderCalendar]:
        items = await self._collect(f"{self._base}/me/calendars", {"$select": _CALENDAR_FIELDS})
        with _readable():
            mailbox = _mailbox(items) or self._credentials.account_email
            return [
                ProviderCalendar(
                    external_id=str(item["id"]),
                    name=str(item.get("name", "")),
                    access=_access(item, mailbox),
                    primary=bool(item.get("isDefaultCalendar")),
                )
                for item in items
            ]

    async def busy_intervals(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> list[BusyBlock]:
        params = {
            "startDateTime": _query_time(aware_utc(start, "start")),
            "endDateTime": _query_time(aware_utc(end, "end")),
            "$select": _BUSY_FIELDS,
        }
        blocks: list[BusyBlock] = []
        for calendar_id in calendar_ids:
            url = f"{self._base}/me/calendars/{quote(calendar_id, safe='')}/calendarView"
            # Graph's default page is 10 events; a busy calendar would cost many round trips in a row.
            prefer = f'outlook.timezone="UTC", odata.maxpagesize={_EVENTS_PER_PAGE}'
            try:
                items = await self._collect(url, params, headers={"Prefer": prefer})
            except ProviderNotFound as exc:  # deleted, or no longer shared with the account
                raise CalendarGone(exc.message, calendar_id=calendar_id, code=exc.code) from exc
            with _readable():
                blocks.extend(
                    BusyBlock(calendar_id, _graph_time(item["start"]), _graph_time(item["end"]))
                    for item in items
                    if _is_busy(item)
                )
        return blocks

    async def create_event(self, calendar_id: str, draft: EventDraft) -> WrittenEvent:
        """The transactionId makes Graph answer a retried create with the event it already made."""
        body = {**_event_body(draft), "transactionId": _transaction_id(draft.idempotency_key)}
        url = f"{self._base}/me/calendars/{quote(calendar_id, safe='')}/events"
        created = await self._json("POST", url, body=body)
        with _readable():
            return WrittenEvent(calendar_id, str(created["id"]))

    async def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> WrittenEvent:
        url = f"{self._base}/me/events/{quote(event_id, safe='')}"
        updated = await self._json("PATCH", url, body=_event_body(draft))
        with _readable():
            return WrittenEvent(calendar_id, str(updated["id"]))

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        try:
            await self._request("DELETE", f"{self._base}/me/events/{quote(event_id, safe='')}")
        except ProviderNotFound:
            logger.debug("event %s of calendar %s was already gone", event_id, calendar_id)

    async def create_calendar(self, name: str) -> str:
        """``POST /me/calendars``: a calendar of the account's default calendar group."""
        created = await self._json("POST", f"{self._base}/me/calendars", body={"name": name})
        with _readable():
            return str(created["id"])

    async def delete_calendar(self, calendar_id: str) -> None:
        try:
            await self._request("DELETE", f"{self._base}/me/calendars/{quote(calendar_id, safe='')}")
        except ProviderNotFound:
            logger.debug("calendar %s was already gone", calendar_id)

    # -- IncrementalSync, PushWatch ---------------------------------------------------------

    async def list_changes(
        self, calendar_id: str, *, sync_token: str | None, start: datetime, end: datetime
    ) -> EventChanges:
        """``calendarView/delta`` of one calendar: its window is fixed by the first round and
        carried by the delta link we keep as the token. Events changed out of the window come
        back as removed, which is what the cache wants too."""
        changed: list[CalendarEvent] = []
        deleted: list[str] = []
        if sync_token is None:
            url = f"{self._base}/me/calendars/{quote(calendar_id, safe='')}/calendarView/delta"
            params: dict[str, str] | None = {
                "startDateTime": _query_time(aware_utc(start, "start")),
                "endDateTime": _query_time(aware_utc(end, "end")),
            }
        elif sync_token.startswith(self._base + "/"):
            url, params = sync_token, None
        else:  # a link of another Graph address (the setting changed): start over
            raise SyncTokenExpired("The stored delta link is not one of this Graph address", code="foreign_link")
        while True:
            page = await self._delta_page(calendar_id, url, params)
            with _readable():
                for item in page["value"]:
                    if "@removed" in item:
                        deleted.append(str(item["id"]))
                    else:
                        changed.append(_calendar_event(item))
                next_link, delta_link = page.get("@odata.nextLink"), page.get("@odata.deltaLink")
            if delta_link:
                return EventChanges(tuple(changed), tuple(deleted), str(delta_link), full=sync_token is None)
            if not next_link:
                raise ProviderUnavailable("Microsoft Graph ended a delta round without a delta link")
            url, params = self._own_link(str(next_link)), None

    async def _delta_page(self, calendar_id: str, url: str, params: dict[str, str] | None) -> Json:
        try:
            return await self._json("GET", url, params=params, headers={"Prefer": _PAGED_IN_UTC})
        except ProviderNotFound as exc:  # deleted, or no longer shared with the account
            raise CalendarGone(exc.message, calendar_id=calendar_id, code=exc.code) from exc

    async def watch(
        self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl: timedelta
    ) -> WatchChannel:
        """A subscription to the calendar's events; Graph checks ``address`` answers before it
        agrees. Lifecycle notices (renew, removed, missed) go to the same address."""
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": f"me/calendars/{calendar_id}/events",
            "expirationDateTime": _subscription_end(ttl),
            "clientState": token,
        }
        created = await self._json("POST", f"{self._base}/subscriptions", body=body)
        with _readable():
            return WatchChannel(channel_id, str(created["id"]), _parse_instant(str(created["expirationDateTime"])))

    async def renew_watch(self, resource_id: str, ttl: timedelta) -> datetime:
        """A later end for the subscription (it also answers Graph's reauthorization request)."""
        url = f"{self._base}/subscriptions/{quote(resource_id, safe='')}"
        renewed = await self._json("PATCH", url, body={"expirationDateTime": _subscription_end(ttl)})
        with _readable():
            return _parse_instant(str(renewed["expirationDateTime"]))

    async def stop_watch(self, channel_id: str, resource_id: str) -> None:
        try:
            await self._request("DELETE", f"{self._base}/subscriptions/{quote(resource_id, safe='')}")
        except ProviderNotFound:
            logger.debug("subscription %s (channel %s) was already gone", resource_id, channel_id)

    # -- Graph requests ---------------------------------------------------------------------

    async def _collect(self, url: str, params: dict[str, str], headers: dict[str, str] | None = None) -> list[Json]:
        """Every item of a collection, following ``@odata.nextLink`` (only ever to our Graph host)."""
        items: list[Json] = []
        page = await self._json("GET", url, params=params, headers=headers)
        while True:
            with _readable():
                items.extend(page["value"])
                next_link = page.get("@odata.nextLink")
            if not next_link:
                return items
            page = await self._json("GET", self._own_link(str(next_link)), headers=headers)

    def _own_link(self, link: str) -> str:
        """A paging link Graph sent, followed only to our Graph address (it carries our token)."""
        if not link.startswith(self._base + "/"):
            raise ProviderRefused("Microsoft Graph sent a paging link to another host", code="bad_next_link")
        return link

    async def _json(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Json | None = None,
    ) -> Json:
        response = await self._request(method, url, params=params, headers=headers, body=body)
        with _readable():
            data = response.json()
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            return data

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Json | None = None,
    ) -> httpx.Response:
        """One Graph call; a 401 gets one more try with a freshly refreshed token."""
        response = await self._send(method, url, await self._access_token(), params, headers, body)
        if response.status_code == 401:
            logger.info("graph rejected the access token; refreshing it once")
            response = await self._send(
                method, url, await self._access_token(force_refresh=True), params, headers, body
            )
        _raise_for_status(response)
        return response

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        params: dict[str, str] | None,
        headers: dict[str, str] | None,
        body: Json | None,
    ) -> httpx.Response:
        all_headers = {**(headers or {}), "Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            return await self._http.request(
                method, url, params=params, headers=all_headers, json=body, timeout=self._config.timeout
            )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable("Microsoft Graph did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable("Microsoft Graph could not be reached") from exc

    # -- tokens -----------------------------------------------------------------------------

    async def _access_token(self, *, force_refresh: bool = False) -> str:
        """From msal's cache, refreshed with the refresh token when expired; one refresh at a time."""
        async with self._token_lock:
            return await anyio.to_thread.run_sync(self._acquire, force_refresh)

    def _acquire(self, force_refresh: bool) -> str:
        with _identity_failures():
            if self._app is None:
                self._app = _application(self._config, self._session, self._cache)
            accounts = [
                account
                for account in self._app.get_accounts()
                if account.get("home_account_id") == self._credentials.home_account_id
            ]
            if not accounts:
                raise ProviderAuthError("The Microsoft account is missing from the credentials", code="no_account")
            result = self._app.acquire_token_silent_with_error(SCOPES, accounts[0], force_refresh=force_refresh)
        if not result:
            raise ProviderAuthError("No Microsoft refresh token is left; the owner must reconnect", code="no_token")
        if "access_token" not in result:
            raise _oauth_error(result)
        return str(result["access_token"])
