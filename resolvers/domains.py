"""Connected domains an owner may host pages on."""

from __future__ import annotations

from db.models import Domain
from resolvers.auth import require_user
from resolvers.context import RequestContext


async def list_domains(context: RequestContext) -> list[Domain]:
    require_user(context)
    return await context.services.domains.list_domains()
