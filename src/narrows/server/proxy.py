"""Client address and scheme from trusted proxy headers (HTTP and WebSocket alike).

With ``--proxy-headers`` the server believes ``X-Forwarded-For`` / ``X-Forwarded-Port`` /
``X-Forwarded-Proto`` (the first two renamable with ``--proxy-headers-host/-port``) only
when the connection's peer is trusted: listed in ``--forwarded-allow-ips`` (addresses or
networks, ``*`` for any) or connected over a unix socket. The client is the rightmost
X-Forwarded-For address that is not itself a trusted proxy (an untrusted client can prepend
any addresses it likes, so the left end proves nothing); when every hop is trusted, the
leftmost one. That hop must be an IP address: a name, ``unknown`` or markup (``<script>``)
is ignored and the peer address kept (logged once per process). As in Daphne,
X-Forwarded-Port is read only together with X-Forwarded-For.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from narrows.server.config import Config
from narrows.types import Address, Headers

__all__ = ["ProxyHeaders"]

logger = logging.getLogger("narrows.server")

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyHeaders:
    """Resolve ``(client, scheme)`` for one request from its headers and the peer."""

    __slots__ = (
        "_hosts",
        "_networks",
        "_trust_all",
        "_warned",
        "enabled",
        "host_header",
        "port_header",
    )

    proto_header = b"x-forwarded-proto"

    def __init__(self, config: Config) -> None:
        self.enabled = config.proxy_headers
        self.host_header = config.proxy_headers_host.strip().lower().encode("latin-1")
        self.port_header = config.proxy_headers_port.strip().lower().encode("latin-1")
        self._trust_all = False
        self._networks: list[_Network] = []
        self._hosts: set[str] = set()
        self._warned = False  # a hop that is not an address was logged
        self._parse_allowed(config.forwarded_allow_ips)

    def _parse_allowed(self, entries: Iterable[str]) -> None:
        for raw in entries:
            for entry in raw.split(","):
                entry = entry.strip()
                if not entry:
                    continue
                if entry == "*":
                    self._trust_all = True
                    continue
                try:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    self._hosts.add(entry)  # a literal, e.g. a non-IP unix peer name

    def is_trusted(self, host: str | None) -> bool:
        """Whether a peer (None for a unix-socket peer) may set proxy headers."""
        if host is None or self._trust_all or host in self._hosts:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def resolve(
        self,
        headers: Headers,
        client: Address | None,
        scheme: str,
        *,
        peer_trusted: bool,
    ) -> tuple[Address | None, str]:
        """The request's client address and scheme ("http"/"https" or "ws"/"wss")."""
        if not (self.enabled and peer_trusted):
            return client, scheme
        forwarded_for = forwarded_port = forwarded_proto = None
        for name, value in headers:
            if name == self.host_header:
                forwarded_for = value if forwarded_for is None else forwarded_for + b"," + value
            elif name == self.port_header:
                forwarded_port = value
            elif name == self.proto_header:
                forwarded_proto = value
        if forwarded_for is not None:
            host = self._client_from(forwarded_for.decode("latin-1"))
            if host is not None:
                client = (host, _port(forwarded_port))
        if forwarded_proto is not None:
            scheme = _scheme(forwarded_proto, scheme)
        return client, scheme

    def _client_from(self, value: str) -> str | None:
        hops = [hop.strip() for hop in value.split(",") if hop.strip()]
        if not hops:
            return None
        for hop in reversed(hops):
            host = _strip_port(hop)
            if not self.is_trusted(host):
                return self._address(host, value)
        return self._address(_strip_port(hops[0]), value)

    def _address(self, host: str, value: str) -> str | None:
        """``host`` if it is an IP address; else None (the peer address is kept)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "X-Forwarded-For hop %r is not an IP address; the peer address is used "
                    "instead (X-Forwarded-For: %r; logged once)",
                    host[:100],
                    value[:200],
                )
            return None
        return host


def _strip_port(hop: str) -> str:
    """ "[::1]:80" -> "::1", "1.2.3.4:80" -> "1.2.3.4"; a bare IPv6 address is kept."""
    if hop.startswith("["):
        end = hop.find("]")
        return hop[1:end] if end > 0 else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop


def _port(value: bytes | None) -> int:
    if value is None:
        return 0
    try:
        port = int(value.strip())
    except ValueError:
        return 0
    return port if 0 <= port <= 65535 else 0


def _scheme(value: bytes, current: str) -> str:
    proto = value.split(b",")[-1].strip().lower().decode("latin-1")
    websocket = current in ("ws", "wss")
    if proto in ("https", "wss"):
        return "wss" if websocket else "https"
    if proto in ("http", "ws"):
        return "ws" if websocket else "http"
    return current
