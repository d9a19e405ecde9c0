"""The outbound gate (SEC-1): owner-supplied servers are reached only on public addresses in production.

The address rule is tested on its own; then the real adapters (exchangelib, caldav) are driven
against the loopback doubles with the provider settings production builds, where the loopback is
refused unless ``KOKOUS_OUTBOUND_ALLOW`` names it. DNS answers are played by replacing
``providers.outbound.lookup``, the gate's one resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

import providers.outbound
from providers.caldav import CalDAVConfig, CalDAVForm
from providers.caldav import connect as connect_caldav
from providers.exchange import ExchangeConfig, ExchangeForm
from providers.exchange import connect as connect_exchange
from providers.outbound import AddressInfo, DestinationRefused, OutboundPolicy, is_public
from server.providers import provider_settings
from server.settings import Settings, SettingsError, load_settings
from tests.doubles.exchange import ExchangeDouble
from tests.doubles.radicale import RadicaleServer
from tests.doubles.server import DoubleServer

OWNER, PASSWORD = "owner@example.com", "correct horse"
KEY = ("outbound-tests-key-" + "0123456789abcdefghijklmnopqrstuv",)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def production(allow: str = "") -> Settings:
    return Settings(env="production", secret_keys=KEY, outbound_allow=allow)  # type: ignore[arg-type]


def exchange_config(settings: Settings, **changes: object) -> ExchangeConfig:
    return replace(provider_settings(settings).exchange, timeout=5.0, **changes)  # type: ignore[arg-type]


def caldav_config(settings: Settings) -> CalDAVConfig:
    return replace(provider_settings(settings).caldav, timeout=5.0)


def answers(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> list[str]:
    """DNS plays ``table`` (a name's answers in turn, the last one kept); returns the names asked."""
    asked: list[str] = []
    real = providers.outbound.lookup

    def lookup(host: str, port: int | str | None, family: int = 0, kind: int = socket.SOCK_STREAM) -> list[AddressInfo]:
        asked.append(host)
        if host not in table:
            return real(host, port, family, kind)
        address = table[host].pop(0) if len(table[host]) > 1 else table[host][0]
        return real(address, port, family, kind)

    monkeypatch.setattr(providers.outbound, "lookup", lookup)
    return asked


# -- the address rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.20",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",
        "::",
        "240.0.0.1",
        "255.255.255.255",
    ],
)
def test_non_public_addresses_are_refused_in_production(address: str) -> None:
    # covers: SEC-1
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    assert not OutboundPolicy(restrict=True).permits(ip)
    assert OutboundPolicy().permits(ip)  # development reaches anything


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2001:4860:4860::8888", "::ffff:93.184.216.34"])
def test_public_addresses_are_allowed(address: str) -> None:
    # covers: SEC-1
    assert OutboundPolicy(restrict=True).permits(ipaddress.ip_address(address))


def test_the_allow_list_opens_its_networks_and_no_more() -> None:
    # covers: SEC-1
    policy = OutboundPolicy(restrict=True, allow=(ipaddress.ip_network("10.20.0.0/16"), *LOOPBACK))
    assert policy.permits(ipaddress.ip_address("10.20.3.4"))
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.permits(ipaddress.ip_address("10.21.0.1"))
    assert not policy.permits(ipaddress.ip_address("::1"))


def test_a_host_with_any_inside_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # covers: SEC-1
    def lookup(host: str, port: object, family: int = 0, kind: int = 0) -> list[AddressInfo]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443)),
        ]

    monkeypatch.setattr(providers.outbound, "lookup", lookup)
    with pytest.raises(DestinationRefused) as refused:
        OutboundPolicy(restrict=True).resolve("mixed.example.test", 443)
    assert refused.value.message == "This address is inside a private network; Kokous does not connect there."


def test_settings_read_the_allow_list_and_refuse_a_bad_one() -> None:
    # covers: SEC-1
    settings = load_settings(env="production", secret_keys=KEY, outbound_allow="10.20.0.0/16, fd00:1::/64")
    assert settings.outbound_allow == (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00:1::/64"))
    policy = provider_settings(settings).outbound
    assert policy.restrict
    assert policy.allow == settings.outbound_allow
    assert provider_settings(settings).caldav.outbound == policy == provider_settings(settings).exchange.outbound
    assert not provider_settings(Settings()).outbound.restrict
    with pytest.raises(SettingsError, match="KOKOUS_OUTBOUND_ALLOW"):
        load_settings(outbound_allow="10.0.0.0/33")
    with pytest.raises(SettingsError, match="KOKOUS_OUTBOUND_ALLOW"):
        load_settings(outbound_allow="intranet")


# -- Exchange through exchangelib ---------------------------------------------------------------


@pytest.fixture
def exchange() -> Iterator[ExchangeDouble]:
    with ExchangeDouble(version="EXCHANGE_2016") as server:
        server.add_mailbox(OWNER, PASSWORD)
        server.add_mailbox("a@127.0.0.1", PASSWORD)
        yield server


async def test_autodiscover_to_the_loopback_by_email_domain_is_refused(exchange: ExchangeDouble) -> None:
    # covers: SEC-1
    with pytest.raises(DestinationRefused):
        await connect_exchange(ExchangeForm("a@127.0.0.1", PASSWORD), exchange_config(production()))


async def test_autodiscover_at_a_loopback_endpoint_is_refused_and_sends_nothing(exchange: ExchangeDouble) -> None:
    # covers: SEC-1
    config = exchange_config(production(), autodiscover_url=exchange.autodiscover_url)
    with pytest.raises(DestinationRefused):
        await connect_exchange(ExchangeForm(OWNER, PASSWORD), config)
    assert exchange.requests == []


async def test_an_ews_url_from_autodiscover_that_points_inside_is_refused(
    exchange: ExchangeDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    # covers: SEC-1
    monkeypatch.setattr(ExchangeDouble, "ews_url", property(lambda self: "http://169.254.169.254/EWS/Exchange.asmx"))
    config = exchange_config(production("127.0.0.0/8"), autodiscover_url=exchange.autodiscover_url)
    with pytest.raises(DestinationRefused):
        await connect_exchange(ExchangeForm(OWNER, PASSWORD), config)
    assert exchange.requests_to("/autodiscover/")  # autodiscover itself was allowed and answered
    assert not exchange.requests_to("/EWS/")


@pytest.mark.parametrize("address", ["100.64.0.1", "::ffff:127.0.0.1"])
async def test_cgnat_and_mapped_ipv6_ews_hosts_are_refused(
    exchange: ExchangeDouble, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    # covers: SEC-1
    answers(monkeypatch, {"ews.example.test": [address]})
    url = f"http://ews.example.test:{exchange.port}/EWS/Exchange.asmx"
    with pytest.raises(DestinationRefused):
        await connect_exchange(ExchangeForm(OWNER, PASSWORD, ews_url=url), exchange_config(production()))
    assert exchange.requests == []


@pytest.mark.parametrize("settings", [Settings(), production("127.0.0.0/8")], ids=["development", "allowed"])
async def test_the_same_flows_work_in_development_and_with_the_allow_list(
    exchange: ExchangeDouble, settings: Settings
) -> None:
    # covers: SEC-1
    config = exchange_config(settings, autodiscover_url=exchange.autodiscover_url)
    credentials = await connect_exchange(ExchangeForm(OWNER, PASSWORD), config)
    assert credentials.ews_url == exchange.ews_url


async def test_ews_connects_to_the_checked_address_not_a_second_answer(
    exchange: ExchangeDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    # covers: SEC-1
    # The name answers an allowed address, then one outside the allow list: every connection
    # asks once and goes where that answer said, so the later answer is checked too.
    table = {"ews.example.test": ["127.0.0.1"]}
    asked = answers(monkeypatch, table)
    url = f"http://ews.example.test:{exchange.port}/EWS/Exchange.asmx"
    form = ExchangeForm(OWNER, PASSWORD, ews_url=url, version="EXCHANGE_2016")
    config = exchange_config(production("127.0.0.0/8"))
    await connect_exchange(form, config)
    assert "ews.example.test" in asked
    seen = len(exchange.requests)
    table["ews.example.test"] = ["::1"]  # the loopback too, but not in the allow list
    with pytest.raises(DestinationRefused):
        await connect_exchange(form, config)
    assert len(exchange.requests) == seen  # nothing reached the double


# -- CalDAV through caldav and niquests ---------------------------------------------------------


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with RadicaleServer(tmp_path_factory.mktemp("radicale"), {"alice": "alice-secret"}) as server:
        yield server


def redirector(target: Callable[[], str]) -> DoubleServer:
    async def moved(request: Request) -> RedirectResponse:
        return RedirectResponse(target(), status_code=307)

    return DoubleServer(Starlette(routes=[Route("/{path:path}", moved, methods=["PROPFIND", "GET"])]))


async def test_caldav_on_the_loopback_is_refused_in_production(radicale: RadicaleServer) -> None:
    # covers: SEC-1
    with pytest.raises(DestinationRefused):
        await connect_caldav(CalDAVForm(radicale.url, "alice", "alice-secret"), caldav_config(production()))


@pytest.mark.parametrize("settings", [Settings(), production("127.0.0.0/8")], ids=["development", "allowed"])
async def test_caldav_connects_in_development_and_with_the_allow_list(
    radicale: RadicaleServer, settings: Settings
) -> None:
    # covers: SEC-1
    credentials = await connect_caldav(CalDAVForm(radicale.url, "alice", "alice-secret"), caldav_config(settings))
    assert credentials.principal_url.startswith(radicale.url)


@pytest.mark.parametrize("settings", [Settings(), production("127.0.0.0/8")], ids=["development", "allowed"])
async def test_a_caldav_redirect_to_another_host_and_port_is_refused(
    radicale: RadicaleServer, settings: Settings
) -> None:
    # covers: SEC-1
    with redirector(lambda: radicale.url) as moving, pytest.raises(DestinationRefused) as refused:
        await connect_caldav(CalDAVForm(moving.url + "/", "alice", "alice-secret"), caldav_config(settings))
    assert refused.value.code == "redirect_refused"


@pytest.mark.parametrize("address", ["100.64.0.1", "::ffff:127.0.0.1", "fe80::1"])
async def test_cgnat_mapped_and_link_local_caldav_hosts_are_refused(
    radicale: RadicaleServer, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    # covers: SEC-1
    answers(monkeypatch, {"dav.example.test": [address]})
    form = CalDAVForm(f"http://dav.example.test:{radicale.port}/", "alice", "alice-secret")
    with pytest.raises(DestinationRefused):
        await connect_caldav(form, caldav_config(production()))


async def test_caldav_rebinding_between_requests_is_caught_at_connect(
    radicale: RadicaleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # covers: SEC-1
    # Allowed for the first connection, then the name answers an address outside the allow list.
    table = {"dav.example.test": ["127.0.0.1"]}
    answers(monkeypatch, table)
    form = CalDAVForm(f"http://dav.example.test:{radicale.port}/", "alice", "alice-secret")
    config = caldav_config(production("127.0.0.0/8"))
    await connect_caldav(form, config)
    table["dav.example.test"] = ["::1"]
    with pytest.raises(DestinationRefused):
        await connect_caldav(form, config)
