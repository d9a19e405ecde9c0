"""What each adapter can do is what the rest of the server expects of its provider."""

from __future__ import annotations

from common.values import CalendarProvider
from providers.base import IncrementalSync, PushWatch, RenewableWatch
from providers.caldav import CalDAVCalendarClient
from providers.exchange import ExchangeCalendarClient
from providers.google import GoogleCalendarClient
from providers.microsoft import MicrosoftCalendarClient

ADAPTERS: dict[CalendarProvider, type] = {
    CalendarProvider.GOOGLE: GoogleCalendarClient,
    CalendarProvider.MICROSOFT: MicrosoftCalendarClient,
    CalendarProvider.EXCHANGE: ExchangeCalendarClient,
    CalendarProvider.CALDAV: CalDAVCalendarClient,
}


def test_every_adapter_says_what_changed_and_all_but_caldav_push() -> None:
    # covers: SYNC-5
    assert set(ADAPTERS) == set(CalendarProvider)
    assert [provider for provider, adapter in ADAPTERS.items() if not issubclass(adapter, IncrementalSync)] == []
    pushing = {provider for provider, adapter in ADAPTERS.items() if issubclass(adapter, PushWatch)}
    assert pushing == set(CalendarProvider) - {CalendarProvider.CALDAV}  # CalDAV has no push for other servers
    renewing = {provider for provider, adapter in ADAPTERS.items() if issubclass(adapter, RenewableWatch)}
    assert renewing == {CalendarProvider.MICROSOFT}  # Google channels are replaced, never extended
