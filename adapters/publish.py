"""Sending prepared events through ``broker.client.JigsawClient``: the adapters' imperative shell.

``publish_records`` and ``publish_file`` are what other code calls (``jigsaw
demo`` publishes the review's cases this way); ``jigsaw adapter`` adds the
command line, dry runs and the progress bar.

Events go in batches (``POST /v1/events:batch``). The gateway answers each
event: 202 accepted, 200 accepted before ("already sent": a re-run of the same
file), or a refusal with a code and message, reported against the event's row.
A batch the gateway cannot take as a whole (too large) is split in halves; one
it cannot answer (unreachable, 5xx) is tried again a few times, and its events
are reported as failed if it still cannot. Row contents are never logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from adapters.base import Adapter
from adapters.files import read_export, rows_from_records
from adapters.prepare import Preparation, Prepared, RowRefusal, prepare
from broker.client import JigsawClient, SendResult
from broker.errors import ConfigError, JigsawError
from broker.logging import get_logger

__all__ = ["RETRY_DELAYS", "Report", "publish_file", "publish_records", "resolve_adapter", "send_prepared"]

RETRY_DELAYS = (0.5, 2.0, 5.0)  # seconds before each further try of a batch the gateway could not answer
_log = get_logger("jigsaw.adapter")

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], Awaitable[None]]


def resolve_adapter(agency: str | Adapter) -> Adapter:
    """The adapter named ``agency`` (police, gp, midwifery, csc), or the adapter itself.

    Raises:
        ConfigError: no adapter has that name.
    """
    if isinstance(agency, Adapter):
        return agency
    from adapters import ADAPTERS

    found = ADAPTERS.get(agency)
    if found is None:
        raise ConfigError(f"no adapter {agency!r}; choose one of {', '.join(ADAPTERS)}")
    return found


@dataclasses.dataclass
class Report:
    """What happened to one export: counts, and every refused or failed row with its reason."""

    agency: str
    source: str
    name: str
    rows: int = 0
    events: int = 0
    accepted: int = 0
    already_sent: int = 0
    repeats: int = 0
    refused: list[RowRefusal] = dataclasses.field(default_factory=list)
    failed: list[RowRefusal] = dataclasses.field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when no row was refused and nothing failed."""
        return not self.refused and not self.failed

    @property
    def refused_rows(self) -> list[int]:
        """The numbers of the refused rows, in order, each once."""
        return sorted({r.row for r in self.refused})

    @classmethod
    def of(cls, adapter: Adapter, source: str, name: str, preparation: Preparation, *, dry_run: bool = False) -> Report:
        """A report of a prepared export, before anything is sent."""
        return cls(
            adapter.name,
            source,
            name,
            rows=preparation.rows,
            events=len(preparation.events),
            repeats=preparation.repeats,
            refused=list(preparation.refused),
            dry_run=dry_run,
        )

    def summary(self) -> dict[str, Any]:
        """The counts (the summary line of ``jigsaw adapter``)."""
        out: dict[str, Any] = {
            "agency": self.agency,
            "source": self.source,
            "file": self.name,
            "rows": self.rows,
            "events": self.events,
            "refused_rows": len(self.refused_rows),
            "repeated_in_file": self.repeats,
        }
        if self.dry_run:
            out["would_send"] = self.events
        else:
            failed_events = len(self.failed)
            out.update(accepted=self.accepted, already_sent=self.already_sent, failed=failed_events)
        out["dry_run"] = self.dry_run
        return out

    def to_json(self) -> dict[str, Any]:
        """The summary with every refused and failed row (the report written beside a watched file)."""
        return {
            **self.summary(),
            "refused": [r.to_json() for r in self.refused],
            "failed": [r.to_json() for r in self.failed],
        }


def _refusal(prepared: Prepared, result: SendResult) -> RowRefusal:
    message = str(result.body.get("message") or f"the gateway answered {result.status}")
    return RowRefusal(prepared.row, result.error or f"http_{result.status}", message, prepared.record.ref)


def _failure(prepared: Sequence[Prepared], error: str, message: str) -> list[RowRefusal]:
    return [RowRefusal(p.row, error, message, p.record.ref) for p in prepared]


async def _send_one_batch(client: JigsawClient, chunk: Sequence[Prepared], report: Report, sleep: Sleep) -> str | None:
    """Send one batch and record its results; the error that should stop the run (401, 403), or None.

    Every event of ``chunk`` ends up counted once: accepted, already sent, refused or failed.
    """
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            results = await client.send_batch([p.envelope for p in chunk])
        except JigsawError as exc:  # the gateway refused the batch as a whole (client.error_for_response)
            status = int(exc.evidence.get("status") or 0)
            body = exc.evidence.get("body") or {}
            code, message = str(body.get("error") or f"http_{status}"), str(body.get("message") or exc.message)
            if status in (401, 403):  # the credential, not the rows: nothing else will go either
                report.failed += _failure(chunk, code, message)
                return f"{code}: {message}"
            if status in (400, 413) and len(chunk) > 1:  # too many or too large together: halve it
                half = len(chunk) // 2
                stop = await _send_one_batch(client, chunk[:half], report, sleep)
                if stop is not None:
                    report.failed += _failure(
                        chunk[half:], "not_sent", f"not sent: an earlier batch was refused ({stop})"
                    )
                    return stop
                return await _send_one_batch(client, chunk[half:], report, sleep)
            if status < 500:  # this one event, on its own, is refused
                report.refused += _failure(chunk, code, message)
                return None
            reason = f"the gateway answered {status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"the gateway could not be reached ({type(exc).__name__})"
        else:
            if len(results) != len(chunk):
                report.failed += _failure(chunk, "bad_response", "the gateway's answer did not cover every event")
                return None
            for prepared, result in zip(chunk, results, strict=True):
                if result.status == 202:
                    report.accepted += 1
                elif result.status == 200:
                    report.already_sent += 1
                else:
                    report.refused.append(_refusal(prepared, result))
            return None
        _log.warning("batch_not_sent", attempt=attempt + 1, events=len(chunk), reason=reason)
        if delay is None:
            report.failed += _failure(chunk, "gateway_unavailable", f"{reason}; nothing in this batch was confirmed")
            return None
        await sleep(delay)
    return None


async def send_prepared(
    preparation: Preparation,
    client: JigsawClient,
    report: Report,
    *,
    batch: int = 100,
    progress: Callable[[int], None] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Report:
    """Send the prepared events in batches and record the gateway's answers in ``report``."""
    if batch < 1:
        raise ConfigError("the batch size must be at least 1")
    events = preparation.events
    done = 0
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        stop = await _send_one_batch(client, chunk, report, sleep)
        done += len(chunk)
        if progress is not None:
            progress(done)
        if stop is not None:
            rest = events[start + batch :]
            report.failed += _failure(rest, "not_sent", f"not sent: an earlier batch was refused ({stop})")
            if progress is not None:
                progress(len(events))
            break
    report.refused.sort(key=lambda r: r.row)
    report.failed.sort(key=lambda r: r.row)
    _log.info(
        "export_sent",
        agency=report.agency,
        source=report.source,
        events=report.events,
        accepted=report.accepted,
        already_sent=report.already_sent,
        refused_rows=len(report.refused_rows),
        failed=len(report.failed),
    )
    return report


def _adapter_of(agency: str | Adapter, client: JigsawClient) -> Adapter:
    adapter = resolve_adapter(agency)
    if client.key is None:
        raise ConfigError("the client has no signing key: JigsawClient(url, token, key=...)")
    return adapter


async def _publish(
    adapter: Adapter,
    items: list[Any],
    client: JigsawClient,
    name: str,
    *,
    batch: int,
    clock: Clock | None,
    progress: Callable[[int], None] | None,
    sleep: Sleep,
) -> Report:
    assert client.key is not None
    now = clock() if clock is not None else dt.datetime.now(dt.UTC)
    preparation = prepare(adapter, items, client.key, now=now)
    report = Report.of(adapter, client.key.org_id, name, preparation)
    return await send_prepared(preparation, client, report, batch=batch, progress=progress, sleep=sleep)


async def publish_records(
    agency: str | Adapter,
    records: Iterable[Mapping[str, Any]],
    client: JigsawClient,
    *,
    batch: int = 100,
    clock: Clock | None = None,
    name: str = "records",
    progress: Callable[[int], None] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Report:
    """Map, sign, check and send records given as data (each like one record of the agency's JSON export).

    Args:
        agency: ``police``, ``gp``, ``midwifery`` or ``csc`` (or an ``Adapter``).
        records: JSON-like objects; nested objects and lists flatten to the CSV column names.
        client: a ``JigsawClient`` with the agency's signing key (its org id is the source).
        batch: events per ``POST /v1/events:batch``.
        clock: the signing time (default: now); a simulated clock must match the gateway's.
        name: what the report calls the input.

    Raises:
        ConfigError: no such adapter, no key on the client, or a key of the wrong kind of organisation.
    """
    adapter = _adapter_of(agency, client)
    items = rows_from_records(records)
    return await _publish(adapter, items, client, name, batch=batch, clock=clock, progress=progress, sleep=sleep)


async def publish_file(
    agency: str | Adapter,
    path: Path,
    client: JigsawClient,
    *,
    batch: int = 100,
    clock: Clock | None = None,
    progress: Callable[[int], None] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Report:
    """``publish_records`` for an export file (CSV, JSON or JSON Lines).

    Raises:
        ExportUnreadable: the file cannot be read as a whole.
        ConfigError: as ``publish_records``.
    """
    adapter = _adapter_of(agency, client)
    items = read_export(path)
    return await _publish(adapter, items, client, str(path), batch=batch, clock=clock, progress=progress, sleep=sleep)
