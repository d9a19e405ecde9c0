"""Connecting calendars: the consent URL and the forms (the ways connecting fails are in ``errors``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import strawberry

from scheduling.calendars.connect import ConfirmResult, ConnectResult
from scheduling.calendars.directory import ConnectionView
from scheduling.calendars.oauth_flow import AuthorizationUrl, StartResult
from scheduling.calendars.rules import CalDAVAccountForm, ExchangeAccountForm
from schema.errors import (
    CalendarConnectionFailedError,
    ConnectionLimitReachedError,
    InvalidInputError,
    NotFoundError,
    PermissionRequiredError,
    ProviderNotConfiguredError,
    error_from_domain,
)
from schema.types import CalendarConnectionType


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


@strawberry.type(name="AuthorizationUrl", description="Send the owner's browser here to grant access to the calendar.")
class AuthorizationUrlType:
    url: str


@strawberry.input(
    description="An Exchange mailbox. Empty ewsUrl: autodiscover. Empty version: detected from the server."
)
class ExchangeConnectionInput:
    email: str
    password: str
    username: str | None = None
    ews_url: str | None = None
    version: ExchangeVersion | None = None

    def to_form(self) -> ExchangeAccountForm:
        version = self.version.value if self.version is not None else None
        return ExchangeAccountForm(self.email, self.password, self.username, self.ews_url, version)


@strawberry.input(description="Any RFC 4791 server: iCloud, Fastmail, Nextcloud, ... (use an app password).")
class CalDAVConnectionInput:
    url: str
    username: str
    password: str

    def to_form(self) -> CalDAVAccountForm:
        return CalDAVAccountForm(url=self.url, username=self.username, password=self.password)


StartConnectionResult = Annotated[
    AuthorizationUrlType
    | PermissionRequiredError
    | ProviderNotConfiguredError
    | ConnectionLimitReachedError
    | CalendarConnectionFailedError
    | InvalidInputError,
    strawberry.union("StartConnectionResult"),
]
ConnectCalendarResult = Annotated[
    CalendarConnectionType
    | PermissionRequiredError
    | ConnectionLimitReachedError
    | CalendarConnectionFailedError
    | InvalidInputError,
    strawberry.union("ConnectCalendarResult"),
]

ConfirmCalendarConnectionResult = Annotated[
    CalendarConnectionType
    | NotFoundError
    | PermissionRequiredError
    | ConnectionLimitReachedError
    | CalendarConnectionFailedError
    | InvalidInputError,
    strawberry.union("ConfirmCalendarConnectionResult"),
]


def start_result(result: StartResult) -> StartConnectionResult:
    if isinstance(result, AuthorizationUrl):
        return AuthorizationUrlType(url=result.url)
    return error_from_domain(result)


def confirm_result(result: ConfirmResult) -> ConfirmCalendarConnectionResult:
    if isinstance(result, ConnectionView):
        return CalendarConnectionType.from_domain(result)
    return error_from_domain(result)


def connect_result(result: ConnectResult) -> ConnectCalendarResult:
    if isinstance(result, ConnectionView):
        return CalendarConnectionType.from_domain(result)
    return error_from_domain(result)
