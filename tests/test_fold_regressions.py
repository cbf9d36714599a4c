"""Bugs the generic fold property (tests/test_folds_property.py) found, pinned one by one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ops_manager.engine._alert_dispatch_files import Outbox
from ops_manager.reducers.alerts import fold_outbox
from ops_manager.reducers.fleet_handoff import attempts_from_telemetry, fold_attempts
from ops_manager.reducers.fleet_policy import index_history, unsuppressed_candidates

UNHASHABLE: list[Any] = [[], ["executed"], {"status": "executed"}]


@pytest.mark.parametrize("status", UNHASHABLE)
def test_an_execution_result_with_a_non_string_status_is_skipped(status: Any) -> None:
    # was: TypeError (unhashable) from the status lookup; handoff.jsonl rows hold any JSON
    ok = {"intentId": "i-1", "idempotencyKey": "K", "status": "executed", "executionMode": "manual"}
    bad = dict(ok, intentId="i-2", status=status)
    assert fold_attempts({}, [ok, bad]) == fold_attempts({}, [ok])
    row = {"category": "fleet_handoff_execute", "execution": {"results": [bad, ok]}}
    assert list(attempts_from_telemetry([row])) == ["i-1"]


@pytest.mark.parametrize("field", ["idempotencyKey", "sinkId"])
@pytest.mark.parametrize("value", UNHASHABLE)
def test_an_outbox_record_with_a_non_string_key_or_sink_is_ignored(
    tmp_path: Path, field: str, value: Any
) -> None:
    # was: TypeError (unhashable) in fold_outbox and in the dispatcher's Outbox
    queued = {
        "timestamp": "2026-12-07T21:00:00Z",
        "status": "queued",
        "idempotencyKey": "k1",
        "sinkId": "pager",
        "sinkType": "pagerduty",
        "attempts": 0,
        "event": {"dedupKey": "loop-a:health:L1"},
    }
    records = [queued, dict(queued, **{field: value}), dict(queued, status="delivered")]
    entries = fold_outbox(records)
    assert list(entries) == [("k1", "pager")]
    assert entries[("k1", "pager")].status == "delivered"
    path = tmp_path / "alert-outbox.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    outbox = Outbox(path)
    assert outbox.records == 3
    assert {k: e.status for k, e in outbox.entries.items()} == {("k1", "pager"): "delivered"}


@pytest.mark.parametrize("suppressed", [0, 0.0])
def test_a_numeric_zero_suppressed_is_not_false(suppressed: Any) -> None:
    # fleet.md: (suppressed // false) == false; 0 is not false in jq (0 == False in Python)
    row = {"candidateId": "c-1", "timestamp": "2026-12-07T21:00:00Z", "suppressed": suppressed}
    assert dict(index_history([row]).last_unsuppressed) == {}
    assert dict(index_history([dict(row, suppressed=False)]).last_unsuppressed) == {
        "c-1": 1796677200
    }
    state = {
        "candidates": [{"candidateId": "c-1", "suppressed": suppressed}, {"candidateId": "c-2"}]
    }
    assert [c["candidateId"] for c in unsuppressed_candidates(state)] == ["c-2"]
