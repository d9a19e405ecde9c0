"""The ``kokous`` command: serve, migrate, users create/set-seat, tokens list/revoke, domains add,
demo, secrets rotate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import uvicorn

from common.values import Seat
from db.engine import Database
from db.migrate import DatabaseNotMigrated, ensure_migrated, migrate
from db.models import User
from pubsub import EventHub
from resolvers.ids import parse_id
from scheduling.errors import InvalidInput, NotFound, SlugTaken
from scheduling.pages.service import PageDraft, PageView
from scheduling.services import Services
from server.logs import configure_logging
from server.settings import Settings, SettingsError, load_settings
from server.wiring import build_services

logger = logging.getLogger("kokous")

DEMO_EMAIL = "demo@example.com"
DEMO_SLUG = "demo"


class CommandFailed(Exception):
    """A command could not do its work; the message says why and what to do."""


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kokous", description="Kokous meeting scheduling server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve HTTP and WebSocket")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="apply database migrations to KOKOUS_DATABASE_URL")
    users = commands.add_parser("users", help="manage owners").add_subparsers(dest="action", required=True)
    create = users.add_parser("create", help="create an owner and print a bearer token")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--timezone", default="UTC")
    seat = users.add_parser("set-seat", help="set an owner's seat (task sync needs a paid one)")
    seat.add_argument("--email", required=True)
    seat.add_argument("--seat", required=True, choices=[value.value for value in Seat])
    tokens = commands.add_parser("tokens", help="an owner's bearer tokens").add_subparsers(dest="action", required=True)
    listing = tokens.add_parser("list", help="list an owner's unrevoked tokens (never their secrets)")
    listing.add_argument("--email", required=True)
    revoke = tokens.add_parser("revoke", help="revoke one of an owner's tokens")
    revoke.add_argument("--email", required=True)
    revoke.add_argument("--id", required=True, dest="token_id")
    domains = commands.add_parser("domains", help="domain management").add_subparsers(dest="action", required=True)
    add = domains.add_parser("add", help="connect a domain that may serve pages")
    add.add_argument("host")
    commands.add_parser("demo", help="seed a demo owner and page, and print the owner's token")
    secrets = commands.add_parser("secrets", help="encryption keys").add_subparsers(dest="action", required=True)
    secrets.add_parser("rotate", help="re-encrypt stored credentials with the first KOKOUS_SECRET_KEYS key")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"kokous: bad settings: {exc}\n")
        return 2
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    try:
        if args.command == "serve":
            return _serve(settings, args.host, args.port, args.workers)
        if args.command == "migrate":
            asyncio.run(migrate(settings.database_url))
            logger.info("database migrated", extra={"url": _safe_url(settings.database_url)})
            return 0
        if args.command == "users":
            if args.action == "set-seat":
                return asyncio.run(_with_services(settings, lambda s: _set_seat(s, args.email, Seat(args.seat))))
            return asyncio.run(
                _with_services(settings, lambda s: _create_user(s, args.email, args.name, args.timezone))
            )
        if args.command == "tokens":
            if args.action == "list":
                return asyncio.run(_with_services(settings, lambda s: _list_tokens(s, args.email)))
            return asyncio.run(_with_services(settings, lambda s: _revoke_token(s, args.email, args.token_id)))
        if args.command == "domains":
            return asyncio.run(_with_services(settings, lambda s: _add_domain(s, args.host)))
        if args.command == "secrets":
            return asyncio.run(_with_services(settings, _rotate_secrets))
        return asyncio.run(_with_services(settings, _demo))
    except (CommandFailed, DatabaseNotMigrated) as exc:
        sys.stderr.write(f"kokous: {exc}\n")
        return 1


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    if workers < 1:
        raise CommandFailed("--workers must be at least 1")
    if workers > 1 and settings.broadcast_url.startswith("memory"):
        raise CommandFailed(
            "memory:// pub/sub reaches only one process; set KOKOUS_BROADCAST_URL to redis:// or "
            "postgres:// to run several workers"
        )
    asyncio.run(_check_migrated(settings))
    uvicorn.run(
        "server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        lifespan="on",
    )
    return 0


async def _check_migrated(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await ensure_migrated(db.engine)
    finally:
        await db.dispose()


async def _with_services(settings: Settings, work: Callable[[Services], Awaitable[int]]) -> int:
    db = Database(settings.database_url)
    hub = EventHub(settings.broadcast_url)
    try:
        await ensure_migrated(db.engine)
        await hub.connect()
        services = build_services(settings, db=db, hub=hub)
        return await work(services)
    finally:
        await hub.disconnect()
        await db.dispose()


async def _create_user(services: Services, email: str, name: str, timezone: str) -> int:
    result = await services.users.create(email=email, name=name, timezone=timezone)
    if isinstance(result, InvalidInput):
        raise CommandFailed(result.message)
    _out(f"created user {result.user.email} ({result.user.id}); bearer token:")
    _out(result.token)
    return 0


async def _owner(services: Services, email: str) -> User:
    user = await services.users.find_by_email(email)
    if user is None:
        raise CommandFailed(f"no owner with email {email.strip().lower()}")
    return user


async def _set_seat(services: Services, email: str, seat: Seat) -> int:
    user = await _owner(services, email)
    result = await services.users.set_seat(user.id, seat)
    if isinstance(result, NotFound):
        raise CommandFailed(f"no owner with email {user.email}")
    _out(f"{result.email} now has the {result.seat} seat")
    return 0


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


async def _list_tokens(services: Services, email: str) -> int:
    user = await _owner(services, email)
    rows = await services.users.list_tokens(user.id)
    _out("id\tname\tcreated\texpires\tlast used")
    for row in rows:
        _out(
            f"{row.id}\t{row.label or '-'}\t{_when(row.created_at)}\t{_when(row.expires_at)}\t{_when(row.last_used_at)}"
        )
    return 0


async def _revoke_token(services: Services, email: str, token_id: str) -> int:
    user = await _owner(services, email)
    parsed = parse_id(token_id)
    result = (
        NotFound(message="API token not found")
        if parsed is None
        else await services.users.revoke_token(user.id, parsed)
    )
    if isinstance(result, NotFound):
        raise CommandFailed(f"{user.email} has no unrevoked token {token_id}")
    _out(f"revoked token {result.id} ({result.label or '-'}) of {user.email}")
    return 0


async def _add_domain(services: Services, host: str) -> int:
    result = await services.domains.add(host)
    if isinstance(result, InvalidInput):
        raise CommandFailed(result.message)
    _out(f"connected domain {result.host}")
    return 0


async def _rotate_secrets(services: Services) -> int:
    resealed, unreadable = await services.connections.reseal_credentials()
    _out(f"re-encrypted {resealed} stored credentials with the newest key")
    if unreadable:
        raise CommandFailed(
            f"{unreadable} stored credentials match no configured key; keep the old key until they are reconnected"
        )
    return 0


async def _demo(services: Services) -> int:
    """A demo owner with a fresh token and a page, so the API can be tried at once."""
    user = await services.users.find_by_email(DEMO_EMAIL)
    if user is None:
        created = await services.users.create(email=DEMO_EMAIL, name="Demo Owner", timezone="Europe/Helsinki")
        if isinstance(created, InvalidInput):
            raise CommandFailed(created.message)
        user, token = created.user, created.token
    else:
        token = await services.users.issue_token(user.id, label="demo")
    page = await services.pages.public_page(DEMO_SLUG, None)
    if page is None:
        result = await services.pages.create(
            user.id, PageDraft(slug=DEMO_SLUG, name="Meet the demo owner", durations=[30, 60])
        )
        if not isinstance(result, PageView):
            raise CommandFailed(result.message if not isinstance(result, SlugTaken) else "the demo slug is taken")
        page = result
    _out(f"demo owner {user.email}; page {page.url} ({page.status.value})")
    _out(
        "try: curl -H 'Authorization: Bearer <token>' -H 'content-type: application/json' "
        f'-d \'{{"query":"{{ me {{ email schedulingPages {{ url }} }} }}"}}\' {services.links.app_origin}/graphql'
    )
    _out(token)
    return 0
