"""Slots completed in one pass answer exactly what field-by-field completion answers, for every
query shape, and the public schema is unchanged by it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from common.values import PageStatus
from scheduling.live.feeds import SlotSnapshot
from schema.build import build_schema
from schema.plain_lists import PlainListExecution
from schema.scalars import SCALARS, DateTime
from schema.slot_types import Slot, SlotList
from server.settings import Settings
from tests.support.booking_helpers import booking_server, owner_with_page
from tests.support.live_server import LiveServer

START = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
SLOT_SDL = """type Slot {
  start: DateTime!
  end: DateTime!
}"""
SLOT_LIST_SDL = '''type SlotList {
  slots: [Slot!]!

  """The oldest fetch of the calendars' busy time behind the list."""
  asOf: DateTime!

  """
  False when some calendar's busy time for this window is not known (not fetched yet, or its provider could not be reached): times not known are left out, so some times may be missing.
  """
  complete: Boolean!

  """The page's state when the list was made."""
  status: PageStatus!
}'''


def slot_list(count: int = 5, *, naive_at: int | None = None) -> SlotList:
    pairs = [(START + timedelta(minutes=30 * n), START + timedelta(minutes=30 * n + 30)) for n in range(count)]
    snapshot = SlotSnapshot(slots=tuple(pairs), as_of=START, status=PageStatus.ONLINE)
    listed = SlotList.from_domain(snapshot, "Europe/Helsinki")
    if naive_at is not None:
        listed.slots[naive_at].end = DateTime(listed.slots[naive_at].end.replace(tzinfo=None))
    return listed


@strawberry.type
class _Query:
    @strawberry.field
    def slot_list(self, count: int = 5, naive_at: int | None = None) -> SlotList:
        return slot_list(count, naive_at=naive_at)

    @strawberry.field
    def maybe_slots(self) -> list[Slot | None]:
        return [slot_list().slots[0], None]


@strawberry.type
class _Subscription:
    @strawberry.subscription
    async def slot_lists(self) -> AsyncGenerator[SlotList, None]:
        yield slot_list(3)
        yield slot_list(3, naive_at=1)
        yield slot_list(0)


def schema(execution: type[PlainListExecution] | None) -> strawberry.Schema:
    return strawberry.Schema(
        query=_Query,
        subscription=_Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        execution_context_class=execution,
    )


NORMAL, PLAIN = schema(None), schema(PlainListExecution)
S = "fragment S on Slot { start }"
ONE_PASS = [  # (document, variables): each completes the slots in one pass
    ("{ slotList { slots { start end } asOf complete status } }", None),
    ("{ slotList { slots { from: start to: end again: start } } }", None),
    ("{ slotList { __typename slots { __typename start kind: __typename } } }", None),
    (S + " query { slotList { slots { ...S end } } }", None),
    ("{ slotList { slots { ... on Slot { start } ... { end } } } }", None),
    (S + " fragment L on SlotList { slots { ...S } } query { slotList { ...L asOf } }", None),
    ("{ slotList { slots { start @skip(if: true) ... on Slot { start } } } }", None),
    ("{ slotList { slots { start @include(if: false) ... @include(if: false) { end } } } }", None),
    ("{ slotList(count: 0) { slots { start } } }", None),
    ("{ slotList(naiveAt: 0) { slots { start } } }", None),  # the bad value is not selected: no error
    ("{ a: slotList(count: 1) { slots { start } } b: slotList(count: 2) { slots { end } } }", None),
    *(
        ("query($a: Boolean!, $b: Boolean!) { slotList { slots { start @include(if: $a) end @skip(if: $b) } } }", v)
        for v in ({"a": True, "b": False}, {"a": False, "b": True}, {"a": True, "b": True})
    ),
]
NORMAL_PATH = [  # the slots' completion meets a null or an error: the whole list takes the normal path
    "{ slotList(naiveAt: 2) { slots { start end } asOf } }",
    "{ maybeSlots { start } }",
]


def answer(result: Any) -> tuple[Any, list[Any]]:
    return result.data, [error.formatted for error in result.errors or []]


@pytest.fixture
def slot_items(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the slots that the normal path completed one by one."""
    counted = [0]
    original: Callable[..., bool] = PlainListExecution.complete_list_item_value

    def counting(self: PlainListExecution, item: object, *args: Any, **kwargs: Any) -> bool:
        counted[0] += isinstance(item, Slot)
        return original(self, item, *args, **kwargs)

    monkeypatch.setattr(PlainListExecution, "complete_list_item_value", counting)
    return counted


@pytest.mark.parametrize(("document", "variables"), ONE_PASS)
async def test_one_pass_answers_as_field_by_field(
    document: str, variables: dict[str, Any] | None, slot_items: list[int]
) -> None:
    # covers: BOOK-1
    expected = answer(await NORMAL.execute(document, variable_values=variables))
    assert answer(await PLAIN.execute(document, variable_values=variables)) == expected
    assert not expected[1]
    assert slot_items[0] == 0


@pytest.mark.parametrize("document", NORMAL_PATH)
async def test_nulls_and_errors_are_those_of_the_normal_path(document: str, slot_items: list[int]) -> None:
    # covers: BOOK-1
    assert answer(await PLAIN.execute(document)) == answer(await NORMAL.execute(document))
    assert slot_items[0] > 0


async def test_a_naive_time_is_the_same_located_error() -> None:
    # covers: BOOK-1
    data, errors = answer(await PLAIN.execute(NORMAL_PATH[0]))
    assert data is None  # SlotList! is not nullable: the null reaches the root
    assert [(error["message"], error["path"]) for error in errors] == [
        ("naive date-time on output", ["slotList", "slots", 2, "end"])
    ]


async def test_subscriptions_push_the_same_lists() -> None:
    # covers: SUB-1
    document = "subscription { slotLists { slots { at: start ... on Slot { end __typename } } complete } }"

    async def pushed(on: strawberry.Schema) -> list[tuple[Any, list[Any]]]:
        stream = await on.subscribe(document)
        assert isinstance(stream, AsyncIterator), stream
        return [answer(result) async for result in stream]

    expected = await pushed(NORMAL)
    assert await pushed(PLAIN) == expected
    assert [len(data["slotLists"]["slots"]) if data else None for data, _ in expected] == [3, None, 0]


def test_the_schema_runs_slots_in_one_pass_and_their_sdl_is_unchanged() -> None:
    # covers: BOOK-1
    built = build_schema(production=False)
    assert built.execution_context_class is PlainListExecution
    sdl = built.as_str()
    assert SLOT_SDL in sdl
    assert SLOT_LIST_SDL in sdl


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in booking_server(settings):
        yield live


async def test_a_live_server_answers_every_shape_alike(server: LiveServer, slot_items: list[int]) -> None:
    # covers: BOOK-1
    await owner_with_page(server)
    window = {"slug": "intro", "start": "2026-12-01T00:00:00+02:00", "end": "2026-12-03T00:00:00+02:00"}
    query = """
    fragment Times on Slot { end }
    query($slug: String!, $start: DateTime!, $end: DateTime!, $skip: Boolean!) {
      schedulingPage(slug: $slug) {
        slots(start: $start, end: $end, timezone: "Europe/Helsinki") {
          slots { from: start __typename ...Times ... on Slot { start @skip(if: $skip) } }
        }
      }
    }
    """
    result = await server.graphql(query, {**window, "skip": False})
    assert "errors" not in result, result
    slots = result["data"]["schedulingPage"]["slots"]["slots"]
    assert slots, result
    assert slots[0] == {
        "from": "2026-12-01T09:00:00+02:00",
        "__typename": "Slot",
        "end": slots[0]["end"],
        "start": "2026-12-01T09:00:00+02:00",
    }
    skipped = await server.graphql(query, {**window, "skip": True})
    assert skipped["data"]["schedulingPage"]["slots"]["slots"] == [
        {key: value for key, value in slot.items() if key != "start"} for slot in slots
    ]
    assert slot_items[0] == 0
