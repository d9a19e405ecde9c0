"""The Exchange adapter's incremental sync, through the real exchangelib against the EWS double.

``list_changes`` speaks SyncFolderItems to the double, which keeps a change log per folder and
answers as Exchange does: an opaque sync state per folder and position, at most
``MaxChangesReturned`` changes a call, one change per item, ``ErrorInvalidSyncStateData`` for a
state it does not know. What the adapter asked for is counted per SOAP operation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from providers.base import CalendarEvent, EventChanges, IncrementalSync
from providers.errors import SyncTokenExpired
from providers.exchange import SYNC_PAGE, ExchangeCalendarClient
from tests.doubles.exchange import ExchangeDouble
from tests.providers.test_exchange import OWNER, PASSWORD, client_for, draft, ews_operations

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 10:00 in Helsinki
WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=30))
HOUR = timedelta(hours=1)


@pytest.fixture
def double() -> Iterator[ExchangeDouble]:
    with ExchangeDouble(version="EXCHANGE_2016") as server:
        server.add_mailbox(OWNER, PASSWORD)
        yield server


@pytest.fixture
async def client(double: ExchangeDouble) -> AsyncIterator[ExchangeCalendarClient]:
    connected = await client_for(double)
    yield connected
    await connected.aclose()


@pytest.fixture
def primary(double: ExchangeDouble) -> str:
    return double.primary_calendar(OWNER)


async def changes(client: ExchangeCalendarClient, calendar_id: str, token: str | None) -> EventChanges:
    """A round, its events cut to what busy time needs (calendar sync's facts are tested apart)."""
    found = await client.list_changes(calendar_id, sync_token=token, start=WINDOW[0], end=WINDOW[1])
    timed = tuple(CalendarEvent(e.event_id, e.start, e.end, busy=e.busy) for e in found.changed)
    return replace(found, changed=timed)


def by_id(events: tuple[CalendarEvent, ...]) -> dict[str, CalendarEvent]:
    return {event.event_id: event for event in events}


def event(event_id: str, start: datetime, end: datetime, *, busy: bool = True) -> CalendarEvent:
    return CalendarEvent(event_id, start, end, busy=busy)


async def test_a_first_round_lists_the_windows_events_and_gives_a_token(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    inside = double.add_busy(OWNER, T0, T0 + HOUR)
    double.add_busy(OWNER, WINDOW[0] - HOUR, WINDOW[0])  # ends where the window starts
    double.add_busy(OWNER, WINDOW[1] + HOUR, WINDOW[1] + 2 * HOUR)  # after the window
    double.add_busy(OWNER, T0, T0 + HOUR, calendar_id=double.add_calendar(OWNER, "Team"))  # another folder
    double.clear_requests()

    first = await changes(client, primary, None)

    assert isinstance(client, IncrementalSync)
    assert (first.changed, first.deleted, first.full) == ((event(inside, T0, T0 + HOUR),), (), True)
    assert first.sync_token
    assert {(type(e.start), e.start.tzinfo, type(e.end), e.end.tzinfo) for e in first.changed} == {
        (datetime, UTC, datetime, UTC)
    }
    # the sync state first, then the view: a change made in between comes again next round (the
    # view's items are then read with GetItem, which alone gives their attendees)
    assert ews_operations(double) == ["SyncFolderItems", "FindItem", "GetItem"]


async def test_an_unchanged_calendar_costs_one_sync_call(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    double.add_busy(OWNER, T0, T0 + HOUR)
    first = await changes(client, primary, None)
    double.clear_requests()

    second = await changes(client, primary, first.sync_token)
    third = await changes(client, primary, second.sync_token)

    assert (second.changed, second.deleted, second.full) == ((), (), False)
    assert (third.changed, third.deleted, third.full) == ((), (), False)
    assert double.operation_counts() == {"SyncFolderItems": 2}  # one SOAP call a round


async def test_added_and_moved_items_arrive_incrementally(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    lunch = double.add_busy(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR)
    first = await changes(client, primary, None)
    added = double.add_busy(OWNER, T0 + 5 * HOUR, T0 + 6 * HOUR)
    double.move_item(OWNER, lunch, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    double.clear_requests()

    second = await changes(client, primary, first.sync_token)

    assert (second.full, second.deleted) == (False, ())
    assert by_id(second.changed) == {
        lunch: event(lunch, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1)),
        added: event(added, T0 + 5 * HOUR, T0 + 6 * HOUR),
    }
    assert double.operation_counts() == {"SyncFolderItems": 1, "GetItem": 1}  # no view of the window
    assert (await changes(client, primary, second.sync_token)).changed == ()  # told once


async def test_an_item_created_and_changed_between_rounds_comes_once(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    first = await changes(client, primary, None)
    item = double.add_busy(OWNER, T0, T0 + HOUR)
    double.move_item(OWNER, item, T0 + 3 * HOUR, T0 + 4 * HOUR)
    gone = double.add_busy(OWNER, T0, T0 + HOUR)
    double.delete_item(OWNER, gone)  # created and deleted since: nothing to tell

    second = await changes(client, primary, first.sync_token)

    assert (second.changed, second.full) == ((event(item, T0 + 3 * HOUR, T0 + 4 * HOUR),), False)


async def test_a_deletion_returns_a_full_round_of_the_window(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    kept = double.add_busy(OWNER, T0, T0 + HOUR)
    deleted = double.add_busy(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR)
    first = await changes(client, primary, None)
    assert set(by_id(first.changed)) == {kept, deleted}

    double.delete_item(OWNER, deleted)
    second = await changes(client, primary, first.sync_token)

    assert (second.changed, second.deleted, second.full) == ((event(kept, T0, T0 + HOUR),), (), True)
    assert second.sync_token != first.sync_token
    third = await changes(client, primary, second.sync_token)
    assert (third.changed, third.full) == ((), False)  # the deletion is not told twice


async def test_a_changed_series_returns_a_full_round_with_its_occurrences(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    weekly = double.add_recurring(OWNER, T0 + HOUR, T0 + 2 * HOUR, count=3)
    single = double.add_busy(OWNER, T0 + 4 * HOUR, T0 + 5 * HOUR)
    first = await changes(client, primary, None)
    occurrences = double.occurrence_ids(OWNER, weekly)
    assert by_id(first.changed) == {
        **{
            occurrence: event(
                occurrence, T0 + HOUR + week * timedelta(days=7), T0 + 2 * HOUR + week * timedelta(days=7)
            )
            for week, occurrence in enumerate(occurrences)
        },
        single: event(single, T0 + 4 * HOUR, T0 + 5 * HOUR),
    }
    assert weekly not in by_id(first.changed)  # the master is no event of its own

    double.delete_item(OWNER, occurrences[1])  # the owner deletes one week's meeting: the master changes
    second = await changes(client, primary, first.sync_token)

    assert second.full is True
    assert set(by_id(second.changed)) == {occurrences[0], occurrences[2], single}

    double.move_item(OWNER, weekly, T0 + 6 * HOUR, T0 + 7 * HOUR)  # the whole series moves
    third = await changes(client, primary, second.sync_token)

    assert third.full is True
    assert by_id(third.changed)[occurrences[0]] == event(occurrences[0], T0 + 6 * HOUR, T0 + 7 * HOUR)
    assert len(third.changed) == 3


async def test_more_changes_than_a_page_holds_lose_nothing(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    before = [
        double.add_busy(OWNER, T0 + minutes * timedelta(minutes=1), T0 + HOUR) for minutes in range(SYNC_PAGE + 5)
    ]
    first = await changes(client, primary, None)
    assert set(by_id(first.changed)) == set(before)
    assert double.operation_counts()["SyncFolderItems"] == 2  # the state of the last page, not the first

    double.clear_requests()
    assert (await changes(client, primary, first.sync_token)).changed == ()
    after = [
        double.add_busy(OWNER, T0 + timedelta(days=1, minutes=minutes), T0 + timedelta(days=2))
        for minutes in range(SYNC_PAGE + 10)
    ]
    double.move_item(OWNER, before[0], T0 + timedelta(days=3), T0 + timedelta(days=3, hours=1))
    double.clear_requests()

    second = await changes(client, primary, first.sync_token)

    assert second.full is False
    assert set(by_id(second.changed)) == {*after, before[0]}
    assert by_id(second.changed)[before[0]].start == T0 + timedelta(days=3)
    assert double.operation_counts()["SyncFolderItems"] == 2
    assert (await changes(client, primary, second.sync_token)).changed == ()


async def test_a_forgotten_sync_state_expires_and_the_next_full_round_is_right(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    old = double.add_busy(OWNER, T0, T0 + HOUR)
    first = await changes(client, primary, None)
    double.forget_sync_states()
    new = double.add_busy(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR)

    with pytest.raises(SyncTokenExpired) as expired:
        await changes(client, primary, first.sync_token)
    again = await changes(client, primary, None)

    assert expired.value.code == "ErrorInvalidSyncStateData"
    assert (again.full, set(by_id(again.changed))) == (True, {old, new})
    assert (await changes(client, primary, again.sync_token)).changed == ()  # the new state works


async def test_another_calendars_sync_state_is_refused(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    team = double.add_calendar(OWNER, "Team")
    teams_token = (await changes(client, team, None)).sync_token

    with pytest.raises(SyncTokenExpired):
        await changes(client, primary, teams_token)


async def test_free_and_cancelled_items_do_not_block_time_as_in_busy_intervals(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-5
    statuses = ["Busy", "OOF", "Tentative", "Free", "WorkingElsewhere", "NoData"]
    items = {
        status: double.add_busy(OWNER, T0 + hour * HOUR, T0 + (hour + 1) * HOUR, status)
        for hour, status in enumerate(statuses)
    }
    cancelled = double.add_busy(OWNER, T0 + 8 * HOUR, T0 + 9 * HOUR, is_cancelled=True)

    first = await changes(client, primary, None)
    blocks = await client.busy_intervals([primary], *WINDOW)

    busy = {event.event_id: event.busy for event in first.changed}
    assert busy == {
        items["Busy"]: True,
        items["OOF"]: True,
        items["Tentative"]: True,  # as a free/busy view shows it: tentatively busy
        items["Free"]: False,
        items["WorkingElsewhere"]: False,
        items["NoData"]: False,
        cancelled: False,
    }
    assert [(block.start, block.end) for block in blocks] == [(e.start, e.end) for e in first.changed if e.busy]

    double.cancel_item(OWNER, items["Busy"])  # the organizer cancels: it stays, no longer blocking
    second = await changes(client, primary, first.sync_token)
    assert (second.changed, second.full) == ((event(items["Busy"], T0, T0 + HOUR, busy=False),), False)


async def test_our_own_event_comes_back_with_the_id_create_event_returned(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str
) -> None:
    # covers: SYNC-6, SYNC-5
    first = await changes(client, primary, None)
    booking = draft(start=T0, end=T0 + timedelta(minutes=30))

    written = await client.create_event(primary, booking)
    second = await changes(client, primary, first.sync_token)
    full = await changes(client, primary, None)

    assert second.changed == (event(written.event_id, T0, T0 + timedelta(minutes=30)),)
    assert full.changed == second.changed  # a full round names it alike
    later = T0 + timedelta(days=1)
    await client.update_event(primary, written.event_id, draft(start=later, end=later + timedelta(minutes=30)))
    third = await changes(client, primary, second.sync_token)
    assert third.changed == (event(written.event_id, later, later + timedelta(minutes=30)),)

    await client.delete_event(primary, written.event_id)
    fourth = await changes(client, primary, third.sync_token)
    assert (fourth.changed, fourth.full) == ((), True)  # gone: the window, without it
