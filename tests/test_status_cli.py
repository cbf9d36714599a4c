"""End-to-end tests of ``ops-manager status`` (``loop.md`` §3.13, §7.8 items 101, 106-109).

Status reads what reconcile and control wrote and prints the operator view; it writes
nothing. Artifacts are produced by a real reconcile where possible and hand-written where a
producer (control, alert dispatch, profile drift) is not part of this test's scope.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.cli import main
from tests.runtime_fixtures import event, make_runtime_repo

LOOP = "demo-loop"
CLI = Path(sys.executable).parent / "ops-manager"
BIG = "999999999"
QUIET_INGEST = ("--degraded-ingest-lag-seconds", BIG, "--critical-ingest-lag-seconds", BIG)

TOP_KEYS = [
    "schemaVersion",
    "generatedAt",
    "source",
    "lifecycle",
    "health",
    "cursor",
    "control",
    "reconcile",
    "visibility",
    "tuning",
    "drift",
    "alerts",
    "traceLinkage",
    "files",
]
FILE_KEYS = [
    "stateFile",
    "cursorFile",
    "healthFile",
    "intentsFile",
    "heartbeatStateFile",
    "heartbeatTelemetryFile",
    "sequenceStateFile",
    "sequenceTelemetryFile",
    "controlInvocationsFile",
    "driftStateFile",
    "driftHistoryFile",
    "alertDispatchStateFile",
    "alertDispatchTelemetryFile",
    "reconcileTelemetryFile",
    "controlTelemetryFile",
]
TRACE_KEYS = [
    "controlTraceId",
    "controlInvocationTraceId",
    "reconcileTraceId",
    "heartbeatTraceId",
    "sequenceTraceId",
    "alertTraceId",
    "sharedTraceId",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def tel(repo: Path) -> Path:
    return ops(repo) / "telemetry"


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def status(capsys: pytest.CaptureFixture[str], repo: Path, *extra: object) -> dict[str, Any]:
    code, out, err = cli(capsys, "status", "--repo", repo, "--loop", LOOP, *extra)
    assert code == 0, err
    assert err == ""
    assert out.endswith("\n")
    result: dict[str, Any] = json.loads(out)
    return result


def status_error(capsys: pytest.CaptureFixture[str], repo: Path, *extra: object) -> str:
    code, out, err = cli(capsys, "status", "--repo", repo, "--loop", LOOP, *extra)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err[len("error: ") : -1]


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def append_jsonl(path: Path, *objs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for obj in objs:
            handle.write(json.dumps(obj, separators=(",", ":")) + "\n")
    return path


def tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def fresh_events() -> list[dict[str, Any]]:
    now = utc_now_epoch()
    return [
        event("loop_start", format_ts(now - 2), iteration=0),
        event("iteration_start", format_ts(now - 1)),
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_runtime_repo(tmp_path / "repo", events=fresh_events()).resolve()


@pytest.fixture
def reconciled(capsys: pytest.CaptureFixture[str], repo: Path) -> Path:
    """The repo after one successful reconcile with trace ``trace-1``."""
    code, _, err = cli(
        capsys, "reconcile", "--repo", repo, "--loop", LOOP, "--trace-id", "trace-1", *QUIET_INGEST
    )
    assert code == 0, err
    return repo


# --- fail closed -------------------------------------------------------------------------


def test_no_status_artifacts(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    """Item 106, also when other artifacts (cursor, telemetry) exist."""
    assert status_error(capsys, repo) == f"no status artifacts found for loop: {LOOP}"
    write_json(ops(repo) / "cursor.json", {"eventLineOffset": 1})
    append_jsonl(tel(repo) / "reconcile.jsonl", {"status": "success", "traceId": "x"})
    assert status_error(capsys, repo) == f"no status artifacts found for loop: {LOOP}"
    # an override pointing at a missing file counts as missing
    assert (
        status_error(capsys, repo, "--state-file", repo / "nope.json")
        == f"no status artifacts found for loop: {LOOP}"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("state.json", "invalid state JSON"),
        ("cursor.json", "invalid cursor JSON"),
        ("health.json", "invalid health JSON"),
        ("heartbeat.json", "invalid heartbeat state JSON"),
        ("sequence-state.json", "invalid sequence state JSON"),
        ("profile-drift.json", "invalid drift JSON"),
        ("alert-dispatch-state.json", "invalid alert dispatch state JSON"),
    ],
)
@pytest.mark.parametrize("content", [b"{not json", b"", b'{"a": 1} trailing', b"\xff"])
def test_invalid_json_files(
    capsys: pytest.CaptureFixture[str], reconciled: Path, name: str, message: str, content: bytes
) -> None:
    path = ops(reconciled) / name
    path.write_bytes(content)
    assert status_error(capsys, reconciled) == f"{message}: {path}"


def test_invalid_json_in_an_override_names_the_override(
    capsys: pytest.CaptureFixture[str], reconciled: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad-health.json"
    bad.write_text("nope", encoding="utf-8")
    assert status_error(capsys, reconciled, "--health-file", bad) == f"invalid health JSON: {bad}"


def test_a_json_file_that_is_not_an_object_is_invalid(
    capsys: pytest.CaptureFixture[str], reconciled: Path
) -> None:
    path = ops(reconciled) / "state.json"
    path.write_text("[1,2]\n", encoding="utf-8")
    assert status_error(capsys, reconciled) == f"invalid state JSON: {path}"


def test_the_first_invalid_file_in_contract_order_is_reported(
    capsys: pytest.CaptureFixture[str], reconciled: Path
) -> None:
    for name in ("alert-dispatch-state.json", "sequence-state.json", "cursor.json"):
        (ops(reconciled) / name).write_text("x", encoding="utf-8")
    assert status_error(capsys, reconciled).startswith("invalid cursor JSON: ")


@pytest.mark.parametrize("window", ["0", "x", "-1", "", "1.5"])
def test_summary_window_validation(
    capsys: pytest.CaptureFixture[str], reconciled: Path, window: str
) -> None:
    assert (
        status_error(capsys, reconciled, "--summary-window", window)
        == "--summary-window must be an integer >= 1"
    )


def test_argument_errors(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    assert cli(capsys, "status", "--loop", LOOP) == (1, "", "error: --repo is required\n")
    assert cli(capsys, "status", "--repo", reconciled) == (1, "", "error: --loop is required\n")
    # reconcile / control telemetry paths are not overridable
    code, out, err = cli(
        capsys, "status", "--repo", reconciled, "--loop", LOOP, "--reconcile-telemetry-file", "x"
    )
    assert code == 1 and "usage" in out.lower()
    assert err == "error: unknown argument: --reconcile-telemetry-file\n"
    code, out, err = cli(capsys, "status", "--help")
    assert code == 0 and "--summary-window" in out and err == ""


@pytest.mark.parametrize("loop_id", ["../x", "a/b", ".."])
def test_invalid_loop_id(
    capsys: pytest.CaptureFixture[str], reconciled: Path, loop_id: str
) -> None:
    code, out, err = cli(capsys, "status", "--repo", reconciled, "--loop", loop_id)
    assert (code, out) == (1, "")
    assert err.startswith("error: invalid loop id") and err.count("\n") == 1


# --- output shape ------------------------------------------------------------------------


def test_status_after_a_reconcile(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    """The Appendix A shape: key order, sources, nulls kept where the contract keeps them."""
    before = tree(reconciled)
    st = status(capsys, reconciled)
    assert tree(reconciled) == before  # status writes nothing

    assert [k for k in TOP_KEYS if k in st] == list(st)
    # a first healthy pass recommends strict with low confidence: drift not yet eligible
    assert st["drift"]["status"] == "insufficient_confidence"
    assert st["schemaVersion"] == "v1"
    assert st["source"] == {"repoPath": str(reconciled), "loopId": LOOP}
    state = json.loads((ops(reconciled) / "state.json").read_text(encoding="utf-8"))
    assert st["lifecycle"] == {
        "state": state["transition"]["currentState"],
        "confidence": state["transition"]["confidence"],
        "runId": "run-123",
        "iteration": 1,
    }
    assert st["health"] == state["health"]
    assert st["cursor"] == {"eventLineOffset": 2, "eventLineCount": 2}
    assert st["control"] == {
        "lastIntent": None,
        "lastStatus": None,
        "lastRequestedBy": None,
        "lastTimestamp": None,
        "lastTraceId": None,
    }
    last_row = json.loads((tel(reconciled) / "reconcile.jsonl").read_text().splitlines()[-1])
    assert st["reconcile"] == {
        "lastStatus": "success",
        "lastTimestamp": last_row["timestamp"],
        "lastTransport": "local",
        "lastFailureCode": None,
        "lastDurationSeconds": last_row["durationSeconds"],
        "lastTraceId": "trace-1",
    }
    vis = st["visibility"]
    assert list(vis) == ["sequence", "trace"]
    assert vis["sequence"] == {
        "status": "ok",
        "driftActive": False,
        "violations": [],
        "snapshotCurrent": 2,
        "eventsLast": 2,
        "updatedAt": state["sequence"]["updatedAt"],
        "transport": "local",
        "traceId": "trace-1",
    }
    # alerts are enabled by default: dispatch ran after the pass with the same trace (item 104)
    assert vis["trace"] == {
        "reconcileTraceId": "trace-1",
        "sequenceTraceId": "trace-1",
        "alertTraceId": "trace-1",
        "sharedTraceId": "trace-1",
    }
    assert st["alerts"]["dispatch"]["lastTraceId"] == "trace-1"
    assert st["tuning"]["summaryWindow"] == 200
    assert st["tuning"]["appliedProfile"] == "balanced"
    assert list(st["tuning"]) == [
        "summaryWindow",
        "appliedProfile",
        "recommendedProfile",
        "confidence",
        "rationale",
        "telemetrySummary",
    ]
    # traceLinkage keeps its nulls; its sharedTraceId needs reconcile == alert trace
    assert list(st["traceLinkage"]) == TRACE_KEYS
    assert st["traceLinkage"]["reconcileTraceId"] == "trace-1"
    assert st["traceLinkage"]["alertTraceId"] == "trace-1"
    assert st["traceLinkage"]["sharedTraceId"] == "trace-1"
    assert list(st["files"]) == FILE_KEYS
    assert st["files"]["stateFile"] == str(ops(reconciled) / "state.json")
    assert st["files"]["reconcileTelemetryFile"] == str(tel(reconciled) / "reconcile.jsonl")
    assert st["files"]["alertDispatchTelemetryFile"] == str(tel(reconciled) / "alerts.jsonl")


def test_full_key_order_and_sources(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    """Item 108 with every optional section present; item 109 (drift file wins)."""
    o = ops(reconciled)
    drift_file = {
        "schemaVersion": "v1",
        "status": "drift_active",
        "appliedProfile": "balanced",
        "recommendedProfile": "strict",
        "driftActive": True,
        "action": "review_threshold_profile",
    }
    write_json(o / "profile-drift.json", drift_file)
    state = json.loads((o / "state.json").read_text(encoding="utf-8"))
    state["drift"] = {"status": "aligned", "traceId": "trace-1"}
    write_json(o / "state.json", state)
    write_json(
        o / "alert-dispatch-state.json",
        {"status": "success", "processedCount": 1, "skippedCount": 1, "traceId": "trace-1"},
    )
    append_jsonl(
        tel(reconciled) / "alerts.jsonl",
        {
            "timestamp": "2026-11-22T02:17:21Z",
            "status": "skipped",
            "reasonCode": "no_dispatchable_sinks",
            "escalationCategory": "health_critical",
            "eventSeverity": "critical",
            "sinkCount": 0,
            "dispatchedSinkCount": 0,
            "failedSinkCount": 0,
            "traceId": "trace-1",
            "escalationTraceId": "trace-1",
            "extra": "not shown",
        },
    )
    append_jsonl(
        o / "intents.jsonl",
        {
            "timestamp": "2026-11-22T02:17:43Z",
            "intent": "cancel",
            "traceId": "trace-1",
            "requestedBy": "ops",
            "status": "confirmed",
        },
    )
    append_jsonl(
        tel(reconciled) / "control-invocations.jsonl",
        {
            "timestamp": "2026-11-22T02:17:43Z",
            "intent": "cancel",
            "traceId": "trace-1",
            "transport": "local",
            "idempotencyKey": "k1",
            "execution": {"status": "succeeded", "replayed": False},
            "confirmation": {"status": "confirmed"},
            "outcome": {"status": "confirmed"},
        },
    )
    write_json(
        o / "heartbeat.json",
        {
            "updatedAt": "2026-11-22T02:19:18Z",
            "traceId": "trace-1",
            "transport": "local",
            "lastHeartbeatAt": "2020-01-01T00:00:00Z",
            "heartbeatLagSeconds": 5,
            "freshnessStatus": "fresh",
        },
    )

    st = status(capsys, reconciled)
    assert list(st) == TOP_KEYS
    assert st["drift"] == drift_file  # no traceId: the file wins over state.drift
    assert list(st["visibility"]) == ["heartbeat", "sequence", "invocationAudit", "trace"]
    assert st["visibility"]["heartbeat"] == {
        "freshnessStatus": "fresh",
        "lastHeartbeatAt": "2020-01-01T00:00:00Z",
        "heartbeatLagSeconds": 5,
        "updatedAt": "2026-11-22T02:19:18Z",
        "transport": "local",
        "traceId": "trace-1",
    }
    audit = st["visibility"]["invocationAudit"]
    assert audit == {
        "timestamp": "2026-11-22T02:17:43Z",
        "intent": "cancel",
        "transport": "local",
        "idempotencyKey": "k1",
        "executionStatus": "succeeded",
        "confirmationStatus": "confirmed",
        "outcomeStatus": "confirmed",
        "replayed": False,
        "traceId": "trace-1",
    }
    assert st["control"] == {
        "lastIntent": "cancel",
        "lastStatus": "confirmed",
        "lastRequestedBy": "ops",
        "lastTimestamp": "2026-11-22T02:17:43Z",
        "lastTraceId": "trace-1",
    }
    assert st["alerts"]["dispatch"] == {
        "status": "success",
        "processedCount": 1,
        "dispatchedCount": 0,
        "skippedCount": 1,
        "failedCount": 0,
        "failureReasonCodes": [],
        "escalationsLineOffset": 0,
        "escalationsLineCount": 0,
        "lastTraceId": "trace-1",
    }
    assert "extra" not in st["alerts"]["lastDelivery"]
    assert st["alerts"]["lastDelivery"]["reasonCode"] == "no_dispatchable_sinks"
    assert st["traceLinkage"] == {
        "controlTraceId": "trace-1",
        "controlInvocationTraceId": "trace-1",
        "reconcileTraceId": "trace-1",
        "heartbeatTraceId": "trace-1",
        "sequenceTraceId": "trace-1",
        "alertTraceId": "trace-1",
        "sharedTraceId": "trace-1",
    }
    assert st["visibility"]["trace"]["sharedTraceId"] == "trace-1"

    # item 109, other direction: no drift file -> state.drift; neither -> omitted
    (o / "profile-drift.json").unlink()
    assert status(capsys, reconciled)["drift"] == {"status": "aligned", "traceId": "trace-1"}
    del state["drift"]
    write_json(o / "state.json", state)
    assert "drift" not in status(capsys, reconciled)


def test_sequence_drift_active_is_a_real_boolean(
    capsys: pytest.CaptureFixture[str], reconciled: Path
) -> None:
    """Item 60's visibility; item 107 changed by DECISIONS: ``false`` is shown as ``false``."""
    path = ops(reconciled) / "sequence-state.json"
    seq = json.loads(path.read_text(encoding="utf-8"))
    assert seq["driftActive"] is False
    assert status(capsys, reconciled)["visibility"]["sequence"]["driftActive"] is False
    seq.update(
        status="ordering_drift_detected",
        reasonCode="ordering_drift_detected",
        driftActive=True,
        violations=["event_sequence_regression"],
        traceId="trace-seq",
    )
    write_json(path, seq)
    vis = status(capsys, reconciled)["visibility"]
    assert vis["sequence"]["driftActive"] is True
    assert vis["sequence"]["status"] == "ordering_drift_detected"
    assert vis["sequence"]["reasonCode"] == "ordering_drift_detected"
    assert vis["sequence"]["traceId"] == "trace-seq"
    assert vis["trace"]["sequenceTraceId"] == "trace-seq"
    assert "sharedTraceId" not in vis["trace"]  # two distinct trace ids now


def test_invocation_replayed_is_a_real_boolean(
    capsys: pytest.CaptureFixture[str], reconciled: Path
) -> None:
    append_jsonl(
        tel(reconciled) / "control-invocations.jsonl",
        {"intent": "cancel", "execution": {"status": "succeeded", "replayed": True}},
    )
    audit = status(capsys, reconciled)["visibility"]["invocationAudit"]
    assert audit == {"intent": "cancel", "executionStatus": "succeeded", "replayed": True}


def test_sequence_falls_back_to_telemetry_row(
    capsys: pytest.CaptureFixture[str], reconciled: Path
) -> None:
    (ops(reconciled) / "sequence-state.json").unlink()
    seq = status(capsys, reconciled)["visibility"]["sequence"]
    row = json.loads((tel(reconciled) / "sequence.jsonl").read_text().splitlines()[-1])
    assert seq["status"] == "ok"
    assert seq["updatedAt"] == row["timestamp"]
    assert seq["traceId"] == "trace-1"
    (tel(reconciled) / "sequence.jsonl").unlink()
    assert "sequence" not in status(capsys, reconciled)["visibility"]


def test_heartbeat_visibility_from_telemetry_only(
    capsys: pytest.CaptureFixture[str], reconciled: Path
) -> None:
    append_jsonl(
        tel(reconciled) / "heartbeat.jsonl",
        {
            "timestamp": "2026-11-22T00:00:00Z",
            "traceId": "t-hb",
            "transport": "local",
            "status": "failed",
            "reasonCode": "invalid_heartbeat_timestamp",
            "heartbeatAt": "yesterday",
        },
    )
    hb = status(capsys, reconciled)["visibility"]["heartbeat"]
    assert hb == {
        "reasonCode": "invalid_heartbeat_timestamp",
        "lastHeartbeatAt": "yesterday",
        "updatedAt": "2026-11-22T00:00:00Z",
        "transport": "local",
        "traceId": "t-hb",
    }


def test_last_jsonl_rows(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    """Only the last complete row counts; an unparseable last row is null, a torn one (a
    write in progress) is not read, trailing blank lines are skipped."""
    intents = ops(reconciled) / "intents.jsonl"
    append_jsonl(intents, {"intent": "cancel", "status": "confirmed", "traceId": "c1"})
    assert status(capsys, reconciled)["control"]["lastIntent"] == "cancel"
    with open(intents, "a", encoding="utf-8") as handle:
        handle.write('{"intent": "approve", "status"')  # torn
    assert status(capsys, reconciled)["control"]["lastIntent"] == "cancel"
    with open(intents, "a", encoding="utf-8") as handle:
        handle.write(': "ambiguous"}\n\n\n')
    assert status(capsys, reconciled)["control"]["lastStatus"] == "ambiguous"
    with open(intents, "a", encoding="utf-8") as handle:
        handle.write("garbage\n")
    control = status(capsys, reconciled)["control"]
    assert control == {
        "lastIntent": None,
        "lastStatus": None,
        "lastRequestedBy": None,
        "lastTimestamp": None,
        "lastTraceId": None,
    }
    # control.lastTraceId falls back to the control telemetry row
    append_jsonl(tel(reconciled) / "control.jsonl", {"traceId": "from-control"})
    assert status(capsys, reconciled)["control"]["lastTraceId"] == "from-control"
    # an unparseable last reconcile row: the reconcile block is all null
    with open(tel(reconciled) / "reconcile.jsonl", "a", encoding="utf-8") as handle:
        handle.write("{oops}\n")
    st = status(capsys, reconciled)
    assert set(st["reconcile"].values()) == {None}
    assert "reconcileTraceId" not in st["visibility"]["trace"]


def test_health_and_cursor_sources(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    o = ops(reconciled)
    state = json.loads((o / "state.json").read_text(encoding="utf-8"))
    # state.health wins over health.json
    write_json(o / "health.json", {"status": "critical", "thresholds": {"profile": "relaxed"}})
    st = status(capsys, reconciled)
    assert st["health"] == state["health"]
    assert st["tuning"]["appliedProfile"] == "balanced"
    # without state.health, the health file (and its profile)
    del state["health"]
    write_json(o / "state.json", state)
    st = status(capsys, reconciled)
    assert st["health"] == {"status": "critical", "thresholds": {"profile": "relaxed"}}
    assert st["tuning"]["appliedProfile"] == "relaxed"
    # neither: {} (never stripped)
    (o / "health.json").unlink()
    assert status(capsys, reconciled)["health"] == {}
    # cursor.json wins over state.cursor; without it state.cursor; without both 0/0
    write_json(o / "cursor.json", {"eventLineOffset": 1, "eventLineCount": 7})
    assert status(capsys, reconciled)["cursor"] == {"eventLineOffset": 1, "eventLineCount": 7}
    (o / "cursor.json").unlink()
    assert status(capsys, reconciled)["cursor"] == {"eventLineOffset": 2, "eventLineCount": 2}
    del state["cursor"]
    write_json(o / "state.json", state)
    assert status(capsys, reconciled)["cursor"] == {"eventLineOffset": 0, "eventLineCount": 0}


def test_lifecycle_defaults(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    o = ops(reconciled)
    write_json(o / "state.json", {"projection": {"status": "stopped"}})
    assert status(capsys, reconciled)["lifecycle"] == {
        "state": "stopped",
        "confidence": None,
        "runId": None,
        "iteration": None,
    }
    write_json(o / "state.json", {})
    assert status(capsys, reconciled)["lifecycle"]["state"] == "unknown"


def test_file_override_flags(
    capsys: pytest.CaptureFixture[str], reconciled: Path, tmp_path: Path
) -> None:
    alt = tmp_path / "alt"
    o, t = ops(reconciled), tel(reconciled)
    state = json.loads((o / "state.json").read_text(encoding="utf-8"))
    state["transition"]["currentState"] = "complete"
    sequence = json.loads((o / "sequence-state.json").read_text(encoding="utf-8"))
    sequence["traceId"] = "seq-alt"
    overrides: dict[str, tuple[str, Path]] = {
        "--state-file": ("stateFile", write_json(alt / "state.json", state)),
        "--cursor-file": (
            "cursorFile",
            write_json(alt / "cursor.json", {"eventLineOffset": 9, "eventLineCount": 9}),
        ),
        "--health-file": ("healthFile", write_json(alt / "health.json", {"status": "healthy"})),
        "--intents-file": (
            "intentsFile",
            append_jsonl(alt / "intents.jsonl", {"intent": "reject", "status": "confirmed"}),
        ),
        "--heartbeat-state-file": (
            "heartbeatStateFile",
            write_json(alt / "hb.json", {"freshnessStatus": "critical", "traceId": "hb-alt"}),
        ),
        "--heartbeat-telemetry-file": (
            "heartbeatTelemetryFile",
            append_jsonl(alt / "hb.jsonl", {"reasonCode": "runtime_heartbeat_stale"}),
        ),
        "--sequence-state-file": ("sequenceStateFile", write_json(alt / "seq.json", sequence)),
        "--sequence-telemetry-file": (
            "sequenceTelemetryFile",
            append_jsonl(alt / "seq.jsonl", {"status": "ok"}),
        ),
        "--control-invocations-file": (
            "controlInvocationsFile",
            append_jsonl(alt / "inv.jsonl", {"intent": "reject", "traceId": "inv-alt"}),
        ),
        "--drift-state-file": (
            "driftStateFile",
            write_json(alt / "drift.json", {"status": "aligned"}),
        ),
        "--drift-history-file": ("driftHistoryFile", alt / "drift.jsonl"),
        "--alert-dispatch-state-file": (
            "alertDispatchStateFile",
            write_json(alt / "dispatch.json", {"status": "no_new_escalations"}),
        ),
        "--alert-dispatch-telemetry-file": (
            "alertDispatchTelemetryFile",
            append_jsonl(alt / "alerts.jsonl", {"status": "dispatched", "traceId": "al-alt"}),
        ),
    }
    args: list[object] = []
    for flag, (_, path) in overrides.items():
        args += [flag, path]
    st = status(capsys, reconciled, *args)
    for key, path in overrides.values():
        assert st["files"][key] == str(path), key
    # the two non-overridable paths stay the defaults
    assert st["files"]["reconcileTelemetryFile"] == str(t / "reconcile.jsonl")
    assert st["files"]["controlTelemetryFile"] == str(t / "control.jsonl")
    # and every section reads from the override
    assert st["lifecycle"]["state"] == "complete"
    assert st["cursor"] == {"eventLineOffset": 9, "eventLineCount": 9}
    assert st["health"] == state["health"]  # state.health (from the override state) wins
    assert st["control"]["lastIntent"] == "reject"
    assert st["visibility"]["heartbeat"]["freshnessStatus"] == "critical"
    assert st["visibility"]["heartbeat"]["reasonCode"] == "runtime_heartbeat_stale"
    assert st["visibility"]["sequence"]["traceId"] == "seq-alt"
    assert st["visibility"]["invocationAudit"]["traceId"] == "inv-alt"
    assert st["drift"] == {"status": "aligned"}
    assert st["alerts"]["dispatch"]["status"] == "no_new_escalations"
    assert st["alerts"]["lastDelivery"] == {"status": "dispatched", "traceId": "al-alt"}

    # a relative override is resolved against the working directory
    cwd = Path.cwd()
    try:
        os.chdir(alt)
        st = status(capsys, reconciled, "--drift-state-file", "drift.json")
    finally:
        os.chdir(cwd)
    assert st["files"]["driftStateFile"] == str(alt / "drift.json")
    assert st["drift"] == {"status": "aligned"}


def test_summary_window_and_pretty(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    code, out, _ = cli(
        capsys, "status", "--repo", reconciled, "--loop", LOOP, "--summary-window", "25", "--pretty"
    )
    assert code == 0
    assert out.startswith('{\n  "schemaVersion": "v1",\n')
    assert json.loads(out)["tuning"]["summaryWindow"] == 25


def test_shared_trace_rules(capsys: pytest.CaptureFixture[str], reconciled: Path) -> None:
    """visibility.trace.sharedTraceId: one distinct id among five sources;
    traceLinkage.sharedTraceId: reconcile == alert (and control null or equal)."""
    append_jsonl(tel(reconciled) / "alerts.jsonl", {"status": "skipped", "traceId": "trace-1"})
    st = status(capsys, reconciled)
    assert st["traceLinkage"]["sharedTraceId"] == "trace-1"
    assert st["visibility"]["trace"]["sharedTraceId"] == "trace-1"
    # a control invocation with another id does not count in either rule
    append_jsonl(tel(reconciled) / "control-invocations.jsonl", {"traceId": "other"})
    st = status(capsys, reconciled)
    assert st["traceLinkage"]["sharedTraceId"] == "trace-1"
    assert st["visibility"]["trace"]["sharedTraceId"] == "trace-1"
    # a control intent with another id breaks both
    append_jsonl(ops(reconciled) / "intents.jsonl", {"intent": "cancel", "traceId": "ctl"})
    st = status(capsys, reconciled)
    assert st["traceLinkage"]["sharedTraceId"] is None
    assert "sharedTraceId" not in st["visibility"]["trace"]


def test_status_after_failed_reconciles_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Item 46 (local): a loop with health.json but no state.json still has a status."""
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, _ = cli(capsys, "reconcile", "--repo", empty, "--loop", LOOP, "--trace-id", "tf")
    assert code == 1
    st = status(capsys, empty.resolve())
    assert st["health"]["status"] == "degraded"
    assert "transport_unreachable" in st["health"]["reasonCodes"]
    assert st["reconcile"]["lastStatus"] == "failed"
    assert st["reconcile"]["lastFailureCode"] == "snapshot_unavailable"
    # dispatch runs after failed passes too (outages are paged), with the pass's trace
    assert st["visibility"]["trace"] == {
        "reconcileTraceId": "tf",
        "alertTraceId": "tf",
        "sharedTraceId": "tf",
    }
    assert st["lifecycle"] == {
        "state": "unknown",
        "confidence": None,
        "runId": None,
        "iteration": None,
    }
    assert st["cursor"] == {"eventLineOffset": 0, "eventLineCount": 0}
    assert st["tuning"]["appliedProfile"] == "balanced"


def test_console_script(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", events=fresh_events()).resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    proc = subprocess.run(
        [str(CLI), "status", "--repo", str(repo), "--loop", LOOP],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == f"error: no status artifacts found for loop: {LOOP}\n"
    subprocess.run(
        [str(CLI), "reconcile", "--repo", str(repo), "--loop", LOOP, "--trace-id", "cs"],
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    proc = subprocess.run(
        [str(CLI), "status", "--repo", str(repo), "--loop", LOOP, "--summary-window", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (
        1,
        "error: --summary-window must be an integer >= 1\n",
    )
    proc = subprocess.run(
        [str(CLI), "status", "--repo", str(repo), "--loop", LOOP],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert json.loads(proc.stdout)["reconcile"]["lastTraceId"] == "cs"


def test_status_reads_projections_without_the_write_machinery(
    capsys: pytest.CaptureFixture[str], reconciled: Path
) -> None:
    """Issue 14.4: ``status`` in a fresh process loads neither ``attrs`` nor the commit and
    stream modules (nor ``hashlib``); it only reads projections and the tails of streams.
    Its output is the same as in this process, where everything is already imported."""
    expected = status(capsys, reconciled)
    script = (
        "import sys\n"
        "from ops_manager.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = ['attrs', 'hashlib', 'ops_manager.store._commit', 'ops_manager.store._stream',"
        " 'ops_manager.store._fleet_paths', 'requests', 'jsonschema', 'pluggy']\n"
        "sys.stderr.write(repr(sorted(m for m in heavy if m in sys.modules)))\n"
        "raise SystemExit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    proc = subprocess.run(
        [sys.executable, "-c", script, "status", "--repo", str(reconciled), "--loop", LOOP],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "[]")
    got = json.loads(proc.stdout)
    # generatedAt and the lag figures follow the clock; everything else is the same
    for doc in (got, expected):
        doc.pop("generatedAt")
    assert got.keys() == expected.keys()
    assert got["files"] == expected["files"] and got["cursor"] == expected["cursor"]
    assert got["reconcile"] == expected["reconcile"]
