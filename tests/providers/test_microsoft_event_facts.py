"""What the Microsoft adapter reads of each event for calendar sync, from ``calendarView/delta``:
title, guests, whether the mailbox organizes it, all-day and free, cancelled and declined, series
occurrences, and the ``transactionId`` an app (ours too) leaves.

Through the adapter against the Microsoft double, whose delta items carry the fields Graph
returns (delta takes no ``$select``): ``attendees`` with their ``status``, ``isOrganizer``,
``isAllDay``, ``showAs``, ``type`` and ``seriesMasterId``, and ``transactionId`` only when set.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from providers.base import AppMark, CalendarEvent
from providers.microsoft import MicrosoftCalendarClient
from tests.doubles.microsoft import MicrosoftDouble
from tests.providers import test_microsoft as adapter_tests
from tests.providers.test_microsoft import OWNER, draft

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

T0 = datetime(2026, 7, 1, 7, tzinfo=UTC)
HOUR = timedelta(hours=1)
WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=30))
VERA = "vera@example.com"
CALENDAR = "cal-primary"


# The adapter tests' double (the owner's default calendar is ``cal-primary``) and client.
tls_files, double, client = adapter_tests.tls_files, adapter_tests.double, adapter_tests.client


async def listed(client: MicrosoftCalendarClient) -> dict[str, CalendarEvent]:
    changes = await client.list_changes(CALENDAR, sync_token=None, start=WINDOW[0], end=WINDOW[1])
    return {event.event_id: event for event in changes.changed}


async def test_an_owners_meeting_gives_its_title_and_guests_without_asking_for_fields(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: SYNC-2
    meeting = double.add_event(
        CALENDAR, T0, T0 + HOUR, subject="Pricing call", guests=["Vera@Example.com", "olli@x.fi"]
    )
    invited = double.add_event(CALENDAR, T0 + 2 * HOUR, T0 + 3 * HOUR, organizer="boss@example.net", guests=[OWNER])

    events = await listed(client)

    assert (events[meeting].title, events[meeting].attendees) == ("Pricing call", (VERA, "olli@x.fi"))
    assert (events[meeting].organizer_self, events[meeting].app, events[meeting].series_id) == (True, None, None)
    assert events[invited].organizer_self is False
    # Delta refuses $select: the adapter reads the full events Graph sends.
    assert all("$select" not in dict(parse_qsl(request.query)) for request in double.requests_to("GET "))


async def test_all_day_free_cancelled_and_declined_say_so(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: SYNC-2, SYNC-7
    holiday = double.add_event(CALENDAR, T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1), all_day=True)
    free = double.add_event(CALENDAR, T0, T0 + HOUR, show_as="free", guests=[VERA])
    declined = double.add_event(CALENDAR, T0 + HOUR, T0 + 2 * HOUR, organizer="boss@example.net", response="declined")
    cancelled = double.add_busy(CALENDAR, T0 + 3 * HOUR, T0 + 4 * HOUR, cancelled=True)

    events = await listed(client)

    assert (events[holiday].all_day, events[free].all_day) == (True, False)
    assert (events[free].free, events[free].busy) == (True, False)
    assert (events[declined].declined, events[declined].busy) == (True, False)
    assert (events[cancelled].cancelled, events[cancelled].busy) == (True, False)


async def test_a_transaction_id_marks_an_apps_event_ours_included(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: SYNC-2, SYNC-7
    other = double.add_event(
        CALENDAR, T0, T0 + HOUR, guests=[VERA], transaction_id="7E163156-7762-4BEB-A1C6-729EA81755A7"
    )
    ours = await client.create_event(CALENDAR, draft("booking-7", T0 + 2 * HOUR))

    events = await listed(client)

    mark = AppMark(ours=None, what="an app set its transactionId")  # Graph does not say which app
    assert (events[other].app, events[ours.event_id].app) == (mark, mark)


async def test_each_occurrence_of_a_series_is_an_event_naming_its_series(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: SYNC-2
    occurrences = double.add_recurring(CALENDAR, T0, T0 + HOUR, count=3, subject="Weekly", guests=[VERA])

    events = await listed(client)

    assert set(events) == set(occurrences)
    assert [events[occurrence].start for occurrence in occurrences] == [T0 + timedelta(weeks=w) for w in range(3)]
    series = {events[occurrence].series_id for occurrence in occurrences}
    assert len(series) == 1
    assert None not in series
