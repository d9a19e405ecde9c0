"""Lost calendar access, provider by provider: surfaced at once, nothing booked wrongly, repaired by reconnecting.

Each provider is broken its own way through the server's real adapter: Google and Microsoft
revoke the grant (OAuth doubles), Exchange's mailbox password changes (EWS double over HTTPS),
and a real Radicale gets a new password in its htpasswd file. Status changes arrive on real
WebSocket clients and the owner's email reaches a real SMTP sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any, Protocol

import pytest
from caldav.davclient import DAVClient
from sqlmodel import select

from db.models import OutboxMessage
from scheduling import outbox
from server.settings import Settings
from tests.api.test_connect_forms import (
    ALICE,
    ALICE_PASSWORD,
    MAILBOX,
    PASSWORD,
    connect_caldav,
    connect_exchange,
    exchange_form,
)
from tests.api.test_connect_microsoft import ACCOUNT as MICROSOFT_ACCOUNT
from tests.api.test_connect_microsoft import DASHBOARD, DEFAULT
from tests.api.test_connect_microsoft import connect as connect_microsoft
from tests.doubles.exchange import ITEM_READS, ExchangeDouble
from tests.doubles.google import GoogleDouble
from tests.doubles.microsoft import MicrosoftDouble
from tests.doubles.radicale import RadicaleServer
from tests.doubles.server import TLSFiles, make_tls_files
from tests.support.booking_helpers import NOW, Owner, book, slots
from tests.support.calendar_rows import connect_calendar
from tests.support.connect_helpers import (
    DISCONNECT,
    connect_google,
    connections,
    owner_allowed_to_connect,
    with_google,
    with_microsoft,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink
from tests.support.status_helpers import STATUS_CHANGED, inactive_mail, subscribed
from tests.support.ws_client import Watcher, ws_session

# msal warns on every auth-code flow that is not form_post; the callback is a GET, as clients rely on.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

GOOGLE_ACCOUNT = "owner.google@example.com"
CHANGED_PASSWORD = "changed-by-the-owner"
TUESDAY, WEDNESDAY = "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00"
MAX_REFRESHES = 4
CALENDAR_VIEW = f"GET /v1.0/me/calendars/{DEFAULT}/calendarView"


class Case(Protocol):
    """One provider: how its account is connected, broken, and connected again through the API."""

    account: str
    reason: str  # the calendars' inactiveReason once access is lost
    refreshes: int  # refused refreshes in a row before the calendars turn inactive

    def configure(self, settings: Settings) -> Settings: ...

    async def connect(self, server: LiveServer, owner: Owner) -> None: ...

    def break_access(self) -> None: ...

    async def reconnect(self, server: LiveServer, owner: Owner) -> None:
        """Access allowed again (a new grant or the new password) and the same account connected."""
        ...


class GoogleCase:
    account, reason, refreshes = GOOGLE_ACCOUNT, "invalid_grant", 1

    def __init__(self, double: GoogleDouble) -> None:
        self.double = double
        double.add_account(GOOGLE_ACCOUNT, time_zone="Europe/Helsinki")

    def configure(self, settings: Settings) -> Settings:
        return with_google(settings, self.double)

    async def connect(self, server: LiveServer, owner: Owner) -> None:
        assert (await connect_google(server, self.double, owner, GOOGLE_ACCOUNT)).startswith(
            f"{DASHBOARD}?connected=google&confirm="
        )

    def break_access(self) -> None:
        self.double.revoke(GOOGLE_ACCOUNT)
        self.double.expire_access_tokens()

    async def reconnect(self, server: LiveServer, owner: Owner) -> None:
        self.double.add_account(GOOGLE_ACCOUNT, time_zone="Europe/Helsinki")  # the owner consents again
        await self.connect(server, owner)

    def refuse_client(self) -> None:
        """The next token refresh says this server's OAuth client is unknown (a settings mistake)."""
        self.double.expire_access_tokens()
        self.double.fail("POST /token", status=401, body={"error": "invalid_client", "error_description": "Unknown."})


class MicrosoftCase:
    account, reason, refreshes = MICROSOFT_ACCOUNT, "AADSTS50173", 1

    def __init__(self, double: MicrosoftDouble, tls: TLSFiles) -> None:
        self.double, self.tls = double, tls
        double.add_account(MICROSOFT_ACCOUNT)
        double.add_calendar(MICROSOFT_ACCOUNT, DEFAULT, "Calendar", is_default=True)

    def configure(self, settings: Settings) -> Settings:
        return with_microsoft(settings, self.double, self.tls)

    async def connect(self, server: LiveServer, owner: Owner) -> None:
        assert (await connect_microsoft(server, self.double, owner)).startswith(
            f"{DASHBOARD}?connected=microsoft&confirm="
        )

    def break_access(self) -> None:
        self.double.revoke(MICROSOFT_ACCOUNT)
        self.double.expire_access_tokens()

    async def reconnect(self, server: LiveServer, owner: Owner) -> None:
        self.double.add_account(MICROSOFT_ACCOUNT)  # a fresh grant; the mailbox's calendars stay
        await self.connect(server, owner)

    def refuse_client(self) -> None:
        """The next token refresh says this server's client secret is wrong (a settings mistake)."""
        self.double.expire_access_tokens()
        wrong_secret = {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215],
        }
        self.double.fail("POST /common/oauth2/v2.0/token", status=401, body=wrong_secret)

    def storm(self) -> int:
        """Token and Graph failures that say nothing about the grant: how many requests fail."""
        self.double.expire_access_tokens()  # the token endpoint is needed again once Graph answers
        self.double.fail("POST /common/oauth2/v2.0/token", status=500, times=2)
        unavailable = {"error": {"code": "serviceNotAvailable", "message": "Service unavailable."}}
        self.double.fail(CALENDAR_VIEW, status=503, body=unavailable, times=3)
        throttled = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
        self.double.fail(CALENDAR_VIEW, status=429, body=throttled, headers={"Retry-After": "30"}, times=3)
        self.double.fail(CALENDAR_VIEW, delay=1.5, times=2)  # longer than the provider timeout
        return 10


class ExchangeCase:
    account, reason, refreshes = MAILBOX, "UnauthorizedError", 2  # one 401 may be an NTLM fluke (INACT-1)

    def __init__(self, double: ExchangeDouble, tls: TLSFiles) -> None:
        self.double, self.tls = double, tls
        double.add_mailbox(MAILBOX, PASSWORD)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"ca_bundle": self.tls.ca_path})

    async def connect(self, server: LiveServer, owner: Owner, password: str = PASSWORD) -> None:
        connected = await connect_exchange(server, owner, exchange_form(self.double, password=password))
        assert connected["__typename"] == "CalendarConnection", connected

    def break_access(self) -> None:
        self.double.change_password(MAILBOX, CHANGED_PASSWORD)

    async def reconnect(self, server: LiveServer, owner: Owner) -> None:
        await self.connect(server, owner, CHANGED_PASSWORD)  # the form again, with the new password

    def storm(self) -> int:
        """EWS failures that say nothing about the password: how many requests fail."""
        self.double.fail(ITEM_READS, status=503, times=3)  # every read of items, the sync's included
        self.double.fail(ITEM_READS, status=429, headers={"Retry-After": "30"}, times=3)
        self.double.fail(ITEM_READS, status=500, body=ExchangeDouble.server_busy_fault(30_000), times=2)
        self.double.fail(ITEM_READS, delay=1.5, times=2)  # longer than the provider timeout
        return 10


class CalDAVCase:
    account, reason, refreshes = "alice@127.0.0.1", "401", 1

    def __init__(self, radicale: RadicaleServer) -> None:
        self.radicale = radicale
        radicale.set_password(ALICE, ALICE_PASSWORD)  # Radicale outlives a test
        with DAVClient(radicale.url, username=ALICE, password=ALICE_PASSWORD, enable_rfc6764=False) as client:
            principal = client.principal()
            for calendar in principal.calendars():
                calendar.delete()
            principal.make_calendar(name="Work", cal_id="work")

    def configure(self, settings: Settings) -> Settings:
        return settings

    async def connect(self, server: LiveServer, owner: Owner, password: str = ALICE_PASSWORD) -> None:
        connected = await connect_caldav(server, owner, self.radicale.url, password)
        assert connected["__typename"] == "CalendarConnection", connected

    def break_access(self) -> None:
        self.radicale.set_password(ALICE, CHANGED_PASSWORD)

    async def reconnect(self, server: LiveServer, owner: Owner) -> None:
        await self.connect(server, owner, CHANGED_PASSWORD)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("inactive-tls"))


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with RadicaleServer(tmp_path_factory.mktemp("inactive-radicale"), {ALICE: ALICE_PASSWORD}) as server:
        yield server


@pytest.fixture(params=["google", "microsoft", "exchange", "caldav"])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    """Only the provider under test runs (Radicale starts once, for the CalDAV cases)."""
    with ExitStack() as stack:
        if request.param == "google":
            yield GoogleCase(stack.enter_context(GoogleDouble()))
        elif request.param == "microsoft":
            tls = request.getfixturevalue("tls")
            yield MicrosoftCase(stack.enter_context(MicrosoftDouble(tls)), tls)
        elif request.param == "exchange":
            tls = request.getfixturevalue("tls")
            yield ExchangeCase(stack.enter_context(ExchangeDouble(tls=tls)), tls)
        else:
            yield CalDAVCase(request.getfixturevalue("radicale"))


@pytest.fixture
async def server(settings: Settings, case: Case, sink: SmtpSink) -> AsyncIterator[LiveServer]:
    configured = case.configure(settings).model_copy(update={"smtp_url": sink.url, "provider_timeout": 1.0})
    async with start_live_server(configured, clock=lambda: NOW) as live:
        yield live


# -- helpers ----------------------------------------------------------------------------------------


async def the_calendar(server: LiveServer, owner: Owner) -> dict[str, Any]:
    """The owner's one connection and its one calendar, merged: the tests keep one of each."""
    (connection,) = await connections(server, owner.token)
    (calendar,) = connection["calendars"]
    return {**calendar, "connectionId": connection["id"], "accountEmail": connection["accountEmail"]}


async def refresh_until_inactive(server: LiveServer, owner: Owner) -> int:
    """Refresh busy time as the background sync would until the calendar is inactive: how many it took."""
    connection_id = uuid.UUID((await the_calendar(server, owner))["connectionId"])
    for attempt in range(1, MAX_REFRESHES + 1):
        assert not await server.services.busy_sync.refresh(connection_id)
        if (await the_calendar(server, owner))["status"] == "INACTIVE":
            return attempt
    raise AssertionError(f"still active after {MAX_REFRESHES} refused refreshes")


async def inactive_notices(server: LiveServer) -> list[OutboxMessage]:
    async with server.services.db.session() as session:
        rows = await session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == outbox.EMAIL_OWNER_CALENDAR_INACTIVE)
        )
        return list(rows.all())


async def status_event(watcher: Watcher) -> dict[str, Any]:
    pushed = await watcher.next()
    assert isinstance(pushed, dict), pushed
    return dict(pushed["calendarStatusChanged"])


# -- tests ------------------------------------------------------------------------------------------


async def test_lost_access_is_pushed_refuses_bookings_mails_once_and_reconnecting_repairs_it(
    server: LiveServer, case: Case, sink: SmtpSink
) -> None:
    # covers: INACT-1, INACT-2, INACT-3, INACT-4, SUB-2
    owner = await owner_allowed_to_connect(server)
    stranger = await owner_allowed_to_connect(server, with_page=False)
    theirs_connected = await connect_calendar(server.services, stranger.user)  # no provider behind it
    await case.connect(server, owner)
    calendar = await the_calendar(server, owner)
    assert (calendar["accountEmail"], calendar["status"], calendar["integrated"]) == (case.account, "ACTIVE", True)
    assert await slots(server, TUESDAY, WEDNESDAY)

    before = server.services.bus.hub.stats.subscribers
    async with (
        ws_session(server.ws_url, "graphql-transport-ws", token=owner.token) as mine,
        ws_session(server.ws_url, "graphql-transport-ws", token=stranger.token) as theirs,
    ):
        my_status, their_status = Watcher(mine, {}, STATUS_CHANGED), Watcher(theirs, {}, STATUS_CHANGED)
        await subscribed(server, before + 2)

        case.break_access()
        assert await refresh_until_inactive(server, owner) == case.refreshes

        inactive = await status_event(my_status)
        assert (inactive["status"], inactive["reason"]) == ("INACTIVE", case.reason)
        assert (inactive["calendar"]["id"], inactive["calendar"]["status"]) == (calendar["id"], "INACTIVE")
        assert inactive["calendar"]["inactiveReason"] == case.reason
        assert await slots(server, TUESDAY, WEDNESDAY) == []  # nothing bookable while inactive

        for hour in ("10", "11", "12"):
            refused = await book(server, f"2026-12-01T{hour}:00:00+02:00")
            assert refused["__typename"] == "CalendarInactive", refused
        (mail,) = await eventually(lambda: _mail(sink), lambda found: len(found) >= 1, "the owner's email")
        assert mail.rcpt_tos == [owner.user.email]
        assert case.account in mail.message.get_body(preferencelist=("plain",)).get_content()
        # One incident, one email, however many attempts; marked sent once the worker's commit lands.
        await eventually(
            lambda: inactive_notices(server), lambda found: len(found) == 1 and found[0].done_at is not None, "sent"
        )

        await case.reconnect(server, owner)
        active = await status_event(my_status)
        assert (active["status"], active["reason"]) == ("ACTIVE", None)
        assert (active["calendar"]["id"], active["calendar"]["inactiveReason"]) == (calendar["id"], None)
        assert (await the_calendar(server, owner))["connectionId"] == calendar["connectionId"]  # the same one
        assert (await book(server, "2026-12-01T10:00:00+02:00"))["__typename"] == "Booking"

        # The stranger's own calendar goes now: its removal is the first thing the stranger hears,
        # so none of the owner's changes, all published before it, reached the stranger.
        assert theirs_connected.calendar_id is not None
        removed = await server.graphql(DISCONNECT, {"id": str(theirs_connected.connection_id)}, token=stranger.token)
        assert removed["data"]["disconnectCalendarConnection"]["__typename"] == "Disconnected", removed
        first_of_theirs = await status_event(their_status)
        assert (first_of_theirs["status"], first_of_theirs["calendar"]["id"]) == (
            "REMOVED",
            str(theirs_connected.calendar_id),
        )
        assert my_status.messages.empty()
        await my_status.close()
        await their_status.close()
    assert len(inactive_mail(sink)) == 1


@pytest.mark.parametrize("case", ["microsoft", "exchange"], indirect=True)
async def test_a_storm_of_transient_failures_marks_nothing_inactive(server: LiveServer, case: Case) -> None:
    # covers: INACT-1, BOOK-7
    assert isinstance(case, MicrosoftCase | ExchangeCase)
    owner = await owner_allowed_to_connect(server)
    await case.connect(server, owner)
    connection_id = uuid.UUID((await the_calendar(server, owner))["connectionId"])
    failing = case.storm()

    outcomes = [await server.services.busy_sync.refresh(connection_id) for _ in range(failing + 1)]

    assert outcomes == [False] * failing + [True]  # each failure was felt once, then the storm passed
    calendar = await the_calendar(server, owner)
    assert (calendar["status"], calendar["inactiveReason"]) == ("ACTIVE", None)
    assert (await book(server, "2026-12-01T10:00:00+02:00"))["__typename"] == "Booking"


@pytest.mark.parametrize("case", ["google", "microsoft"], indirect=True)
async def test_a_refused_server_client_is_not_blamed_on_the_owner(
    server: LiveServer, case: Case, sink: SmtpSink
) -> None:
    # covers: INACT-1
    assert isinstance(case, GoogleCase | MicrosoftCase)
    owner = await owner_allowed_to_connect(server)
    await case.connect(server, owner)
    connection_id = uuid.UUID((await the_calendar(server, owner))["connectionId"])
    case.refuse_client()

    assert not await server.services.busy_sync.refresh(connection_id)  # felt, and retried later

    calendar = await the_calendar(server, owner)
    assert (calendar["status"], calendar["inactiveReason"]) == ("ACTIVE", None)
    assert await inactive_notices(server) == []  # nobody is told to reconnect
    assert await server.services.busy_sync.refresh(connection_id)  # the same grant works again
    assert (await book(server, "2026-12-01T10:00:00+02:00"))["__typename"] == "Booking"


async def _mail(sink: SmtpSink) -> list[Any]:
    return inactive_mail(sink)
