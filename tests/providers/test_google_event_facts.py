"""What the Google adapter reads of each event for calendar sync: title, guests, who organizes
it, all-day and free, recurring instances, and the marks apps leave (ours and others').

Through the real google libraries against the Google double, which answers ``events.list`` with
the fields Google returns (``attendees`` with ``self`` and ``organizer``, ``source``,
``extendedProperties``, ``eventType``, ``recurringEventId``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from providers.base import AppMark, CalendarEvent, EventChanges
from providers.google import BOOKING_PROPERTY, GoogleCalendarClient
from tests.doubles.google import GoogleDouble
from tests.providers import test_google_sync as google_sync
from tests.providers.test_google import OWNER, VISITOR, draft

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=30))
VERA = "vera@example.com"


# The sync tests' double (small pages: every round pages) and the adapter connected to it.
tls, google, client = google_sync.tls, google_sync.google, google_sync.client


async def listed(client: GoogleCalendarClient) -> dict[str, CalendarEvent]:
    changes: EventChanges = await client.list_changes(OWNER, sync_token=None, start=WINDOW[0], end=WINDOW[1])
    return {event.event_id: event for event in changes.changed}


async def test_an_owners_meeting_gives_its_title_and_guests_but_not_the_owner(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: SYNC-2
    meeting = google.add_event(OWNER, T0, T0 + HOUR, summary="Pricing call", guests=["Vera@Example.com", "olli@x.fi"])
    invited = google.add_event(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR, organizer="boss@example.net", guests=[VERA])

    events = await listed(client)

    assert events[meeting].title == "Pricing call"
    assert events[meeting].attendees == (VERA, "olli@x.fi")  # lower-cased; the owner's own entry left out
    assert (events[meeting].organizer_self, events[meeting].app, events[meeting].series_id) == (True, None, None)
    assert events[invited].organizer_self is False
    assert events[invited].attendees == ("boss@example.net", VERA)


async def test_all_day_free_declined_and_special_entries_say_so(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: SYNC-2, SYNC-7
    holiday = google.add_event(OWNER, date(2026, 3, 4), date(2026, 3, 5), all_day=True, guests=[VERA])
    free = google.add_event(OWNER, T0, T0 + HOUR, transparency="transparent", guests=[VERA])
    declined = google.add_event(OWNER, T0 + HOUR, T0 + 2 * HOUR, declined=True)
    away = google.add_event(OWNER, T0 + 3 * HOUR, T0 + 4 * HOUR, event_type="outOfOffice")

    events = await listed(client)

    assert (events[holiday].all_day, events[holiday].free) == (True, False)
    assert (events[free].free, events[free].all_day, events[free].busy) == (True, False, False)
    assert (events[declined].declined, events[declined].busy) == (True, False)
    assert events[away].special == "out of office"
    assert events[free].special is None


async def test_events_other_apps_made_carry_their_mark(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: SYNC-2, SYNC-7
    zoom = google.add_event(OWNER, T0, T0 + HOUR, guests=[VERA], source={"title": "Zoom", "url": "https://zoom.us/j/1"})
    crm = google.add_event(OWNER, T0 + HOUR, T0 + 2 * HOUR, guests=[VERA], private={"otherCrmId": "42"})
    gmail = google.add_event(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR, event_type="fromGmail")

    events = await listed(client)

    assert events[zoom].app == AppMark(ours=False, what="its source is Zoom")
    assert events[crm].app == AppMark(ours=False, what="another app's private properties")
    assert events[gmail].app == AppMark(ours=False, what="made by Gmail from an email")


async def test_our_own_event_carries_our_key_and_is_known_for_ours(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: SYNC-2, SYNC-6
    written = await client.create_event(OWNER, draft("booking-7", T0))

    (stored,) = google.events_on(OWNER)
    assert stored["extendedProperties"] == {"private": {BOOKING_PROPERTY: "booking-7"}}
    events = await listed(client)
    assert events[written.event_id].app == AppMark(ours=True, what="Kokous's booking key")
    assert events[written.event_id].attendees == (VISITOR,)  # the invitee, as written


async def test_each_instance_of_a_series_is_an_event_naming_its_series(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: SYNC-2
    instances = google.add_recurring(OWNER, T0, T0 + HOUR, count=3, summary="Weekly sync", guests=[VERA])

    events = await listed(client)

    assert set(events) == set(instances)  # singleEvents: the instances, never the series itself
    assert [events[instance].start for instance in instances] == [T0 + timedelta(weeks=week) for week in range(3)]
    series = {events[instance].series_id for instance in instances}
    assert len(series) == 1
    assert None not in series
    assert all(events[instance].attendees == (VERA,) for instance in instances)
