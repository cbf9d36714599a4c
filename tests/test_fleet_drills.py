"""Incident drills, end to end on real temp fleets (``docs/runbook-fleet.md``; issue 7 Proof).

Every drill builds a repo with several loops' runtime artifacts, runs the real commands in
process — ``fleet-reconcile`` -> ``fleet-policy`` -> ``fleet-handoff`` (-> ``promotion-gates``)
— through :func:`ops_manager.cli.main`, with the stub Superloop CLI as the runtime and, for
``sprite_service`` loops, a REAL ``ops-manager sprite-service`` process on 127.0.0.1 (always
stopped). Each drill ends in the state the runbook promises:

1. kill switch — nothing autonomous executes (also when the switch is flipped after the
   policy ran), the manual path still works;
2. sprite outage — the dead sprite's intent fails (``control_failed_command``) and is
   retry-guarded, the other loops (local and a live sprite) are executed;
3. ambiguous-outcome retry guard — holds over autonomous and plan runs until an operator
   confirms (DECISIONS 6.8); the confirmation executes with a fresh deterministic key, and
   nothing ever executes twice;
4. auto-pause on a failure spike — after a run of failed autonomous actions the policy pauses
   itself (``autonomous_autopause_failure_spike``), the next autonomous run executes nothing;
5. governance review expiry — once ``reviewBy`` passes the registry is rejected and every
   fleet command fails closed (autonomy off) until governance is renewed; deadlines are
   relative to now (DECISIONS 6.17).

Confirmation uses ``--timeout-seconds 0``: one observation, so a runtime that does not
change answers ``ambiguous`` immediately. The whole module runs in a few seconds.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from ops_manager._timefmt import format_ts, parse_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.store import FleetPaths, LoopPaths
from tests.fleet_fixtures import (
    DAY,
    TOKEN_ENV,
    governance,
    loop_entry,
    make_fleet_repo,
    registry_doc,
    sprite_loop,
    write_registry,
)
from tests.service_process import ServiceProcess, stub_calls, stub_superloop_env

pytest.importorskip("ops_manager.engine.fleet_reconcile")
pytest.importorskip("ops_manager.engine.fleet_policy")

TOKEN = "drill-token"
CRITICAL_AGE = 900  # heartbeat age (s) that makes a loop's health critical


# --- the drill harness ----------------------------------------------------------------------


@attrs.define
class Drill:
    """One temp fleet plus the commands, as an operator would run them."""

    repo: Path
    log: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def run(self, command: str, *args: str) -> tuple[int, Any, str]:
        """``ops-manager <command> --repo R args...`` -> (exit code, stdout JSON, stderr)."""
        self.capsys.readouterr()
        code = main([command, "--repo", str(self.repo), *args])
        out, err = self.capsys.readouterr()
        return code, (json.loads(out) if out.strip() else None), err

    def ok(self, command: str, *args: str) -> Any:
        code, out, err = self.run(command, *args)
        assert code == 0, f"{command} {args} -> {code}: {err}"
        return out

    def cycle(self, *reconcile_args: str) -> dict[str, Any]:
        """reconcile + policy (dedupe from the registry); returns the policy state."""
        self.ok(
            "fleet-reconcile",
            "--quiet",
            "--deterministic-order",
            "--max-parallel",
            "2",
            *reconcile_args,
        )
        return dict(self.ok("fleet-policy"))

    def handoff(self, *args: str) -> dict[str, Any]:
        return dict(
            self.ok("fleet-handoff", "--timeout-seconds", "0", "--interval-seconds", "0", *args)
        )

    def calls(self) -> list[list[str]]:
        return stub_calls(self.log)

    def stub_mode(self, mode: str) -> None:
        self.monkeypatch.setenv("STUB_SUPERLOOP_MODE", mode)

    def control_rows(self, loop_id: str) -> list[dict[str, Any]]:
        path = LoopPaths.for_loop(self.repo, loop_id).control_telemetry_file
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def registry(self, loops: list[Any], **autonomous: Any) -> None:
        write_registry(self.repo, guarded_registry(loops, **autonomous))


def guarded_registry(
    loops: list[Any],
    *,
    allow: list[str] | None = None,
    kill_switch: bool = False,
    caps: int = 10,
    auto_pause: dict[str, Any] | None = None,
    gov: dict[str, Any] | None = None,
    pause_manual: bool = False,
) -> dict[str, Any]:
    """guarded_auto, dedupe 0, cooldown 0 (every cycle re-evaluates), governance from now."""
    rollout: dict[str, Any] = {"pause": {"manual": pause_manual}}
    if auto_pause is not None:
        rollout["autoPause"] = auto_pause
    return registry_doc(
        loops,
        fleet_id="fleet-drill",
        policy={
            "mode": "guarded_auto",
            "noiseControls": {"dedupeWindowSeconds": 0},
            "autonomous": {
                "allow": {
                    "categories": allow or ["reconcile_failed", "health_critical"],
                    "intents": ["cancel"],
                },
                "safety": {
                    "maxActionsPerRun": caps,
                    "maxActionsPerLoop": caps,
                    "cooldownSeconds": 0,
                    "killSwitch": kill_switch,
                },
                "governance": gov or governance(),
                "rollout": rollout,
            },
        },
    )


@pytest.fixture
def drill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Drill:
    log = tmp_path / "stub-calls.jsonl"
    for key, value in stub_superloop_env(tmp_path / "bin", log).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("USER", "ops-bot")
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    for name in ("OPS_MANAGER_TRACE_ID", "OPS_MANAGER_SERVICE_TOKEN", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    repo = (tmp_path / "repo").resolve()
    return Drill(repo=repo, log=log, capsys=capsys, monkeypatch=monkeypatch)


def intent(
    state: dict[str, Any], loop_id: str, category: str = "health_critical"
) -> dict[str, Any]:
    return next(i for i in state["intents"] if i["loopId"] == loop_id and i["category"] == category)


def candidate(policy: dict[str, Any], loop_id: str, category: str) -> dict[str, Any]:
    return next(
        c for c in policy["candidates"] if c["loopId"] == loop_id and c["category"] == category
    )


def dead_port_url() -> str:
    """A loopback URL nobody listens on (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- 1. kill switch ---------------------------------------------------------------------------


def test_drill_kill_switch(drill: Drill) -> None:
    make_fleet_repo(drill.repo, ["loop-red"], heartbeat_ages={"loop-red": CRITICAL_AGE})
    drill.registry(["loop-red"], allow=["health_critical"], kill_switch=True)

    policy = drill.cycle()
    red = candidate(policy, "loop-red", "health_critical")
    assert (policy["autoEligibleCount"], policy["manualOnlyCount"]) == (0, 1)
    assert "autonomous_kill_switch_enabled" in red["autonomous"]["reasons"]
    assert "fleet_auto_kill_switch_enabled" in policy["reasonCodes"]

    auto = drill.handoff("--autonomous-execute", "--by", "ops-bot")
    assert auto["execution"]["mode"] == "autonomous"
    assert auto["execution"]["requestedIntentCount"] == 0
    assert auto["summary"]["pendingConfirmationCount"] == 1
    assert "fleet_handoff_confirmation_pending" in auto["reasonCodes"]
    assert drill.calls() == []

    # the manual path still works
    intent_id = auto["intents"][0]["intentId"]
    manual = drill.handoff(
        "--execute", "--confirm", "--intent-id", intent_id, "--by", "oncall-operator"
    )
    assert manual["execution"]["mode"] == "manual"
    assert manual["execution"]["requestedIntentCount"] == 1
    assert manual["summary"]["executedCount"] == 1
    assert manual["summary"]["pendingConfirmationCount"] == 0
    assert intent(manual, "loop-red")["status"] == "executed"
    assert "fleet_handoff_executed" in manual["reasonCodes"]
    assert len(drill.calls()) == 1
    row = drill.control_rows("loop-red")[-1]
    assert row["traceId"] == manual["traceId"]
    assert row["idempotencyKey"] == manual["execution"]["results"][0]["idempotencyKey"]
    assert row["requestedBy"] == "oncall-operator"


def test_drill_kill_switch_flipped_after_policy(drill: Drill) -> None:
    """The switch is thrown between policy and handoff: the stale 'eligible' is not trusted."""
    make_fleet_repo(drill.repo, ["loop-red"], heartbeat_ages={"loop-red": CRITICAL_AGE})
    drill.registry(["loop-red"], allow=["health_critical"])
    policy = drill.cycle()
    assert policy["autoEligibleCount"] == 1
    drill.registry(["loop-red"], allow=["health_critical"], kill_switch=True)
    auto = drill.handoff("--autonomous-execute")
    assert auto["execution"]["requestedIntentCount"] == 0
    assert intent(auto, "loop-red")["autonomous"] == {
        "eligible": False,
        "manualOnly": True,
        "reasons": ["autonomous_kill_switch_enabled"],
    }
    assert drill.calls() == []


# --- 2. sprite outage -------------------------------------------------------------------------


def test_drill_sprite_service_outage(drill: Drill) -> None:
    loops = ["loop-local", "loop-sprite-down", "loop-sprite-up"]
    make_fleet_repo(
        drill.repo,
        loops,
        heartbeat_ages={loop: CRITICAL_AGE for loop in loops},
        registry=False,
    )
    service = ServiceProcess(
        drill.repo,
        token=TOKEN,
        env=stub_superloop_env(drill.log.parent / "bin", drill.log),
        args=["--confirm-timeout-seconds", "0", "--confirm-interval-seconds", "1", "--quiet"],
    )
    with service.running() as svc:
        registry = [
            loop_entry("loop-local"),
            sprite_loop("loop-sprite-up", svc.url, retry_attempts=1, retry_backoff_seconds=0),
            sprite_loop(
                "loop-sprite-down", dead_port_url(), retry_attempts=1, retry_backoff_seconds=0
            ),
        ]
        drill.registry(registry, allow=["health_critical"])
        policy = drill.cycle()
        state = json.loads(FleetPaths.for_repo(drill.repo).state_file.read_text())
        down_result = next(r for r in state["results"] if r["loopId"] == "loop-sprite-down")
        assert down_result["status"] == "failed"
        assert down_result["reasonCode"] == "transport_unreachable"
        # the outage loop's reconcile failure is manual-only (category not allowlisted);
        # its critical heartbeat candidate is not produced (no health seen through the outage)
        assert {c["candidateId"] for c in policy["candidates"] if c["autonomous"]["eligible"]} == {
            "loop-local:health_critical",
            "loop-sprite-up:health_critical",
        }

        auto = drill.handoff("--autonomous-execute")
        results = {r["loopId"]: r for r in auto["execution"]["results"]}
        assert set(results) == {"loop-local", "loop-sprite-up"}
        assert results["loop-sprite-up"]["status"] == "executed"
        assert results["loop-local"]["status"] == "executed"
        # the live sprite ran the control on its side and recorded our trace + key
        up_row = drill.control_rows("loop-sprite-up")[-1]
        assert up_row["traceId"] == auto["traceId"]
        assert up_row["idempotencyKey"] == results["loop-sprite-up"]["idempotencyKey"]

        # the operator now sends the outage loop's cancel by hand: it fails, others untouched
        down_id = intent(auto, "loop-sprite-down", "reconcile_failed")["intentId"]
        manual = drill.handoff("--execute", "--confirm", "--intent-id", down_id, "--by", "oncall")
    down = manual["execution"]["results"][0]
    assert (down["status"], down["reasonCode"]) == ("failed", "control_failed_command")
    assert intent(manual, "loop-sprite-down", "reconcile_failed")["status"] == "execution_failed"
    assert manual["execution"]["requestedIntentCount"] == 1
    assert "fleet_handoff_execution_failed" in manual["reasonCodes"]

    from ops_manager.reducers.fleet_handoff import (
        retry_guarded_intents,
        transport_gate_reason_counts,
    )

    assert transport_gate_reason_counts(manual) == {"control_failed_command": 1}
    assert retry_guarded_intents(manual) == {down_id: "autonomous_retry_guard_failed"}
    # runbook: the failed sprite intent stays manual-only until an operator confirms it
    plan = drill.handoff()
    assert (
        "autonomous_retry_guard_failed"
        in intent(plan, "loop-sprite-down", "reconcile_failed")["autonomous"]["reasons"]
    )
    assert "fleet_handoff_retry_guarded" in plan["reasonCodes"]


def test_drill_sprite_outage_autonomous_failure_is_isolated(drill: Drill) -> None:
    """An eligible intent on a dead sprite fails; the same run still executes the others."""
    loops = ["loop-a", "loop-dead"]
    make_fleet_repo(drill.repo, loops, heartbeat_ages={"loop-a": CRITICAL_AGE}, registry=False)
    drill.registry(
        [
            loop_entry("loop-a"),
            sprite_loop("loop-dead", dead_port_url(), retry_attempts=1, retry_backoff_seconds=0),
        ],
        allow=["reconcile_failed", "health_critical"],
    )
    drill.cycle()
    auto = drill.handoff("--autonomous-execute")
    results = {r["loopId"]: (r["status"], r["reasonCode"]) for r in auto["execution"]["results"]}
    assert results == {
        "loop-a": ("executed", "control_confirmed"),
        "loop-dead": ("failed", "control_failed_command"),
    }
    assert len(drill.calls()) == 1  # loop-a's cancel; the dead sprite never answered
    # the next autonomous run: the dead sprite's intent is retry-guarded (manual-only), and
    # loop-a's executed intent replays its key: nothing executes twice
    nxt = drill.handoff("--autonomous-execute")
    assert [r["loopId"] for r in nxt["execution"]["results"]] == ["loop-a"]
    assert (
        nxt["execution"]["results"][0]["idempotencyKey"]
        == (auto["execution"]["results"][0]["idempotencyKey"])
    )
    assert intent(nxt, "loop-dead", "reconcile_failed")["autonomous"]["reasons"] == [
        "autonomous_retry_guard_failed"
    ]
    assert len(drill.calls()) == 1


# --- 3. ambiguous-outcome retry guard -----------------------------------------------------


def test_drill_ambiguous_retry_guard(drill: Drill) -> None:
    make_fleet_repo(drill.repo, ["loop-red"], heartbeat_ages={"loop-red": CRITICAL_AGE})
    drill.registry(["loop-red"], allow=["health_critical"])
    drill.stub_mode("noop")  # the runtime accepts the cancel but nothing changes: ambiguous
    trace = ("--trace-id", "trace-drill-retry")  # one reconcile trace: one intent key

    drill.cycle(*trace)
    run1 = drill.handoff("--autonomous-execute")
    assert run1["execution"]["requestedIntentCount"] == 1
    assert run1["summary"]["ambiguousCount"] == 1
    assert "fleet_handoff_execution_ambiguous" in run1["reasonCodes"]
    assert len(drill.calls()) == 1
    key = run1["execution"]["results"][0]["idempotencyKey"]
    assert key == "fleet-handoff-trace-drill-retry-loop-red-health_critical-cancel"

    # the guard holds across a policy re-run, autonomous runs and a plan-only run
    for args in (("--autonomous-execute",), (), ("--autonomous-execute",)):
        drill.cycle(*trace)
        held = drill.handoff(*args)
        red = intent(held, "loop-red")
        assert red["status"] == "pending_operator_confirmation"
        assert red["autonomous"]["manualOnly"] is True
        assert "autonomous_retry_guard_ambiguous" in red["autonomous"]["reasons"]
        assert {"fleet_handoff_retry_guarded", "fleet_handoff_confirmation_pending"} <= set(
            held["reasonCodes"]
        )
        if args:
            assert held["execution"]["requestedIntentCount"] == 0
            assert held["summary"]["ambiguousCount"] == 0
    assert len(drill.calls()) == 1

    # an operator confirms: a new deterministic key, executed, the guard lifted
    drill.stub_mode("")
    confirmed = drill.handoff(
        "--execute", "--confirm", "--intent-id", "loop-red:health_critical:cancel", "--by", "oncall"
    )
    result = confirmed["execution"]["results"][0]
    assert result["status"] == "executed"
    assert result["idempotencyKey"] == f"{key}-retry-1"
    assert len(drill.calls()) == 2
    assert drill.control_rows("loop-red")[-1]["idempotencyKey"] == f"{key}-retry-1"
    plan = drill.handoff()
    assert "fleet_handoff_retry_guarded" not in plan["reasonCodes"]
    # a repeat of the autonomous run on the same trace replays, it does not execute again
    again = drill.handoff("--autonomous-execute")
    if again["execution"]["requestedIntentCount"]:
        assert again["execution"]["results"][0]["idempotencyKey"] == f"{key}-retry-1"
    assert len(drill.calls()) == 2


# --- 4. auto-pause on a failure spike ---------------------------------------------------------


def test_drill_autopause_failure_spike(drill: Drill) -> None:
    loops = ["loop-a", "loop-b", "loop-c"]
    make_fleet_repo(drill.repo, loops, heartbeat_ages={loop: CRITICAL_AGE for loop in loops})
    auto_pause = {
        "enabled": True,
        "lookbackExecutions": 3,
        "minSampleSize": 2,
        "ambiguityRateThreshold": 0.9,
        "failureRateThreshold": 0.5,
    }
    drill.registry(loops, allow=["health_critical"], auto_pause=auto_pause)
    drill.stub_mode("fail")  # every runtime command fails

    policy = drill.cycle()
    assert policy["autoEligibleCount"] == 3
    spike = drill.handoff("--autonomous-execute")
    assert spike["execution"]["failedCount"] == 3
    assert len(drill.calls()) == 3

    paused = drill.cycle()
    pause = paused["autonomous"]["rollout"]["pause"]
    assert pause["active"] is True
    assert pause["auto"]["active"] is True
    assert pause["auto"]["metrics"]["attemptedCount"] == 3
    assert pause["auto"]["metrics"]["failureRate"] == 1
    assert paused["autoEligibleCount"] == 0
    for loop in loops:
        reasons = candidate(paused, loop, "health_critical")["autonomous"]["reasons"]
        assert {"autonomous_rollout_paused_auto", "autonomous_autopause_failure_spike"} <= set(
            reasons
        )
    assert {"fleet_auto_candidates_paused", "fleet_auto_candidates_autopause_triggered"} <= set(
        paused["reasonCodes"]
    )

    drill.stub_mode("")
    held = drill.handoff("--autonomous-execute")
    assert held["execution"]["requestedIntentCount"] == 0
    assert held["summary"]["autoEligibleIntentCount"] == 0
    assert held["summary"]["pendingConfirmationCount"] == 3
    assert "autonomous_autopause_failure_spike" in intent(held, "loop-a")["autonomous"]["reasons"]
    assert len(drill.calls()) == 3
    # the manual path still works while paused
    manual = drill.handoff("--execute", "--confirm", "--loop", "loop-a", "--by", "oncall")
    assert manual["execution"]["results"][0]["status"] == "executed"
    assert len(drill.calls()) == 4

    # paused autonomous runs request nothing but still fill the lookback window: after
    # `lookbackExecutions` of them the sample is empty and the pause lifts by itself ...
    for _ in range(2):
        assert drill.handoff("--autonomous-execute")["execution"]["requestedIntentCount"] == 0
    resumed = drill.cycle()
    assert resumed["autonomous"]["rollout"]["pause"]["active"] is False
    assert resumed["autoEligibleCount"] == 3
    # ... while the intents whose actions failed stay retry-guarded until an operator
    # confirms them; loop-a (confirmed by the operator above) is autonomous again
    after = drill.handoff()
    assert intent(after, "loop-a")["autonomous"]["eligible"] is True
    for loop in ("loop-b", "loop-c"):
        assert intent(after, loop)["autonomous"]["reasons"] == ["autonomous_retry_guard_failed"]


# --- 5. governance review expiry ----------------------------------------------------------


def test_drill_governance_review_expiry(drill: Drill) -> None:
    from ops_manager.engine.fleet_handoff import HandoffSettings, fleet_handoff
    from ops_manager.engine.fleet_policy import fleet_policy
    from ops_manager.errors import OpsError

    now = utc_now_epoch()
    make_fleet_repo(drill.repo, ["loop-red"], heartbeat_ages={"loop-red": CRITICAL_AGE}, now=now)
    gov = governance(now, changed_days_ago=10, review_in_days=1)
    drill.registry(["loop-red"], allow=["health_critical"], gov=gov)
    policy = drill.cycle()
    assert policy["autoEligibleCount"] == 1
    drill.handoff()

    review_by = parse_ts(gov["reviewBy"])
    assert review_by is not None
    later = review_by + 1
    expiry = (
        "policy.autonomous.governance.reviewBy must be in the future"
        " when policy.mode is guarded_auto"
    )
    # the clock passes reviewBy: policy and handoff fail closed, nothing is executed
    with pytest.raises(OpsError, match="invalid fleet registry"):
        fleet_policy(drill.repo, now=later)
    with pytest.raises(OpsError) as err:
        fleet_handoff(HandoffSettings(repo=drill.repo, mode="autonomous"), clock=lambda: later)
    assert expiry in err.value.message
    assert drill.calls() == []

    # the same through the CLI, with a registry whose review is already past (relative)
    expired = governance(now, changed_days_ago=10, review_in_days=-1)
    drill.registry(["loop-red"], allow=["health_critical"], gov=expired)
    rows_before = FleetPaths.for_repo(drill.repo).handoff_telemetry_file.read_text()
    for command, args in (
        ("fleet-reconcile", ("--quiet",)),
        ("fleet-policy", ()),
        ("fleet-status", ()),
        ("fleet-handoff", ("--autonomous-execute",)),
    ):
        code, out, err = drill.run(command, *args)
        assert code == 1, command
        assert out is None
        assert "error: invalid fleet registry" in err
        assert expiry in err
    assert FleetPaths.for_repo(drill.repo).handoff_telemetry_file.read_text() == rows_before
    assert drill.calls() == []

    # governance renewed: autonomy resumes
    drill.registry(["loop-red"], allow=["health_critical"], gov=governance(now, review_in_days=30))
    assert drill.cycle()["autoEligibleCount"] == 1
    resumed = drill.handoff("--autonomous-execute")
    assert resumed["execution"]["executedCount"] == 1
    assert len(drill.calls()) == 1


def test_drill_governance_review_due_soon_holds_promotion(drill: Drill) -> None:
    """Within 7 days of reviewBy, fleet-status reports ``review_due_soon`` and promotion holds."""
    now = utc_now_epoch()
    make_fleet_repo(drill.repo, ["loop-red"], heartbeat_ages={"loop-red": CRITICAL_AGE}, now=now)
    drill.registry(["loop-red"], allow=["health_critical"], gov=governance(now, review_in_days=3))
    drill.cycle()
    status = drill.ok("fleet-status")
    governance_view = (status.get("autonomous") or {}).get("governance")
    assert governance_view["posture"] == "review_due_soon"
    gates = drill.ok("promotion-gates")
    assert gates["summary"]["decision"] == "hold"
    assert {
        "promotion_governance_posture_not_active",
        "promotion_governance_blocks_autonomous",
    } <= set(gates["gates"]["governance"]["reasons"])


# --- drill evidence feeds promotion ---------------------------------------------------------


def test_recorded_drill_evidence_passes_the_drill_gate(drill: Drill) -> None:
    """After the drills the operator records them; the drill gate then passes (per drill)."""
    make_fleet_repo(drill.repo, ["loop-red"], heartbeat_ages={"loop-red": CRITICAL_AGE})
    drill.registry(["loop-red"], allow=["health_critical"])
    drill.cycle()
    evidence = FleetPaths.for_repo(drill.repo).promotion_drill_file
    evidence.parent.mkdir(parents=True, exist_ok=True)
    done = format_ts(utc_now_epoch() - 3600)
    evidence.write_text(
        json.dumps(
            {
                "schemaVersion": "v1",
                "updatedAt": done,
                "drills": [
                    {"id": "kill_switch", "status": "pass", "completedAt": done},
                    {"id": "sprite_service_outage", "status": "pass", "completedAt": done},
                    {"id": "ambiguous_retry_guard", "status": "pass", "completedAt": "yesterday"},
                ],
            }
        )
    )
    status_file = drill.repo / "status.json"
    status_file.write_text(json.dumps(drill.ok("fleet-status")))
    gates = drill.ok("promotion-gates", "--fleet-status-file", str(status_file))
    assert gates["gates"]["drillRecency"]["reasons"] == [
        "promotion_drill_timestamp_invalid_ambiguous_retry_guard"
    ]
    assert "drill_recency" in gates["summary"]["failedGates"]
    assert gates["summary"]["decision"] == "hold"


@pytest.fixture(autouse=True)
def _no_stray_days() -> Iterator[None]:
    """Deadlines are relative: a whole day of slack keeps the drills off calendar dates."""
    assert DAY == 86400
    yield
