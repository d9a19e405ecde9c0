"""Sending email: through SMTP when ``KOKOUS_SMTP_URL`` is set, else into an outbox folder.

SMTP URLs::

    smtp://host[:25]              plain SMTP (a local relay)
    smtp+starttls://host[:587]    SMTP upgraded with STARTTLS, which is then required
    smtps://host[:465]            SMTP over TLS from the first byte

each optionally with ``user:password@`` (percent-encoded). Any SMTP failure (refused
connection, timeout, TLS, authentication, a rejected sender or recipient) is raised as one
``MailDeliveryError``, so the caller — the outbox worker — can retry. The password never
appears in a log line, an error or a ``repr``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib

from scheduling.clock import Clock, system_clock
from scheduling.notifications.invitations import normalise_email, one_line

__all__ = ["DEFAULT_TIMEOUT", "MailDeliveryError", "Mailer", "SmtpTarget", "parse_smtp_url"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+starttls": (587, False, True),
    "smtps": (465, True, False),
}


class MailDeliveryError(Exception):
    """Sending a message failed; ``permanent`` when the server refused it for good (5xx)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool = False
    start_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The target for logs and errors: scheme, user and host, never the password."""
        scheme = "smtps" if self.use_tls else "smtp+starttls" if self.start_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://``, ``smtp+starttls://`` or ``smtps://`` URL → target; ValueError when it is not one.

    The errors never repeat the URL, which may hold a password.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("SMTP URL is empty")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("SMTP URL is malformed (check the host and port)") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError("SMTP URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("SMTP URL must be scheme://[user:password@]host[:port] with nothing after it")
    default_port, use_tls, start_tls = _SCHEMES[scheme]
    if port == 0:
        raise ValueError("SMTP URL port must be between 1 and 65535")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise ValueError("SMTP URL has a password but no user name")
    return SmtpTarget(
        host=parts.hostname,
        port=port or default_port,
        use_tls=use_tls,
        start_tls=start_tls,
        username=username,
        password=password,
    )


def _addresses(message: EmailMessage, name: str) -> list[str]:
    header = message.get(name)
    addresses = getattr(header, "addresses", ())
    return [address.addr_spec for address in addresses if address.addr_spec]


class Mailer:
    """Delivers built messages: SMTP when ``smtp_url`` is set, else ``<outbox_dir>/*.eml``.

    ``send`` fills in From (``sender``), Date and Message-ID when the message has none.
    Certificates are checked against the system's CAs and, when given, those in ``cert_bundle`` (PEM).
    """

    def __init__(
        self,
        *,
        smtp_url: str | None,
        outbox_dir: Path,
        sender: str,
        timeout: float = DEFAULT_TIMEOUT,
        cert_bundle: Path | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.target = parse_smtp_url(smtp_url) if smtp_url else None
        self.outbox_dir = Path(outbox_dir)
        name, address = parseaddr(sender)
        if not address or "\r" in sender or "\n" in sender:
            raise ValueError("sender must be an address such as 'Kokous <noreply@example.com>'")
        self.sender = Address(display_name=one_line(name), addr_spec=normalise_email(address))
        self.timeout = timeout
        self.cert_bundle = cert_bundle
        self._clock = clock

    def __repr__(self) -> str:
        where = self.target.display if self.target else str(self.outbox_dir)
        return f"Mailer({where})"

    def _complete(self, message: EmailMessage) -> None:
        if "From" not in message:
            message["From"] = self.sender
        if "Date" not in message:
            message["Date"] = format_datetime(self._clock())
        if "Message-ID" not in message:
            message["Message-ID"] = make_msgid(domain=self.sender.domain)

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message``; MailDeliveryError when SMTP fails (safe to retry)."""
        self._complete(message)
        recipients = [*_addresses(message, "To"), *_addresses(message, "Cc"), *_addresses(message, "Bcc")]
        if not recipients:
            raise ValueError("the message has no recipients")
        if self.target is None:
            path = await asyncio.to_thread(self._write_outbox, message)
            logger.info(
                "email written to the outbox (no SMTP configured)",
                extra={"path": str(path), "to": recipients, "subject": str(message["Subject"])},
            )
            return
        await self._send_smtp(self.target, message, recipients)

    async def _send_smtp(self, target: SmtpTarget, message: EmailMessage, recipients: list[str]) -> None:
        try:
            await aiosmtplib.send(
                message,
                sender=self.sender.addr_spec,
                recipients=recipients,
                hostname=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.use_tls,
                start_tls=target.start_tls,
                timeout=self.timeout,
                cert_bundle=str(self.cert_bundle) if self.cert_bundle else None,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            permanent = isinstance(exc, aiosmtplib.SMTPResponseException) and 500 <= exc.code < 600
            if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
                permanent = all(500 <= refused.code < 600 for refused in exc.recipients)
            detail = str(exc)
            if target.password:
                detail = detail.replace(target.password, "***")
            logger.warning(
                "email delivery failed",
                extra={"smtp": target.display, "error": type(exc).__name__, "permanent": permanent},
            )
            raise MailDeliveryError(
                f"sending email through {target.display} failed: {type(exc).__name__}: {detail}",
                permanent=permanent,
            ) from None
        logger.info(
            "email sent",
            extra={"smtp": target.display, "to": recipients, "message_id": str(message["Message-ID"])},
        )

    def _write_outbox(self, message: EmailMessage) -> Path:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{secrets.token_hex(4)}.eml"
        final = self.outbox_dir / name
        temporary = self.outbox_dir / f".{name}.tmp"
        data = message.as_bytes()
        try:
            with temporary.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return final
