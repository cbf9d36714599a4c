"""``rebuild`` of ``health.json`` / ``state.json`` from the reconcile rows' recorded inputs
(C-15d, issue 13.4): realistic runtime trees, failed passes, project-state, and the shared
reducer the live pass and rebuild both run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.cli import main
from ops_manager.engine.rebuild import rebuild
from ops_manager.engine.reconcile import ReconcileSettings, reconcile
from ops_manager.reducers.lifecycle import SnapshotView
from ops_manager.reducers.pass_inputs import (
    ControlCounts,
    PassInputs,
    PreviousState,
    pass_health,
    pass_lifecycle,
)
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.store import LoopPaths
from tests.runtime_fixtures import loop_dir, runtime_heartbeat, runtime_tree, write_pretty

LOOP = "demo-loop"
#: the run started four hours before the first pass: hours-old timestamps everywhere
START = "2030-01-01T06:00:00Z"
T0 = (parse_ts(START) or 0) + 4 * 3600
PROJECTIONS = (
    "stream-state.json",
    "cursor.json",
    "profile-drift.json",
    "sequence-state.json",
    "heartbeat.json",
    "telemetry/transport-health.json",
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


def run(repo: Path, trace: str, at: int) -> bool:
    s = ReconcileSettings(repo=repo, loop_id=LOOP, trace_id=trace, drift_required_streak=1)
    return reconcile(s, clock=lambda: at).ok


def rebuild_cli(capsys: pytest.CaptureFixture[str], repo: Path, *extra: str) -> tuple[int, Any]:
    code = main(["rebuild", "--repo", str(repo), "--loop", LOOP, *extra])
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    return code, {str(Path(p["file"]).relative_to(ops(repo))): p for p in report["projections"]}


def fail_one_pass(repo: Path, trace: str, at: int) -> None:
    """A pass that cannot reach the runtime (its loop directory is away meanwhile)."""
    away = repo / "away"
    shutil.move(str(loop_dir(repo)), away)
    try:
        assert not run(repo, trace, at)
    finally:
        shutil.move(str(away), loop_dir(repo))


@pytest.fixture
def dead_run(tmp_path: Path) -> Path:
    """A run that died silently four hours ago (``state.json`` still ``active: true``,
    ``active-run.json`` gone, the log ends at a ``role_start``), pretty-printed runtime
    files, string booleans in ``loop_start``; an hours-old heartbeat; an ambiguous control
    intent. Three passes: the first ingests, the second sees nothing new, the third fails."""
    repo = runtime_tree(tmp_path / "repo", "died", start=START, iterations=2).resolve()
    write_pretty(loop_dir(repo) / "heartbeat.v1.json", runtime_heartbeat(format_ts(T0 - 3 * 3600)))
    ops(repo).mkdir(parents=True)
    (ops(repo) / "intents.jsonl").write_text(
        json.dumps({"intent": "cancel", "status": "ambiguous", "traceId": "c1"}) + "\n",
        encoding="utf-8",
    )
    (ops(repo) / "telemetry").mkdir()
    (ops(repo) / "telemetry" / "control.jsonl").write_text(
        json.dumps({"status": "ambiguous", "reasonCode": "control_ambiguous"}) + "\nnot json\n",
        encoding="utf-8",
    )
    assert run(repo, "p1", T0)
    assert run(repo, "p2", T0 + 600)
    return repo


def test_a_dead_run_reconciled_then_every_projection_deleted_is_restored(
    capsys: pytest.CaptureFixture[str], dead_run: Path
) -> None:
    repo = dead_run
    fail_one_pass(repo, "p3", T0 + 1200)
    health = json.loads((ops(repo) / "health.json").read_bytes())
    # the fixture is what it claims: a presumed-dead, stale loop, judged by a failed pass
    assert health["posture"]["kind"] == "presumed_dead"
    assert health["transport"]["ingestStatus"] == "failed"
    assert "control_ambiguous" in health["reasonCodes"]
    state = json.loads((ops(repo) / "state.json").read_bytes())
    assert state["projection"]["active"] is True
    assert state["tuning"]["telemetrySummary"]["observed"]["control"]["ambiguousCount"] == 1

    written = {rel: (ops(repo) / rel).read_bytes() for rel in PROJECTIONS}
    assert {str(p.relative_to(ops(repo))) for p in ops(repo).rglob("*.json")} == set(PROJECTIONS)
    code, entries = rebuild_cli(capsys, repo)
    assert code == 0
    assert {rel: entries[rel]["status"] for rel in PROJECTIONS} == dict.fromkeys(
        PROJECTIONS, "match"
    )
    for rel in PROJECTIONS:
        (ops(repo) / rel).unlink()
    code, entries = rebuild_cli(capsys, repo, "--write")
    assert {rel: entries[rel]["status"] for rel in PROJECTIONS} == dict.fromkeys(
        PROJECTIONS, "restored"
    )
    for rel in PROJECTIONS:
        assert (ops(repo) / rel).read_bytes() == written[rel], rel
    assert code == 0
    # and the next pass continues from the restored projections as from the written ones
    assert run(repo, "p4", T0 + 1800)
    code, entries = rebuild_cli(capsys, repo)
    assert code == 0 and entries["state.json"]["status"] == "match"


def test_after_a_successful_last_pass_too(
    capsys: pytest.CaptureFixture[str], dead_run: Path
) -> None:
    repo = dead_run
    written = {rel: (ops(repo) / rel).read_bytes() for rel in PROJECTIONS}
    for rel in ("health.json", "state.json", "heartbeat.json"):
        (ops(repo) / rel).unlink()
    code, entries = rebuild_cli(capsys, repo, "--write")
    assert code == 0
    for rel in ("health.json", "state.json", "heartbeat.json"):
        assert entries[rel]["status"] == "restored", entries[rel]
        assert (ops(repo) / rel).read_bytes() == written[rel], rel


def test_a_rewritten_log_is_said_not_guessed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The lifecycle state embeds the last event: if events.jsonl no longer holds it as the
    pass read it, state.json cannot be re-derived (missing -> exit 1 once deleted)."""
    repo = runtime_tree(tmp_path / "repo", "died", start=START, iterations=2).resolve()
    assert run(repo, "p1", T0)  # the last successful pass ingested: its last event counts
    events = loop_dir(repo) / "events.jsonl"
    lines = events.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["role"] = "someone-else"
    lines[-1] = (json.dumps(last) + "\n").encode()
    events.write_bytes(b"".join(lines))
    (ops(repo) / "state.json").unlink()
    code, entries = rebuild_cli(capsys, repo, "--write")
    assert entries["state.json"]["status"] == "missing"
    assert "events.jsonl no longer holds line" in entries["state.json"]["reason"]
    assert not (ops(repo) / "state.json").exists()
    assert code == 1


def test_project_state_is_the_newer_writer_not_a_difference(
    capsys: pytest.CaptureFixture[str], dead_run: Path
) -> None:
    repo = dead_run
    assert main(["project-state", "--repo", str(repo), "--loop", LOOP]) == 0
    capsys.readouterr()
    code, entries = rebuild_cli(capsys, repo)
    assert code == 0
    assert entries["state.json"]["status"] == "not_rebuildable"
    assert "project-state" in entries["state.json"]["reason"]
    assert entries["health.json"]["status"] == "match"
    # a failed pass then keeps project-state's state (plus health): neither can be
    # re-derived now, and rebuild says so without claiming a difference
    fail_one_pass(repo, "p3", T0 + 1200)
    code, entries = rebuild_cli(capsys, repo)
    assert code == 0
    for rel in ("health.json", "state.json"):
        assert entries[rel]["status"] == "not_rebuildable", entries[rel]
        assert "project-state" in entries[rel]["reason"]
    # the next successful pass folds it: everything is re-derivable again
    assert run(repo, "p4", T0 + 1800)
    code, entries = rebuild_cli(capsys, repo)
    assert code == 0
    assert entries["state.json"]["status"] == "match"
    assert entries["health.json"]["status"] == "match"


# --- the shared reducer ---------------------------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8)
_json = st.recursive(
    _json_leaf | st.sampled_from(["true", "false", "1.5"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_stamp = st.integers(0, 2 * 10**9).map(format_ts)
_threshold = st.integers(0, 10**5)
_thresholds = st.builds(
    Thresholds,
    profile=st.none() | st.sampled_from(["balanced", "strict", "relaxed"]),
    degraded_ingest_lag_seconds=_threshold,
    critical_ingest_lag_seconds=_threshold,
    degraded_heartbeat_lag_seconds=_threshold,
    critical_heartbeat_lag_seconds=_threshold,
    degraded_transport_failure_streak=st.integers(0, 9),
    critical_transport_failure_streak=st.integers(0, 9),
)
_snapshot = st.builds(
    SnapshotView,
    repo_path=st.text(max_size=8),
    loop_id=st.just(LOOP),
    run_id=st.text(max_size=8),
    iteration=st.integers(0, 99) | st.floats(0, 99, allow_nan=False),
    status=st.sampled_from(["running", "complete", "blocked", "unknown"]),
    has_pending_approval=st.booleans(),
    completion_ok=st.booleans(),
    active=_json,
    gates=_json,
    stuck=_json,
    last_event_name=st.none() | st.sampled_from(["role_start", "loop_complete", "approval_wait"]),
    last_event_at=st.none() | _stamp | st.just("not a time"),
    event_line_count=st.integers(0, 10**6),
)
_inputs = st.builds(
    PassInputs,
    thresholds=_thresholds,
    last_control_status=st.none() | st.sampled_from(["ambiguous", "failed_command", "confirmed"]),
    alert_config_error=st.none() | st.text(min_size=1, max_size=10),
    previous=st.none() | st.builds(PreviousState, _json, _json, st.none() | _stamp),
    snapshot=st.none() | _snapshot,
    runtime=st.none()
    | st.fixed_dictionaries(
        {"activeRunFile": st.sampled_from(["present", "missing"])},
        optional={"approvalStatus": st.just("pending"), "approvalRequestedAt": _stamp},
    ),
    last_event=st.none()
    | st.builds(
        lambda line, sha: {"line": line, "sha256": sha}, st.integers(1, 10**6), st.text(max_size=4)
    ),
    control=st.none()
    | st.builds(ControlCounts, st.integers(1, 500), st.integers(0, 9), st.integers(0, 9)),
)
_artifact = st.dictionaries(
    st.sampled_from(
        ["lastHeartbeatAt", "heartbeatLagSeconds", "status", "driftActive", "failureStreak"]
    ),
    _json | _stamp,
    max_size=4,
)


def _projections(inputs: PassInputs, now: int, ok: bool, others: tuple[Any, ...]) -> str:
    hb, seq, th = others
    state = (
        pass_lifecycle(inputs, last_event_envelope=None, now=now, repo_path="/repo") if ok else {}
    )
    health = pass_health(
        inputs,
        now=now,
        trace_id="t",
        transport="local",
        failure_code=None if ok else "snapshot_unavailable",
        ok=ok,
        state=state,
        heartbeat_state=hb,
        sequence_state=seq,
        transport_health=th,
    )
    return dumps_compact([state, health])


@settings(max_examples=150, deadline=None)
@given(
    inputs=_inputs, now=st.integers(0, 2 * 10**9), others=st.tuples(_artifact, _artifact, _artifact)
)
def test_property_live_pass_and_rebuild_agree(
    inputs: PassInputs, now: int, others: tuple[Any, ...]
) -> None:
    """What a pass computes from its inputs value equals what rebuild computes from the
    recorded row (the value through its JSON text and back), and is deterministic."""
    recorded = json.loads(dumps_compact(inputs.to_json()))
    parsed = PassInputs.from_json(recorded)
    assert dumps_compact(parsed.to_json()) == dumps_compact(inputs.to_json())
    ok = inputs.snapshot is not None
    if not ok:
        # a failed pass records no snapshot block at all
        assert "snapshot" not in recorded and "lastEvent" not in recorded
    live = _projections(inputs, now, ok, others)
    assert live == _projections(inputs, now, ok, others)
    assert live == _projections(parsed, now, ok, others)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"thresholds": {}},
        {"thresholds": Thresholds().to_json(), "lastControlStatus": 1},
    ],
)
def test_unusable_inputs_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        PassInputs.from_json(bad)


def test_rebuild_library_reports_the_reason_of_rows_without_inputs(dead_run: Path) -> None:
    path = ops(dead_run) / "telemetry" / "reconcile.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[-1]["inputs"]["thresholds"] = {"profile": 3}
    path.write_text("".join(dumps_compact(r) + "\n" for r in rows), encoding="utf-8")
    checks = {c.file.name: c for c in rebuild(LoopPaths.for_loop(dead_run, LOOP)).checks}
    assert checks["health.json"].status == "not_rebuildable"
    assert checks["health.json"].reason is not None
    assert "unusable inputs" in checks["health.json"].reason


def test_a_failed_pass_without_a_state_file_is_judged_without_one(
    capsys: pytest.CaptureFixture[str], dead_run: Path
) -> None:
    """state.json deleted, then a failed pass: that pass judged health with no state (and
    wrote no state.json). Health is re-derived; the lost state.json is said to be lost."""
    repo = dead_run
    (ops(repo) / "state.json").unlink()
    fail_one_pass(repo, "p3", T0 + 1200)
    assert not (ops(repo) / "state.json").exists()
    written = (ops(repo) / "health.json").read_bytes()
    (ops(repo) / "health.json").unlink()
    code, entries = rebuild_cli(capsys, repo, "--write")
    assert entries["health.json"]["status"] == "restored"
    assert (ops(repo) / "health.json").read_bytes() == written
    assert entries["state.json"]["status"] == "missing"
    assert "found no state.json" in entries["state.json"]["reason"]
    assert code == 1


# --- end to end: any history of passes ------------------------------------------------------

_OPS = st.sampled_from(
    [
        "events",
        "terminal",
        "heartbeat",
        "heartbeat_invalid",
        "intent",
        "control",
        "pass",
        "pass",
        "fail",
        "project_state",
    ]
)


def _apply(repo: Path, op: str, i: int, at: int) -> None:
    from ops_manager.cli.project_state import project_state
    from tests.runtime_fixtures import append_events, event

    stamp = format_ts(at - 5)
    if op == "events":
        append_events(repo, LOOP, [event("role_start", stamp, role="tester", run_id=START)])
    elif op == "terminal":
        append_events(repo, LOOP, [event("loop_complete", stamp, run_id=START)])
    elif op == "heartbeat":
        write_pretty(loop_dir(repo) / "heartbeat.v1.json", runtime_heartbeat(stamp))
    elif op == "heartbeat_invalid":
        write_pretty(loop_dir(repo) / "heartbeat.v1.json", runtime_heartbeat("not a time"))
    elif op == "intent":
        with open(ops(repo) / "intents.jsonl", "a", encoding="utf-8") as handle:
            status = ["ambiguous", "confirmed", "failed_command"][i % 3]
            handle.write(json.dumps({"intent": "cancel", "status": status}) + "\n")
    elif op == "control":
        (ops(repo) / "telemetry").mkdir(parents=True, exist_ok=True)
        with open(ops(repo) / "telemetry" / "control.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"status": "ambiguous"}) + "\n" if i % 2 else "{oops\n")
    elif op == "pass":
        assert run(repo, f"p{i}", at)
    elif op == "fail":
        fail_one_pass(repo, f"p{i}", at)
    else:
        project_state(
            LoopPaths.for_loop(repo, LOOP),
            now=at,
            snapshot_file=None,
            events_file=None,
            state_file=LoopPaths.for_loop(repo, LOOP).state_file,
        )


@settings(max_examples=40, deadline=None)
@given(history=st.lists(_OPS, min_size=1, max_size=7))
def test_property_any_history_rebuilds_or_says_why(history: list[str]) -> None:
    """After any history of passes (successful, failed, nothing new, heartbeats valid or
    not, intents, control rows, project-state): ``rebuild`` of the intact projections never
    claims a difference; after deleting every projection, ``--write`` restores each one
    byte-identically, or says it cannot and fails. Without project-state in the history,
    every projection comes back."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        repo = runtime_tree(Path(tmp) / "repo", "died", start=START, iterations=1).resolve()
        ops(repo).mkdir(parents=True)
        assert run(repo, "p0", T0)
        for i, op in enumerate(history, 1):
            _apply(repo, op, i, T0 + 60 * i)
        paths = LoopPaths.for_loop(repo, LOOP)
        intact = rebuild(paths)
        assert intact.ok, [c.to_json() for c in intact.checks if c.status != "match"]
        files = [p for p in ops(repo).rglob("*.json") if p.is_file()]
        written = {p: p.read_bytes() for p in files}
        for p in files:
            p.unlink()
        report = rebuild(paths, write=True)
        statuses = {c.file: c.status for c in report.checks}
        lost = [p for p in files if not p.exists() or p.read_bytes() != written[p]]
        if "project_state" in history and paths.state_file in lost and paths.state_file.exists():
            # documented (docs/commands/rebuild.md): a deleted project-state output cannot be
            # told from a lost reconcile projection; --write restores the last pass's
            assert statuses[paths.state_file] == "restored"
            lost.remove(paths.state_file)
        for p in lost:
            assert not p.exists(), f"{p.name} restored with other bytes"
            assert statuses[p] == "missing", (p.name, statuses[p])
        assert report.ok == (not lost)
        if "project_state" not in history:
            assert lost == [], [p.name for p in lost]


def test_tuning_is_refolded_from_the_window_the_pass_saw(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A summary window (3) shorter than the history, with a blank line in it (the summary
    counts physical lines): state.tuning comes back byte for byte."""
    repo = runtime_tree(tmp_path / "repo", "died", start=START, iterations=1).resolve()
    rows = ops(repo) / "telemetry" / "reconcile.jsonl"
    for i in range(6):
        if i == 5:
            # ... row 4, a failed pass, a blank line, row 5: the window of pass 5
            fail_one_pass(repo, "w-fail", T0 + 270)
            with open(rows, "a", encoding="utf-8") as handle:
                handle.write("\n")
        s = ReconcileSettings(repo=repo, loop_id=LOOP, trace_id=f"w{i}", drift_summary_window=3)
        at = T0 + 60 * i
        assert reconcile(s, clock=lambda at=at: at).ok
    state = json.loads((ops(repo) / "state.json").read_bytes())
    observed = state["tuning"]["telemetrySummary"]["observed"]
    assert observed["reconcileAttempts"] == 2  # 3 physical lines: the blank one counts
    assert observed["reconcileFailedCount"] == 1
    written = (ops(repo) / "state.json").read_bytes()
    (ops(repo) / "state.json").unlink()
    code, entries = rebuild_cli(capsys, repo, "--write")
    assert entries["state.json"]["status"] == "restored"
    assert (ops(repo) / "state.json").read_bytes() == written
    assert code == 0
