"""Connected domains: the `domains` query, pages hosted on them, links and slug uniqueness."""

from __future__ import annotations

import pytest

from db.models import User
from tests.support.graphql_documents import (
    BAD_AUTHORIZATIONS,
    DOMAINS,
    add_domain,
    bad_authorization,
    create_page,
    create_page_result,
    data,
    error_codes,
    me,
    my_pages,
    page_input,
    post_with_authorization,
    public_page,
    update_page_result,
    update_settings,
)
from tests.support.live_server import LiveServer

Owner = tuple[User, str]

MEET = "meet.example.com"
OTHER = "other.example.com"


async def domains(server: LiveServer, token: str) -> list[str]:
    return [row["host"] for row in data(await server.graphql(DOMAINS, token=token))["domains"]]


async def test_domains_lists_every_connected_host_to_every_owner(
    server: LiveServer, owner: Owner, other_owner: Owner
) -> None:
    # covers: PAGE-6
    assert await domains(server, owner[1]) == []
    await add_domain(server.services, MEET)
    await add_domain(server.services, "Book.Example.com")
    assert await domains(server, owner[1]) == ["book.example.com", MEET]
    assert await domains(server, other_owner[1]) == ["book.example.com", MEET]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS)
async def test_domains_need_a_valid_token(server: LiveServer, owner: Owner, authorization: str | None) -> None:
    # covers: PAGE-6
    await add_domain(server.services, MEET)
    result = await post_with_authorization(server, DOMAINS, None, bad_authorization(authorization, owner[1]))
    assert result["data"] is None
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert MEET not in str(result)


async def test_page_on_a_connected_domain(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-3, PAGE-6
    _user, token = owner
    await add_domain(server.services, MEET)
    await add_domain(server.services, OTHER)

    page = await create_page(server, token, "intro", domain="Meet.Example.com")

    assert (page["domain"], page["url"]) == (MEET, f"https://{MEET}/meetings/intro")
    (stored,) = await my_pages(server, token)
    assert (stored["domain"], stored["url"]) == (MEET, f"https://{MEET}/meetings/intro")
    for host in (MEET, "MEET.EXAMPLE.COM.", server.services.links.app_host, None):
        seen = await public_page(server, "intro", host)
        assert seen is not None, host
        assert seen["url"] == f"https://{MEET}/meetings/intro"
    assert await public_page(server, "intro", OTHER) is None
    assert await public_page(server, "intro", "unknown.example.com") is None
    # Any owner may host pages on any connected domain.
    theirs = await create_page(server, other_owner[1], "theirs", domain=MEET)
    assert theirs["url"] == f"https://{MEET}/meetings/theirs"


@pytest.mark.parametrize("domain", ["unknown.example.com", "example", "https://meet.example.com", "meet.example.com/x"])
async def test_page_on_an_unconnected_domain_is_refused(server: LiveServer, owner: Owner, domain: str) -> None:
    # covers: PAGE-6
    _user, token = owner
    await add_domain(server.services, MEET)
    page = await create_page(server, token, "intro")
    before = await me(server, token)

    created = await create_page_result(server, token, page_input("second", domain=domain))
    updated = await update_page_result(server, token, page["id"], page_input("intro", domain=domain))

    for result in (created, updated):
        assert (result["__typename"], result["field"]) == ("InvalidInput", "domain"), result
    assert await me(server, token) == before


async def test_slug_is_unique_across_domains(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-7
    _user, token = owner
    await add_domain(server.services, MEET)
    await add_domain(server.services, OTHER)
    await create_page(server, token, "intro", domain=MEET)
    theirs = await create_page(server, other_owner[1], "theirs", domain=OTHER)
    before_owner = await me(server, token)
    before_other = await me(server, other_owner[1])

    for domain in (OTHER, MEET, None, ""):
        refused = await create_page_result(server, other_owner[1], page_input("intro", domain=domain))
        assert (refused["__typename"], refused["slug"]) == ("SlugTaken", "intro"), (domain, refused)
    renamed = await update_page_result(server, other_owner[1], theirs["id"], page_input("Intro", domain=OTHER))
    assert (renamed["__typename"], renamed["slug"]) == ("SlugTaken", "intro")
    # The owner of the first page is refused too, on the app's own domain.
    mine_again = await create_page_result(server, token, page_input("intro"))
    assert mine_again["__typename"] == "SlugTaken"

    assert await me(server, token) == before_owner
    assert await me(server, other_owner[1]) == before_other


async def test_changing_the_link_base_updates_every_page_link(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-3, PAGE-5, PAGE-6
    _user, token = owner
    app_base = server.services.links.default_base()
    await add_domain(server.services, MEET)
    await add_domain(server.services, OTHER)
    await create_page(server, token, "first")
    await create_page(server, token, "second")
    await create_page(server, token, "own-domain", domain=OTHER)

    changed = await update_settings(server, token, meetingsLinkBase=f"https://{MEET}/meetings")

    moved = {
        "first": f"https://{MEET}/meetings/first",
        "second": f"https://{MEET}/meetings/second",
        "own-domain": f"https://{OTHER}/meetings/own-domain",  # a page's own domain wins
    }
    profile = changed["data"]["updateUserSettings"]
    assert {page["slug"]: page["url"] for page in profile["schedulingPages"]} == moved
    assert profile["defaultMeetingLink"] == moved["first"]
    stored = await me(server, token)
    assert {page["slug"]: page["url"] for page in stored["schedulingPages"]} == moved
    assert stored["defaultMeetingLink"] == moved["first"]
    assert (await public_page(server, "second", MEET))["url"] == moved["second"]  # type: ignore[index]
    assert await public_page(server, "second", OTHER) is None

    # Restoring the app's base moves them back.
    await update_settings(server, token, meetingsLinkBase="")
    restored = {page["slug"]: page["url"] for page in await my_pages(server, token)}
    assert restored == {
        "first": f"{app_base}/first",
        "second": f"{app_base}/second",
        "own-domain": f"https://{OTHER}/meetings/own-domain",
    }
    assert await public_page(server, "second", MEET) is None


async def test_a_refused_link_base_leaves_every_link(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-3
    _user, token = owner
    await add_domain(server.services, MEET)
    await update_settings(server, token, meetingsLinkBase=f"https://{MEET}/meetings")
    await create_page(server, token, "intro")
    before = await me(server, token)

    for base in (f"http://{MEET}/meetings", f"https://{MEET}/book", "https://unknown.example.com/meetings"):
        result = await update_settings(server, token, meetingsLinkBase=base)
        assert error_codes(result) == ["INVALID_INPUT"], base
        assert result["errors"][0]["extensions"]["field"] == "meetingsLinkBase"

    assert await me(server, token) == before
    assert before["schedulingPages"][0]["url"] == f"https://{MEET}/meetings/intro"


async def test_changing_a_pages_domain_updates_its_link(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-3, PAGE-6
    _user, token = owner
    await add_domain(server.services, MEET)
    page = await create_page(server, token, "intro")

    moved = await update_page_result(server, token, page["id"], page_input("intro", domain=MEET))
    assert moved["url"] == f"https://{MEET}/meetings/intro"
    assert (await my_pages(server, token))[0]["url"] == f"https://{MEET}/meetings/intro"
    assert (await public_page(server, "intro", MEET)) is not None

    # Leaving the domain out keeps it; an empty one returns to the owner's base.
    kept = await update_page_result(server, token, page["id"], page_input("intro", name="Renamed"))
    assert (kept["domain"], kept["url"]) == (MEET, f"https://{MEET}/meetings/intro")
    back = await update_page_result(server, token, page["id"], page_input("intro", domain=""))
    assert (back["domain"], back["url"]) == (None, f"{server.services.links.default_base()}/intro")
    assert (await my_pages(server, token))[0]["domain"] is None
    assert await public_page(server, "intro", MEET) is None
