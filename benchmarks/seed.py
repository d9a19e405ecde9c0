"""Owners, pages and calendar connections written straight through ``Services``.

The same data as ``seed_owner_with_page`` in tests/system/test_scale_out.py, with a page slug
of the caller's choosing so several owners can share one database. ``Services`` is taken from
the app's own lifespan (memory pub/sub), so the seed builds it exactly as ``kokous serve`` does.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from benchmarks.servers import BENCH_SECRET_KEY
from db.models import Calendar, CalendarConnection
from scheduling.pages import PageDraft, PageView
from scheduling.services import Services
from scheduling.users import NewUser
from scheduling.values import CalendarProvider
from server.app import create_app
from server.settings import Settings


@dataclass(frozen=True)
class SeededOwner:
    token: str
    slug: str
    connection_id: uuid.UUID


async def seed_owners(database_url: str, count: int, slug_prefix: str = "bench") -> list[SeededOwner]:
    """``count`` owners, each with one page (``<prefix>-<n>-<random>``) and one calendar connection."""
    with tempfile.TemporaryDirectory(prefix="kokous-bench-seed-") as folder:
        settings = Settings(
            database_url=database_url,
            broadcast_url="memory://",
            broadcast_channel_prefix="seed",
            secret_keys=(BENCH_SECRET_KEY,),
            data_dir=Path(folder) / "data",
            outbox_dir=Path(folder) / "outbox",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services = cast(Services, app.state.services)
            return [await _one(services, index, slug_prefix) for index in range(count)]


async def _one(services: Services, index: int, slug_prefix: str) -> SeededOwner:
    tag = uuid.uuid4().hex[:8]
    created = await services.users.create(email=f"bench-{tag}@example.com", name=f"Bench {index}")
    if not isinstance(created, NewUser):
        raise RuntimeError(f"cannot create a benchmark owner: {created}")
    slug = f"{slug_prefix}-{index}-{tag}"
    page = await services.pages.create(created.user.id, PageDraft(slug=slug, name="Bench call", durations=[30]))
    if not isinstance(page, PageView):
        raise RuntimeError(f"cannot create a benchmark page: {page}")
    async with services.db.transaction() as session:
        connection = CalendarConnection(
            user_id=created.user.id, provider=CalendarProvider.GOOGLE, account_email=created.user.email
        )
        session.add(connection)
        await session.flush()
        session.add(Calendar(connection_id=connection.id, external_id="primary", name="Work", is_primary=True))
        connection_id = connection.id
    return SeededOwner(token=created.token, slug=slug, connection_id=connection_id)
