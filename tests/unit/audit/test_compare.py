"""The output comparison keeps digests only and reads doubted records back to name conflicts and unexpected outputs."""

from __future__ import annotations

import json

from broker.audit.compare import OutputCheck
from broker.audit.outputs import OutputIndex
from broker.audit.window import Window
from broker.log.base import Record

TOPIC = "jigsaw.notifications"


def _record(offset: int, ident: str, body: dict[str, object]) -> Record:
    value = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return Record(TOPIC, 0, offset, b"GP-1", value, (("notification_id", ident.encode()),), 1_000 + offset)


def _body(ident: str, priority: str = "urgent") -> dict[str, object]:
    return {"notification_id": ident, "at": "2022-01-01T00:00:00Z", "event_id": "e-1", "priority": priority}


def test_an_id_recorded_twice_with_other_content_is_a_conflict_and_the_same_bytes_twice_is_not() -> None:
    """Only a repeat whose digest differs is read back; one whose content differs is named at its position."""
    index = OutputIndex()
    try:
        check = OutputCheck(index, Window.everything(), [])
        records = [
            _record(0, "n-1", _body("n-1")),
            _record(1, "n-1", _body("n-1")),
            _record(2, "n-2", _body("n-2")),
            _record(3, "n-2", _body("n-2", "routine")),
        ]
        check.recorded("notification", records)
        check.recorded_done()
        assert [d.row[3] for d in check.doubts] == [3]
        needed = check.rows_needed()
        assert {row[3] for row in needed} == {2, 3}  # the bytes stay on the log: both are read back
        check.settle({row[0]: records[row[3]].value for row in needed}, lambda _: None)
        assert [(f.code, f.offset) for f in check.findings] == [("notification_conflict", 3)]
        assert check.doubts == []
    finally:
        index.close()


def test_a_record_the_policy_never_gave_is_named_with_its_recipient_after_it_is_read_back() -> None:
    """At the end, unmatched records become doubts; settling them names each as unexpected."""
    index = OutputIndex()
    try:
        check = OutputCheck(index, Window.everything(), [])
        record = _record(0, "n-9", {**_body("n-9"), "recipient": "GP-1"})
        check.recorded("notification", [record])
        check.recorded_done()
        check.unexpected()
        check.settle({row[0]: record.value for row in check.rows_needed()}, lambda _: None)
        [finding] = check.findings
        assert finding.code == "unexpected_notification" and "to GP-1" in finding.message
        assert check.notifications == 1
    finally:
        index.close()
