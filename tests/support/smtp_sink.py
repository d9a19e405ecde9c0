"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) that keeps what it receives.

``with smtp_sink() as sink:`` starts it on a free port (aiosmtpd cannot bind port 0 itself)
and stops it by its handle when the block ends, also when the test fails. Optional TLS
(STARTTLS or implicit) and AUTH let a test drive the mailer's secured paths.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (also how a test gets a closed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def only(self) -> ReceivedMail:
        assert len(self.messages) == 1, f"expected one message, got {len(self.messages)}"
        return self.messages[0]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        self.sink.messages.append(
            ReceivedMail(mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), raw=raw, message=parsed)
        )
        return "250 Message accepted for delivery"


def _authenticator(sink: SmtpSink, credentials: tuple[str, str]) -> Any:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        sink.logins.append((login, password))
        return AuthResult(success=(login, password) == credentials, handled=False)

    return authenticate


def _discard(controller: Controller) -> None:
    """Stop a controller whose start failed, and close its loop if its thread did not."""
    controller.stop(no_assert=True)
    if not controller.loop.is_closed() and not controller.loop.is_running():
        controller.loop.close()


@contextmanager
def smtp_sink(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[SmtpSink]:
    """Run an SMTP server on 127.0.0.1 for the block; it records every message it accepts.

    ``starttls`` offers STARTTLS with that server context; ``implicit_tls`` speaks TLS from
    the first byte; ``credentials`` (user, password) requires AUTH (over TLS only).
    """
    last_error: Exception | None = None
    for _ in range(5):  # another process may take the free port before we bind it
        sink = SmtpSink(host=HOST, port=free_port())
        options: dict[str, Any] = {"server_hostname": "smtp-sink.test", "ready_timeout": 5.0}
        if starttls is not None:
            options["tls_context"] = starttls
            options["require_starttls"] = True
        if implicit_tls is not None:
            options["ssl_context"] = implicit_tls
        if credentials is not None:
            options["authenticator"] = _authenticator(sink, credentials)
            options["auth_required"] = True
        controller = Controller(_Handler(sink), hostname=HOST, port=sink.port, **options)
        try:
            controller.start()
        except Exception as exc:
            _discard(controller)
            if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:  # the port was taken meanwhile
                last_error = exc
                continue
            raise
        try:
            yield sink
        finally:
            controller.stop()
        return
    raise RuntimeError(f"could not start the SMTP sink: {last_error}")
