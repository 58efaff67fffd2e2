"""Proxy headers: trusted peers only, rightmost untrusted client, renamed headers."""

from __future__ import annotations

import pytest

from narrows.server.config import Config
from narrows.server.proxy import ProxyHeaders


def resolve(config: Config, headers: list[tuple[bytes, bytes]], peer: str | None = "127.0.0.1"):
    proxy = ProxyHeaders(config)
    client = (peer, 40000) if peer else None
    return proxy.resolve(headers, client, "http", peer_trusted=proxy.is_trusted(peer))


ON = Config(proxy_headers=True)


def test_off_by_default() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1")]
    assert resolve(Config(), headers) == (("127.0.0.1", 40000), "http")


def test_client_and_port_and_scheme_from_trusted_loopback_peer() -> None:
    headers = [
        (b"x-forwarded-for", b"203.0.113.5"),
        (b"x-forwarded-port", b"8443"),
        (b"x-forwarded-proto", b"https"),
    ]
    assert resolve(ON, headers) == (("203.0.113.5", 8443), "https")


def test_port_defaults_to_zero_like_daphne() -> None:
    assert resolve(ON, [(b"x-forwarded-for", b"203.0.113.5")]) == (("203.0.113.5", 0), "http")


def test_rightmost_untrusted_address_is_the_client() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.5, 127.0.0.1")]
    assert resolve(ON, headers)[0] == ("203.0.113.5", 0)


def test_all_trusted_gives_leftmost() -> None:
    config = Config(proxy_headers=True, forwarded_allow_ips=("127.0.0.1", "10.0.0.0/8"))
    headers = [(b"x-forwarded-for", b"10.1.1.1, 10.2.2.2")]
    assert resolve(config, headers)[0] == ("10.1.1.1", 0)


def test_repeated_header_lines_are_joined() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"198.51.100.1")]
    assert resolve(ON, headers)[0] == ("198.51.100.1", 0)


def test_untrusted_peer_is_ignored() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-proto", b"https")]
    assert resolve(ON, headers, peer="198.51.100.9") == (("198.51.100.9", 40000), "http")


def test_unix_socket_peer_is_trusted() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7")]
    assert resolve(ON, headers, peer=None)[0] == ("203.0.113.7", 0)


def test_star_trusts_everyone_and_networks_work() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7")]
    star = Config(proxy_headers=True, forwarded_allow_ips=("*",))
    assert resolve(star, headers, peer="198.51.100.9")[0] == ("203.0.113.7", 0)
    net = Config(proxy_headers=True, forwarded_allow_ips=("198.51.100.0/24",))
    assert resolve(net, headers, peer="198.51.100.9")[0] == ("203.0.113.7", 0)


def test_renamed_headers() -> None:
    config = Config(
        proxy_headers=True, proxy_headers_host="X-Real-IP", proxy_headers_port="X-Real-Port"
    )
    headers = [
        (b"x-real-ip", b"203.0.113.8"),
        (b"x-real-port", b"99"),
        (b"x-forwarded-for", b"9.9.9.9"),
    ]
    assert resolve(config, headers)[0] == ("203.0.113.8", 99)


@pytest.mark.parametrize(
    ("proto", "scheme"), [(b"https", "wss"), (b"http", "ws"), (b"gopher", "ws")]
)
def test_websocket_schemes(proto: bytes, scheme: str) -> None:
    proxy = ProxyHeaders(ON)
    headers = [(b"x-forwarded-proto", proto)]
    assert proxy.resolve(headers, None, "ws", peer_trusted=True)[1] == scheme


def test_ipv6_and_ports_in_forwarded_for() -> None:
    headers = [(b"x-forwarded-for", b"[2001:db8::1]:1234")]
    assert resolve(ON, headers)[0] == ("2001:db8::1", 0)
    headers = [(b"x-forwarded-for", b"203.0.113.5:999")]
    assert resolve(ON, headers)[0] == ("203.0.113.5", 0)
