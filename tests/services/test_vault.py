"""Credentials at rest: sealed with the newest key, readable with any configured key, rotatable."""

from __future__ import annotations

import pytest

from scheduling.calendars.vault import CredentialsUnreadable, CredentialVault

SECRET = '{"refresh_token": "1//very-secret"}'


def test_sealed_credentials_hide_the_secret_and_open_again() -> None:
    # covers: CAL-8
    vault = CredentialVault(["first-key-of-enough-length"])
    sealed = vault.seal(SECRET)
    assert b"very-secret" not in sealed
    assert vault.open(sealed) == SECRET
    assert vault.seal(SECRET) != sealed  # a fresh nonce every time


def test_keys_rotate_newest_first() -> None:
    # covers: CAL-8
    old = CredentialVault(["old-key-of-enough-length"])
    sealed_with_old = old.seal(SECRET)
    both = CredentialVault(["new-key-of-enough-length", "old-key-of-enough-length"])
    assert both.open(sealed_with_old) == SECRET
    rotated = both.rotate(sealed_with_old)
    new_only = CredentialVault(["new-key-of-enough-length"])
    assert new_only.open(rotated) == SECRET
    with pytest.raises(CredentialsUnreadable):
        new_only.open(sealed_with_old)


def test_a_vault_needs_keys_and_never_shows_them() -> None:
    # covers: CAL-8
    with pytest.raises(ValueError, match="at least one secret"):
        CredentialVault([])
    with pytest.raises(ValueError, match="at least one secret"):
        CredentialVault("a-single-string-is-a-mistake")
    assert "key-of" not in repr(CredentialVault(["visible-key-of-enough-length"]))
