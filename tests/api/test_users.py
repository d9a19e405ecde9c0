"""`me` and `updateUserSettings` over real HTTP: what is returned, what is stored, what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from db.models import ApiToken, User
from scheduling import api_tokens
from scheduling.services import Services
from tests.support.graphql_documents import (
    BAD_AUTHORIZATIONS,
    ME,
    UPDATE_SETTINGS,
    add_domain,
    bad_authorization,
    create_page,
    error_codes,
    me,
    post_with_authorization,
    random_id,
    update_settings,
)
from tests.support.live_server import LiveServer

Owner = tuple[User, str]


async def test_me_is_the_signed_in_owner(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-1, PAGE-3, PAGE-5, CAL-4
    user, token = owner
    assert await me(server, token) == {
        "id": str(user.id),
        "email": "owner@example.com",
        "name": "owner",
        "timezone": "Europe/Helsinki",
        "personalEmailAccess": False,
        "hideFromSearchEngines": False,
        "meetingsLinkBase": server.services.links.default_base(),
        "defaultMeetingLink": None,
        "defaultSchedulingPage": None,
        "schedulingPages": [],
    }


async def test_each_owner_sees_only_themselves(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: PAGE-1
    assert (await me(server, owner[1]))["id"] == str(owner[0].id)
    assert (await me(server, other_owner[1]))["email"] == "other@example.com"


async def test_update_settings_returns_and_stores_every_field(
    server: LiveServer, services: Services, owner: Owner
) -> None:
    # covers: CAL-4, PAGE-8, PAGE-3
    _user, token = owner
    await add_domain(services, "meet.example.com")
    result = await update_settings(
        server,
        token,
        personalEmailAccess=True,
        timezone="America/New_York",
        hideFromSearchEngines=True,
        meetingsLinkBase="https://meet.example.com/meetings",
    )
    updated = result["data"]["updateUserSettings"]
    expected = {
        "personalEmailAccess": True,
        "timezone": "America/New_York",
        "hideFromSearchEngines": True,
        "meetingsLinkBase": "https://meet.example.com/meetings",
    }
    assert {key: updated[key] for key in expected} == expected
    stored = await me(server, token)
    assert {key: stored[key] for key in expected} == expected
    assert stored == updated


async def test_settings_left_out_keep_their_values(server: LiveServer, owner: Owner) -> None:
    # covers: CAL-4, PAGE-8
    _user, token = owner
    await update_settings(server, token, personalEmailAccess=True, hideFromSearchEngines=True, timezone="Asia/Tokyo")
    before = await me(server, token)

    result = await update_settings(server, token, timezone="Europe/Oslo")

    assert result["data"]["updateUserSettings"] == {**before, "timezone": "Europe/Oslo"}
    assert await me(server, token) == {**before, "timezone": "Europe/Oslo"}
    # An empty input changes nothing at all.
    assert (await update_settings(server, token))["data"]["updateUserSettings"] == {**before, "timezone": "Europe/Oslo"}


async def test_settings_can_be_turned_off_again(server: LiveServer, owner: Owner) -> None:
    # covers: CAL-4, PAGE-8
    _user, token = owner
    await update_settings(server, token, personalEmailAccess=True, hideFromSearchEngines=True)
    await update_settings(server, token, personalEmailAccess=False, hideFromSearchEngines=False)
    stored = await me(server, token)
    assert (stored["personalEmailAccess"], stored["hideFromSearchEngines"]) == (False, False)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://meet.example.com/meetings", "https://meet.example.com/meetings"),
        ("https://meet.example.com/meetings/", "https://meet.example.com/meetings"),
        ("https://MEET.example.com", "https://meet.example.com/meetings"),
        ("meet.example.com", "https://meet.example.com/meetings"),
    ],
)
async def test_meetings_link_base_on_a_connected_domain_is_normalised(
    server: LiveServer, services: Services, owner: Owner, given: str, stored: str
) -> None:
    # covers: PAGE-3, PAGE-6
    _user, token = owner
    await add_domain(services, "meet.example.com")
    result = await update_settings(server, token, meetingsLinkBase=given)
    assert result["data"]["updateUserSettings"]["meetingsLinkBase"] == stored
    assert (await me(server, token))["meetingsLinkBase"] == stored


async def test_empty_meetings_link_base_restores_the_apps(server: LiveServer, services: Services, owner: Owner) -> None:
    # covers: PAGE-3
    _user, token = owner
    await add_domain(services, "meet.example.com")
    await update_settings(server, token, meetingsLinkBase="https://meet.example.com/meetings")
    result = await update_settings(server, token, meetingsLinkBase="")
    app_base = services.links.default_base()
    assert result["data"]["updateUserSettings"]["meetingsLinkBase"] == app_base
    assert (await me(server, token))["meetingsLinkBase"] == app_base
    # The app's own base, given in full, is the same as the default.
    await update_settings(server, token, meetingsLinkBase=app_base)
    assert (await me(server, token))["meetingsLinkBase"] == app_base


async def test_default_scheduling_page_can_be_chosen(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-5
    _user, token = owner
    first = await create_page(server, token, "first")
    second = await create_page(server, token, "second")
    result = await update_settings(server, token, defaultSchedulingPageId=second["id"])
    updated = result["data"]["updateUserSettings"]
    assert updated["defaultSchedulingPage"] == {"id": second["id"]}
    assert updated["defaultMeetingLink"] == second["url"]
    stored = await me(server, token)
    assert stored["defaultSchedulingPage"] == {"id": second["id"]}
    assert {page["slug"]: page["isDefault"] for page in stored["schedulingPages"]} == {"first": False, "second": True}
    assert first["isDefault"] is True


# Each bad value travels with good ones, to show that nothing of the request is applied.
BAD_SETTINGS: list[tuple[str, dict[str, Any], str]] = [
    ("zone-mars", {"personalEmailAccess": True, "timezone": "Mars/Base"}, "timezone"),
    ("zone-path", {"hideFromSearchEngines": True, "timezone": "../etc/passwd"}, "timezone"),
    ("zone-empty", {"personalEmailAccess": True, "timezone": ""}, "timezone"),
    (
        "base-unknown-domain",
        {"timezone": "America/New_York", "meetingsLinkBase": "https://unknown.example.com/meetings"},
        "meetingsLinkBase",
    ),
    (
        "base-other-path",
        {"timezone": "America/New_York", "meetingsLinkBase": "https://meet.example.com/book"},
        "meetingsLinkBase",
    ),
    (
        "base-http",
        {"personalEmailAccess": True, "meetingsLinkBase": "http://meet.example.com/meetings"},
        "meetingsLinkBase",
    ),
    (
        "base-query",
        {"personalEmailAccess": True, "meetingsLinkBase": "https://meet.example.com/meetings?x=1"},
        "meetingsLinkBase",
    ),
    ("base-javascript", {"hideFromSearchEngines": True, "meetingsLinkBase": "javascript:alert(1)"}, "meetingsLinkBase"),
    (
        "default-other-users-page",
        {"timezone": "America/New_York", "personalEmailAccess": True, "defaultSchedulingPageId": "OTHER"},
        "defaultSchedulingPageId",
    ),
    (
        "default-not-an-id",
        {"timezone": "America/New_York", "defaultSchedulingPageId": "page-1"},
        "defaultSchedulingPageId",
    ),
    (
        "default-unknown-id",
        {"timezone": "America/New_York", "defaultSchedulingPageId": "RANDOM"},
        "defaultSchedulingPageId",
    ),
]


@pytest.mark.parametrize(("change", "field"), [(s, f) for _, s, f in BAD_SETTINGS], ids=[i for i, _, _ in BAD_SETTINGS])
async def test_bad_settings_are_refused_and_change_nothing(
    server: LiveServer, services: Services, owner: Owner, other_owner: Owner, change: dict[str, Any], field: str
) -> None:
    # covers: PAGE-3, PAGE-5, CAL-4
    _user, token = owner
    await add_domain(services, "meet.example.com")
    await create_page(server, token, "mine")
    others = await create_page(server, other_owner[1], "theirs")
    replacements = {"OTHER": others["id"], "RANDOM": random_id()}
    change = {key: replacements.get(value, value) for key, value in change.items()}
    before = await me(server, token)

    result = await update_settings(server, token, **change)

    assert result["data"] is None
    assert error_codes(result) == ["INVALID_INPUT"]
    assert result["errors"][0]["extensions"]["field"] == field
    assert result["errors"][0]["message"]
    assert await me(server, token) == before
    assert (await me(server, other_owner[1]))["defaultSchedulingPage"] == {"id": others["id"]}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS)
async def test_me_and_settings_need_a_valid_token(server: LiveServer, owner: Owner, authorization: str | None) -> None:
    # covers: CAL-4
    _user, token = owner
    header = bad_authorization(authorization, token)
    before = await me(server, token)

    asked = await post_with_authorization(server, ME, None, header)
    changed = await post_with_authorization(
        server, UPDATE_SETTINGS, {"input": {"timezone": "Asia/Tokyo", "personalEmailAccess": True}}, header
    )

    for result in (asked, changed):
        assert result["data"] is None
        assert error_codes(result) == ["UNAUTHENTICATED"]
        assert "owner@example.com" not in str(result)
    assert await me(server, token) == before


async def test_a_revoked_token_is_refused(server: LiveServer, services: Services, owner: Owner) -> None:
    # covers: CAL-4
    user, first_token = owner
    second_token = await services.users.issue_token(user.id, label="dashboard")
    assert (await me(server, second_token))["id"] == str(user.id)

    async with services.db.transaction() as session:
        row = (await session.exec(select(ApiToken).where(ApiToken.token_hash == api_tokens.digest(second_token)))).one()
        row.revoked_at = services.clock()
        session.add(row)

    refused = await server.graphql(ME, token=second_token)
    assert (refused["data"], error_codes(refused)) == (None, ["UNAUTHENTICATED"])
    assert (await me(server, first_token))["id"] == str(user.id)


async def test_the_bearer_scheme_is_case_insensitive(server: LiveServer, owner: Owner) -> None:
    # covers: CAL-4
    user, token = owner
    result = await post_with_authorization(server, ME, None, f"bearer {token}")
    assert result["data"]["me"]["id"] == str(user.id)
