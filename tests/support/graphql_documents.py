"""GraphQL documents and small helpers shared by the owner-facing API tests."""

from __future__ import annotations

import uuid
from typing import Any

from db.models import Domain
from scheduling.services import Services
from tests.support.live_server import LiveServer

PAGE_FIELDS = """
fragment PageFields on SchedulingPage {
  id slug name url status enabled isDefault domain timezone durations
  startIncrement bufferMinutes minimumNoticeMinutes bookingHorizonDays fixedRangeStart fixedRangeEnd
  weeklyHours { weekday start end }
  dateOverrides { date intervals { start end } }
  formFields { key label kind required }
  redirectUrl
}
"""

PAGE_RESULT = """
  __typename
  ...PageFields
  ... on InvalidInput { message field }
  ... on SlugTaken { message slug }
  ... on NotFound { message }
"""

USER_FIELDS = """
fragment UserFields on User {
  id email name timezone personalEmailAccess hideFromSearchEngines meetingsLinkBase
  defaultMeetingLink
  defaultSchedulingPage { id }
  schedulingPages { ...PageFields }
}
"""

ME = "query { me { ...UserFields } }" + USER_FIELDS + PAGE_FIELDS
MY_PAGES = "query { me { schedulingPages { ...PageFields } } }" + PAGE_FIELDS
UPDATE_SETTINGS = (
    "mutation($input: UserSettingsInput!) { updateUserSettings(input: $input) { ...UserFields } }"
    + USER_FIELDS
    + PAGE_FIELDS
)
CREATE_PAGE = (
    "mutation($input: SchedulingPageInput!) { createSchedulingPage(input: $input) {" + PAGE_RESULT + "} }" + PAGE_FIELDS
)
UPDATE_PAGE = (
    "mutation($id: ID!, $input: SchedulingPageInput!) { updateSchedulingPage(id: $id, input: $input) {"
    + PAGE_RESULT
    + "} }"
    + PAGE_FIELDS
)
DELETE_PAGE = """
mutation($id: ID!) {
  deleteSchedulingPage(id: $id) { __typename ... on Deleted { id } ... on NotFound { message } }
}
"""
SET_ALL_ENABLED = (
    "mutation($enabled: Boolean!) { setAllSchedulingPagesEnabled(enabled: $enabled) { ...PageFields } }" + PAGE_FIELDS
)
PUBLIC_PAGE = """
query($slug: String!, $domain: String) {
  schedulingPage(slug: $slug, domain: $domain) {
    slug name url status durations timezone formFields { key label kind required }
  }
}
"""
DOMAINS = "query { domains { host } }"
UPDATE_CONNECTION = """
mutation($id: ID!, $on: Boolean!) {
  updateCalendarConnection(id: $id, input: {schedulingPages: $on}) {
    __typename ... on CalendarConnection { id schedulingPages calendars { name } } ... on NotFound { message }
  }
}
"""

# Authorization values that must not sign anybody in (None: no header at all).
BAD_AUTHORIZATIONS = [
    None,
    "Bearer kk_not-a-real-token",
    "Bearer",
    "Token {token}",
    "{token}",
    "Basic b3duZXI6cGFzc3dvcmQ=",
]


def page_input(slug: str = "intro", name: str = "Intro call", **fields: Any) -> dict[str, Any]:
    """A valid SchedulingPageInput with the required fields, plus any extra ones."""
    return {"slug": slug, "name": name, "durations": [30], **fields}


def data(result: dict[str, Any]) -> dict[str, Any]:
    """The data of a response that must have no errors."""
    assert "errors" not in result, result["errors"]
    return result["data"]  # type: ignore[no-any-return]


def error_codes(result: dict[str, Any]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in result.get("errors", [])]


async def me(server: LiveServer, token: str) -> dict[str, Any]:
    return data(await server.graphql(ME, token=token))["me"]  # type: ignore[no-any-return]


async def my_pages(server: LiveServer, token: str) -> list[dict[str, Any]]:
    return data(await server.graphql(MY_PAGES, token=token))["me"]["schedulingPages"]  # type: ignore[no-any-return]


async def update_settings(server: LiveServer, token: str, **fields: Any) -> dict[str, Any]:
    """The whole response, since bad settings answer with a GraphQL error."""
    return await server.graphql(UPDATE_SETTINGS, {"input": fields}, token=token)


async def create_page_result(server: LiveServer, token: str, input: dict[str, Any]) -> dict[str, Any]:
    return data(await server.graphql(CREATE_PAGE, {"input": input}, token=token))["createSchedulingPage"]  # type: ignore[no-any-return]


async def create_page(server: LiveServer, token: str, slug: str = "intro", **fields: Any) -> dict[str, Any]:
    """Create a page that must be accepted; returns it."""
    page = await create_page_result(server, token, page_input(slug, **fields))
    assert page["__typename"] == "SchedulingPage", page
    return page


async def update_page_result(server: LiveServer, token: str, page_id: str, input: dict[str, Any]) -> dict[str, Any]:
    result = await server.graphql(UPDATE_PAGE, {"id": page_id, "input": input}, token=token)
    return data(result)["updateSchedulingPage"]  # type: ignore[no-any-return]


async def delete_page_result(server: LiveServer, token: str, page_id: str) -> dict[str, Any]:
    return data(await server.graphql(DELETE_PAGE, {"id": page_id}, token=token))["deleteSchedulingPage"]  # type: ignore[no-any-return]


async def set_all_enabled(server: LiveServer, token: str, enabled: bool) -> list[dict[str, Any]]:
    result = await server.graphql(SET_ALL_ENABLED, {"enabled": enabled}, token=token)
    return data(result)["setAllSchedulingPagesEnabled"]  # type: ignore[no-any-return]


async def public_page(
    server: LiveServer, slug: str, domain: str | None = None, *, token: str | None = None
) -> dict[str, Any] | None:
    result = await server.graphql(PUBLIC_PAGE, {"slug": slug, "domain": domain}, token=token)
    return data(result)["schedulingPage"]  # type: ignore[no-any-return]


async def post_with_authorization(
    server: LiveServer, query: str, variables: dict[str, Any] | None, authorization: str | None
) -> dict[str, Any]:
    """POST with a raw Authorization value (None: no header); the answer must be HTTP 200."""
    headers = {} if authorization is None else {"authorization": authorization}
    response = await server.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()  # type: ignore[no-any-return]


def bad_authorization(template: str | None, token: str) -> str | None:
    """Fill a ``BAD_AUTHORIZATIONS`` entry with a real token (used in the wrong shape)."""
    return None if template is None else template.format(token=token)


async def add_domain(services: Services, host: str) -> None:
    """Connect a domain as `kokous domains add` does."""
    added = await services.domains.add(host)
    assert isinstance(added, Domain), added


def random_id() -> str:
    return str(uuid.uuid4())
