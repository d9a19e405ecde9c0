"""POST /graphql in front of strawberry: serve a kept public answer, or run GraphQL and keep it.

The cache key is the request itself (document, operation name, variables in canonical form);
whether an answer may be kept is decided by ``schema.cacheable`` (the document) and
``scheduling.live.answer_cache`` (what the resolvers read, and whether it changed meanwhile).
"""

from __future__ import annotations

import json
from typing import cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduling.live.answer_cache import AnswerCache, AnswerScope, CachedAnswer
from schema.cacheable import PublicDocuments

ANSWER_SCOPE = "kokous.answer_scope"  # where the request's AnswerScope travels in the ASGI scope
_REQUEST_KEYS = frozenset({"query", "variables", "operationName"})

AnswerKey = tuple[str, str | None, str]


def answer_key(body: bytes) -> AnswerKey | None:
    """The request in canonical form, or None when it is not a plain single GraphQL request."""
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict) or not request.keys() <= _REQUEST_KEYS:
        return None
    query, variables, operation = request.get("query"), request.get("variables"), request.get("operationName")
    if not isinstance(query, str) or not isinstance(variables, dict | None) or not isinstance(operation, str | None):
        return None
    return query, operation, json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send_answer(send: Send, answer: CachedAnswer) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(answer.headers)})
    await send({"type": "http.response.body", "body": answer.body})


class AnswerCachingEndpoint:
    def __init__(self, app: ASGIApp, documents: PublicDocuments) -> None:
        self.app = app
        self.documents = documents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self._cache(scope)
        if scope["type"] != "http" or scope["method"] != "POST" or cache is None or not cache.enabled:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        key = answer_key(body)
        if key is not None:
            answer = cache.get(key)
            if answer is not None:
                await _send_answer(send, answer)
                return
        answer_scope = cache.scope() if key is not None and cache.live and self.documents.is_public(key[0]) else None
        if answer_scope is None:
            await self.app(scope, _replay(body, receive), send)
            return
        assert key is not None
        scope[ANSWER_SCOPE] = answer_scope
        await self._run_and_keep(scope, _replay(body, receive), send, cache, key, answer_scope)

    async def _run_and_keep(
        self, scope: Scope, receive: Receive, send: Send, cache: AnswerCache, key: AnswerKey, answer_scope: AnswerScope
    ) -> None:
        status = 0
        headers: tuple[tuple[bytes, bytes], ...] = ()
        chunks: list[bytes] = []

        async def keeping_send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], tuple(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keeping_send)
        if status == 200:
            cache.put(key, answer_scope, b"".join(chunks), headers)

    @staticmethod
    def _cache(scope: Scope) -> AnswerCache | None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        return cast(AnswerCache | None, getattr(services, "answers", None))


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the real channel (which reports the client's disconnect)."""
    sent = False

    async def replaying_receive() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying_receive
