"""Tasks, seats and calendar sync's decisions over real HTTP (and the seat command line)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from db.models import CalendarImport, Task, User
from server import cli
from server.settings import Settings
from tests.support.crm_documents import (
    CREATE_TASK,
    DELETE_TASK,
    TASKS,
    UPDATE_TASK,
    answer,
    contact,
    create_contact,
)
from tests.support.live_server import LiveServer

Owner = tuple[User, str]
DUE = "2026-12-03T16:00:00+02:00"


async def create_task(server: LiveServer, token: str, **fields: Any) -> dict[str, Any]:
    return await answer(server, CREATE_TASK, token, input={"title": "Send the offer", **fields})


async def tasks(server: LiveServer, token: str) -> list[dict[str, Any]]:
    return list((await answer(server, TASKS, token))["tasks"])


async def test_tasks_are_created_changed_and_deleted(server: LiveServer, owner: Owner) -> None:
    # covers: SYNC-4
    _user, token = owner
    ada = await create_contact(server, token, "ada@example.com", name="Ada")
    created = await create_task(server, token, due=DUE, contactId=ada["id"])
    assert created["__typename"] == "Task", created
    assert (created["title"], created["due"], created["done"], created["inCalendar"]) == (
        "Send the offer",
        "2026-12-03T14:00:00+00:00",
        False,
        False,
    )
    assert created["contact"] == {"id": ada["id"], "email": "ada@example.com"}
    assert [task["id"] for task in await tasks(server, token)] == [created["id"]]
    found = await contact(server, token, "ada@example.com")
    assert found is not None
    assert found["tasks"] == [{"id": created["id"], "title": "Send the offer"}]

    done = await answer(server, UPDATE_TASK, token, id=created["id"], input={"done": True})
    assert (done["title"], done["due"], done["done"], done["contact"]) == (
        "Send the offer",
        "2026-12-03T14:00:00+00:00",
        True,
        created["contact"],
    )  # what was left out is kept
    cleared = await answer(
        server, UPDATE_TASK, token, id=created["id"], input={"title": "Offer sent", "due": None, "contactId": None}
    )
    assert (cleared["title"], cleared["due"], cleared["done"], cleared["contact"]) == ("Offer sent", None, True, None)
    found = await contact(server, token, "ada@example.com")
    assert found is not None
    assert found["tasks"] == []

    deleted = await answer(server, DELETE_TASK, token, id=created["id"])
    assert deleted == {"__typename": "Deleted", "id": created["id"]}
    assert await tasks(server, token) == []
    again = await answer(server, DELETE_TASK, token, id=created["id"])
    assert again["__typename"] == "NotFound"


async def test_open_tasks_come_first_then_by_due_time(server: LiveServer, owner: Owner) -> None:
    # covers: SYNC-4
    _user, token = owner
    later = await create_task(server, token, title="Later", due="2026-12-10T09:00:00+00:00")
    undated = await create_task(server, token, title="Someday")
    finished = await create_task(server, token, title="Finished", due="2026-12-01T09:00:00+00:00", done=True)
    sooner = await create_task(server, token, title="Sooner", due="2026-12-02T09:00:00+00:00")
    assert [task["id"] for task in await tasks(server, token)] == [
        sooner["id"],
        later["id"],
        undated["id"],
        finished["id"],
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"title": " "}, "title"), ({"title": "x" * 301}, "title"), ({"title": "<b>bold</b>"}, "title")],
)
async def test_bad_tasks_are_refused(server: LiveServer, owner: Owner, fields: dict[str, Any], field: str) -> None:
    # covers: SYNC-4
    _user, token = owner
    refused = await create_task(server, token, **fields)
    assert (refused["__typename"], refused["field"]) == ("InvalidInput", field)
    kept = await create_task(server, token)
    changed = await answer(server, UPDATE_TASK, token, id=kept["id"], input=fields)
    assert (changed["__typename"], changed["field"]) == ("InvalidInput", field)
    assert [(task["title"], task["done"]) for task in await tasks(server, token)] == [("Send the offer", False)]


async def test_naive_due_times_and_unknown_contacts_are_refused(server: LiveServer, owner: Owner) -> None:
    # covers: SYNC-4
    _user, token = owner
    naive = await server.graphql(CREATE_TASK, {"input": {"title": "x", "due": "2026-12-03T16:00:00"}}, token=token)
    assert "no UTC offset" in naive["errors"][0]["message"]
    for contact_id in ("not-an-id", str(uuid.uuid4())):
        refused = await create_task(server, token, contactId=contact_id)
        assert refused == {"__typename": "NotFound", "message": "contact not found"}
    assert await tasks(server, token) == []


async def test_another_owners_tasks_are_not_found(server: LiveServer, owner: Owner, other_owner: Owner) -> None:
    # covers: SYNC-4
    _user, token = owner
    mine = await create_task(server, token)
    _other, other_token = other_owner
    assert await tasks(server, other_token) == []
    for task_id in (mine["id"], "not-an-id"):
        changed = await answer(server, UPDATE_TASK, other_token, id=task_id, input={"done": True})
        assert changed["__typename"] == "NotFound"
        deleted = await answer(server, DELETE_TASK, other_token, id=task_id)
        assert deleted["__typename"] == "NotFound"
    theirs = await create_contact(server, other_token, "ada@example.com")
    moved = await answer(server, UPDATE_TASK, token, id=mine["id"], input={"contactId": theirs["id"]})
    assert moved["__typename"] == "NotFound"
    assert [(task["done"], task["contact"]) for task in await tasks(server, token)] == [(False, None)]


async def test_in_calendar_says_whether_the_task_has_its_event(server: LiveServer, owner: Owner) -> None:
    # covers: SYNC-4
    _user, token = owner
    created = await create_task(server, token, due=DUE)
    async with server.services.db.transaction() as session:
        row = await session.get(Task, uuid.UUID(created["id"]))
        assert row is not None
        row.calendar_event_id = "task-event-1"
        session.add(row)
    assert [task["inCalendar"] for task in await tasks(server, token)] == [True]


def run_users_cli(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOKOUS_DATABASE_URL": settings.database_url, "KOKOUS_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "server", "users", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)


SEAT = "query { me { seat } }"


async def test_the_operator_sets_an_owners_seat(
    server: LiveServer, settings: Settings, owner: Owner, tmp_path: Path
) -> None:
    # covers: SYNC-4
    _user, token = owner
    assert await answer(server, SEAT, token) == {"seat": "FREE"}

    done = await asyncio.to_thread(
        run_users_cli, settings, tmp_path, "set-seat", "--email", "OWNER@example.com", "--seat", "SALES_PAID"
    )
    assert done.returncode == 0, done.stderr
    assert "owner@example.com now has the SALES_PAID seat" in done.stdout
    assert await answer(server, SEAT, token) == {"seat": "SALES_PAID"}

    with pytest.raises(SystemExit) as wrong:
        cli.main(["users", "set-seat", "--email", "owner@example.com", "--seat", "GOLD"])
    assert wrong.value.code == 2  # refused before anything is opened
    assert await answer(server, SEAT, token) == {"seat": "SALES_PAID"}


IMPORTS = "query($last: Int) { me { calendarImports(last: $last) { externalEventId title start imported reason at } } }"


async def test_calendar_sync_decisions_are_read_newest_first(
    server: LiveServer, owner: Owner, other_owner: Owner
) -> None:
    # covers: SYNC-7
    user, token = owner
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    async with server.services.db.transaction() as session:
        for index in range(60):
            session.add(
                CalendarImport(
                    owner_id=user.id,
                    external_event_id=f"event-{index}",
                    title=f"Event {index}",
                    start_at=at + timedelta(days=1),
                    imported=index % 2 == 0,
                    reason="imported as a meeting" if index % 2 == 0 else "not imported: no known contact",
                    at=at + timedelta(minutes=index),
                )
            )

    default = (await answer(server, IMPORTS, token))["calendarImports"]
    assert [row["externalEventId"] for row in default] == [f"event-{index}" for index in range(59, 9, -1)]
    (newest,) = (await answer(server, IMPORTS, token, last=1))["calendarImports"]
    assert newest == {
        "externalEventId": "event-59",
        "title": "Event 59",
        "start": "2026-12-02T09:00:00+00:00",
        "imported": False,
        "reason": "not imported: no known contact",
        "at": "2026-12-01T09:59:00+00:00",
    }
    assert len((await answer(server, IMPORTS, token, last=200))["calendarImports"]) == 60
    for last in (0, 201):
        refused = await server.graphql(IMPORTS, {"last": last}, token=token)
        assert refused["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": "last"}
    assert (await answer(server, IMPORTS, other_owner[1]))["calendarImports"] == []
