"""Issue 12 point 4: finished runs are left in peace, approval waits are not stale, and a
run that died silently is named as presumed dead.

Every tree is what a real ``superloop run`` leaves behind (tests/runtime_fixtures.py
``runtime_tree``; runtime-observed.md): pretty-printed ``state.json`` / ``approval.json``,
string booleans in event data, the max-iterations ``loop_stop`` at ``max + 1``,
``role_timeout`` as the last line, no ``run-summary.json`` when the first iteration stops or
dies, ``active-run.json`` gone after exit, and timestamps hours old. Thresholds are the
default (balanced: ingest 300 / 900 s, heartbeat 120 / 300 s), so any of these trees would
be ``critical`` if silence counted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.engine.alert_config import PACKAGED_ALERT_SINKS_FILE
from ops_manager.engine.reconcile import AlertOptions, ReconcileSettings, reconcile
from ops_manager.reducers.posture import run_posture
from ops_manager.testing import LoopbackReceiver
from tests.runtime_fixtures import (
    append_events,
    event,
    runtime_heartbeat,
    runtime_tree,
    write_pretty,
)
from tests.service_process import ServiceProcess

LOOP = "demo-loop"
HOURS = 3600
FINISHED_OUTCOMES = [
    ("complete", 2, "loop_complete"),
    ("max_iterations", 2, "loop_stop"),
    ("no_progress", 2, "loop_stop"),
    ("no_progress", 1, "loop_stop"),
    ("stuck", 2, "loop_stop"),
    ("role_timeout", 2, "role_timeout"),
    ("role_timeout", 1, "role_timeout"),
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def hours_ago(n: float) -> str:
    return format_ts(utc_now_epoch() - int(n * HOURS))


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def escalations(repo: Path) -> list[dict[str, Any]]:
    path = ops(repo) / "escalations.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tree(tmp_path: Path, outcome: str, iterations: int = 2, start_hours: float = 5) -> Path:
    repo = runtime_tree(
        tmp_path / "r", outcome, start=hours_ago(start_hours), iterations=iterations
    )
    events = (repo / ".superloop" / "loops" / LOOP / "events.jsonl").read_text().splitlines()
    last = json.loads(events[-1])
    # the runtime's heartbeat stopped when the run did
    write_pretty(
        repo / ".superloop" / "loops" / LOOP / "heartbeat.v1.json",
        runtime_heartbeat(last["timestamp"]),
    )
    return repo.resolve()


def rec(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["reconcile", "--repo", str(repo), "--loop", LOOP, *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def status(capsys: pytest.CaptureFixture[str], repo: Path) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", "--repo", str(repo), "--loop", LOOP]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


# --- the fixtures are what the runtime writes -----------------------------------------------


def test_fixture_trees_look_like_the_runtime(tmp_path: Path) -> None:
    repo = tree(tmp_path, "max_iterations")
    state_text = (repo / ".superloop" / "state.json").read_text()
    assert state_text.startswith("{\n  ")  # pretty-printed
    assert json.loads(state_text)["active"] is False
    assert not (repo / ".superloop" / "active-run.json").exists()
    lines = (repo / ".superloop" / "loops" / LOOP / "events.jsonl").read_text().splitlines()
    stop = json.loads(lines[-1])
    assert stop["event"] == "loop_stop" and stop["iteration"] == 3  # max (2) + 1
    assert json.loads(lines[0])["data"]["prerequisites"]["enabled"] == "false"
    one = tree(tmp_path / "one", "role_timeout", iterations=1)
    assert not (one / ".superloop" / "loops" / LOOP / "run-summary.json").exists()
    last = json.loads(
        (one / ".superloop" / "loops" / LOOP / "events.jsonl").read_text().splitlines()[-1]
    )
    assert last["event"] == "role_timeout"


# --- finished runs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "iterations", "last_event"), FINISHED_OUTCOMES)
def test_finished_run_is_not_stale_and_not_escalated(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    outcome: str,
    iterations: int,
    last_event: str,
) -> None:
    repo = tree(tmp_path, outcome, iterations)
    for trace in ("t1", "t2"):
        code, out, err = rec(capsys, repo, "--trace-id", trace)
        assert code == 0, err
        health = out["health"]
        assert health["status"] == "healthy", health["reasons"]
        assert "ingest_stale" not in health["reasonCodes"]
        assert "runtime_heartbeat_stale" not in health["reasonCodes"]
        # the lags are still measured and shown; they just do not mean anything
        assert health["metrics"]["ingestLagSeconds"] > 2 * HOURS
        assert health["posture"]["kind"] == "finished"
        assert health["posture"]["reason"] == last_event
    assert not [e for e in escalations(repo) if e["category"].startswith("health_")]
    lifecycle = status(capsys, repo)["lifecycle"]
    assert lifecycle["posture"] == "finished"
    assert lifecycle["finished"]["reason"] == last_event
    assert (
        lifecycle["finished"]["at"]
        == read_json(ops(repo) / "state.json")["projection"]["lastEventAt"]
    )
    assert "presumedDead" not in lifecycle


def test_open_stale_episode_resolves_when_the_run_is_seen_finished(tmp_path: Path) -> None:
    """A run quiet for an hour mid-role (process still registered) pages; it then finishes;
    hours later the manager sees the finished run: health clears and the page resolves."""
    now = utc_now_epoch()
    repo = runtime_tree(tmp_path / "r", "died", start=format_ts(now - 5 * HOURS), iterations=1)
    repo = repo.resolve()
    # the run process is still registered: it is live, just silent for an hour
    write_pretty(
        repo / ".superloop" / "active-run.json",
        {
            "repo": str(repo),
            "pid": 4242,
            "pgid": 4242,
            "loop_id": LOOP,
            "iteration": 1,
            "stage": "loop_start",
            "updated_at": format_ts(now - 5 * HOURS),
        },
    )
    config = tmp_path / "sinks.json"
    with LoopbackReceiver(name="webhook") as hook:
        config.write_text(
            json.dumps(
                {
                    "schemaVersion": "v1",
                    "defaultMinSeverity": "warning",
                    "sinks": {
                        "hook": {
                            "enabled": True,
                            "type": "webhook",
                            "urlEnv": "FINISHED_RUNS_HOOK_URL",
                            "timeoutSeconds": 5,
                        }
                    },
                    "routing": {
                        "defaultSinks": ["hook"],
                        "categorySeverity": {"health_critical": "critical"},
                        "routes": [],
                    },
                }
            )
        )
        os.environ["FINISHED_RUNS_HOOK_URL"] = hook.url_for("/hook")
        settings = ReconcileSettings(
            repo=repo,
            loop_id=LOOP,
            trace_id="live-quiet",
            alerts=AlertOptions(config_file=config),
        )
        # pass 1, four hours ago: one hour of silence from a live run
        first = reconcile(settings, clock=lambda: now - 4 * HOURS)
        assert first.output["health"]["status"] == "critical"
        assert "ingest_stale" in first.output["health"]["reasonCodes"]
        triggers = [r.json() for r in hook.accepted()]
        assert [t["escalation"]["category"] for t in triggers] == ["health_critical"]

        # the run then finished (3h50m ago): the rest of the iteration and loop_complete
        end = now - 4 * HOURS + 600
        tail = [
            event("role_end", format_ts(end - 30), run_id=hours_ago(5), role="implementer"),
            event("loop_complete", format_ts(end), run_id=hours_ago(5), data={"iteration": 1}),
        ]
        append_events(repo, LOOP, tail)
        (repo / ".superloop" / "active-run.json").unlink()
        state = read_json(repo / ".superloop" / "state.json")
        write_pretty(repo / ".superloop" / "state.json", {**state, "active": False})

        # pass 2, now: the last event is almost four hours old, and that is fine
        second = reconcile(attrs_evolve(settings, trace_id="seen-finished"), clock=lambda: now)
        health = second.output["health"]
        assert health["status"] == "healthy", health["reasons"]
        assert health["posture"] == {
            "kind": "finished",
            "reason": "loop_complete",
            "since": format_ts(end),
        }
        assert [e["category"] for e in escalations(repo)] == ["health_critical"]
        bodies = [r.json() for r in hook.accepted()]
        assert len(bodies) == 2
        resolve = bodies[1]
        assert b'"resolve"' in hook.accepted()[1].body
        assert resolve["event"]["dedupKey"] == triggers[0]["event"]["dedupKey"]
    episodes = read_json(ops(repo) / "alert-dispatch-state.json").get("episodes") or {}
    assert "health" not in episodes


def attrs_evolve(settings: ReconcileSettings, **changes: Any) -> ReconcileSettings:
    import attrs

    return attrs.evolve(settings, **changes)


# --- approval waits --------------------------------------------------------------------------


def test_awaiting_approval_is_never_stale_and_shows_since_when(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = tree(tmp_path, "approval_wait", iterations=1, start_hours=6)
    approval = read_json(repo / ".superloop" / "loops" / LOOP / "approval.json")
    assert approval["status"] == "pending"
    for trace in ("a1", "a2"):
        code, out, err = rec(capsys, repo, "--trace-id", trace)
        assert code == 0, err
        health = out["health"]
        assert health["status"] == "healthy", health["reasons"]
        assert "ingest_stale" not in health["reasonCodes"]
        assert health["posture"] == {
            "kind": "awaiting_approval",
            "reason": "approval_pending",
            "since": approval["requested_at"],
        }
    lifecycle = status(capsys, repo)["lifecycle"]
    assert lifecycle["state"] == "awaiting_approval"
    assert lifecycle["posture"] == "awaiting_approval"
    assert lifecycle["awaitingApprovalSince"] == approval["requested_at"]
    # one awaiting_approval row when the wait starts (not one per pass), no health page
    rows = escalations(repo)
    assert [e["category"] for e in rows] == ["awaiting_approval"]
    assert rows[0]["awaitingApprovalSince"] == approval["requested_at"]
    assert rows[0]["traceId"] == "a1"


def test_awaiting_approval_category_is_off_in_the_shipped_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = json.loads(PACKAGED_ALERT_SINKS_FILE.read_text())
    assert cfg["routing"]["categorySeverity"]["awaiting_approval"] == "info"
    routes = [r for r in cfg["routing"]["routes"] if r["category"] == "awaiting_approval"]
    assert routes and routes[0]["enabled"] is False
    capsys.readouterr()
    code = main(["alert-sink-config", "--category", "awaiting_approval", "--no-env-check"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    # the disabled route does not match (BUG-1), and info is below the default minimum
    assert "route" not in out
    assert (out["eventSeverity"], out["minSeverity"]) == ("info", "warning")
    assert out["shouldDispatch"] is False
    assert out["dispatchableSinks"] == []


def test_awaiting_approval_can_be_routed_when_enabled(tmp_path: Path) -> None:
    repo = tree(tmp_path, "approval_wait", iterations=1, start_hours=6)
    config = tmp_path / "sinks.json"
    with LoopbackReceiver(name="webhook") as hook:
        config.write_text(
            json.dumps(
                {
                    "schemaVersion": "v1",
                    "defaultMinSeverity": "warning",
                    "sinks": {
                        "hook": {
                            "enabled": True,
                            "type": "webhook",
                            "urlEnv": "FINISHED_RUNS_HOOK_URL",
                            "timeoutSeconds": 5,
                        }
                    },
                    "routing": {
                        "defaultSinks": ["hook"],
                        "categorySeverity": {"awaiting_approval": "info"},
                        "routes": [
                            {
                                "category": "awaiting_approval",
                                "sinks": ["hook"],
                                "minSeverity": "info",
                                "enabled": True,
                            }
                        ],
                    },
                }
            )
        )
        os.environ["FINISHED_RUNS_HOOK_URL"] = hook.url_for("/hook")
        result = reconcile(
            ReconcileSettings(
                repo=repo, loop_id=LOOP, trace_id="notify", alerts=AlertOptions(config_file=config)
            )
        )
        assert result.ok
        bodies = [r.json() for r in hook.accepted()]
        assert [b["escalation"]["category"] for b in bodies] == ["awaiting_approval"]


# --- a run that died silently ----------------------------------------------------------------


def test_silently_dead_run_stays_flagged_and_is_named_presumed_dead(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = tree(tmp_path, "died", iterations=1, start_hours=4)
    state = read_json(repo / ".superloop" / "state.json")
    assert state["active"] is True
    assert not (repo / ".superloop" / "active-run.json").exists()
    assert not (repo / ".superloop" / "loops" / LOOP / "run-summary.json").exists()
    code, out, err = rec(capsys, repo, "--trace-id", "dead")
    assert code == 0, err
    health = out["health"]
    assert health["status"] == "critical"
    assert {"ingest_stale", "runtime_heartbeat_stale"} <= set(health["reasonCodes"])
    assert [e["category"] for e in escalations(repo)] == ["health_critical"]
    lifecycle = status(capsys, repo)["lifecycle"]
    assert lifecycle["state"] == "running"  # what the lifecycle alone says, forever
    assert lifecycle["posture"] == "presumed_dead"
    dead = lifecycle["presumedDead"]
    assert dead["reason"] == "no_terminal_event_and_no_active_run"
    assert dead["lastEventName"] == "role_start"
    assert dead["lastEventAt"] == out["projection"]["lastEventAt"]
    assert dead["stateActive"] is True
    assert dead["activeRunFile"] == "missing"
    assert dead["ingestLagSeconds"] >= 3 * HOURS


def test_live_quiet_run_with_its_process_registered_is_stale_not_dead(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = tree(tmp_path, "died", iterations=1, start_hours=4)
    write_pretty(
        repo / ".superloop" / "active-run.json",
        {
            "repo": str(repo),
            "pid": 4242,
            "pgid": 4242,
            "loop_id": LOOP,
            "iteration": 1,
            "stage": "loop_start",
            "updated_at": hours_ago(4),
        },
    )
    code, out, _ = rec(capsys, repo, "--trace-id", "quiet")
    assert code == 0
    assert out["health"]["status"] == "critical"
    assert "posture" not in out["health"]
    lifecycle = status(capsys, repo)["lifecycle"]
    assert "posture" not in lifecycle and "presumedDead" not in lifecycle


# --- the same over sprite_service ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["finished", "dead", "approval"])
def test_postures_match_over_sprite_service(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    outcome, iterations, hours = {
        "finished": ("max_iterations", 2, 5.0),
        "dead": ("died", 1, 4.0),
        "approval": ("approval_wait", 1, 6.0),
    }[kind]
    local = tree(tmp_path / "local", outcome, iterations, hours)
    # one tree copied, not two built: the runtime stub stamps its events at build time, and two
    # builds a clock tick apart give the two transports different `since` times to agree on
    remote = tmp_path / "remote" / "r"
    shutil.copytree(local, remote, symlinks=True)
    remote = remote.resolve()
    token = secrets.token_hex(8)
    code, out_local, _ = rec(capsys, local, "--trace-id", "p")
    assert code == 0
    with ServiceProcess(remote, token=token).running() as service:
        code, out_remote, err = rec(
            capsys,
            remote,
            "--trace-id",
            "p",
            "--transport",
            "sprite_service",
            "--service-base-url",
            service.url,
            "--service-token",
            token,
        )
    assert code == 0, err
    for out in (out_local, out_remote):
        assert out["evidence"]["runtime"]["activeRunFile"] == "missing"
    hl, hr = out_local["health"], out_remote["health"]
    assert (hl["status"], hl["reasonCodes"]) == (hr["status"], hr["reasonCodes"])
    pl, pr = dict(hl.get("posture", {})), dict(hr.get("posture", {}))
    for p in (pl, pr):
        p.get("presumedDead", {}).pop("ingestLagSeconds", None)
    assert pl == pr
    assert run_posture(out_remote).kind == run_posture(out_local).kind


# --- the reducers stay pure and total --------------------------------------------------------

_names = st.sampled_from(
    [
        "loop_complete",
        "loop_stop",
        "role_timeout",
        "role_start",
        "approval_wait",
        "iteration_start",
        "",
    ]
)
_scalars = st.none() | st.booleans() | st.sampled_from(["true", "false", "pending", 3, ""])
_states = st.fixed_dictionaries(
    {},
    optional={
        "projection": st.fixed_dictionaries(
            {},
            optional={
                "lastEventName": _names | _scalars,
                "lastEventAt": st.sampled_from(["2026-02-22T10:00:00Z", "nope"]) | _scalars,
                "active": _scalars,
                "hasPendingApproval": _scalars,
            },
        )
        | _scalars,
        "evidence": st.fixed_dictionaries(
            {},
            optional={
                "runtime": st.fixed_dictionaries(
                    {},
                    optional={
                        "activeRunFile": st.sampled_from(["present", "missing"]) | _scalars,
                        "approvalStatus": st.sampled_from(["pending", "approved"]) | _scalars,
                        "approvalRequestedAt": st.sampled_from(["2026-02-22T09:00:00Z"]) | _scalars,
                    },
                )
                | _scalars
            },
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(_states, st.integers(0, 10**6))
def test_property_silence_never_pages_a_finished_run_or_an_approval_wait(
    state: dict[str, Any], lag_base: int
) -> None:
    from ops_manager.reducers.health import HealthInputs, compute_health
    from ops_manager.reducers.thresholds import Thresholds

    inp = HealthInputs(
        now=1_900_000_000 + lag_base,
        trace_id=None,
        transport="local",
        ingest_status="success",
        failure_code=None,
        thresholds=Thresholds(profile="balanced"),
        state=state,
        heartbeat_state={"lastHeartbeatAt": "2026-02-22T10:00:00Z"},
        sequence_state={},
        transport_health={},
        last_control_status=None,
    )
    a = compute_health(inp)
    assert a == compute_health(inp)  # deterministic, no clock of its own
    posture = run_posture(state)
    if posture.kind in ("finished", "awaiting_approval"):
        assert "ingest_stale" not in a["reasonCodes"]
        assert "runtime_heartbeat_stale" not in a["reasonCodes"]
        assert a["posture"]["kind"] == posture.kind
    else:
        assert a.get("posture", {}).get("kind") in (None, "presumed_dead")
        # a live run's heartbeat silence is always judged
        assert "runtime_heartbeat_stale" in a["reasonCodes"]
