"""slotsChanged over both WebSocket protocols through the gql client (SUB-1, SUB-4)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from gql.transport.exceptions import TransportQueryError

from db.models import User
from tests.support.calendar_rows import connect_calendar
from tests.support.live_server import LiveServer
from tests.support.owners import make_owner
from tests.support.ws_client import PROTOCOLS, WINDOW, Watcher, ws_session

CREATE_PAGE = """
mutation($input: SchedulingPageInput!) {
  createSchedulingPage(input: $input) { __typename ... on SchedulingPage { id slug } }
}
"""
UPDATE_CONNECTION = """
mutation($id: ID!, $on: Boolean!) {
  updateCalendarConnection(id: $id, input: {schedulingPages: $on}) {
    __typename ... on CalendarConnection { schedulingPages }
  }
}
"""
DISABLE_ALL = "mutation { setAllSchedulingPagesEnabled(enabled: false) { enabled } }"


async def create_page(server: LiveServer, token: str, slug: str) -> str:
    result = await server.graphql(
        CREATE_PAGE, {"input": {"slug": slug, "name": "Intro call", "durations": [30]}}, token=token
    )
    assert result["data"]["createSchedulingPage"]["__typename"] == "SchedulingPage", result
    return str(result["data"]["createSchedulingPage"]["id"])


def _status(message: dict[str, Any] | BaseException) -> str:
    assert isinstance(message, dict), message
    return str(message["slotsChanged"]["status"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_anonymous_widget_sees_page_state_change_live(
    server: LiveServer, owner: tuple[User, str], protocol: str
) -> None:
    # covers: SUB-1, SUB-4, PAGE-4, CAL-7
    user, token = owner
    await create_page(server, token, "intro")
    connection_id = (await connect_calendar(server.services, user)).connection_id
    async with ws_session(server.ws_url, protocol) as session:
        watcher = Watcher(session, {"slug": "intro", **WINDOW})
        first = await watcher.next()
        assert _status(first) == "ONLINE"
        assert first["slotsChanged"]["asOf"].endswith("+00:00")  # type: ignore[index]

        off = await server.graphql(UPDATE_CONNECTION, {"id": str(connection_id), "on": False}, token=token)
        assert off["data"]["updateCalendarConnection"] == {"__typename": "CalendarConnection", "schedulingPages": False}
        assert _status(await watcher.next()) == "OFFLINE"

        await server.graphql(UPDATE_CONNECTION, {"id": str(connection_id), "on": True}, token=token)
        assert _status(await watcher.next()) == "ONLINE"

        await server.graphql(DISABLE_ALL, token=token)
        gone = await watcher.next()
        assert isinstance(gone, TransportQueryError)
        assert gone.errors[0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]
        await watcher.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_unknown_page_and_bad_window_are_clear_errors(
    server: LiveServer, owner: tuple[User, str], protocol: str
) -> None:
    # covers: SUB-4, BOOK-1
    _user, token = owner
    await create_page(server, token, "intro")
    cases = [
        ({"slug": "nope", **WINDOW}, "NOT_FOUND"),
        ({"slug": "intro", **WINDOW, "timezone": "Mars/Base"}, "INVALID_INPUT"),
        ({"slug": "intro", **WINDOW, "end": WINDOW["start"]}, "INVALID_INPUT"),
        ({"slug": "intro", **WINDOW, "duration": 45}, "INVALID_INPUT"),
    ]
    async with ws_session(server.ws_url, protocol) as session:
        for variables, code in cases:
            watcher = Watcher(session, variables)
            error = await watcher.next()
            assert isinstance(error, TransportQueryError), (variables, error)
            assert error.errors[0]["extensions"]["code"] == code  # type: ignore[index]
        naive = Watcher(session, {"slug": "intro", **WINDOW, "start": "2026-12-01T00:00:00"})
        error = await naive.next()
        assert isinstance(error, TransportQueryError)
        assert "naive date-times are refused" in str(error.errors)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_token_in_connection_init(server: LiveServer, owner: tuple[User, str], protocol: str) -> None:
    # covers: SUB-4
    _user, token = owner
    await create_page(server, token, "intro")
    async with ws_session(server.ws_url, protocol, token=token) as session:
        watcher = Watcher(session, {"slug": "intro", **WINDOW})
        assert _status(await watcher.next()) == "OFFLINE"
        await watcher.close()
    async with websockets.connect(server.ws_url, subprotocols=[protocol]) as raw:
        await raw.send(json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer kk_wrong"}}))
        if protocol == "graphql-ws":
            refusal = json.loads(await asyncio.wait_for(raw.recv(), 5))
            assert refusal == {
                "type": "connection_error",
                "payload": {"message": "the bearer token is invalid or revoked"},
            }
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(raw.recv(), 5)
        if protocol == "graphql-transport-ws":
            assert raw.close_code == 4403


async def test_subscriptions_per_connection_are_capped(sqlite_server: LiveServer) -> None:
    # covers: SUB-4
    _owner, token = await make_owner(sqlite_server.services, "cap@example.com")
    await create_page(sqlite_server, token, "capped")
    limit = sqlite_server.app.state.settings.max_subscriptions_per_connection
    async with ws_session(sqlite_server.ws_url, "graphql-transport-ws") as session:
        watchers = [Watcher(session, {"slug": "capped", **WINDOW}) for _ in range(limit)]
        for watcher in watchers:
            assert _status(await watcher.next()) == "OFFLINE"
        over = Watcher(session, {"slug": "capped", **WINDOW})
        refused = await over.next()
        assert isinstance(refused, TransportQueryError)
        assert "Subscription limit reached" in str(refused)
        for watcher in watchers:
            await watcher.close()
