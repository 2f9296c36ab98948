"""TLS for the gateway, for webhooks, and the rule that a bearer token never crosses a network in clear.

- ``server_context``: HTTPS for ``jigsaw serve`` from ``JIGSAW_TLS_CERT_FILE``
  and ``JIGSAW_TLS_KEY_FILE`` (TLS 1.2 at least); with
  ``JIGSAW_TLS_CLIENT_CA_FILE`` every client must present a certificate that
  CA issued (mutual TLS for agencies), verified in the handshake.
- ``client_context``: the system's trusted CAs, plus one more CA file when
  given (``JIGSAW_WEBHOOK_CA_FILE`` for webhook receivers on a private CA).
- ``check_token_transport``: a bearer token may go over plain ``http`` only
  to a loopback host; anywhere else it must be ``https``.
"""

from __future__ import annotations

import ipaddress
import ssl
import urllib.parse
from pathlib import Path

from broker.errors import ConfigError

__all__ = ["check_token_transport", "client_context", "is_loopback_host", "server_context"]


def server_context(cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> ssl.SSLContext:
    """The gateway's TLS context.

    Raises:
        ConfigError: a file is missing, unreadable, not PEM, or the key does not match the certificate.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use the TLS certificate {cert_file} with the key {key_file}: {exc}; "
            "check both are PEM and that the key belongs to the certificate"
        ) from exc
    if client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot read the client CA file {client_ca_file}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's CAs, and ``ca_file``'s too when given.

    Raises:
        ConfigError: the CA file cannot be read.
    """
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot read the CA file {ca_file}: {exc}") from exc
    return context


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token_transport(url: str) -> None:
    """Refuse to send a bearer token to ``url`` unless it is ``https``, or ``http`` to a loopback host.

    Raises:
        ConfigError: the URL is not http(s), has no host, or is plain http to another machine.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the gateway URL {url!r} must be https://host[:port]")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"refusing to send a bearer token over plain http to {parts.hostname}: "
            f"use https://{parts.netloc} (plain http is allowed only to this machine)"
        )
