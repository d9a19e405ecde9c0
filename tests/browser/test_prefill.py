"""A visitor's form filled in advance: from the link, from the embedding page, and for a returning
visitor from the contact token their browser kept (PAGE-9)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenVisitor
from tests.browser.widget import COMPANY_FIELD, ELEVEN, TEN, book_in_page, form_values, outcome, time_button
from tests.support.booking_helpers import owner_with_page
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

EMPTY = {"name": "", "email": "", "answers.company": ""}


async def test_the_links_parameters_fill_the_form(server: LiveServer, visitor: OpenVisitor) -> None:
    # covers: PAGE-9, PAGE-12
    await owner_with_page(server, formFields=[COMPANY_FIELD])
    query = urlencode({"name": "Ada Lovelace", "email": "ada@example.com", "company": "Analytical Engines"})
    page = await (await visitor()).open(f"{server.base_url}/meetings/intro?{query}")
    await time_button(page, TEN).click()
    assert await form_values(page) == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "answers.company": "Analytical Engines",
    }


async def test_the_embedding_page_fills_the_form_with_data_prefill_and_its_parameters(
    server: LiveServer, visitor: OpenVisitor, other_site: str
) -> None:
    # covers: PAGE-9, PAGE-12
    await owner_with_page(server, formFields=[COMPANY_FIELD])
    prefill = json.dumps({"name": "Grace Hopper", "answers": {"company": "Navy"}})
    query = urlencode({"base": server.base_url, "page": "intro", "data-prefill": prefill, "email": "grace@example.com"})
    page = await (await visitor()).open(f"{other_site}/embed?{query}")
    await time_button(page, TEN).click()
    assert await form_values(page) == {"name": "Grace Hopper", "email": "grace@example.com", "answers.company": "Navy"}


async def test_a_returning_visitor_is_prefilled_from_their_contact_token_and_nobody_else_is(
    server: LiveServer, visitor: OpenVisitor
) -> None:
    # covers: PAGE-9
    await owner_with_page(server, formFields=[COMPANY_FIELD])
    url = f"{server.base_url}/meetings/intro"
    returning = await visitor()
    first_visit = await returning.open(url)
    await book_in_page(first_visit, TEN, "Rauni Return", "rauni@example.com", company="Paluu Oy")
    await expect(outcome(first_visit, "confirmed")).to_be_visible()
    (cookie,) = [cookie for cookie in await returning.context.cookies() if cookie["name"] == "kokous_contact"]
    assert (cookie["path"], cookie["sameSite"], cookie["secure"]) == ("/", "Lax", False)  # Secure on https only
    stored = await first_visit.evaluate(f"localStorage.getItem('kokous:contact:{server.base_url}')")
    assert stored
    assert stored == cookie["value"]
    await first_visit.close()

    second_visit = await returning.open(url)
    await time_button(second_visit, ELEVEN).click()
    await expect(second_visit.locator('kokous-booking input[name="name"]')).to_have_value("Rauni Return")
    assert await form_values(second_visit) == {
        "name": "Rauni Return",
        "email": "rauni@example.com",
        "answers.company": "Paluu Oy",
    }

    stranger = await (await visitor()).open(url)
    await time_button(stranger, ELEVEN).click()
    assert await form_values(stranger) == EMPTY
