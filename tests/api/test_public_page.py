"""The public `schedulingPage` query: what anonymous visitors see, and when they see nothing."""

from __future__ import annotations

import pytest

from db.models import User
from tests.support.calendar_rows import connect_calendar
from tests.support.graphql_documents import (
    BAD_AUTHORIZATIONS,
    PUBLIC_PAGE,
    UPDATE_CONNECTION,
    add_domain,
    bad_authorization,
    create_page,
    data,
    me,
    my_pages,
    page_input,
    post_with_authorization,
    public_page,
    update_page_result,
)
from tests.support.live_server import LiveServer

Owner = tuple[User, str]

FORM_FIELDS = [{"key": "company", "label": "Company", "kind": "TEXT", "required": True}]


async def test_visitors_see_the_public_fields_without_a_token(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-1, PAGE-2, PAGE-4
    _user, token = owner
    page = await create_page(
        server, token, "intro", durations=[45, 15], timezone="America/New_York", formFields=FORM_FIELDS
    )

    seen = await public_page(server, "intro")

    assert seen == {
        "slug": "intro",
        "name": "Intro call",
        "url": page["url"],
        "status": "OFFLINE",
        "durations": [15, 45],
        "timezone": "America/New_York",
        "formFields": FORM_FIELDS,
    }


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS)
async def test_a_bad_token_does_not_hide_the_public_page(
    server: LiveServer, owner: Owner, authorization: str | None
) -> None:
    # covers: PAGE-4
    _user, token = owner
    await create_page(server, token, "intro")
    result = await post_with_authorization(
        server, PUBLIC_PAGE, {"slug": "intro"}, bad_authorization(authorization, token)
    )
    assert "errors" not in result, result
    assert result["data"]["schedulingPage"]["slug"] == "intro"


async def test_the_owner_sees_the_same_page_publicly(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-1
    await create_page(server, owner[1], "intro")
    # Signed-in callers, whoever they are, get the same public view.
    assert await public_page(server, "intro", token=owner[1]) == await public_page(server, "intro")
    assert await public_page(server, "intro", token=other_owner[1]) == await public_page(server, "intro")


async def test_slug_lookup_ignores_case_and_spaces(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-2
    await create_page(server, owner[1], "intro")
    for asked in ("INTRO", " Intro ", "intro\n"):
        assert (await public_page(server, asked))["slug"] == "intro"  # type: ignore[index]


async def test_unknown_slug_is_null(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-10
    await create_page(server, owner[1], "intro")
    for slug in ("intros", "intr", "unknown"):
        assert await public_page(server, slug) is None


@pytest.mark.parametrize("slug", ["", " ", "a" * 500, "../etc/passwd", "intro' OR '1'='1", "intro%00", "<script>"])
async def test_odd_slugs_are_null_not_errors(server: LiveServer, owner: Owner, slug: str) -> None:
    # covers: PAGE-2
    await create_page(server, owner[1], "intro")
    result = await server.graphql(PUBLIC_PAGE, {"slug": slug})
    assert result == {"data": {"schedulingPage": None}}


async def test_a_disabled_page_is_null_until_enabled(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-10
    _user, token = owner
    page = await create_page(server, token, "intro")
    await create_page(server, token, "other")

    await update_page_result(server, token, page["id"], page_input("intro", enabled=False))
    assert await public_page(server, "intro") is None
    assert await public_page(server, "intro", token=token) is None
    assert (await public_page(server, "other")) is not None
    # The owner still has it.
    assert [(p["slug"], p["enabled"]) for p in await my_pages(server, token)] == [("intro", False), ("other", True)]

    await update_page_result(server, token, page["id"], page_input("intro", enabled=True))
    assert (await public_page(server, "intro"))["slug"] == "intro"  # type: ignore[index]


async def test_domain_argument_limits_where_the_page_is_found(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-6
    services = server.services
    await add_domain(services, "meet.example.com")
    await create_page(server, owner[1], "intro")  # on the app's own domain

    assert (await public_page(server, "intro")) is not None
    assert (await public_page(server, "intro", services.links.app_host)) is not None
    assert await public_page(server, "intro", "nowhere.example.com") is None  # not connected
    assert await public_page(server, "intro", "meet.example.com") is None  # connected, but not this page's


@pytest.mark.parametrize("domain", ["", "not a host", "a" * 300, "127.0.0.1:8000/x", "javascript:alert(1)"])
async def test_odd_domains_are_null_not_errors(server: LiveServer, owner: Owner, domain: str) -> None:
    # covers: PAGE-6
    await create_page(server, owner[1], "intro")
    assert await server.graphql(PUBLIC_PAGE, {"slug": "intro", "domain": domain}) == {"data": {"schedulingPage": None}}


# Online and offline (PAGE-4, CAL-7) ---------------------------------------------------------


async def statuses(server: LiveServer, token: str, slug: str) -> tuple[str, str]:
    """The page's status as visitors see it and as its owner sees it."""
    public = await public_page(server, slug)
    assert public is not None
    (owned,) = [page for page in await my_pages(server, token) if page["slug"] == slug]
    return public["status"], owned["status"]


async def test_offline_until_a_calendar_is_connected(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-1, PAGE-4
    user, token = owner
    await create_page(server, token, "intro")
    assert await statuses(server, token, "intro") == ("OFFLINE", "OFFLINE")

    # A connection that lists no calendar yet is not enough.
    await connect_calendar(server.services, user, with_calendar=False)
    assert await statuses(server, token, "intro") == ("OFFLINE", "OFFLINE")
    # Nor is someone else's calendar.
    await connect_calendar(server.services, other_owner[0])
    assert await statuses(server, token, "intro") == ("OFFLINE", "OFFLINE")

    await connect_calendar(server.services, user)
    assert await statuses(server, token, "intro") == ("ONLINE", "ONLINE")
    # A page created while connected is online from the start.
    assert (await create_page(server, token, "second"))["status"] == "ONLINE"


async def test_scheduling_pages_off_takes_the_page_offline(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-4, CAL-7
    user, token = owner
    await create_page(server, token, "intro")
    connection_id = str((await connect_calendar(server.services, user)).connection_id)
    assert await statuses(server, token, "intro") == ("ONLINE", "ONLINE")

    off = data(await server.graphql(UPDATE_CONNECTION, {"id": connection_id, "on": False}, token=token))
    assert off["updateCalendarConnection"] == {
        "__typename": "CalendarConnection",
        "id": connection_id,
        "schedulingPages": False,
        "calendars": [{"name": "Work"}],
    }
    assert await statuses(server, token, "intro") == ("OFFLINE", "OFFLINE")
    # The page itself is untouched: still enabled, still listed.
    assert [(page["slug"], page["enabled"]) for page in (await me(server, token))["schedulingPages"]] == [
        ("intro", True)
    ]

    data(await server.graphql(UPDATE_CONNECTION, {"id": connection_id, "on": True}, token=token))
    assert await statuses(server, token, "intro") == ("ONLINE", "ONLINE")


async def test_another_owner_cannot_take_a_page_offline(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-4, CAL-7
    user, token = owner
    await create_page(server, token, "intro")
    connection_id = str((await connect_calendar(server.services, user)).connection_id)

    result = data(await server.graphql(UPDATE_CONNECTION, {"id": connection_id, "on": False}, token=other_owner[1]))

    assert result["updateCalendarConnection"]["__typename"] == "NotFound"
    assert await statuses(server, token, "intro") == ("ONLINE", "ONLINE")
