"""Batched reads for the fields of listed contacts, meetings and tasks: the items of a list ask
together, so a list of any length costs one query per field rather than one per item.

Loaders do not cache (a WebSocket's context outlives one operation); each batch is scoped to
the signed-in owner, so another owner's ids come back empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from db.models import Contact, Task
from resolvers.auth import require_user
from resolvers.context import RequestContext
from scheduling.crm.values import MeetingView

Batch = Callable[[uuid.UUID, Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, Any]]]


def _loader(context: RequestContext, name: str, batch: Batch, missing: object) -> DataLoader[uuid.UUID, Any]:
    """The request's loader ``name``: ``batch(owner_id, ids)`` answers by id, ``missing`` for the others."""
    loader = context.loaders.get(name)
    if loader is None:
        owner_id = require_user(context).id

        async def load(ids: list[uuid.UUID]) -> list[Any]:
            found = await batch(owner_id, ids)
            return [found.get(key, missing) for key in ids]

        loader = context.loaders[name] = DataLoader(load_fn=load, cache=False)
    return loader


async def meetings_of(context: RequestContext, contact_id: uuid.UUID) -> list[MeetingView]:
    loader = _loader(context, "meetings", context.services.meetings.of_contacts, [])
    result: list[MeetingView] = await loader.load(contact_id)
    return result


async def tasks_of(context: RequestContext, contact_id: uuid.UUID) -> list[Task]:
    loader = _loader(context, "tasks", context.services.tasks.of_contacts, [])
    result: list[Task] = await loader.load(contact_id)
    return result


async def contact(context: RequestContext, contact_id: uuid.UUID) -> Contact | None:
    loader = _loader(context, "contacts", context.services.contacts.by_ids, None)
    result: Contact | None = await loader.load(contact_id)
    return result
