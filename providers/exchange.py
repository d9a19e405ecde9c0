"""On-premises Exchange over EWS with exchangelib: connect with a form, read busy time, write bookings.

exchangelib is synchronous (requests), so every call runs in a worker thread. It keeps its HTTP timeout and
adapter class as class-wide state and caches one ``Protocol`` per (endpoint, credentials) in a process-wide
dictionary. This adapter changes none of that global state: it builds its own ``Protocol`` subclass per
connection carrying this connection's timeout and trust store, and puts it in exchangelib's cache in place
of any older one for the same mailbox, so the ``Account`` uses it. The one global change is registering our
idempotency-key extended property on ``CalendarItem`` (exchangelib's only way to query one), done once.

Autodiscover is done here with exchangelib's SOAP ``GetUserSettings`` against ``https://<domain>`` and
``https://autodiscover.<domain>`` (or ``ExchangeConfig.autodiscover_url``) so that it honours the timeout and
CA bundle; DNS SRV records and HTTP redirects are not followed: the owner then enters the EWS URL.
Busy time is a CalendarView (FindItem) on each asked-for folder, so it is per calendar; EWS sends its
times in UTC. The idempotency key lives in a PublicStrings extended property on the created item.

Incremental sync is SyncFolderItems: its sync state is our sync token, and a round with nothing new is one
SOAP call. Changed single items are read with GetItem; a change to a series, or any deletion (EWS names
only the deleted item's id, and a deleted series' occurrences carry other ids), reads the whole window
again with a CalendarView instead (``full``), since only that shows what the calendar looks like now.

Push is an EWS push subscription on the calendar folder (``watch``): Exchange POSTs a SOAP ``SendNotification``
to our callback URL on each change, and a ``StatusEvent`` every ``STATUS_MINUTES`` when nothing changed; each
must be answered with a ``SendNotificationResult`` (``push_answer``), ``OK`` to keep the subscription or
``Unsubscribe`` to end it, which is the only way to end one. A subscription not heard from for
``PUSH_HEARTBEAT`` (twice the status frequency, as Microsoft advises) is taken as gone. EWS has no field for a
client secret, so the channel id and its token ride in the callback URL's query. ``read_push`` reads a
notification for the webhook, so that exchangelib stays inside this package.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.parsers import expat

import anyio.to_thread
import requests
import requests.adapters
from exchangelib import (
    DELEGATE,
    Account,
    Attendee,
    CalendarItem,
    Configuration,
    Credentials,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    FailFast,
    Mailbox,
    Version,
)
from exchangelib import errors as ews
from exchangelib.autodiscover.protocol import AutodiscoverProtocol
from exchangelib.fields import InvalidField
from exchangelib.folders import DEEP, Calendar, FolderCollection, Root
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY
from exchangelib.properties import Body, StatusEvent
from exchangelib.protocol import Protocol
from exchangelib.services import SendNotification
from exchangelib.version import (
    EXCHANGE_2007,
    EXCHANGE_2007_SP1,
    EXCHANGE_2010,
    EXCHANGE_2010_SP1,
    EXCHANGE_2010_SP2,
    EXCHANGE_2013,
    EXCHANGE_2013_SP1,
    EXCHANGE_2016,
    EXCHANGE_2019,
)

from providers.base import (
    AppMark,
    BusyBlock,
    CalendarAccess,
    CalendarEvent,
    EventChanges,
    EventDraft,
    ProviderCalendar,
    WatchChannel,
    WrittenEvent,
)
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
    ProviderUnsupported,
    SyncTokenExpired,
    brief,
)
from providers.outbound import UNRESTRICTED, DestinationRefused, OutboundAdapter, OutboundPolicy
from providers.plumbing import aware_utc, trust_context

log = logging.getLogger(__name__)

T = TypeVar("T")

# Oldest first; the form's and the stored version names.
VERSION_BUILDS: dict[str, Any] = {
    "EXCHANGE_2007": EXCHANGE_2007,
    "EXCHANGE_2007_SP1": EXCHANGE_2007_SP1,
    "EXCHANGE_2010": EXCHANGE_2010,
    "EXCHANGE_2010_SP1": EXCHANGE_2010_SP1,
    "EXCHANGE_2010_SP2": EXCHANGE_2010_SP2,
    "EXCHANGE_2013": EXCHANGE_2013,
    "EXCHANGE_2013_SP1": EXCHANGE_2013_SP1,
    "EXCHANGE_2016": EXCHANGE_2016,
    "EXCHANGE_2019": EXCHANGE_2019,
}
MINIMUM_VERSION = "EXCHANGE_2010_SP2"
TWO_FACTOR_HINT = "If the account uses two-factor authentication, use an app password instead of your password."
NOT_BUSY = frozenset({"Free", "WorkingElsewhere", "NoData"})
KEY_FIELD = "kokous_idempotency_key"
_key_registration = threading.Lock()
_TRANSIENT = (ews.ErrorTimeoutExpired, ews.ErrorInternalServerTransientError, ews.ErrorTooManyObjectsOpened)
# What a busy-time answer reads of an item: enough to tell its time and whether it blocks time.
_BUSY_FIELDS = ("start", "end", "legacy_free_busy_status", "is_cancelled", "type")
# What a sync round reads besides, for calendar sync: who is invited, who organizes it, whether it
# is all-day (then exchangelib gives dates in the item's own zone, so the zones come too) and
# whether we wrote it. Attendees are not in FindItem's answers: exchangelib reads them with GetItem.
_EVENT_FIELDS = (
    *_BUSY_FIELDS,
    "subject",
    "required_attendees",
    "optional_attendees",
    "my_response_type",
    "is_all_day",
    "_start_timezone",
    "_end_timezone",
    KEY_FIELD,
)
SYNC_PAGE = 512  # the most changes EWS returns per SyncFolderItems call
STATUS_MINUTES = 15  # the StatusFrequency asked for: a status ping when nothing changed for so long
PUSH_HEARTBEAT = timedelta(minutes=2 * STATUS_MINUTES)  # silent for so long, a push subscription is taken as gone
# What a push subscription reports: every way an item can appear in, change in, or leave the calendar folder.
PUSH_EVENTS = ("CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent", "CopiedEvent")


@dataclass(frozen=True)
class ExchangeForm:
    """What the owner types in; empty ``ews_url`` means autodiscover, empty ``version`` means detect."""

    email: str
    password: str = field(repr=False)
    username: str | None = None
    ews_url: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ExchangeConfig:
    """Deployment settings: extra trusted CAs (PEM), per-request timeout, an autodiscover endpoint override."""

    ca_bundle: str | None = None
    timeout: float = 10.0
    autodiscover_url: str | None = None
    outbound: OutboundPolicy = UNRESTRICTED  # which addresses EWS and autodiscover may be on (SEC-1)


@dataclass(frozen=True)
class ExchangeCredentials:
    """A tested connection: where EWS is, who logs in, the server version and the auth scheme it offered."""

    email: str
    username: str
    password: str = field(repr=False)
    ews_url: str
    version: str
    auth_type: str | None = None

    @property
    def account_email(self) -> str:
        return self.email

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ExchangeCredentials:
        data = json.loads(text)
        return cls(
            email=data["email"],
            username=data["username"],
            password=data["password"],
            ews_url=data["ews_url"],
            version=data["version"],
            auth_type=data.get("auth_type"),
        )


# -- transport: timeout, trust store and outbound gate per connection ---------------------------


@dataclass(frozen=True)
class _Transport:
    timeout: float
    context: ssl.SSLContext | None
    outbound: OutboundPolicy = UNRESTRICTED

    @classmethod
    def from_config(cls, config: ExchangeConfig) -> _Transport:
        return cls(config.timeout, trust_context(config.ca_bundle) if config.ca_bundle else None, config.outbound)

    def mount(self, session: requests.Session, prefix: str) -> requests.Session:
        """Replace exchangelib's adapter (one connection, no urllib3 retries) by ours with the same pool.

        Every request of the session passes the outbound gate: the endpoint's prefix and any other
        http(s) URL alike (exchangelib follows no redirects, but nothing may reach requests' own adapter).
        """
        adapter = OutboundAdapter(
            self.context, self.outbound, pool_block=True, pool_connections=1, pool_maxsize=1, max_retries=0
        )
        for mounted in (prefix, "https://", "http://"):
            session.mount(mounted, adapter)
        if self.outbound.restrict:
            session.trust_env = False  # an environment proxy would look the name up past the gate
        return session


class _OwnTransport:
    """Gives an exchangelib protocol this connection's timeout and trust store instead of the class-wide ones."""

    def __init__(self, *, config: Any, transport: _Transport) -> None:
        super().__init__(config=config)  # type: ignore[call-arg]
        self.TIMEOUT = transport.timeout
        self._transport = transport

    def raw_session(self, prefix: str, **kwargs: Any) -> requests.Session:
        return self._transport.mount(super().raw_session(prefix, **kwargs), prefix)  # type: ignore[misc]


class _EwsProtocol(_OwnTransport, Protocol):  # type: ignore[misc]
    """The EWS endpoint."""


class _AutodiscoverProtocol(_OwnTransport, AutodiscoverProtocol):  # type: ignore[misc]
    """The autodiscover endpoint."""


def _open_account(credentials: ExchangeCredentials, version: Any, transport: _Transport) -> Any:
    """An Account on our own Protocol; sends nothing yet."""
    config = Configuration(
        service_endpoint=credentials.ews_url,
        credentials=Credentials(credentials.username, credentials.password),
        version=version,
        auth_type=credentials.auth_type,  # None: taste the WWW-Authenticate header the server sends
        retry_policy=FailFast(),  # never wait inside a worker thread; callers retry
    )
    with suppress(KeyError):
        del Protocol[config]  # forget an older protocol for this mailbox; it may carry another timeout
    protocol = _EwsProtocol(config=config, transport=transport)  # cached, so Account picks it up
    account = Account(
        credentials.email, config=config, autodiscover=False, access_type=DELEGATE, default_timezone=EWSTimeZone("UTC")
    )
    account.protocol = protocol
    return account


# -- errors -------------------------------------------------------------------------------------


@contextmanager
def _provider_errors() -> Iterator[None]:
    """Translate exchangelib and requests failures into the provider error tree."""
    try:
        yield
    except ProviderError:
        raise
    except ews.UnauthorizedError as error:
        raise ProviderAuthError(
            f"Exchange refused the user name or password. {TWO_FACTOR_HINT}", code="UnauthorizedError"
        ) from error
    except ews.ErrorAccessDenied as error:
        raise ProviderAuthError(
            "Exchange denied this user access to the mailbox's calendar.", code="ErrorAccessDenied", detail=str(error)
        ) from error
    except ews.ErrorNonExistentMailbox as error:
        raise ProviderRefused(
            "Exchange has no mailbox for this address.", code="ErrorNonExistentMailbox", detail=str(error)
        ) from error
    except ews.ErrorServerBusy as error:
        if isinstance(error.__context__, _TRANSIENT):  # exchangelib re-raises a 503 or overload as "busy"
            raise ProviderUnavailable(
                "Exchange is unavailable.", code="ErrorServerBusy", detail=str(error.__context__)
            ) from error
        raise ProviderRateLimited(
            "Exchange is throttling requests.", retry_after=error.back_off, code="ErrorServerBusy"
        ) from error
    except (ews.ErrorItemNotFound, ews.ErrorFolderNotFound) as error:
        raise ProviderNotFound(
            "Exchange has no such item or folder.", code=type(error).__name__, detail=str(error)
        ) from error
    except ews.ErrorInvalidServerVersion as error:
        raise ProviderUnsupported(
            f"The Exchange server accepts none of the EWS versions Kokous speaks. {_minimum_text()}",
            code="ErrorInvalidServerVersion",
        ) from error
    except ews.RedirectError as error:
        raise ProviderRefused(
            "The EWS URL redirects elsewhere; check the EWS URL (it usually ends in /EWS/Exchange.asmx).",
            code="RedirectError",
            detail=f"redirected to {error.url}",
        ) from error
    except (*_TRANSIENT, ews.ErrorInternalServerError) as error:
        raise ProviderUnavailable(
            "Exchange did not answer in time.", code=type(error).__name__, detail=str(error)
        ) from error
    except ews.ResponseMessageError as error:
        raise ProviderRefused("Exchange refused the request.", code=type(error).__name__, detail=str(error)) from error
    except (ews.TransportError, ews.CASError, requests.RequestException, OSError) as error:
        raise ProviderUnavailable(_unreachable_text(error), code=type(error).__name__, detail=str(error)) from error
    except ews.EWSError as error:
        raise ProviderRefused("Exchange refused the request.", code=type(error).__name__, detail=str(error)) from error


def _unreachable_text(error: BaseException) -> str:
    """Say so when the server's certificate is the problem (exchangelib hides the SSLError in a TransportError)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, (requests.exceptions.SSLError, ssl.SSLError)):
            return (
                "The Exchange server's TLS certificate is not trusted. "
                "If it comes from an internal certificate authority, add that CA to the CA bundle."
            )
        cause = cause.__cause__ or cause.__context__
    return "Exchange could not be reached."


async def _in_thread(function: Callable[[], T]) -> T:
    """Run a blocking exchangelib call in a worker thread, with its errors translated."""

    def guarded() -> T:
        with _provider_errors():
            return function()

    return await anyio.to_thread.run_sync(guarded)


# -- versions and times -------------------------------------------------------------------------


def _label(name: str) -> str:
    return name.replace("EXCHANGE_", "Exchange ").replace("_", " ")


def _minimum_text() -> str:
    return f"Kokous needs {_label(MINIMUM_VERSION)} or newer."


def _version_name(build: Any) -> str:
    """The newest known version name whose build is not newer than ``build``."""
    names = [name for name, known in VERSION_BUILDS.items() if known <= build]
    return names[-1] if names else "EXCHANGE_2007"


def _check_version(name: str, build: Any | None = None) -> None:
    if VERSION_BUILDS[name] < VERSION_BUILDS[MINIMUM_VERSION]:
        seen = f" (build {build})" if build is not None else ""
        raise ProviderUnsupported(f"This Exchange server is {_label(name)}{seen}. {_minimum_text()}")


def _ews_time(moment: datetime, zone: Any) -> Any:
    return EWSDateTime.from_datetime(moment.astimezone(UTC)).astimezone(zone)


def _utc(moment: datetime) -> datetime:
    """A plain aware UTC datetime from exchangelib's EWSDateTime."""
    return datetime.fromisoformat(moment.isoformat()).astimezone(UTC)


def _zone(name: str) -> Any:
    """The event's zone as exchangelib knows it (it needs a Windows zone name); UTC when it has none."""
    try:
        return EWSTimeZone(name)
    except (ews.UnknownTimeZone, ValueError):
        log.warning("No Windows time zone for %s; writing the event in UTC", name)
        return EWSTimeZone("UTC")


# -- connecting ---------------------------------------------------------------------------------


async def connect(form: ExchangeForm, config: ExchangeConfig) -> ExchangeCredentials:
    """Find EWS, log in, confirm the server version and read the calendar folder before anything is saved."""
    if "@" not in form.email:
        raise ProviderRefused(f"{form.email!r} is not an email address.")
    if form.version is not None:
        if form.version not in VERSION_BUILDS:
            raise ProviderRefused(f"Unknown Exchange version {form.version!r}.")
        _check_version(form.version)
    transport = _Transport.from_config(config)
    return await _in_thread(lambda: _connect(form, config, transport))


def _connect(form: ExchangeForm, config: ExchangeConfig, transport: _Transport) -> ExchangeCredentials:
    username = form.username or form.email
    ews_url = form.ews_url or _autodiscover(form.email, Credentials(username, form.password), config, transport)
    version = Version(build=VERSION_BUILDS[form.version]) if form.version else None  # None: probe the server
    pending = ExchangeCredentials(form.email, username, form.password, ews_url, form.version or "")
    account = _open_account(pending, version, transport)
    try:
        calendar = Calendar.get_distinguished(root=Root(account=account))  # the connection test
        build = account.version.build  # from the server's answer, even when the form named a version
        name = _version_name(build)
        _check_version(name, build)
        log.info("Connected Exchange mailbox at %s (%s, build %s, calendar %s)", ews_url, name, build, calendar.name)
        return ExchangeCredentials(form.email, username, form.password, ews_url, name, account.protocol.auth_type)
    finally:
        _close_test_protocol(account.protocol)


def _close_test_protocol(protocol: Any) -> None:
    """Close the connection test's sessions and drop it from exchangelib's cache, passed or failed.

    Otherwise every attempt (a wrong password too) would stay cached for the process's life,
    holding its credentials and a kept-alive connection to the server.
    """
    with suppress(KeyError):
        if Protocol[protocol.config][0] is protocol:
            del Protocol[protocol.config]
    protocol.close()


def _autodiscover(email: str, credentials: Any, config: ExchangeConfig, transport: _Transport) -> str:
    """The EWS URL from SOAP autodiscover (GetUserSettings) for this address."""
    domain = email.rsplit("@", 1)[1]
    candidates = (
        [config.autodiscover_url]
        if config.autodiscover_url
        else [
            f"https://{domain}/autodiscover/autodiscover.svc",
            f"https://autodiscover.{domain}/autodiscover/autodiscover.svc",
        ]
    )
    refused: DestinationRefused | None = None
    for url in candidates:
        protocol = _AutodiscoverProtocol(
            config=Configuration(service_endpoint=url, credentials=credentials, retry_policy=FailFast()),
            transport=transport,
        )
        try:
            answer = protocol.get_user_settings(user=email, settings=["external_ews_url", "internal_ews_url"])
            answer.raise_errors()
        except ews.ErrorNonExistentMailbox:
            raise
        except DestinationRefused as error:  # this candidate is inside; the next one may be outside
            log.info("Autodiscover at %s refused by the outbound gate", url)
            refused = error
            continue
        except (ews.TransportError, requests.RequestException) as error:  # not there, or no answer for us
            log.info("Autodiscover at %s failed: %s", url, error)
            continue
        finally:
            protocol.close()
        ews_url = answer.user_settings.get("external_ews_url") or answer.user_settings.get("internal_ews_url")
        if ews_url:
            return str(ews_url)  # connecting to it passes the outbound gate like any request
    if refused is not None:
        raise refused
    raise ProviderUnavailable(
        f"Autodiscover found no Exchange server for {domain}. Enter the EWS URL "
        f"(usually https://mail.{domain}/EWS/Exchange.asmx).",
        code="AutoDiscoverFailed",
    )


# -- the calendar client ------------------------------------------------------------------------


class _IdempotencyKey(ExtendedProperty):  # type: ignore[misc]
    """Our booking's idempotency key, stored on the calendar item it created."""

    distinguished_property_set_id = "PublicStrings"
    property_name = "KokousIdempotencyKey"
    property_type = "String"


def _register_key_property() -> None:
    """Register the key on CalendarItem once per process (exchangelib keeps registrations globally)."""
    with _key_registration:
        try:
            CalendarItem.get_field_by_fieldname(KEY_FIELD)
        except InvalidField:
            CalendarItem.register(KEY_FIELD, _IdempotencyKey)


class ExchangeCalendarClient:
    """A CalendarClient for one Exchange mailbox."""

    heartbeat: timedelta = PUSH_HEARTBEAT  # a push subscription silent for so long is taken as gone

    def __init__(self, config: ExchangeConfig, credentials: ExchangeCredentials) -> None:
        _register_key_property()
        self._credentials = credentials
        version = Version(build=VERSION_BUILDS[credentials.version]) if credentials.version in VERSION_BUILDS else None
        self._account = _open_account(credentials, version, _Transport.from_config(config))
        self._root = Root(account=self._account)  # a handle for folder ids; fetches nothing

    async def revoke(self) -> None:
        """Exchange logs in with a password; there is no grant to revoke."""

    async def aclose(self) -> None:
        """Close the kept-alive HTTP sessions of this mailbox's connection."""
        await _in_thread(self._account.protocol.close)

    def credentials_json(self) -> str:
        return self._credentials.to_json()

    def _folder(self, calendar_id: str) -> Any:
        return Calendar(root=self._root, id=calendar_id)

    async def list_calendars(self) -> list[ProviderCalendar]:
        return await _in_thread(self._list_calendars)

    def _list_calendars(self) -> list[ProviderCalendar]:
        primary = Calendar.get_distinguished(root=self._root)
        calendars = [ProviderCalendar(primary.id, primary.name, CalendarAccess.OWNER, primary=True)]
        for folder in FolderCollection(account=self._account, folders=[primary]).find_folders(depth=DEEP):
            if isinstance(folder, Exception):
                raise folder
            if (folder.folder_class or "").startswith("IPF.Appointment"):
                calendars.append(ProviderCalendar(folder.id, folder.name or "", CalendarAccess.OWNER))
        return calendars

    async def busy_intervals(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> list[BusyBlock]:
        aware_utc(start, "start"), aware_utc(end, "end")
        return await _in_thread(lambda: self._busy(list(calendar_ids), start, end))

    def _busy(self, calendar_ids: list[str], start: datetime, end: datetime) -> list[BusyBlock]:
        return [
            BusyBlock(calendar_id, event.start, event.end)
            for calendar_id in calendar_ids
            for event in self._view(calendar_id, start, end, _BUSY_FIELDS)
            if event.busy
        ]

    def _view(
        self, calendar_id: str, start: datetime, end: datetime, fields: Sequence[str] = _EVENT_FIELDS
    ) -> list[CalendarEvent]:
        """Every item overlapping [start, end), series expanded into their occurrences (a CalendarView)."""
        utc = EWSTimeZone("UTC")
        folder = self._folder(calendar_id)
        view = folder.view(start=_ews_time(start, utc), end=_ews_time(end, utc))
        items: Iterable[Any] = view.only(*fields)
        if any(CalendarItem.get_field_by_fieldname(name).is_complex for name in fields):
            # FindItem cannot answer these: the view's ids, then GetItem, validated against this
            # folder (exchangelib's own two steps would look up the mailbox's root folder first).
            found = [(item.id, item.changekey) for item in view.only("id", "changekey")]
            items = self._account.fetch(ids=found, folder=folder, only_fields=fields) if found else []
        events = []
        for item in items:
            if isinstance(item, ews.ErrorItemNotFound):
                continue  # deleted between the two calls
            if isinstance(item, Exception):
                raise item
            event = _event(item)
            # A view also returns items that end exactly at its start.
            if event.start < end and event.end > start:
                events.append(event)
        return events

    async def list_changes(
        self, calendar_id: str, *, sync_token: str | None, start: datetime, end: datetime
    ) -> EventChanges:
        """SyncFolderItems from the token (or from nothing, then a CalendarView of the window); an
        invalid or expired sync state is ``SyncTokenExpired``."""
        start, end = aware_utc(start, "start"), aware_utc(end, "end")
        return await _in_thread(lambda: self._changes(calendar_id, sync_token, start, end))

    def _changes(self, calendar_id: str, sync_token: str | None, start: datetime, end: datetime) -> EventChanges:
        # The state is taken before the view: a change made in between comes again next round, never lost.
        state, changed, deleted = self._sync(calendar_id, sync_token)
        if sync_token is not None and not deleted:
            events = self._fetch(calendar_id, changed)
            if events is not None:
                return EventChanges(tuple(events), (), state, full=False)
        if sync_token is not None:
            log.info("Exchange calendar %s: a series or a deletion changed; reading its window again", calendar_id)
        return EventChanges(tuple(self._view(calendar_id, start, end)), (), state, full=True)

    def _sync(self, calendar_id: str, sync_state: str | None) -> tuple[str, list[str], bool]:
        """Every page of SyncFolderItems from ``sync_state`` (ids only): the new state, the ids
        created or updated since, and whether anything was deleted."""
        folder = self._folder(calendar_id)
        changed: dict[str, None] = {}  # ordered, each id once
        deleted = False
        try:
            for change in folder.sync_items(sync_state=sync_state, only_fields=["id"], max_changes_returned=SYNC_PAGE):
                if isinstance(change, Exception):
                    raise change
                kind, item = change
                if kind == "delete":
                    deleted = True
                elif kind in ("create", "update"):  # a read_flag_change changes no time
                    changed[item.id] = None
        except ews.ErrorInvalidSyncStateData as error:
            raise SyncTokenExpired(
                "Exchange no longer knows this calendar's sync state", code="ErrorInvalidSyncStateData"
            ) from error
        if not folder.item_sync_state:
            raise ProviderUnavailable("Exchange ended a sync without a sync state")
        return str(folder.item_sync_state), list(changed), deleted

    def _fetch(self, calendar_id: str, item_ids: list[str]) -> list[CalendarEvent] | None:
        """The changed items as events (GetItem); None when one is part of a series or gone since."""
        if not item_ids:
            return []
        items = self._account.fetch(
            ids=[(item_id, None) for item_id in item_ids], folder=self._folder(calendar_id), only_fields=_EVENT_FIELDS
        )
        events = []
        for item in items:
            if isinstance(item, ews.ErrorItemNotFound):
                return None  # deleted after the sync said it changed
            if isinstance(item, Exception):
                raise item
            if not isinstance(item, CalendarItem):
                continue  # a meeting message filed in the calendar holds no time
            if item.type != "Single":
                return None
            events.append(_event(item))
        return events

    async def watch(
        self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl: timedelta
    ) -> WatchChannel:
        """A push subscription on the calendar folder, posting to ``address`` with the channel id and token
        in its query. ``ttl`` is not used: the subscription lasts while our webhook answers ``OK``, so the
        channel's end is one heartbeat ahead, moved on by every notification. An Exchange that refuses push
        subscriptions answers an error: ``ProviderRefused``, and the calendar is polled instead."""
        url = _callback_url(address, channel_id=channel_id, token=token)
        folder = self._folder(calendar_id)
        subscription_id, _watermark = await _in_thread(
            lambda: folder.subscribe_to_push(url, event_types=PUSH_EVENTS, status_frequency=STATUS_MINUTES)
        )
        if not subscription_id:
            raise ProviderUnavailable("Exchange made a push subscription without a subscription id")
        return WatchChannel(channel_id, str(subscription_id), datetime.now(UTC) + self.heartbeat)

    async def stop_watch(self, channel_id: str, resource_id: str) -> None:
        """Nothing to call: EWS cannot end a push subscription by request (``Unsubscribe`` is for pull and
        streaming ones only). Our webhook answers ``Unsubscribe`` (``push_answer(keep=False)``) to the next
        notification of a subscription we no longer keep, and Exchange ends it then."""

    async def create_event(self, calendar_id: str, draft: EventDraft) -> WrittenEvent:
        aware_utc(draft.start, "start"), aware_utc(draft.end, "end")
        return await _in_thread(lambda: self._create(calendar_id, draft))

    def _create(self, calendar_id: str, draft: EventDraft) -> WrittenEvent:
        folder = self._folder(calendar_id)
        for existing in folder.filter(**{KEY_FIELD: draft.idempotency_key}).only("id"):
            if isinstance(existing, Exception):
                raise existing
            log.info("Exchange item for key %s already exists", draft.idempotency_key)
            return WrittenEvent(calendar_id, existing.id)
        item = CalendarItem(account=self._account, folder=folder, legacy_free_busy_status="Busy")
        setattr(item, KEY_FIELD, draft.idempotency_key)
        _fill(item, draft)
        item.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
        return WrittenEvent(calendar_id, item.id)

    async def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> WrittenEvent:
        aware_utc(draft.start, "start"), aware_utc(draft.end, "end")
        return await _in_thread(lambda: self._update(calendar_id, event_id, draft))

    def _update(self, calendar_id: str, event_id: str, draft: EventDraft) -> WrittenEvent:
        folder = self._folder(calendar_id)
        [item] = self._account.fetch(ids=[(event_id, None)], folder=folder, only_fields=["subject"])
        if isinstance(item, Exception):
            raise item
        _fill(item, draft)
        item.save(update_fields=list(_FILLED), send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
        return WrittenEvent(calendar_id, item.id)

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        await _in_thread(lambda: self._delete(calendar_id, event_id))

    def _delete(self, calendar_id: str, event_id: str) -> None:
        item = CalendarItem(account=self._account, folder=self._folder(calendar_id), id=event_id)
        try:
            item.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
        except ews.ErrorItemNotFound:
            log.info("Exchange item %s was already gone", event_id)


_FILLED = ("subject", "body", "location", "start", "end", "required_attendees")


def _event(item: Any) -> CalendarEvent:
    """A calendar item as a sync keeps it; a free or cancelled one does not block time.

    EWS shows no other app's marks (extended properties are read only by name): only ours, the
    idempotency key, tells an app's event here.
    """
    start, end = _item_times(item)
    busy = item.legacy_free_busy_status not in NOT_BUSY and not item.is_cancelled
    response = item.my_response_type
    attendees = [*(item.required_attendees or ()), *(item.optional_attendees or ())]
    return CalendarEvent(
        item.id,
        start,
        end,
        busy=busy,
        title=item.subject or "",
        attendees=tuple(
            str(attendee.mailbox.email_address).lower()
            for attendee in attendees
            if attendee.mailbox is not None and attendee.mailbox.email_address
        ),
        organizer_self=response in (None, "Organizer"),
        all_day=bool(item.is_all_day),
        free=item.legacy_free_busy_status == "Free",
        declined=response == "Decline",
        cancelled=bool(item.is_cancelled),
        app=AppMark(ours=True, what="Kokous's booking key") if getattr(item, KEY_FIELD, None) else None,
    )


def _item_times(item: Any) -> tuple[datetime, datetime]:
    """Aware UTC; exchangelib turns an all-day item's times into dates in its own zone (the end's
    date inclusive), which are put back as midnights here."""
    if isinstance(item.start, datetime):
        return _utc(item.start), _utc(item.end)
    zone = item._start_timezone or EWSTimeZone("UTC")
    start = datetime.combine(item.start, time(), zone)
    end = datetime.combine(item.end + timedelta(days=1), time(), item._end_timezone or zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _fill(item: Any, draft: EventDraft) -> None:
    """Copy the draft onto a CalendarItem: the fields named in ``_FILLED``."""
    zone = _zone(draft.timezone)
    item.subject = draft.summary
    item.body = Body(draft.description) if draft.description else None  # plain text, never HTML
    item.location = draft.location or None
    item.start = _ews_time(draft.start, zone)
    item.end = _ews_time(draft.end, zone)
    item.required_attendees = [
        Attendee(mailbox=Mailbox(email_address=attendee.email, name=attendee.name or None), response_type="Unknown")
        for attendee in draft.attendees
    ] or None


def _callback_url(address: str, *, channel_id: str, token: str) -> str:
    """``address`` with the channel id and its token added to the query (EWS has no field for a secret)."""
    parts = urlsplit(address)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("channel", channel_id), ("token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- push notifications, for the webhook ------------------------------------------------------


@dataclass(frozen=True)
class PushNotice:
    """One notification of a push subscription: ``changed`` is false when it holds only status events."""

    subscription_id: str
    changed: bool


def read_push(body: bytes) -> list[PushNotice]:
    """The notifications in the body of an Exchange ``SendNotification`` request.

    ``ValueError`` for anything else: not well-formed XML, a document type declaration (a SOAP message
    carries none), another SOAP operation or a fault, an error response message, a notification
    without a subscription id, or none at all.
    """
    _check_well_formed(body)
    try:
        notifications = list(SendNotification(protocol=None).parse(body))
        notices = []
        for notification in notifications:
            if isinstance(notification, Exception):
                raise notification
            if not notification.subscription_id:
                raise ValueError("not an Exchange push notification: it has no subscription id")
            events = notification.events or []
            changed = any(not isinstance(event, StatusEvent) for event in events)
            notices.append(PushNotice(str(notification.subscription_id), changed))
    except (ews.EWSError, AttributeError, TypeError) as error:  # exchangelib's reading of unexpected shapes
        raise ValueError(f"not an Exchange push notification: {brief(error)}") from error
    if not notices:
        raise ValueError("not an Exchange push notification: it holds no notification")
    return notices


def _check_well_formed(body: bytes) -> None:
    """Refuse a body that is not well-formed XML (exchangelib's parser recovers: it reads a truncated body as
    far as it goes), or that declares a DTD (no entity is ever expanded)."""

    def refuse_dtd(*_: object) -> None:
        raise ValueError("not an Exchange push notification: it declares a document type")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse_dtd
    try:
        parser.Parse(body, True)
    except expat.ExpatError as error:
        raise ValueError(f"not an Exchange push notification: {error}") from error


def push_answer(*, keep: bool) -> bytes:
    """The SOAP envelope answering a push notification (send it with status 200, ``text/xml; charset=utf-8``):
    a ``SendNotificationResult`` whose ``SubscriptionStatus`` is ``OK`` (keep sending) or ``Unsubscribe``."""
    service = SendNotification(protocol=None)
    return bytes(service.ok_payload() if keep else service.unsubscribe_payload())
