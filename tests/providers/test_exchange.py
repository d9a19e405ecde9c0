"""The Exchange adapter through the real exchangelib against the EWS SOAP double on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from providers.base import Attendee, BusyBlock, CalendarAccess, EventDraft
from providers.errors import (
    ProviderAuthError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
    ProviderUnsupported,
)
from providers.exchange import (
    ExchangeCalendarClient,
    ExchangeConfig,
    ExchangeCredentials,
    ExchangeForm,
    connect,
)
from tests.doubles.exchange import ExchangeDouble
from tests.doubles.server import make_tls_files

OWNER = "owner@example.com"
PASSWORD = "correct horse"
HELSINKI = ZoneInfo("Europe/Helsinki")
CONFIG = ExchangeConfig(timeout=5.0)


@pytest.fixture
def double() -> Iterator[ExchangeDouble]:
    with ExchangeDouble(version="EXCHANGE_2016") as server:
        server.add_mailbox(OWNER, PASSWORD)
        yield server


def form(double: ExchangeDouble, **changes: str | None) -> ExchangeForm:
    return dataclasses.replace(ExchangeForm(OWNER, PASSWORD, ews_url=double.ews_url), **changes)


def ews_operations(double: ExchangeDouble) -> list[str]:
    """The SOAP operations the double answered with credentials, in order."""
    operations = []
    for request in double.requests_to("/EWS/Exchange.asmx"):
        if "authorization" in request.headers:
            body = request.text.split("<s:Body>", 1)[1]
            operations.append(body.split(">", 1)[0].split()[0].removeprefix("<m:"))
    return operations


async def client_for(double: ExchangeDouble, config: ExchangeConfig = CONFIG) -> ExchangeCalendarClient:
    credentials = await connect(form(double), config)
    return ExchangeCalendarClient(config, credentials)


def draft(key: str = "booking-1", **changes: object) -> EventDraft:
    base = EventDraft(
        idempotency_key=key,
        summary="Intro call",
        start=datetime(2026, 4, 1, 9, 0, tzinfo=UTC),
        end=datetime(2026, 4, 1, 9, 30, tzinfo=UTC),
        timezone="Europe/Helsinki",
        attendees=(Attendee("visitor@example.org", "Vera Visitor"),),
        description="Booked through Kokous",
        location="Teams",
    )
    return dataclasses.replace(base, **changes)


def helsinki(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=HELSINKI)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- connecting (CAL-3) ---------------------------------------------------------------------------


async def test_connect_with_url_and_version_tests_the_connection(double: ExchangeDouble) -> None:
    # covers: CAL-3
    credentials = await connect(form(double, version="EXCHANGE_2016"), CONFIG)

    assert credentials == ExchangeCredentials(OWNER, OWNER, PASSWORD, double.ews_url, "EXCHANGE_2016", "basic")
    assert ews_operations(double) == ["GetFolder"]  # the calendar was read with the password before saving


async def test_user_name_defaults_to_email_and_can_differ(double: ExchangeDouble) -> None:
    # covers: CAL-3
    double.add_mailbox("shared@example.com", "pw", username="CONTOSO\\shared")

    credentials = await connect(
        ExchangeForm("shared@example.com", "pw", username="CONTOSO\\shared", ews_url=double.ews_url), CONFIG
    )

    assert credentials.username == "CONTOSO\\shared"
    assert credentials.email == "shared@example.com"


@pytest.mark.parametrize("version", ["EXCHANGE_2010_SP2", "EXCHANGE_2013_SP1", "EXCHANGE_2016", "EXCHANGE_2019"])
async def test_version_is_detected_from_the_server(double: ExchangeDouble, version: str) -> None:
    # covers: CAL-3
    double.set_version(version)

    credentials = await connect(form(double), CONFIG)

    assert credentials.version == version
    assert ews_operations(double)[-1] == "GetFolder"


async def test_older_named_version_is_refused_before_contacting_the_server(double: ExchangeDouble) -> None:
    # covers: CAL-3
    with pytest.raises(ProviderUnsupported) as refused:
        await connect(form(double, version="EXCHANGE_2010_SP1"), CONFIG)

    assert "Exchange 2010 SP1" in refused.value.message
    assert "Exchange 2010 SP2 or newer" in refused.value.message
    assert double.requests == []


@pytest.mark.parametrize("named", [None, "EXCHANGE_2016"])
async def test_older_server_is_refused_whatever_the_form_says(double: ExchangeDouble, named: str | None) -> None:
    # covers: CAL-3
    double.set_version("EXCHANGE_2010_SP1")

    with pytest.raises(ProviderUnsupported) as refused:
        await connect(form(double, version=named), CONFIG)

    assert "Exchange 2010 SP1 (build 14.1" in refused.value.message
    assert "Exchange 2010 SP2 or newer" in refused.value.message


async def test_wrong_password_mentions_app_passwords(double: ExchangeDouble) -> None:
    # covers: CAL-3, INACT-1
    with pytest.raises(ProviderAuthError) as refused:
        await connect(form(double, password="wrong"), CONFIG)

    assert "app password" in refused.value.message


async def test_another_mailbox_without_delegation_is_denied(double: ExchangeDouble) -> None:
    # covers: CAL-3, INACT-1
    double.add_mailbox("boss@example.com", "boss's password")

    with pytest.raises(ProviderAuthError) as denied:
        await connect(ExchangeForm("boss@example.com", PASSWORD, username=OWNER, ews_url=double.ews_url), CONFIG)

    assert denied.value.code == "ErrorAccessDenied"


async def test_changed_password_makes_the_connection_lose_access(double: ExchangeDouble) -> None:
    # covers: INACT-1
    client = await client_for(double)
    double.change_password(OWNER, "new password")

    with pytest.raises(ProviderAuthError):
        await client.list_calendars()


async def test_unreachable_server_is_unavailable() -> None:
    # covers: CAL-3, BOOK-7
    with pytest.raises(ProviderUnavailable):
        await connect(
            ExchangeForm(OWNER, PASSWORD, ews_url=f"http://127.0.0.1:{free_port()}/EWS/Exchange.asmx"), CONFIG
        )


async def test_slow_server_times_out_as_unavailable(double: ExchangeDouble) -> None:
    # covers: CAL-3, BOOK-7
    double.fail("GetFolder", delay=1.0)

    with pytest.raises(ProviderUnavailable):
        await connect(form(double, version="EXCHANGE_2016"), ExchangeConfig(timeout=0.2))


async def test_autodiscover_finds_the_ews_url(double: ExchangeDouble) -> None:
    # covers: CAL-3
    config = ExchangeConfig(timeout=5.0, autodiscover_url=double.autodiscover_url)

    credentials = await connect(ExchangeForm(OWNER, PASSWORD), config)

    assert credentials.ews_url == double.ews_url
    assert len(double.requests_to("POST /autodiscover/autodiscover.svc")) >= 1
    assert ews_operations(double)[-1] == "GetFolder"


async def test_autodiscover_of_an_unknown_mailbox_is_refused(double: ExchangeDouble) -> None:
    # covers: CAL-3
    config = ExchangeConfig(timeout=5.0, autodiscover_url=double.autodiscover_url)

    with pytest.raises(ProviderRefused):
        await connect(ExchangeForm("nobody@example.com", PASSWORD, username=OWNER), config)


async def test_unreachable_autodiscover_asks_for_the_ews_url() -> None:
    # covers: CAL-3
    config = ExchangeConfig(
        timeout=1.0, autodiscover_url=f"http://127.0.0.1:{free_port()}/autodiscover/autodiscover.svc"
    )

    with pytest.raises(ProviderUnavailable) as failed:
        await connect(ExchangeForm(OWNER, PASSWORD), config)

    assert "Enter the EWS URL" in failed.value.message


async def test_ca_bundle_is_trusted_and_required(tmp_path: Path) -> None:
    # covers: CAL-3
    tls = make_tls_files(tmp_path)
    with ExchangeDouble(tls=tls) as secure:
        secure.add_mailbox(OWNER, PASSWORD)

        credentials = await connect(form(secure), ExchangeConfig(ca_bundle=str(tls.ca_path)))
        with pytest.raises(ProviderUnavailable) as untrusted:
            await connect(form(secure), ExchangeConfig())

    assert credentials.ews_url.startswith("https://")
    assert "certificate is not trusted" in untrusted.value.message


async def test_stored_credentials_round_trip(double: ExchangeDouble) -> None:
    # covers: CAL-3
    client = await client_for(double)

    restored = ExchangeCalendarClient(CONFIG, ExchangeCredentials.from_json(client.credentials_json()))

    assert [c.primary for c in await restored.list_calendars()] == [True]


# -- calendars and busy time --------------------------------------------------------------------


async def test_lists_the_primary_calendar_and_its_sub_calendars(double: ExchangeDouble) -> None:
    # covers: CAL-3
    team = double.add_calendar(OWNER, "Team")
    client = await client_for(double)

    calendars = await client.list_calendars()

    assert [(c.name, c.primary, c.access) for c in calendars] == [
        ("Calendar", True, CalendarAccess.OWNER),
        ("Team", False, CalendarAccess.OWNER),
    ]
    assert calendars[0].external_id == double.primary_calendar(OWNER)
    assert calendars[1].external_id == team


async def test_busy_time_is_utc_across_a_dst_change(double: ExchangeDouble) -> None:
    # covers: CAL-3, BOOK-2
    primary = double.primary_calendar(OWNER)
    team = double.add_calendar(OWNER, "Team")
    # Helsinki moves from UTC+2 to UTC+3 on 2026-03-29.
    double.add_busy(OWNER, helsinki(28, 9), helsinki(28, 10))
    double.add_busy(OWNER, helsinki(30, 9), helsinki(30, 10), "OOF")
    double.add_busy(OWNER, helsinki(30, 11), helsinki(30, 12), "Free")
    double.add_busy(OWNER, helsinki(31, 14), helsinki(31, 15), "Tentative", calendar_id=team)
    double.add_busy(OWNER, datetime(2026, 3, 27, 1, tzinfo=UTC), datetime(2026, 3, 27, 6, tzinfo=UTC))  # ends at start
    client = await client_for(double)

    blocks = await client.busy_intervals(
        [primary, team], datetime(2026, 3, 27, 6, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    )

    assert blocks == [
        BusyBlock(primary, datetime(2026, 3, 28, 7, tzinfo=UTC), datetime(2026, 3, 28, 8, tzinfo=UTC)),
        BusyBlock(primary, datetime(2026, 3, 30, 6, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC)),
        BusyBlock(team, datetime(2026, 3, 31, 11, tzinfo=UTC), datetime(2026, 3, 31, 12, tzinfo=UTC)),
    ]
    # plain datetimes in UTC: no exchangelib EWSDateTime leaves the adapter
    assert {(type(block.start), block.start.tzinfo, type(block.end), block.end.tzinfo) for block in blocks} == {
        (datetime, UTC, datetime, UTC)
    }


async def test_naive_datetimes_are_refused(double: ExchangeDouble) -> None:
    # covers: CAL-3
    client = await client_for(double)
    primary = double.primary_calendar(OWNER)

    with pytest.raises(ValueError, match="naive"):
        await client.busy_intervals([primary], datetime(2026, 3, 27), datetime(2026, 3, 28, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        await client.create_event(primary, draft(start=datetime(2026, 4, 1, 9)))


async def test_throttling_is_rate_limited_with_the_back_off(double: ExchangeDouble) -> None:
    # covers: BOOK-7
    client = await client_for(double)
    primary = double.primary_calendar(OWNER)
    double.fail("FindItem", status=500, body=double.server_busy_fault(5000), headers={"content-type": "text/xml"})

    with pytest.raises(ProviderRateLimited) as limited:
        await client.busy_intervals([primary], datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 28, tzinfo=UTC))

    assert limited.value.retry_after == 5.0


async def test_server_errors_are_unavailable(double: ExchangeDouble) -> None:
    # covers: BOOK-7
    client = await client_for(double)
    primary = double.primary_calendar(OWNER)
    double.fail("CreateItem", status=503, body="Service Unavailable", headers={"content-type": "text/html"})

    with pytest.raises(ProviderUnavailable):
        await client.create_event(primary, draft())

    assert double.items_on(OWNER) == []


# -- writing bookings ---------------------------------------------------------------------------


async def test_create_event_invites_the_visitor_on_the_primary_calendar(double: ExchangeDouble) -> None:
    # covers: BOOK-2
    client = await client_for(double)
    primary = double.primary_calendar(OWNER)

    written = await client.create_event(primary, draft())

    [item] = double.items_on(OWNER)
    assert (written.calendar_id, written.event_id) == (primary, item.item_id)
    assert item.attendees == ["visitor@example.org"]
    assert item.invitations == "SendToAllAndSaveCopy"
    assert (item.subject, item.location, item.body) == ("Intro call", "Teams", "Booked through Kokous")
    assert item.legacy_free_busy == "Busy"
    assert (item.start, item.end) == (datetime(2026, 4, 1, 9, tzinfo=UTC), datetime(2026, 4, 1, 9, 30, tzinfo=UTC))
    assert item.start.utcoffset() == timedelta(hours=3)  # written in the owner's zone


async def test_creating_twice_with_one_key_makes_one_item(double: ExchangeDouble) -> None:
    # covers: BOOK-2, BOOK-7
    client = await client_for(double)
    primary = double.primary_calendar(OWNER)

    first = await client.create_event(primary, draft())
    second = await client.create_event(primary, draft())
    other = await client.create_event(primary, draft("booking-2"))

    assert first == second
    assert other != first
    assert len(double.items_on(OWNER)) == 2


async def test_retry_after_a_lost_answer_finds_the_created_item(double: ExchangeDouble) -> None:
    # covers: BOOK-7
    config = ExchangeConfig(timeout=0.3)
    client = await client_for(double, config)
    primary = double.primary_calendar(OWNER)
    double.answer_late("CreateItem", 1.0)

    with pytest.raises(ProviderUnavailable):
        await client.create_event(primary, draft())
    written = await client.create_event(primary, draft())

    [item] = double.items_on(OWNER)
    assert written.event_id == item.item_id


async def test_update_and_delete_follow_the_booking(double: ExchangeDouble) -> None:
    # covers: BOOK-2
    client = await client_for(double)
    primary = double.primary_calendar(OWNER)
    written = await client.create_event(primary, draft())
    later = datetime(2026, 4, 2, 12, tzinfo=UTC)

    updated = await client.update_event(
        primary, written.event_id, draft(start=later, end=later + timedelta(hours=1), description="")
    )

    [item] = double.items_on(OWNER)
    assert updated == written
    assert (item.start, item.end, item.body) == (later, later + timedelta(hours=1), "")
    await client.delete_event(primary, written.event_id)
    await client.delete_event(primary, written.event_id)  # already gone: quiet
    assert double.items_on(OWNER) == []
    with pytest.raises(ProviderNotFound):
        await client.update_event(primary, written.event_id, draft())
