"""What the Exchange adapter reads of each item for calendar sync: subject, required and optional
attendees, whether the mailbox organizes it (``MyResponseType``), all-day and free, cancelled and
declined, and our own idempotency key (EWS shows another app's properties only to whoever asks
for them by name, so ours is the one mark it tells).

Through the real exchangelib against the EWS double, which answers only the fields asked for:
attendees come from GetItem (FindItem cannot give them), the view's ids from FindItem.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from providers.base import AppMark, CalendarEvent
from providers.exchange import ExchangeCalendarClient
from tests.doubles.exchange import ExchangeDouble
from tests.providers import test_exchange_sync as exchange_sync
from tests.providers.test_exchange import OWNER, draft, ews_operations

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=30))
HOUR = timedelta(hours=1)
VERA = "vera@example.com"


# The sync tests' double (an Exchange 2016 with the owner's mailbox) and client.
double, client = exchange_sync.double, exchange_sync.client


async def listed(client: ExchangeCalendarClient, double: ExchangeDouble) -> dict[str, CalendarEvent]:
    changes = await client.list_changes(double.primary_calendar(OWNER), sync_token=None, start=WINDOW[0], end=WINDOW[1])
    return {event.event_id: event for event in changes.changed}


async def test_a_meeting_gives_its_subject_and_every_attendee(
    double: ExchangeDouble, client: ExchangeCalendarClient
) -> None:
    # covers: SYNC-2
    meeting = double.add_meeting(
        OWNER, T0, T0 + HOUR, subject="Pricing call", required=["Vera@Example.com"], optional=["olli@x.fi"]
    )
    invited = double.add_meeting(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR, organizer="boss@example.net", required=[OWNER])
    double.clear_requests()

    events = await listed(client, double)

    assert (events[meeting].title, events[meeting].attendees) == ("Pricing call", (VERA, "olli@x.fi"))
    assert (events[meeting].organizer_self, events[meeting].app) == (True, None)
    assert events[invited].organizer_self is False
    assert ews_operations(double) == ["SyncFolderItems", "FindItem", "GetItem"]  # the view's ids, then their fields


async def test_all_day_free_cancelled_and_declined_say_so(
    double: ExchangeDouble, client: ExchangeCalendarClient
) -> None:
    # covers: SYNC-2, SYNC-7
    midnight = datetime(2026, 3, 3, 22, tzinfo=UTC)  # Wednesday 4 March in Helsinki (UTC+2)
    holiday = double.add_meeting(
        OWNER, midnight, midnight + timedelta(days=1), all_day=True, zone="FLE Standard Time", required=[VERA]
    )
    free = double.add_meeting(OWNER, T0, T0 + HOUR, legacy_free_busy="Free", required=[VERA])
    declined = double.add_meeting(
        OWNER, T0 + HOUR, T0 + 2 * HOUR, organizer="boss@example.net", response="Decline", legacy_free_busy="Free"
    )
    cancelled = double.add_busy(OWNER, T0 + 3 * HOUR, T0 + 4 * HOUR, is_cancelled=True)

    events = await listed(client, double)

    # exchangelib turns an all-day item's times into dates: they come back as the same instants
    assert (events[holiday].all_day, events[holiday].start, events[holiday].end) == (
        True,
        midnight,
        midnight + timedelta(days=1),
    )
    assert (events[free].free, events[free].all_day, events[free].busy) == (True, False, False)
    assert (events[declined].declined, events[cancelled].cancelled) == (True, True)


async def test_our_own_item_carries_our_key(double: ExchangeDouble, client: ExchangeCalendarClient) -> None:
    # covers: SYNC-2, SYNC-6
    written = await client.create_event(double.primary_calendar(OWNER), draft("booking-7", start=T0, end=T0 + HOUR))

    events = await listed(client, double)

    assert events[written.event_id].app == AppMark(ours=True, what="Kokous's booking key")
    assert events[written.event_id].title == "Intro call"
