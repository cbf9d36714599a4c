"""The lifecycle projection (loop.md §3.3, §7.2, Appendix A/D)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import parse_ts
from ops_manager.errors import OpsError
from ops_manager.reducers.lifecycle import (
    SnapshotView,
    project_lifecycle,
    validate_event_envelope,
    validate_snapshot_envelope,
)


def epoch(text: str) -> int:
    """Parse a contract timestamp that the test knows to be valid."""
    value = parse_ts(text)
    assert value is not None, text
    return value


NOW_A = epoch("2026-11-22T02:17:18Z")

GATES = {
    "tests": "ok",
    "validation": "ok",
    "prerequisites": "ok",
    "checklist": "ok",
    "evidence": "skipped",
    "approval": "none",
}
STUCK = {"streak": 0, "threshold": 3}


def snapshot(
    *,
    status: str = "running",
    active: Any = True,
    approval: Any = None,
    completion_ok: bool = False,
    count: int = 2,
    last_name: str | None = "iteration_start",
    last_at: str | None = "2026-02-22T10:00:05Z",
) -> dict[str, Any]:
    """A snapshot envelope shaped like the upstream fixture's."""
    return {
        "schemaVersion": "v1",
        "envelopeType": "loop_run_snapshot",
        "emittedAt": "2026-11-22T02:17:16Z",
        "traceId": "trace-1",
        "source": {"repoPath": "<R>", "loopId": "demo-loop"},
        "run": {
            "runId": "run-123",
            "iteration": 1,
            "status": status,
            "summary": {"run_id": "run-123", "completion_ok": completion_ok, "gates": GATES},
        },
        "runtime": {
            "superloopState": None
            if active == "no-state"
            else {"active": active, "current_loop_id": "demo-loop"},
            "activeRun": None,
            "approval": approval,
            "heartbeat": None,
        },
        "artifacts": {},
        "sequence": {"source": "cursor_event_line_offset", "value": count},
        "cursor": {"eventLineOffset": count, "eventLineCount": count},
        "health": {
            "eventCount": count,
            "lastEventAt": last_at,
            "lastEventName": last_name,
            "lastSummaryAt": None,
            "hasPendingApproval": isinstance(approval, dict)
            and approval.get("status") == "pending",
            "gates": GATES,
            "stuck": STUCK,
        },
    }


def event_envelope(name: str = "iteration_start", line: int = 2) -> dict[str, Any]:
    raw = {
        "timestamp": "2026-02-22T10:00:05Z",
        "event": name,
        "loop_id": "demo-loop",
        "run_id": "run-123",
        "iteration": 2,
        "data": {"started_at": "2026-02-22T10:00:05Z"},
    }
    return {
        "schemaVersion": "v1",
        "envelopeType": "loop_run_event",
        "emittedAt": "2026-11-22T02:17:17Z",
        "traceId": "trace-1",
        "source": {"repoPath": "<R>", "loopId": "demo-loop"},
        "sequence": {"source": "cursor_event_line_offset", "value": line},
        "cursor": {"eventLineOffset": line, "eventLineCount": line},
        "run": {"runId": "run-123", "iteration": 2},
        "event": {
            "timestamp": "2026-02-22T10:00:05Z",
            "name": name,
            "role": None,
            "status": None,
            "message": None,
            "payload": {"started_at": "2026-02-22T10:00:05Z"},
            "raw": raw,
        },
    }


def project(
    snap: dict[str, Any],
    event: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    return project_lifecycle(
        SnapshotView.from_envelope(snap),
        last_event_envelope=event,
        previous_state=previous,
        now=NOW_A,
        snapshot_file=kwargs.pop("snapshot_file", "<T>/snapshot.json"),
        events_file=kwargs.pop("events_file", "<T>/events.ndjson"),
        **kwargs,
    )


APPENDIX_A_STATE = (
    '{"schemaVersion":"v1","generatedAt":"2026-11-22T02:17:18Z","source":{"repoPath":"<R>",'
    '"loopId":"demo-loop"},"run":{"runId":"run-123","iteration":1},"transition":{"previousState":'
    '"none","triggeringSignal":"event:iteration_start","currentState":"running","confidence":"high"},'
    '"projection":{"status":"running","hasPendingApproval":false,"completionOk":false,"gates":'
    '{"tests":"ok","validation":"ok","prerequisites":"ok","checklist":"ok","evidence":"skipped",'
    '"approval":"none"},"stuck":{"streak":0,"threshold":3},"active":true,"lastEventName":'
    '"iteration_start","lastEventAt":"2026-02-22T10:00:05Z"},"cursor":{"eventLineOffset":2,'
    '"eventLineCount":2},"divergence":{"any":false,"flags":{"activeMismatch":false,'
    '"approvalCompletionConflict":false,"cursorRegression":false}},"evidence":{"snapshotFile":'
    '"<T>/snapshot.json","eventsFile":"<T>/events.ndjson","snapshotEnvelope":{"runStatus":"running",'
    '"lastEventName":"iteration_start","hasPendingApproval":false},"lastEventEnvelope":'
    '{"schemaVersion":"v1","envelopeType":"loop_run_event","emittedAt":"2026-11-22T02:17:17Z",'
    '"traceId":"trace-1","source":{"repoPath":"<R>","loopId":"demo-loop"},"sequence":{"source":'
    '"cursor_event_line_offset","value":2},"cursor":{"eventLineOffset":2,"eventLineCount":2},"run":'
    '{"runId":"run-123","iteration":2},"event":{"timestamp":"2026-02-22T10:00:05Z","name":'
    '"iteration_start","role":null,"status":null,"message":null,"payload":{"started_at":'
    '"2026-02-22T10:00:05Z"},"raw":{"timestamp":"2026-02-22T10:00:05Z","event":"iteration_start",'
    '"loop_id":"demo-loop","run_id":"run-123","iteration":2,"data":{"started_at":'
    '"2026-02-22T10:00:05Z"}}}}}}'
)


def test_appendix_a_state_is_byte_identical() -> None:
    assert dumps_compact(project(snapshot(), event_envelope())) == APPENDIX_A_STATE


def test_repo_path_override_q36() -> None:
    state = project(snapshot(), event_envelope(), repo_path="/local/repo")
    assert state["source"] == {"repoPath": "/local/repo", "loopId": "demo-loop"}


def test_running_with_events_7_2_24() -> None:
    state = project(snapshot(), event_envelope("role_end", 3))
    assert state["transition"]["currentState"] == "running"
    assert state["transition"]["triggeringSignal"].startswith("event:")
    assert state["divergence"]["any"] is False


def test_approval_completion_conflict_7_2_25() -> None:
    snap = snapshot(status="awaiting_approval", approval={"status": "pending"}, completion_ok=True)
    state = project(snap, None, events_file=None)
    assert state["divergence"]["flags"]["approvalCompletionConflict"] is True
    assert state["divergence"]["any"] is True
    assert state["transition"]["confidence"] == "low"
    assert state["evidence"]["eventsFile"] is None


def test_cursor_regression_7_2_26() -> None:
    state = project(snapshot(count=2), None, {"cursor": {"eventLineOffset": 99}})
    assert state["divergence"]["flags"]["cursorRegression"] is True


def test_no_events_7_2_28() -> None:
    state = project(snapshot(status="idle"), None)
    assert state["transition"]["triggeringSignal"] == "snapshot_status:idle"
    assert state["transition"]["confidence"] == "medium"
    assert state["evidence"]["lastEventEnvelope"] is None


def test_active_mismatch_and_real_false_7_2_29() -> None:
    state = project(snapshot(active=False), event_envelope("iteration_start"))
    assert state["divergence"]["flags"]["activeMismatch"] is True
    assert state["transition"]["confidence"] == "low"
    # DECISIONS rule 3 / Q-6: false is emitted as false (upstream printed null)
    assert state["projection"]["active"] is False


def test_previous_state_7_2_30() -> None:
    first = project(snapshot(status="idle"), None)
    assert first["transition"]["previousState"] == "none"
    second = project(snapshot(), event_envelope(), first)
    assert second["transition"]["previousState"] == "idle"


def test_appendix_d_truncation_state() -> None:
    # the divergence escalation of scenario D carries this transition/projection/cursor
    previous = json.loads(APPENDIX_A_STATE)
    snap = snapshot(count=1, last_name="loop_start", last_at="2026-02-22T10:00:00Z")
    env = event_envelope("loop_start", 1)
    state = project(snap, env, previous)
    assert dumps_compact(
        {
            "transition": state["transition"],
            "projection": state["projection"],
            "cursor": state["cursor"],
        }
    ) == (
        '{"transition":{"previousState":"running","triggeringSignal":"event:loop_start",'
        '"currentState":"running","confidence":"low"},"projection":{"status":"running",'
        '"hasPendingApproval":false,"completionOk":false,"gates":{"tests":"ok","validation":"ok",'
        '"prerequisites":"ok","checklist":"ok","evidence":"skipped","approval":"none"},"stuck":'
        '{"streak":0,"threshold":3},"active":true,"lastEventName":"loop_start","lastEventAt":'
        '"2026-02-22T10:00:00Z"},"cursor":{"eventLineOffset":1,"eventLineCount":1}}'
    )
    assert state["divergence"] == {
        "any": True,
        "flags": {
            "activeMismatch": False,
            "approvalCompletionConflict": False,
            "cursorRegression": True,
        },
    }


@pytest.mark.parametrize(
    ("active", "event", "mismatch"),
    [
        (True, "iteration_start", False),
        (False, "iteration_start", True),
        (None, "role_start", True),
        ("no-state", "tests_end", True),
        ("true", "validation_start", True),  # only a real true counts as active
        (False, "loop_stop", False),
        (False, None, False),
    ],
)
def test_active_mismatch_table(active: Any, event: str | None, mismatch: bool) -> None:
    env = event_envelope(event) if event else None
    state = project(snapshot(active=active), env)
    assert state["divergence"]["flags"]["activeMismatch"] is mismatch


@pytest.mark.parametrize(
    ("previous", "regression"),
    [
        (None, False),
        ({}, False),
        ({"cursor": {"eventLineOffset": 2}}, False),
        ({"cursor": {"eventLineOffset": 3}}, True),
        ({"cursor": {"eventLineOffset": 3.0}}, True),
        ({"cursor": {"eventLineOffset": "9"}}, False),
        ({"cursor": {"eventLineOffset": -1}}, False),
        ({"cursor": "x"}, False),
    ],
)
def test_cursor_regression_table(previous: dict[str, Any] | None, regression: bool) -> None:
    state = project(snapshot(count=2), None, previous)
    assert state["divergence"]["flags"]["cursorRegression"] is regression


def test_from_envelope_defaults_on_sparse_snapshot() -> None:
    view = SnapshotView.from_envelope(
        {"source": {"loopId": "l"}, "run": {"iteration": "7"}, "runtime": {}}
    )
    assert view.run_id == "unknown"
    assert view.status == "unknown"
    assert view.iteration == 7
    assert view.active is None
    assert view.gates is None and view.stuck is None
    assert view.event_line_count == 0 and view.cursor_offset == 0
    assert view.has_pending_approval is False and view.completion_ok is False


def test_key_order() -> None:
    state = project(snapshot(), event_envelope())
    assert list(state) == [
        "schemaVersion",
        "generatedAt",
        "source",
        "run",
        "transition",
        "projection",
        "cursor",
        "divergence",
        "evidence",
    ]
    assert list(state["evidence"]) == [
        "snapshotFile",
        "eventsFile",
        "snapshotEnvelope",
        "lastEventEnvelope",
    ]


# --- envelope validation ----------------------------------------------------------------------


def _mutations(base: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for path, value in [
        (("schemaVersion",), "v2"),
        (("source", "loopId"), "other-loop"),
        (("source",), None),
    ]:
        obj = copy.deepcopy(base)
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        out.append(obj)
    return out


def test_validate_snapshot_envelope() -> None:
    validate_snapshot_envelope(snapshot(), "demo-loop")
    bad: list[Any] = [*_mutations(snapshot()), event_envelope(), [], "x", None]
    for obj in bad:
        with pytest.raises(OpsError, match=r"^snapshot envelope is invalid or loop id mismatch$"):
            validate_snapshot_envelope(obj, "demo-loop")


def test_validate_event_envelope() -> None:
    validate_event_envelope(event_envelope(), "demo-loop")
    no_name = event_envelope()
    no_name["event"]["name"] = ""
    bad: list[Any] = [
        *_mutations(event_envelope()),
        snapshot(),
        {"not": "a-valid-envelope"},
        no_name,
        3,
    ]
    for obj in bad:
        with pytest.raises(OpsError, match=r"^event envelope is invalid or loop id mismatch$"):
            validate_event_envelope(obj, "demo-loop")


# --- properties ---------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-5, 2**40) | st.text(max_size=5)
json_values = st.recursive(
    json_scalars | st.sampled_from(["pending", "iteration_start", "running"]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=10,
)
KEYS = st.sampled_from(
    [
        "source",
        "repoPath",
        "loopId",
        "run",
        "runId",
        "iteration",
        "status",
        "summary",
        "completion_ok",
        "runtime",
        "approval",
        "superloopState",
        "active",
        "health",
        "gates",
        "lastEventName",
        "cursor",
        "eventLineOffset",
        "eventLineCount",
        "event",
        "name",
        "transition",
        "currentState",
    ]
)
json_dicts = st.recursive(
    st.dictionaries(KEYS, json_values, max_size=4),
    lambda c: st.dictionaries(KEYS, c | json_values, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_dicts, st.none() | json_dicts, st.none() | json_dicts, st.integers(0, 2**33))
def test_property_total_and_deterministic(
    snap: dict[str, Any], event: dict[str, Any] | None, previous: dict[str, Any] | None, now: int
) -> None:
    def run() -> dict[str, Any]:
        return project_lifecycle(
            SnapshotView.from_envelope(snap),
            last_event_envelope=event,
            previous_state=previous,
            now=now,
            snapshot_file=None,
            events_file=None,
        )

    a = run()
    assert dumps_compact(a) == dumps_compact(run())
    flags = a["divergence"]["flags"]
    assert a["divergence"]["any"] is any(flags.values())
    assert all(isinstance(v, bool) for v in flags.values())
    assert (a["transition"]["confidence"] == "low") is a["divergence"]["any"]
