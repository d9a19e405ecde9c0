"""Bearer tokens: random, shown once, stored only as a SHA-256 digest.

Tokens carry 256 bits of entropy, so a fast digest is the right tool (a slow password hash
would only add latency to every request without adding safety).
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "kk_"  # noqa: S105 (a prefix, not a secret)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
