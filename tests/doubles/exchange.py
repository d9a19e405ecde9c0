"""An on-premises Exchange double: EWS SOAP at /EWS/Exchange.asmx and SOAP autodiscover, as exchangelib speaks them.

It answers the operations the Exchange adapter sends (ConvertId for version probing, GetFolder, FindFolder,
FindItem with a CalendarView or a restriction on an extended property, GetItem, CreateItem, UpdateItem,
DeleteItem, SyncFolderItems, Subscribe with a push subscription request, and autodiscover's GetUserSettings),
puts ``t:ServerVersionInfo`` in every SOAP header, refuses a requested schema newer than the simulated server
with ``ErrorInvalidServerVersion``, and checks HTTP Basic credentials (401 with ``WWW-Authenticate: Basic``
otherwise). Items keep aware datetimes and go out in UTC (``...Z``), as EWS sends them. An item holds only
the fields asked for (an ItemShape's AdditionalProperties), attendees and the organizer among them
(``add_meeting``: required and optional attendees, someone else's invitation with MyResponseType, all-day
items with their StartTimeZone and EndTimeZone).

A recurring series is one stored item (``RecurringMaster``); a CalendarView expands it into occurrences
with ids of their own (``Occurrence``) and never shows the master, as EWS does. Every change to an item
(through EWS or a test helper) goes into its folder's change log, which SyncFolderItems reads as Exchange
does: from an opaque sync state, at most ``MaxChangesReturned`` (1-512) changes a call with
``IncludesLastItemInRange``, one change per item (a Create then Update is one Create, a Create then Delete
nothing), an unknown or forgotten state ``ErrorInvalidSyncStateData``.

Push subscriptions (``Subscribe`` with ``m:PushSubscriptionRequest``) are checked as Exchange's schema and
response codes have it: FolderIds of the mailbox's own folders (``ErrorFolderNotFound`` otherwise), EventTypes
from the schema's list, StatusFrequency 1-1440 (default 30) and a URL, in that order, else a SOAP fault
``ErrorSchemaValidation``; a URL that is empty, 2083 characters or longer, or not http(s) is
``ErrorInvalidPushSubscriptionUrl`` (so is http when ``require_https`` is set; Exchange itself takes http);
more live subscriptions than ``max_push_subscriptions`` (a throttling policy's cap) is
``ErrorExceededSubscriptionCount``; a Watermark the server never handed out is ``ErrorInvalidWatermark``, a
known one replays the folder's changes since it (moves among them as deletes). The answer carries
``m:SubscriptionId`` and ``m:Watermark``. Every change to an item of a subscribed folder then queues a
``SendNotification`` POST to the subscription's URL, posted by a background thread
(``tests.doubles.notifier``) as Exchange's Client Access server does: ``t:CreatedEvent`` for a new item,
``t:ModifiedEvent`` for a changed one (deleting one occurrence modifies its series), ``t:DeletedEvent`` for a
hard or soft delete through EWS, and ``t:MovedEvent`` (to Deleted Items, with the item's new id) for a delete
in Outlook (``delete_item``) or a DeleteItem with ``MoveToDeletedItems``. Changes queued before the thread
picks them up go out together in one notification; ``send_status`` posts one holding only a ``t:StatusEvent``,
as Exchange does every StatusFrequency minutes when nothing happened (the double keeps no clock: tests send
them).

The receiver's answer decides: a 2xx whose body is a ``SendNotificationResult`` with ``SubscriptionStatus``
``OK`` keeps the subscription, ``Unsubscribe`` ends it. Anything else (another status, an unreadable body,
no answer within ``notification_timeout``) is a failed delivery. Exchange retries a failed notification
with growing pauses for up to StatusFrequency minutes and then drops the subscription; the double retries at
once, ``push_retries`` times, and then drops it. Every attempt is in ``push_notifications_sent``.
Subscriptions live in the Client Access server's memory: ``drop_push_subscriptions`` loses them all silently,
as a restart does.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import ssl
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.notifier import Notifier
from tests.doubles.server import DoubleServer, TLSFiles

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
MESSAGES = "http://schemas.microsoft.com/exchange/services/2006/messages"
TYPES = "http://schemas.microsoft.com/exchange/services/2006/types"
ERRORS = "http://schemas.microsoft.com/exchange/services/2006/errors"
AUTODISCOVER = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
EWS_PATH = "/EWS/Exchange.asmx"
AUTODISCOVER_PATH = "/autodiscover/autodiscover.svc"
MAX_CHANGES_RETURNED = 512  # the schema's upper bound of SyncFolderItems' MaxChangesReturned
ITEM_READS = "<m:ItemShape>"  # a ``fail`` match for every request that reads items: FindItem, GetItem, SyncFolderItems
# The schema's NotificationEventTypeType; StatusEvent is sent but cannot be asked for.
PUSH_EVENT_TYPES = (
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
)
# PushSubscriptionRequest's children in schema order, and whether each is required.
PUSH_REQUEST_FIELDS = (
    ("FolderIds", False),
    ("EventTypes", True),
    ("Watermark", False),
    ("StatusFrequency", False),
    ("URL", True),
    ("CallerData", False),
)
STATUS_FREQUENCIES = range(1, 1441)  # SubscriptionStatusFrequencyType, minutes
DEFAULT_STATUS_FREQUENCY = 30
PUSH_URL_MAX = 2083  # a push URL must be shorter than this
SEND_NOTIFICATION_ACTION = f'"{MESSAGES}/SendNotification"'
_EVENT_OF_CHANGE = {"Create": "CreatedEvent", "Update": "ModifiedEvent", "Delete": "DeletedEvent"}

# (major, minor, build, the newest RequestServerVersion the server accepts)
SERVER_VERSIONS: dict[str, tuple[int, int, int, str]] = {
    "EXCHANGE_2007": (8, 0, 685, "Exchange2007"),
    "EXCHANGE_2007_SP1": (8, 1, 240, "Exchange2007_SP1"),
    "EXCHANGE_2010": (14, 0, 639, "Exchange2010"),
    "EXCHANGE_2010_SP1": (14, 1, 218, "Exchange2010_SP1"),
    "EXCHANGE_2010_SP2": (14, 2, 247, "Exchange2010_SP2"),
    "EXCHANGE_2013": (15, 0, 516, "Exchange2013"),
    "EXCHANGE_2013_SP1": (15, 0, 847, "Exchange2013_SP1"),
    "EXCHANGE_2016": (15, 1, 2507, "Exchange2016"),
    "EXCHANGE_2019": (15, 2, 1118, "Exchange2016"),
}
# Schema names in the order EWS introduced them; a server accepts its own and every older one.
SCHEMAS = [
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2015_SP1",
    "Exchange2016",
]
FIELD_URIS = {  # FieldURI -> element name inside t:CalendarItem, in schema order
    "item:Subject": "Subject",
    "item:Body": "Body",
    "calendar:Start": "Start",
    "calendar:End": "End",
    "calendar:LegacyFreeBusyStatus": "LegacyFreeBusyStatus",
    "calendar:Location": "Location",
    "calendar:RequiredAttendees": "RequiredAttendees",
}


def _t(name: str) -> str:
    return f"{{{TYPES}}}{name}"


def _m(name: str) -> str:
    return f"{{{MESSAGES}}}{name}"


def _ews_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime in request: {text}")
    return moment


class EwsError(Exception):
    """A ResponseCode to answer in the operation's response message (ResponseClass="Error")."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class CalendarFolder:
    folder_id: str
    name: str
    parent_id: str


@dataclass
class CalendarItem:
    item_id: str
    folder_id: str
    subject: str
    start: datetime
    end: datetime
    legacy_free_busy: str = "Busy"
    location: str = ""
    body: str = ""
    attendees: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)  # OptionalAttendees
    organizer: str = ""  # someone else's invitation: the organizer's address ("" for the mailbox's own)
    my_response: str = "Organizer"  # MyResponseType: the mailbox's own answer
    all_day: bool = False  # IsAllDayEvent: then from midnight to midnight in ``zone``
    zone: str = "UTC"  # StartTimeZone and EndTimeZone, a Windows zone id
    extended: dict[str, str] = field(default_factory=dict)  # PropertyName -> value (PublicStrings)
    invitations: str = ""  # SendMeetingInvitations of the CreateItem that made it
    change_key: int = 1
    is_cancelled: bool = False
    item_type: str = "Single"  # CalendarItemType: Single, RecurringMaster, or Occurrence (views only)
    every: timedelta | None = None  # a series: an occurrence every so long, ``count`` times
    count: int = 0
    deleted_occurrences: set[int] = field(default_factory=set)  # 0-based indexes removed from the series

    def occurrences(self) -> list[CalendarItem]:
        """The series' occurrences as a CalendarView shows them (a single item: itself)."""
        if self.every is None:
            return [self]
        return [
            replace(
                self,
                item_id=_occurrence_id(self.item_id, index),
                start=self.start + index * self.every,
                end=self.end + index * self.every,
                item_type="Occurrence",
                every=None,
                count=0,
                deleted_occurrences=set(),
            )
            for index in range(self.count)
            if index not in self.deleted_occurrences
        ]


@dataclass(frozen=True)
class Change:
    """One entry of a folder's change log: ``kind`` is Create, Update or Delete."""

    seq: int
    folder_id: str
    item_id: str
    kind: str


@dataclass(frozen=True)
class SyncPoint:
    """What a sync state stands for: how far into the folder's log the client is, and which items it knows."""

    email: str
    folder_id: str
    position: int
    known: frozenset[str]


@dataclass
class Mailbox:
    email: str
    password: str
    username: str
    root_id: str
    calendar_id: str
    folders: dict[str, CalendarFolder] = field(default_factory=dict)
    items: dict[str, CalendarItem] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)  # every folder's change log, oldest first
    deleted_items_id: str = ""  # where a delete in Outlook moves an item (not listed among the calendars)


@dataclass(frozen=True)
class PushSubscription:
    """A live push subscription as Exchange keeps it."""

    subscription_id: str
    email: str
    folder_ids: tuple[str, ...]
    event_types: tuple[str, ...]
    url: str
    status_frequency: int  # minutes


@dataclass(frozen=True)
class PushNotification:
    """One SendNotification POST the double made (or tried to), and what came of it."""

    subscription_id: str
    events: tuple[str, ...]  # the event elements in it: "CreatedEvent", ..., "StatusEvent"
    url: str
    body: bytes
    status: int | None  # the receiver's HTTP status; None when it could not be reached
    subscription_status: str | None  # "OK" or "Unsubscribe" as answered; None when the answer was not one
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.subscription_status is not None


@dataclass
class _Subscription:
    subscription_id: str
    email: str
    folder_ids: frozenset[str]
    event_types: frozenset[str]
    url: str
    status_frequency: int
    schema: str  # the RequestServerVersion its notifications carry
    previous_watermark: str  # the watermark of the last event delivered
    ended: bool = False


@dataclass(frozen=True)
class _PushEvent:
    """One event of a notification; a StatusEvent's watermark is filled in when it is sent."""

    kind: str
    watermark: str = ""
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    item_id: str = ""
    change_key: int | None = None
    parent_folder_id: str = ""
    old_item_id: str = ""  # MovedEvent
    old_parent_folder_id: str = ""


@dataclass(frozen=True)
class _Outgoing:
    subscription: _Subscription
    event: _PushEvent


class ExchangeDouble(DoubleServer):
    """An Exchange server with mailboxes, calendar folders and items; see the module docstring."""

    def __init__(
        self,
        *,
        version: str = "EXCHANGE_2016",
        tls: TLSFiles | None = None,
        require_https: bool = False,
        notification_timeout: float = 2.0,
        push_retries: int = 2,
        max_push_subscriptions: int | None = None,
    ) -> None:
        self.require_https = require_https  # refuse http:// push URLs (Exchange takes them)
        self.notification_timeout = notification_timeout  # seconds a SendNotification POST waits for its answer
        self.push_retries = push_retries  # further attempts after a failed delivery before the subscription ends
        # live push subscriptions a mailbox may hold (Exchange's throttling policy caps them); None: no cap
        self.max_push_subscriptions = max_push_subscriptions
        self._subscriptions: dict[str, _Subscription] = {}
        self._notifier: Notifier[_Outgoing, PushNotification] = Notifier(self._send_push, name="exchange-push")
        self._push_verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(tls.ca_path)) if tls else True
        self._state = threading.Lock()
        self._mailboxes: dict[str, Mailbox] = {}
        self._ids = itertools.count(1)
        self._late: dict[str, list[float]] = {}  # operation -> delays of its next answers
        self._seq = 0  # the newest change's number, across mailboxes
        self._sync_states: dict[str, SyncPoint] = {}  # the states handed out and not forgotten
        self._operations: Counter[str] = Counter()  # SOAP operations answered, by name
        self.version = version
        app = Starlette(
            routes=[
                Route(EWS_PATH, self._ews, methods=["POST"]),
                Route(AUTODISCOVER_PATH, self._autodiscover, methods=["POST"]),
            ]
        )
        super().__init__(app, tls=tls)

    def stop(self) -> None:
        self._notifier.closing = True  # undelivered notifications are dropped
        super().stop()
        self._notifier.close(timeout=self.notification_timeout * (1 + self.push_retries) + 5)

    @property
    def ews_url(self) -> str:
        return self.url + EWS_PATH

    @property
    def autodiscover_url(self) -> str:
        return self.url + AUTODISCOVER_PATH

    # -- what tests set up and inspect -----------------------------------------------------

    def add_mailbox(self, email: str, password: str, *, username: str | None = None) -> Mailbox:
        """A mailbox with a root folder and its primary (distinguished) calendar."""
        root_id, calendar_id = self._new_id("root"), self._new_id("calendar")
        mailbox = Mailbox(email.lower(), password, (username or email).lower(), root_id, calendar_id)
        mailbox.deleted_items_id = self._new_id("deleteditems")
        mailbox.folders[calendar_id] = CalendarFolder(calendar_id, "Calendar", root_id)
        with self._state:
            self._mailboxes[mailbox.email] = mailbox
        return mailbox

    def primary_calendar(self, email: str) -> str:
        """The folder id of the mailbox's primary (distinguished) calendar."""
        return self._mailbox(email).calendar_id

    def add_calendar(self, email: str, name: str) -> str:
        """A sub-calendar of the primary calendar; returns its folder id."""
        mailbox = self._mailbox(email)
        folder_id = self._new_id("folder")
        with self._state:
            mailbox.folders[folder_id] = CalendarFolder(folder_id, name, mailbox.calendar_id)
        return folder_id

    def add_busy(
        self,
        email: str,
        start: datetime,
        end: datetime,
        legacy_free_busy: str = "Busy",
        *,
        calendar_id: str | None = None,
        subject: str = "Busy",
        is_cancelled: bool = False,
    ) -> str:
        """An appointment on the primary calendar (or ``calendar_id``); returns its item id."""
        mailbox = self._mailbox(email)
        item = CalendarItem(
            self._new_id("item"), calendar_id or mailbox.calendar_id, subject, start, end, legacy_free_busy
        )
        item.is_cancelled = is_cancelled
        with self._state:
            self._store(mailbox, item)
        return item.item_id

    def add_meeting(
        self,
        email: str,
        start: datetime,
        end: datetime,
        *,
        subject: str = "Meeting",
        required: Sequence[str] = (),
        optional: Sequence[str] = (),
        organizer: str = "",
        response: str | None = None,
        all_day: bool = False,
        zone: str = "UTC",
        legacy_free_busy: str = "Busy",
    ) -> str:
        """A meeting in Outlook on the primary calendar: the mailbox's own, inviting ``required``
        and ``optional`` attendees, or, with ``organizer``, someone else's invitation answered
        with ``response`` (a MyResponseType). ``all_day`` takes midnights in ``zone`` (a Windows
        zone id, its start and end zone). Its item id."""
        mailbox = self._mailbox(email)
        item = CalendarItem(self._new_id("item"), mailbox.calendar_id, subject, start, end, legacy_free_busy)
        item.attendees, item.optional = [a.lower() for a in required], [a.lower() for a in optional]
        item.organizer, item.all_day, item.zone = organizer, all_day, zone
        item.my_response = response or ("Organizer" if not organizer else "NoResponseReceived")
        with self._state:
            self._store(mailbox, item)
        return item.item_id

    def add_recurring(
        self,
        email: str,
        start: datetime,
        end: datetime,
        *,
        every: timedelta = timedelta(days=7),
        count: int,
        calendar_id: str | None = None,
        subject: str = "Weekly",
    ) -> str:
        """A series of ``count`` occurrences, the first at [start, end); returns the master's item id."""
        mailbox = self._mailbox(email)
        item = CalendarItem(self._new_id("item"), calendar_id or mailbox.calendar_id, subject, start, end)
        item.item_type, item.every, item.count = "RecurringMaster", every, count
        with self._state:
            self._store(mailbox, item)
        return item.item_id

    def occurrence_ids(self, email: str, master_id: str) -> list[str]:
        """The ids a CalendarView gives the series' (remaining) occurrences, in order."""
        mailbox = self._mailbox(email)
        with self._state:
            return [occurrence.item_id for occurrence in mailbox.items[master_id].occurrences()]

    def move_item(self, email: str, item_id: str, start: datetime, end: datetime) -> None:
        """The owner moves an item (a series: all of it) in Outlook."""
        mailbox = self._mailbox(email)
        with self._state:
            item = mailbox.items[item_id]
            item.start, item.end = start, end
            self._changed(mailbox, item)

    def cancel_item(self, email: str, item_id: str) -> None:
        """The organizer cancels the meeting: it stays in the calendar, marked cancelled."""
        mailbox = self._mailbox(email)
        with self._state:
            item = mailbox.items[item_id]
            item.is_cancelled = True
            self._changed(mailbox, item)

    def delete_item(self, email: str, item_id: str) -> None:
        """The owner deletes an item in Outlook, which moves it to Deleted Items; an occurrence's id deletes
        that occurrence from its series."""
        mailbox = self._mailbox(email)
        with self._state:
            self._remove(mailbox, item_id, moved=True)

    def forget_sync_states(self) -> None:
        """Every sync state handed out so far becomes invalid (as after a mailbox move)."""
        with self._state:
            self._sync_states.clear()

    def push_subscriptions(self) -> list[PushSubscription]:
        """The live push subscriptions, oldest first."""
        with self._state:
            return [
                PushSubscription(
                    item.subscription_id,
                    item.email,
                    tuple(sorted(item.folder_ids)),
                    tuple(sorted(item.event_types)),
                    item.url,
                    item.status_frequency,
                )
                for item in self._subscriptions.values()
                if not item.ended
            ]

    def send_status(self, subscription_id: str) -> bool:
        """Queue the status notification (a lone ``t:StatusEvent``) that Exchange sends every StatusFrequency
        minutes when nothing happened; False when the subscription has ended (nothing is sent)."""
        with self._state:
            subscription = self._subscriptions[subscription_id]
            if subscription.ended:
                return False
            self._notifier.queue(_Outgoing(subscription, _PushEvent("StatusEvent")), batch_key=subscription_id)
            return True

    def drop_push_subscriptions(self) -> None:
        """The Client Access server restarted: every push subscription is gone, and nobody is told."""
        with self._state:
            for subscription in self._subscriptions.values():
                subscription.ended = True

    @property
    def push_notifications_sent(self) -> list[PushNotification]:
        """Every SendNotification POST made (or attempted), in order."""
        return self._notifier.records

    def wait_for_push(
        self, count: int, *, subscription_id: str | None = None, timeout: float = 5.0
    ) -> list[PushNotification]:
        """Wait until ``count`` notifications (of the subscription) were posted; all of them."""
        return self._notifier.wait_for(
            count,
            lambda sent: subscription_id is None or sent.subscription_id == subscription_id,
            timeout=timeout,
        )

    def settle_push(self, timeout: float = 5.0) -> None:
        """Wait until every notification queued so far has been posted (with its retries) or dropped."""
        self._notifier.settle(timeout=timeout)

    def operation_counts(self) -> dict[str, int]:
        """How many times each SOAP operation was answered (since the last ``clear_requests``)."""
        with self._state:
            return dict(self._operations)

    def clear_requests(self) -> None:
        super().clear_requests()
        with self._state:
            self._operations.clear()

    def items_on(self, email: str, calendar_id: str | None = None) -> list[CalendarItem]:
        """The items on the primary calendar (or ``calendar_id``), in creation order."""
        mailbox = self._mailbox(email)
        folder_id = calendar_id or mailbox.calendar_id
        with self._state:
            return [item for item in mailbox.items.values() if item.folder_id == folder_id]

    def set_version(self, version: str) -> None:
        """Simulate another server version: a key of ``SERVER_VERSIONS``."""
        if version not in SERVER_VERSIONS:
            raise KeyError(version)
        self.version = version

    def change_password(self, email: str, new_password: str) -> None:
        self._mailbox(email).password = new_password

    def answer_late(self, operation: str, delay: float, *, times: int = 1) -> None:
        """Carry out the next ``times`` requests of ``operation`` (e.g. "CreateItem"), then wait ``delay``
        seconds before answering: longer than a client's timeout, the work is done but the answer is lost."""
        with self._state:
            self._late.setdefault(operation, []).extend([delay] * times)

    @staticmethod
    def server_busy_fault(back_off_ms: int) -> bytes:
        """The SOAP fault EWS sends when throttling (answer it with status 500 through ``fail``)."""
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault>'
            '<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy'
            '</faultcode><faultstring xml:lang="en-US">The server cannot service this request right now. '
            "Try again later.</faultstring><detail>"
            f'<e:ResponseCode xmlns:e="{ERRORS}">ErrorServerBusy</e:ResponseCode>'
            f'<e:Message xmlns:e="{ERRORS}">The server cannot service this request right now. Try again later.'
            "</e:Message>"
            f'<t:MessageXml xmlns:t="{TYPES}"><t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value>'
            "</t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"
        ).encode()

    # -- plumbing ----------------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        raw = f"{kind}:{next(self._ids)}:{uuid.uuid4().hex}".encode()
        return "AAMk" + base64.b64encode(raw).decode()

    def _mailbox(self, email: str) -> Mailbox:
        with self._state:
            return self._mailboxes[email.lower()]

    # Change bookkeeping; the callers hold ``_state``.

    def _log(self, mailbox: Mailbox, folder_id: str, item_id: str, kind: str, *, moved: bool = False) -> None:
        """Write the change into the folder's log and notify the folder's push subscriptions."""
        self._seq += 1
        change = Change(self._seq, folder_id, item_id, kind)
        mailbox.changes.append(change)
        event = self._push_event(mailbox, change, moved=moved)
        for subscription in self._subscriptions.values():
            if subscription.email == mailbox.email:
                self._notify(subscription, change.folder_id, event)

    def _store(self, mailbox: Mailbox, item: CalendarItem) -> None:
        mailbox.items[item.item_id] = item
        self._log(mailbox, item.folder_id, item.item_id, "Create")

    def _changed(self, mailbox: Mailbox, item: CalendarItem) -> None:
        item.change_key += 1
        self._log(mailbox, item.folder_id, item.item_id, "Update")

    def _remove(self, mailbox: Mailbox, item_id: str, *, moved: bool) -> None:
        """Delete an item (``moved``: to Deleted Items), or one occurrence of a series (which changes the
        series' master)."""
        found = self._find(mailbox, item_id)
        if found is None:
            raise _not_found()
        item, master = found
        if master is not None:
            master.deleted_occurrences.add(_occurrence_index(item_id))
            self._changed(mailbox, master)
            return
        del mailbox.items[item_id]
        self._log(mailbox, item.folder_id, item_id, "Delete", moved=moved)

    def _push_event(self, mailbox: Mailbox, change: Change, *, moved: bool = False) -> _PushEvent:
        """The notification event of a change; a moved item gets a new id in Deleted Items, as in Exchange."""
        item = mailbox.items.get(change.item_id)
        event = _PushEvent(
            _EVENT_OF_CHANGE[change.kind],
            _watermark(change.seq),
            datetime.now(UTC),
            change.item_id,
            item.change_key if item is not None else None,
            change.folder_id,
        )
        if moved:
            return replace(
                event,
                kind="MovedEvent",
                item_id=self._new_id("item"),
                parent_folder_id=mailbox.deleted_items_id,
                old_item_id=change.item_id,
                old_parent_folder_id=change.folder_id,
            )
        return event

    def _notify(self, subscription: _Subscription, folder_id: str, event: _PushEvent) -> None:
        """Queue the event for the subscription if it watches the folder and that kind of event."""
        if not subscription.ended and folder_id in subscription.folder_ids and event.kind in subscription.event_types:
            self._notifier.queue(_Outgoing(subscription, event), batch_key=subscription.subscription_id)

    @staticmethod
    def _find(mailbox: Mailbox, item_id: str) -> tuple[CalendarItem, CalendarItem | None] | None:
        """The item with this id and, for an occurrence, its series' master."""
        item = mailbox.items.get(item_id)
        if item is not None:
            return item, None
        for master in mailbox.items.values():
            if master.every is None:
                continue
            for occurrence in master.occurrences():
                if occurrence.item_id == item_id:
                    return occurrence, master
        return None

    def _authenticated(self, request: Request) -> Mailbox | None:
        """The mailbox whose Basic credentials came with the request, if they are right."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        with self._state:
            for mailbox in self._mailboxes.values():
                if user.lower() in (mailbox.email, mailbox.username) and password == mailbox.password:
                    return mailbox
        return None

    @staticmethod
    def _unauthorized() -> Response:
        return Response(
            status_code=401,
            content=b"401 - Unauthorized: Access is denied due to invalid credentials.",
            headers={"WWW-Authenticate": 'Basic realm="127.0.0.1"', "Content-Type": "text/html"},
        )

    # -- EWS ---------------------------------------------------------------------------------

    async def _ews(self, request: Request) -> Response:
        mailbox = self._authenticated(request)
        if mailbox is None:
            return self._unauthorized()
        envelope = ET.fromstring(await request.body())
        requested = envelope.find(f"{{{SOAP}}}Header/{_t('RequestServerVersion')}")
        schema = requested.get("Version", "Exchange2007_SP1") if requested is not None else "Exchange2007_SP1"
        major, minor, build, newest = SERVER_VERSIONS[self.version]
        if schema not in SCHEMAS or SCHEMAS.index(schema) > SCHEMAS.index(newest):
            return _fault("ErrorInvalidServerVersion", "The specified server version is invalid.")
        operation = _children(envelope, f"{{{SOAP}}}Body")[0]
        name = operation.tag.rsplit("}", 1)[-1]
        handler = self._handlers().get(name)
        if handler is None:
            return _fault("ErrorInvalidRequest", f"The double does not implement {name}.")
        with self._state:
            self._operations[name] += 1
            try:
                messages = "".join(handler(mailbox, operation))
            except EwsError as error:  # a request the schema refuses: EWS answers a SOAP fault
                return _fault(error.code, error.text)
            late = self._late.get(name, [])
            delay = late.pop(0) if late else 0.0
        if delay:
            await asyncio.sleep(delay)
        header = (
            f'<h:ServerVersionInfo xmlns:h="{TYPES}" MajorVersion="{major}" MinorVersion="{minor}" '
            f'MajorBuildNumber="{build}" MinorBuildNumber="6" Version="{schema}"/>'
        )
        body = (
            f'<m:{name}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>{messages}'
            f"</m:ResponseMessages></m:{name}Response>"
        )
        return _soap(header, body)

    def _handlers(self) -> dict[str, Callable[[Mailbox, ET.Element], Iterator[str]]]:
        return {
            "ConvertId": self._convert_id,
            "GetFolder": self._get_folder,
            "FindFolder": self._find_folder,
            "FindItem": self._find_item,
            "GetItem": self._get_item,
            "CreateItem": self._create_item,
            "UpdateItem": self._update_item,
            "DeleteItem": self._delete_item,
            "SyncFolderItems": self._sync_folder_items,
            "Subscribe": self._subscribe,
        }

    def _convert_id(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        # exchangelib probes the version with a dummy id; the answer's header is what it wants.
        yield _error("ConvertId", EwsError("ErrorInvalidIdMalformed", "Id is malformed."))

    def _get_folder(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        for reference in _children(operation, _m("FolderIds")):
            try:
                folder_xml = self._folder_xml(mailbox, self._folder_id(mailbox, reference))
            except EwsError as error:
                yield _error("GetFolder", error)
                continue
            yield _success("GetFolder", f"<m:Folders>{folder_xml}</m:Folders>")

    def _find_folder(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        deep = operation.get("Traversal") == "Deep"
        for reference in _children(operation, _m("ParentFolderIds")):
            try:
                parent_id = self._folder_id(mailbox, reference)
            except EwsError as error:
                yield _error("FindFolder", error)
                continue
            found = [f for f in mailbox.folders.values() if self._under(mailbox, f, parent_id, deep)]
            folders = "".join(self._folder_xml(mailbox, f.folder_id) for f in found)
            yield _success(
                "FindFolder",
                f'<m:RootFolder IndexedPagingOffset="{len(found)}" TotalItemsInView="{len(found)}" '
                f'IncludesLastItemInRange="true"><t:Folders>{folders}</t:Folders></m:RootFolder>',
            )

    @staticmethod
    def _under(mailbox: Mailbox, folder: CalendarFolder, parent_id: str, deep: bool) -> bool:
        if folder.parent_id == parent_id:
            return True
        parent = mailbox.folders.get(folder.parent_id)
        return deep and parent is not None and ExchangeDouble._under(mailbox, parent, parent_id, deep)

    def _find_item(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        fields = _requested_fields(operation.find(_m("ItemShape")))
        view = operation.find(_m("CalendarView"))
        restriction = operation.find(_m("Restriction"))
        for reference in _children(operation, _m("ParentFolderIds")):
            try:
                folder_id = self._folder_id(mailbox, reference)
                found = [item for item in mailbox.items.values() if item.folder_id == folder_id]
                if view is not None:  # occurrences of series, never their masters
                    start, end = _parse_time(view.get("StartDate", "")), _parse_time(view.get("EndDate", ""))
                    expanded = [occurrence for item in found for occurrence in item.occurrences()]
                    found = [item for item in expanded if item.start < end and item.end > start]
                if restriction is not None:
                    found = [item for item in found if _matches(item, restriction)]
            except EwsError as error:
                yield _error("FindItem", error)
                continue
            items = "".join(
                _item_xml(item, fields, mailbox.email) for item in sorted(found, key=lambda item: item.start)
            )
            yield _success(
                "FindItem",
                f'<m:RootFolder IndexedPagingOffset="{len(found)}" TotalItemsInView="{len(found)}" '
                f'IncludesLastItemInRange="true"><t:Items>{items}</t:Items></m:RootFolder>',
            )

    def _get_item(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        fields = _requested_fields(operation.find(_m("ItemShape")))
        for reference in _children(operation, _m("ItemIds")):
            found = self._find(mailbox, reference.get("Id", ""))
            if found is None:
                yield _error("GetItem", _not_found())
                continue
            yield _success("GetItem", f"<m:Items>{_item_xml(found[0], fields, mailbox.email)}</m:Items>")

    def _create_item(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        target = operation.find(_m("SavedItemFolderId"))
        invitations = operation.get("SendMeetingInvitations", "")
        for element in _children(operation, _m("Items")):
            try:
                folder_id = self._folder_id(mailbox, target[0]) if target is not None else mailbox.calendar_id
                if element.tag != _t("CalendarItem"):
                    raise EwsError("ErrorInvalidRequest", "The double stores calendar items only.")
                item = CalendarItem(self._new_id("item"), folder_id, "", datetime.min, datetime.min)
                item.invitations = invitations
                for child in element:
                    _apply(item, child)
                if item.end <= item.start:
                    raise EwsError("ErrorCalendarEndDateIsEarlierThanStartDate", "The end is before the start.")
            except EwsError as error:
                yield _error("CreateItem", error)
                continue
            self._store(mailbox, item)
            yield _success("CreateItem", f"<m:Items>{_item_xml(item, set(), mailbox.email)}</m:Items>")

    def _update_item(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        for change in _children(operation, _m("ItemChanges")):
            reference = change.find(_t("ItemId"))
            item = mailbox.items.get(reference.get("Id", "") if reference is not None else "")
            if item is None:
                yield _error("UpdateItem", _not_found())
                continue
            for update in _children(change, _t("Updates")):
                holder = update.find(_t("CalendarItem"))
                if holder is not None:
                    for child in holder:
                        _apply(item, child)
                elif update.tag == _t("DeleteItemField"):
                    _clear(item, update)
            self._changed(mailbox, item)
            yield _success(
                "UpdateItem",
                f"<m:Items>{_item_xml(item, set(), mailbox.email)}</m:Items><m:ConflictResults><t:Count>0</t:Count>"
                "</m:ConflictResults>",
            )

    def _delete_item(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        moved = operation.get("DeleteType") == "MoveToDeletedItems"  # HardDelete and SoftDelete leave the mailbox
        for reference in _children(operation, _m("ItemIds")):
            try:
                self._remove(mailbox, reference.get("Id", ""), moved=moved)
            except EwsError as error:
                yield _error("DeleteItem", error)
                continue
            yield _success("DeleteItem", "")

    def _sync_folder_items(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        """The folder's changes since the sync state (every item without one), oldest first, one per item."""
        fields = _requested_fields(operation.find(_m("ItemShape")))
        limit = int(operation.findtext(_m("MaxChangesReturned"), "0"))
        if not 1 <= limit <= MAX_CHANGES_RETURNED:
            raise EwsError(
                "ErrorSchemaValidation", f"The request failed schema validation: MaxChangesReturned {limit}."
            )
        ignored = {reference.get("Id", "") for reference in _children(operation, _m("Ignore"))}
        try:
            [reference] = _children(operation, _m("SyncFolderId"))
            folder_id = self._folder_id(mailbox, reference)
            state = operation.findtext(_m("SyncState"))
            since = (
                self._sync_point(mailbox, folder_id, state)
                if state
                else SyncPoint(mailbox.email, folder_id, 0, frozenset())
            )
        except EwsError as error:
            empty = "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
            yield _error("SyncFolderItems", error, empty)
            return
        pending = [change for change in _collapse(mailbox, since) if change.item_id not in ignored]
        page, complete = pending[:limit], len(pending) <= limit
        known = set(since.known)
        for change in page:
            (known.discard if change.kind == "Delete" else known.add)(change.item_id)
        reached = SyncPoint(mailbox.email, folder_id, self._seq if complete else page[-1].seq, frozenset(known))
        changes = "".join(_change_xml(mailbox, change, fields) for change in page)
        yield _success(
            "SyncFolderItems",
            f"<m:SyncState>{self._state_for(reached)}</m:SyncState>"
            f"<m:IncludesLastItemInRange>{str(complete).lower()}</m:IncludesLastItemInRange>"
            f"<m:Changes>{changes}</m:Changes>",
        )

    def _subscribe(self, mailbox: Mailbox, operation: ET.Element) -> Iterator[str]:
        """A push subscription on folders of this mailbox (pull and streaming ones are not modelled)."""
        requests = list(operation)
        if len(requests) != 1:
            raise _schema_error("The element 'Subscribe' must hold one subscription request.")
        [request] = requests
        if request.tag != _m("PushSubscriptionRequest"):
            raise EwsError("ErrorInvalidRequest", "The double implements push subscriptions only.")
        fields = _push_request_fields(request)
        if request.get("SubscribeToAllFolders") in ("true", "1") or "FolderIds" not in fields:
            raise EwsError("ErrorInvalidRequest", "The double subscribes to named folders only.")
        event_types = [(element.text or "").strip() for element in fields["EventTypes"]]
        if not event_types or any(kind not in PUSH_EVENT_TYPES for kind in event_types):
            raise _schema_error(f"The 'EventTypes' element is invalid: {event_types}.")
        asked = fields.get("StatusFrequency")
        frequency_text = str(DEFAULT_STATUS_FREQUENCY) if asked is None else (asked.text or "")
        frequency = int(frequency_text) if frequency_text.strip().isdigit() else 0
        if frequency not in STATUS_FREQUENCIES:
            raise _schema_error(
                f"The 'StatusFrequency' element is invalid - The value '{frequency_text}' is invalid according "
                "to its datatype 'SubscriptionStatusFrequencyType'."
            )
        url = (fields["URL"].text or "").strip()
        try:
            folder_ids = frozenset(self._subscribed_folder(mailbox, reference) for reference in fields["FolderIds"])
            self._check_push_url(url)
            since = self._since(fields.get("Watermark"))
            self._check_subscription_count(mailbox)
        except EwsError as error:
            yield _error("Subscribe", error)
            return
        subscription = _Subscription(
            base64.b64encode(secrets.token_bytes(30)).decode(),
            mailbox.email,
            folder_ids,
            frozenset(event_types),
            url,
            frequency,
            SERVER_VERSIONS[self.version][3],
            _watermark(self._seq if since is None else since),
        )
        self._subscriptions[subscription.subscription_id] = subscription
        for change in mailbox.changes:  # the changes since the watermark, if one was given
            if since is not None and change.seq > since:
                self._notify(subscription, change.folder_id, self._push_event(mailbox, change))
        yield _success(
            "Subscribe",
            f"<m:SubscriptionId>{subscription.subscription_id}</m:SubscriptionId>"
            f"<m:Watermark>{_watermark(self._seq)}</m:Watermark>",
        )

    def _subscribed_folder(self, mailbox: Mailbox, reference: ET.Element) -> str:
        try:
            return self._folder_id(mailbox, reference)
        except EwsError as error:
            if error.code != "ErrorItemNotFound":
                raise
            raise EwsError("ErrorFolderNotFound", "The specified folder could not be found in the store.") from None

    def _check_push_url(self, url: str) -> None:
        """Exchange takes a URL shorter than 2083 characters, http or https, that .NET's Uri can parse."""
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = urlsplit("")
        if not 0 < len(url) < PUSH_URL_MAX or parts.scheme not in ("http", "https") or not parts.hostname:
            raise EwsError("ErrorInvalidPushSubscriptionUrl", "URL specified for push subscription is invalid.")
        if self.require_https and parts.scheme != "https":
            raise EwsError("ErrorInvalidPushSubscriptionUrl", "URL specified for push subscription must be https.")

    def _check_subscription_count(self, mailbox: Mailbox) -> None:
        live = sum(1 for item in self._subscriptions.values() if item.email == mailbox.email and not item.ended)
        if self.max_push_subscriptions is not None and live >= self.max_push_subscriptions:
            raise EwsError(
                "ErrorExceededSubscriptionCount",
                "You have exceeded the available subscriptions for your account. Remove unnecessary "
                "subscriptions and try your request again.",
            )

    def _since(self, watermark: ET.Element | None) -> int | None:
        """The change a subscription's Watermark stands for; one never handed out is invalid."""
        if watermark is None:
            return None
        seq = _watermark_seq((watermark.text or "").strip())
        if seq is None or seq > self._seq:
            raise EwsError("ErrorInvalidWatermark", "Watermark is invalid.")
        return seq

    def _send_push(self, batch: list[_Outgoing]) -> None:
        """The notifier thread's work: one SendNotification of the batch's events, retried on failure."""
        subscription = batch[0].subscription
        with self._state:
            if subscription.ended or self._notifier.closing:
                return
            changes = [outgoing.event for outgoing in batch if outgoing.event.kind != "StatusEvent"]
            events = changes or [_PushEvent("StatusEvent", subscription.previous_watermark)]
            body = _notification(subscription, events)
        attempts = 1 + max(self.push_retries, 0)
        for attempt in range(attempts):
            sent = self._post_push(subscription, events, body)
            with self._state:
                if sent.delivered:
                    subscription.previous_watermark = events[-1].watermark
                    subscription.ended = subscription.ended or sent.subscription_status == "Unsubscribe"
                elif attempt == attempts - 1:
                    subscription.ended = True  # the retries ran out: Exchange drops the subscription
                over = subscription.ended or sent.delivered
            self._notifier.record(sent)
            if over or self._notifier.closing:
                return

    def _post_push(self, subscription: _Subscription, events: list[_PushEvent], body: bytes) -> PushNotification:
        status: int | None = None
        answered: str | None = None
        error: str | None = None
        try:
            with httpx.Client(timeout=self.notification_timeout, verify=self._push_verify, trust_env=False) as client:
                answer = client.post(
                    subscription.url,
                    content=body,
                    headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SEND_NOTIFICATION_ACTION},
                )
            status = answer.status_code
            answered = _answered_status(answer.content) if answer.is_success else None
            if answered is None:
                error = f"HTTP {status}: not a SendNotificationResult"
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        kinds = tuple(event.kind for event in events)
        return PushNotification(subscription.subscription_id, kinds, subscription.url, body, status, answered, error)

    def _sync_point(self, mailbox: Mailbox, folder_id: str, state: str) -> SyncPoint:
        """What a state handed out for this mailbox's folder stands for; any other is invalid."""
        point = self._sync_states.get(state)
        if point is None or (point.email, point.folder_id) != (mailbox.email, folder_id):
            raise EwsError("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.")
        return point

    def _state_for(self, point: SyncPoint) -> str:
        """An opaque base64 state for this point (the same one while it is remembered)."""
        for state, known in self._sync_states.items():
            if known == point:
                return state
        state = base64.b64encode(b"H4sI" + secrets.token_bytes(24)).decode()
        self._sync_states[state] = point
        return state

    def _folder_id(self, mailbox: Mailbox, reference: ET.Element) -> str:
        """The folder a t:FolderId or t:DistinguishedFolderId names, in this mailbox."""
        if reference.tag == _t("DistinguishedFolderId"):
            distinguished = {"root": mailbox.root_id, "calendar": mailbox.calendar_id}
            owner = reference.find(f"{_t('Mailbox')}/{_t('EmailAddress')}")
            if owner is not None and (owner.text or "").lower() != mailbox.email:
                raise EwsError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            folder_id = distinguished.get(reference.get("Id", ""))
            if folder_id is None:
                raise EwsError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
            return folder_id
        folder_id = reference.get("Id", "")
        if folder_id != mailbox.root_id and folder_id not in mailbox.folders:
            raise _not_found()
        return folder_id

    def _folder_xml(self, mailbox: Mailbox, folder_id: str) -> str:
        if folder_id == mailbox.root_id:
            return (
                f'<t:Folder><t:FolderId Id="{folder_id}" ChangeKey="AQAAAA=="/>'
                "<t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Root</t:DisplayName>"
                "<t:TotalCount>0</t:TotalCount><t:ChildFolderCount>1</t:ChildFolderCount>"
                "<t:UnreadCount>0</t:UnreadCount></t:Folder>"
            )
        folder = mailbox.folders[folder_id]
        children = sum(1 for f in mailbox.folders.values() if f.parent_id == folder_id)
        count = sum(1 for item in mailbox.items.values() if item.folder_id == folder_id)
        distinguished = (
            "<t:DistinguishedFolderId>calendar</t:DistinguishedFolderId>" if folder_id == mailbox.calendar_id else ""
        )
        return (
            f'<t:CalendarFolder><t:FolderId Id="{folder_id}" ChangeKey="AgAAAA=="/>'
            f'<t:ParentFolderId Id="{folder.parent_id}" ChangeKey="AQAAAA=="/>'
            f"<t:FolderClass>IPF.Appointment</t:FolderClass><t:DisplayName>{escape(folder.name)}</t:DisplayName>"
            f"<t:TotalCount>{count}</t:TotalCount><t:ChildFolderCount>{children}</t:ChildFolderCount>"
            "<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true"
            "</t:CreateContents><t:CreateHierarchy>true</t:CreateHierarchy><t:Delete>true</t:Delete>"
            "<t:Modify>true</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems>"
            f"</t:EffectiveRights>{distinguished}</t:CalendarFolder>"
        )

    # -- autodiscover ------------------------------------------------------------------------

    async def _autodiscover(self, request: Request) -> Response:
        if self._authenticated(request) is None:
            return self._unauthorized()
        envelope = ET.fromstring(await request.body())
        users = envelope.findall(f".//{{{AUTODISCOVER}}}Users/{{{AUTODISCOVER}}}User/{{{AUTODISCOVER}}}Mailbox")
        responses = "".join(self._user_response((user.text or "").lower()) for user in users)
        major, minor, build, _ = SERVER_VERSIONS[self.version]
        header = (
            f'<h:ServerVersionInfo xmlns:h="{AUTODISCOVER}"><h:MajorVersion>{major}</h:MajorVersion>'
            f"<h:MinorVersion>{minor}</h:MinorVersion><h:MajorBuildNumber>{build}</h:MajorBuildNumber>"
            "<h:MinorBuildNumber>6</h:MinorBuildNumber><h:Version>Exchange2013</h:Version></h:ServerVersionInfo>"
        )
        body = (
            f'<GetUserSettingsResponseMessage xmlns="{AUTODISCOVER}"><Response><ErrorCode>NoError</ErrorCode>'
            f"<ErrorMessage/><UserResponses>{responses}</UserResponses></Response></GetUserSettingsResponseMessage>"
        )
        return _soap(header, body)

    def _user_response(self, email: str) -> str:
        with self._state:
            known = email in self._mailboxes
        if not known:
            return (
                "<UserResponse><ErrorCode>InvalidUser</ErrorCode>"
                f"<ErrorMessage>Invalid user: '{escape(email)}'</ErrorMessage><UserSettings/></UserResponse>"
            )
        settings = {"AutoDiscoverSMTPAddress": email, "ExternalEwsUrl": self.ews_url}
        values = "".join(
            f"<UserSetting><Name>{name}</Name><Value>{escape(value)}</Value></UserSetting>"
            for name, value in settings.items()
        )
        return (
            "<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>"
            f"<UserSettingErrors/><UserSettings>{values}</UserSettings></UserResponse>"
        )


# -- SOAP shapes --------------------------------------------------------------------------------


def _envelope(header: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Header>{header}</s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _soap(header: str, body: str, status: int = 200) -> Response:
    return Response(content=_envelope(header, body), status_code=status, media_type="text/xml; charset=utf-8")


def _schema_error(text: str) -> EwsError:
    return EwsError("ErrorSchemaValidation", f"The request failed schema validation: {text}")


def _push_request_fields(request: ET.Element) -> dict[str, ET.Element]:
    """The PushSubscriptionRequest's children by name, checked against the schema's sequence."""
    order = [name for name, _ in PUSH_REQUEST_FIELDS]
    fields: dict[str, ET.Element] = {}
    for child in request:
        name = child.tag.rsplit("}", 1)[-1]
        # The schema puts them in the types namespace; exchangelib writes m:Watermark, taken here too.
        known = child.tag == _t(name) or (name == "Watermark" and child.tag == _m(name))
        if not known or name not in order or any(order.index(name) <= order.index(seen) for seen in fields):
            raise _schema_error(f"The element 'PushSubscriptionRequest' has invalid child element '{name}'.")
        fields[name] = child
    for name, required in PUSH_REQUEST_FIELDS:
        if required and name not in fields:
            raise _schema_error(f"The element 'PushSubscriptionRequest' has incomplete content: '{name}' expected.")
    return fields


def _watermark(seq: int) -> str:
    """An opaque watermark for the point after change ``seq``."""
    return base64.b64encode(b"\x01" + seq.to_bytes(8, "little")).decode()


def _watermark_seq(text: str) -> int | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return int.from_bytes(raw[1:], "little") if len(raw) == 9 and raw[0] == 1 else None


def _change_key(number: int) -> str:
    return f"DwAAAB{number:04d}"


def _notification(subscription: _Subscription, events: list[_PushEvent]) -> bytes:
    """The SendNotification request Exchange posts to a push subscription's URL."""
    header = f'<t:RequestServerVersion xmlns:t="{TYPES}" Version="{subscription.schema}"/>'
    notification = (
        f"<m:Notification><t:SubscriptionId>{subscription.subscription_id}</t:SubscriptionId>"
        f"<t:PreviousWatermark>{subscription.previous_watermark}</t:PreviousWatermark>"
        f"<t:MoreEvents>false</t:MoreEvents>{''.join(_event_xml(event) for event in events)}</m:Notification>"
    )
    body = (
        f'<m:SendNotification xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><m:ResponseMessages>'
        f"{_success('SendNotification', notification)}</m:ResponseMessages></m:SendNotification>"
    )
    return _envelope(header, body)


def _event_xml(event: _PushEvent) -> str:
    if event.kind == "StatusEvent":
        return f"<t:StatusEvent><t:Watermark>{event.watermark}</t:Watermark></t:StatusEvent>"
    change_key = f' ChangeKey="{_change_key(event.change_key)}"' if event.change_key is not None else ""
    parts = [
        f"<t:Watermark>{event.watermark}</t:Watermark><t:TimeStamp>{_ews_time(event.timestamp)}</t:TimeStamp>",
        f'<t:ItemId Id="{event.item_id}"{change_key}/><t:ParentFolderId Id="{event.parent_folder_id}"/>',
    ]
    if event.old_item_id:
        parts.append(f'<t:OldItemId Id="{event.old_item_id}"/><t:OldParentFolderId Id="{event.old_parent_folder_id}"/>')
    return f"<t:{event.kind}>{''.join(parts)}</t:{event.kind}>"


def _answered_status(content: bytes) -> str | None:
    """The SubscriptionStatus of a receiver's SendNotificationResult; None for any other answer."""
    try:
        envelope = ET.fromstring(content)
    except ET.ParseError:
        return None
    if envelope.tag != f"{{{SOAP}}}Envelope":
        return None
    status = envelope.findtext(f"{{{SOAP}}}Body/{_m('SendNotificationResult')}/{_m('SubscriptionStatus')}")
    return status.strip() if status is not None and status.strip() in ("OK", "Unsubscribe") else None


def _fault(code: str, text: str) -> Response:
    body = (
        f'<s:Fault><faultcode xmlns:a="{TYPES}">a:{code}</faultcode>'
        f'<faultstring xml:lang="en-US">{escape(text)}</faultstring><detail>'
        f'<e:ResponseCode xmlns:e="{ERRORS}">{code}</e:ResponseCode>'
        f'<e:Message xmlns:e="{ERRORS}">{escape(text)}</e:Message></detail></s:Fault>'
    )
    content = f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body>{body}</s:Body></s:Envelope>'
    return Response(content=content.encode(), status_code=500, media_type="text/xml; charset=utf-8")


def _success(operation: str, content: str) -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
        f"{content}</m:{operation}ResponseMessage>"
    )


def _error(operation: str, error: EwsError, extra: str = "") -> str:
    """An error response message; ``extra`` is the operation's own elements EWS sends empty on errors."""
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(error.text)}</m:MessageText>'
        f"<m:ResponseCode>{error.code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
        f"{extra}</m:{operation}ResponseMessage>"
    )


def _occurrence_id(master_id: str, index: int) -> str:
    return "AAMk" + base64.b64encode(f"occurrence:{index}:{master_id}".encode()).decode()


def _occurrence_index(occurrence_id: str) -> int:
    return int(base64.b64decode(occurrence_id.removeprefix("AAMk")).decode().split(":")[1])


def _collapse(mailbox: Mailbox, since: SyncPoint) -> list[Change]:
    """The folder's changes after the point, one per item as Exchange reports them, by their last change.

    An item the client does not know is a Create whatever happened to it since (or nothing, if it is
    gone again); one it knows is an Update or a Delete.
    """
    latest: dict[str, Change] = {}
    for change in mailbox.changes:
        if change.folder_id == since.folder_id and change.seq > since.position:
            latest.pop(change.item_id, None)
            latest[change.item_id] = change  # ordered by each item's last change
    reported = []
    for change in latest.values():
        known = change.item_id in since.known
        if change.kind == "Delete":
            if known:
                reported.append(change)
        else:
            reported.append(replace(change, kind="Update" if known else "Create"))
    return reported


def _change_xml(mailbox: Mailbox, change: Change, fields: set[str]) -> str:
    if change.kind == "Delete":
        return f'<t:Delete><t:ItemId Id="{change.item_id}"/></t:Delete>'
    return f"<t:{change.kind}>{_item_xml(mailbox.items[change.item_id], fields, mailbox.email)}</t:{change.kind}>"


def _children(parent: ET.Element, tag: str) -> list[ET.Element]:
    """The child elements of ``parent``'s first ``tag`` child (none when it is missing)."""
    found = parent.find(tag)
    return list(found) if found is not None else []


def _not_found() -> EwsError:
    return EwsError("ErrorItemNotFound", "The specified object was not found in the store.")


def _requested_fields(shape: ET.Element | None) -> set[str]:
    """FieldURIs and extended property names the ItemShape asks for (``*`` for every field)."""
    if shape is None:
        return set()
    base = shape.findtext(_t("BaseShape"), "IdOnly")
    fields = {"*"} if base in ("Default", "AllProperties") else set()
    for path in _children(shape, _t("AdditionalProperties")):
        fields.add(path.get("FieldURI") or f"extended:{path.get('PropertyName')}")
    return fields


def _item_xml(item: CalendarItem, fields: set[str], owner: str) -> str:
    """A t:CalendarItem with its id and the requested fields, in schema order (``owner``: the
    mailbox's address, the organizer of its own items)."""

    def wanted(uri: str) -> bool:
        return "*" in fields or uri in fields

    parts = [f'<t:ItemId Id="{item.item_id}" ChangeKey="{_change_key(item.change_key)}"/>']
    if wanted("item:Subject"):
        parts.append(f"<t:Subject>{escape(item.subject)}</t:Subject>")
    if wanted("item:Body"):
        parts.append(f'<t:Body BodyType="Text">{escape(item.body)}</t:Body>')
    for name, value in item.extended.items():
        if f"extended:{name}" in fields:
            parts.append(
                f'<t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" '
                f'PropertyName={quoteattr(name)} PropertyType="String"/><t:Value>{escape(value)}</t:Value>'
                "</t:ExtendedProperty>"
            )
    if wanted("calendar:Start"):
        parts.append(f"<t:Start>{_ews_time(item.start)}</t:Start>")
    if wanted("calendar:End"):
        parts.append(f"<t:End>{_ews_time(item.end)}</t:End>")
    if wanted("calendar:IsAllDayEvent"):
        parts.append(f"<t:IsAllDayEvent>{str(item.all_day).lower()}</t:IsAllDayEvent>")
    if wanted("calendar:LegacyFreeBusyStatus"):
        parts.append(f"<t:LegacyFreeBusyStatus>{item.legacy_free_busy}</t:LegacyFreeBusyStatus>")
    if wanted("calendar:Location"):
        parts.append(f"<t:Location>{escape(item.location)}</t:Location>")
    if wanted("calendar:IsCancelled"):
        parts.append(f"<t:IsCancelled>{str(item.is_cancelled).lower()}</t:IsCancelled>")
    if wanted("calendar:CalendarItemType"):
        parts.append(f"<t:CalendarItemType>{item.item_type}</t:CalendarItemType>")
    if wanted("calendar:MyResponseType"):
        parts.append(f"<t:MyResponseType>{item.my_response}</t:MyResponseType>")
    if wanted("calendar:Organizer"):
        parts.append(f"<t:Organizer>{_mailbox_xml(item.organizer or owner)}</t:Organizer>")
    for uri, element, emails in (
        ("calendar:RequiredAttendees", "RequiredAttendees", item.attendees),
        ("calendar:OptionalAttendees", "OptionalAttendees", item.optional),
    ):
        if wanted(uri) and emails:
            attendees = "".join(
                f"<t:Attendee>{_mailbox_xml(email)}<t:ResponseType>Unknown</t:ResponseType></t:Attendee>"
                for email in emails
            )
            parts.append(f"<t:{element}>{attendees}</t:{element}>")
    for uri, element in (("calendar:StartTimeZone", "StartTimeZone"), ("calendar:EndTimeZone", "EndTimeZone")):
        if wanted(uri):
            parts.append(f"<t:{element} Id={quoteattr(item.zone)} Name={quoteattr(item.zone)}/>")
    return f"<t:CalendarItem>{''.join(parts)}</t:CalendarItem>"


def _mailbox_xml(email: str) -> str:
    return f"<t:Mailbox><t:EmailAddress>{escape(email)}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox>"


def _apply(item: CalendarItem, element: ET.Element) -> None:
    """Set one t:CalendarItem child element from a CreateItem or UpdateItem request on the item."""
    name = element.tag.rsplit("}", 1)[-1]
    text = element.text or ""
    if name == "Subject":
        item.subject = text
    elif name == "Body":
        item.body = text
    elif name == "Location":
        item.location = text
    elif name == "Start":
        item.start = _parse_time(text)
    elif name == "End":
        item.end = _parse_time(text)
    elif name == "LegacyFreeBusyStatus":
        item.legacy_free_busy = text
    elif name == "RequiredAttendees":
        item.attendees = [(address.text or "").lower() for address in element.iter(_t("EmailAddress")) if address.text]
    elif name == "ExtendedProperty":
        uri = element.find(_t("ExtendedFieldURI"))
        if uri is None or uri.get("DistinguishedPropertySetId") != "PublicStrings":
            raise EwsError("ErrorInvalidExtendedProperty", "The double keeps PublicStrings properties only.")
        item.extended[uri.get("PropertyName", "")] = element.findtext(_t("Value"), "")


def _clear(item: CalendarItem, update: ET.Element) -> None:
    """Apply a t:DeleteItemField: the text fields become empty, attendees go away."""
    path = update.find(_t("FieldURI"))
    name = FIELD_URIS.get(path.get("FieldURI", "") if path is not None else "")
    if name in ("Subject", "Body", "Location"):
        setattr(item, name.lower(), "")
    elif name == "RequiredAttendees":
        item.attendees = []
    else:
        raise EwsError("ErrorInvalidPropertyDelete", "This property cannot be deleted.")


def _matches(item: CalendarItem, restriction: ET.Element) -> bool:
    """Evaluate the IsEqualTo restrictions exchangelib sends for ``filter(extended_property=value)``."""
    for condition in restriction:
        if condition.tag != _t("IsEqualTo"):
            raise EwsError("ErrorUnsupportedQueryFilter", "The double evaluates IsEqualTo only.")
        uri = condition.find(_t("ExtendedFieldURI"))
        constant = condition.find(f"{_t('FieldURIOrConstant')}/{_t('Constant')}")
        if uri is None or constant is None:
            raise EwsError("ErrorUnsupportedQueryFilter", "The double compares extended properties only.")
        if item.extended.get(uri.get("PropertyName", "")) != constant.get("Value"):
            return False
    return True
