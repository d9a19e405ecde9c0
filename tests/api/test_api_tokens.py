"""Bearer tokens an owner lists, names, gives an expiry and revokes, over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import websockets

from db.models import User
from scheduling.events import ApiTokenRevoked, encode
from scheduling.services import Services
from server.settings import Settings
from tests.support.clock import MovableClock
from tests.support.graphql_documents import ME, data, error_codes, random_id
from tests.support.live_server import LiveServer, start_live_server
from tests.support.owners import make_owner

Owner = tuple[User, str]
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

TOKENS = "query { me { apiTokens { id name createdAt expiresAt lastUsedAt } } }"
CREATE = """
mutation($name: String!, $days: Int) {
  createApiToken(name: $name, expiresInDays: $days) {
    secret
    apiToken { id name createdAt expiresAt lastUsedAt }
  }
}
"""
REVOKE = """
mutation($id: ID!) {
  revokeApiToken(id: $id) {
    __typename
    ... on ApiToken { id name }
    ... on NotFound { message }
  }
}
"""


async def create_token(server: LiveServer, token: str, name: str, days: int | None = None) -> dict[str, Any]:
    return data(await server.graphql(CREATE, {"name": name, "days": days}, token=token))["createApiToken"]  # type: ignore[no-any-return]


async def tokens(server: LiveServer, token: str) -> list[dict[str, Any]]:
    return data(await server.graphql(TOKENS, token=token))["me"]["apiTokens"]  # type: ignore[no-any-return]


async def revoke(server: LiveServer, token: str, token_id: str) -> dict[str, Any]:
    return data(await server.graphql(REVOKE, {"id": token_id}, token=token))["revokeApiToken"]  # type: ignore[no-any-return]


def refused(result: dict[str, Any]) -> bool:
    return result["data"] is None and error_codes(result) == ["UNAUTHENTICATED"]


async def test_create_list_use_and_revoke(server: LiveServer, owner: Owner) -> None:
    # covers: SEC-3
    user, first = owner
    created = await create_token(server, first, "laptop")
    secret, row = created["secret"], created["apiToken"]
    assert secret.startswith("kk_")
    assert row["name"] == "laptop"
    assert row["expiresAt"] is None

    listed = await tokens(server, first)
    assert [item["name"] for item in listed] == ["cli", "laptop"]
    assert secret not in json.dumps(listed)
    assert data(await server.graphql(ME, token=secret))["me"]["id"] == str(user.id)

    assert await revoke(server, first, row["id"]) == {"__typename": "ApiToken", "id": row["id"], "name": "laptop"}
    assert refused(await server.graphql(ME, token=secret))
    assert [item["name"] for item in await tokens(server, first)] == ["cli"]
    again = await revoke(server, first, row["id"])
    assert again["__typename"] == "NotFound"


async def test_a_token_can_revoke_itself_only_among_its_owners(
    server: LiveServer, owner: Owner, other_owner: Owner
) -> None:
    # covers: SEC-3
    _user, token = owner
    _other, other_token = other_owner
    (others,) = await tokens(server, other_token)
    assert (await revoke(server, token, others["id"]))["__typename"] == "NotFound"
    assert (await revoke(server, token, random_id()))["__typename"] == "NotFound"
    assert (await revoke(server, token, "not-an-id"))["__typename"] == "NotFound"
    assert [item["id"] for item in await tokens(server, other_token)] == [others["id"]]
    assert refused(await server.graphql(TOKENS))
    assert refused(await server.graphql(REVOKE, {"id": others["id"]}))


async def test_bad_names_and_expiries_are_typed_errors(server: LiveServer, owner: Owner) -> None:
    # covers: SEC-3
    _user, token = owner
    for name, days in (("", None), ("x" * 101, None), ("ok", 0), ("ok", 100_000)):
        result = await server.graphql(CREATE, {"name": name, "days": days}, token=token)
        assert error_codes(result) == ["INVALID_INPUT"], result
    assert len(await tokens(server, token)) == 1


async def test_expiry_and_last_used(settings: Settings) -> None:
    # covers: SEC-3
    clock = MovableClock(NOW)
    async with start_live_server(settings, clock=clock) as server:
        _user, first = await make_owner(server.services, "owner@example.com")
        created = await create_token(server, first, "ci", days=2)
        secret = created["secret"]
        assert datetime.fromisoformat(created["apiToken"]["expiresAt"]) == datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
        assert created["apiToken"]["lastUsedAt"] is None

        def last_used(listed: list[dict[str, Any]]) -> datetime | None:
            (row,) = [item for item in listed if item["name"] == "ci"]
            return None if row["lastUsedAt"] is None else datetime.fromisoformat(row["lastUsedAt"])

        assert not refused(await server.graphql(ME, token=secret))
        assert last_used(await tokens(server, first)) == NOW
        clock.advance(30)  # within the minute: not written again
        assert not refused(await server.graphql(ME, token=secret))
        assert last_used(await tokens(server, first)) == NOW
        clock.advance(31)
        assert not refused(await server.graphql(ME, token=secret))
        assert last_used(await tokens(server, first)) == datetime(2026, 12, 7, 12, 1, 1, tzinfo=UTC)

        clock.advance(2 * 86400)
        assert refused(await server.graphql(ME, token=secret))
        assert not refused(await server.graphql(ME, token=first))  # no expiry
        assert last_used(await tokens(server, first)) is not None  # expired ones stay listed, to revoke


def run_cli(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOKOUS_DATABASE_URL": settings.database_url, "KOKOUS_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "server", "tokens", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)


async def test_cli_lists_and_revokes(server: LiveServer, settings: Settings, owner: Owner, tmp_path: Path) -> None:
    # covers: SEC-3
    _user, first = owner
    created = await create_token(server, first, "deploy")
    token_id = created["apiToken"]["id"]

    listed = await asyncio.to_thread(run_cli, settings, tmp_path, "list", "--email", "OWNER@example.com")
    assert listed.returncode == 0, listed.stderr
    assert token_id in listed.stdout
    assert "deploy" in listed.stdout
    assert "cli" in listed.stdout
    assert created["secret"] not in listed.stdout
    assert first not in listed.stdout

    other = await asyncio.to_thread(run_cli, settings, tmp_path, "revoke", "--email", "x@example.com", "--id", token_id)
    assert other.returncode == 1
    assert "no owner" in other.stderr
    done = await asyncio.to_thread(
        run_cli, settings, tmp_path, "revoke", "--email", "owner@example.com", "--id", token_id
    )
    assert done.returncode == 0, done.stderr
    assert f"revoked token {token_id}" in done.stdout
    assert refused(await server.graphql(ME, token=created["secret"]))
    again = await asyncio.to_thread(
        run_cli, settings, tmp_path, "revoke", "--email", "owner@example.com", "--id", token_id
    )
    assert again.returncode == 1


WATCH_CALENDARS = "subscription { calendarStatusChanged { __typename } }"


async def open_owner_socket(server: LiveServer, protocol: str, secret: str) -> websockets.ClientConnection:
    raw = await websockets.connect(server.ws_url, subprotocols=[protocol])
    await raw.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {secret}"}}))
    assert json.loads(await asyncio.wait_for(raw.recv(), 5))["type"] == "connection_ack"
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    await raw.send(json.dumps({"id": "1", "type": start, "payload": {"query": WATCH_CALENDARS}}))
    return raw


async def closed_with(raw: websockets.ClientConnection) -> int | None:
    """The close code, once only keep-alives came before the socket closed."""
    try:
        while True:
            await asyncio.wait_for(raw.recv(), 5)
    except websockets.ConnectionClosed:
        return raw.close_code


async def still_open(raw: websockets.ClientConnection) -> None:
    """Nothing but keep-alives for half a second, and no close."""
    loop = asyncio.get_running_loop()
    until = loop.time() + 0.5
    while (left := until - loop.time()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(raw.recv(), left))
        except TimeoutError:
            break
        assert message["type"] in {"ka", "ping", "pong"}, message
    assert raw.close_code is None


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_revoking_closes_the_tokens_open_sockets(server: LiveServer, owner: Owner, protocol: str) -> None:
    # covers: SEC-3
    _user, first = owner
    created = await create_token(server, first, "socket")
    revoked = await open_owner_socket(server, protocol, created["secret"])
    kept = await open_owner_socket(server, protocol, first)
    try:
        await asyncio.sleep(0.1)
        await revoke(server, first, created["apiToken"]["id"])
        assert await closed_with(revoked) == 4403
        await still_open(kept)  # the other token's socket stays open
    finally:
        await revoked.close()
        await kept.close()


async def test_revocation_reaches_the_sockets_of_another_process(
    server: LiveServer, settings: Settings, owner: Owner
) -> None:
    # covers: SEC-3
    """The process holding the socket closes it on an event another process published."""
    _user, first = owner
    created = await create_token(server, first, "elsewhere")
    holder = server.app.state.token_sockets
    raw = await open_owner_socket(server, "graphql-transport-ws", created["secret"])
    try:
        await asyncio.sleep(0.1)
        # Published on the hub as another process would: not through this process's own bus.
        services: Services = server.services
        event = ApiTokenRevoked(owner_id=owner[0].id, token_id=uuid.UUID(created["apiToken"]["id"]))
        for key in event.channel_keys():
            await services.bus.hub.publish(services.bus.channel(key), encode(event))
        assert await closed_with(raw) == 4403
        assert holder.open_count(event.token_id) == 0
    finally:
        await raw.close()
