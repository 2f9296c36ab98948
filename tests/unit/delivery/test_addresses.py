"""Webhook targets: private, loopback and link-local addresses are refused unless marked internal."""

from __future__ import annotations

import ipaddress

import pytest

from broker.delivery.addresses import EndpointRefused, address_refusal, check_url, resolve


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not a public address"),
    ],
)
def test_non_public_addresses_are_refused(address: str, what: str) -> None:
    """Each non-public address is refused with a reason that names what it is."""
    why = address_refusal(ipaddress.ip_address(address))
    assert why is not None and what in why


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    """Public addresses have no refusal."""
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_public_endpoints_must_use_https() -> None:
    """An endpoint not marked internal must be https; an internal one may be plain http."""
    with pytest.raises(EndpointRefused, match="https"):
        check_url("http://example.org/hook", internal=False)
    assert check_url("http://127.0.0.1:8081/hook", internal=True) == ("127.0.0.1", 8081)
    assert check_url("https://example.org/hook", internal=False) == ("example.org", 443)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/hook",
        "https://[::ffff:192.168.0.1]/hook",
    ],
)
def test_literal_private_addresses_are_refused(url: str) -> None:
    """A URL with a literal non-public address is refused before any connection."""
    with pytest.raises(EndpointRefused, match="not marked internal"):
        check_url(url, internal=False)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "https:///nohost", "https://user:pw@example.org/", "nonsense"])
def test_malformed_endpoints_are_refused(url: str) -> None:
    """Other schemes, missing hosts and credentials in the URL are refused."""
    with pytest.raises(EndpointRefused):
        check_url(url, internal=True)


async def test_names_that_resolve_to_loopback_are_refused() -> None:
    """A host name is resolved and refused when an address it resolves to is loopback."""
    with pytest.raises(EndpointRefused, match="loopback"):
        await resolve("localhost", 443, internal=False)


async def test_internal_endpoints_may_resolve_anywhere() -> None:
    """An endpoint marked internal may resolve to loopback."""
    assert "127.0.0.1" in await resolve("127.0.0.1", 80, internal=True)
