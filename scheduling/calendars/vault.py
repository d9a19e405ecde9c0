"""Provider credentials encrypted at rest.

Each configured secret (``KOKOUS_SECRET_KEYS``, newest first) yields a Fernet key through
HKDF-SHA256 with a label of its own, so the raw secret is never the encryption key and the same
secret used for link signing gives an unrelated key here. The newest key encrypts; every key
decrypts. To rotate: put a new secret first, run ``rotate`` over stored values (or let them be
re-sealed as tokens refresh), then drop the old secret.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_LABEL = b"kokous/credentials/v1"


class CredentialsUnreadable(Exception):
    """Stored credentials no key can decrypt (the key that sealed them was dropped)."""


def encryption_key(secret: str) -> bytes:
    """The credentials' key: never the raw secret, and unrelated to the link-signing keys."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(secret.encode("utf-8"))


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(encryption_key(secret)))


class CredentialVault:
    def __init__(self, secrets: Sequence[str]) -> None:
        if isinstance(secrets, str) or not secrets:
            raise ValueError("the vault needs a sequence of at least one secret")
        self._keys = MultiFernet([_fernet(secret) for secret in secrets])

    def __repr__(self) -> str:
        return "CredentialVault(<keys>)"

    def seal(self, plaintext: str) -> bytes:
        return self._keys.encrypt(plaintext.encode("utf-8"))

    def open(self, sealed: bytes) -> str:
        try:
            return self._keys.decrypt(sealed).decode("utf-8")
        except InvalidToken as exc:
            raise CredentialsUnreadable("no configured key decrypts these credentials") from exc

    def rotate(self, sealed: bytes) -> bytes:
        """The same plaintext sealed with the newest key."""
        try:
            return self._keys.rotate(sealed)
        except InvalidToken as exc:
            raise CredentialsUnreadable("no configured key decrypts these credentials") from exc
