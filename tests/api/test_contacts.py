"""Contacts over real HTTP: made by bookings, requests and the owner; one per email whatever its
case; what the owner recorded survives later bookings; search; nobody sees another's contacts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from db.models import Booking
from server.settings import Settings
from tests.support.booking_helpers import book, booking_server, owner_with_page
from tests.support.crm_documents import (
    CONTACTS,
    CREATE_TASK,
    UPDATE_CONTACT,
    answer,
    contact,
    contacts,
    create_contact,
    create_meeting,
)
from tests.support.live_server import LiveServer
from tests.support.owners import make_owner

FIELDS = [
    {"key": "company", "label": "Company", "kind": "TEXT", "required": False},
    {"key": "role", "label": "Role", "kind": "TEXT", "required": False},
]
TUESDAY_10, TUESDAY_11, TUESDAY_12 = (f"2026-12-01T{hour}:00:00+02:00" for hour in (10, 11, 12))


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in booking_server(settings):
        yield live


def answers(**values: str) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]


def properties(found: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in found["properties"]}


async def test_bookings_and_requests_make_contacts_with_their_meetings(server: LiveServer) -> None:
    # covers: SYNC-1
    owner = await owner_with_page(server, formFields=FIELDS)
    chat = await book(server, TUESDAY_10, email="vera@example.com", source="CHAT", answers=answers(company="Acme"))
    again = await book(server, TUESDAY_11, email="VERA@Example.com")
    request = await book(
        server,
        TUESDAY_12,
        request=True,
        email="olli@example.com",
        invitee={"name": "Olli", "email": "olli@example.com"},
    )
    assert (chat["__typename"], again["__typename"], request["__typename"]) == ("Booking", "Booking", "BookingRequest")

    listed = await contacts(server, owner.token)
    assert [(item["email"], item["name"]) for item in listed] == [
        ("olli@example.com", "Olli"),
        ("vera@example.com", "Vera Visitor"),
    ]
    vera = listed[1]
    assert properties(vera) == {"company": "Acme"}
    assert [(m["id"], m["title"], m["start"], m["source"], m["calendarInvitationSent"]) for m in vera["meetings"]] == [
        (chat["id"], "Intro call", "2026-12-01T08:00:00+00:00", "CHAT", True),
        (again["id"], "Intro call", "2026-12-01T09:00:00+00:00", "BOOKING", True),
    ]
    assert {m["contact"]["id"] for m in vera["meetings"]} == {vera["id"]}
    assert listed[0]["meetings"] == []  # a request is no meeting until it is accepted

    found = await contact(server, owner.token, " VERA@EXAMPLE.COM ")
    assert found is not None
    assert found["id"] == vera["id"]
    assert await contact(server, owner.token, "nobody@example.com") is None
    assert await contact(server, owner.token, "not an email") is None

    await answer(server, "mutation($id: ID!) { cancelBooking(id: $id) { __typename } }", owner.token, id=chat["id"])
    found = await contact(server, owner.token, "vera@example.com")
    assert found is not None
    assert [m["id"] for m in found["meetings"]] == [again["id"]]


async def test_an_owner_adds_a_contact_once_per_email_whatever_its_case(server: LiveServer) -> None:
    # covers: SYNC-1
    _user, token = await make_owner(server.services, "owner@example.com")
    created = await create_contact(
        server, token, " Ada@Example.com ", name="Ada Lovelace", properties=answers(company="Engines", role="CTO")
    )
    assert created["__typename"] == "Contact", created
    assert (created["email"], created["name"]) == ("ada@example.com", "Ada Lovelace")
    assert properties(created) == {"company": "Engines", "role": "CTO"}
    assert (created["meetings"], created["tasks"]) == ([], [])

    twice = await create_contact(server, token, "ADA@EXAMPLE.COM", name="Someone else")
    assert (twice["__typename"], twice["contactId"]) == ("ContactExists", created["id"])
    assert [item["name"] for item in await contacts(server, token)] == ["Ada Lovelace"]

    bare = await create_contact(server, token, "bob@example.com")
    assert (bare["__typename"], bare["name"], bare["properties"]) == ("Contact", None, [])

    _other, other_token = await make_owner(server.services, "other@example.com")
    theirs = await create_contact(server, other_token, "ada@example.com")
    assert theirs["__typename"] == "Contact"  # one per owner and email
    assert theirs["id"] != created["id"]


BAD_CONTACTS = [
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@example.com", "name": "<b>Ada</b>"}, "name"),
    ({"email": "a@example.com", "name": "x" * 201}, "name"),
    ({"email": "a@example.com", "properties": answers(Company="X")}, "properties"),
    ({"email": "a@example.com", "properties": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]}, "properties"),
    ({"email": "a@example.com", "properties": answers(k="x" * 2001)}, "properties"),
    ({"email": "a@example.com", "properties": answers(**{f"k{n}": "v" for n in range(51)})}, "properties"),
]


async def test_bad_contacts_are_refused(server: LiveServer) -> None:
    # covers: SYNC-1
    _user, token = await make_owner(server.services, "owner@example.com")
    for fields, field in BAD_CONTACTS:
        refused = await create_contact(server, token, **fields)
        assert (refused["__typename"], refused["field"]) == ("InvalidInput", field), fields
    made = await create_contact(server, token, "ada@example.com", name="Ada")
    for fields, field in BAD_CONTACTS[1:]:
        changed = await answer(
            server, UPDATE_CONTACT, token, id=made["id"], input={k: v for k, v in fields.items() if k != "email"}
        )
        assert (changed["__typename"], changed["field"]) == ("InvalidInput", field), fields
    assert [(item["email"], item["name"], item["properties"]) for item in await contacts(server, token)] == [
        ("ada@example.com", "Ada", [])
    ]


async def test_a_booking_keeps_what_the_owner_recorded(server: LiveServer) -> None:
    # covers: SYNC-1
    owner = await owner_with_page(server, formFields=FIELDS)
    recorded = await create_contact(
        server, owner.token, "vera@example.com", name="Vera (Acme CEO)", properties=answers(company="Acme Corp")
    )
    assert recorded["__typename"] == "Contact"
    await book(server, TUESDAY_10, email="vera@example.com", answers=answers(company="Other Ltd", role="CEO"))

    vera = await contact(server, owner.token, "vera@example.com")
    assert vera is not None
    assert vera["name"] == "Vera (Acme CEO)"
    assert properties(vera) == {"company": "Acme Corp", "role": "CEO"}  # only the unknown key is filled in
    async with server.services.db.session() as session:
        (booking,) = (await session.exec(select(Booking))).all()
    assert booking.answers == {"company": "Other Ltd", "role": "CEO"}  # the answers stay on the booking

    # A contact a booking made: the owner's correction stands, a missing name is filled in.
    await book(server, TUESDAY_11, email="olli@example.com", invitee={"name": "Olli O", "email": "olli@example.com"})
    olli = await contact(server, owner.token, "olli@example.com")
    assert olli is not None
    changed = await answer(
        server,
        UPDATE_CONTACT,
        owner.token,
        id=olli["id"],
        input={"name": "Olli Ojala", "properties": answers(role="CFO")},
    )
    assert (changed["name"], properties(changed)) == ("Olli Ojala", {"role": "CFO"})
    await book(
        server,
        TUESDAY_12,
        invitee={"name": "olli", "email": "Olli@example.com"},
        answers=answers(role="x", company="Y"),
    )
    olli = await contact(server, owner.token, "olli@example.com")
    assert olli is not None
    assert (olli["name"], properties(olli)) == ("Olli Ojala", {"role": "CFO", "company": "Y"})

    unnamed = await create_contact(server, owner.token, "aino@example.com")
    assert unnamed["name"] is None
    await book(server, "2026-12-01T13:00:00+02:00", invitee={"name": "Aino A", "email": "aino@example.com"})
    aino = await contact(server, owner.token, "aino@example.com")
    assert aino is not None
    assert aino["name"] == "Aino A"


async def test_search_matches_part_of_an_email_or_name_ignoring_case(server: LiveServer) -> None:
    # covers: SYNC-1
    _user, token = await make_owner(server.services, "owner@example.com")
    for email, name in (("ada@example.com", "Ada Lovelace"), ("bob@acme.test", "Bob"), ("carol_x@example.com", "")):
        assert (await create_contact(server, token, email, name=name))["__typename"] == "Contact"

    async def emails(search: str | None) -> list[str]:
        return [item["email"] for item in await contacts(server, token, search)]

    assert await emails(None) == ["ada@example.com", "bob@acme.test", "carol_x@example.com"]
    assert await emails("  ") == await emails(None)
    assert await emails("LOVE") == ["ada@example.com"]
    assert await emails("Acme") == ["bob@acme.test"]
    assert await emails("example.COM") == ["ada@example.com", "carol_x@example.com"]
    assert await emails("_x") == ["carol_x@example.com"]  # wildcards are plain characters
    assert await emails("%") == []
    too_long = await server.graphql(CONTACTS, {"search": "x" * 201}, token=token)
    assert too_long["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": "search"}


async def test_another_owners_contacts_are_not_found(server: LiveServer) -> None:
    # covers: SYNC-1
    _user, token = await make_owner(server.services, "owner@example.com")
    _other, other_token = await make_owner(server.services, "other@example.com")
    mine = await create_contact(server, token, "ada@example.com", name="Ada")

    assert await contacts(server, other_token) == []
    assert await contact(server, other_token, "ada@example.com") is None
    for contact_id in (mine["id"], "not-an-id"):
        renamed = await answer(server, UPDATE_CONTACT, other_token, id=contact_id, input={"name": "Mallory"})
        assert renamed["__typename"] == "NotFound", renamed
        meeting = await create_meeting(
            server, other_token, contact_id, "2026-12-03T10:00:00+02:00", "2026-12-03T11:00:00+02:00"
        )
        assert meeting["__typename"] == "NotFound", meeting
        task = await answer(server, CREATE_TASK, other_token, input={"title": "Call Ada", "contactId": contact_id})
        assert task["__typename"] == "NotFound", task
    found = await contact(server, token, "ada@example.com")
    assert found is not None
    assert (found["name"], found["meetings"], found["tasks"]) == ("Ada", [], [])


@contextmanager
def counting_statements(server: LiveServer) -> Iterator[list[str]]:
    """The SQL statements the server runs meanwhile."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = server.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_a_list_of_contacts_reads_meetings_and_tasks_in_batches(server: LiveServer) -> None:
    # covers: SYNC-1
    _user, token = await make_owner(server.services, "owner@example.com")

    async def add(index: int) -> None:
        made = await create_contact(server, token, f"c{index}@example.com")
        start, end = f"2026-12-{index + 1:02d}T10:00:00+02:00", f"2026-12-{index + 1:02d}T11:00:00+02:00"
        assert (await create_meeting(server, token, made["id"], start, end))["__typename"] == "Meeting"
        task = await answer(server, CREATE_TASK, token, input={"title": "Follow up", "contactId": made["id"]})
        assert task["__typename"] == "Task"

    async def statements_for_list() -> tuple[int, int]:
        with counting_statements(server) as seen:
            listed = await contacts(server, token)
        assert all(len(item["meetings"]) == 1 and len(item["tasks"]) == 1 for item in listed)
        return len(listed), len(seen)

    await add(0)
    one = await statements_for_list()
    for index in range(1, 8):
        await add(index)
    eight = await statements_for_list()
    assert (one[0], eight[0]) == (1, 8)
    assert eight[1] == one[1]  # the same queries, however many contacts
