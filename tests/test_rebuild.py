"""``ops-manager rebuild``: projections re-folded from their streams, compared, restored."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.cli import main
from ops_manager.engine.rebuild import json_differences, rebuild
from ops_manager.engine.reconcile import ReconcileSettings, reconcile
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.store import LoopPaths
from tests.runtime_fixtures import append_events, event, make_runtime_repo, runtime_heartbeat

LOOP = "demo-loop"
T0 = parse_ts("2030-01-01T00:00:00Z") or 0
REBUILDABLE = (
    "stream-state.json",
    "profile-drift.json",
    "sequence-state.json",
    "heartbeat.json",
    "telemetry/transport-health.json",
    "cursor.json",
    # C-15d: re-derived from the reconcile rows' recorded inputs
    "health.json",
    "state.json",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def settings(repo: Path, trace: str) -> ReconcileSettings:
    return ReconcileSettings(
        repo=repo,
        loop_id=LOOP,
        trace_id=trace,
        thresholds=Thresholds(
            profile="balanced", degraded_ingest_lag_seconds=10**9, critical_ingest_lag_seconds=10**9
        ),
        drift_min_confidence="low",
        drift_required_streak=1,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two normal passes (a fixed clock), the second after three more events."""
    r = make_runtime_repo(
        tmp_path / "repo",
        events=[event("loop_start", format_ts(T0 - 2)), event("iteration_start", format_ts(T0))],
        heartbeat=runtime_heartbeat(format_ts(T0 - 200)),
    ).resolve()
    assert reconcile(settings(r, "p1"), clock=lambda: T0).ok
    append_events(
        r, LOOP, [event("role_end", format_ts(T0 + i), role=f"r{i}") for i in range(1, 4)]
    )
    assert reconcile(settings(r, "p2"), clock=lambda: T0 + 10).ok
    return r


def snapshot(repo: Path) -> dict[str, bytes]:
    return {rel: (ops(repo) / rel).read_bytes() for rel in REBUILDABLE}


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, dict[str, Any], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


def by_file(report: dict[str, Any], repo: Path) -> dict[str, dict[str, Any]]:
    return {str(Path(p["file"]).relative_to(ops(repo))): p for p in report["projections"]}


def test_a_clean_loop_matches(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, report, err = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP)
    assert (code, err) == (0, "")
    assert list(report) == ["schemaVersion", "generatedAt", "source", "write", "ok", "projections"]
    assert report["ok"] is True and report["write"] is False
    entries = by_file(report, repo)
    for rel in REBUILDABLE:
        assert entries[rel]["status"] == "match", (rel, entries[rel])
        assert entries[rel]["rebuildable"] is True
        assert entries[rel]["differences"] == []
    assert entries["alert-dispatch-state.json"]["status"] == "not_rebuildable"
    assert entries["alert-dispatch-state.json"]["rebuildable"] is False
    assert entries["alert-dispatch-state.json"]["reason"]
    # health and state are folds of the reconcile rows now
    assert entries["health.json"]["stream"] == str(ops(repo) / "telemetry" / "reconcile.jsonl")
    assert list(entries["stream-state.json"]) == [
        "file",
        "stream",
        "status",
        "rebuildable",
        "differences",
    ]
    assert entries["stream-state.json"]["stream"] == str(
        repo / ".superloop" / "loops" / LOOP / "events.jsonl"
    )


def test_corrupted_projections_are_reported_then_restored_byte_identically(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    written = snapshot(repo)
    o = ops(repo)

    ss = json.loads(written["stream-state.json"])
    ss["fold"]["eventCount"] = 99
    ss["fold"]["byName"]["role_end"] = 1
    (o / "stream-state.json").write_text(json.dumps(ss), encoding="utf-8")
    drift = json.loads(written["profile-drift.json"])
    drift["mismatchStreak"] = 42
    drift["transitioned"]["toActive"] = not drift["transitioned"]["toActive"]
    (o / "profile-drift.json").write_text(json.dumps(drift, indent=2), encoding="utf-8")
    seq = json.loads(written["sequence-state.json"])
    seq["violations"] = ["event_sequence_regression"]
    (o / "sequence-state.json").write_text(json.dumps(seq), encoding="utf-8")
    hb = json.loads(written["heartbeat.json"])
    hb["heartbeatLagSeconds"] = 1
    (o / "heartbeat.json").write_text(json.dumps(hb), encoding="utf-8")
    th = json.loads(written["telemetry/transport-health.json"])
    th["failureStreak"] = 3
    (o / "telemetry/transport-health.json").write_text(json.dumps(th), encoding="utf-8")
    cursor = json.loads(written["cursor.json"])
    cursor["eventLineOffset"] = 2
    (o / "cursor.json").write_text(json.dumps(cursor), encoding="utf-8")
    health = json.loads(written["health.json"])
    health["metrics"]["transportFailureStreak"] = 7
    (o / "health.json").write_text(json.dumps(health, indent=2), encoding="utf-8")
    state = json.loads(written["state.json"])
    state["divergence"]["any"] = True
    (o / "state.json").write_text(json.dumps(state), encoding="utf-8")

    code, report, _ = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP)
    assert code == 1 and report["ok"] is False
    entries = by_file(report, repo)
    assert entries["stream-state.json"]["status"] == "differs"
    assert entries["stream-state.json"]["differences"] == [
        "$.fold.eventCount",
        "$.fold.byName.role_end",
    ]
    assert entries["profile-drift.json"]["differences"] == [
        "$.mismatchStreak",
        "$.transitioned.toActive",
    ]
    assert entries["sequence-state.json"]["differences"] == ["$.violations[0]"]
    assert entries["heartbeat.json"]["differences"] == ["$.heartbeatLagSeconds"]
    assert entries["telemetry/transport-health.json"]["differences"] == ["$.failureStreak"]
    assert entries["cursor.json"]["differences"] == ["$.eventLineOffset"]
    assert entries["health.json"]["differences"] == ["$.metrics.transportFailureStreak"]
    assert entries["state.json"]["differences"] == ["$.divergence.any"]
    # the report changed nothing
    for rel in REBUILDABLE:
        assert (o / rel).read_bytes() != written[rel], rel

    code, report, _ = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP, "--write")
    assert code == 0 and report["ok"] is True and report["write"] is True
    entries = by_file(report, repo)
    for rel in REBUILDABLE:
        assert entries[rel]["status"] == "restored", rel
        assert (o / rel).read_bytes() == written[rel], rel  # what the pass wrote, byte for byte
    # and now everything matches
    code, report, _ = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP)
    assert code == 0
    assert {p["status"] for p in report["projections"]} <= {"match", "not_rebuildable"}


def test_missing_stream_state_and_drift_are_rebuilt(repo: Path) -> None:
    written = snapshot(repo)
    for rel in ("stream-state.json", "profile-drift.json", "sequence-state.json"):
        (ops(repo) / rel).unlink()
    paths = LoopPaths.for_loop(repo, LOOP)
    report = rebuild(paths)
    statuses = {c.file.name: c.status for c in report.checks}
    assert statuses["stream-state.json"] == "missing"
    assert statuses["profile-drift.json"] == "missing"
    assert report.exit_code == 1
    report = rebuild(paths, write=True)
    assert report.exit_code == 0
    for rel in ("stream-state.json", "profile-drift.json", "sequence-state.json"):
        assert (ops(repo) / rel).read_bytes() == written[rel], rel


def test_every_projection_deleted_is_restored_byte_identically(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Issue 13's first check: delete every projection, ``rebuild --write``: all eight come
    back byte for byte (health and state from the rows' recorded inputs, C-15d)."""
    every = [p for p in ops(repo).rglob("*.json") if p.is_file()]
    written = {p: p.read_bytes() for p in every}
    assert {str(p.relative_to(ops(repo))) for p in every} == set(REBUILDABLE)
    for p in every:
        p.unlink()
    code, report, err = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP, "--write")
    entries = by_file(report, repo)
    for rel in REBUILDABLE:
        assert entries[rel]["status"] == "restored", (rel, entries[rel])
        assert (ops(repo) / rel).read_bytes() == written[ops(repo) / rel], rel
    assert (code, report["ok"], err) == (0, True, "")
    code, report, _ = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP)
    assert (code, report["ok"]) == (0, True), report
    assert {e["status"] for e in report["projections"]} == {"match", "not_rebuildable"}


def _drop_inputs(repo: Path) -> None:
    """Rewrite the reconcile rows as a version before C-15d wrote them (no ``inputs``)."""
    path = ops(repo) / "telemetry" / "reconcile.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all("inputs" in row for row in rows)
    path.write_text(
        "".join(
            json.dumps({k: v for k, v in row.items() if k != "inputs"}, separators=(",", ":"))
            + "\n"
            for row in rows
        ),
        encoding="utf-8",
    )


def test_rows_without_inputs_say_so_and_fail_when_a_projection_is_lost(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Rows written before C-15d: health/state cannot be re-derived. Present and consistent
    they are ``not_rebuildable`` (with why); absent they are ``missing`` and the command
    fails, never ``ok`` with a projection silently gone."""
    _drop_inputs(repo)
    code, report, _ = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP)
    entries = by_file(report, repo)
    for rel in ("health.json", "state.json"):
        assert entries[rel]["status"] == "not_rebuildable", (rel, entries[rel])
        assert "C-15d" in entries[rel]["reason"]
    assert entries["heartbeat.json"]["status"] == "match"  # thresholds kept from the file
    assert (code, report["ok"]) == (0, True)
    for rel in ("health.json", "state.json", "heartbeat.json"):
        (ops(repo) / rel).unlink()
    code, report, err = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP, "--write")
    entries = by_file(report, repo)
    for rel in ("health.json", "state.json", "heartbeat.json"):
        assert entries[rel]["status"] == "missing", (rel, entries[rel])
        assert entries[rel]["rebuildable"] is False
        assert not (ops(repo) / rel).exists(), "not invented"
    assert "lost" in entries["health.json"]["reason"]
    assert "thresholds" in entries["heartbeat.json"]["reason"]
    assert (code, report["ok"], err) == (1, False, "")
    # the next pass records its inputs and writes them again; then all is well
    assert reconcile(settings(repo, "p3"), clock=lambda: T0 + 20).ok
    code, report, _ = cli(capsys, "rebuild", "--repo", repo, "--loop", LOOP)
    assert (code, report["ok"]) == (0, True), report
    assert by_file(report, repo)["state.json"]["status"] == "match"


def test_what_differs_is_said_and_restored(repo: Path) -> None:
    paths = LoopPaths.for_loop(repo, LOOP)
    written = {rel: (ops(repo) / rel).read_bytes() for rel in REBUILDABLE}
    (ops(repo) / "heartbeat.json").unlink()
    health = json.loads(written["health.json"])
    health["status"] = "critical"
    (ops(repo) / "health.json").write_text(json.dumps(health), encoding="utf-8")
    state = json.loads(written["state.json"])
    state["transition"]["currentState"] = "complete"
    (ops(repo) / "state.json").write_text(json.dumps(state), encoding="utf-8")
    (ops(repo) / "alert-dispatch-state.json").write_text(
        json.dumps({"escalationsLineOffset": 50, "escalationsLineCount": 50}), encoding="utf-8"
    )
    report = rebuild(paths)
    checks = {c.file.name: c for c in report.checks}
    assert (checks["heartbeat.json"].status, checks["heartbeat.json"].rebuildable) == (
        "missing",
        True,
    )
    h = checks["health.json"]
    assert (h.status, h.differences) == ("differs", ["$.status"])
    s = checks["state.json"]
    assert (s.status, s.differences) == ("differs", ["$.transition.currentState"])
    report = rebuild(paths, write=True)
    checks = {c.file.name: c for c in report.checks}
    for rel in ("heartbeat.json", "health.json", "state.json"):
        assert checks[rel].status == "restored", rel
        assert (ops(repo) / rel).read_bytes() == written[rel], rel
    d = checks["alert-dispatch-state.json"]
    assert d.status == "differs"
    assert d.differences == ["$.escalationsLineOffset", "$.escalationsLineCount"]
    assert d.detail is not None and d.detail["escalationsLineOffset"] == 50
    assert report.exit_code == 1


def test_dispatch_offsets_within_the_stream_are_reported(repo: Path) -> None:
    lines = len((ops(repo) / "escalations.jsonl").read_text(encoding="utf-8").splitlines())
    (ops(repo) / "alert-dispatch-state.json").write_text(
        json.dumps({"escalationsLineOffset": 1, "escalationsLineCount": lines}), encoding="utf-8"
    )
    check = {c.file.name: c for c in rebuild(LoopPaths.for_loop(repo, LOOP)).checks}[
        "alert-dispatch-state.json"
    ]
    assert check.status == "not_rebuildable"
    assert check.detail == {
        "escalationsLines": lines,
        "escalationsLineOffset": 1,
        "pending": lines - 1,
    }


def test_a_rewritten_log_cannot_be_refolded(repo: Path) -> None:
    events = repo / ".superloop" / "loops" / LOOP / "events.jsonl"
    events.write_bytes(events.read_bytes()[:-5] + b"XXXX\n")
    report = rebuild(LoopPaths.for_loop(repo, LOOP), write=True)
    check = report.checks[0]
    assert check.file.name == "stream-state.json"
    assert (check.status, check.rebuildable, check.differences) == (
        "differs",
        False,
        ["$.position"],
    )
    assert check.reason is not None and "rewritten" in check.reason
    assert report.exit_code == 1


def test_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = (tmp_path / "empty").resolve()
    empty.mkdir()
    code, out, err = cli(capsys, "rebuild", "--repo", empty, "--loop", LOOP)
    assert (code, out) == (1, {})
    assert err == f"error: no ops-manager artifacts found for loop: {LOOP}\n"
    assert cli(capsys, "rebuild", "--loop", LOOP)[2] == "error: --repo is required\n"
    assert cli(capsys, "rebuild", "--repo", empty)[2] == "error: --loop is required\n"


@pytest.mark.parametrize(
    ("stored", "expected", "paths"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 1.0}, ["$.a"]),
        ({"a": 1}, {"a": True}, ["$.a"]),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, ["$ (key order)"]),
        ({"a": [1, 2]}, {"a": [1]}, ["$.a[1]"]),
        ({"x-y": {"z": None}}, {"x-y": {}}, ['$["x-y"].z']),
        ({}, {"n": 0}, ["$.n"]),
    ],
)
def test_json_differences(stored: Any, expected: Any, paths: list[str]) -> None:
    assert json_differences(stored, expected) == paths


def test_transport_health_is_the_fold_of_every_reconcile_row(repo: Path) -> None:
    """Failures and successes, in any order: the failure streak, the last failure code and
    both timestamps come back byte for byte from telemetry/reconcile.jsonl alone."""
    events = repo / ".superloop" / "loops" / LOOP / "events.jsonl"
    kept = events.read_bytes()
    clock = T0 + 20
    for outage in (True, True, False, True, False, False, True):
        if outage:
            events.unlink(missing_ok=True)  # the runtime's log is gone: an ingest failure
        elif not events.exists():
            events.write_bytes(kept)
        clock += 7
        result = reconcile(settings(repo, f"t{clock}"), clock=lambda c=clock: c)
        assert result.ok is not outage
    health_file = ops(repo) / "telemetry" / "transport-health.json"
    written = health_file.read_bytes()
    stored = json.loads(written)
    assert stored["failureStreak"] == 1 and stored["lastResult"] == "failed"
    assert stored["lastSuccessAt"] == format_ts(clock - 7)
    health_file.unlink()
    report = rebuild(LoopPaths.for_loop(repo, LOOP), write=True)
    (check,) = [c for c in report.checks if c.file == health_file]
    assert check.status == "restored"
    assert health_file.read_bytes() == written


_ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "timestamp": st.integers(T0, T0 + 10**6).map(format_ts),
            "status": st.sampled_from(["success", "failed"]),
            "transport": st.sampled_from(["local", "sprite_service"]),
            "traceId": st.text("abc-", min_size=1, max_size=4),
        },
        optional={"failureCode": st.sampled_from(["events_unavailable", "snapshot_unavailable"])},
    ),
    max_size=12,
)


@given(rows=_ROWS, split=st.integers(0, 12))
def test_transport_health_fold_incremental_equals_cold(
    rows: list[dict[str, Any]], split: int
) -> None:
    """What a pass does (step from the stored projection) equals rebuild's cold fold, for any
    split of any row stream; and the fold is deterministic."""
    from ops_manager.engine.rebuild import transport_health_fold
    from ops_manager.reducers.transport import next_transport_health

    cold = transport_health_fold(rows)
    assert cold == transport_health_fold(list(rows))
    state = transport_health_fold(rows[:split])
    for row in rows[split:]:
        state = next_transport_health(
            state or {},
            success=row["status"] == "success",
            failure_code=row.get("failureCode"),
            now=parse_ts(row["timestamp"]) or 0,
            trace_id=row["traceId"],
            transport=row["transport"],
        )
    assert state == cold
