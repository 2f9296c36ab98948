"""Token buckets, client keys and the bounded tally of anonymous refusals (pure)."""

from __future__ import annotations

import datetime as dt

from broker.gateway.limits import Rate, RateLimiter, RefusalTally, client_key, retry_after, take

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    """A full bucket allows `burst` requests at once, then one per 1/rate seconds."""
    rate = Rate(per_second=2.0, burst=3.0)
    bucket = None
    waits = []
    for _ in range(4):
        bucket, wait = take(bucket, rate, 0.0)
        waits.append(wait)
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == 0.5
    bucket, wait = take(bucket, rate, 0.5)
    assert wait == 0.0
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


def test_limiter_keeps_buckets_apart_and_bounded() -> None:
    """Each key has its own bucket; the least recently used are forgotten past max_keys."""
    now = [0.0]
    limiter = RateLimiter(Rate(1.0, 1.0), max_keys=3, clock=lambda: now[0])
    assert limiter.check("a") == 0.0
    assert limiter.check("a") > 0.0
    assert limiter.check("b") == 0.0
    for key in ("c", "d", "e"):
        limiter.check(key)
    assert len(limiter) == 3


def test_ipv6_clients_are_limited_by_their_64() -> None:
    """Addresses in one IPv6 /64 share a key; IPv4 and mapped IPv4 are themselves."""
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("192.0.2.7") == client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("not an address") == "not an address"


def test_tally_summarises_per_address_and_stays_bounded() -> None:
    """Many refusals from a few addresses become one summary each; past max_clients they count as 'other'."""
    tally = RefusalTally(max_clients=2)
    for i in range(1000):
        tally.note("192.0.2.1", "unauthenticated", "/v1/events", T0 + dt.timedelta(seconds=i))
    tally.note("192.0.2.2", "not_found", "unmatched", T0)
    for i in range(50):
        tally.note(f"198.51.100.{i}", "unauthenticated", "/v1/inbox", T0)
    tally.note("192.0.2.1", "rate_limited", "/v1/events", T0, caller="POLICE-WYP")
    summaries = {(s["client"], s["caller"]): s for s in tally.drain()}
    assert len(summaries) == 3
    first = summaries[("192.0.2.1", None)]
    assert first["count"] == 1000 and first["codes"] == {"unauthenticated": 1000}
    assert first["first_at"] == "2026-01-01T00:00:00.000Z" and first["last_at"] == "2026-01-01T00:16:39.000Z"
    assert summaries[("other", None)]["count"] == 51  # the 50 newcomers and the credential's 429
    assert tally.drain() == []
