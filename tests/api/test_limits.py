"""GraphQL limits and request hygiene are on by default."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import strawberry
from gql.transport.exceptions import TransportQueryError

from schema.limits import extensions
from tests.support.live_server import LiveServer, start_live_server
from tests.support.settings import sqlite_settings
from tests.support.ws_client import WINDOW, Watcher, ws_session

WATCHED = {"slug": "intro", **WINDOW}


def _error_messages(result: dict[str, object]) -> list[str]:
    return [error["message"] for error in result.get("errors", [])]  # type: ignore[attr-defined, index]


@strawberry.type
class CyclicNode:
    @strawberry.field
    def child(self) -> CyclicNode:
        return CyclicNode()


@strawberry.type
class CyclicRoot:
    @strawberry.field
    def node(self) -> CyclicNode:
        return CyclicNode()


def test_depth_over_ten_is_refused() -> None:
    # covers: OPS-4
    # Kokous's schema has no cycles yet, so the limit is shown on a cyclic schema that uses the
    # very extension list the server installs.
    schema = strawberry.Schema(query=CyclicRoot, extensions=extensions(production=False))
    ten = "{ node " + "{ child " * 9 + "{ __typename }" + " }" * 9 + " }"
    eleven = "{ node " + "{ child " * 10 + "{ __typename }" + " }" * 10 + " }"
    assert schema.execute_sync(ten).errors is None
    result = schema.execute_sync(eleven)
    assert result.errors
    assert "exceeds maximum operation depth of 10" in result.errors[0].message


async def test_more_than_fifteen_aliases_are_refused(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    fifteen = " ".join(f"a{i}: __typename" for i in range(15))
    assert "errors" not in await sqlite_server.graphql(f"{{ {fifteen} }}")
    sixteen = " ".join(f"a{i}: __typename" for i in range(16))
    result = await sqlite_server.graphql(f"{{ {sixteen} }}")
    assert any("aliases" in message for message in _error_messages(result))


async def test_more_than_2000_tokens_are_refused(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    query = "{ " + " ".join(["__typename"] * 2100) + " }"
    result = await sqlite_server.graphql(query)
    assert any("token" in message.lower() for message in _error_messages(result))


async def test_more_than_twenty_directives_are_refused(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    # Two directives on each of ten (then eleven) aliased fields: no field repeats over and over.
    pair = "@include(if: true) @skip(if: false)"
    twenty = "{ " + " ".join(f"a{i}: __typename {pair}" for i in range(10)) + " }"
    assert await sqlite_server.graphql(twenty) == {"data": {f"a{i}": "Query" for i in range(10)}}
    many = "{ " + " ".join(f"a{i}: __typename {pair}" for i in range(11)) + " }"
    result = await sqlite_server.graphql(many)
    assert "at most 20 directives are allowed" in _error_messages(result)


async def test_a_repeated_directive_gives_one_error(sqlite_server: LiveServer) -> None:
    # covers: SEC-4
    # Each copy used to give its own errors: ten unknown directives, twenty errors.
    for name in ("aa", "include(if: true)"):
        result = await sqlite_server.graphql("query cop { __typename " + f"@{name}" * 10 + " }")
        assert result.get("data") is None
        assert len(result["errors"]) == 1, result
        assert "is repeated" in result["errors"][0]["message"]
        assert len(result["errors"][0]["locations"]) == 10
    # Different directives in different places are judged one by one, as before.
    result = await sqlite_server.graphql("{ a: __typename @x b: __typename @y }")
    assert len(result["errors"]) == 2


async def test_text_with_a_nul_character_is_refused_before_anything_runs(server: LiveServer) -> None:
    # covers: SEC-4, BOOK-2
    # PostgreSQL stores no U+0000; the database's refusal used to reach clients as a masked error.
    literal = await server.graphql('{ schedulingPage(slug: "intro\\u0000") { name } }')
    by_variable = await server.graphql(
        "query($slug: String!) { schedulingPage(slug: $slug) { name } }", {"slug": "intro\x00"}
    )
    nested = await server.graphql(
        "mutation($input: BookMeetingInput!) { bookMeeting(input: $input) { __typename } }",
        {
            "input": {
                "slug": "intro",
                "start": "2026-12-08T10:00:00+02:00",
                "timezone": "Europe/Helsinki",
                "invitee": {"name": "Vera\x00", "email": "vera@example.com"},
            }
        },
    )
    for answer in (literal, by_variable, nested):
        assert answer.get("data") is None, answer
        assert [error["message"] for error in answer["errors"]] == ["Text may not contain the NUL character (U+0000)."]
    async with ws_session(server.ws_url, "graphql-transport-ws") as session:
        watcher = Watcher(session, {**WATCHED, "slug": "intro\x00"})
        refused = await watcher.next()
        assert isinstance(refused, TransportQueryError), refused
        assert refused.errors is not None
        assert "NUL" in refused.errors[0]["message"]


async def test_a_field_asked_for_over_and_over_is_one_error(sqlite_server: LiveServer) -> None:
    # covers: SEC-4
    five = await sqlite_server.graphql("{ " + "__typename " * 5 + "}")
    assert five == {"data": {"__typename": "Query"}}
    many = await sqlite_server.graphql("{ " + "__typename " * 500 + "}")
    assert many.get("data") is None
    assert len(many["errors"]) == 1
    assert "asked for 500 times" in many["errors"][0]["message"]


async def test_request_body_over_one_megabyte_is_413(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    big = {"query": "query($x: String) { __typename }", "variables": {"x": "a" * 1_100_000}}
    response = await sqlite_server.http.post("/graphql", json=big)
    assert response.status_code == 413
    assert "request body over" in response.json()["errors"][0]["message"]

    async def chunks():  # no Content-Length: the limit still holds while streaming
        for _ in range(12):
            yield b" " * 100_000

    streamed = await sqlite_server.http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


async def test_batching_is_off(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    response = await sqlite_server.http.post(
        "/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}]
    )
    assert response.status_code == 400


async def test_mutations_only_by_post_with_json(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    mutation = "mutation { setAllSchedulingPagesEnabled(enabled: false) { id } }"
    guard = {"apollo-require-preflight": "true"}  # past the CSRF guard: GET still never mutates
    by_get = await sqlite_server.http.get("/graphql", params={"query": mutation}, headers=guard)
    assert by_get.status_code in (400, 405)
    assert "mutation" in by_get.text.lower()
    as_form = await sqlite_server.http.post(
        "/graphql", content=f"query={mutation}", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert as_form.status_code in (400, 415)
    query_by_get = await sqlite_server.http.get("/graphql", params={"query": "{ __typename }"}, headers=guard)
    assert query_by_get.json() == {"data": {"__typename": "Query"}}


async def test_bad_json_is_a_clear_error(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    broken = await sqlite_server.http.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400


async def test_validation_messages_are_not_masked(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    result = await sqlite_server.graphql("{ noSuchField }")
    assert any("Cannot query field 'noSuchField'" in message for message in _error_messages(result))


async def test_development_serves_graphiql_and_introspection(sqlite_server: LiveServer) -> None:
    # covers: OPS-1
    page = await sqlite_server.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    introspection = await sqlite_server.graphql("{ __schema { queryType { name } } }")
    assert introspection == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_production_turns_graphiql_introspection_and_suggestions_off(sqlite_url: str, tmp_path: Path) -> None:
    # covers: OPS-1
    settings = sqlite_settings(sqlite_url, tmp_path, env="production", secret_keys=(secrets.token_urlsafe(32),))
    async with start_live_server(settings) as live:
        page = await live.http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404
        introspection = await live.graphql("{ __schema { queryType { name } } }")
        assert any("introspection" in message.lower() for message in _error_messages(introspection))
        typo = await live.graphql("{ mee { id } }")
        messages = _error_messages(typo)
        assert messages
        assert not any("Did you mean" in message for message in messages)
        assert (await live.graphql("{ __typename }")) == {"data": {"__typename": "Query"}}


# aiosqlite leaves a failed connection unclosed when the database file is unusable (its own
# ResourceWarning); the behaviour under test is what clients see.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_unexpected_errors_are_masked(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    # A broken database is a bug from the API's point of view: the client sees a masked error.
    await sqlite_server.services.db.engine.dispose()
    db_file = sqlite_server.services.db.url.removeprefix("sqlite+aiosqlite:///")
    Path(db_file).unlink()
    Path(db_file).mkdir()
    response = await sqlite_server.http.post("/graphql", json={"query": '{ schedulingPage(slug: "x") { name } }'})
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == "Unexpected error."
    assert "sqlite" not in response.text.lower()


# aiosqlite leaves a failed connection unclosed when the database file is unusable (its own
# ResourceWarning); the behaviour under test is what clients see.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_readiness_reports_the_broken_database(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    assert (await sqlite_server.http.get("/readyz")).status_code == 200
    await sqlite_server.services.db.engine.dispose()
    db_file = Path(sqlite_server.services.db.url.removeprefix("sqlite+aiosqlite:///"))
    db_file.unlink()
    db_file.mkdir()
    ready = await sqlite_server.http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "unreachable", "pubsub": "ok"}
    assert (await sqlite_server.http.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_count_requests_by_route(sqlite_server: LiveServer) -> None:
    # covers: OPS-4
    await sqlite_server.graphql("{ __typename }")
    await sqlite_server.http.get("/meetings/nothing-here")
    metrics = await sqlite_server.http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'kokous_http_requests_total{method="POST",route="/graphql",status="200"} 1.0' in metrics.text
    assert "kokous_pubsub_connected 1.0" in metrics.text
    assert "/meetings/nothing-here" not in metrics.text


async def test_a_websocket_from_another_origin_is_accepted(sqlite_server: LiveServer) -> None:
    # covers: SUB-4
    # Foreign origins were refused until the widget had to embed in any site. Refusing them
    # protected nothing: a socket carries no ambient credentials (owners send their bearer
    # token in connection_init, never a cookie), so a page on another site gets what any
    # anonymous visitor gets, and owner subscriptions without the token are still refused
    # (tests/api/test_cross_origin.py).
    import websockets

    async with websockets.connect(
        sqlite_server.ws_url, subprotocols=["graphql-transport-ws"], origin="https://evil.example"
    ) as socket:
        assert socket.subprotocol == "graphql-transport-ws"


async def test_a_websocket_message_over_the_body_limit_closes_the_socket(sqlite_server: LiveServer) -> None:
    # covers: SEC-4
    import websockets

    async with websockets.connect(sqlite_server.ws_url, subprotocols=["graphql-transport-ws"], max_size=None) as socket:
        await socket.send('{"type": "connection_init"}')
        assert '"connection_ack"' in str(await socket.recv())
        await socket.send('{"type": "ping", "payload": {"pad": "' + "x" * 2_000_000 + '"}}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
