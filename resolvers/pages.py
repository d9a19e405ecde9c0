"""Scheduling pages for their owner, and the public lookup for visitors.

Each change is one transaction with nothing done outside the database before its commit, so a
change whose connection was lost before that runs once more (``resolvers/retry.py``).
"""

from __future__ import annotations

from db.models import User
from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from resolvers.retry import retried_if_lost
from scheduling.booking import contact_tokens
from scheduling.booking.contact_tokens import Prefill
from scheduling.errors import InvalidInput, NotFound, SlugTaken
from scheduling.pages.links import ChatLink
from scheduling.pages.service import Deleted, PageDraft, PageView

_NOT_FOUND = NotFound(message="scheduling page not found")


async def owner_pages(context: RequestContext, owner: User) -> list[PageView]:
    return await context.services.pages.list_pages(owner.id)


async def default_page(context: RequestContext, owner: User) -> PageView | None:
    return await context.services.pages.default_page(owner)


@retried_if_lost
async def create(context: RequestContext, draft: PageDraft) -> PageView | InvalidInput | SlugTaken | NotFound:
    user = require_user(context)
    return await context.services.pages.create(user.id, draft)


@retried_if_lost
async def update(
    context: RequestContext, page_id: str, draft: PageDraft
) -> PageView | InvalidInput | SlugTaken | NotFound:
    user = require_user(context)
    parsed = parse_id(page_id)
    if parsed is None:
        return _NOT_FOUND
    return await context.services.pages.update(user.id, parsed, draft)


@retried_if_lost
async def delete(context: RequestContext, page_id: str) -> Deleted | NotFound:
    user = require_user(context)
    parsed = parse_id(page_id)
    if parsed is None:
        return _NOT_FOUND
    return await context.services.pages.delete(user.id, parsed)


@retried_if_lost
async def set_all_enabled(context: RequestContext, enabled: bool) -> list[PageView]:
    user = require_user(context)
    return await context.services.pages.set_all_enabled(user.id, enabled)


async def public_page(context: RequestContext, slug: str, domain: str | None) -> PageView | None:
    """A visitor's view; ``domain`` defaults to nothing (any host), as for API clients."""
    view = await context.services.pages.public_page(slug, domain)
    if view is not None and context.answer_scope is not None:
        context.answer_scope.depends_on(view.page.owner_id)
    return view


async def prefill(context: RequestContext, view: PageView, token: str) -> Prefill | None:
    services = context.services
    return await contact_tokens.prefill(services.db, services.signer, token, view.page.owner_id, services.clock())


def chat_link(context: RequestContext, view: PageView) -> ChatLink:
    return context.services.links.chat_link(view.page, view.owner)
