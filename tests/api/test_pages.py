"""The owner's scheduling pages over real HTTP: create, read, update, delete, disable all, default."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from db.models import User
from tests.support.graphql_documents import (
    BAD_AUTHORIZATIONS,
    CREATE_PAGE,
    DELETE_PAGE,
    MY_PAGES,
    SET_ALL_ENABLED,
    UPDATE_PAGE,
    bad_authorization,
    create_page,
    create_page_result,
    delete_page_result,
    error_codes,
    me,
    my_pages,
    page_input,
    post_with_authorization,
    public_page,
    random_id,
    set_all_enabled,
    update_page_result,
    update_settings,
)
from tests.support.live_server import LiveServer

Owner = tuple[User, str]

FULL_INPUT: dict[str, Any] = page_input(
    "discovery",
    "Discovery call",
    durations=[60, 15, 30],
    startIncrement=30,
    bufferMinutes=10,
    minimumNoticeMinutes=120,
    bookingHorizonDays=30,
    timezone="America/New_York",
    weeklyHours=[
        {"weekday": "TUESDAY", "start": "13:00", "end": "17:00"},
        {"weekday": "MONDAY", "start": "13:00", "end": "24:00"},
        {"weekday": "MONDAY", "start": "09:00", "end": "12:00"},
    ],
    dateOverrides=[
        {"date": "2030-12-25", "intervals": []},
        {"date": "2030-12-24", "intervals": [{"start": "09:00", "end": "12:00"}]},
    ],
    formFields=[
        {"key": "company", "label": "Company", "kind": "TEXT", "required": True},
        {"key": "phone", "label": "Phone number", "kind": "PHONE"},
    ],
    redirectUrl="https://example.com/thanks",
    fixedRangeStart="2027-01-01",
    fixedRangeEnd="2027-06-30",
)

# What FULL_INPUT is stored as: durations sorted, hours by weekday then start, overrides by date.
FULL_STORED: dict[str, Any] = {
    "slug": "discovery",
    "name": "Discovery call",
    "status": "OFFLINE",
    "enabled": True,
    "domain": None,
    "timezone": "America/New_York",
    "durations": [15, 30, 60],
    "startIncrement": 30,
    "bufferMinutes": 10,
    "minimumNoticeMinutes": 120,
    "bookingHorizonDays": 30,
    "fixedRangeStart": "2027-01-01",
    "fixedRangeEnd": "2027-06-30",
    "weeklyHours": [
        {"weekday": "MONDAY", "start": "09:00", "end": "12:00"},
        {"weekday": "MONDAY", "start": "13:00", "end": "24:00"},
        {"weekday": "TUESDAY", "start": "13:00", "end": "17:00"},
    ],
    "dateOverrides": [
        {"date": "2030-12-24", "intervals": [{"start": "09:00", "end": "12:00"}]},
        {"date": "2030-12-25", "intervals": []},
    ],
    "formFields": [
        {"key": "company", "label": "Company", "kind": "TEXT", "required": True},
        {"key": "phone", "label": "Phone number", "kind": "PHONE", "required": False},
    ],
    "redirectUrl": "https://example.com/thanks",
}

WORKING_WEEK = [
    {"weekday": day, "start": "09:00", "end": "17:00"}
    for day in ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY")
]


def without_id(page: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in page.items() if key not in ("id", "__typename")}


# Create and read --------------------------------------------------------------------------


async def test_create_page_with_every_setting_and_no_calendar(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-1, PAGE-2, PAGE-4, PAGE-5
    _user, token = owner
    created = await create_page_result(server, token, FULL_INPUT)

    assert created["__typename"] == "SchedulingPage"
    url = f"{server.services.links.default_base()}/discovery"
    assert without_id(created) == {**FULL_STORED, "url": url, "isDefault": True}
    stored = await my_pages(server, token)
    assert stored == [{key: value for key, value in created.items() if key != "__typename"}]


async def test_create_page_fills_in_defaults(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-1, PAGE-2
    _user, token = owner
    created = await create_page(server, token, "intro")
    expected = {
        "slug": "intro",
        "name": "Intro call",
        "url": f"{server.services.links.default_base()}/intro",
        "status": "OFFLINE",
        "enabled": True,
        "isDefault": True,
        "domain": None,
        "timezone": "Europe/Helsinki",  # the owner's
        "durations": [30],
        "startIncrement": 15,
        "bufferMinutes": 0,
        "minimumNoticeMinutes": 0,
        "bookingHorizonDays": 60,
        "fixedRangeStart": None,
        "fixedRangeEnd": None,
        "weeklyHours": WORKING_WEEK,
        "dateOverrides": [],
        "formFields": [],
        "redirectUrl": None,
    }
    assert without_id(created) == expected
    assert [without_id(page) for page in await my_pages(server, token)] == [expected]


async def test_slug_is_trimmed_and_lower_cased(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2
    _user, token = owner
    created = await create_page(server, token, "  Sales-Demo-2 ")
    assert created["slug"] == "sales-demo-2"
    assert created["url"].endswith("/meetings/sales-demo-2")
    assert [page["slug"] for page in await my_pages(server, token)] == ["sales-demo-2"]


async def test_limits_are_accepted_at_their_edges(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2
    _user, token = owner
    edges = page_input(
        "a" * 64,
        "N" * 200,
        durations=[5, 10, 15, 20, 25, 30, 45, 60, 90, 720],
        startIncrement=5,
        bufferMinutes=0,
        bookingHorizonDays=365,
        weeklyHours=[{"weekday": "SUNDAY", "start": "00:00", "end": "24:00"}],
        fixedRangeStart="2027-01-01",
        fixedRangeEnd="2027-01-01",
    )
    created = await create_page_result(server, token, edges)
    assert created["__typename"] == "SchedulingPage", created
    assert (created["slug"], created["bookingHorizonDays"], len(created["durations"])) == ("a" * 64, 365, 10)
    assert created["weeklyHours"] == [{"weekday": "SUNDAY", "start": "00:00", "end": "24:00"}]
    assert (await my_pages(server, token))[0]["durations"][-1] == 720


async def test_pages_are_listed_oldest_first(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-1
    _user, token = owner
    for slug in ("zeta", "alpha", "mid"):
        await create_page(server, token, slug)
    assert [page["slug"] for page in await my_pages(server, token)] == ["zeta", "alpha", "mid"]


# Update -------------------------------------------------------------------------------------


async def test_update_changes_what_is_given(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-1, PAGE-2
    _user, token = owner
    page = await create_page(server, token, "intro")
    changed = {
        **FULL_INPUT,
        "slug": "Intro-Call",
        "name": "Intro call (30 min)",
        "weeklyHours": [{"weekday": "FRIDAY", "start": "08:00", "end": "10:30"}],
        "enabled": False,
    }
    updated = await update_page_result(server, token, page["id"], changed)

    expected = {
        **FULL_STORED,
        "slug": "intro-call",
        "name": "Intro call (30 min)",
        "weeklyHours": [{"weekday": "FRIDAY", "start": "08:00", "end": "10:30"}],
        "enabled": False,
        "url": f"{server.services.links.default_base()}/intro-call",
        "isDefault": True,
    }
    assert updated["__typename"] == "SchedulingPage", updated
    assert updated["id"] == page["id"]
    assert without_id(updated) == expected
    assert [without_id(stored) for stored in await my_pages(server, token)] == [expected]


async def test_update_keeps_optional_fields_left_out(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2
    _user, token = owner
    page = await create_page_result(server, token, FULL_INPUT)

    updated = await update_page_result(
        server, token, page["id"], {"slug": "discovery", "name": "Renamed", "durations": [45]}
    )

    expected = {**without_id(page), "name": "Renamed", "durations": [45]}
    assert without_id(updated) == expected
    assert [without_id(stored) for stored in await my_pages(server, token)] == [expected]


async def test_null_fixed_range_returns_to_the_rolling_horizon(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2
    _user, token = owner
    page = await create_page_result(server, token, FULL_INPUT)
    assert (page["fixedRangeStart"], page["fixedRangeEnd"]) == ("2027-01-01", "2027-06-30")
    one_null = await update_page_result(
        server, token, page["id"], {**page_input("discovery"), "fixedRangeStart": None, "fixedRangeEnd": "2027-02-01"}
    )
    assert one_null["field"] == "fixedRange"
    assert (await my_pages(server, token))[0]["fixedRangeEnd"] == "2027-06-30"
    cleared = await update_page_result(
        server, token, page["id"], {**page_input("discovery"), "fixedRangeStart": None, "fixedRangeEnd": None}
    )
    assert (cleared["fixedRangeStart"], cleared["fixedRangeEnd"]) == (None, None)
    stored = (await my_pages(server, token))[0]
    assert (stored["fixedRangeStart"], stored["fixedRangeEnd"], stored["bookingHorizonDays"]) == (
        None,
        None,
        FULL_STORED["bookingHorizonDays"],
    )


async def test_update_with_empty_redirect_and_domain_clears_them(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2, PAGE-6
    _user, token = owner
    page = await create_page_result(server, token, FULL_INPUT)
    updated = await update_page_result(
        server, token, page["id"], {**page_input("discovery"), "redirectUrl": "  ", "domain": ""}
    )
    assert (updated["redirectUrl"], updated["domain"]) == (None, None)
    stored = (await my_pages(server, token))[0]
    assert (stored["redirectUrl"], stored["domain"]) == (None, None)
    assert stored["formFields"] == FULL_STORED["formFields"]


async def test_update_can_replace_lists_with_empty_ones(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2
    _user, token = owner
    page = await create_page_result(server, token, FULL_INPUT)
    updated = await update_page_result(
        server,
        token,
        page["id"],
        {**page_input("discovery"), "weeklyHours": [], "dateOverrides": [], "formFields": []},
    )
    assert (updated["weeklyHours"], updated["dateOverrides"], updated["formFields"]) == ([], [], [])
    stored = (await my_pages(server, token))[0]
    assert (stored["weeklyHours"], stored["dateOverrides"], stored["formFields"]) == ([], [], [])


# Bad input: the typed error, and nothing changes ----------------------------------------------

TUESDAY_9_TO_12 = {"weekday": "TUESDAY", "start": "09:00", "end": "12:00"}

# (id, what replaces the valid input's values, the field InvalidInput names)
BAD_PAGE_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("slug-space", {"slug": "my page"}, "slug"),
    ("slug-leading-hyphen", {"slug": "-intro"}, "slug"),
    ("slug-trailing-hyphen", {"slug": "intro-"}, "slug"),
    ("slug-65-chars", {"slug": "a" * 65}, "slug"),
    ("slug-empty", {"slug": "  "}, "slug"),
    ("slug-path", {"slug": "../admin"}, "slug"),
    ("slug-non-ascii", {"slug": "päivä"}, "slug"),
    ("name-empty", {"name": "   "}, "name"),
    ("name-html", {"name": "<b>Intro</b>"}, "name"),
    ("name-newline", {"name": "Intro\nBcc: victim@example.com"}, "name"),
    ("name-201-chars", {"name": "N" * 201}, "name"),
    ("durations-empty", {"durations": []}, "durations"),
    ("durations-zero", {"durations": [0]}, "durations"),
    ("durations-721", {"durations": [721]}, "durations"),
    ("durations-negative", {"durations": [-30]}, "durations"),
    ("durations-repeated", {"durations": [30, 45, 30]}, "durations"),
    ("durations-eleven", {"durations": [5 * n for n in range(1, 12)]}, "durations"),
    ("start-increment-0", {"startIncrement": 0}, "startIncrement"),
    ("buffer-negative", {"bufferMinutes": -5}, "bufferMinutes"),
    ("notice-negative", {"minimumNoticeMinutes": -1}, "minimumNoticeMinutes"),
    ("horizon-0", {"bookingHorizonDays": 0}, "bookingHorizonDays"),
    ("horizon-366", {"bookingHorizonDays": 366}, "bookingHorizonDays"),
    ("zone-mars", {"timezone": "Mars/Base"}, "timezone"),
    ("zone-path", {"timezone": "../etc/passwd"}, "timezone"),
    ("zone-empty", {"timezone": ""}, "timezone"),
    ("hours-25", {"weeklyHours": [{"weekday": "MONDAY", "start": "09:00", "end": "25:00"}]}, "weeklyHours"),
    ("hours-24-30", {"weeklyHours": [{"weekday": "MONDAY", "start": "09:00", "end": "24:30"}]}, "weeklyHours"),
    ("hours-9am", {"weeklyHours": [{"weekday": "MONDAY", "start": "9am", "end": "17:00"}]}, "weeklyHours"),
    (
        "hours-start-after-end",
        {"weeklyHours": [{"weekday": "MONDAY", "start": "17:00", "end": "09:00"}]},
        "weeklyHours",
    ),
    ("hours-empty-range", {"weeklyHours": [{"weekday": "MONDAY", "start": "09:00", "end": "09:00"}]}, "weeklyHours"),
    (
        "hours-overlap",
        {
            "weeklyHours": [
                TUESDAY_9_TO_12,
                {"weekday": "TUESDAY", "start": "11:00", "end": "14:00"},
                {"weekday": "WEDNESDAY", "start": "11:00", "end": "14:00"},
            ]
        },
        "weeklyHours",
    ),
    ("hours-same-twice", {"weeklyHours": [TUESDAY_9_TO_12, TUESDAY_9_TO_12]}, "weeklyHours"),
    (
        "overrides-overlap",
        {
            "dateOverrides": [
                {
                    "date": "2030-01-02",
                    "intervals": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}],
                }
            ]
        },
        "dateOverrides",
    ),
    (
        "overrides-duplicate-date",
        {"dateOverrides": [{"date": "2030-01-02", "intervals": []}, {"date": "2030-01-02", "intervals": []}]},
        "dateOverrides",
    ),
    (
        "overrides-bad-time",
        {"dateOverrides": [{"date": "2030-01-02", "intervals": [{"start": "08:61", "end": "12:00"}]}]},
        "dateOverrides",
    ),
    ("form-key-name", {"formFields": [{"key": "name", "label": "Name"}]}, "formFields"),
    ("form-key-email", {"formFields": [{"key": "email", "label": "Email"}]}, "formFields"),
    (
        "form-key-repeated",
        {"formFields": [{"key": "company", "label": "Company"}, {"key": "company", "label": "Employer"}]},
        "formFields",
    ),
    ("form-key-with-space", {"formFields": [{"key": "Bad Key", "label": "Bad"}]}, "formFields"),
    ("form-key-upper-case", {"formFields": [{"key": "Company", "label": "Company"}]}, "formFields"),
    ("form-label-html", {"formFields": [{"key": "company", "label": "<script>x</script>"}]}, "formFields"),
    ("redirect-javascript", {"redirectUrl": "javascript:alert(1)"}, "redirectUrl"),
    ("redirect-ftp", {"redirectUrl": "ftp://x"}, "redirectUrl"),
    ("redirect-relative", {"redirectUrl": "/thanks"}, "redirectUrl"),
    ("redirect-bad-port", {"redirectUrl": "https://example.com:port/thanks"}, "redirectUrl"),
    ("domain-unknown", {"domain": "nowhere.example.com"}, "domain"),
    ("domain-not-a-host", {"domain": "not a host"}, "domain"),
    ("fixed-range-only-start", {"fixedRangeStart": "2027-01-01"}, "fixedRange"),
    ("fixed-range-only-end", {"fixedRangeEnd": "2027-01-01"}, "fixedRange"),
    ("fixed-range-backwards", {"fixedRangeStart": "2027-02-01", "fixedRangeEnd": "2027-01-01"}, "fixedRange"),
]


@pytest.mark.parametrize(
    ("bad", "field"), [(bad, field) for _, bad, field in BAD_PAGE_INPUTS], ids=[name for name, _, _ in BAD_PAGE_INPUTS]
)
async def test_bad_page_input_is_refused_and_changes_nothing(
    server: LiveServer, owner: Owner, bad: dict[str, Any], field: str
) -> None:
    # covers: PAGE-2
    _user, token = owner
    existing = await create_page(server, token, "existing", name="Existing")
    before = await me(server, token)
    # Good changes travel with the bad value: none of them may be applied.
    attempt = {
        **page_input("changed", "Changed name", durations=[45], bufferMinutes=5, timezone="Asia/Tokyo"),
        "weeklyHours": [TUESDAY_9_TO_12],
        "redirectUrl": "https://example.com/changed",
        **bad,
    }

    created = await create_page_result(server, token, attempt)
    updated = await update_page_result(server, token, existing["id"], attempt)

    for result in (created, updated):
        assert result["__typename"] == "InvalidInput", result
        assert result["field"] == field
        assert result["message"]
    assert await me(server, token) == before


async def test_malformed_variables_are_graphql_errors_and_change_nothing(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2
    _user, token = owner
    existing = await create_page(server, token, "existing")
    before = await me(server, token)
    attempts = [
        page_input(fixedRangeStart="2027-13-01", fixedRangeEnd="2027-12-01"),
        page_input(weeklyHours=[{"weekday": "FUNDAY", "start": "09:00", "end": "17:00"}]),
        page_input(durations=["thirty"]),
        page_input(formFields=[{"key": "company", "label": "Company", "kind": "VIDEO"}]),
        {"slug": "no-name", "durations": [30]},
    ]
    for attempt in attempts:
        for document, variables in (
            (CREATE_PAGE, {"input": attempt}),
            (UPDATE_PAGE, {"id": existing["id"], "input": attempt}),
        ):
            result = await server.graphql(document, variables, token=token)
            assert result.get("data") is None, (attempt, result)
            assert result["errors"], attempt
    assert await me(server, token) == before


async def test_taken_slug_is_refused_on_create_and_update(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-7
    _user, token = owner
    intro = await create_page(server, token, "intro")
    demo = await create_page(server, token, "demo")
    before_owner = await me(server, token)
    before_other = await me(server, other_owner[1])

    for caller in (token, other_owner[1]):
        taken = await create_page_result(server, caller, page_input("INTRO", "Copy"))
        assert taken["__typename"] == "SlugTaken", taken
        assert taken["slug"] == "intro"
        assert taken["message"]
    renamed = await update_page_result(server, token, demo["id"], page_input(" Intro ", "Demo renamed", durations=[60]))
    assert renamed == {"__typename": "SlugTaken", "message": renamed["message"], "slug": "intro"}

    assert await me(server, token) == before_owner
    assert await me(server, other_owner[1]) == before_other
    # A page may keep its own slug on update.
    same = await update_page_result(server, token, intro["id"], page_input("intro", "Intro again"))
    assert (same["__typename"], same["slug"], same["name"]) == ("SchedulingPage", "intro", "Intro again")


async def test_deleted_slug_can_be_used_again(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-7
    _user, token = owner
    page = await create_page(server, token, "intro")
    assert (await delete_page_result(server, token, page["id"]))["__typename"] == "Deleted"
    reused = await create_page(server, other_owner[1], "intro")
    assert reused["slug"] == "intro"
    assert [p["slug"] for p in await my_pages(server, other_owner[1])] == ["intro"]


# Delete -------------------------------------------------------------------------------------


async def test_delete_page(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-1
    _user, token = owner
    keep = await create_page(server, token, "keep")
    gone = await create_page(server, token, "gone")

    assert await delete_page_result(server, token, gone["id"]) == {"__typename": "Deleted", "id": gone["id"]}

    assert [page["id"] for page in await my_pages(server, token)] == [keep["id"]]
    assert await public_page(server, "gone") is None
    again = await delete_page_result(server, token, gone["id"])
    assert again["__typename"] == "NotFound"
    # The update of a deleted page is NotFound as well.
    updated = await update_page_result(server, token, gone["id"], page_input("gone"))
    assert updated["__typename"] == "NotFound"
    assert [page["id"] for page in await my_pages(server, token)] == [keep["id"]]


# Object-level authorisation ---------------------------------------------------------------


async def test_another_owners_page_is_not_found(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-1
    _user, token = owner
    page = await create_page_result(server, token, FULL_INPUT)
    before = await me(server, token)
    intruder = other_owner[1]

    updated = await update_page_result(server, intruder, page["id"], page_input("stolen", "Stolen", enabled=False))
    deleted = await delete_page_result(server, intruder, page["id"])

    assert updated == {"__typename": "NotFound", "message": updated["message"]}
    assert deleted == {"__typename": "NotFound", "message": deleted["message"]}
    assert "discovery" not in str(updated) + str(deleted)
    assert await me(server, token) == before
    assert await my_pages(server, intruder) == []
    settings = await update_settings(server, intruder, defaultSchedulingPageId=page["id"])
    assert error_codes(settings) == ["INVALID_INPUT"]
    assert (await me(server, token))["defaultSchedulingPage"] == {"id": page["id"]}


@pytest.mark.parametrize("page_id", ["RANDOM", "not-a-uuid", "", "1", "' OR 1=1 --"])
async def test_unknown_page_ids_are_not_found(server: LiveServer, owner: Owner, page_id: str) -> None:
    # covers: PAGE-1
    _user, token = owner
    await create_page(server, token, "intro")
    before = await me(server, token)
    page_id = random_id() if page_id == "RANDOM" else page_id

    updated = await update_page_result(server, token, page_id, page_input("changed"))
    deleted = await delete_page_result(server, token, page_id)

    assert updated["__typename"] == "NotFound"
    assert deleted["__typename"] == "NotFound"
    assert await me(server, token) == before


async def test_owners_never_see_each_others_pages(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-1
    mine = await create_page(server, owner[1], "mine")
    theirs = await create_page(server, other_owner[1], "theirs")
    assert [page["id"] for page in await my_pages(server, owner[1])] == [mine["id"]]
    assert [page["id"] for page in await my_pages(server, other_owner[1])] == [theirs["id"]]
    # Each owner's first page is their own default.
    assert theirs["isDefault"] is True
    assert (await me(server, owner[1]))["defaultSchedulingPage"] == {"id": mine["id"]}


# Disable and enable all (PAGE-10) ---------------------------------------------------------


async def test_disable_all_hides_every_page_and_enable_restores(
    server: LiveServer, owner: Owner, other_owner: Owner
) -> None:
    # covers: PAGE-10
    _user, token = owner
    first = await create_page(server, token, "first")
    second = await create_page(server, token, "second")
    theirs = await create_page(server, other_owner[1], "theirs")

    disabled = await set_all_enabled(server, token, False)

    assert [(page["id"], page["enabled"]) for page in disabled] == [(first["id"], False), (second["id"], False)]
    stored = await my_pages(server, token)
    assert stored == disabled
    assert [without_id(page) for page in stored] == [
        {**without_id(first), "enabled": False},
        {**without_id(second), "enabled": False},
    ]
    assert await public_page(server, "first") is None
    assert await public_page(server, "second") is None
    assert (await public_page(server, "theirs")) is not None
    assert (await my_pages(server, other_owner[1]))[0]["enabled"] is True

    enabled = await set_all_enabled(server, token, True)

    assert [without_id(page) for page in enabled] == [without_id(first), without_id(second)]
    assert await my_pages(server, token) == enabled
    assert (await public_page(server, "first"))["slug"] == "first"  # type: ignore[index]
    assert (await public_page(server, "second"))["slug"] == "second"  # type: ignore[index]
    assert await my_pages(server, other_owner[1]) == [{k: v for k, v in theirs.items() if k != "__typename"}]


async def test_disable_all_twice_and_with_no_pages(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-10
    assert await set_all_enabled(server, other_owner[1], False) == []
    await create_page(server, owner[1], "intro")
    await set_all_enabled(server, owner[1], False)
    again = await set_all_enabled(server, owner[1], False)
    assert [page["enabled"] for page in again] == [False]
    # Editing a disabled page without `enabled` keeps it disabled.
    (page,) = await my_pages(server, owner[1])
    edited = await update_page_result(server, owner[1], page["id"], page_input("intro", "Renamed"))
    assert (edited["name"], edited["enabled"]) == ("Renamed", False)
    assert await public_page(server, "intro") is None
    # A page can also be enabled on its own.
    updated = await update_page_result(server, owner[1], page["id"], page_input("intro", enabled=True))
    assert updated["enabled"] is True
    assert (await public_page(server, "intro")) is not None


# Default page (PAGE-5) ----------------------------------------------------------------------


async def test_default_page_and_meeting_link(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-5
    _user, token = owner
    first = await create_page(server, token, "first")
    second = await create_page(server, token, "second")
    third = await create_page(server, token, "third")
    assert (first["isDefault"], second["isDefault"], third["isDefault"]) == (True, False, False)
    profile = await me(server, token)
    assert profile["defaultSchedulingPage"] == {"id": first["id"]}
    assert profile["defaultMeetingLink"] == first["url"] == f"{server.services.links.default_base()}/first"

    # Changing the default.
    changed = await update_settings(server, token, defaultSchedulingPageId=third["id"])
    assert changed["data"]["updateUserSettings"]["defaultMeetingLink"] == third["url"]
    assert [page["isDefault"] for page in await my_pages(server, token)] == [False, False, True]

    # Deleting the default picks the oldest remaining page.
    await delete_page_result(server, token, third["id"])
    profile = await me(server, token)
    assert profile["defaultSchedulingPage"] == {"id": first["id"]}
    assert profile["defaultMeetingLink"] == first["url"]
    await delete_page_result(server, token, first["id"])
    profile = await me(server, token)
    assert profile["defaultSchedulingPage"] == {"id": second["id"]}
    assert profile["defaultMeetingLink"] == second["url"]
    assert [page["isDefault"] for page in profile["schedulingPages"]] == [True]

    # Deleting the last page leaves no default; the next page created becomes it.
    await delete_page_result(server, token, second["id"])
    profile = await me(server, token)
    assert (profile["defaultSchedulingPage"], profile["defaultMeetingLink"]) == (None, None)
    fresh = await create_page(server, token, "fresh")
    assert fresh["isDefault"] is True
    assert (await me(server, token))["defaultMeetingLink"] == fresh["url"]


async def test_deleting_another_page_keeps_the_default(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-5
    _user, token = owner
    first = await create_page(server, token, "first")
    second = await create_page(server, token, "second")
    await delete_page_result(server, token, second["id"])
    assert (await me(server, token))["defaultSchedulingPage"] == {"id": first["id"]}


async def test_default_link_follows_slug_changes(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-5, PAGE-3
    _user, token = owner
    page = await create_page(server, token, "intro")
    await update_page_result(server, token, page["id"], page_input("hello"))
    assert (await me(server, token))["defaultMeetingLink"] == f"{server.services.links.default_base()}/hello"


# Authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS)
async def test_page_operations_need_a_valid_token(server: LiveServer, owner: Owner, authorization: str | None) -> None:
    # covers: PAGE-1, PAGE-10
    _user, token = owner
    page = await create_page(server, token, "intro")
    before = await me(server, token)
    header = bad_authorization(authorization, token)
    attempts = [
        (MY_PAGES, None),
        (CREATE_PAGE, {"input": page_input("sneaky")}),
        (UPDATE_PAGE, {"id": page["id"], "input": page_input("sneaky", enabled=False)}),
        (DELETE_PAGE, {"id": page["id"]}),
        (SET_ALL_ENABLED, {"enabled": False}),
    ]
    for document, variables in attempts:
        result = await post_with_authorization(server, document, variables, header)
        assert result["data"] is None, (document, result)
        assert error_codes(result) == ["UNAUTHENTICATED"], (document, result)
        assert "Not authenticated" in result["errors"][0]["message"]
    assert await me(server, token) == before
    # The public page stays visible to the same anonymous caller.
    anonymous = await post_with_authorization(server, 'query { schedulingPage(slug: "intro") { slug } }', None, header)
    assert anonymous == {"data": {"schedulingPage": {"slug": "intro"}}}


# Concurrency ----------------------------------------------------------------------------------


async def test_concurrent_creates_of_one_slug_have_one_winner(
    server: LiveServer, owner: Owner, other_owner: Owner
) -> None:
    # covers: PAGE-7
    tokens = [owner[1], other_owner[1]] * 6
    results = await asyncio.gather(
        *(create_page_result(server, token, page_input("race", f"Racer {n}")) for n, token in enumerate(tokens))
    )

    kinds = sorted(result["__typename"] for result in results)
    assert kinds == ["SchedulingPage"] + ["SlugTaken"] * (len(tokens) - 1), results
    winners = await my_pages(server, owner[1]) + await my_pages(server, other_owner[1])
    assert [page["slug"] for page in winners] == ["race"]
    assert winners[0]["isDefault"] is True
