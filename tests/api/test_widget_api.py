"""What the widget and the chat need from the API: the chat link, where a booking came from, and
a returning visitor's prefill, which only the token their own browser kept can open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from schema.build import build_schema
from schema.cacheable import PublicDocuments
from server.settings import Settings
from tests.support.booking_helpers import NOW, book, owner_with_page
from tests.support.live_server import LiveServer, start_live_server

FIELDS = [{"key": "company", "label": "Company", "kind": "TEXT", "required": False}]
CHAT_LINK = "query { me { schedulingPages { slug chatLink { url snippet } } } }"
PREFILL = """
query($slug: String!, $token: String!) {
  schedulingPage(slug: $slug) { redirectUrl prefill(contactToken: $token) { name email answers { key value } } }
}
"""
CONTACT_TOKEN = """
mutation($input: BookMeetingInput!) { bookMeeting(input: $input) { ... on Booking { contactToken source } } }
"""


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with start_live_server(settings, clock=lambda: NOW) as live:
        yield live


async def prefill(server: LiveServer, token: str, slug: str = "intro") -> dict[str, Any] | None:
    result = await server.graphql(PREFILL, {"slug": slug, "token": token})
    assert "errors" not in result, result
    page = result["data"]["schedulingPage"]
    assert page is not None
    return page["prefill"]  # type: ignore[no-any-return]


async def contact_token(server: LiveServer, start: str, **extra: Any) -> str:
    invitee = {"name": "Vera Visitor", "email": "vera@example.com"}
    variables = {"input": {"slug": "intro", "start": start, "timezone": "Europe/Helsinki", "invitee": invitee, **extra}}
    result = await server.graphql(CONTACT_TOKEN, variables)
    assert "errors" not in result, result
    return str(result["data"]["bookMeeting"]["contactToken"])


async def test_the_chat_link_and_snippet_book_with_source_chat(server: LiveServer) -> None:
    # covers: PAGE-11
    owner = await owner_with_page(server)
    (page,) = (await server.graphql(CHAT_LINK, token=owner.token))["data"]["me"]["schedulingPages"]
    link = page["chatLink"]
    assert link["url"] == "http://127.0.0.1:8000/meetings/intro?source=chat"
    assert '<script type="module" src="http://127.0.0.1:8000/widget/kokous.js"></script>' in link["snippet"]
    assert (
        '<kokous-booking page="intro" base="http://127.0.0.1:8000" source="CHAT"></kokous-booking>' in link["snippet"]
    )

    chat = await book(server, "2026-12-01T10:00:00+02:00", source="CHAT")
    embed = await book(server, "2026-12-01T11:00:00+02:00", email="olli@example.com", source="EMBED")
    plain = await book(server, "2026-12-01T12:00:00+02:00", email="aino@example.com")
    assert [chat["source"], embed["source"], plain["source"]] == ["CHAT", "EMBED", "PAGE"]


async def test_a_returning_visitor_is_prefilled_only_through_the_token_their_browser_kept(server: LiveServer) -> None:
    # covers: PAGE-9
    await owner_with_page(server, formFields=FIELDS, redirectUrl="https://example.com/thanks")
    token = await contact_token(server, "2026-12-01T10:00:00+02:00", answers=[{"key": "company", "value": "Acme"}])

    assert await prefill(server, token) == {
        "name": "Vera Visitor",
        "email": "vera@example.com",
        "answers": [{"key": "company", "value": "Acme"}],
    }
    assert await prefill(server, token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None  # forged
    assert await prefill(server, "not-a-token") is None
    page = (await server.graphql(PREFILL, {"slug": "intro", "token": "x"}))["data"]["schedulingPage"]
    assert page["redirectUrl"] == "https://example.com/thanks"


async def test_a_token_from_another_owners_page_reveals_nothing(server: LiveServer) -> None:
    # covers: PAGE-9
    await owner_with_page(server, formFields=FIELDS)
    token = await contact_token(server, "2026-12-01T10:00:00+02:00", answers=[{"key": "company", "value": "Acme"}])
    other = await owner_with_page(server, slug="other")  # another owner's page
    assert other.page_id
    assert await prefill(server, token, slug="other") is None


def test_a_returning_visitors_prefill_is_never_kept_for_other_visitors() -> None:
    # covers: PAGE-9, BOOK-1
    documents = PublicDocuments(build_schema(production=False)._schema)
    assert documents.is_public('{ schedulingPage(slug: "intro") { name formFields { key } } }')
    assert not documents.is_public('{ schedulingPage(slug: "intro") { name prefill(contactToken: "t") { name } } }')
