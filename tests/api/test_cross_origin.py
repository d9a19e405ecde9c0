"""Pages on any site use the public API: CORS without credentials, WebSockets from any origin.

What protects owners is the bearer token, never the caller's origin: owner fields and owner
subscriptions still need it, and a request a browser would send without a preflight is refused (SEC-4).
"""

from __future__ import annotations

import json

import httpx
import pytest
from gql import GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError

from tests.support.graphql_documents import CREATE_PAGE, PUBLIC_PAGE, create_page, error_codes, page_input
from tests.support.live_server import LiveServer
from tests.support.owners import make_owner
from tests.support.ws_client import PROTOCOLS, WINDOW, Watcher, ws_session

SHOP = "https://shop.example"  # a site that embeds the widget, set up nowhere
BOOKING_CREATED = GraphQLRequest(gql("subscription { bookingCreated { __typename } }"))


@pytest.fixture
async def token(sqlite_server: LiveServer) -> str:
    _user, token = await make_owner(sqlite_server.services, "owner@example.com")
    await create_page(sqlite_server, token, "intro")
    return token


async def preflight(server: LiveServer, method: str, headers: str) -> httpx.Response:
    """The CORS preflight a browser on ``SHOP`` sends before ``method`` with ``headers``."""
    asking = {"origin": SHOP, "access-control-request-method": method, "access-control-request-headers": headers}
    return await server.http.options("/graphql", headers=asking)


async def test_preflight_lets_any_site_post_graphql_without_credentials(sqlite_server: LiveServer) -> None:
    # covers: PAGE-12, SEC-4
    response = await preflight(sqlite_server, "POST", "content-type, authorization")

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = {name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers
    # Headers beyond those are not offered.
    odd = await preflight(sqlite_server, "POST", "cookie")
    assert odd.status_code == 400


async def test_a_public_query_from_another_site_is_answered(sqlite_server: LiveServer, token: str) -> None:
    # covers: PAGE-12
    for _ in range(2):  # computed, then the kept answer: both carry the header
        response = await sqlite_server.http.post(
            "/graphql", json={"query": PUBLIC_PAGE, "variables": {"slug": "intro"}}, headers={"origin": SHOP}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        assert response.json()["data"]["schedulingPage"]["slug"] == "intro"


async def test_owner_fields_from_another_site_still_need_the_token(sqlite_server: LiveServer, token: str) -> None:
    # covers: SEC-4
    query = {"query": "{ me { email schedulingPages { slug } } }"}
    for cookie in ({}, {"cookie": f"token={token}; authorization=Bearer {token}"}):
        response = await sqlite_server.http.post("/graphql", json=query, headers={"origin": SHOP, **cookie})
        assert response.status_code == 200
        assert response.json()["data"] is None
        assert error_codes(response.json()) == ["UNAUTHENTICATED"]
        assert "owner@example.com" not in response.text
    # The token is what counts, wherever the page is.
    signed_in = await sqlite_server.http.post(
        "/graphql", json=query, headers={"origin": SHOP, "authorization": f"Bearer {token}"}
    )
    assert signed_in.json()["data"]["me"]["email"] == "owner@example.com"


async def test_requests_a_browser_sends_without_asking_are_refused(sqlite_server: LiveServer, token: str) -> None:
    # covers: SEC-4
    params = {"query": '{ schedulingPage(slug: "intro") { slug } }'}
    answer = {"data": {"schedulingPage": {"slug": "intro"}}}
    # A GET query as a link or an <img> sends it, from any site or from none (the parameter
    # however spelled), and a POST as a form sends it: refused, and nothing runs.
    for headers in ({}, {"origin": SHOP}, {"sec-fetch-site": "same-origin"}, {"content-type": "text/plain"}):
        refused = await sqlite_server.http.get("/graphql", params=params, headers=headers)
        assert refused.status_code == 400, headers
        assert "Apollo-Require-Preflight" in refused.json()["errors"][0]["message"]
        spelled = await sqlite_server.http.get("/graphql?qu%65ry=%7B__typename%7D", headers=headers)
        assert spelled.status_code == 400
    body = json.dumps({"query": CREATE_PAGE, "variables": {"input": page_input("forged")}})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        form = await sqlite_server.http.post(
            "/graphql",
            content=body,
            headers={"content-type": content_type, "origin": SHOP, "authorization": f"Bearer {token}"},
        )
        assert form.status_code == 400, content_type
    pages = await sqlite_server.graphql("{ me { schedulingPages { slug } } }", token=token)
    assert pages["data"]["me"]["schedulingPages"] == [{"slug": "intro"}]
    # A header or a content type a browser must ask about first lets the query run, from any site.
    for guard in (
        {"apollo-require-preflight": "true"},
        {"x-apollo-operation-name": "Page"},
        {"content-type": "application/json"},
    ):
        for where in ({}, {"origin": SHOP}):
            answered = await sqlite_server.http.get("/graphql", params=params, headers={**guard, **where})
            assert answered.json() == answer, guard
    assert (await preflight(sqlite_server, "GET", "apollo-require-preflight")).status_code == 200
    # A link from another site still opens GraphiQL (no query runs).
    graphiql = await sqlite_server.http.get("/graphql", headers={"accept": "text/html", "sec-fetch-site": "cross-site"})
    assert graphiql.status_code == 200
    assert "graphiql" in graphiql.text.lower()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_from_another_site_watches_public_slots_but_not_the_owners(
    sqlite_server: LiveServer, token: str, protocol: str
) -> None:
    # covers: PAGE-12, SUB-4
    async with ws_session(sqlite_server.ws_url, protocol, origin=SHOP) as session:
        watcher = Watcher(session, {"slug": "intro", **WINDOW})
        first = await watcher.next()
        assert isinstance(first, dict), first
        assert first["slotsChanged"]["status"] == "OFFLINE"
        await watcher.close()

        owners = Watcher(session, {}, BOOKING_CREATED)
        refused = await owners.next()
        assert isinstance(refused, TransportQueryError), refused
        assert refused.errors is not None
        assert refused.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
        await owners.close()
