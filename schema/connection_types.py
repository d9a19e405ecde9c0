"""Connecting calendars: the consent URL, the forms, and the typed ways connecting can fail."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import strawberry

from providers.caldav import CalDAVForm
from providers.exchange import ExchangeForm
from scheduling import errors as domain
from scheduling.calendars import ConnectionView
from scheduling.connections import AuthorizationUrl as AuthorizationUrlValue
from scheduling.connections import ConnectResult, StartResult
from scheduling.values import CalendarProvider, ConnectionFailure
from schema import errors
from schema.types import CalendarConnection


@strawberry.enum
class ExchangeVersion(StrEnum):
    EXCHANGE_2007 = "EXCHANGE_2007"
    EXCHANGE_2007_SP1 = "EXCHANGE_2007_SP1"
    EXCHANGE_2010 = "EXCHANGE_2010"
    EXCHANGE_2010_SP1 = "EXCHANGE_2010_SP1"
    EXCHANGE_2010_SP2 = "EXCHANGE_2010_SP2"
    EXCHANGE_2013 = "EXCHANGE_2013"
    EXCHANGE_2013_SP1 = "EXCHANGE_2013_SP1"
    EXCHANGE_2016 = "EXCHANGE_2016"
    EXCHANGE_2019 = "EXCHANGE_2019"


strawberry.enum(ConnectionFailure)


@strawberry.type(description="Send the owner's browser here to grant access (CAL-1, CAL-2).")
class AuthorizationUrl:
    url: str


@strawberry.type(description="A setting must be turned on first (CAL-4); `setting` names it.")
class PermissionRequired(errors.Error):
    setting: str


@strawberry.type(description="The operator has not configured this calendar provider.")
class ProviderNotConfigured(errors.Error):
    provider: CalendarProvider


@strawberry.type(description="The account holds as many calendar connections as it may (CAL-5).")
class ConnectionLimitReached(errors.Error):
    pass


@strawberry.type(description="The provider refused or could not be reached; `reason` says which.")
class CalendarConnectionFailed(errors.Error):
    reason: ConnectionFailure


@strawberry.input(description="CAL-3. Empty ewsUrl: autodiscover. Empty version: detected from the server.")
class ExchangeConnectionInput:
    email: str
    password: str
    username: str | None = None
    ews_url: str | None = None
    version: ExchangeVersion | None = None

    def to_form(self) -> ExchangeForm:
        version = self.version.value if self.version is not None else None
        return ExchangeForm(self.email, self.password, self.username, self.ews_url, version)


@strawberry.input(description="Any RFC 4791 server: iCloud, Fastmail, Nextcloud, ... (use an app password).")
class CalDAVConnectionInput:
    url: str
    username: str
    password: str

    def to_form(self) -> CalDAVForm:
        return CalDAVForm(url=self.url, username=self.username, password=self.password)


StartConnectionResult = Annotated[
    AuthorizationUrl
    | PermissionRequired
    | ProviderNotConfigured
    | ConnectionLimitReached
    | CalendarConnectionFailed
    | errors.InvalidInput,
    strawberry.union("StartConnectionResult"),
]
ConnectCalendarResult = Annotated[
    CalendarConnection | PermissionRequired | ConnectionLimitReached | CalendarConnectionFailed | errors.InvalidInput,
    strawberry.union("ConnectCalendarResult"),
]


def _error(
    error: domain.PermissionRequired
    | domain.ProviderNotConfigured
    | domain.ConnectionLimitReached
    | domain.ConnectionFailed
    | domain.InvalidInput,
) -> (
    PermissionRequired | ProviderNotConfigured | ConnectionLimitReached | CalendarConnectionFailed | errors.InvalidInput
):
    if isinstance(error, domain.PermissionRequired):
        return PermissionRequired(message=error.message, setting=error.setting)
    if isinstance(error, domain.ProviderNotConfigured):
        return ProviderNotConfigured(message=error.message, provider=error.provider)
    if isinstance(error, domain.ConnectionLimitReached):
        return ConnectionLimitReached(message=error.message)
    if isinstance(error, domain.ConnectionFailed):
        return CalendarConnectionFailed(message=error.message, reason=error.reason)
    return errors.InvalidInput(message=error.message, field=error.field)


def start_result(result: StartResult) -> StartConnectionResult:
    if isinstance(result, AuthorizationUrlValue):
        return AuthorizationUrl(url=result.url)
    return _error(result)


def connect_result(result: ConnectResult) -> ConnectCalendarResult:
    if isinstance(result, ConnectionView):
        return CalendarConnection.from_domain(result)
    error = _error(result)
    assert not isinstance(error, ProviderNotConfigured)
    return error
