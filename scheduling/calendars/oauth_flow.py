"""The OAuth half of connecting a calendar (Google, Microsoft 365): consent URL, state, code, confirmation.

Kept apart from ``scheduling.calendars.connect`` because the flow has its own rows, secrets and
steps; ``ConnectionService`` takes these steps from ``OAuthConnecting`` and supplies what they end
in: the rules for connecting, the saving and the revoking.

``start_oauth`` keeps the flow's secrets in an encrypted ``ConnectionAttempt`` row and hands the
browser a signed ``state`` naming it; ``finish_oauth`` (the callback) redeems the code but connects
nothing: the grant waits, encrypted, on a new attempt row with a one-time confirmation code (kept
only as a hash) until the owner who started the flow confirms it with their own token
(``confirm_oauth``). The ``state`` names the owner, not the browser, so a consent link finished in
someone else's browser would otherwise connect that person's calendar to the sender. Unconfirmed
grants expire after ``PENDING_LIFETIME`` and are revoked at the provider (``expire_pending``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import col, select

from common.values import CalendarProvider
from db.engine import Database
from db.models import CalendarConnection, ConnectionAttempt, User
from providers.base import ConnectedAccount
from providers.errors import ProviderError
from scheduling.calendars.clients import OAUTH_PROVIDERS, ProviderClients
from scheduling.calendars.vault import CredentialsUnreadable, CredentialVault
from scheduling.clock import Clock
from scheduling.errors import (
    ConnectionFailed,
    ConnectionLimitReached,
    InvalidInput,
    NotFound,
    PermissionRequired,
    ProviderNotConfigured,
)
from scheduling.signing import Signer

if TYPE_CHECKING:  # connect.py builds on this module: its types only, at type-checking time
    from scheduling.calendars.connect import ConfirmResult, ConnectResult

logger = logging.getLogger(__name__)

ATTEMPT_LIFETIME = timedelta(minutes=15)
PENDING_LIFETIME = timedelta(minutes=10)  # a redeemed grant waiting for its owner's confirmation
PENDING_MARK = "kokous_pending_grant"  # in a pending attempt's sealed JSON (a flow verifier has no such key)
STATE_PURPOSE = "calendar-connection"


@dataclass(frozen=True)
class AuthorizationUrl:
    url: str


StartResult = (
    AuthorizationUrl
    | PermissionRequired
    | ProviderNotConfigured
    | ConnectionLimitReached
    | ConnectionFailed
    | InvalidInput
)
_UNKNOWN_CODE = "confirmation code not found: it was used, has expired or belongs to another account"


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class _PendingGrant:
    """What a pending attempt's sealed JSON holds: the redeemed credentials and the code's hash."""

    credentials: str
    account_email: str
    code_hash: str

    def sealed_json(self) -> str:
        return json.dumps(
            {PENDING_MARK: 1, "credentials": self.credentials, "email": self.account_email, "code": self.code_hash}
        )

    @classmethod
    def from_json(cls, text: str) -> _PendingGrant | None:
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get(PENDING_MARK) != 1:
            return None  # an attempt still waiting for its callback
        return cls(credentials=str(data["credentials"]), account_email=str(data["email"]), code_hash=str(data["code"]))


class OAuthConnecting(ABC):
    """The OAuth steps of ``ConnectionService``, which supplies the rules, the saving and the revoking."""

    _db: Database
    _vault: CredentialVault
    _clients: ProviderClients
    _signer: Signer
    _clock: Clock
    _dashboard_url: str

    @abstractmethod
    async def _may_connect(
        self, owner: User, provider: CalendarProvider
    ) -> PermissionRequired | ConnectionLimitReached | None: ...

    @abstractmethod
    async def _save(
        self, owner: User, provider: CalendarProvider, credentials_json: str, account_email: str
    ) -> ConnectResult: ...

    @abstractmethod
    async def _revoke_json(self, provider: CalendarProvider, credentials_json: str) -> None: ...

    @abstractmethod
    def _failure(self, error: ProviderError) -> ConnectionFailed:
        """The provider's refusal as the owner sees it (``connect.failure_of``)."""

    async def start_oauth(self, owner: User, provider: CalendarProvider) -> StartResult:
        """The consent URL to send the owner to."""
        if provider not in OAUTH_PROVIDERS:
            message = "use connectExchangeCalendar or connectCalDAVCalendar for this provider"
            return InvalidInput(message=message, field="provider")
        problem = await self._may_connect(owner, provider)
        if problem is not None:
            return problem
        flow = self._clients.oauth(provider)
        if flow is None:
            return ProviderNotConfigured(
                message=f"{provider.value.title()} calendars are not configured on this server", provider=provider
            )
        now = self._clock()
        attempt_id = uuid.uuid4()
        state = self._signer.sign(STATE_PURPOSE, f"{provider.value}:{attempt_id.hex}", now + ATTEMPT_LIFETIME)
        try:
            start = await flow.start(state)
        except ProviderError as exc:
            return self._failure(exc)
        async with self._db.transaction() as session:
            session.add(
                ConnectionAttempt(
                    id=attempt_id,
                    user_id=owner.id,
                    provider=provider,
                    verifier=self._vault.seal(json.dumps(start.verifier)),
                    expires_at=now + ATTEMPT_LIFETIME,
                    created_at=now,
                )
            )
        return AuthorizationUrl(url=start.url)

    async def finish_oauth(self, provider: CalendarProvider, params: dict[str, str]) -> str:
        """The callback: where to send the browser (the dashboard, with ``connected`` or ``error``)."""
        attempt = await self._take_attempt(provider, params.get("state", ""))
        if attempt is None:
            return self._dashboard(error="invalid_state")
        flow = self._clients.oauth(provider)
        if flow is None:
            return self._dashboard(error="not_configured")
        try:
            account = await flow.finish(params, json.loads(self._vault.open(attempt.verifier)))
        except ProviderError as exc:
            logger.info("%s connection not finished: %s", provider.value, exc)
            return self._dashboard(error=exc.code or "connection_failed")
        async with self._db.session() as session:
            owner = await session.get(User, attempt.user_id)
        if owner is None:
            return self._dashboard(error="invalid_state")
        problem = await self._may_connect(owner, provider)
        if isinstance(problem, ConnectionLimitReached):
            return self._dashboard(error="connection_limit")
        if problem is not None:
            return self._dashboard(error="permission_required")
        code = await self._keep_pending(owner, provider, account)
        return self._dashboard(connected=provider.value.lower(), confirm=code)

    async def _keep_pending(self, owner: User, provider: CalendarProvider, account: ConnectedAccount) -> str:
        """The grant kept encrypted until the owner confirms it: the one-time code to confirm with."""
        now = self._clock()
        pending_id = uuid.uuid4()
        code = f"{pending_id.hex}.{secrets.token_urlsafe(32)}"
        grant = _PendingGrant(account.to_json(), account.account_email, _code_hash(code))
        async with self._db.transaction() as session:
            session.add(
                ConnectionAttempt(
                    id=pending_id,
                    user_id=owner.id,
                    provider=provider,
                    verifier=self._vault.seal(grant.sealed_json()),
                    expires_at=now + PENDING_LIFETIME,
                    created_at=now,
                )
            )
        return code

    async def confirm_oauth(self, owner: User, code: str) -> ConfirmResult:
        """The starting owner's confirmation: the pending grant becomes a connection, once.

        Another owner's confirmation, a used or expired code all answer ``NotFound`` and change
        nothing (an expired grant is left for ``expire_pending`` to revoke).
        """
        attempt_hex, _, _ = code.partition(".")
        try:
            attempt_id = uuid.UUID(hex=attempt_hex)
        except ValueError:
            return NotFound(message=_UNKNOWN_CODE)
        now = self._clock()
        async with self._db.transaction(write=True) as session:
            attempt = (
                await session.exec(
                    select(ConnectionAttempt).where(ConnectionAttempt.id == attempt_id).with_for_update()
                )
            ).first()
            if attempt is None or attempt.user_id != owner.id or attempt.expires_at <= now:
                return NotFound(message=_UNKNOWN_CODE)
            grant = self._pending_grant(attempt)
            if grant is None or not hmac.compare_digest(grant.code_hash, _code_hash(code)):
                return NotFound(message=_UNKNOWN_CODE)
            await session.delete(attempt)  # a code works once
        return await self._save(owner, CalendarProvider(attempt.provider), grant.credentials, grant.account_email)

    def _pending_grant(self, attempt: ConnectionAttempt) -> _PendingGrant | None:
        try:
            return _PendingGrant.from_json(self._vault.open(attempt.verifier))
        except CredentialsUnreadable:
            return None

    async def expire_pending(self) -> int:
        """Delete expired attempts; grants nobody confirmed are revoked at the provider (best effort).

        A grant for an account connected here already is not revoked: at Google, revoking one
        token ends the whole grant, which would cut off the existing connection too.
        """
        now = self._clock()
        due = col(ConnectionAttempt.expires_at) <= now
        async with self._db.session() as session:  # the common case, nothing due, takes no write lock
            if (await session.exec(select(ConnectionAttempt.id).where(due).limit(1))).first() is None:
                return 0
        async with self._db.transaction(write=True) as session:
            expired = (await session.exec(select(ConnectionAttempt).where(due).with_for_update(skip_locked=True))).all()
            for attempt in expired:
                await session.delete(attempt)
        for attempt in expired:
            grant = self._pending_grant(attempt)
            if grant is None:
                continue
            provider = CalendarProvider(attempt.provider)
            async with self._db.session() as session:
                in_use = (
                    await session.exec(
                        select(CalendarConnection.id).where(
                            CalendarConnection.provider == provider,
                            func.lower(CalendarConnection.account_email) == grant.account_email.lower(),
                        )
                    )
                ).first()
            if in_use is None:
                await self._revoke_json(provider, grant.credentials)
        return len(expired)

    async def _take_attempt(self, provider: CalendarProvider, state: str) -> ConnectionAttempt | None:
        """The attempt the signed state names, deleted so a state works once."""
        now = self._clock()
        subject = self._signer.verify(STATE_PURPOSE, state, now)
        if subject is None:
            return None
        named_provider, _, attempt_hex = subject.partition(":")
        if named_provider != provider.value:
            return None
        try:
            attempt_id = uuid.UUID(hex=attempt_hex)
        except ValueError:
            return None
        async with self._db.transaction() as session:
            attempt = await session.get(ConnectionAttempt, attempt_id)
            if attempt is None:
                return None
            await session.delete(attempt)
        return attempt if attempt.expires_at > now else None

    def _dashboard(self, *, connected: str | None = None, confirm: str | None = None, error: str | None = None) -> str:
        separator = "&" if "?" in self._dashboard_url else "?"
        query = f"connected={connected}&confirm={confirm}" if connected else f"error={error}"
        return f"{self._dashboard_url}{separator}{query}"
