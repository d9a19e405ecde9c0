"""graphql-cop's checks, re-stated as pytest cases against a production-mode server over HTTP.

Each test sends the request graphql-cop sends (its documents, verbatim where it has one) and
asserts the answer graphql-cop would judge "not vulnerable", then that the refusal is a clear
client error: JSON, no 5xx, nothing masked, no stack trace. graphql-cop's informational
"server type fingerprint" is left out: it finds the engine, not a weakness.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema.limits import MAX_DIRECTIVES
from tests.support.live_server import LiveServer
from tests.support.production import MASKED_MESSAGE, production_server

# What graphql-cop looks for in a page to call it a GraphQL IDE.
IDE_MARKERS = ("graphiql", "graphql playground", "graphql-playground", "altair", "apollo sandbox", "voyager")
# Where graphql-cop and its likes look for an IDE besides the endpoint itself.
IDE_PATHS = ("/graphql", "/graphiql", "/playground", "/console", "/altair", "/explorer", "/graphql/console")
# The documents graphql-cop sends.
ALIASES_101 = "query cop { " + " ".join(f"alias{i}:__typename" for i in range(101)) + " }"
FIELDS_500 = "query cop { " + "__typename \n" * 500 + "} "
DIRECTIVES_10 = "query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }"
CIRCULAR_INTROSPECTION = "query cop { __schema { types { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } }"
INTROSPECTION = "query cop { __schema { types { name fields { name } } } }"
SUGGESTION = "query cop { __schema { directive } }"
TYPENAME = "query cop { __typename }"
MUTATION_TYPENAME = "mutation cop { __typename }"


@pytest.fixture
async def server(sqlite_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with production_server(sqlite_url, tmp_path) as live:
        yield live


def clear_refusal(response: httpx.Response) -> dict[str, Any]:
    """The answer is a GraphQL error in JSON a client can read: no 5xx, nothing masked, no
    exception or stack trace, and no data."""
    assert response.status_code < 500, (response.status_code, response.text)
    answer = response.json()
    assert isinstance(answer, dict), answer
    errors = answer.get("errors")
    assert errors, answer
    assert answer.get("data") is None, answer
    for error in errors:
        assert error["message"] != MASKED_MESSAGE, answer
        assert error["message"].strip(), answer
    leaks_nothing(response)
    return answer


def leaks_nothing(response: httpx.Response) -> None:
    """No debug output: no exception, stack trace or tracing in the answer."""
    text = response.text.lower()
    for marker in ("traceback", "stacktrace", '"exception"', 'file "/', '.py", line'):
        assert marker not in text, (marker, response.text)
    if response.headers.get("content-type", "").startswith("application/json"):
        answer = response.json()
        if isinstance(answer, dict):
            assert "tracing" not in (answer.get("extensions") or {}), answer
            for error in answer.get("errors") or []:
                extensions = error.get("extensions") or {}
                assert not {"exception", "stacktrace", "tracing"} & extensions.keys(), answer


def messages(answer: dict[str, Any]) -> list[str]:
    return [error["message"] for error in answer.get("errors") or []]


async def post(server: LiveServer, query: str) -> httpx.Response:
    """As graphql-cop posts: JSON, no token."""
    return await server.http.post("/graphql", json={"query": query})


async def test_alias_overloading_is_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: 101 aliases of __typename; vulnerable when alias100 is answered.
    answer = clear_refusal(await post(server, ALIASES_101))
    assert any("aliases" in message for message in messages(answer)), answer


async def test_batch_queries_are_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: an array of ten queries; vulnerable when ten answers come back.
    response = await server.http.post("/graphql", json=[{"query": TYPENAME}] * 10)
    assert response.status_code == 400
    assert "__typename" not in response.text
    assert "batching" in response.text.lower(), response.text
    leaks_nothing(response)


async def test_field_duplication_is_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: __typename repeated 500 times; vulnerable when __typename is answered.
    clear_refusal(await post(server, FIELDS_500))


async def test_directive_overloading_gives_one_error(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: ten copies of one unknown directive; vulnerable when the answer holds ten
    # errors (one per copy). Expected: exactly one error naming the repetition.
    # NOTE: checks the repeated-directive rule of schema/limits.py (RepeatedDirectivesRule, run
    # first by LimitsFirst); without it graphql-core answers one error per copy.
    answer = clear_refusal(await post(server, DIRECTIVES_10))
    assert len(answer["errors"]) == 1, answer
    assert "repeated" in answer["errors"][0]["message"], answer
    # Ten copies of a known directive: the same.
    known = "query cop { __typename " + "@include(if: true)" * 10 + " }"
    assert len(clear_refusal(await post(server, known))["errors"]) == 1
    # Different unknown directives: the errors stop at the directive limit, however many follow.
    hundred, many = ("query cop { __typename " + "".join(f"@d{i}" for i in range(count)) + " }" for count in (100, 900))
    errors = len(clear_refusal(await post(server, hundred))["errors"])
    assert errors <= MAX_DIRECTIVES + 1
    assert len(clear_refusal(await post(server, many))["errors"]) == errors


async def test_circular_introspection_query_is_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: nested __schema { types { fields { type { fields ... } } } }; vulnerable when
    # more than 25 types come back.
    answer = clear_refusal(await post(server, CIRCULAR_INTROSPECTION))
    assert "__schema" not in json.dumps(answer.get("data"))


async def test_introspection_is_off(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: __schema { types { name fields { name } } }; vulnerable when types come back.
    for query in (INTROSPECTION, '{ __type(name: "Query") { name fields { name } } }'):
        answer = clear_refusal(await post(server, query))
        assert any("introspection" in message.lower() for message in messages(answer)), answer
    # __typename is no introspection: it is answered.
    assert (await post(server, TYPENAME)).json() == {"data": {"__typename": "Query"}}


async def test_no_graphql_ide_is_served(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: GET the endpoint (and the usual IDE paths) as a browser; vulnerable when the
    # page is GraphiQL, GraphQL Playground or the like.
    for path in IDE_PATHS:
        for accept in ("text/html", "text/html,application/xhtml+xml,*/*;q=0.8", "*/*"):
            page = await server.http.get(path, headers={"accept": accept})
            assert page.status_code < 500, (path, accept, page.status_code)
            assert not page.headers.get("content-type", "").startswith("text/html"), (path, accept, page.text[:200])
            text = page.text.lower()
            assert not any(marker in text for marker in IDE_MARKERS), (path, accept, page.text[:200])


async def test_field_suggestions_are_off(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: __schema { directive }; vulnerable when an error says "Did you mean".
    for query in (SUGGESTION, "{ me { emial } }", '{ schedulingPag(slug: "x") { slug } }', "{ __typenam }"):
        answer = clear_refusal(await post(server, query))
        assert not any("did you mean" in message.lower() for message in messages(answer)), answer


async def test_get_queries_need_a_header_a_browser_cannot_send_unasked(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: GET /graphql?query={__typename}; vulnerable when it is answered. A GET a link
    # or an <img> could send (no Content-Type, no preflight header) is refused with 400 and a
    # message; with Apollo's preflight header it is answered.
    # NOTE: checks the CSRF prevention of server/cross_origin.py (CsrfPrevention); without it a
    # GET query is answered whatever its headers.
    for query in ("{__typename}", TYPENAME):
        refused = await server.http.get("/graphql", params={"query": query})
        assert refused.status_code == 400, refused.text
        assert "Apollo-Require-Preflight" in clear_refusal(refused)["errors"][0]["message"]
    for header in ({"apollo-require-preflight": "true"}, {"x-apollo-operation-name": "cop"}):
        answered = await server.http.get("/graphql", params={"query": TYPENAME}, headers=header)
        assert answered.status_code == 200, answered.text
        assert answered.json() == {"data": {"__typename": "Query"}}


async def test_mutations_over_get_are_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: GET /graphql?query=mutation cop {__typename}; vulnerable when answered. Even
    # with the preflight header a GET never runs a mutation.
    setting = "mutation cop { setAllSchedulingPagesEnabled(enabled: false) { id } }"
    for query in (MUTATION_TYPENAME, setting):
        for headers in ({}, {"apollo-require-preflight": "true"}, {"content-type": "application/json"}):
            response = await server.http.get("/graphql", params={"query": query}, headers=headers)
            assert response.status_code in (400, 405), (headers, response.status_code, response.text)
            assert "__typename" not in response.text
            leaks_nothing(response)


async def test_url_encoded_post_is_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: POST query=... as application/x-www-form-urlencoded (a form another site can
    # submit: CSRF); vulnerable when answered. Other bodies a form can send are refused as well.
    form = await server.http.post("/graphql", data={"query": TYPENAME})
    assert form.request.headers["content-type"] == "application/x-www-form-urlencoded"
    for response in (
        form,
        await server.http.post("/graphql", data={"query": MUTATION_TYPENAME}),
        await server.http.post(
            "/graphql", content=json.dumps({"query": TYPENAME}), headers={"content-type": "text/plain"}
        ),
        await server.http.post("/graphql", files={"query": (None, TYPENAME)}),
    ):
        assert response.status_code in (400, 415), (response.request.headers["content-type"], response.text)
        assert "__typename" not in response.text
        leaks_nothing(response)


async def test_trace_mode_is_off(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop: vulnerable when an answer carries extensions.tracing (Apollo tracing).
    for query in (TYPENAME, "query cop { nope }"):
        response = await post(server, query)
        answer = response.json()
        assert "extensions" not in answer or "tracing" not in answer["extensions"], answer
        leaks_nothing(response)


async def test_errors_carry_no_exception_or_stack_trace(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop (unhandled errors / debug mode): a malformed document; vulnerable when an
    # error carries extensions.exception or a stack trace.
    for query in (
        "qwerty cop { abc }",
        "query cop { __typename",
        "query cop { me { id } }",  # no token: the resolver refuses
        'query cop { schedulingPage(slug: "x") { slots(start: "then", end: "now", timezone: "Nowhere/X") { asOf } } }',
        "query cop($n: Int!) { __typename @include(if: $n) }",
        '{ schedulingPage(slug: "\\u0000<x>") { slug } }',  # no database stores U+0000
    ):
        clear_refusal(await post(server, query))
    # Odd values that are answered: nothing leaks either.
    for query in ('{ booking(token: "' + "A" * 5000 + '") { id } }', '{ schedulingPage(slug: "\\u00e9<x>") { slug } }'):
        response = await post(server, query)
        assert response.status_code == 200
        assert response.json()["data"] is not None, response.text
        leaks_nothing(response)


async def test_bodies_that_are_no_graphql_request_are_bad_requests(server: LiveServer) -> None:
    # covers: SEC-4
    # graphql-cop's unhandled-error probe, one step further: JSON bodies that are no GraphQL
    # request are the client's mistake (400), never an unhandled error (500).
    bodies = [b"{not json", b'{"query": 42}', b'{"variables": {}}', b"null", b"42", b"true", b'"query"', b"[]"]
    statuses = {}
    for body in bodies:
        response = await server.http.post("/graphql", content=body, headers={"content-type": "application/json"})
        statuses[body] = response.status_code
        leaks_nothing(response)
    assert statuses == dict.fromkeys(bodies, 400)


async def test_circular_fragments_are_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # Fragments that spread each other would recurse forever: refused by validation.
    query = "query cop { ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }"
    answer = clear_refusal(await post(server, query))
    assert any("within itself" in message for message in messages(answer)), answer
    itself = "query cop { ...A } fragment A on Query { ...A }"
    clear_refusal(await post(server, itself))


async def test_token_and_directive_floods_are_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # Over 2,000 tokens, or over 20 directives (each known and well placed), is refused.
    tokens = "query cop { " + " ".join(f"a{i}: __typename" for i in range(1100)) + " }"
    answer = clear_refusal(await post(server, tokens))
    assert any("token" in message.lower() for message in messages(answer)), answer
    aliased = (f"a{i}: __typename @include(if: true) @skip(if: false)" for i in range(11))
    directives = "query cop { " + " ".join(aliased) + " }"
    answer = clear_refusal(await post(server, directives))
    assert any("directives" in message for message in messages(answer)), answer


async def test_character_overloading_is_refused(server: LiveServer) -> None:
    # covers: SEC-4
    # A document of over a megabyte (one long string, or padding) is refused before parsing.
    for query in (
        '{ booking(token: "' + "x" * 1_100_000 + '") { id } }',
        "{ __typename " + " " * 1_100_000 + "}",
        "{ __typename } #" + "#" * 1_100_000,
    ):
        response = await post(server, query)
        assert response.status_code == 413, response.status_code
        assert response.json()["errors"][0]["message"]
        leaks_nothing(response)
