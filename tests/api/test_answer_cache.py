"""Kept answers to public page queries are always what a fresh computation would give.

The server keeps finished answers of public slot queries (bar B1); these tests change what an
answer depends on, through the same doors owners and visitors use, and check that the next
answer follows at once: bookings, page edits, calendar changes, and time passing the minimum
notice. Answers with errors or with owner-only fields are never kept.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from server.settings import Settings
from tests.support.booking_helpers import NOW, book, owner_with_page, slots
from tests.support.calendar_rows import connect_calendar
from tests.support.graphql_documents import UPDATE_PAGE
from tests.support.live_server import LiveServer, start_live_server

TUESDAY = "2026-12-01T00:00:00+02:00"
WEDNESDAY = "2026-12-02T00:00:00+02:00"


class MovingClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock(NOW)


@pytest.fixture
async def server(settings: Settings, clock: MovingClock) -> AsyncIterator[LiveServer]:
    async with start_live_server(settings, clock=clock) as live:
        yield live


async def answer_counts(server: LiveServer) -> dict[str, float]:
    text = (await server.http.get("/metrics")).text
    return {
        outcome: float(value)
        for outcome, value in re.findall(r'^kokous_answer_cache_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    }


async def test_a_repeated_query_is_kept_until_a_booking_changes_it(server: LiveServer) -> None:
    # covers: BOOK-1, BOOK-3
    await owner_with_page(server)
    first = await slots(server, TUESDAY, WEDNESDAY)
    assert await slots(server, TUESDAY, WEDNESDAY) == first
    assert (await answer_counts(server))["hit"] == 1

    assert (await book(server, "2026-12-01T11:00:00+02:00"))["__typename"] == "Booking"

    after = await slots(server, TUESDAY, WEDNESDAY)
    assert after == [start for start in first if start != "2026-12-01T11:00:00+02:00"]
    counts = await answer_counts(server)
    assert counts["hit"] == 1
    assert counts["invalidated"] >= 1


async def test_page_edits_and_calendar_changes_reach_kept_answers(server: LiveServer) -> None:
    # covers: BOOK-1, PAGE-4, SUB-1
    owner = await owner_with_page(server)
    assert (await slots(server, TUESDAY, WEDNESDAY))[0] == "2026-12-01T09:00:00+02:00"
    await slots(server, TUESDAY, WEDNESDAY)  # kept

    later_hours = {
        "slug": "intro",
        "name": "Intro call",
        "durations": [30, 60],
        "timezone": "Europe/Helsinki",
        "startIncrement": 30,
        "weeklyHours": [{"weekday": "TUESDAY", "start": "12:00", "end": "14:00"}],
    }
    edited = await server.graphql(UPDATE_PAGE, {"id": owner.page_id, "input": later_hours}, token=owner.token)
    assert "errors" not in edited, edited
    assert edited["data"]["updateSchedulingPage"]["__typename"] == "SchedulingPage", edited
    assert await slots(server, TUESDAY, WEDNESDAY) == [
        "2026-12-01T12:00:00+02:00",
        "2026-12-01T12:30:00+02:00",
        "2026-12-01T13:00:00+02:00",
        "2026-12-01T13:30:00+02:00",
    ]

    busy = (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), datetime(2026, 12, 1, 11, 0, tzinfo=UTC))  # 12-13 Helsinki
    await connect_calendar(server.services, owner.user, busy=[busy])
    assert await slots(server, TUESDAY, WEDNESDAY) == ["2026-12-01T13:00:00+02:00", "2026-12-01T13:30:00+02:00"]


async def test_a_slot_inside_the_minimum_notice_leaves_kept_answers(server: LiveServer, clock: MovingClock) -> None:
    # covers: BOOK-1, PAGE-2
    await owner_with_page(server, minimumNoticeMinutes=60)
    clock.now = datetime(2026, 12, 1, 5, 58, tzinfo=UTC)  # Tuesday 07:58 in Helsinki
    first = await slots(server, TUESDAY, WEDNESDAY)
    assert first[0] == "2026-12-01T09:00:00+02:00"
    assert await slots(server, TUESDAY, WEDNESDAY) == first  # kept

    clock.now = datetime(2026, 12, 1, 6, 0, 1, tzinfo=UTC)  # two minutes on, 09:00 is less than an hour away
    assert await slots(server, TUESDAY, WEDNESDAY) == first[1:]


async def test_the_rolling_horizon_opens_a_new_day_in_kept_answers(server: LiveServer, clock: MovingClock) -> None:
    # covers: BOOK-1, PAGE-2
    every_day = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
    hours = [{"weekday": day, "start": "09:00", "end": "17:00"} for day in every_day]
    await owner_with_page(server, bookingHorizonDays=1, weeklyHours=hours)
    clock.now = datetime(2026, 11, 30, 21, 58, tzinfo=UTC)  # Monday 23:58 in Helsinki: Tuesday is the last day
    tuesday_to_thursday = ("2026-12-01T00:00:00+02:00", "2026-12-03T00:00:00+02:00")
    first = await slots(server, *tuesday_to_thursday)
    assert first
    assert all(start.startswith("2026-12-01") for start in first)
    assert await slots(server, *tuesday_to_thursday) == first  # kept

    clock.now += timedelta(minutes=2, seconds=1)  # Tuesday has begun in Helsinki: Wednesday opens
    assert any(start.startswith("2026-12-02") for start in await slots(server, *tuesday_to_thursday))


async def test_answers_with_errors_or_owner_fields_are_never_kept(server: LiveServer) -> None:
    # covers: BOOK-1, OPS-4
    owner = await owner_with_page(server)
    backwards = {"slug": "intro", "start": WEDNESDAY, "end": TUESDAY, "timezone": "Europe/Helsinki"}
    with_owner_fields = """
    query($slug: String!) { me { email } schedulingPage(slug: $slug) { name } }
    """
    for _ in range(2):
        result = await server.graphql(
            "query($slug: String!, $start: DateTime!, $end: DateTime!, $timezone: String!) {"
            " schedulingPage(slug: $slug) { slots(start: $start, end: $end, timezone: $timezone) { asOf } } }",
            backwards,
        )
        assert result["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        mine = await server.graphql(with_owner_fields, {"slug": "intro"}, token=owner.token)
        assert mine["data"]["me"]["email"] == owner.user.email
    counts = await answer_counts(server)
    assert counts["stored"] == 0
    assert counts["hit"] == 0
