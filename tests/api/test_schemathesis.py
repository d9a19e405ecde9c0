"""schemathesis against a production-mode server over real HTTP: no generated query or mutation
gets a server error.

Introspection is off in production, so schemathesis reads the schema from the SDL printed by the
server's own schema builder. schemathesis generates every query and mutation field, both valid
documents and documents whose arguments break the schema (its positive and negative modes); each
is sent over HTTP, anonymously or with an owner's bearer token, and the answer is judged as the
requirement states: a 5xx, an error masked as "Unexpected error." or an answer that is not JSON
is a failure; typed errors (union members, validation errors, UNAUTHENTICATED, RateLimited) are
answers like any other.

Besides schemathesis's own values, the generator is offered the owner's page (its slug and id),
real zones and date-times near now, so the documents also reach pages, slots and booking rather
than stopping at input validation.

Generation is derandomized and bounded: every run sends the same documents (only the date-times
near now move with the day). It runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.graphql import nodes

from schema.build import build_schema
from tests.support.graphql_documents import create_page
from tests.support.owners import make_owner
from tests.support.production import MASKED_MESSAGE, production_server

# Documents per operation and generation mode (27 operations, two modes); more where slots
# are computed and times are booked.
EXAMPLES = 20
MORE_EXAMPLES = {"Query.schedulingPage": 80, "Mutation.bookMeeting": 40, "Mutation.requestMeeting": 40}
SLUG = "intro"
ZONES = ["Europe/Helsinki", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "UTC"]
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _soon(quarter_hours: int, zone: str) -> str:
    """A quarter hour from a week ago to three months ahead, where pages have slots."""
    return (TODAY + timedelta(minutes=15 * quarter_hours)).astimezone(ZoneInfo(zone)).isoformat()


# ISO 8601 date-times: mostly near now in a real zone (where slots and bookings are), else
# anywhere in the years the scalar accepts, with any zone. (Values of the wrong type come from
# schemathesis's negative mode.)
SOON = st.builds(_soon, st.integers(-7 * 96, 90 * 96), st.sampled_from(ZONES))
ANY_AWARE = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 12, 31), timezones=st.timezones())
DATETIMES = st.one_of(SOON, SOON, ANY_AWARE.map(datetime.isoformat))


@dataclass(frozen=True)
class Failure:
    operation: str
    problem: str
    signed_in: bool
    document: str
    status: int
    answer: str

    def __str__(self) -> str:
        who = "with the owner's token" if self.signed_in else "anonymous"
        return (
            f"{self.operation} ({who}): {self.problem}\n"
            f"  POST /graphql {json.dumps({'query': self.document})}\n"
            f"  answer {self.status}: {self.answer[:500]}"
        )


def problem_with(status: int, body: bytes) -> str | None:
    """What makes an answer a failure: a 5xx, a masked error, or no GraphQL answer in JSON."""
    if status >= 500:
        return f"server error {status}"
    try:
        answer = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(answer, dict) or not ({"data", "errors"} & answer.keys()):
        return "not a GraphQL answer"
    errors = answer.get("errors") or []
    if any(isinstance(error, dict) and error.get("message") == MASKED_MESSAGE for error in errors):
        return "masked error"
    return None


def load_schema(page_id: str) -> Any:
    """The production schema's SDL, with the page's slug and id and real zones offered to the
    generator beside its own values."""
    schemathesis.graphql.scalar("DateTime", DATETIMES.map(nodes.String))
    config = SchemathesisConfig.from_dict(
        {
            "dictionaries": {
                "slugs": {"values": [SLUG]},
                "pages": {"values": [page_id]},
                "zones": {"values": ZONES},
                "durations": {"values": [30, 60]},
                "emails": {"values": ["vera@example.com"]},
                "hosts": {"values": ["127.0.0.1"]},  # the app's own host serves every page
            },
            "parameters": {
                "*.*.slug": {"dictionary": "slugs", "probability": 0.5},
                "*.*.input.slug": {"dictionary": "slugs", "probability": 0.5},
                "*.*.timezone": {"dictionary": "zones", "probability": 0.5},
                "*.*.input.timezone": {"dictionary": "zones", "probability": 0.5},
                "*.*.duration": {"dictionary": "durations", "probability": 0.5},
                "*.*.input.duration": {"dictionary": "durations", "probability": 0.5},
                "*.*.domain": {"dictionary": "hosts", "probability": 0.5},
                "*.*.input.invitee.email": {"dictionary": "emails", "probability": 0.5},
                "Mutation.updateSchedulingPage.id": {"dictionary": "pages", "probability": 0.5},
                # Deleting the page leaves the later operations without it: seldom.
                "Mutation.deleteSchedulingPage.id": {"dictionary": "pages", "probability": 0.1},
            },
        }
    )
    return schemathesis.graphql.from_file(build_schema(production=True).as_str(), config=config)


class Fuzzer:
    """Sends schemathesis's documents and keeps what failed. Runs in a worker thread (it is
    synchronous) while the server runs in the test's event loop."""

    def __init__(self, token: str, http: httpx.Client) -> None:
        self.token = token
        self.http = http
        self.sent: dict[str, int] = {}
        self.failures: list[Failure] = []

    def run(self, schema: Any) -> None:
        for result in schema.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                self.run_operation(result.ok(), mode)

    def run_operation(self, operation: Any, mode: GenerationMode) -> None:
        @settings(
            max_examples=MORE_EXAMPLES.get(operation.label, EXAMPLES),
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(signed_in=st.booleans(), case=operation.as_strategy(generation_mode=mode))
        def call(signed_in: bool, case: Any) -> None:
            self.send(operation.label, signed_in, case.body)

        call()

    def send(self, label: str, signed_in: bool, document: str) -> None:
        # The document goes as every client sends it (a JSON POST); schemathesis's own
        # `case.call` is not used: its requests transport breaks on urllib3-future, which
        # niquests installs in place of urllib3.
        headers = {"authorization": f"Bearer {self.token}"} if signed_in else {}
        response = self.http.post("/graphql", json={"query": document}, headers=headers)
        self.sent[label] = self.sent.get(label, 0) + 1
        problem = problem_with(response.status_code, response.content)
        if problem is not None:
            answer = response.content.decode(errors="replace")
            self.failures.append(Failure(label, problem, signed_in, document, response.status_code, answer))


def fuzz(schema: Any, base_url: str, token: str) -> Fuzzer:
    # A connection per request: the test server's accepted sockets lack TCP_NODELAY, so on a kept
    # connection every answer waits for the client's delayed ACK (about 40 ms).
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base_url, timeout=30, limits=limits) as http:
        fuzzer = Fuzzer(token, http)
        fuzzer.run(schema)
    return fuzzer


def test_the_judge_counts_server_errors_masked_errors_and_non_json_only() -> None:
    # covers: SEC-4
    masked = {"data": None, "errors": [{"message": MASKED_MESSAGE, "path": ["me"]}]}
    assert problem_with(500, b"Internal Server Error") == "server error 500"
    assert problem_with(502, b'{"data": null}') == "server error 502"
    assert problem_with(200, json.dumps(masked).encode()) == "masked error"
    assert problem_with(200, b"<html>oops</html>") == "not JSON"
    assert problem_with(200, b'"a string"') == "not a GraphQL answer"
    typed = [
        {"data": {"bookMeeting": {"__typename": "RateLimited", "message": "slow down"}}},
        {"data": None, "errors": [{"message": "Not authenticated", "extensions": {"code": "UNAUTHENTICATED"}}]},
        {"data": None, "errors": [{"message": "Cannot query field 'x' on type 'Query'."}]},
        {"data": None, "errors": [{"message": "bad", "extensions": {"code": "INVALID_INPUT", "field": "slug"}}]},
    ]
    for answer in typed:
        assert problem_with(200, json.dumps(answer).encode()) is None
    assert problem_with(400, b'{"errors": [{"message": "batching is off"}]}') is None


async def test_generated_queries_and_mutations_get_no_server_error(database_url: str, tmp_path: Path) -> None:
    # covers: SEC-4
    # On SQLite and on PostgreSQL: strings the two store differently (a NUL character) must not
    # reach either as an unexpected error.
    async with production_server(database_url, tmp_path) as server:
        _owner, token = await make_owner(server.services, "owner@example.com")
        page = await create_page(server, token, SLUG, timezone="Europe/Helsinki")
        schema = load_schema(page["id"])
        fuzzer = await asyncio.to_thread(fuzz, schema, server.base_url, token)
    operations = [result.ok().label for result in schema.get_all_operations()]
    assert len(operations) >= 25
    # Every query and mutation field was sent (one without arguments has few distinct documents).
    assert all(fuzzer.sent.get(label, 0) > 0 for label in operations), fuzzer.sent
    failures = fuzzer.failures
    total = sum(fuzzer.sent.values())
    assert not failures, f"{len(failures)} of {total} requests failed:\n" + "\n".join(map(str, failures[:10]))
