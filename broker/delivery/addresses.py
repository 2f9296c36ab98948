"""Where a webhook may go: no loopback, link-local, private or otherwise non-public addresses.

A webhook URL comes from the directory, and a wrong or malicious entry must not
turn the dispatcher into a way to reach the broker's own network (server-side
request forgery). So unless the directory marks an endpoint internal:

- the URL must be ``https`` with a host name or address;
- the host is resolved and *every* address it resolves to must be public
  (``ipaddress``'s ``is_global``, with IPv4-mapped IPv6 addresses unwrapped);
- the connection is made only to the addresses that were checked (the
  dispatcher's resolver refuses the rest), so a name that resolves to a public
  address for the check and a private one for the connection gains nothing.

The checks on a URL and on an address are pure; only ``resolve`` does I/O.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse

from broker.errors import JigsawError

__all__ = ["EndpointRefused", "address_refusal", "check_url", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EndpointRefused(JigsawError):
    """The dispatcher will not deliver to this endpoint (the reason says why); retrying will not help."""

    code = "endpoint_refused"


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook may not go to ``address``, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for test, what in (
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
    ):
        if test:
            return f"{address} is a {what} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def check_url(url: str, *, internal: bool) -> tuple[str, int]:
    """The host and port a webhook URL names, if the URL itself is acceptable.

    Args:
        url: the endpoint from the directory.
        internal: the directory marks the endpoint internal (plain ``http`` and any address allowed).

    Raises:
        EndpointRefused: not http(s), no host, credentials in the URL, ``http`` for a public endpoint,
            or a literal address that is not public.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused(f"the endpoint {url!r} is not a valid URL: {exc}") from exc
    schemes = ("https", "http") if internal else ("https",)
    if parts.scheme not in schemes:
        raise EndpointRefused(f"the endpoint must be an {' or '.join(schemes)} URL, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise EndpointRefused("the endpoint URL has no host")
    if parts.username or parts.password:
        raise EndpointRefused("the endpoint URL must not carry credentials")
    host = parts.hostname
    if not internal:
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and (why := address_refusal(literal)) is not None:
            raise EndpointRefused(f"the endpoint {host} is refused: {why} (not marked internal in the directory)")
    return host, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int, *, internal: bool) -> list[str]:
    """Every address ``host`` resolves to, after checking each one (unless ``internal``).

    Raises:
        EndpointRefused: the name does not resolve, or resolves to an address that is not public.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EndpointRefused(f"the endpoint host {host} does not resolve: {exc}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise EndpointRefused(f"the endpoint host {host} resolves to no address")
    if not internal:
        for text in addresses:
            why = address_refusal(ipaddress.ip_address(text.split("%", 1)[0]))
            if why is not None:
                raise EndpointRefused(
                    f"the endpoint {host} is refused: it resolves to {why} (not marked internal in the directory)"
                )
    return addresses
