"""The Microsoft Graph double's calendarView delta and change notifications, over real HTTP with httpx.

These pin down the wire behaviour of ``tests/doubles/microsoft.py`` that a sync built on Graph's
``calendarView/delta`` and ``/subscriptions`` will meet: pages by ``Prefer: odata.maxpagesize``
with ``@odata.nextLink`` then ``@odata.deltaLink``, the window fixed by the first call, changes as
full events or ``@removed``, Graph's 400 and 410 answers, the validation handshake before a
subscription exists, and change and lifecycle notifications posted to a loopback receiver.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.doubles.microsoft import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, TENANT_ID, MicrosoftDouble
from tests.doubles.server import DoubleServer, RecordedRequest, TLSFiles, make_tls_files

Json = dict[str, Any]

OWNER = "anna@contoso.test"
OTHER = "otto@contoso.test"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
WINDOW = {"startDateTime": "2026-03-02T00:00:00Z", "endDateTime": "2026-03-09T00:00:00Z"}
DELTA = "/me/calendars/cal-primary/calendarView/delta"
GRAPH_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MISSING = "(left out)"  # a subscription field value that leaves the field out of the request


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("microsoft-sync-tls"))


@pytest.fixture
def double(tls_files: TLSFiles) -> Iterator[MicrosoftDouble]:
    with MicrosoftDouble(tls_files) as server:
        server.add_account(OWNER)
        server.add_calendar(OWNER, "cal-primary", "Calendar", is_default=True)
        server.add_calendar(OWNER, "cal-other", "Birthdays")
        server.add_calendar(OWNER, "cal-team", "Team", owner_email="boss@contoso.test")
        server.add_account(OTHER)
        server.add_calendar(OTHER, "cal-otto", "Calendar", is_default=True)
        yield server


@pytest.fixture
def graph(double: MicrosoftDouble) -> Iterator[httpx.Client]:
    yield from graph_client(double, OWNER)


def graph_client(double: MicrosoftDouble, email: str) -> Iterator[httpx.Client]:
    """An httpx client on Graph with a token the mailbox got through the authorization code flow."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    asked = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "Calendars.ReadWrite offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
    }
    redirect = double.consent(f"{double.authority}/oauth2/v2.0/authorize?{urlencode(asked)}", email)
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    verify = ssl.create_default_context(cafile=str(double.tls.ca_path))
    form = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "scope": "Calendars.ReadWrite offline_access",
    }
    token = httpx.post(f"{double.authority}/oauth2/v2.0/token", data=form, verify=verify, trust_env=False)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=double.graph_url, headers=headers, verify=verify, trust_env=False, timeout=15) as client:
        yield client


class Hook:
    """A loopback web hook (``/hook`` and ``/lifecycle``) that answers Graph's validation as told."""

    def __init__(self) -> None:
        self.validation = {"/hook": "echo", "/lifecycle": "echo"}  # echo, encoded, json, refuse, late
        self.answer = 202  # to notifications
        self.late = 1.0
        routes = [Route(path, self._receive, methods=["POST"]) for path in self.validation]
        self.server = DoubleServer(Starlette(routes=routes))

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"

    @property
    def lifecycle_url(self) -> str:
        return f"{self.server.url}/lifecycle"

    def posts(self, path: str = "/hook") -> list[RecordedRequest]:
        """The notifications received (validation requests left out)."""
        return [
            request for request in self.server.requests_to(f"POST {path}") if "validationToken" not in request.query
        ]

    def validations(self, path: str = "/hook") -> list[RecordedRequest]:
        return [request for request in self.server.requests_to(f"POST {path}") if "validationToken" in request.query]

    async def _receive(self, request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is None:
            return Response(status_code=self.answer)
        how = self.validation[request.url.path]
        if how == "late":
            await asyncio.sleep(self.late)
        if how == "encoded":
            return PlainTextResponse(quote(token, safe=""))
        if how == "json":
            return JSONResponse(token)
        if how == "refuse":
            return PlainTextResponse(token, status_code=500)
        return PlainTextResponse(token)


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    with receiver.server:
        yield receiver


def later(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def subscribe(graph: httpx.Client, hook: Hook, **fields: Any) -> httpx.Response:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": hook.url,
        "resource": "me/calendars/cal-primary/events",
        "expirationDateTime": later(60),
        "clientState": "kokous-secret",
        **fields,
    }
    return graph.post("/subscriptions", json={key: value for key, value in body.items() if value != MISSING})


def created(graph: httpx.Client, hook: Hook, **fields: Any) -> Json:
    answer = subscribe(graph, hook, **fields)
    assert answer.status_code == 201, answer.text
    body: Json = answer.json()
    return body


def error(answer: httpx.Response) -> tuple[int, str]:
    body = answer.json()["error"]
    assert body["innerError"]["request-id"]
    return answer.status_code, body["code"]


def delta_round(
    graph: httpx.Client, url: str, *, params: dict[str, str] | None = None, prefer: str | None = None
) -> tuple[list[Json], str, list[httpx.Response]]:
    """Every page of a delta round: (its items, the deltaLink, the answers)."""
    headers = {"Prefer": prefer} if prefer else {}
    answers = [graph.get(url, params=params, headers=headers)]
    while True:
        assert answers[-1].status_code == 200, answers[-1].text
        body = answers[-1].json()
        if "@odata.nextLink" not in body:
            break
        assert "@odata.deltaLink" not in body
        answers.append(graph.get(body["@odata.nextLink"], headers=headers))
    items = [item for answer in answers for item in answer.json()["value"]]
    return items, answers[-1].json()["@odata.deltaLink"], answers


def ids(items: list[Json]) -> list[str]:
    return [item["id"] for item in items]


# -- calendarView delta --------------------------------------------------------------------------


def test_a_full_round_pages_by_maxpagesize_then_ends_with_a_delta_link(
    double: MicrosoftDouble, graph: httpx.Client
) -> None:
    # covers: SYNC-5
    inside = [double.add_busy("cal-primary", T0 + day * 24 * HOUR, T0 + day * 24 * HOUR + HOUR) for day in range(4)]
    overlapping = double.add_busy("cal-primary", T0 - 10 * HOUR, T0 - 7 * HOUR)  # 22:00 to 01:00 across the start
    double.add_busy("cal-primary", T0 - 12 * HOUR, T0 - 8 * HOUR)  # ends when the window starts
    double.add_busy("cal-primary", T0 + 10 * 24 * HOUR, T0 + 10 * 24 * HOUR + HOUR)  # after the window
    double.add_busy("cal-other", T0, T0 + HOUR)  # another calendar

    items, delta_link, answers = delta_round(graph, DELTA, params=WINDOW, prefer="odata.maxpagesize=2")

    assert [len(answer.json()["value"]) for answer in answers] == [2, 2, 1]
    assert ids(items) == [overlapping, *inside]  # by start
    for answer in answers[:-1]:
        link = answer.json()["@odata.nextLink"]
        assert link.startswith(f"{double.graph_url}{DELTA}?$skiptoken=")
        assert "startDateTime" not in link  # the window travels in the token
    assert delta_link.startswith(f"{double.graph_url}{DELTA}?$deltatoken=")
    assert all(answer.headers["preference-applied"] == "odata.maxpagesize=2" for answer in answers)
    assert all(
        answer.json()["@odata.context"] == f"{double.graph_url}/$metadata#Collection(event)" for answer in answers
    )
    first = items[1]
    assert first["@odata.type"] == "#microsoft.graph.event"
    assert first["start"] == {"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"}  # UTC without a Prefer
    assert first["end"] == {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "UTC"}
    for key, value in {
        "type": "singleInstance",
        "seriesMasterId": None,
        "transactionId": None,
        "showAs": "busy",
        "isCancelled": False,
        "isAllDay": False,
    }.items():
        assert first[key] == value, key
    assert first["responseStatus"]["response"] == "organizer"
    assert GRAPH_TIME.match(first["lastModifiedDateTime"])
    assert first["@odata.etag"].startswith('W/"')


def test_a_round_pages_ten_by_default_and_shows_times_in_the_preferred_zone(
    double: MicrosoftDouble, graph: httpx.Client
) -> None:
    # covers: SYNC-5
    for hour in range(11):
        double.add_busy("cal-primary", T0 + hour * HOUR, T0 + (hour + 1) * HOUR)
    double.add_busy("cal-other", T0, T0 + HOUR)

    items, _, answers = delta_round(
        graph, "/me/calendarView/delta", params=WINDOW, prefer='outlook.timezone="Pacific Standard Time"'
    )

    assert [len(answer.json()["value"]) for answer in answers] == [10, 1]  # the default calendar only
    assert answers[0].json()["@odata.nextLink"].startswith(f"{double.graph_url}/me/calendarView/delta?$skiptoken=")
    assert items[0]["start"] == {"dateTime": "2026-03-02T00:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert answers[0].headers["preference-applied"] == 'outlook.timezone="Pacific Standard Time"'
    assert double.request_counts()["GET /v1.0/me/calendarView/delta"] == 2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("$select", "'$orderby, $filter, $select, $expand, $search'"),
        ("$filter", "'$orderby, $filter, $select, $expand, $search'"),
        ("$expand", "'$orderby, $filter, $select, $expand, $search'"),
        ("$orderby", "'$orderby, $filter, $select, $expand, $search'"),
        ("$top", "page size cannot be guaranteed"),
        ("$skip", "resource: '$skip'"),
    ],
)
def test_query_options_change_tracking_does_not_take_are_refused(
    double: MicrosoftDouble, graph: httpx.Client, option: str, message: str
) -> None:
    # covers: SYNC-5
    answer = graph.get(DELTA, params={**WINDOW, option: "2"})

    assert error(answer) == (400, "ErrorInvalidUrlQuery")
    assert "not supported with change tracking over the 'CalendarView' resource" in answer.json()["error"]["message"]
    assert message in answer.json()["error"]["message"]


def test_the_first_call_needs_the_window(double: MicrosoftDouble, graph: httpx.Client) -> None:
    # covers: SYNC-5
    for params in ({}, {"startDateTime": WINDOW["startDateTime"]}, {"endDateTime": WINDOW["endDateTime"]}):
        answer = graph.get(DELTA, params=params)
        assert error(answer) == (400, "ErrorInvalidParameter")
    assert "StartDateTime and EndDateTime" in answer.json()["error"]["message"]
    assert error(graph.get("/me/calendars/cal-otto/calendarView/delta", params=WINDOW)) == (404, "ErrorItemNotFound")


def test_a_delta_link_gives_what_changed_with_deletions_and_moves_out_as_removed(
    double: MicrosoftDouble, graph: httpx.Client
) -> None:
    # covers: SYNC-5
    moved = double.add_busy("cal-primary", T0, T0 + HOUR)
    leaving = double.add_busy("cal-primary", T0 + 2 * HOUR, T0 + 3 * HOUR)
    deleted = double.add_busy("cal-primary", T0 + 4 * HOUR, T0 + 5 * HOUR)
    untouched = double.add_busy("cal-primary", T0 + 6 * HOUR, T0 + 7 * HOUR)
    event = {
        "subject": "Intro call",
        "start": {"dateTime": "2026-03-03T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-03T10:30:00", "timeZone": "UTC"},
        "transactionId": "booking-1",
    }
    written = graph.post("/me/calendars/cal-primary/events", json=event).json()["id"]
    _, delta_link, _ = delta_round(graph, DELTA, params=WINDOW)

    double.move_event(moved, T0 + HOUR, T0 + 2 * HOUR)
    double.move_event(leaving, T0 + 30 * 24 * HOUR, T0 + 30 * 24 * HOUR + HOUR)  # out of the window
    double.delete_event(deleted)
    assert graph.delete(f"/me/events/{written}").status_code == 204
    new = double.add_busy("cal-primary", T0 + 8 * HOUR, T0 + 9 * HOUR)
    outside = double.add_busy("cal-primary", T0 - 30 * 24 * HOUR, T0 - 30 * 24 * HOUR + HOUR)
    double.add_busy("cal-other", T0, T0 + HOUR)
    # the window is the first call's: sending another one beside the token changes nothing
    items, next_link, _ = delta_round(graph, f"{delta_link}&startDateTime=2020-01-01T00:00:00Z")

    by_id = {item["id"]: item for item in items}
    assert set(by_id) == {moved, leaving, deleted, written, new, outside}
    assert untouched not in by_id
    removed = {"@odata.type": "#microsoft.graph.event", "@removed": {"reason": "deleted"}}
    for gone in (leaving, deleted, written, outside):
        assert by_id[gone] == {**removed, "id": gone}
    assert by_id[moved]["start"]["dateTime"] == "2026-03-02T09:00:00.0000000"
    assert by_id[new]["showAs"] == "busy"

    quiet, again, answers = delta_round(graph, next_link)
    assert quiet == []
    assert again != next_link
    assert answers[0].json()["@odata.deltaLink"] == again


def test_a_delta_round_pages_too_and_writes_through_graph_count(double: MicrosoftDouble, graph: httpx.Client) -> None:
    # covers: SYNC-5
    _, delta_link, _ = delta_round(graph, DELTA, params=WINDOW)
    added = [double.add_busy("cal-primary", T0 + hour * HOUR, T0 + (hour + 1) * HOUR) for hour in range(2)]
    body = {"start": {"dateTime": "2026-03-04T09:00:00", "timeZone": "UTC"}}
    body["end"] = {"dateTime": "2026-03-04T10:00:00", "timeZone": "UTC"}
    written = graph.post("/me/calendars/cal-primary/events", json=body).json()["id"]
    patched = graph.patch(f"/me/events/{written}", json={"subject": "Renamed"})
    assert patched.status_code == 200

    items, _, answers = delta_round(graph, delta_link, prefer="odata.maxpagesize=2")

    assert ids(items) == [*added, written]  # in the order they last changed; the patch counts once
    assert ["@odata.deltaLink" in answer.json() for answer in answers] == [False, True]
    assert items[-1]["subject"] == "Renamed"


def test_expired_delta_tokens_are_gone_and_strangers_are_refused(double: MicrosoftDouble, graph: httpx.Client) -> None:
    # covers: SYNC-5
    for hour in range(3):
        double.add_busy("cal-primary", T0 + hour * HOUR, T0 + (hour + 1) * HOUR)
    _, delta_link, _ = delta_round(graph, DELTA, params=WINDOW)
    half = graph.get(DELTA, params=WINDOW, headers={"Prefer": "odata.maxpagesize=1"}).json()["@odata.nextLink"]
    _, other_link, _ = delta_round(graph, "/me/calendars/cal-other/calendarView/delta", params=WINDOW)

    double.expire_delta_tokens("cal-primary")
    items, fresh_link, _ = delta_round(graph, DELTA, params=WINDOW)  # a full round starts over

    for link in (delta_link, half):
        gone = graph.get(link)
        assert error(gone) == (410, "SyncStateNotFound")
        assert gone.json()["error"]["message"].startswith("The sync state generation is not found")
    assert graph.get(other_link).status_code == 200  # another calendar's state is kept
    token = urlsplit(other_link).query.removeprefix("$deltatoken=")
    assert error(graph.get(DELTA, params={"$deltatoken": token})) == (400, "ErrorInvalidSyncStateData")
    assert error(graph.get(DELTA, params={"$deltatoken": "made-up"})) == (400, "ErrorInvalidSyncStateData")
    assert len(items) == 3
    assert graph.get(fresh_link).json()["value"] == []
    fresh = urlsplit(fresh_link).query.removeprefix("$deltatoken=")
    for other in graph_client(double, OTHER):  # a token is its mailbox's
        stolen = other.get("/me/calendarView/delta", params={"$deltatoken": fresh})
        assert error(stolen) == (400, "ErrorInvalidSyncStateData")


# -- subscriptions -----------------------------------------------------------------------------


def test_a_subscription_exists_once_its_address_answered_the_validation(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    expiration = datetime.now(UTC) + timedelta(minutes=4000)
    answer = subscribe(graph, hook, expirationDateTime=expiration.isoformat().replace("+00:00", "Z"))

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert GUID.match(body["id"])
    assert body["@odata.context"] == f"{double.graph_url}/$metadata#subscriptions/$entity"
    for key, value in {
        "resource": "me/calendars/cal-primary/events",
        "applicationId": CLIENT_ID,
        "changeType": "created,updated,deleted",
        "clientState": "kokous-secret",
        "notificationUrl": hook.url,
        "lifecycleNotificationUrl": None,
        "latestSupportedTlsVersion": "v1_2",
        "includeResourceData": False,
    }.items():
        assert body[key] == value, key
    assert GRAPH_TIME.match(body["expirationDateTime"])
    assert abs(datetime.fromisoformat(body["expirationDateTime"]) - expiration) < timedelta(milliseconds=1)
    assert GUID.match(body["creatorId"])
    [validation] = hook.validations()
    assert validation.body == b""
    assert validation.headers["content-type"] == "text/plain; charset=utf-8"
    token = parse_qs(validation.query)["validationToken"][0]
    [record] = double.validation_requests
    assert (record.url, record.token, record.status, record.accepted) == (hook.url, token, 200, True)
    assert " " in token  # it must be URL-decoded to be echoed right
    assert double.subscriptions() == [{key: value for key, value in body.items() if key != "@odata.context"}]
    fetched = graph.get(f"/subscriptions/{body['id']}")
    assert fetched.json() == body
    assert graph.get("/subscriptions").json()["value"] == double.subscriptions()


def test_the_validation_keeps_the_query_of_the_address(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    created(graph, hook, notificationUrl=f"{hook.url}?calendar=42")

    [validation] = hook.validations()
    query = parse_qs(validation.query)
    assert query["calendar"] == ["42"]
    assert validation.query.startswith("calendar=42&validationToken=")
    assert len(query["validationToken"]) == 1


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("encoded", "ValidationError"),  # the token echoed still URL-encoded
        ("json", "ValidationError"),  # the right token as application/json
        ("refuse", "ValidationError"),  # the right token with a 500
        ("late", "InvalidRequest"),  # after the validation timeout
    ],
)
def test_an_address_that_fails_the_validation_gets_no_subscription(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook, how: str, code: str
) -> None:
    # covers: SYNC-5
    double.validation_timeout = 0.3
    hook.validation["/hook"] = how

    answer = subscribe(graph, hook)

    assert error(answer) == (400, code)
    message = answer.json()["error"]["message"]
    if how == "late":
        assert message == "Subscription validation request timed out."
    else:
        assert message.startswith("Subscription validation request failed.")
    assert double.subscriptions() == []
    assert [record.accepted for record in double.validation_requests] == [False]
    double.add_busy("cal-primary", T0, T0 + HOUR)
    double.settle_notifications()
    assert double.notifications_sent == []


def test_a_lifecycle_address_is_validated_too(double: MicrosoftDouble, graph: httpx.Client, hook: Hook) -> None:
    # covers: SYNC-5
    hook.validation["/lifecycle"] = "encoded"

    answer = subscribe(graph, hook, lifecycleNotificationUrl=hook.lifecycle_url)

    assert error(answer) == (400, "ValidationError")
    assert [record.url for record in double.validation_requests] == [hook.url, hook.lifecycle_url]
    assert double.subscriptions() == []
    hook.validation["/lifecycle"] = "echo"
    assert created(graph, hook, lifecycleNotificationUrl=hook.lifecycle_url)["lifecycleNotificationUrl"] == (
        hook.lifecycle_url
    )


@pytest.mark.parametrize(
    ("fields", "status", "code", "message"),
    [
        ({"changeType": "created,moved"}, 400, "InvalidRequest", "Invalid 'changeType' attribute: 'moved'."),
        ({"clientState": "x" * 129}, 400, "InvalidRequest", None),
        (
            {"expirationDateTime": MISSING},
            400,
            "InvalidRequest",
            "expirationDateTime is a required property for subscription creation",
        ),
        ({"expirationDateTime": "2026-03-02T08:00:00"}, 400, "InvalidRequest", None),  # no offset
        (
            {"expirationDateTime": "in 10080 minutes"},
            400,
            "ExtensionError",
            "Subscription expiration can only be 10070 minutes in the future.",
        ),
        ({"expirationDateTime": "a minute ago"}, 400, "ExtensionError", None),
        ({"latestSupportedTlsVersion": "v1_3"}, 400, "ValidationError", None),
        ({"resource": "me/messages"}, 400, "ExtensionError", None),
        ({"resource": "me/calendars/cal-otto/events"}, 404, "ExtensionError", None),  # another mailbox's
        ({"resource": "me/calendars/cal-team/events"}, 403, "ExtensionError", None),  # shared with the owner
        ({"notificationUrl": "not a url"}, 400, "InvalidRequest", "Invalid notification url='not a url'."),
    ],
)
def test_a_subscription_request_is_checked(
    double: MicrosoftDouble,
    graph: httpx.Client,
    hook: Hook,
    fields: Json,
    status: int,
    code: str,
    message: str | None,
) -> None:
    # covers: SYNC-5
    times = {"in 10080 minutes": later(10080), "a minute ago": later(-1)}

    answer = subscribe(graph, hook, **{key: times.get(value, value) for key, value in fields.items()})

    assert error(answer) == (status, code)
    if message is not None:
        assert answer.json()["error"]["message"] == message
    assert double.subscriptions() == []
    assert hook.validations() == []  # checked before anything is validated


def test_the_default_calendar_and_the_quoted_form_can_be_subscribed(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    default = created(graph, hook, resource="/me/events", changeType="created")
    quoted = created(graph, hook, resource="me/calendars('cal-other')/events", changeType="created")

    primary_event = double.add_busy("cal-primary", T0, T0 + HOUR)
    other_event = double.add_busy("cal-other", T0, T0 + HOUR)
    sent = double.wait_for_notifications(2)

    assert {(item.subscription_id, item.item["resourceData"]["id"]) for item in sent} == {
        (default["id"], primary_event),
        (quoted["id"], other_event),
    }


def test_https_is_required_when_the_double_is_strict(tls_files: TLSFiles, hook: Hook) -> None:
    # covers: SYNC-5
    with MicrosoftDouble(tls_files, require_https=True) as double:
        double.add_account(OWNER)
        double.add_calendar(OWNER, "cal-primary", "Calendar", is_default=True)
        for graph in graph_client(double, OWNER):
            answer = subscribe(graph, hook)
            assert error(answer) == (400, "InvalidRequest")
            assert answer.json()["error"]["message"] == "NotificationUrl scheme='http' is not supported."
            secure = subscribe(graph, hook, notificationUrl="https://127.0.0.1:9/hook")
            assert error(secure) == (400, "ValidationError")  # https, but nobody answers there
            lifecycle = subscribe(
                graph, hook, notificationUrl="https://127.0.0.1:9/hook", lifecycleNotificationUrl=hook.url
            )
            assert lifecycle.json()["error"]["message"] == "LifecycleNotificationUrl scheme='http' is not supported."
    assert hook.validations() == []


# -- notifications -------------------------------------------------------------------------------


def test_each_change_is_notified_with_the_client_state(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    subscription = created(graph, hook)
    deletions = created(graph, hook, changeType="deleted", clientState=None)

    busy = double.add_busy("cal-primary", T0, T0 + HOUR)
    double.settle_notifications()
    double.move_event(busy, T0 + HOUR, T0 + 2 * HOUR)
    double.settle_notifications()
    body = {"start": {"dateTime": "2026-03-04T09:00:00", "timeZone": "UTC"}}
    body["end"] = {"dateTime": "2026-03-04T10:00:00", "timeZone": "UTC"}
    written = graph.post("/me/calendars/cal-primary/events", json=body).json()["id"]
    double.settle_notifications()
    assert graph.delete(f"/me/events/{written}").status_code == 204
    double.add_busy("cal-other", T0, T0 + HOUR)  # nobody subscribed to it
    sent = double.wait_for_notifications(4, subscription_id=subscription["id"])
    double.settle_notifications()

    assert [(item.change_type, item.item["resourceData"]["id"]) for item in sent] == [
        ("created", busy),
        ("updated", busy),
        ("created", written),
        ("deleted", written),
    ]
    oid = subscription["creatorId"]
    first = sent[0].item
    assert first == {
        "subscriptionId": subscription["id"],
        "subscriptionExpirationDateTime": subscription["expirationDateTime"],
        "changeType": "created",
        "resource": f"Users/{oid}/Events/{busy}",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": f"Users/{oid}/Events/{busy}",
            "@odata.etag": first["resourceData"]["@odata.etag"],
            "id": busy,
        },
        "clientState": "kokous-secret",
        "tenantId": TENANT_ID,
    }
    assert sent[1].item["resourceData"]["@odata.etag"] != first["resourceData"]["@odata.etag"]
    [deleted] = double.wait_for_notifications(1, subscription_id=deletions["id"])
    assert (deleted.change_type, deleted.item["clientState"]) == ("deleted", None)
    assert all(item.kind == "change" and item.status == 202 for item in double.notifications_sent)
    received = hook.posts()
    assert sum(len(request.json()["value"]) for request in received) == 5
    assert all(request.headers["content-type"] == "application/json; charset=utf-8" for request in received)
    assert received[0].json() == {"value": [first]}  # delivered before the next change was made


def test_changes_queued_for_one_address_go_in_one_post(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    first = created(graph, hook)
    second = created(graph, hook, resource="me/calendars/cal-other/events")

    with double.hold_notifications():
        made = [double.add_busy("cal-primary", T0 + hour * HOUR, T0 + (hour + 1) * HOUR) for hour in range(3)]
        other = double.add_busy("cal-other", T0, T0 + HOUR)
    sent = double.wait_for_notifications(4)

    [post] = hook.posts()
    assert [item["resourceData"]["id"] for item in post.json()["value"]] == [*made, other]
    assert [item.subscription_id for item in sent] == [first["id"]] * 3 + [second["id"]]
    assert len({item.batch for item in sent}) == 1


def test_a_refusing_receiver_is_recorded(double: MicrosoftDouble, graph: httpx.Client, hook: Hook) -> None:
    # covers: SYNC-5
    created(graph, hook)
    hook.answer = 500

    double.add_busy("cal-primary", T0, T0 + HOUR)
    [sent] = double.wait_for_notifications(1)

    assert (sent.status, sent.error) == (500, None)


def test_renewal_is_limited_and_a_deleted_subscription_is_gone(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    subscription = created(graph, hook)
    path = f"/subscriptions/{subscription['id']}"

    renewed = graph.patch(path, json={"expirationDateTime": later(4000)})
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] > subscription["expirationDateTime"]
    too_far = graph.patch(path, json={"expirationDateTime": later(10080)})
    assert error(too_far) == (400, "ExtensionError")
    assert error(graph.patch(path, json={"expirationDateTime": later(-5)})) == (400, "ExtensionError")
    nothing = graph.patch(path, json={})
    assert error(nothing) == (400, "InvalidRequest")
    assert "'expirationDateTime' or 'notificationUrl'" in nothing.json()["error"]["message"]
    lifecycle = graph.patch(path, json={"lifecycleNotificationUrl": hook.lifecycle_url})
    assert error(lifecycle) == (400, "InvalidRequest")  # it can only be given at creation
    assert double.subscriptions()[0]["expirationDateTime"] == renewed.json()["expirationDateTime"]
    moved = graph.patch(path, json={"notificationUrl": f"{hook.url}?moved=1"})
    assert moved.json()["notificationUrl"] == f"{hook.url}?moved=1"
    assert len(hook.validations()) == 2  # a new address is validated first
    for other in graph_client(double, OTHER):  # only its creator sees it
        assert error(other.get(path)) == (404, "ResourceNotFound")
        assert error(other.delete(path)) == (404, "ResourceNotFound")
        assert other.get("/subscriptions").json()["value"] == []

    assert graph.delete(path).status_code == 204
    double.add_busy("cal-primary", T0, T0 + HOUR)
    double.settle_notifications()

    assert double.notifications_sent == []
    assert double.subscriptions() == []
    for answer in (graph.delete(path), graph.get(path), graph.patch(path, json={"expirationDateTime": later(60)})):
        assert error(answer) == (404, "ResourceNotFound")
        assert answer.json()["error"]["message"] == "The object was not found."


def test_an_expired_subscription_delivers_nothing(double: MicrosoftDouble, graph: httpx.Client, hook: Hook) -> None:
    # covers: SYNC-5
    subscription = created(graph, hook)
    double.expire_subscription(subscription["id"])

    double.add_busy("cal-primary", T0, T0 + HOUR)
    double.settle_notifications()

    assert double.notifications_sent == []
    assert double.subscriptions() == []
    assert error(graph.get(f"/subscriptions/{subscription['id']}")) == (404, "ResourceNotFound")
    renewal = graph.patch(f"/subscriptions/{subscription['id']}", json={"expirationDateTime": later(60)})
    assert error(renewal) == (404, "ResourceNotFound")


def test_lifecycle_notifications_go_to_the_lifecycle_address(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    subscription = created(graph, hook, lifecycleNotificationUrl=hook.lifecycle_url)
    path = f"/subscriptions/{subscription['id']}"

    double.require_reauthorization(subscription["id"])
    [challenge] = double.wait_for_notifications(1, kind="reauthorizationRequired")
    double.add_busy("cal-primary", T0, T0 + HOUR)  # lost while the reauthorization is pending
    double.settle_notifications()
    assert challenge.url == hook.lifecycle_url
    assert challenge.item == {
        "subscriptionId": subscription["id"],
        "subscriptionExpirationDateTime": subscription["expirationDateTime"],
        "tenantId": TENANT_ID,
        "clientState": "kokous-secret",
        "lifecycleEvent": "reauthorizationRequired",
    }
    assert hook.posts() == []

    reauthorized = graph.post(f"{path}/reauthorize")
    assert reauthorized.status_code == 204
    double.add_busy("cal-primary", T0 + HOUR, T0 + 2 * HOUR)
    [change] = double.wait_for_notifications(1, kind="change")
    assert change.item["changeType"] == "created"

    double.miss_notifications(subscription["id"])
    double.require_reauthorization(subscription["id"])
    assert graph.patch(path, json={"expirationDateTime": later(120)}).status_code == 200  # renewing reauthorizes
    double.remove_subscription(subscription["id"])
    kinds = [item.kind for item in double.wait_for_notifications(5, subscription_id=subscription["id"])]
    assert kinds == ["reauthorizationRequired", "change", "missed", "reauthorizationRequired", "subscriptionRemoved"]
    lifecycle_posts = [
        item["lifecycleEvent"] for request in hook.posts("/lifecycle") for item in request.json()["value"]
    ]
    assert lifecycle_posts == ["reauthorizationRequired", "missed", "reauthorizationRequired", "subscriptionRemoved"]
    assert error(graph.get(path)) == (404, "ResourceNotFound")
    double.add_busy("cal-primary", T0 + 2 * HOUR, T0 + 3 * HOUR)
    double.settle_notifications()
    assert len(hook.posts()) == 1  # nothing more after the removal


def test_without_a_lifecycle_address_no_lifecycle_notification_is_sent(
    double: MicrosoftDouble, graph: httpx.Client, hook: Hook
) -> None:
    # covers: SYNC-5
    subscription = created(graph, hook)

    double.miss_notifications(subscription["id"])
    double.remove_subscription(subscription["id"])
    double.settle_notifications()

    assert double.notifications_sent == []
    assert hook.posts("/lifecycle") == []
    assert hook.posts() == []


def test_requests_are_counted_by_route(double: MicrosoftDouble, graph: httpx.Client, hook: Hook) -> None:
    # covers: SYNC-5
    double.add_busy("cal-primary", T0, T0 + HOUR)
    delta_round(graph, DELTA, params=WINDOW)
    delta_round(graph, DELTA, params=WINDOW)
    created(graph, hook)
    graph.get(f"/me/calendars/cal-primary/calendarView?{urlencode(WINDOW)}")

    counts = double.request_counts()

    assert counts["GET /v1.0/me/calendars/{calendar_id}/calendarView/delta"] == 2
    assert counts["GET /v1.0/me/calendars/{calendar_id}/calendarView"] == 1
    assert counts["POST /v1.0/subscriptions"] == 1
    assert uuid.UUID(double.subscriptions()[0]["id"])
