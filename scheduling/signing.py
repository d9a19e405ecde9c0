"""Signed, expiring link tokens: an invitee cancels or reschedules through a link.

A token is ``v1.<payload>.<mac>``, both parts unpadded URL-safe base64, so it can stand in a
path or a query string as it is. The payload is ``<expiry, unix seconds>.<subject>``; the MAC
is HMAC-SHA256 over ``v1.<payload>`` with a key derived from the secret *per purpose*
(HMAC(secret, purpose)), so a token made for one purpose never verifies for another and the
raw secret is never used directly. Tokens are not encrypted: the subject (a booking id) is
readable by whoever holds the link.

Keys rotate: the first key signs, every key verifies. Add a new key in front, keep the old one
until its links have expired, then drop it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = ["MIN_KEY_LENGTH", "Signer", "signing_key"]

MIN_KEY_LENGTH = 16
MAX_TOKEN_LENGTH = 2048
_VERSION = "v1"
_DERIVATION_LABEL = b"kokous/link-signing/v1\x00"
_B64 = re.compile(r"^[A-Za-z0-9_-]+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64.match(text):
        raise ValueError("not URL-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(secret: bytes, purpose: str) -> bytes:
    """The HMAC key of one purpose: never the raw secret, and unrelated to the encryption key."""
    return hmac.new(secret, _DERIVATION_LABEL + purpose.encode("utf-8"), hashlib.sha256).digest()


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


class Signer:
    """Signs and verifies link tokens with rotating secrets (newest first)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of strings, not one string")
        given = list(keys)
        if not given:
            raise ValueError("Signer needs at least one secret key")
        for secret in given:
            if not isinstance(secret, str) or len(secret.strip()) < MIN_KEY_LENGTH:
                raise ValueError(f"every link-signing key must be a string of at least {MIN_KEY_LENGTH} characters")
        self._secrets = tuple(secret.encode("utf-8") for secret in given)
        self._derived: dict[tuple[int, str], bytes] = {}

    def __repr__(self) -> str:
        return f"Signer(<{len(self._secrets)} key(s)>)"

    def _key(self, index: int, purpose: str) -> bytes:
        cached = self._derived.get((index, purpose))
        if cached is None:
            cached = signing_key(self._secrets[index], purpose)
            self._derived[(index, purpose)] = cached
        return cached

    @staticmethod
    def _mac(key: bytes, signed_part: str) -> bytes:
        return hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest()

    def sign(self, purpose: str, subject: str, expires_at: datetime) -> str:
        """A URL-safe token for ``subject``, valid for ``purpose`` until ``expires_at``."""
        if not purpose:
            raise ValueError("purpose must not be empty")
        _require_aware("expires_at", expires_at)
        expiry = int((expires_at - _EPOCH).total_seconds())
        payload = _b64encode(f"{expiry}.{subject}".encode())
        signed_part = f"{_VERSION}.{payload}"
        mac = self._mac(self._key(0, purpose), signed_part)
        return f"{signed_part}.{_b64encode(mac)}"

    def verify(self, purpose: str, token: str, now: datetime) -> str | None:
        """The token's subject, or None when it is forged, expired, for another purpose or malformed."""
        _require_aware("now", now)
        if not purpose or not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            return None
        signed_part = f"{parts[0]}.{parts[1]}"
        try:
            given_mac = _b64decode(parts[2])
            if not any(
                hmac.compare_digest(given_mac, self._mac(self._key(index, purpose), signed_part))
                for index in range(len(self._secrets))
            ):
                return None
            expiry_text, separator, subject = _b64decode(parts[1]).decode("utf-8").partition(".")
            if not separator or not expiry_text.isascii() or not expiry_text.isdigit():
                return None
            expiry = int(expiry_text)
        except (ValueError, binascii.Error):
            return None
        if (now - _EPOCH).total_seconds() >= expiry:
            return None
        return subject
