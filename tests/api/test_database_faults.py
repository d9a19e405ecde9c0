"""A connection lost under a request: run again once if nothing committed, else a typed 503.

The shared PostgreSQL server ends the connection behind one statement of a running server,
as a restart does: another connection calls ``pg_terminate_backend`` on it (and waits until
it is gone) just before the statement is sent. The server's own code is not told anything.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets
from gql import GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only
from sqlmodel import select
from websockets.typing import Subprotocol

from db.models import Booking, SchedulingPage
from db.plain import watched
from server.settings import Settings
from tests.support.booking_helpers import (
    BOOK,
    BOOK_RESULT,
    booking_input,
    booking_server,
    create_intro_page,
    owner_with_page,
)
from tests.support.live_server import LiveServer
from tests.support.ws_client import PROTOCOLS, SLOTS_CHANGED, WINDOW, ws_session

START = "2026-12-01T10:00:00+02:00"
UNAVAILABLE = "The service is briefly unavailable; try again in a few seconds."
Answer = tuple[int, dict[str, str], dict[str, Any]]  # an HTTP answer: status, headers, body


class BackendKiller:
    """Terminates the PostgreSQL backend of a connection just before a chosen statement (or its
    COMMIT) goes out, at most ``times`` times."""

    def __init__(self, admin: asyncpg.Connection, statement: Callable[[str], bool], *, times: int) -> None:
        self.admin = admin
        self.statement = statement
        self.times = times
        self.killed = 0
        self.marked: set[int] = set()  # the driver connections that ran a chosen statement

    def _kill(self, connection: Connection) -> None:
        pid = connection.connection.driver_connection.get_server_pid()  # type: ignore[union-attr]
        # Runs inside SQLAlchemy's greenlet, so the server's own event loop does the waiting.
        await_only(self._kill_pid(pid))

    async def _kill_pid(self, pid: int) -> None:
        self.killed += 1
        assert await self.admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)

    def before_statement(self, connection: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.killed < self.times and self.statement(statement):
            self._kill(connection)

    def mark_statement(self, connection: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.statement(statement):
            connection.info["kokous_test_marked"] = True

    def before_commit(self, connection: Connection) -> None:
        if self.killed < self.times and connection.info.pop("kokous_test_marked", False):
            self._kill(connection)

    async def before_sending(self, statement: str, driver: asyncpg.Connection) -> None:
        """The same for a statement sent straight to the driver."""
        if self.killed < self.times and self.statement(statement):
            await self._kill_pid(driver.get_server_pid())

    async def before_sending_commit(self, statement: str, driver: asyncpg.Connection) -> None:
        """The same as ``mark_statement`` and ``before_commit`` on the driver."""
        if self.statement(statement):
            self.marked.add(driver.get_server_pid())
        elif statement == "COMMIT" and self.killed < self.times and driver.get_server_pid() in self.marked:
            self.marked.discard(driver.get_server_pid())
            await self._kill_pid(driver.get_server_pid())


@pytest.fixture
async def server(postgres_url: str, tmp_path: Path, channel_prefix: str) -> AsyncIterator[LiveServer]:
    settings = Settings(
        database_url=postgres_url,
        broadcast_url="memory://",
        broadcast_channel_prefix=channel_prefix,
        data_dir=tmp_path / "data",
        outbox_dir=tmp_path / "outbox",
    )
    async for live in booking_server(settings):
        yield live


@pytest.fixture
async def admin(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    yield connection
    await connection.close()


def inserting_a_booking(statement: str) -> bool:
    return statement.startswith("INSERT INTO bookings")


def looking_up_a_token(statement: str) -> bool:
    return "JOIN api_tokens" in statement


@contextmanager
def killing(server: LiveServer, killer: BackendKiller, *, at_commit: bool = False) -> Iterator[BackendKiller]:
    """``killer`` armed on the server's engine for the block."""
    engine = server.services.db.engine.sync_engine
    hooks: list[tuple[str, Callable[..., None]]] = (
        [("before_cursor_execute", killer.mark_statement), ("commit", killer.before_commit)]
        if at_commit
        else [("before_cursor_execute", killer.before_statement)]
    )
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        with watched(sending=killer.before_sending_commit if at_commit else killer.before_sending):
            yield killer
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


async def post(server: LiveServer, body: dict[str, Any], *, token: str | None = None) -> Answer:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    response = await server.http.post("/graphql", json=body, headers=headers)
    return response.status_code, dict(response.headers), response.json()


async def post_booking(server: LiveServer, key: str, start: str = START) -> Answer:
    return await post(
        server, {"query": BOOK + BOOK_RESULT, "variables": {"input": booking_input(start, idempotencyKey=key)}}
    )


async def killed_while(
    server: LiveServer,
    admin: asyncpg.Connection,
    statement: Callable[[str], bool],
    send: Callable[[], Awaitable[Answer]],
    *,
    times: int,
    at_commit: bool = False,
) -> Answer:
    """``send``'s answer while a ``BackendKiller`` is armed, which killed exactly ``times`` times."""
    killer = BackendKiller(admin, statement, times=times)
    with killing(server, killer, at_commit=at_commit):
        answer = await send()
    assert killer.killed == times
    return answer


async def assert_the_same_key_books_once(server: LiveServer, key: str) -> None:
    """After a 503: nothing was stored, and sending the booking again with its key books it once."""
    assert await stored_keys(server) == []
    assert_booked(*await post_booking(server, key))
    assert await stored_keys(server) == [key]


async def stored_keys(server: LiveServer) -> list[str | None]:
    async with server.services.db.session() as session:
        return [row.idempotency_key for row in (await session.exec(select(Booking))).all()]


def assert_booked(status: int, _headers: dict[str, str], body: dict[str, Any]) -> None:
    assert status == 200, body
    assert body["data"]["bookMeeting"]["__typename"] == "Booking", body


def assert_unavailable(status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
    assert status == 503, (status, body)
    assert int(headers["retry-after"]) > 0
    (error,) = body["errors"]
    assert error["message"] == UNAVAILABLE
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def test_a_connection_lost_before_commit_is_run_again_unseen(
    server: LiveServer, admin: asyncpg.Connection
) -> None:
    # covers: BOOK-4, OPS-4
    await owner_with_page(server)
    answer = await killed_while(server, admin, inserting_a_booking, lambda: post_booking(server, "lost-once"), times=1)
    assert_booked(*answer)
    assert await stored_keys(server) == ["lost-once"]


async def test_an_owners_change_lost_before_commit_is_run_again_unseen(
    server: LiveServer, admin: asyncpg.Connection
) -> None:
    # covers: OPS-4
    # Not only bookings: a mutation that is one transaction runs once more too.
    owner = await owner_with_page(server)
    killer = BackendKiller(admin, lambda statement: statement.startswith("INSERT INTO scheduling_pages"), times=1)
    with killing(server, killer):
        page_id = await create_intro_page(server, owner.token, slug="second")
    assert killer.killed == 1
    async with server.services.db.session() as session:
        pages = (await session.exec(select(SchedulingPage).where(SchedulingPage.owner_id == owner.user.id))).all()
    assert sorted(page.slug for page in pages) == ["intro", "second"]
    assert page_id in {str(page.id) for page in pages}


async def test_still_lost_after_the_retry_answers_503_and_the_same_key_books_once(
    server: LiveServer, admin: asyncpg.Connection
) -> None:
    # covers: BOOK-4, OPS-4
    await owner_with_page(server)
    # Killed twice: the first run and the one retry, no more.
    status, headers, body = await killed_while(
        server, admin, inserting_a_booking, lambda: post_booking(server, "lost-twice"), times=2
    )
    assert_unavailable(status, headers, body)
    assert body["data"] is None
    await assert_the_same_key_books_once(server, "lost-twice")


async def test_a_connection_lost_at_commit_is_not_run_again(server: LiveServer, admin: asyncpg.Connection) -> None:
    # covers: BOOK-3, BOOK-4
    # Once COMMIT is on its way the booking may be stored: running it again could answer the
    # visitor's own booking as taken. The visitor is told to try again, and the same key answers.
    await owner_with_page(server)
    answer = await killed_while(
        server, admin, inserting_a_booking, lambda: post_booking(server, "lost-at-commit"), times=1, at_commit=True
    )
    assert_unavailable(*answer)
    # Nothing stored: its backend was gone before COMMIT reached it.
    await assert_the_same_key_books_once(server, "lost-at-commit")


async def test_a_fault_before_the_operation_answers_503_too(server: LiveServer, admin: asyncpg.Connection) -> None:
    # covers: OPS-4
    owner = await owner_with_page(server)
    answer = await killed_while(
        server,
        admin,
        looking_up_a_token,
        lambda: post(server, {"query": "{ me { email } }"}, token=owner.token),
        times=1,
    )
    assert_unavailable(*answer)
    assert (await server.graphql("{ me { email } }", token=owner.token))["data"]["me"]["email"] == owner.user.email


def assert_typed(refused: BaseException) -> None:
    assert isinstance(refused, TransportQueryError), refused
    assert refused.errors is not None
    assert [(error["message"], error["extensions"]["code"]) for error in refused.errors] == [
        (UNAVAILABLE, "SERVICE_UNAVAILABLE")
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_over_websocket_a_subscription_gets_the_same_typed_error(
    server: LiveServer, admin: asyncpg.Connection, protocol: str
) -> None:
    # covers: OPS-4, SUB-4
    await owner_with_page(server)
    killer = BackendKiller(admin, lambda statement: "FROM scheduling_pages" in statement, times=1)
    with killing(server, killer):
        async with ws_session(server.ws_url, protocol) as session:
            with pytest.raises(TransportQueryError) as watching:
                async for _ in session.subscribe(
                    GraphQLRequest(SLOTS_CHANGED, variable_values={"slug": "intro", **WINDOW})
                ):
                    pass
    assert killer.killed == 1
    assert_typed(watching.value)


async def test_over_websocket_a_booking_gets_the_same_typed_error(
    server: LiveServer, admin: asyncpg.Connection
) -> None:
    # covers: OPS-4, BOOK-4
    await owner_with_page(server)
    killer = BackendKiller(admin, inserting_a_booking, times=2)
    variables = {"input": booking_input(START, idempotencyKey="over-ws")}
    async with ws_session(server.ws_url, "graphql-transport-ws") as session:
        with killing(server, killer), pytest.raises(TransportQueryError) as booking:
            await session.execute(GraphQLRequest(gql(BOOK + BOOK_RESULT), variable_values=variables))
        assert killer.killed == 2
        assert_typed(booking.value)
        again = await session.execute(GraphQLRequest(gql(BOOK + BOOK_RESULT), variable_values=variables))
    assert again["bookMeeting"]["__typename"] == "Booking"
    assert await stored_keys(server) == ["over-ws"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_whose_token_cannot_be_looked_up_is_told_to_try_again(
    server: LiveServer, admin: asyncpg.Connection, protocol: str
) -> None:
    # covers: OPS-4, SUB-4
    owner = await owner_with_page(server)
    killer = BackendKiller(admin, looking_up_a_token, times=1)
    with killing(server, killer):
        async with websockets.connect(server.ws_url, subprotocols=[Subprotocol(protocol)]) as socket:
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {owner.token}"}}
            await socket.send(json.dumps(init))
            if protocol == "graphql-ws":  # the legacy protocol has a message for it, then closes
                refused = json.loads(await socket.recv())
                assert refused["type"] == "connection_error"
                assert (refused["payload"]["message"], refused["payload"]["extensions"]["code"]) == (
                    UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                )
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
    assert killer.killed == 1
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1013, UNAVAILABLE)
