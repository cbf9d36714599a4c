"""Confirmation of control intents (``loop.md`` §3.9, §7.7 item 100, Q-22, Q-23).

The decision table is tested on hand-written observations, on snapshots of realistic runtime
trees (``runtime-observed.md``: dead runs left active, run ids that change, approvals that
come back) and with hypothesis (the reducer never raises on snapshot-shaped values). The
attempt loop runs on an injected clock, so nothing here really waits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts
from ops_manager.cli import main
from ops_manager.engine.control import confirm_intent, observe_runtime
from ops_manager.errors import OpsError
from ops_manager.reducers.confirm import (
    OUTCOME_KEYS,
    Observation,
    confirm_outcome,
    confirm_predicate,
)
from ops_manager.runtime import build_snapshot
from ops_manager.store import LoopPaths
from tests.runtime_fixtures import (
    event,
    loop_dir,
    make_runtime_repo,
    pending_approval,
    realistic_run_events,
    summary_entry,
    ts,
    write_pretty,
)

LOOP = "demo-loop"
STUB = Path(__file__).with_name("stub_superloop.py")


class FakeTime:
    """A clock that only moves when slept on (or when an attempt is made to take time)."""

    def __init__(self, start: float = 1_900_000_000, attempt_cost: float = 0.0) -> None:
        self.now = start
        self.attempt_cost = attempt_cost
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> int:
        return int(self.now)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def paths_for(repo: Path) -> LoopPaths:
    return LoopPaths.for_loop(repo.resolve(), LOOP)


def stub(repo: Path, *args: str, mode: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUB_SUPERLOOP_MODE": mode}
    return subprocess.run(
        [sys.executable, str(STUB), *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def confirm_now(repo: Path, intent: str, timeout: int = 0) -> tuple[dict[str, Any], int]:
    fake = FakeTime()
    return confirm_intent(
        paths_for(repo),
        intent,
        timeout_seconds=timeout,
        interval_seconds=1,
        clock=fake.clock,
        sleep=fake.sleep,
        wall=fake.wall,
    )


# --- the decision table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "obs", "reason"),
    [
        ("cancel", Observation(), "inactive_not_running"),
        ("cancel", Observation(observed_status="stopped"), "inactive_not_running"),
        ("cancel", Observation(observed_status="awaiting_approval"), "inactive_not_running"),
        ("cancel", Observation(observed_status="running"), None),
        ("cancel", Observation(observed_status="idle", observed_active=True), None),
        ("approve", Observation(completion_ok=True), "completion_observed"),
        ("approve", Observation(observed_status="complete"), "completion_observed"),
        ("approve", Observation(observed_last_event="loop_complete"), "completion_observed"),
        ("approve", Observation(observed_last_event="approval_decision"), None),
        ("approve", Observation(observed_approval_status="approved"), None),
        ("reject", Observation(observed_approval_status="rejected"), "rejection_observed"),
        ("reject", Observation(observed_last_event="approval_rejected"), "rejection_observed"),
        ("reject", Observation(observed_last_event="approval_decision"), "rejection_observed"),
        (
            "reject",
            Observation(
                observed_last_event="approval_decision", observed_approval_status="rejected"
            ),
            "rejection_observed",
        ),
        # an approval's decision event is not evidence of a rejection
        (
            "reject",
            Observation(
                observed_last_event="approval_decision", observed_approval_status="approved"
            ),
            None,
        ),
        ("reject", Observation(observed_approval_status="pending"), None),
        ("pause", Observation(), None),
    ],
)
def test_decision_table(intent: str, obs: Observation, reason: str | None) -> None:
    assert confirm_predicate(intent, obs) == reason


def test_observation_uses_jq_alternative_semantics() -> None:
    assert Observation.from_snapshot({}) == Observation()
    assert Observation.from_snapshot(None) == Observation()
    obs = Observation.from_snapshot(
        {
            "run": {"status": None, "summary": {"completion_ok": "true"}},
            "health": {"lastEventName": False},
            "runtime": {"approval": {"status": 7}, "superloopState": {"active": "true"}},
        }
    )
    # null/false -> default; a string "true" is not `true`; a non-string status is no evidence
    assert obs == Observation()
    obs = Observation.from_snapshot(
        {
            "run": {"status": "", "summary": {"completion_ok": True}},
            "health": {"lastEventName": "loop_complete"},
            "runtime": {"approval": {"status": "approved"}, "superloopState": {"active": True}},
        }
    )
    assert obs == Observation("", "loop_complete", "approved", True, True)


def test_outcome_key_order_and_nullable_strings() -> None:
    out = confirm_outcome(
        intent="cancel",
        reason=None,
        attempts=2,
        timeout_seconds=2,
        obs=Observation(observed_status="running", observed_active=True),
        observed_at="2030-01-01T00:00:00Z",
    )
    assert tuple(out) == OUTCOME_KEYS
    assert out == {
        "intent": "cancel",
        "confirmed": False,
        "reason": "timeout",
        "attempts": 2,
        "timeoutSeconds": 2,
        "observedStatus": "running",
        "observedLastEvent": None,
        "observedApprovalStatus": None,
        "observedActive": True,
        "observedAt": "2030-01-01T00:00:00Z",
    }


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
FIELD = st.one_of(
    JSON,
    st.sampled_from(
        [
            "running",
            "complete",
            "stopped",
            "loop_complete",
            "approval_decision",
            "approval_rejected",
            "rejected",
            "approved",
            "pending",
            True,
            False,
        ]
    ),
)
SNAPSHOT_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "run": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "status": FIELD,
                    "summary": st.one_of(
                        JSON, st.fixed_dictionaries({}, optional={"completion_ok": FIELD})
                    ),
                },
            ),
        ),
        "health": st.one_of(JSON, st.fixed_dictionaries({}, optional={"lastEventName": FIELD})),
        "runtime": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "approval": st.one_of(
                        JSON, st.fixed_dictionaries({}, optional={"status": FIELD})
                    ),
                    "superloopState": st.one_of(
                        JSON, st.fixed_dictionaries({}, optional={"active": FIELD})
                    ),
                },
            ),
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    snapshot=st.one_of(JSON, SNAPSHOT_SHAPED),
    intent=st.sampled_from(["cancel", "approve", "reject", "x"]),
)
def test_predicate_never_raises_on_snapshot_shaped_values(snapshot: Any, intent: str) -> None:
    obs = Observation.from_snapshot(snapshot)
    reason = confirm_predicate(intent, obs)
    assert reason in (None, "inactive_not_running", "completion_observed", "rejection_observed")
    out = confirm_outcome(
        intent=intent, reason=reason, attempts=1, timeout_seconds=0, obs=obs, observed_at="t"
    )
    json.dumps(out)  # always serializable
    assert isinstance(out["observedStatus"], str)
    assert isinstance(out["observedActive"], bool)


# --- real runtime trees ---------------------------------------------------------------------


def test_observer_reads_what_the_snapshot_envelope_says(tmp_path: Path) -> None:
    repo = make_runtime_repo(
        tmp_path / "r",
        events=realistic_run_events(outcome="approval_requested"),
        approval=pending_approval(),
    )
    paths = paths_for(repo)
    full = build_snapshot(paths, now=0, trace_id=None, run_id=None)
    assert Observation.from_snapshot(observe_runtime(paths)) == Observation.from_snapshot(full)
    assert Observation.from_snapshot(full).observed_status == "awaiting_approval"


def test_cancel_of_dead_run_left_active_is_not_confirmed_until_state_changes(
    tmp_path: Path,
) -> None:
    # runtime-observed 2: the run died, state.json still says active, the log ends at role_start
    repo = make_runtime_repo(
        tmp_path / "r", active=True, events=realistic_run_events(outcome="died", iterations=2)
    )
    (repo / ".superloop" / "active-run.json").unlink()
    out, code = confirm_now(repo, "cancel", timeout=3)
    assert (code, out["confirmed"], out["reason"]) == (1, False, "timeout")
    assert out["observedStatus"] == "running" and out["observedActive"] is True
    assert out["attempts"] == 4  # t = 0, 1, 2, 3 on the fake clock
    assert out["observedLastEvent"] == "role_start"

    # real `cancel` deletes state.json: confirmed, run status unknown
    assert stub(repo, "cancel").returncode == 0
    assert not (repo / ".superloop" / "state.json").exists()
    out, code = confirm_now(repo, "cancel")
    assert code == 0
    assert out["reason"] == "inactive_not_running"
    assert out["observedStatus"] == "unknown"
    assert out["observedActive"] is False
    assert out["attempts"] == 1


def test_cancel_deleting_state_even_when_nothing_runs_confirms(tmp_path: Path) -> None:
    repo = make_runtime_repo(
        tmp_path / "r", active=False, events=realistic_run_events(outcome="complete")
    )
    assert stub(repo, "cancel").returncode == 0
    out, code = confirm_now(repo, "cancel")
    assert code == 0 and out["reason"] == "inactive_not_running"


def test_item_100_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_runtime_repo(tmp_path / "r", active=True)
    assert stub(repo, "cancel", mode="stop_on_cancel").returncode == 0
    code = main(["confirm-intent", "--repo", str(repo), "--loop", LOOP, "--intent", "cancel"])
    line = capsys.readouterr().out
    assert code == 0 and line.endswith("}\n") and "\n" not in line[:-1]
    out = json.loads(line)
    assert list(out) == list(OUTCOME_KEYS)
    out.pop("observedAt")
    assert out == {
        "intent": "cancel",
        "confirmed": True,
        "reason": "inactive_not_running",
        "attempts": 1,
        "timeoutSeconds": 30,
        "observedStatus": "stopped",
        "observedLastEvent": "loop_stop",
        "observedApprovalStatus": None,
        "observedActive": False,
    }


def test_q22_real_approve_records_decision_only_and_times_out(tmp_path: Path) -> None:
    repo = make_runtime_repo(
        tmp_path / "r",
        active=False,
        events=realistic_run_events(outcome="approval_requested"),
        approval=pending_approval(run_id="2026-02-22T10:00:00Z"),
    )
    result = stub(repo, "approve", "--loop", LOOP, "--by", "ops")
    assert result.returncode == 0, result.stderr
    out, code = confirm_now(repo, "approve", timeout=2)
    assert code == 1
    assert out["reason"] == "timeout"
    assert out["observedLastEvent"] == "approval_decision"
    assert out["observedApprovalStatus"] == "approved"
    # ... and the approval's decision event is not mistaken for a rejection
    out, code = confirm_now(repo, "reject")
    assert code == 1


def test_approve_confirmed_once_the_next_run_consumes_it_with_changed_run_id(
    tmp_path: Path,
) -> None:
    # runtime-observed 1: the consuming run logs loop_start with a NEW run id, then
    # approval_consumed / loop_complete with the OLD one; approval.json is deleted
    old = "2026-02-22T10:00:00Z"
    events = realistic_run_events(outcome="approval_consumed", run_id=old)
    repo = make_runtime_repo(
        tmp_path / "r",
        active=False,
        events=events,
        summary_entries=[
            summary_entry(old, 2, completion_ok=False),
            summary_entry(old, 2, completion_ok=True),
        ],
    )
    out, code = confirm_now(repo, "approve")
    assert code == 0
    assert out["reason"] == "completion_observed"
    assert out["observedStatus"] == "complete"
    assert out["observedLastEvent"] == "loop_complete"


def test_reject_confirmed_by_decision_event_and_rejected_approval(tmp_path: Path) -> None:
    repo = make_runtime_repo(
        tmp_path / "r",
        active=False,
        events=realistic_run_events(outcome="approval_requested"),
        approval=pending_approval(),
    )
    result = stub(repo, "approve", "--loop", LOOP, "--by", "ops", "--reject", "--note", "no")
    assert result.returncode == 0, result.stderr
    approval = json.loads((loop_dir(repo) / "approval.json").read_text())
    assert approval["status"] == "rejected"
    assert approval["decision"] == {
        "status": "rejected",
        "by": "ops",
        "note": "no",
        "at": approval["decided_at"],
    }
    out, code = confirm_now(repo, "reject")
    assert code == 0
    assert out["reason"] == "rejection_observed"
    assert out["observedApprovalStatus"] == "rejected"
    assert out["observedLastEvent"] == "approval_decision"


def test_reject_confirmed_by_approval_rejected_after_consumption(tmp_path: Path) -> None:
    events = realistic_run_events(outcome="approval_requested")
    events.append(
        event(
            "approval_rejected",
            ts(900),
            run_id=events[0]["run_id"],
            iteration=2,
            data={
                "status": "rejected",
                "approval_file": ".superloop/loops/demo-loop/approval.json",
            },
        )
    )
    repo = make_runtime_repo(tmp_path / "r", active=False, events=events)
    out, code = confirm_now(repo, "reject")
    assert code == 0 and out["observedLastEvent"] == "approval_rejected"
    assert out["observedApprovalStatus"] is None


def test_approval_that_comes_back_pending_is_not_a_rejection_or_completion(
    tmp_path: Path,
) -> None:
    # runtime-observed 3: after approval_rejected the run iterates and re-requests approval
    events = realistic_run_events(outcome="approval_requested")
    rid = events[0]["run_id"]
    append = [
        event("approval_rejected", ts(900), run_id=rid, iteration=2, data={"status": "rejected"}),
        event("iteration_start", ts(901), run_id=rid, iteration=3, data={"started_at": ts(901)}),
        event("approval_requested", ts(950), run_id=rid, iteration=3, data={}),
        event("iteration_end", ts(951), run_id=rid, iteration=3, data={}),
    ]
    repo = make_runtime_repo(
        tmp_path / "r",
        active=False,
        events=events + append,
        approval=pending_approval(run_id=rid, iteration=3),
    )
    for intent in ("approve", "reject"):
        out, code = confirm_now(repo, intent)
        assert code == 1, intent
        assert out["observedStatus"] == "awaiting_approval"
        assert out["observedApprovalStatus"] == "pending"
    out, code = confirm_now(repo, "cancel")
    assert code == 0  # awaiting approval, not active: nothing to cancel


def test_stub_approve_errors_like_the_runtime(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", active=False)
    result = stub(repo, "approve", "--by", "x")
    assert (result.returncode, result.stderr) == (1, "error: --loop is required for approve\n")
    result = stub(repo, "approve", "--loop", LOOP)
    assert result.returncode == 1
    assert result.stderr == f"error: no approval request found for loop '{LOOP}'\n"
    write_pretty(loop_dir(repo) / "approval.json", {**pending_approval(), "status": "approved"})
    result = stub(repo, "approve", "--loop", LOOP)
    assert result.returncode == 1
    assert result.stderr == "error: approval request is not pending (status=approved)\n"


# --- the attempt loop ----------------------------------------------------------------------


def test_adapter_failure_never_confirms_and_keeps_observations(tmp_path: Path) -> None:
    paths = paths_for(tmp_path)  # no runtime tree at all: every snapshot fails
    fake = FakeTime()
    out, code = confirm_intent(
        paths,
        "cancel",
        timeout_seconds=2,
        interval_seconds=1,
        clock=fake.clock,
        sleep=fake.sleep,
        wall=fake.wall,
    )
    # upstream confirmed a cancel from its initial values; no evidence is not a confirmation
    assert code == 1 and out["reason"] == "timeout" and out["attempts"] == 3
    assert out["observedStatus"] == "unknown"

    calls: list[int] = []

    def flaky(p: LoopPaths) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            return {"run": {"status": "running"}, "runtime": {"superloopState": {"active": True}}}
        raise OpsError("invalid JSON in state.json")

    fake = FakeTime()
    out, code = confirm_intent(
        paths,
        "cancel",
        timeout_seconds=2,
        interval_seconds=1,
        clock=fake.clock,
        sleep=fake.sleep,
        wall=fake.wall,
        snapshot=flaky,
    )
    assert code == 1 and out["observedStatus"] == "running" and out["observedActive"] is True


def test_attempt_schedule_on_a_fake_clock(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", active=True)
    paths = paths_for(repo)
    # timeout 0: exactly one attempt
    fake = FakeTime()
    out, _ = confirm_intent(
        paths, "cancel", timeout_seconds=0, clock=fake.clock, sleep=fake.sleep, wall=fake.wall
    )
    assert out["attempts"] == 1 and fake.sleeps == []
    # interval 0 is coerced to 1
    fake = FakeTime()
    out, _ = confirm_intent(
        paths,
        "cancel",
        timeout_seconds=3,
        interval_seconds=0,
        clock=fake.clock,
        sleep=fake.sleep,
        wall=fake.wall,
    )
    assert fake.sleeps == [1, 1, 1] and out["attempts"] == 4
    # item 93's shape: attempts that take time -> timeout 2 / interval 1 gives 2 attempts
    fake = FakeTime()

    def slow(p: LoopPaths) -> dict[str, Any]:
        fake.now += 0.5
        return observe_runtime(p)

    out, _ = confirm_intent(
        paths,
        "cancel",
        timeout_seconds=2,
        interval_seconds=1,
        clock=fake.clock,
        sleep=fake.sleep,
        wall=fake.wall,
        snapshot=slow,
    )
    assert out["attempts"] == 2 and out["timeoutSeconds"] == 2
    assert out["observedAt"] == format_ts(1_900_000_002)
    # confirmed on the third attempt: stops there
    seen: list[int] = []

    def later(p: LoopPaths) -> dict[str, Any]:
        seen.append(1)
        if len(seen) == 3:
            (repo / ".superloop" / "state.json").unlink()
        return observe_runtime(p)

    fake = FakeTime()
    out, code = confirm_intent(
        paths,
        "cancel",
        timeout_seconds=30,
        interval_seconds=2,
        clock=fake.clock,
        sleep=fake.sleep,
        wall=fake.wall,
        snapshot=later,
    )
    assert (code, out["attempts"], fake.sleeps) == (0, 3, [2, 2])


def test_confirm_intent_rejects_unknown_intent(tmp_path: Path) -> None:
    with pytest.raises(OpsError, match="intent must be one of: cancel, approve, reject"):
        confirm_intent(paths_for(tmp_path), "pause")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "error: --repo is required\n"),
        (["--repo", "."], "error: --loop is required\n"),
        (["--repo", ".", "--loop", LOOP], "error: --intent is required\n"),
        (
            ["--repo", ".", "--loop", LOOP, "--intent", "pause"],
            "error: intent must be one of: cancel, approve, reject\n",
        ),
        (
            ["--repo", ".", "--loop", LOOP, "--intent", "cancel", "--timeout-seconds", "-1"],
            "error: timeout and interval must be non-negative integers\n",
        ),
        (
            ["--repo", ".", "--loop", LOOP, "--intent", "cancel", "--interval-seconds", "1.5"],
            "error: timeout and interval must be non-negative integers\n",
        ),
    ],
)
def test_confirm_intent_cli_validation(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["confirm-intent", *argv]) == 1
    assert capsys.readouterr().err == message


def test_confirm_intent_cli_not_confirmed_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "r", active=True)
    argv = [
        "confirm-intent",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--intent",
        "cancel",
        "--timeout-seconds",
        "0",
    ]
    assert main(argv) == 1
    out = json.loads(capsys.readouterr().out)
    assert (out["confirmed"], out["reason"], out["attempts"]) == (False, "timeout", 1)
    assert out["observedStatus"] == "running" and out["timeoutSeconds"] == 0
