"""Pages on any site use the public API: CORS without credentials, WebSockets from any origin.

What protects owners is the bearer token, never the caller's origin: owner fields and owner
subscriptions still need it, and a GET query from another site is refused (SEC-4).
"""

from __future__ import annotations

import pytest
from gql import GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError

from tests.support.graphql_documents import PUBLIC_PAGE, create_page, error_codes
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


async def test_preflight_lets_any_site_post_graphql_without_credentials(sqlite_server: LiveServer) -> None:
    # covers: PAGE-12, SEC-4
    response = await sqlite_server.http.options(
        "/graphql",
        headers={
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = {name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers
    # Headers beyond those are not offered.
    odd = await sqlite_server.http.options(
        "/graphql",
        headers={"origin": SHOP, "access-control-request-method": "POST", "access-control-request-headers": "cookie"},
    )
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


async def test_get_queries_from_other_sites_are_refused(sqlite_server: LiveServer, token: str) -> None:
    # covers: SEC-4
    params = {"query": '{ schedulingPage(slug: "intro") { slug } }'}
    for cross_site in ({"origin": SHOP}, {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}):
        refused = await sqlite_server.http.get("/graphql", params=params, headers=cross_site)
        assert refused.status_code == 403, cross_site
        assert "POST" in refused.json()["errors"][0]["message"]
        # However the parameter is spelled.
        spelled = await sqlite_server.http.get("/graphql?qu%65ry=%7B__typename%7D", headers=cross_site)
        assert spelled.status_code == 403
    # The app's own pages, and clients outside browsers (no Origin, no Sec-Fetch-Site), may.
    for own in ({}, {"sec-fetch-site": "same-origin"}, {"origin": sqlite_server.base_url}):
        answered = await sqlite_server.http.get("/graphql", params=params, headers=own)
        assert answered.json() == {"data": {"schedulingPage": {"slug": "intro"}}}, own
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
