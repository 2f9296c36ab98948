"""The gateway's listening socket: connection caps, header deadlines, TLS and HTTP parse errors.

``GatewaySite`` is an aiohttp site that refuses a connection beyond
``http_max_connections`` in all, or beyond ``http_max_connections_per_address``
from one client address, by closing it at once (the handshake never starts).

``runner_options`` are the ``web.AppRunner`` arguments that bound a client:
``keepalive_timeout`` is ``http_header_timeout``, and aiohttp closes a
connection that has not completed a request head that long after it opened
or after its previous response, so a slow-loris trickle of headers is cut off;
its ``logger`` turns HTTP parse errors (garbage, oversized lines) into one log
line with no traceback and a count in the guard's tally of anonymous refusals.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from broker.gateway.limits import client_key
from broker.logging import get_logger
from broker.settings import Settings

__all__ = ["GatewaySite", "ServerLogger", "runner_options"]

_log = get_logger("jigsaw.gateway.listener")

NoteParseError = Callable[[str | None, str, str], None]


class ServerLogger(logging.Logger):
    """aiohttp's server logger: parse errors are counted and logged in one line; everything else passes on."""

    def __init__(self, note: NoteParseError) -> None:
        super().__init__("jigsaw.http")
        self.parent = logging.getLogger("aiohttp.server")
        self._note = note

    def _parse_error(self, args: tuple[object, ...], exc_info: object) -> bool:
        if not isinstance(exc_info, HttpProcessingError):
            return False
        client = str(args[0]) if args and args[0] is not None else None
        # Never the message: it quotes the bytes the client sent.
        _log.warning("http_parse_error", client=client, error=type(exc_info).__name__)
        self._note(client, "bad_http_request", "unparsed")
        return True

    def exception(
        self,
        msg: object,
        *args: object,
        exc_info: Any = True,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """Count a parse error; log anything else as aiohttp would."""
        if not self._parse_error(args, exc_info):
            super().exception(msg, *args, exc_info=exc_info, stack_info=stack_info, stacklevel=stacklevel, extra=extra)

    def debug(
        self,
        msg: object,
        *args: object,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """Count a parse error aiohttp logs at debug level (a bad method on a first request)."""
        if not self._parse_error(args, exc_info):
            super().debug(msg, *args, exc_info=exc_info, stack_info=stack_info, stacklevel=stacklevel, extra=extra)


def runner_options(settings: Settings, note_parse_error: NoteParseError) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` that bound slow clients and record parse errors."""
    return {
        "keepalive_timeout": settings.http_header_timeout,
        "lingering_time": min(10.0, settings.http_body_timeout),
        "logger": ServerLogger(note_parse_error),
        "access_log": None,
    }


class _Capped(asyncio.Protocol):
    """Stands in front of one connection's real protocol, counting it against the caps."""

    def __init__(self, site: GatewaySite, factory: Callable[[], asyncio.Protocol]) -> None:
        self._site = site
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._key: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        key = client_key(str(peer[0])) if isinstance(peer, tuple) and peer else "unknown"
        if not self._site.admit(key):
            transport.close()
            return
        self._key = key
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._key is not None:
            self._site.release(self._key)
            self._key = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GatewaySite(web.BaseSite):
    """A TCP site (HTTP or HTTPS) with a cap on connections, in all and per client address."""

    __slots__ = (
        "_bound",
        "_by_client",
        "_handshake_timeout",
        "_host",
        "_max_per_client",
        "_max_total",
        "_open",
        "_port",
        "refused",
    )

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 1000,
        max_per_address: int = 100,
        handshake_timeout: float = 30.0,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._handshake_timeout = handshake_timeout
        self._host = host
        self._port = port
        self._bound: int | None = None
        self._max_total = max_connections
        self._max_per_client = max_per_address
        self._open = 0
        self._by_client: Counter[str] = Counter()
        self.refused = 0

    @property
    def name(self) -> str:
        """The site's URL."""
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the one asked for until started)."""
        return self._bound if self._bound is not None else self._port

    @property
    def runner(self) -> web.BaseRunner:
        """The runner this site serves (its ``cleanup`` stops everything)."""
        return self._runner

    @property
    def connections(self) -> int:
        """Connections open now."""
        return self._open

    def admit(self, key: str) -> bool:
        """Count a new connection from ``key`` if both caps allow it."""
        if self._open >= self._max_total or self._by_client[key] >= self._max_per_client:
            self.refused += 1
            _log.warning("connection_refused", client=key, open=self._open, reason="connection cap")
            return False
        self._open += 1
        self._by_client[key] += 1
        return True

    def release(self, key: str) -> None:
        """Forget a closed connection."""
        self._open -= 1
        self._by_client[key] -= 1
        if self._by_client[key] <= 0:
            del self._by_client[key]

    async def start(self) -> None:
        """Listen."""
        await super().start()
        server = self._runner.server
        assert server is not None
        handler_factory: Callable[[], asyncio.Protocol] = server
        listening = await asyncio.get_running_loop().create_server(
            lambda: _Capped(self, handler_factory),
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout if self._ssl_context else None,
            reuse_address=True,
        )
        self._server = listening
        self._bound = int(listening.sockets[0].getsockname()[1]) if listening.sockets else self._port
