"""What the CalDAV adapter reads of each event for calendar sync, from its iCalendar data: SUMMARY,
ATTENDEE lines (rooms and the account itself left out), whether the account organizes it
(ORGANIZER), all-day (DTSTART a date), TRANSP, STATUS, the account's own PARTSTAT, instances of
recurring events, and our own UID.

Against a real Radicale 3.9 server; events are written with the caldav client directly, as the
owner's own calendar app would.
"""

from __future__ import annotations

from datetime import UTC, datetime

from providers.base import AppMark, CalendarEvent, EventDraft
from providers.caldav import CalDAVCredentials
from tests.doubles.server import DoubleServer
from tests.providers import test_caldav_sync as sync
from tests.providers.test_caldav_sync import PASSWORD, WINDOW, Owner, alice_at, changes, utc

# The sync tests' Radicale (one per module), a calendar of alice's per test, and the forwarder.
radicale, owner, forwarder = sync.radicale, sync.owner, sync.forwarder

VERA = "vera@example.com"


def me(double: DoubleServer) -> str:
    """The account's address as its client knows it (its user name is no address: with the host)."""
    url = double.url + "/"
    return CalDAVCredentials(url, "alice", PASSWORD, url + "alice/").account_email


async def listed(double: DoubleServer, owner: Owner) -> dict[str, CalendarEvent]:
    result = await changes(double, owner, None)
    return {event.event_id.rsplit("/", 1)[-1]: event for event in result.changed}


async def test_a_meeting_gives_its_summary_and_guests_but_not_rooms_or_the_account(
    forwarder: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-2
    owner.put(
        "meeting",
        "DTSTART:20300325T100000Z",
        "DTEND:20300325T110000Z",
        "SUMMARY:Pricing call",
        f"ORGANIZER:mailto:{me(forwarder)}",
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{me(forwarder)}",
        "ATTENDEE;CN=Vera;PARTSTAT=NEEDS-ACTION:mailto:Vera@Example.com",
        "ATTENDEE;CUTYPE=ROOM:mailto:room-1@example.com",
    )
    owner.put(
        "invited",
        "DTSTART:20300325T120000Z",
        "DTEND:20300325T130000Z",
        "ORGANIZER:mailto:boss@example.net",
        f"ATTENDEE;PARTSTAT=DECLINED:mailto:{me(forwarder)}",
    )
    owner.put("alone", "DTSTART:20300325T140000Z", "DTEND:20300325T150000Z")

    events = await listed(forwarder, owner)

    meeting = events["meeting.ics"]
    assert (meeting.title, meeting.attendees, meeting.organizer_self) == ("Pricing call", (VERA,), True)
    assert (events["invited.ics"].organizer_self, events["invited.ics"].declined) == (False, True)
    assert (events["alone.ics"].organizer_self, events["alone.ics"].attendees) == (True, ())


async def test_all_day_free_cancelled_and_series_instances_say_so(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-2, SYNC-7
    owner.put("holiday", "DTSTART;VALUE=DATE:20300328", "DTEND;VALUE=DATE:20300329", f"ATTENDEE:mailto:{VERA}")
    owner.put("free", "DTSTART:20300326T120000Z", "DTEND:20300326T130000Z", "TRANSP:TRANSPARENT")
    owner.put("off", "DTSTART:20300327T120000Z", "DTEND:20300327T130000Z", "STATUS:CANCELLED")
    owner.put(
        "weekly", "DTSTART:20300325T070000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=2", f"ATTENDEE:mailto:{VERA}"
    )

    events = await listed(forwarder, owner)

    assert (events["holiday.ics"].all_day, events["free.ics"].all_day) == (True, False)
    assert (events["free.ics"].free, events["off.ics"].cancelled) == (True, True)
    weekly = sorted((event for name, event in events.items() if name.startswith("weekly.ics#")), key=lambda e: e.start)
    assert [event.start for event in weekly] == [utc(25, 7), utc(1, 7, month=4)]
    assert {event.series_id for event in weekly} == {forwarder.url + owner.path + "weekly.ics"}
    assert all(event.attendees == (VERA,) for event in weekly)


async def test_our_own_event_is_known_by_its_uid(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-2, SYNC-6
    client = alice_at(forwarder)
    draft = EventDraft(
        "booking-7", "Intro call", datetime(2030, 3, 26, 9, tzinfo=UTC), datetime(2030, 3, 26, 10, tzinfo=UTC), "UTC"
    )
    written = await client.create_event(forwarder.url + owner.path, draft)

    result = await client.list_changes(forwarder.url + owner.path, sync_token=None, start=WINDOW[0], end=WINDOW[1])

    (event,) = result.changed
    assert (event.event_id, event.app) == (written.event_id, AppMark(ours=True, what="Kokous's booking key"))
