"""A Google double: the OAuth 2.0 endpoints and the Calendar v3 calls Kokous makes, with state.

It speaks the wire format of Google's public references: token errors as
``{"error": "invalid_grant", "error_description": ...}``, Calendar errors as
``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}``.
It keeps accounts, their calendar lists (with access roles), busy periods and the events
written, so tests can assert what ended up where. It is stricter than Google in one way: an
authorization request must use PKCE (S256) and carry a state, which Google only recommends.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

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
TOKEN_LIFETIME = 3599
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
    busy: list[tuple[datetime, datetime]] = field(default_factory=list)
    events: dict[str, Json] = field(default_factory=dict)


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
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size  # calendarList pages never hold more, so paging is exercised
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
        super().__init__(self._app(), tls=tls)

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
        assert start.tzinfo is not None
        assert end.tzinfo is not None
        assert start < end
        with self._state_lock:
            self._calendars[calendar_id].busy.append((start.astimezone(UTC), end.astimezone(UTC)))

    def events_on(self, calendar_id: str) -> list[Json]:
        """The calendar's events that are not cancelled, as Google would answer them."""
        with self._state_lock:
            events = self._calendars[calendar_id].events.values()
            return [copy.deepcopy(event) for event in events if event["status"] != "cancelled"]

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
                Route("/calendar/v3/calendars/{calendar_id}", self._calendar_get, methods=["GET"]),
                Route("/calendar/v3/freeBusy", self._free_busy, methods=["POST"]),
                Route(events, self._events_list, methods=["GET"]),
                Route(events, self._event_insert, methods=["POST"]),
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
        calendar = seen[0]
        return JSONResponse(
            {
                "kind": "calendar#calendar",
                "id": calendar.id,
                "summary": calendar.summary,
                "timeZone": calendar.time_zone,
            }
        )

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
        periods = list(calendar.busy)
        for event in calendar.events.values():
            if event["status"] != "cancelled" and event.get("transparency") != "transparent":
                periods.append((_parse_time(event["start"]["dateTime"]), _parse_time(event["end"]["dateTime"])))
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
        calendar = seen[0]
        show_deleted = request.query_params.get("showDeleted") == "true"
        with self._state_lock:
            items = [copy.deepcopy(e) for e in calendar.events.values() if show_deleted or e["status"] != "cancelled"]
        return JSONResponse({"kind": "calendar#events", "summary": calendar.summary, "items": items})

    async def _event_insert(self, request: Request) -> Response:
        target = self._writable(request)
        if isinstance(target, Response):
            return target
        calendar, email = target
        body = json.loads(await request.body())
        event_id = body.get("id") or base64.b32hexencode(secrets.token_bytes(10)).decode().lower()
        if not EVENT_ID.match(event_id):
            return _bad_request("invalid", "Invalid resource id value.")
        problem = _times_problem(body)
        if problem:
            return problem
        now = _rfc3339(datetime.now(UTC))
        event = {
            **body,
            "kind": "calendar#event",
            "etag": f'"{secrets.token_hex(6)}"',
            "id": event_id,
            "status": "confirmed",
            "created": now,
            "updated": now,
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "organizer": {"email": calendar.id, "self": True},
            "creator": {"email": email, "self": True},
            "attendees": [{**attendee, "responseStatus": "needsAction"} for attendee in body.get("attendees", [])],
        }
        with self._state_lock:
            if event_id in calendar.events:
                return _error(409, "duplicate", "The requested identifier already exists.")
            calendar.events[event_id] = event
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
            updated |= {"sequence": event["sequence"] + 1, "updated": _rfc3339(datetime.now(UTC))}
            calendar.events[event["id"]] = updated
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
            event["status"] = "cancelled"
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
