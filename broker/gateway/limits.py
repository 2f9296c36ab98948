"""Abuse limits as plain data: token buckets and a bounded tally of anonymous refusals (pure, no I/O).

``take`` is one token bucket step: a bucket holds at most ``burst`` tokens,
refills at ``per_second``, and a request spends one; when none is left it says
how long until one is. ``RateLimiter`` keeps a bucket per key (a client
address, a credential), forgetting the least recently used when it holds
``max_keys``, so memory stays bounded whatever a flood sends.

``RefusalTally`` is how refusals of callers with no valid credential stay
bounded under a flood: instead of one record per request, one summary per
client address per interval (a count, the refusal codes and routes, first and
last time), at most ``max_clients`` addresses apart (the rest are summed under
``"other"``). Refusals of authenticated callers are never tallied (each is
recorded on its own) except answers of 429 to a credential over its rate,
which are summarised per credential and address in the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

__all__ = ["Bucket", "Rate", "RateLimiter", "RefusalTally", "client_key", "retry_after", "take"]


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """A sustained rate (requests a second) and the burst allowed above it."""

    per_second: float
    burst: float


@dataclasses.dataclass(frozen=True, slots=True)
class Bucket:
    """Tokens left at a moment (monotonic seconds)."""

    tokens: float
    at: float


def take(bucket: Bucket | None, rate: Rate, now: float) -> tuple[Bucket, float]:
    """Spend one token: the bucket after, and 0.0 when allowed or else the seconds until a token is due."""
    if bucket is None:
        tokens = rate.burst
    else:
        tokens = min(rate.burst, bucket.tokens + max(0.0, now - bucket.at) * rate.per_second)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / rate.per_second


def retry_after(wait: float) -> str:
    """The ``Retry-After`` header value for a wait in seconds (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait)))


def client_key(address: str) -> str:
    """The key a client address is limited under: the address, or its /64 for IPv6 (one site's allocation)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class RateLimiter:
    """Token buckets by key, bounded in memory."""

    def __init__(self, rate: Rate, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str) -> float:
        """Spend a token of ``key``'s bucket: 0.0 when allowed, else the seconds to wait."""
        bucket, wait = take(self._buckets.get(key), self.rate, self._clock())
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


@dataclasses.dataclass(slots=True)
class _Tally:
    first_at: dt.datetime
    last_at: dt.datetime
    count: int = 0
    codes: Counter[str] = dataclasses.field(default_factory=Counter)
    routes: Counter[str] = dataclasses.field(default_factory=Counter)


OTHER = "other"


class RefusalTally:
    """Counts of refusals by client address until drained into summary records."""

    def __init__(self, *, max_clients: int = 10_000) -> None:
        self._max_clients = max_clients
        self._by_client: dict[tuple[str, str | None], _Tally] = {}

    def __len__(self) -> int:
        return sum(t.count for t in self._by_client.values())

    def note(self, client: str, code: str, route: str, now: dt.datetime, *, caller: str | None = None) -> None:
        """Count one refusal of ``client`` (an address) with ``code`` on ``route`` (a route pattern, not a path).

        ``caller`` names a credential whose requests were refused before being looked at (rate limited).
        """
        key = (client_key(client), caller)
        if key not in self._by_client and len(self._by_client) >= self._max_clients:
            key = (OTHER, None)
        tally = self._by_client.get(key)
        if tally is None:
            tally = self._by_client[key] = _Tally(now, now)
        tally.count += 1
        tally.last_at = now
        tally.codes[code[:40]] += 1
        if len(tally.routes) < 32 or route in tally.routes:
            tally.routes[route[:100]] += 1

    def drain(self) -> list[dict[str, object]]:
        """One summary record per client address since the last drain (then forget them)."""
        out: list[dict[str, object]] = []
        for (client, caller), tally in sorted(self._by_client.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            who = f"{caller} from {client}" if caller else f"{client} without a valid credential"
            out.append(
                {
                    "error": "refusal_summary",
                    "caller": caller,
                    "client": client,
                    "count": tally.count,
                    "codes": dict(sorted(tally.codes.items())),
                    "routes": dict(sorted(tally.routes.items())),
                    "first_at": _iso(tally.first_at),
                    "last_at": _iso(tally.last_at),
                    "message": f"{tally.count} request(s) by {who} were refused; "
                    "summarised per address and interval to keep the log bounded under a flood",
                }
            )
        self._by_client = {}
        return out


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
