"""Only fetched time is offered, and the check at booking time decides: provider by provider.

The same promises run through the server's real Google adapter (against the Google double), its
real Microsoft adapter (msal and Graph over HTTPS, against the Microsoft double) and its real
Exchange adapter (exchangelib over HTTPS, against the EWS double), the last two trusting the
session's CA through ``ca_bundle``. Every double answers busy time for exactly the asked window
(Google's events.list ``timeMin``/``timeMax``, Graph's calendarView ``startDateTime``/``endDateTime``,
EWS's CalendarView ``StartDate``/``EndDate``), so time the server never asked about is really
unknown to it. Google-only rules (a horizon made longer, the booking-time fallback, moves) are in
``test_known_time.py``. Status changes arrive on a real WebSocket; emails reach a real SMTP sink.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

import pytest

from server.settings import Settings
from tests.api.test_connect_forms import MAILBOX, PASSWORD, connect_exchange, exchange_form
from tests.api.test_connect_microsoft import ACCOUNT, BOSS, DASHBOARD, DEFAULT, SHARED, TEAM, written
from tests.api.test_connect_microsoft import connect as connect_microsoft
from tests.api.test_known_time import ACCOUNT as GOOGLE_ACCOUNT
from tests.api.test_known_time import (
    EVENTS_LIST,
    FREE_BUSY,
    asked_windows,
    at,
    create_page,
    day,
    refused_three_times,
    slots_on,
)
from tests.api.test_known_time import TEAM as GOOGLE_TEAM
from tests.doubles.exchange import EWS_PATH, ITEM_READS, MESSAGES, ExchangeDouble
from tests.doubles.google import GoogleDouble
from tests.doubles.microsoft import MicrosoftDouble
from tests.doubles.server import TLSFiles, make_tls_files
from tests.support.booking_helpers import NOW, Owner, book
from tests.support.connect_helpers import (
    REMOVE,
    SET_INTEGRATED,
    booking_row,
    connect_google,
    connections,
    owner_allowed_to_connect,
    with_google,
    with_microsoft,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink
from tests.support.status_helpers import inactive_mail, status_event, watching_status

# msal warns on every auth-code flow that is not form_post; the callback is a GET, as clients rely on.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

CALENDAR_VIEW = "/calendarView"  # Graph's busy-time call, one per calendar
SHARED_VIEW = f"GET /v1.0/me/calendars/{SHARED}/calendarView"
UNAVAILABLE = {"error": {"code": "serviceNotAvailable", "message": "Service unavailable."}}


class Provider(Protocol):
    """One provider behind the server's real adapter: connected through the API, given busy time."""

    def configure(self, settings: Settings) -> Settings: ...

    async def connect(self, server: LiveServer, owner: Owner) -> None: ...

    def add_busy(self, start: datetime, end: datetime, *, second: bool = False) -> None:
        """A meeting on the primary calendar (or on the account's second calendar, "Team")."""
        ...

    def asked_windows(self) -> list[tuple[datetime, datetime]]:
        """Every busy-time window the server asked the provider for, in order."""
        ...

    def fail_busy(self) -> None:
        """Every busy-time call now fails in passing (a 503)."""
        ...

    def recover(self) -> None: ...


class Google:
    def __init__(self, double: GoogleDouble) -> None:
        self.double = double
        double.add_account(GOOGLE_ACCOUNT, time_zone="Europe/Helsinki")
        double.add_calendar(GOOGLE_ACCOUNT, GOOGLE_TEAM, summary="Team", access_role="reader")

    def configure(self, settings: Settings) -> Settings:
        return with_google(settings, self.double)

    async def connect(self, server: LiveServer, owner: Owner) -> None:
        assert (await connect_google(server, self.double, owner, GOOGLE_ACCOUNT)).startswith(
            f"{DASHBOARD}?connected=google&confirm="
        )

    def add_busy(self, start: datetime, end: datetime, *, second: bool = False) -> None:
        self.double.add_busy(GOOGLE_TEAM if second else GOOGLE_ACCOUNT, start, end)

    def asked_windows(self) -> list[tuple[datetime, datetime]]:
        return asked_windows(self.double)

    def fail_busy(self) -> None:
        unavailable = {"error": {"code": 503, "message": "Backend Error"}}
        self.double.fail(EVENTS_LIST, status=503, body=unavailable, times=100)  # the sync reads events
        self.double.fail(FREE_BUSY, status=503, body=unavailable, times=100)

    def recover(self) -> None:
        self.double.clear_faults()


class Microsoft:
    def __init__(self, double: MicrosoftDouble, tls: TLSFiles) -> None:
        self.double, self.tls = double, tls
        double.add_account(ACCOUNT)
        double.add_calendar(ACCOUNT, DEFAULT, "Calendar", is_default=True)
        double.add_calendar(ACCOUNT, TEAM, "Team", can_edit=False)
        double.add_calendar(ACCOUNT, SHARED, "Boss", can_edit=False, owner_email=BOSS)  # shared with the owner

    def configure(self, settings: Settings) -> Settings:
        return with_microsoft(settings, self.double, self.tls)

    async def connect(self, server: LiveServer, owner: Owner) -> None:
        assert (await connect_microsoft(server, self.double, owner)).startswith(
            f"{DASHBOARD}?connected=microsoft&confirm="
        )

    def add_busy(self, start: datetime, end: datetime, *, second: bool = False) -> None:
        self.double.add_busy(TEAM if second else DEFAULT, start, end)

    def asked_windows(self) -> list[tuple[datetime, datetime]]:
        windows = []
        for request in self.double.requests_to(CALENDAR_VIEW):
            query = dict(parse_qsl(request.query))
            windows.append(
                (datetime.fromisoformat(query["startDateTime"]), datetime.fromisoformat(query["endDateTime"]))
            )
        return windows

    def fail_busy(self) -> None:
        self.double.fail(CALENDAR_VIEW, status=503, body=UNAVAILABLE, times=100)

    def recover(self) -> None:
        self.double.clear_faults()


class Exchange:
    def __init__(self, double: ExchangeDouble, tls: TLSFiles) -> None:
        self.double, self.tls = double, tls
        double.add_mailbox(MAILBOX, PASSWORD)
        self.team = double.add_calendar(MAILBOX, "Team")

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"ca_bundle": self.tls.ca_path})

    async def connect(self, server: LiveServer, owner: Owner) -> None:
        connected = await connect_exchange(server, owner, exchange_form(self.double))
        assert connected["__typename"] == "CalendarConnection", connected

    def add_busy(self, start: datetime, end: datetime, *, second: bool = False) -> None:
        self.double.add_busy(MAILBOX, start, end, calendar_id=self.team if second else None)

    def asked_windows(self) -> list[tuple[datetime, datetime]]:
        windows = []
        for request in self.double.requests_to(f"POST {EWS_PATH}"):
            view = ET.fromstring(request.body).find(f".//{{{MESSAGES}}}CalendarView")
            if view is not None:
                start, end = view.get("StartDate", ""), view.get("EndDate", "")
                windows.append((datetime.fromisoformat(start), datetime.fromisoformat(end)))
        return windows

    def fail_busy(self) -> None:
        self.double.fail(ITEM_READS, status=503, times=100)  # every read of items, the sync's included

    def recover(self) -> None:
        self.double.clear_faults()


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("known-time-tls"))


@pytest.fixture(params=["google", "microsoft", "exchange"])
def provider(request: pytest.FixtureRequest, tls: TLSFiles) -> Iterator[Provider]:
    with ExitStack() as stack:
        if request.param == "google":
            yield Google(stack.enter_context(GoogleDouble()))
        elif request.param == "microsoft":
            yield Microsoft(stack.enter_context(MicrosoftDouble(tls)), tls)
        else:
            yield Exchange(stack.enter_context(ExchangeDouble(version="EXCHANGE_2016", tls=tls)), tls)


@pytest.fixture
async def server(settings: Settings, provider: Provider, sink: SmtpSink) -> AsyncIterator[LiveServer]:
    configured = provider.configure(settings).model_copy(update={"smtp_url": sink.url, "provider_timeout": 1.0})
    async with start_live_server(configured, clock=lambda: NOW) as live:
        yield live


# -- helpers ----------------------------------------------------------------------------------------


async def calendars_by_name(server: LiveServer, owner: Owner) -> tuple[str, dict[str, dict[str, Any]]]:
    """The owner's one connection's id and its calendars by name."""
    (connection,) = await connections(server, owner.token)
    return connection["id"], {calendar["name"]: calendar for calendar in connection["calendars"]}


async def _inactive_mail(sink: SmtpSink) -> list[Any]:
    return inactive_mail(sink)


# -- tests ------------------------------------------------------------------------------------------


async def test_a_page_created_after_connecting_offers_only_what_was_fetched_on_the_first_query(
    server: LiveServer, provider: Provider
) -> None:
    # covers: BOOK-8, CAL-2, CAL-3
    owner = await owner_allowed_to_connect(server, with_page=False)
    provider.add_busy(day(100, 10), day(100, 11))  # a meeting on day 100, a Wednesday
    await provider.connect(server, owner)
    before_the_page = provider.asked_windows()
    assert before_the_page  # connecting fetched busy time
    assert max(end for _, end in before_the_page) < day(100)  # no page yet: day 100 was never asked

    owner.page_id = await create_page(server, owner, bookingHorizonDays=120)
    answer = await slots_on(server, 100)

    assert at(100, 10) not in answer.starts  # the owner's meeting, on the very first query
    assert at(100, 10, 30) not in answer.starts
    assert at(100, 9) in answer.starts  # the rest of the day is known, so offered
    assert at(100, 9, 30) in answer.starts
    assert at(100, 11) in answer.starts
    assert at(100, 16, 30) in answer.starts
    assert answer.complete is True
    after_the_page = provider.asked_windows()[len(before_the_page) :]
    assert max(end for _, end in after_the_page) >= day(121)  # the whole new horizon, asked once the page existed


@pytest.mark.parametrize("provider", ["microsoft"], indirect=True)
async def test_a_calendar_unshared_at_graph_turns_inactive_at_booking_and_removing_it_restores_booking(
    server: LiveServer, provider: Provider, sink: SmtpSink
) -> None:
    # covers: BOOK-9, INACT-1, INACT-2, INACT-3, INACT-4, SUB-2, CAL-2
    assert isinstance(provider, Microsoft)
    microsoft = provider.double
    owner = await owner_allowed_to_connect(server)  # the intro page: Monday and Tuesday, 09-17
    microsoft.add_busy(SHARED, day(1, 14), day(1, 15))  # the boss's meeting, Tuesday 14:00
    await provider.connect(server, owner)
    connection_id, listed = await calendars_by_name(server, owner)
    boss, primary = listed["Boss"], listed["Calendar"]
    integrated = await server.graphql(SET_INTEGRATED, {"id": boss["id"], "on": True}, token=owner.token)
    assert integrated["data"]["setCalendarIntegrated"]["integrated"] is True
    shared = await slots_on(server, 1)
    assert at(1, 14) not in shared.starts  # the shared calendar's time counts
    assert at(1, 10) in shared.starts

    microsoft.unshare(SHARED)  # the boss stops sharing it; the cache does not know yet
    async with watching_status(server, owner) as status:
        await refused_three_times(server)
        assert microsoft.requests_to(SHARED_VIEW)  # Graph was asked about it, and answered 404

        event = await status_event(status)
        assert (event["status"], event["reason"]) == ("INACTIVE", "ErrorItemNotFound")
        assert (event["calendar"]["id"], event["calendar"]["status"]) == (boss["id"], "INACTIVE")
        _, after = await calendars_by_name(server, owner)
        states = {name: (calendar["status"], calendar["inactiveReason"]) for name, calendar in after.items()}
        assert states == {
            "Boss": ("INACTIVE", "ErrorItemNotFound"),
            "Calendar": ("ACTIVE", None),
            "Team": ("ACTIVE", None),
        }
        (mail,) = await eventually(lambda: _inactive_mail(sink), lambda found: len(found) >= 1, "the owner's email")
        assert mail.rcpt_tos == [owner.user.email]

        removed = await server.graphql(REMOVE, {"id": boss["id"]}, token=owner.token)
        assert removed["data"]["removeCalendar"] == {"__typename": "CalendarRemoved", "calendarId": boss["id"]}
        gone = await status_event(status)
        assert (gone["status"], gone["calendar"]["id"]) == ("REMOVED", boss["id"])

    (connection,) = await connections(server, owner.token)  # the connection, its primary and its list stay
    assert connection["id"] == connection_id
    kept = {calendar["id"]: (calendar["status"], calendar["integrated"]) for calendar in connection["calendars"]}
    assert kept == {
        boss["id"]: ("ACTIVE", False),
        primary["id"]: ("ACTIVE", True),
        listed["Team"]["id"]: ("ACTIVE", False),
    }
    asked_about_boss = len(microsoft.requests_to(SHARED_VIEW))
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    assert booked["__typename"] == "Booking", booked
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    (made,) = written(microsoft, DEFAULT)  # the booking's event, on the primary calendar
    assert made["start"]["dateTime"].startswith("2026-12-01T08:00:00")  # UTC
    assert row.calendar_event_id == made["id"]
    assert len(microsoft.requests_to(SHARED_VIEW)) == asked_about_boss  # the removed calendar is not asked
    assert at(1, 14) in (await slots_on(server, 1)).starts  # nor counted
    assert len(inactive_mail(sink)) == 1  # three refused attempts, one incident, one email


async def test_slot_answers_say_when_the_provider_fails_and_offer_no_unfetched_time(
    server: LiveServer, provider: Provider
) -> None:
    # covers: BOOK-8, CAL-2, CAL-3
    owner = await owner_allowed_to_connect(server)  # the intro page: Monday and Tuesday, 09-17
    provider.add_busy(day(1, 14), day(1, 15), second=True)  # on the Team calendar, not integrated yet
    await provider.connect(server, owner)
    connection_id, listed = await calendars_by_name(server, owner)
    first = await slots_on(server, 1)
    assert (at(1, 14) in first.starts, first.complete) == (True, True)

    provider.fail_busy()
    assert not await server.services.busy_sync.refresh(uuid.UUID(connection_id))
    failing = await slots_on(server, 1)
    assert failing.complete is False  # what is kept is still offered, and the answer says times may be missing
    assert failing.starts == first.starts

    integrated = await server.graphql(SET_INTEGRATED, {"id": listed["Team"]["id"], "on": True}, token=owner.token)
    assert integrated["data"]["setCalendarIntegrated"]["integrated"] is True
    unknown = await slots_on(server, 1)
    assert (unknown.starts, unknown.complete) == ([], False)  # the team's time was never fetched: nothing offered

    provider.recover()
    assert await server.services.busy_sync.refresh(uuid.UUID(connection_id))
    answered = await slots_on(server, 1)
    assert answered.complete is True
    assert at(1, 14) not in answered.starts  # the team calendar's meeting, now known
    assert at(1, 14, 30) not in answered.starts
    assert at(1, 13) in answered.starts
    assert at(1, 15) in answered.starts


@pytest.mark.parametrize("provider", ["exchange"], indirect=True)
async def test_a_changed_exchange_password_found_at_booking_time_refuses_at_once_and_a_fluke_does_not(
    server: LiveServer, provider: Provider, sink: SmtpSink
) -> None:
    # covers: BOOK-9, INACT-1, INACT-2, CAL-3
    assert isinstance(provider, Exchange)
    exchange = provider.double
    owner = await owner_allowed_to_connect(server)
    await provider.connect(server, owner)

    exchange.fail("FindItem", status=401, times=1)  # one refused login: a fluke of the handshake
    fluke = await book(server, "2026-12-01T10:00:00+02:00")
    assert fluke["__typename"] == "Booking", fluke  # asked again at once, and the calendar answered

    exchange.change_password(MAILBOX, "changed-by-the-owner")  # the cache is fresh and does not know
    async with watching_status(server, owner) as status:
        refused = await book(server, "2026-12-01T11:00:00+02:00")
        assert refused["__typename"] == "CalendarInactive", refused  # the first attempt already
        event = await status_event(status)
        assert (event["status"], event["reason"]) == ("INACTIVE", "UnauthorizedError")
    (mail,) = await eventually(lambda: _inactive_mail(sink), lambda found: len(found) >= 1, "the owner's email")
    assert mail.rcpt_tos == [owner.user.email]
