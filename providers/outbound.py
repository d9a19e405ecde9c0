"""The outbound gate: owner-supplied servers (EWS, autodiscover, CalDAV) are reached only on public addresses.

An owner types a URL, or an email whose domain autodiscover follows, and the server connects
there: without a gate that is a way to make Kokous probe its own network (server-side request
forgery). The gate sits where a connection is made, not where a URL is typed:

- ``OutboundPolicy.resolve`` looks the host up (every address ``getaddrinfo`` gives) and refuses
  the host when any address is not allowed: with ``restrict`` on (production), an address is
  allowed when it is in one of the operator's ``allow`` networks (``KOKOUS_OUTBOUND_ALLOW``) or
  public (``is_public``); with ``restrict`` off (development) every address is allowed.
- The connection is then made to the addresses that were checked, never to the name looked up a
  second time, so a DNS answer that changes between the check and the connect (rebinding) gains
  nothing. TLS still names the host (SNI and certificate checks), and so does the Host header.
- Both HTTP stacks the adapters use are pinned this way: ``OutboundAdapter`` for requests
  (exchangelib) makes its urllib3 connections through the gate, ``OutboundResolver`` is the DNS
  resolver of a niquests session (caldav). Every request passes: the first, every redirect hop,
  autodiscover's EWS URL when it is used, and every later sync.
- With ``restrict`` on, proxies from the environment (``HTTPS_PROXY``) are not used for these
  connections: a proxy would look the name up itself, past the gate.
- ``caldav_session`` also refuses redirects to another server (another host, port or scheme, an
  upgrade from http to https on the same host excepted): a CalDAV address is taken as given.

A refusal is ``DestinationRefused`` (a ``ProviderRefused``), worded for the owner; it never
repeats what the far side answered.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import niquests
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from providers.errors import ProviderRefused
from providers.plumbing import TrustAdapter

log = logging.getLogger(__name__)

# niquests runs on urllib3-future, installed as ``urllib3`` or, next to the classic urllib3, as
# ``urllib3_future``; its resolver must come from the one niquests imported.
_RESOLVER_PACKAGE = "urllib3_future" if niquests._compat.HAS_LEGACY_URLLIB3 else "urllib3"
SystemResolver: Any = importlib.import_module(f"{_RESOLVER_PACKAGE}.contrib.resolver.system").SystemResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# One getaddrinfo record: family, socket type, protocol, canonical name, socket address.
AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

PRIVATE_MESSAGE = "This address is inside a private network; Kokous does not connect there."
REDIRECT_MESSAGE = (
    "The CalDAV server sent Kokous on to another server; enter that server's address instead, "
    "Kokous follows redirects only within the same server."
)

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): not the internet
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # a v4 address behind a NAT64 gateway (RFC 6052)
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible IPv6


class DestinationRefused(ProviderRefused):
    """The server's address is not one Kokous connects to (a private network, loopback, ...)."""

    def __init__(self, message: str = PRIVATE_MESSAGE, *, code: str = "destination_refused") -> None:
        super().__init__(message, code=code)


def lookup(
    host: str, port: int | str | None, family: int = 0, kind: int = socket.SOCK_STREAM, proto: int = 0, flags: int = 0
) -> list[AddressInfo]:
    """``socket.getaddrinfo``: the one place the gate asks DNS (tests replace it to play a rebinding DNS)."""
    return socket.getaddrinfo(host, port, family, kind, proto, flags)  # type: ignore[return-value]


def _embedded_v4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64): they must be public too."""
    found = [v4 for v4 in (address.ipv4_mapped, address.sixtofour) if v4 is not None]
    if address.teredo is not None:
        found.extend(address.teredo)  # the Teredo server and the client behind it
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: Address) -> bool:
    """Whether the address is on the public internet: not loopback, private, link-local, shared, ..."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _V4_COMPATIBLE or address.is_site_local:
            return False
        embedded = _embedded_v4(address)
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if not all(is_public(v4) for v4 in embedded):
            return False
    elif address in _SHARED:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses Kokous connects to; unrestricted (development) unless ``restrict`` is set."""

    restrict: bool = False
    allow: tuple[Network, ...] = ()  # reachable besides public addresses (KOKOUS_OUTBOUND_ALLOW)

    def permits(self, address: Address) -> bool:
        if not self.restrict:
            return True
        plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
        if any(plain.version == network.version and plain in network for network in self.allow):
            return True
        return is_public(address)

    def resolve(
        self, host: str, port: int | str | None, family: int = 0, kind: int = socket.SOCK_STREAM
    ) -> list[AddressInfo]:
        """The host's addresses, every one checked; raises ``DestinationRefused`` if any is not allowed.

        An unresolvable host raises ``socket.gaierror`` as ``getaddrinfo`` does.
        """
        records = lookup(host.strip("[]"), port, family, kind)
        for record in records:
            address = ipaddress.ip_address(str(record[4][0]).split("%", 1)[0])
            if not self.permits(address):
                log.warning("outbound connection refused: %s resolves to %s", host, address)
                raise DestinationRefused()
        return records

    def refuses(self, host: str) -> bool:
        """Whether the gate would refuse the host (False when it does not resolve: connecting fails anyway)."""
        try:
            self.resolve(host, None)
        except DestinationRefused:
            return True
        except (OSError, UnicodeError):
            return False
        return False


UNRESTRICTED = OutboundPolicy()


# -- requests and urllib3 (exchangelib) ---------------------------------------------------------


class _PinnedConnection(HTTPConnection):
    """Connects to the gate's checked addresses; the name stays the Host header, SNI and certificate name."""

    outbound: OutboundPolicy = UNRESTRICTED

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        try:
            records = self.outbound.resolve(name, self.port)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        failure: Exception | None = None
        try:
            for record in records:
                self._dns_host = str(record[4][0])  # an address: urllib3 asks no DNS for it
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as error:
                    failure = error
        finally:
            self._dns_host = name  # HTTPSConnection.connect reads the name after this, for SNI
        raise failure or NewConnectionError(self, "getaddrinfo returned no address")


class _PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    pass


class _PinnedPool(HTTPConnectionPool):
    ConnectionCls = _PinnedConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedPoolManager(PoolManager):
    def __init__(self, outbound: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._outbound = outbound
        self.pool_classes_by_scheme = {"http": _PinnedPool, "https": _PinnedHTTPSPool}

    def _new_pool(self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None) -> Any:
        pool = super()._new_pool(scheme, host, port, request_context)
        # A per-pool connection class carries the policy: urllib3 keys pools on known arguments only.
        pool.ConnectionCls = type("GatedConnection", (pool.ConnectionCls,), {"outbound": self._outbound})
        return pool


class OutboundAdapter(TrustAdapter):
    """``TrustAdapter`` whose every connection goes through the gate and to the checked address."""

    def __init__(self, context: Any, outbound: OutboundPolicy, **kwargs: Any) -> None:
        self._outbound = outbound  # before super().__init__, which builds the pool manager
        super().__init__(context, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        built = self.poolmanager
        self.poolmanager = _PinnedPoolManager(
            self._outbound, num_pools=self._pool_connections, **built.connection_pool_kw
        )
        built.clear()


# -- niquests (caldav) --------------------------------------------------------------------------


class OutboundResolver(SystemResolver):  # type: ignore[misc]
    """The system resolver behind the gate: niquests connects to exactly the records it returns."""

    def __init__(self, *patterns: str, outbound: OutboundPolicy = UNRESTRICTED, **kwargs: Any) -> None:
        super().__init__(*patterns, **kwargs)
        self._outbound = outbound

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: str | int | None,
        family: socket.AddressFamily,
        type: socket.SocketKind,  # the base class's name
        proto: int = 0,
        flags: int = 0,
        *,
        quic_upgrade_via_dns_rr: bool = False,
    ) -> list[AddressInfo]:
        name = host.decode("ascii") if isinstance(host, bytes) else host or "localhost"
        return self._outbound.resolve(name, port, family, type)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def same_server(old_url: str, new_url: str) -> bool:
    """Whether a redirect stays on the server: same scheme, host and port, or http upgraded to https."""
    old, new = _origin(old_url), _origin(new_url)
    return old == new or (old[1] == new[1] and old[0] == "http" and new == ("https", new[1], 443))


class _CalDAVSession(niquests.Session):
    def get_redirect_target(self, resp: niquests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is not None and resp.url is not None and not same_server(resp.url, urljoin(resp.url, target)):
            resp.close()  # the redirect's connection is not followed, nor left open
            raise DestinationRefused(REDIRECT_MESSAGE, code="redirect_refused")
        return target


def caldav_session(outbound: OutboundPolicy, *, multiplexed: bool = False) -> niquests.Session:
    """A niquests session whose every connection passes the gate and that stays on one server."""
    session = _CalDAVSession(resolver=OutboundResolver(outbound=outbound), multiplexed=multiplexed)
    if outbound.restrict:
        session.trust_env = False  # no proxy from the environment: it would resolve names past the gate
    return session
