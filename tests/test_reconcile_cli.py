"""End-to-end tests of ``ops-manager reconcile`` (``loop.md`` §3.8, §7.3-§7.5).

Most tests drive the real CLI entry point in-process (``ops_manager.cli.main``) on temp
runtime repos; a few go through the installed console script; the time-scripted ones call
``reconcile(settings, clock=...)`` directly. Deliberate differences from upstream are the
DECISIONS.md ones: Q-12 (an explicit ``--from-start`` replay is not ordering drift), Q-18
(divergence escalates on edges only), Q-11/Q-33 (heartbeat lag recomputed every pass),
Q-44 (the cursor is committed after the projections), Q-9 (an invalid env value is an error).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts, parse_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.engine.reconcile import ReconcileResult, ReconcileSettings, reconcile
from ops_manager.reducers.thresholds import Thresholds
from tests.runtime_fixtures import (
    append_events,
    append_raw,
    event,
    events_bytes,
    events_path,
    loop_dir,
    make_runtime_repo,
    pending_approval,
    runtime_heartbeat,
    summary_entry,
    write_pretty,
)

LOOP = "demo-loop"
CLI = Path(sys.executable).parent / "ops-manager"
BIG = "999999999"
#: ingest thresholds no realistic lag reaches (keeps health independent of the wall clock)
QUIET_INGEST = ("--degraded-ingest-lag-seconds", BIG, "--critical-ingest-lag-seconds", BIG)
T0 = parse_ts("2030-01-01T00:00:00Z") or 0

SUCCESS_KEY_ORDER = [
    "schemaVersion",
    "generatedAt",
    "source",
    "run",
    "transition",
    "projection",
    "cursor",
    "divergence",
    "evidence",
    "health",
    "trace",
    "sequence",
    "drift",
    "tuning",
]
ROW_KEY_ORDER = [
    "timestamp",
    "startedAt",
    "loopId",
    "traceId",
    "transport",
    "status",
    "failureCode",
    "failureMessage",
    "cursorOffsetBefore",
    "cursorOffsetAfter",
    "eventsIngested",
    "maxEvents",
    "fromStart",
    "retryAttempts",
    "retryBackoffSeconds",
    "thresholdProfile",
    "durationSeconds",
    "transportFailureStreak",
    "sequenceStatus",
    "sequenceReasonCode",
    "healthStatus",
    "healthReasonCodes",
    # C-15d: what health/state derive from (reducers/pass_inputs.py), always last
    "inputs",
]
CURSOR_KEYS = [
    "schemaVersion",
    "repoPath",
    "loopId",
    "eventsFile",
    "eventLineOffset",
    "eventLineCount",
    "updatedAt",
]


# --- helpers -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OPS_MANAGER_* variable of the caller's environment leaks into a test."""
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def tel(repo: Path) -> Path:
    return ops(repo) / "telemetry"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def rows(repo: Path) -> list[dict[str, Any]]:
    return read_jsonl(tel(repo) / "reconcile.jsonl")


def escalations(repo: Path) -> list[dict[str, Any]]:
    return read_jsonl(ops(repo) / "escalations.jsonl")


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def rec(capsys: pytest.CaptureFixture[str], repo: Path, *extra: object) -> tuple[int, str, str]:
    return cli(capsys, "reconcile", "--repo", repo, "--loop", LOOP, *extra)


def stamp(offset: int = 0) -> str:
    return format_ts(utc_now_epoch() + offset)


def fresh_events(count: int = 2, *, at: int | None = None) -> list[dict[str, Any]]:
    """``count`` events stamped just before ``at`` (default: now), runtime-shaped."""
    base = utc_now_epoch() if at is None else at
    names = ["loop_start", "iteration_start", "role_start", "role_end"]
    out = []
    for i in range(count):
        name = names[i] if i < len(names) else "role_end"
        out.append(
            event(
                name,
                format_ts(base - count + i),
                iteration=0 if name == "loop_start" else 1,
                role="planner" if name.startswith("role") else None,
            )
        )
    return out


def more_events(count: int, *, at: int | None = None, start: int = 0) -> list[dict[str, Any]]:
    base = utc_now_epoch() if at is None else at
    return [
        event("role_end", format_ts(base + start + i), role=f"role-{start + i}")
        for i in range(count)
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A runtime repo with 2 fresh events (``loop_start``, ``iteration_start``)."""
    return make_runtime_repo(tmp_path / "repo", events=fresh_events(2)).resolve()


def tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and ``<dir>`` for directories) under root."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def thresholds(**kw: int) -> Thresholds:
    values = {"degraded_ingest_lag_seconds": 10**9, "critical_ingest_lag_seconds": 10**9}
    values.update(kw)
    return Thresholds(profile="balanced", **values)


def settings_for(repo: Path, trace: str, **kw: Any) -> ReconcileSettings:
    kw.setdefault("thresholds", thresholds())
    return ReconcileSettings(repo=repo, loop_id=LOOP, trace_id=trace, **kw)


def at(epoch: int) -> Callable[[], int]:
    return lambda: epoch


# --- §7.3 core flow ----------------------------------------------------------------------


def test_first_reconcile_writes_cursor_state_and_contract_artifacts(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Items 31, 34, 35, 36, 37."""
    code, out, err = rec(capsys, repo, "--trace-id", "trace-reconcile-1")
    assert code == 0, err
    assert err == ""
    state = json.loads(out)
    assert out.endswith("\n") and out.count("\n") == 1  # compact, one line
    assert state["health"]["traceId"] == "trace-reconcile-1"
    assert state["trace"] == {"reconcileTraceId": "trace-reconcile-1"}
    # stdout is the merged state, exactly as written to state.json
    assert (ops(repo) / "state.json").read_text(encoding="utf-8") == out

    # key order: the contract's order, first 12 keys always present
    assert list(state)[:12] == SUCCESS_KEY_ORDER[:12]
    assert [k for k in SUCCESS_KEY_ORDER if k in state] == list(state)

    # cursor.json: pretty, contract keys first and in order
    cursor_text = (ops(repo) / "cursor.json").read_text(encoding="utf-8")
    assert cursor_text.startswith('{\n  "schemaVersion": "v1",\n')
    cursor = json.loads(cursor_text)
    assert list(cursor)[:7] == CURSOR_KEYS
    assert cursor["eventLineOffset"] == 2
    assert cursor["eventLineCount"] == 2
    assert cursor["repoPath"] == str(repo)
    assert cursor["loopId"] == LOOP
    assert cursor["eventsFile"] == f".superloop/loops/{LOOP}/events.jsonl"

    for rel in (
        "cursor.json",
        "state.json",
        "health.json",
        "sequence-state.json",
        "telemetry/reconcile.jsonl",
        "telemetry/sequence.jsonl",
        "telemetry/transport-health.json",
    ):
        assert (ops(repo) / rel).is_file(), rel
    # projections other than the cursor are compact single lines
    for rel in ("state.json", "health.json", "sequence-state.json"):
        text = (ops(repo) / rel).read_text(encoding="utf-8")
        assert text.count("\n") == 1 and text.endswith("}\n"), rel

    # item 36: the telemetry row of a first local pass
    (row,) = rows(repo)
    assert [k for k in ROW_KEY_ORDER if k in row] == list(row)
    expected = {
        "loopId": LOOP,
        "traceId": "trace-reconcile-1",
        "transport": "local",
        "status": "success",
        "cursorOffsetBefore": 0,
        "cursorOffsetAfter": 2,
        "eventsIngested": 2,
        "maxEvents": 0,
        "fromStart": False,
        "retryAttempts": 3,
        "retryBackoffSeconds": 1,
        "thresholdProfile": "balanced",
        "transportFailureStreak": 0,
        "sequenceStatus": "ok",
    }
    assert {k: row[k] for k in expected} == expected
    for absent in ("failureCode", "failureMessage", "sequenceReasonCode"):
        assert absent not in row
    assert row["healthStatus"] == state["health"]["status"]
    assert row["healthReasonCodes"] == state["health"]["reasonCodes"]
    assert isinstance(row["durationSeconds"], int) and row["durationSeconds"] >= 0
    assert parse_ts(row["timestamp"]) is not None and parse_ts(row["startedAt"]) is not None

    # item 37: transport health after a success
    th = read_json(tel(repo) / "transport-health.json")
    assert list(th) == [
        "schemaVersion",
        "updatedAt",
        "traceId",
        "transport",
        "lastResult",
        "failureStreak",
        "lastSuccessAt",
    ]
    assert th["traceId"] == "trace-reconcile-1"
    assert th["transport"] == "local"
    assert th["lastResult"] == "success"
    assert th["failureStreak"] == 0


def test_success_output_carries_drift_and_tuning(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Items 34/35: drift (with trailing traceId) and tuning close the success state."""
    code, out, _ = rec(capsys, repo, "--trace-id", "t-drift")
    assert code == 0
    state = json.loads(out)
    assert list(state) == SUCCESS_KEY_ORDER
    assert list(state["drift"])[-1] == "traceId"
    assert (ops(repo) / "profile-drift.json").is_file()
    assert (tel(repo) / "profile-drift.jsonl").is_file()


def test_pretty_stdout_keeps_files_compact(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, out, _ = rec(capsys, repo, "--pretty", "--trace-id", "tp")
    assert code == 0
    assert out.startswith('{\n  "schemaVersion": "v1",\n')
    assert json.loads(out) == read_json(ops(repo) / "state.json")
    assert (ops(repo) / "state.json").read_text(encoding="utf-8").count("\n") == 1


def test_max_events_advances_cursor_by_one(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    """Item 32."""
    assert rec(capsys, repo, "--trace-id", "t1")[0] == 0
    assert read_json(ops(repo) / "cursor.json")["eventLineOffset"] == 2
    append_events(repo, LOOP, more_events(1))
    code, _, err = rec(capsys, repo, "--trace-id", "t2", "--max-events", "1")
    assert code == 0, err
    assert read_json(ops(repo) / "cursor.json")["eventLineOffset"] == 3
    last = rows(repo)[-1]
    assert last["traceId"] == "t2"
    assert (last["cursorOffsetBefore"], last["cursorOffsetAfter"]) == (2, 3)
    assert (last["eventsIngested"], last["maxEvents"]) == (1, 1)


def test_divergence_from_inactive_runtime_escalates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Item 33: state active:false + an appended active-phase event -> divergence row."""
    repo = make_runtime_repo(tmp_path / "r", active=False, events=fresh_events(1)).resolve()
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    append_events(repo, LOOP, [event("role_end", stamp(), role="planner")])
    code, out, _ = rec(capsys, repo, "--trace-id", "t-div", *QUIET_INGEST)
    assert code == 0
    assert json.loads(out)["divergence"]["any"] is True
    div = [e for e in escalations(repo) if e["category"] == "divergence_detected"]
    assert len(div) >= 1
    row = div[-1]
    assert row["traceId"] == "t-div"
    assert row["divergenceFlags"]["activeMismatch"] is True
    assert list(row) == [
        "timestamp",
        "loopId",
        "traceId",
        "category",
        "transport",
        "stateFile",
        "cursorFile",
        "divergenceFlags",
        "state",
    ]
    assert row["stateFile"] == str(ops(repo) / "state.json")
    assert list(row["state"]) == ["transition", "projection", "cursor"]


def test_divergence_escalates_on_start_and_flag_change_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """DECISIONS Q-18: not on every pass while divergence persists."""
    repo = make_runtime_repo(tmp_path / "r", active=False, events=fresh_events(2)).resolve()
    # pending approval + a completed summary entry: approvalCompletionConflict, every pass
    write_pretty(loop_dir(repo) / "approval.json", pending_approval())
    write_pretty(
        loop_dir(repo) / "run-summary.json",
        {
            "version": 1,
            "loop_id": LOOP,
            "updated_at": stamp(),
            "entries": [summary_entry(completion_ok=True)],
        },
    )

    def divergence_rows() -> list[dict[str, Any]]:
        return [e for e in escalations(repo) if e["category"] == "divergence_detected"]

    for i in range(3):
        code, out, _ = rec(capsys, repo, "--trace-id", f"d{i}", *QUIET_INGEST)
        assert code == 0
        assert json.loads(out)["divergence"]["flags"]["approvalCompletionConflict"] is True
    assert [r["traceId"] for r in divergence_rows()] == ["d0"]

    # the flags change (an active-phase event while the runtime is inactive): escalate again
    append_events(repo, LOOP, [event("iteration_start", stamp(), iteration=2)])
    code, out, _ = rec(capsys, repo, "--trace-id", "d-flags", *QUIET_INGEST)
    assert code == 0
    flags = json.loads(out)["divergence"]["flags"]
    assert flags["activeMismatch"] is True and flags["approvalCompletionConflict"] is True
    assert [r["traceId"] for r in divergence_rows()] == ["d0", "d-flags"]
    assert divergence_rows()[-1]["divergenceFlags"] == flags

    # same flags again (another active-phase event): no new row
    append_events(repo, LOOP, [event("role_start", stamp(), iteration=2, role="planner")])
    code, out, _ = rec(capsys, repo, "--trace-id", "d-same", *QUIET_INGEST)
    assert code == 0
    assert json.loads(out)["divergence"]["flags"] == flags
    assert [r["traceId"] for r in divergence_rows()] == ["d0", "d-flags"]


# --- invalid arguments -------------------------------------------------------------------

INVALID = [
    (["--alerts-enabled", "maybe"], "--alerts-enabled must be true or false"),
    (["--threshold-profile", "bogus"], "unknown threshold profile: bogus"),
    (
        ["--transport", "sprite_service"],
        "--service-base-url is required when --transport sprite_service",
    ),
    (["--drift-min-confidence", "x"], "--drift-min-confidence must be one of: low, medium, high"),
    (
        ["--critical-heartbeat-lag-seconds", "1"],
        "critical heartbeat lag threshold must be >= degraded threshold",
    ),
    (
        ["--critical-ingest-lag-seconds", "1"],
        "critical ingest lag threshold must be >= degraded threshold",
    ),
    (
        ["--critical-transport-failure-streak", "1"],
        "critical transport failure threshold must be >= degraded threshold",
    ),
    (["--transport", "ssh"], "--transport must be local or sprite_service"),
    (["--max-events", "x"], "--max-events must be a non-negative integer"),
    (["--max-events", "-1"], "--max-events must be a non-negative integer"),
    (["--retry-attempts", "0"], "--retry-attempts must be an integer >= 1"),
    (["--retry-attempts", "x"], "--retry-attempts must be an integer >= 1"),
    (["--retry-backoff-seconds", "-1"], "--retry-backoff-seconds must be a non-negative integer"),
    (["--drift-required-streak", "0"], "--drift-required-streak must be an integer >= 1"),
    (["--drift-summary-window", "0"], "--drift-summary-window must be an integer >= 1"),
    (["--drift-summary-window", "1.5"], "--drift-summary-window must be an integer >= 1"),
] + [
    ([f"--{flag}", bad], f"{flag} must be a non-negative integer")
    for flag in (
        "degraded-ingest-lag-seconds",
        "critical-ingest-lag-seconds",
        "degraded-heartbeat-lag-seconds",
        "critical-heartbeat-lag-seconds",
        "degraded-transport-failure-streak",
        "critical-transport-failure-streak",
    )
    for bad in ("x", "-1")
]


@pytest.mark.parametrize(("args", "message"), INVALID, ids=[" ".join(a) for a, _ in INVALID])
def test_invalid_arguments(
    capsys: pytest.CaptureFixture[str], repo: Path, args: list[str], message: str
) -> None:
    """Item 38 and every validation message of §3.8.1: one error line, exit 1, no pass."""
    code, out, err = rec(capsys, repo, *args)
    assert code == 1
    assert out == ""
    assert err == f"error: {message}\n"
    assert not (ops(repo) / "state.json").exists()
    assert not (tel(repo) / "reconcile.jsonl").exists()
    assert not (ops(repo) / "health.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # flags before repo resolution, in the contract's order
        (
            [
                "--transport",
                "bad",
                "--alerts-enabled",
                "maybe",
                "--retry-attempts",
                "0",
                "--max-events",
                "x",
            ],
            "--max-events must be a non-negative integer",
        ),
        (
            ["--transport", "bad", "--alerts-enabled", "maybe", "--retry-attempts", "0"],
            "--retry-attempts must be an integer >= 1",
        ),
        (
            ["--transport", "bad", "--drift-summary-window", "0", "--retry-backoff-seconds", "x"],
            "--retry-backoff-seconds must be a non-negative integer",
        ),
        (
            ["--transport", "bad", "--drift-summary-window", "0", "--drift-required-streak", "0"],
            "--drift-required-streak must be an integer >= 1",
        ),
        (
            ["--transport", "bad", "--alerts-enabled", "maybe"],
            "--alerts-enabled must be true or false",
        ),
        # profile resolution precedes drift / threshold validation
        (
            [
                "--drift-min-confidence",
                "x",
                "--critical-ingest-lag-seconds",
                "1",
                "--threshold-profile",
                "bogus",
            ],
            "unknown threshold profile: bogus",
        ),
        (
            ["--drift-min-confidence", "x", "--critical-ingest-lag-seconds", "1"],
            "--drift-min-confidence must be one of: low, medium, high",
        ),
        (
            ["--critical-ingest-lag-seconds", "1", "--critical-heartbeat-lag-seconds", "1"],
            "critical ingest lag threshold must be >= degraded threshold",
        ),
    ],
)
def test_validation_order(
    capsys: pytest.CaptureFixture[str], repo: Path, args: list[str], message: str
) -> None:
    code, _, err = rec(capsys, repo, *args)
    assert (code, err) == (1, f"error: {message}\n")


def test_required_flags_and_repo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli(capsys, "reconcile", "--loop", LOOP) == (1, "", "error: --repo is required\n")
    assert cli(capsys, "reconcile", "--repo", tmp_path) == (1, "", "error: --loop is required\n")
    assert cli(capsys, "reconcile", "--repo", tmp_path, "--loop", "") == (
        1,
        "",
        "error: --loop is required\n",
    )
    code, out, err = cli(capsys, "reconcile", "--repo", tmp_path / "nope", "--loop", LOOP)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "nope").exists()


def test_unknown_argument_and_missing_value(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, out, err = rec(capsys, repo, "--bogus")
    assert code == 1
    assert "usage" in out.lower()
    assert err == "error: unknown argument: --bogus\n"
    code, _, err = rec(capsys, repo, "--max-events")
    assert code == 1
    assert err.startswith("error: ") and "--max-events" in err and err.count("\n") == 1
    # an explicitly empty value is the empty string, not a missing value
    code, _, err = rec(capsys, repo, "--trace-id", "", *QUIET_INGEST)
    assert code == 0, err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "reconcile", "--help")
    assert code == 0 and err == ""
    assert "--from-start" in out and "--max-events" in out


def test_ops_dir_created_before_late_validation(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Q-29 (kept): OPS/ exists even though profile resolution rejected the call."""
    for args in (["--threshold-profile", "bogus"], ["--transport", "sprite_service"]):
        assert not ops(repo).exists()
        assert rec(capsys, repo, *args)[0] == 1
        assert ops(repo).is_dir()
        assert not (ops(repo) / "state.json").exists()
        assert not (tel(repo) / "reconcile.jsonl").exists()
        shutil.rmtree(ops(repo))


# --- environment fallbacks ---------------------------------------------------------------


def test_env_trace_id_and_generated_trace(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_MANAGER_TRACE_ID", "env-trace")
    code, out, _ = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0
    assert json.loads(out)["trace"] == {"reconcileTraceId": "env-trace"}
    code, out, _ = rec(capsys, repo, "--trace-id", "flag-trace", *QUIET_INGEST)
    assert json.loads(out)["trace"] == {"reconcileTraceId": "flag-trace"}
    monkeypatch.delenv("OPS_MANAGER_TRACE_ID")
    code, out, _ = rec(capsys, repo, *QUIET_INGEST)
    generated = json.loads(out)["trace"]["reconcileTraceId"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", generated)
    assert rows(repo)[-1]["traceId"] == generated


def test_env_threshold_profile_and_catalog(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPS_MANAGER_THRESHOLD_PROFILE", "strict")
    code, out, _ = rec(capsys, repo)
    assert code == 0
    assert json.loads(out)["health"]["thresholds"]["profile"] == "strict"
    # the flag wins over the env
    code, out, _ = rec(capsys, repo, "--threshold-profile", "relaxed")
    assert json.loads(out)["health"]["thresholds"]["profile"] == "relaxed"
    assert rows(repo)[-1]["thresholdProfile"] == "relaxed"

    catalog = tmp_path / "profiles.json"
    catalog.write_text(
        json.dumps(
            {
                "schemaVersion": "v1",
                "defaultProfile": "custom",
                "profiles": {
                    "custom": {
                        "degradedIngestLagSeconds": 11,
                        "criticalIngestLagSeconds": 22,
                        "degradedTransportFailureStreak": 3,
                        "criticalTransportFailureStreak": 5,
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.delenv("OPS_MANAGER_THRESHOLD_PROFILE")
    monkeypatch.setenv("OPS_MANAGER_THRESHOLD_PROFILES_FILE", str(catalog))
    code, out, _ = rec(capsys, repo)
    assert code == 0
    th = json.loads(out)["health"]["thresholds"]
    assert th["profile"] == "custom"
    assert (th["degradedIngestLagSeconds"], th["criticalIngestLagSeconds"]) == (11, 22)
    assert (th["degradedTransportFailureStreak"], th["criticalTransportFailureStreak"]) == (3, 5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPS_MANAGER_ALERTS_ENABLED", "yes"),
        ("OPS_MANAGER_DRIFT_MIN_CONFIDENCE", "bogus"),
        ("OPS_MANAGER_DRIFT_REQUIRED_STREAK", "0"),
        ("OPS_MANAGER_DRIFT_SUMMARY_WINDOW", "x"),
    ],
)
def test_invalid_env_values_are_errors(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
) -> None:
    """DECISIONS Q-9: an invalid env value is an error, like the flag (names the variable)."""
    monkeypatch.setenv(name, value)
    code, out, err = rec(capsys, repo)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {name} must be") and err.count("\n") == 1
    assert not (tel(repo) / "reconcile.jsonl").exists()


# --- §7.4 health, staleness, transport ---------------------------------------------------


def test_fresh_events_with_wide_ingest_thresholds_are_healthy(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Item 39."""
    code, out, _ = rec(
        capsys,
        repo,
        "--degraded-ingest-lag-seconds",
        "999999",
        "--critical-ingest-lag-seconds",
        "9999999",
    )
    assert code == 0
    assert json.loads(out)["health"]["status"] == "healthy"
    health = read_json(ops(repo) / "health.json")
    assert health["status"] == "healthy"
    assert health["reasonCodes"] == [] and health["reasons"] == []
    assert escalations(repo) == []
    code, out, _ = cli(capsys, "status", "--repo", repo, "--loop", LOOP)
    assert code == 0
    assert json.loads(out)["health"]["status"] == "healthy"


def test_stale_events_degrade_health(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Item 40."""
    old = [event("loop_start", "2020-01-01T00:00:00Z", iteration=0)]
    repo = make_runtime_repo(tmp_path / "r", events=old).resolve()
    code, out, _ = rec(
        capsys, repo, "--degraded-ingest-lag-seconds", "1", "--critical-ingest-lag-seconds", BIG
    )
    assert code == 0
    health = json.loads(out)["health"]
    assert health["status"] == "degraded"
    assert health["reasonCodes"] == ["ingest_stale"]
    (reason,) = health["reasons"]
    assert reason["metric"] == "ingestLagSeconds" and reason["threshold"] == "1"
    last = escalations(repo)[-1]
    assert last["category"] == "health_degraded"
    assert last["ingestStatus"] == "success" and "failureCode" not in last
    assert last["reasonCodes"] == ["ingest_stale"]


def test_ambiguous_last_intent_degrades_health(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Item 41: only the LAST intents row counts."""
    ops(repo).mkdir(parents=True)
    (ops(repo) / "intents.jsonl").write_text(
        json.dumps({"intent": "cancel", "status": "confirmed"})
        + "\n"
        + json.dumps({"intent": "approve", "status": "ambiguous", "traceId": "tc"})
        + "\n",
        encoding="utf-8",
    )
    code, out, _ = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0
    health = json.loads(out)["health"]
    assert health["status"] == "degraded"
    assert health["reasonCodes"] == ["control_ambiguous"]
    assert health["metrics"]["lastControlStatus"] == "ambiguous"
    # a later confirmed row clears it
    with open(ops(repo) / "intents.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"intent": "cancel", "status": "confirmed"}) + "\n")
    code, out, _ = rec(capsys, repo, *QUIET_INGEST)
    assert json.loads(out)["health"]["status"] == "healthy"


def test_threshold_profile_strict_and_explicit_flag(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Items 47 and 48."""
    code, out, _ = rec(capsys, repo, "--threshold-profile", "strict")
    assert code == 0
    th = json.loads(out)["health"]["thresholds"]
    assert th["profile"] == "strict" and th["degradedIngestLagSeconds"] == 120
    code, out, _ = rec(
        capsys, repo, "--threshold-profile", "strict", "--critical-ingest-lag-seconds", "777"
    )
    assert code == 0
    th = json.loads(out)["health"]["thresholds"]
    assert th["profile"] == "strict"
    assert th["criticalIngestLagSeconds"] == 777
    assert th["degradedIngestLagSeconds"] == 120
    assert read_json(ops(repo) / "health.json")["thresholds"] == th
    assert rows(repo)[-1]["thresholdProfile"] == "strict"


def test_reasons_sorted_and_zero_threshold_always_fires(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Item 52 (sorted reasons / unique codes) and Q-14 (a threshold of 0 fires on success)."""
    old = [
        event("loop_start", "2020-01-01T00:00:00Z", iteration=0),
        event("iteration_start", "2020-01-01T00:00:01Z"),
    ]
    repo = make_runtime_repo(tmp_path / "r", active=False, events=old).resolve()
    ops(repo).mkdir(parents=True)
    (ops(repo) / "intents.jsonl").write_text(
        json.dumps({"intent": "cancel", "status": "failed_command"}) + "\n", encoding="utf-8"
    )
    code, out, _ = rec(
        capsys,
        repo,
        "--degraded-ingest-lag-seconds",
        "1",
        "--critical-ingest-lag-seconds",
        "2",
        "--degraded-transport-failure-streak",
        "0",
        "--critical-transport-failure-streak",
        "5",
    )
    assert code == 0
    health = json.loads(out)["health"]
    assert health["reasonCodes"] == [
        "control_failed_command",
        "divergence_detected",
        "ingest_stale",
        "transport_unreachable",
    ]
    keys = [f"{r['code']}:{r['severity']}" for r in health["reasons"]]
    assert keys == sorted(keys)
    assert health["status"] == "critical"  # ingest_stale is critical
    streak = [r for r in health["reasons"] if r["code"] == "transport_unreachable"]
    assert streak == [
        {
            "code": "transport_unreachable",
            "severity": "degraded",
            "metric": "transportFailureStreak",
            "observed": "0",
            "threshold": "0",
        }
    ]


def test_thresholds_file_errors(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.json"
    code, _, err = rec(capsys, repo, "--thresholds-file", missing)
    assert (code, err) == (1, f"error: threshold profiles file not found: {missing}\n")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    code, _, err = rec(capsys, repo, "--thresholds-file", bad)
    assert (code, err) == (1, f"error: invalid threshold profiles JSON: {bad}\n")
    bad.write_text('{"schemaVersion": "v2", "profiles": {}}', encoding="utf-8")
    code, _, err = rec(capsys, repo, "--thresholds-file", bad)
    assert (code, err) == (1, "error: threshold profiles file has invalid shape\n")
    assert not (tel(repo) / "reconcile.jsonl").exists()


def test_library_call_on_a_missing_repo_creates_nothing(tmp_path: Path) -> None:
    """The library guards its inputs like the CLI: no tree appears at a mistyped path."""
    from ops_manager.errors import OpsError

    missing = tmp_path / "typo"
    with pytest.raises(OpsError, match="repo directory not found"):
        reconcile(settings_for(missing, "lib"), clock=at(T0))
    assert not missing.exists()
    repo = make_runtime_repo(tmp_path / "r", events=fresh_events(1)).resolve()
    with pytest.raises(OpsError, match="invalid loop id"):
        reconcile(ReconcileSettings(repo=repo, loop_id="../escape", trace_id="lib"), clock=at(T0))
    assert not (repo / ".superloop" / "escape").exists()
    assert not (repo / ".superloop" / "ops-manager").exists()


def test_failed_passes_on_empty_repo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Items 49, 50 (and 45/46 for the local transport)."""
    repo = (tmp_path / "empty").resolve()
    repo.mkdir()
    code, out, err = rec(capsys, repo, "--trace-id", "tf-1")
    assert code == 1
    health = json.loads(out)
    assert (ops(repo) / "health.json").read_text(encoding="utf-8") == out
    assert health["traceId"] == "tf-1"
    assert health["status"] == "degraded"
    assert health["reasonCodes"] == ["transport_unreachable"]
    assert health["transport"] == {
        "mode": "local",
        "ingestStatus": "failed",
        "failureCode": "snapshot_unavailable",
        "lastFailureCode": "snapshot_unavailable",
    }
    # the health projection is the failure document and the whole output (issue 12)
    assert err == ""
    assert not (ops(repo) / "state.json").exists()
    assert not (ops(repo) / "cursor.json").exists()
    assert not (ops(repo) / "sequence-state.json").exists()
    assert not (ops(repo) / "heartbeat.json").exists()

    th = read_json(tel(repo) / "transport-health.json")
    assert th["lastResult"] == "failed"
    assert th["failureStreak"] == 1
    assert th["lastFailureCode"] == "snapshot_unavailable"
    assert "lastFailureAt" in th and "lastSuccessAt" not in th

    (row,) = rows(repo)
    assert [k for k in ROW_KEY_ORDER if k in row] == list(row)
    assert row["status"] == "failed"
    assert row["failureCode"] == "snapshot_unavailable"
    assert row["failureMessage"] == (
        f"error: required artifact root missing: {repo}/.superloop/loops/{LOOP}"
    )
    assert row["sequenceStatus"] == "skipped_ingest_failed"
    assert "sequenceReasonCode" not in row
    assert (row["cursorOffsetBefore"], row["cursorOffsetAfter"], row["eventsIngested"]) == (0, 0, 0)
    assert row["transportFailureStreak"] == 1
    assert (row["healthStatus"], row["healthReasonCodes"]) == (
        "degraded",
        ["transport_unreachable"],
    )

    (esc,) = escalations(repo)
    assert esc["category"] == "health_degraded"
    assert esc["ingestStatus"] == "failed"
    assert esc["failureCode"] == "snapshot_unavailable"
    assert esc["traceId"] == "tf-1"
    assert esc["reasons"] == [
        {
            "code": "transport_unreachable",
            "severity": "degraded",
            "metric": "ingestStatus",
            "observed": "failed",
            "threshold": "success",
        }
    ]
    # escalation paths are present even though the files do not exist
    assert esc["stateFile"] == str(ops(repo) / "state.json")
    assert esc["cursorFile"] == str(ops(repo) / "cursor.json")

    # second identical failure: same status and codes, no new escalation, streak reason
    code, out, _ = rec(capsys, repo, "--trace-id", "tf-2")
    assert code == 1
    health = json.loads(out)
    assert health["traceId"] == "tf-2"
    assert (health["status"], health["reasonCodes"]) == ("degraded", ["transport_unreachable"])
    assert health["reasons"] == [
        {
            "code": "transport_unreachable",
            "severity": "degraded",
            "metric": "transportFailureStreak",
            "observed": "2",
            "threshold": "2",
        }
    ]
    assert health["metrics"]["transportFailureStreak"] == 2
    assert len(escalations(repo)) == 1
    assert read_json(tel(repo) / "transport-health.json")["failureStreak"] == 2
    assert [r["transportFailureStreak"] for r in rows(repo)] == [1, 2]
    assert not (ops(repo) / "state.json").exists()

    # status of a loop that only has health.json (item 46, local half)
    code, out, err = cli(capsys, "status", "--repo", repo, "--loop", LOOP)
    assert code == 0, err
    status = json.loads(out)
    assert status["health"]["status"] == "degraded"
    assert status["health"]["reasonCodes"] == ["transport_unreachable"]
    assert status["reconcile"]["lastStatus"] == "failed"
    assert status["reconcile"]["lastFailureCode"] == "snapshot_unavailable"
    assert status["visibility"]["trace"]["reconcileTraceId"] == "tf-2"
    assert status["lifecycle"]["state"] == "unknown"

    # recovery: a success resets the streak and keeps lastFailureAt (not the code)
    last_failure_at = read_json(tel(repo) / "transport-health.json")["lastFailureAt"]
    make_runtime_repo(repo, events=fresh_events(1))
    assert rec(capsys, repo, "--trace-id", "ok", *QUIET_INGEST)[0] == 0
    th2 = read_json(tel(repo) / "transport-health.json")
    assert th2["failureStreak"] == 0 and th2["lastResult"] == "success"
    assert th2["lastFailureAt"] == last_failure_at
    assert "lastFailureCode" not in th2 and "lastSuccessAt" in th2


def test_failed_pass_with_existing_state_updates_health_and_trace(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Item 51: the projection is kept, only health and trace move (key positions kept);
    drift and tuning keep their places and are refreshed (Q-30: drift runs on failures)."""
    assert rec(capsys, repo, "--trace-id", "ok-1", *QUIET_INGEST)[0] == 0
    before = read_json(ops(repo) / "state.json")
    shutil.rmtree(loop_dir(repo))
    code, out, _ = rec(capsys, repo, "--trace-id", "fail-1", *QUIET_INGEST)
    assert code == 1
    after = read_json(ops(repo) / "state.json")
    assert list(after) == list(before)  # sequence keeps its place after trace
    assert after["health"] == json.loads(out)
    assert after["health"]["transport"]["ingestStatus"] == "failed"
    assert after["trace"] == {"reconcileTraceId": "fail-1"}
    for key in before:
        if key not in ("health", "trace", "drift", "tuning"):
            assert after[key] == before[key], key
    # the failed row pushes the 2-row window to relaxed (1 of 2 failed)
    assert after["drift"]["traceId"] == "fail-1"
    assert after["drift"]["recommendedProfile"] == "relaxed"
    assert after["tuning"]["recommendedProfile"] == "relaxed"
    assert after["tuning"]["telemetrySummary"]["observed"]["reconcileFailedCount"] == 1
    assert after["drift"] == {**read_json(ops(repo) / "profile-drift.json"), "traceId": "fail-1"}


# --- §7.5 heartbeat ----------------------------------------------------------------------


def test_stale_heartbeat(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Items 55, 56, 66."""
    repo = make_runtime_repo(
        tmp_path / "r",
        events=fresh_events(2),
        heartbeat=runtime_heartbeat("2020-01-01T00:00:00Z"),
    ).resolve()
    code, out, _ = rec(
        capsys,
        repo,
        "--trace-id",
        "t-hb",
        "--degraded-heartbeat-lag-seconds",
        "1",
        "--critical-heartbeat-lag-seconds",
        BIG,
    )
    assert code == 0
    health = json.loads(out)["health"]
    assert health["status"] == "degraded"
    assert health["reasonCodes"] == ["runtime_heartbeat_stale"]
    assert health["evidence"]["lastHeartbeatAt"] == "2020-01-01T00:00:00Z"
    hb = read_json(ops(repo) / "heartbeat.json")
    assert list(hb) == [
        "schemaVersion",
        "updatedAt",
        "loopId",
        "traceId",
        "transport",
        "lastHeartbeatAt",
        "heartbeatLagSeconds",
        "freshnessStatus",
        "reasonCode",
        "thresholds",
        "heartbeat",
    ]
    assert list(hb["thresholds"]) == ["degradedHeartbeatLagSeconds", "criticalHeartbeatLagSeconds"]
    assert hb["thresholds"]["criticalHeartbeatLagSeconds"] == int(BIG)
    assert hb["freshnessStatus"] == "degraded"
    assert hb["reasonCode"] == "runtime_heartbeat_stale"
    assert hb["traceId"] == "t-hb"
    assert hb["heartbeat"] == runtime_heartbeat("2020-01-01T00:00:00Z")
    last = read_jsonl(tel(repo) / "heartbeat.jsonl")[-1]
    assert last["status"] == "degraded"
    assert last["category"] == "runtime_heartbeat"
    assert last["heartbeatAt"] == "2020-01-01T00:00:00Z"

    code, out, _ = cli(capsys, "status", "--repo", repo, "--loop", LOOP)
    assert code == 0
    vis = json.loads(out)["visibility"]["heartbeat"]
    assert vis["freshnessStatus"] == "degraded"
    assert vis["reasonCode"] == "runtime_heartbeat_stale"
    assert vis["lastHeartbeatAt"] == "2020-01-01T00:00:00Z"
    assert vis["traceId"] == "t-hb"


@pytest.mark.parametrize(
    ("heartbeat", "reason"),
    [
        ({"schemaVersion": "v1", "status": "running"}, "missing_heartbeat_timestamp"),
        ({"timestamp": "yesterday"}, "invalid_heartbeat_timestamp"),
    ],
)
def test_unusable_heartbeat_timestamp_is_recorded_not_projected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, heartbeat: dict[str, Any], reason: str
) -> None:
    repo = make_runtime_repo(tmp_path / "r", events=fresh_events(2), heartbeat=heartbeat).resolve()
    code, _, _ = rec(capsys, repo, "--trace-id", "t", *QUIET_INGEST)
    assert code == 0
    assert not (ops(repo) / "heartbeat.json").exists()
    (row,) = read_jsonl(tel(repo) / "heartbeat.jsonl")
    assert (row["status"], row["reasonCode"]) == ("failed", reason)
    assert row["heartbeat"] == heartbeat


def test_heartbeat_lag_recomputed_every_pass(tmp_path: Path) -> None:
    """DECISIONS Q-11/Q-33: the lag grows from lastHeartbeatAt even without a new heartbeat
    observation, and even while reconciles fail."""
    repo = make_runtime_repo(
        tmp_path / "r",
        events=fresh_events(2, at=T0),
        heartbeat=runtime_heartbeat(format_ts(T0 - 5)),
    ).resolve()
    r1 = reconcile(settings_for(repo, "hb-1"), clock=at(T0))
    assert r1.ok
    assert r1.output["health"]["metrics"]["heartbeatLagSeconds"] == 5
    assert r1.output["health"]["status"] == "healthy"
    stored = (ops(repo) / "heartbeat.json").read_bytes()

    # the runtime stops writing its heartbeat file: heartbeat.json stays, the lag still grows
    (loop_dir(repo) / "heartbeat.v1.json").unlink()
    r2 = reconcile(settings_for(repo, "hb-2"), clock=at(T0 + 200))
    assert r2.ok
    assert (ops(repo) / "heartbeat.json").read_bytes() == stored
    health = r2.output["health"]
    assert health["metrics"]["heartbeatLagSeconds"] == 205
    assert health["reasons"] == [
        {
            "code": "runtime_heartbeat_stale",
            "severity": "degraded",
            "metric": "heartbeatLagSeconds",
            "observed": "205",
            "threshold": "120",
        }
    ]

    # reconciles now fail (the loop dir is gone): the lag keeps growing
    shutil.rmtree(loop_dir(repo))
    r3 = reconcile(settings_for(repo, "hb-3"), clock=at(T0 + 400))
    assert not r3.ok
    assert r3.output["metrics"]["heartbeatLagSeconds"] == 405
    assert r3.output["status"] == "critical"
    assert "runtime_heartbeat_stale" in r3.output["reasonCodes"]
    assert read_json(ops(repo) / "health.json") == r3.output


# --- §7.5 sequence: truncation, rewrite, explicit replay ---------------------------------


def _hb_flags() -> tuple[str, ...]:
    return ("--degraded-heartbeat-lag-seconds", "1", "--critical-heartbeat-lag-seconds", BIG)


@pytest.fixture
def hb_repo(tmp_path: Path) -> Path:
    """Two fresh events and a 2020 heartbeat (the upstream drift scenario's repo)."""
    return make_runtime_repo(
        tmp_path / "r", events=fresh_events(2), heartbeat=runtime_heartbeat("2020-01-01T00:00:00Z")
    ).resolve()


def _truncate_to_first_line(repo: Path) -> None:
    path = events_path(repo)
    first = path.read_bytes().splitlines(keepends=True)[0]
    path.write_bytes(first)


def test_truncated_log_without_from_start_fails_loudly(
    capsys: pytest.CaptureFixture[str], hb_repo: Path
) -> None:
    """Adapted items 58-64: a truncated log is reported, nothing is silently re-read."""
    repo = hb_repo
    assert rec(capsys, repo, "--trace-id", "base", *QUIET_INGEST)[0] == 0
    kept = {
        name: (ops(repo) / name).read_bytes()
        for name in ("cursor.json", "stream-state.json", "sequence-state.json", "heartbeat.json")
    }
    _truncate_to_first_line(repo)
    code, out, err = rec(capsys, repo, "--trace-id", "trunc", *QUIET_INGEST)
    assert code == 1
    health = json.loads(out)
    assert health["transport"]["failureCode"] == "events_unavailable"
    assert "transport_unreachable" in health["reasonCodes"]
    row = rows(repo)[-1]
    assert row["status"] == "failed"
    assert row["failureCode"] == "events_unavailable"
    assert "truncated" in row["failureMessage"]
    assert "--from-start" in row["failureMessage"]
    assert row["eventsIngested"] == 0
    assert row["sequenceStatus"] == "skipped_ingest_failed"
    assert (row["cursorOffsetBefore"], row["cursorOffsetAfter"]) == (2, 2)
    assert err == ""  # the health document is the whole output (docs/output-and-errors.md)
    for name, data in kept.items():
        assert (ops(repo) / name).read_bytes() == data, name
    # it keeps failing (nothing was silently accepted) until an explicit replay
    assert rec(capsys, repo, "--trace-id", "trunc-2", *QUIET_INGEST)[0] == 1
    assert read_json(tel(repo) / "transport-health.json")["failureStreak"] == 2


def test_rewritten_log_without_from_start_fails_loudly(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    assert rec(capsys, repo, "--trace-id", "base", *QUIET_INGEST)[0] == 0
    cursor = (ops(repo) / "cursor.json").read_bytes()
    # same number of lines, same length even, different content of the consumed prefix
    path = events_path(repo)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"iteration_start", b"iteration_begin")
    assert len(lines[1]) == len(path.read_bytes().splitlines(keepends=True)[1])
    path.write_bytes(b"".join(lines) + events_bytes(more_events(2)))
    code, _, _ = rec(capsys, repo, "--trace-id", "rw", *QUIET_INGEST)
    assert code == 1
    row = rows(repo)[-1]
    assert row["failureCode"] == "events_unavailable"
    assert "rewritten" in row["failureMessage"]
    assert row["eventsIngested"] == 0
    assert (ops(repo) / "cursor.json").read_bytes() == cursor
    fold = read_json(ops(repo) / "stream-state.json")["fold"]
    assert fold["eventCount"] == 2


def test_from_start_after_truncation_is_an_explicit_replay(
    capsys: pytest.CaptureFixture[str], hb_repo: Path
) -> None:
    """Items 58-64 + 101: after truncation, ``--from-start`` recovers the stream, and the
    replay of a truncated log is reported as ordering drift (issue 12: Q-12 exempts only a
    replay of the same log); the stale heartbeat still shows."""
    repo = hb_repo
    assert rec(capsys, repo, "--trace-id", "base", "--from-start", *QUIET_INGEST)[0] == 0
    _truncate_to_first_line(repo)
    assert rec(capsys, repo, "--trace-id", "trunc", *QUIET_INGEST)[0] == 1
    code, out, err = rec(
        capsys, repo, "--trace-id", "trace-seq-drift-1", "--from-start", *_hb_flags(), *QUIET_INGEST
    )
    assert code == 0, err
    state = json.loads(out)
    health = state["health"]
    assert health["traceId"] == "trace-seq-drift-1"
    assert health["status"] == "degraded"
    assert health["reasonCodes"] == [
        "divergence_detected",
        "ordering_drift_detected",
        "runtime_heartbeat_stale",
    ]
    seq = read_json(ops(repo) / "sequence-state.json")
    assert seq["traceId"] == "trace-seq-drift-1"
    assert seq["violations"] == ["event_sequence_regression", "snapshot_sequence_regression"]
    assert seq["driftActive"] is True
    assert (seq["snapshot"]["previous"], seq["snapshot"]["current"]) == (2, 1)
    assert seq["snapshot"]["regressed"] is True
    assert seq["events"]["monotonicAcrossBatches"] is False
    assert seq["events"]["first"] == 1 and seq["events"]["last"] == 1
    assert seq["replay"] == {"fromStart": True, "sameLog": False, "logRewrite": "truncated"}
    assert (tel(repo) / "sequence.jsonl").is_file()
    row = rows(repo)[-1]
    assert (row["status"], row["fromStart"], row["eventsIngested"]) == ("success", True, 1)
    assert (row["cursorOffsetBefore"], row["cursorOffsetAfter"]) == (0, 1)
    cursor = read_json(ops(repo) / "cursor.json")
    assert (cursor["eventLineOffset"], cursor["eventLineCount"]) == (1, 1)
    assert read_json(ops(repo) / "stream-state.json")["fold"]["eventCount"] == 1
    replay_rows = [e for e in escalations(repo) if e["traceId"] == "trace-seq-drift-1"]
    assert [e["category"] for e in replay_rows] == [
        "divergence_detected",
        "ordering_drift_detected",
        "health_degraded",
    ]

    # 101: status shows the heartbeat, the ordering drift, and one shared trace
    code, out, _ = cli(capsys, "status", "--repo", repo, "--loop", LOOP)
    assert code == 0
    vis = json.loads(out)["visibility"]
    assert vis["heartbeat"]["freshnessStatus"] == "degraded"
    assert vis["heartbeat"]["reasonCode"] == "runtime_heartbeat_stale"
    assert vis["sequence"]["status"] == "ordering_drift_detected"
    assert vis["sequence"]["driftActive"] is True
    assert vis["sequence"]["traceId"] == "trace-seq-drift-1"
    for key in ("reconcileTraceId", "heartbeatTraceId", "sequenceTraceId", "sharedTraceId"):
        assert vis["trace"][key] == "trace-seq-drift-1", key

    # the next normal pass continues from the replayed position
    append_events(repo, LOOP, more_events(2))
    assert rec(capsys, repo, "--trace-id", "after", *QUIET_INGEST)[0] == 0
    assert rows(repo)[-1]["eventsIngested"] == 2
    assert read_json(ops(repo) / "stream-state.json")["fold"]["eventCount"] == 3


def test_from_start_after_truncation_flags_both_regressions(
    capsys: pytest.CaptureFixture[str], hb_repo: Path
) -> None:
    repo = hb_repo
    assert rec(capsys, repo, "--trace-id", "base", *QUIET_INGEST)[0] == 0
    _truncate_to_first_line(repo)
    code, out, _ = rec(capsys, repo, "--trace-id", "replay", "--from-start", *QUIET_INGEST)
    assert code == 0
    seq = read_json(ops(repo) / "sequence-state.json")
    assert seq["violations"] == ["event_sequence_regression", "snapshot_sequence_regression"]
    assert seq["driftActive"] is True
    assert "ordering_drift_detected" in json.loads(out)["health"]["reasonCodes"]
    assert [e for e in escalations(repo) if e["category"] == "ordering_drift_detected"]


def test_from_start_on_unchanged_log_is_not_drift(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Adapted item 65: no ``event_sequence_regression`` blip, nothing to recover from."""
    assert rec(capsys, repo, "--trace-id", "n1", *QUIET_INGEST)[0] == 0
    code, out, _ = rec(capsys, repo, "--trace-id", "replay", "--from-start", *QUIET_INGEST)
    assert code == 0
    seq = json.loads(out)["sequence"]
    assert (seq["status"], seq["driftActive"], seq["violations"]) == ("ok", False, [])
    assert "reasonCode" not in seq
    assert seq["events"]["first"] == 1 and seq["events"]["last"] == 2
    assert rows(repo)[-1]["eventsIngested"] == 2
    assert read_json(ops(repo) / "stream-state.json")["fold"]["eventCount"] == 2  # not 4
    assert not [e for e in escalations(repo) if e["category"] == "ordering_drift_detected"]
    assert json.loads(out)["health"]["status"] == "healthy"
    code, out, _ = rec(capsys, repo, "--trace-id", "n2", *QUIET_INGEST)
    seq = json.loads(out)["sequence"]
    assert seq["status"] == "ok"
    assert (seq["events"]["first"], seq["events"]["last"]) == (None, None)
    assert seq["transition"]["recoveredFromDrift"] is False


def test_upstream_cursor_beyond_the_log_fails(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """A cursor written by the upstream tool (line offset only) that exceeds the log."""
    ops(repo).mkdir(parents=True)
    (ops(repo) / "cursor.json").write_text(
        json.dumps({"schemaVersion": "v1", "eventLineOffset": 9, "eventLineCount": 9}, indent=2),
        encoding="utf-8",
    )
    code, _, err = rec(capsys, repo, "--trace-id", "up", *QUIET_INGEST)
    assert code == 1
    row = rows(repo)[-1]
    assert row["failureCode"] == "events_unavailable"
    assert "cursor offset (9) exceeds available events (2)" in row["failureMessage"]
    assert row["cursorOffsetBefore"] == 9
    assert err == ""  # the why is in the telemetry row, not beside the document


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON in cursor file: {p}"),
        ("[1]", "invalid JSON in cursor file: {p}"),
        ('{"eventLineOffset": "x"}', "invalid cursor offset in {p}"),
        ('{"eventLineOffset": -1}', "invalid cursor offset in {p}"),
        ('{"eventLineOffset": 1.5}', "invalid cursor offset in {p}"),
    ],
)
def test_unreadable_upstream_cursor_fails_instead_of_rereading(
    capsys: pytest.CaptureFixture[str], repo: Path, content: str, message: str
) -> None:
    """Without our own stream position, a cursor we cannot read is not taken as "line 0"
    (that would silently re-ingest the whole log): the pass fails like the upstream poll."""
    cursor = ops(repo) / "cursor.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(content, encoding="utf-8")
    code, _, _ = rec(capsys, repo, *QUIET_INGEST)
    assert code == 1
    row = rows(repo)[-1]
    assert row["failureCode"] == "events_unavailable"
    assert row["failureMessage"] == "error: " + message.format(p=cursor)
    assert cursor.read_text(encoding="utf-8") == content
    # an explicit replay is the way out
    assert rec(capsys, repo, "--from-start", *QUIET_INGEST)[0] == 0
    assert rows(repo)[-1]["eventsIngested"] == 2
    assert read_json(cursor)["eventLineOffset"] == 2


@pytest.mark.parametrize("content", ['{"eventLineOffset": null}', "{}", '{"eventLineOffset": 0}'])
def test_cursor_without_offset_starts_at_zero(
    capsys: pytest.CaptureFixture[str], repo: Path, content: str
) -> None:
    cursor = ops(repo) / "cursor.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(content, encoding="utf-8")
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    assert rows(repo)[-1]["eventsIngested"] == 2


def test_damaged_cursor_is_repaired_from_our_own_position(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """stream-state.json holds the verified position: a damaged cursor.json is rewritten."""
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    (ops(repo) / "cursor.json").write_text("garbage", encoding="utf-8")
    append_events(repo, LOOP, more_events(1))
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    row = rows(repo)[-1]
    assert (row["cursorOffsetBefore"], row["eventsIngested"], row["cursorOffsetAfter"]) == (0, 1, 3)
    assert read_json(ops(repo) / "cursor.json")["eventLineOffset"] == 3


def test_upstream_cursor_is_honoured(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    """An upstream cursor (line offset, no fingerprint) resumes after that line."""
    ops(repo).mkdir(parents=True)
    (ops(repo) / "cursor.json").write_text(
        json.dumps({"schemaVersion": "v1", "eventLineOffset": 1, "eventLineCount": 2}, indent=2),
        encoding="utf-8",
    )
    code, _, _ = rec(capsys, repo, "--trace-id", "up", *QUIET_INGEST)
    assert code == 0
    row = rows(repo)[-1]
    assert (row["cursorOffsetBefore"], row["cursorOffsetAfter"], row["eventsIngested"]) == (1, 2, 1)


# --- incremental ingestion ---------------------------------------------------------------


def test_incremental_passes_ingest_exactly_the_new_events(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    total = 2
    for batch in (3, 0, 1, 5):
        append_events(repo, LOOP, more_events(batch, start=total))
        total += batch
        code, out, _ = rec(capsys, repo, *QUIET_INGEST)
        assert code == 0
        row = rows(repo)[-1]
        assert row["eventsIngested"] == batch
        assert (row["cursorOffsetBefore"], row["cursorOffsetAfter"]) == (total - batch, total)
        assert json.loads(out)["cursor"] == {"eventLineOffset": total, "eventLineCount": total}
    assert sum(r["eventsIngested"] for r in rows(repo)) == total
    fold = read_json(ops(repo) / "stream-state.json")["fold"]
    assert fold["eventCount"] == total and fold["line"] == total


def test_max_events_caps_and_next_pass_continues(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    append_events(repo, LOOP, more_events(5))
    seen = []
    for _ in range(3):
        assert rec(capsys, repo, "--max-events", "2", *QUIET_INGEST)[0] == 0
        row = rows(repo)[-1]
        seen.append((row["cursorOffsetBefore"], row["cursorOffsetAfter"], row["eventsIngested"]))
    assert seen == [(2, 4, 2), (4, 6, 2), (6, 7, 1)]
    state = read_json(ops(repo) / "state.json")
    # state.cursor is the snapshot total, cursor.json the consumed offset
    assert state["cursor"] == {"eventLineOffset": 7, "eventLineCount": 7}
    assert read_json(ops(repo) / "stream-state.json")["fold"]["eventCount"] == 7
    assert rec(capsys, repo, "--max-events", "2", *QUIET_INGEST)[0] == 0
    assert rows(repo)[-1]["eventsIngested"] == 0


def test_max_events_cursor_differs_from_state_cursor(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Q-20 kept: with --max-events, cursor.json (consumed) != state.cursor (total)."""
    append_events(repo, LOOP, more_events(3))
    code, out, _ = rec(capsys, repo, "--max-events", "1", *QUIET_INGEST)
    assert code == 0
    assert read_json(ops(repo) / "cursor.json")["eventLineOffset"] == 1
    assert read_json(ops(repo) / "cursor.json")["eventLineCount"] == 5
    assert json.loads(out)["cursor"]["eventLineCount"] == 5


def test_unterminated_final_line_is_ingested_once_complete(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    line = (json.dumps(more_events(1)[0], separators=(",", ":")) + "\n").encode()
    append_raw(repo, LOOP, line[:20])
    code, out, err = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0
    assert rows(repo)[-1]["eventsIngested"] == 0
    assert err.startswith("warning: ") and "incomplete line" in err
    assert str(events_path(repo)) in err
    assert json.loads(out)["cursor"] == {"eventLineOffset": 2, "eventLineCount": 2}
    assert read_json(ops(repo) / "cursor.json")["eventLineOffset"] == 2
    assert read_json(ops(repo) / "stream-state.json")["tornTailBytes"] == 20
    # still torn: still nothing, still a warning
    append_raw(repo, LOOP, line[20:-1])
    code, _, err = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0 and "incomplete line" in err
    assert rows(repo)[-1]["eventsIngested"] == 0
    # completed: ingested exactly once, no warning
    append_raw(repo, LOOP, b"\n")
    code, out, err = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0 and err == ""
    assert rows(repo)[-1]["eventsIngested"] == 1
    assert json.loads(out)["projection"]["lastEventName"] == "role_end"
    assert rec(capsys, repo, *QUIET_INGEST)[0] == 0
    assert rows(repo)[-1]["eventsIngested"] == 0
    assert sum(r["eventsIngested"] for r in rows(repo)) == 3
    assert read_json(ops(repo) / "stream-state.json")["fold"]["eventCount"] == 3


def test_torn_only_line_in_an_empty_log(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", events=[]).resolve()
    ev = json.dumps(fresh_events(1)[0], separators=(",", ":")).encode()
    append_raw(repo, LOOP, ev)
    code, out, err = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0
    assert "incomplete line" in err
    assert rows(repo)[-1]["eventsIngested"] == 0
    assert json.loads(out)["projection"]["lastEventName"] is None
    append_raw(repo, LOOP, b"\n")
    code, out, err = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0 and err == ""
    assert rows(repo)[-1]["eventsIngested"] == 1
    assert json.loads(out)["projection"]["lastEventName"] == "loop_start"


def test_blank_lines_count_but_are_not_events(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    append_raw(repo, LOOP, b"\n   \n")
    append_events(repo, LOOP, more_events(1))
    append_raw(repo, LOOP, b"\n")
    code, out, _ = rec(capsys, repo, *QUIET_INGEST)
    assert code == 0
    assert rows(repo)[-1]["eventsIngested"] == 3
    assert json.loads(out)["cursor"]["eventLineCount"] == 6
    assert read_json(ops(repo) / "stream-state.json")["fold"]["eventCount"] == 3
    code, _, _ = rec(capsys, repo, *QUIET_INGEST)
    assert rows(repo)[-1]["eventsIngested"] == 0


# --- bad input loses nothing -------------------------------------------------------------


def test_corrupt_middle_line_fails_and_loses_nothing(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """The pass fails naming file and line; the projections keep what they had.

    ``state.json`` takes the failed pass's ``health`` and ``trace`` (item 51, what status
    shows) and refreshed ``drift`` / ``tuning`` (Q-30); everything else in it, and
    ``cursor.json`` / ``stream-state.json`` byte for byte, stays as it was.
    """
    assert rec(capsys, repo, "--trace-id", "good", *QUIET_INGEST)[0] == 0
    keep = {n: (ops(repo) / n).read_bytes() for n in ("cursor.json", "stream-state.json")}
    state_before = read_json(ops(repo) / "state.json")
    good = more_events(2)
    append_events(repo, LOOP, good[:1])
    append_raw(repo, LOOP, b'{"timestamp": "2026-01-01T00:00:00Z", "event": \n')
    append_events(repo, LOOP, good[1:])
    code, out, err = rec(capsys, repo, "--trace-id", "bad", *QUIET_INGEST)
    assert code == 1
    assert json.loads(out)["transport"]["failureCode"] == "events_unavailable"
    row = rows(repo)[-1]
    assert row["failureCode"] == "events_unavailable"
    assert row["failureMessage"] == f"error: invalid JSON event at line 4 in {events_path(repo)}"
    assert row["eventsIngested"] == 0
    assert err == ""  # the health document is the whole output; the why is in the row
    for name, data in keep.items():
        assert (ops(repo) / name).read_bytes() == data, name
    state_after = read_json(ops(repo) / "state.json")
    assert list(state_after) == list(state_before)
    moved = ("health", "trace", "drift", "tuning")
    assert {k: v for k, v in state_after.items() if k not in moved} == {
        k: v for k, v in state_before.items() if k not in moved
    }
    assert state_after["trace"] == {"reconcileTraceId": "bad"}
    assert state_after["drift"]["traceId"] == "bad"

    # the runtime's log is repaired in place: every event is ingested exactly once
    path = events_path(repo)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = (json.dumps(more_events(1, start=50)[0], separators=(",", ":")) + "\n").encode()
    path.write_bytes(b"".join(lines))
    code, _, err = rec(capsys, repo, "--trace-id", "fixed", *QUIET_INGEST)
    assert code == 0, err
    assert rows(repo)[-1]["eventsIngested"] == 3
    assert read_json(ops(repo) / "stream-state.json")["fold"]["eventCount"] == 5


@pytest.mark.parametrize(
    "bad_line",
    [
        b"[1, 2]\n",
        b'{"event": "role_end"}\n',
        b'{"timestamp": "2026-01-01T00:00:00Z"}\n',
        b'{"timestamp": "2026-01-01T00:00:00Z", "event": NaN}\n',
        b"\xff\xfe\n",
    ],
)
def test_bad_event_lines_are_events_unavailable(
    capsys: pytest.CaptureFixture[str], repo: Path, bad_line: bytes
) -> None:
    append_raw(repo, LOOP, bad_line)
    append_events(repo, LOOP, more_events(1))
    code, _, err = rec(capsys, repo, *QUIET_INGEST)
    assert code == 1
    row = rows(repo)[-1]
    assert row["failureCode"] == "events_unavailable"
    assert "line 3" in row["failureMessage"] and str(events_path(repo)) in row["failureMessage"]
    assert not (ops(repo) / "cursor.json").exists()
    assert not (ops(repo) / "state.json").exists()
    assert "Traceback" not in err


@pytest.mark.parametrize("loop_id", ["../x", "a/b", "..", ".", "/etc", "a\\b", "x\x01"])
def test_invalid_loop_ids_write_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, loop_id: str
) -> None:
    repo = make_runtime_repo(tmp_path / "repo", events=fresh_events(2)).resolve()
    before = tree(tmp_path)
    for command in ("reconcile", "status"):
        code, out, err = cli(capsys, command, "--repo", repo, "--loop", loop_id)
        assert code == 1, command
        assert out == ""
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
    assert tree(tmp_path) == before


def test_runtime_file_with_invalid_json_is_snapshot_unavailable(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    (repo / ".superloop" / "state.json").write_text("{not json", encoding="utf-8")
    code, out, _ = rec(capsys, repo, *QUIET_INGEST)
    assert code == 1
    row = rows(repo)[-1]
    assert row["failureCode"] == "snapshot_unavailable"
    assert row["failureMessage"] == f"error: invalid JSON in {repo}/.superloop/state.json"
    assert json.loads(out)["transport"]["failureCode"] == "snapshot_unavailable"


# --- file overrides ----------------------------------------------------------------------


def test_file_override_flags(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    alt_dir = tmp_path / "alt"
    (repo / ".superloop" / "loops" / LOOP / "heartbeat.v1.json").write_text(
        json.dumps(runtime_heartbeat(stamp(-1))), encoding="utf-8"
    )
    flags = {
        "--cursor-file": alt_dir / "c.json",
        "--state-file": alt_dir / "s.json",
        "--sequence-state-file": alt_dir / "seq.json",
        "--sequence-telemetry-file": alt_dir / "seq.jsonl",
        "--heartbeat-state-file": alt_dir / "hb.json",
        "--heartbeat-telemetry-file": alt_dir / "hb.jsonl",
    }
    args: list[object] = []
    for flag, path in flags.items():
        args += [flag, path]
    code, out, _ = rec(
        capsys,
        repo,
        *args,
        "--degraded-ingest-lag-seconds",
        "1",
        "--critical-ingest-lag-seconds",
        BIG,
    )
    assert code == 0
    for path in flags.values():
        assert path.is_file(), path
    for default in ("cursor.json", "state.json", "sequence-state.json", "heartbeat.json"):
        assert not (ops(repo) / default).exists(), default
    assert read_json(alt_dir / "s.json") == json.loads(out)
    assert read_json(alt_dir / "c.json")["eventLineOffset"] == 2
    # escalation rows name the files actually used
    esc = escalations(repo)[-1]
    assert esc["stateFile"] == str(alt_dir / "s.json")
    assert esc["cursorFile"] == str(alt_dir / "c.json")


# --- crash safety (Q-44) -----------------------------------------------------------------


class _Crash(Exception):
    pass


def _snapshot_ops(repo: Path) -> dict[str, bytes]:
    """Every artifact of the loop (streams and projections), by relative path."""
    base = ops(repo)
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_a_crash_at_any_write_ends_exactly_like_an_uninterrupted_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill the pass at each of its file operations in turn, then run a clean pass.

    The pass commits as one (``store._commit``): whatever the crash point, the loop ends
    byte for byte where an uninterrupted history ends: every event folded once, every
    escalation and telemetry row appended exactly once, no extra page. (The strace sweep
    in ``tests/test_crash_sweep.py`` does the same with real SIGKILLs.)
    """
    import ops_manager.store._commit as commit_mod

    real = {
        name: getattr(commit_mod, name) for name in ("write_atomic", "_append_once", "_replace")
    }

    def scenario(root: Path, crash_at: int) -> tuple[int, bool, Path]:
        repo = make_runtime_repo(root, events=fresh_events(2, at=T0)).resolve()
        assert reconcile(settings_for(repo, "p1"), clock=at(T0)).ok
        append_events(repo, LOOP, more_events(3, at=T0))
        (ops(repo) / "intents.jsonl").write_text(
            json.dumps({"intent": "cancel", "status": "ambiguous"}) + "\n", encoding="utf-8"
        )
        before = _snapshot_ops(repo)
        calls = [0]

        def guard(fn: Callable[..., None]) -> Callable[..., None]:
            def wrapped(*args: Any, **kwargs: Any) -> None:
                calls[0] += 1
                if calls[0] == crash_at:
                    raise _Crash
                fn(*args, **kwargs)

            return wrapped

        for name, fn in real.items():
            monkeypatch.setattr(commit_mod, name, guard(fn))
        crashed = False
        try:
            if crash_at >= 0:
                reconcile(settings_for(repo, "p2"), clock=at(T0 + 10))
        except _Crash:
            crashed = True
            if crash_at == 1:  # before the commit point: the previous pass, untouched
                assert _snapshot_ops(repo) == before
        finally:
            for name, fn in real.items():
                monkeypatch.setattr(commit_mod, name, fn)
        final = reconcile(settings_for(repo, "p3"), clock=at(T0 + 20))
        assert final.ok
        return calls[0], crashed, repo

    def normalised(repo: Path) -> dict[str, bytes]:
        # the repo path is inside some artifacts
        return {k: v.replace(str(repo).encode(), b"R") for k, v in _snapshot_ops(repo).items()}

    writes, crashed, dry = scenario(tmp_path / "dry", 0)
    assert not crashed and writes >= 8
    # the two histories a crashed pass may end in: it committed (p1 p2 p3), or it did not
    # and p3 did its work (p1 p3)
    committed = normalised(dry)
    _, _, skipped_repo = scenario(tmp_path / "skipped", -1)
    not_committed = normalised(skipped_repo)
    assert committed != not_committed
    for history in (dry, skipped_repo):
        assert any(
            e["category"] == "health_degraded" and "control_ambiguous" in e["reasonCodes"]
            for e in escalations(history)
        )
    for k in range(1, writes + 1):
        _, crashed, repo = scenario(tmp_path / f"crash-{k}", k)
        assert crashed, k
        # write 1 is the commit record itself: a crash there is before the commit point
        expected = not_committed if k == 1 else committed
        got = normalised(repo)
        assert got.keys() == expected.keys(), k
        for name, data in expected.items():
            assert got[name] == data, f"crash at write {k}: {name} differs from the history"


# --- replay determinism ------------------------------------------------------------------

PROJECTIONS = (
    "state.json",
    "health.json",
    "sequence-state.json",
    "heartbeat.json",
    "stream-state.json",
    "cursor.json",
    "escalations.jsonl",
    "telemetry/reconcile.jsonl",
    "telemetry/sequence.jsonl",
    "telemetry/heartbeat.jsonl",
    "telemetry/transport-health.json",
)


def _scripted_run(root: Path) -> dict[str, bytes]:
    repo = make_runtime_repo(
        root,
        events=fresh_events(2, at=T0),
        heartbeat=runtime_heartbeat(format_ts(T0 - 30)),
        active=False,
    ).resolve()
    results: list[ReconcileResult] = []
    results.append(reconcile(settings_for(repo, "det-1"), clock=at(T0)))
    append_events(repo, LOOP, more_events(4, at=T0))
    results.append(reconcile(settings_for(repo, "det-2", max_events=3), clock=at(T0 + 7)))
    append_raw(repo, LOOP, b'{"timestamp":"2030-01-01T00:00:09Z","ev')
    results.append(reconcile(settings_for(repo, "det-3"), clock=at(T0 + 300)))
    append_raw(repo, LOOP, b'ent":"role_end","loop_id":"demo-loop","run_id":"run-123"}\n')
    results.append(reconcile(settings_for(repo, "det-4"), clock=at(T0 + 301)))
    shutil.rmtree(repo / ".superloop" / "loops")  # the runtime disappears: a failed pass
    results.append(reconcile(settings_for(repo, "det-5"), clock=at(T0 + 302)))
    assert [r.ok for r in results] == [True, True, True, True, False]
    return {rel: (ops(repo) / rel).read_bytes() for rel in PROJECTIONS}


def test_replay_determinism_with_a_fixed_clock(tmp_path: Path) -> None:
    first = _scripted_run(tmp_path / "repo")
    shutil.rmtree(tmp_path / "repo")
    second = _scripted_run(tmp_path / "repo")
    assert first == second
    # and from a different location, equal up to the repo path
    third = _scripted_run(tmp_path / "elsewhere")
    a = str((tmp_path / "repo").resolve()).encode()
    b = str((tmp_path / "elsewhere").resolve()).encode()
    assert {k: v.replace(a, b"<R>") for k, v in first.items()} == {
        k: v.replace(b, b"<R>") for k, v in third.items()
    }
    assert all(first[rel] for rel in PROJECTIONS)


_EVENTS = [
    event("loop_start", format_ts(T0), iteration=0),
    *[event("role_end", format_ts(T0 + i), role=f"r{i}") for i in range(1, 9)],
    event("loop_stop", format_ts(T0 + 9), data={"reason": "max_iterations"}),
]
_LOG = events_bytes(_EVENTS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=len(_LOG)), max_size=6),
    caps=st.lists(st.integers(min_value=0, max_value=3), min_size=6, max_size=6),
)
def test_any_split_of_the_log_folds_like_one_pass(cuts: list[int], caps: list[int]) -> None:
    """Appending the log in arbitrary byte chunks (torn lines included), with arbitrary
    ``--max-events`` caps, ends in the same fold and position as one pass over the whole
    log; every event is ingested exactly once; a pass warns iff it saw a torn tail."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        whole = make_runtime_repo(root / "whole", events=_EVENTS).resolve()
        assert reconcile(settings_for(whole, "w"), clock=at(T0)).ok
        split = make_runtime_repo(root / "split", events=[]).resolve()
        written = 0
        for cut, cap in zip(sorted(cuts), caps, strict=False):
            append_raw(split, LOOP, _LOG[written:cut])
            written = max(written, cut)
            result = reconcile(settings_for(split, "s", max_events=cap), clock=at(T0))
            assert result.ok
            torn = not _LOG[:written].endswith(b"\n") and written > 0
            if cap == 0:
                assert bool(result.warnings) == torn
        append_raw(split, LOOP, _LOG[written:])
        while True:
            result = reconcile(settings_for(split, "s"), clock=at(T0))
            assert result.ok and not result.warnings
            if result.events_ingested == 0:
                break
        a = read_json(ops(whole) / "stream-state.json")
        b = read_json(ops(split) / "stream-state.json")
        assert a["fold"] == b["fold"]
        assert a["position"] == b["position"]
        assert b["fold"]["eventCount"] == len(_EVENTS)
        assert sum(r["eventsIngested"] for r in rows(split)) == len(_EVENTS)
        assert read_json(ops(split) / "cursor.json")["eventLineOffset"] == len(_EVENTS)


# --- through the installed console script ------------------------------------------------


def _run(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    base.update(env or {})
    return subprocess.run(
        [str(CLI), *map(str, argv)],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        check=False,
    )


def test_console_script_success_and_failure(tmp_path: Path) -> None:
    assert CLI.exists(), CLI
    repo = make_runtime_repo(tmp_path / "r", events=fresh_events(2)).resolve()
    proc = _run("reconcile", "--repo", repo, "--loop", LOOP, "--trace-id", "sp-1", *QUIET_INGEST)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trace"] == {"reconcileTraceId": "sp-1"}
    assert proc.stderr == ""
    proc = _run("status", "--repo", repo, "--loop", LOOP)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["reconcile"]["lastTraceId"] == "sp-1"

    append_raw(repo, LOOP, b'{"timestamp":')
    proc = _run("reconcile", "--repo", repo, "--loop", LOOP, *QUIET_INGEST)
    assert proc.returncode == 0
    assert proc.stderr.startswith("warning: ") and "incomplete line" in proc.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _run("reconcile", "--repo", empty, "--loop", LOOP, "--trace-id", "sp-f")
    assert proc.returncode == 1
    health = json.loads(proc.stdout)
    assert health["transport"]["failureCode"] == "snapshot_unavailable"
    assert proc.stderr == ""  # the health document is the whole output


def test_console_script_argument_errors(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", events=fresh_events(2)).resolve()
    before = tree(tmp_path)
    proc = _run("reconcile", "--repo", repo, "--loop", "../x")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: invalid loop id") and proc.stderr.count("\n") == 1
    assert tree(tmp_path) == before
    proc = _run("reconcile", "--repo", repo, "--loop", LOOP, "--alerts-enabled", "maybe")
    assert (proc.returncode, proc.stderr) == (1, "error: --alerts-enabled must be true or false\n")
    proc = _run(
        "reconcile", "--repo", repo, "--loop", LOOP, env={"OPS_MANAGER_ALERTS_ENABLED": "yes"}
    )
    assert proc.returncode == 1 and "OPS_MANAGER_ALERTS_ENABLED" in proc.stderr
