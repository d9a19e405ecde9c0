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
Bearer token gets 401 ``InvalidAuthenticationToken``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from providers.microsoft import MicrosoftConfig
from tests.doubles.server import DoubleServer, TLSFiles

Json = dict[str, Any]

CLIENT_ID = "6f1c2a4e-0b8d-4c52-9a0e-kokous-test"
CLIENT_SECRET = "double-client-secret"
TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
REDIRECT_URI = "https://kokous.test/oauth/microsoft/callback"
_TENANTS = {"common", "organizations", TENANT_ID}
_RESERVED_SCOPES = {"offline_access", "openid", "profile"}


def _zone(name: str) -> ZoneInfo:
    """A Windows or IANA zone name as zoneinfo, by CLDR's table (the same source Graph follows)."""
    return ZoneInfo(MS_TIMEZONE_TO_IANA_MAP.get(name, name))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    inner = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "request-id": str(uuid.uuid4())}
    return JSONResponse({"error": {"code": code, "message": message, "innerError": inner}}, status, headers)


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

    def resource(self, zone_name: str | None = "UTC") -> Json:
        """The Graph event with times in ``zone_name`` (None: in the zone it was written in)."""
        shown = zone_name or self.zone
        return {
            "@odata.etag": f'W/"{_b64url(self.id.encode())[:12]}"',
            "id": self.id,
            "transactionId": self.transaction_id,
            "originalStartTimeZone": self.zone,
            "originalEndTimeZone": self.zone,
            "iCalUId": "040000008200E00074C5B7101A82E008" + self.id[-16:],
            "subject": self.subject,
            "isAllDay": False,
            "isCancelled": self.cancelled,
            "isOrganizer": True,
            "showAs": self.show_as,
            "type": "singleInstance",
            "start": self._time(self.start, shown),
            "end": self._time(self.end, shown),
            "organizer": {"emailAddress": {"name": self.mailbox, "address": self.mailbox}},
            "body": {"contentType": "text", "content": ""},
            "location": {"displayName": ""},
            "attendees": [],
            **self.extra,
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


class MicrosoftDouble(DoubleServer):
    """The identity platform and Graph for accounts the test adds; state is kept until ``stop``."""

    def __init__(self, tls: TLSFiles, *, page_size: int = 2, token_lifetime: int = 3600) -> None:
        self.tls = tls
        self.page_size = page_size
        self.token_lifetime = token_lifetime  # seconds; under 300 msal treats a new token as expired
        self.honours_timezone_preference = True  # False: answer times in each event's own zone
        self._state = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._calendars: dict[str, _Calendar] = {}
        self._events: dict[str, _Event] = {}
        self._sessions: dict[str, str] = {}  # ESTSAUTH cookie -> email
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, str] = {}  # token -> email
        self._access_tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expires at)
        app = Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration),
                Route("/{tenant}/oauth2/v2.0/authorize", self._authorize),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
                Route("/v1.0/me/calendars", self._calendar_list),
                Route("/v1.0/me/calendars/{calendar_id}/calendarView", self._calendar_view),
                Route("/v1.0/me/calendars/{calendar_id}/events", self._create_event, methods=["POST"]),
                Route("/v1.0/me/events/{event_id}", self._event, methods=["PATCH", "DELETE"]),
            ]
        )
        super().__init__(app, tls=tls)

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
                subject="Busy",
            )
            self._events[event.id] = event
            return event.id

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

    async def _calendar_view(self, request: Request) -> Response:
        mailbox = self._mailbox(request)
        if mailbox is None:
            return self._unauthenticated()
        preferred = self._preferred_zone(request)
        try:
            window_start = self._moment(request.query_params["startDateTime"], preferred or "UTC")
            window_end = self._moment(request.query_params["endDateTime"], preferred or "UTC")
        except (KeyError, ValueError):
            return _graph_error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            )
        shown = (preferred or "UTC") if self.honours_timezone_preference else None
        with self._state:
            if self._own_calendar(mailbox, request.path_params["calendar_id"]) is None:
                return _graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
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
    def _preferred_zone(request: Request) -> str | None:
        for preference in request.headers.get("prefer", "").split(","):
            name, _, value = preference.strip().partition("=")
            if name == "outlook.timezone":
                return value.strip('"')
        return None

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
                return _graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
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
                return _graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            if request.method == "DELETE":
                del self._events[event.id]
                return Response(status_code=204)
            event.start = fields.get("start", event.start)
            event.end = fields.get("end", event.end)
            event.zone = fields.get("zone", event.zone)
            event.subject = fields.get("subject", event.subject)
            event.extra.update(fields["extra"])
            return JSONResponse(event.resource())

    @staticmethod
    def _new_event_id() -> str:
        return "AAMkAGI2" + secrets.token_urlsafe(30)


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL, as a callback handler receives them."""
    return dict(parse_qsl(urlsplit(url).query))
