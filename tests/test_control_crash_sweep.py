"""SIGKILL ``ops-manager control`` and ``fleet-handoff --execute`` at every commit point.

The same sweep as ``test_crash_sweep`` (its helpers: ``tests/crash_sweep.py``), for the two
commands that *execute* something: a control runs the Superloop CLI (here a stub script
that logs each call, ``$SUPERLOOP_BIN``), and a handoff runs controls. The command under test
runs under ``strace -f -e inject=fsync:signal=KILL:when=K`` (then the same for every rename),
for every K the uninterrupted command reaches; then the same command runs again (the
operator's retry, same trace id and idempotency key), then a normal pass. What is on disk,
and the stub's call log, must equal one of the histories a kill may legitimately leave:

- the command committed (the uninterrupted history; the retry replays the stored result);
- it did not commit anything (the retry executes, once);
- it reserved the idempotency key and was killed before or after the runtime command ran,
  before recording the result: the retry answers ``ambiguous`` without executing (the
  store cannot know whether the command took effect, ``loop.md`` §3.10 / ``engine.control``:
  "a repeat ... after it was interrupted answers ambiguous without executing");
- for the handoff, also: its plan row committed (the record that a plan was made, before any
  control runs) and nothing after it; or the loop's control committed and the handoff's
  execute record did not (the retry replays the control from the loop's idempotency store).

Never anything else: the runtime command never runs twice, no row lost or doubled, no torn
row, no commit record left over. Each legitimate history is produced by the real code, not
written by hand: "killed before / after the runtime command ran" by a stub that SIGKILLs
its parent (the control process), "plan only" by a handoff whose ``--loop`` filter fails
after its plan row (§2.5: the plan row is appended before the filters are checked),
"control committed, handoff not" by the loop-level control the handoff would have run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import format_ts, utc_now_epoch
from tests.crash_sweep import (
    COMMIT_CALLS,
    STRACE,
    count_commit_calls,
    kill_at,
    nearest,
    norm,
    strace_prefix,
)
from tests.runtime_fixtures import append_events, event, make_runtime_repo

pytestmark = pytest.mark.skipif(STRACE is None, reason="strace (Debian's strace) is not installed")

CLI = Path(sys.executable).parent / "ops-manager"
LOOP = "demo-loop"
HOURS_AGO = utc_now_epoch() - 3 * 3600
KEY = "sweep-key-1"
#: the runtime stub: logs its argv; ``SWEEP_KILL=before|after`` SIGKILLs the control process
#: (its parent) before / after the "runtime" acted, as a kill during execution would
STUB = """#!/bin/sh
if [ "$SWEEP_KILL" = before ]; then kill -KILL "$PPID"; exit 0; fi
echo "$*" >> "$SWEEP_SUPERLOOP_LOG"
if [ "$SWEEP_KILL" = after ]; then kill -KILL "$PPID"; fi
exit 0
"""

Runner = Callable[[list[str] | None], int]


def _env(repo: Path, trace: str, kill: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPS_MANAGER_", "SWEEP_"))}
    env.update(
        OPS_MANAGER_TRACE_ID=trace,
        OPS_MANAGER_ALERTS_ENABLED="false",
        SUPERLOOP_BIN=str(repo.parent / "superloop-stub.sh"),
        SWEEP_SUPERLOOP_LOG=str(_calls_log(repo)),
    )
    if kill is not None:
        env["SWEEP_KILL"] = kill
    return env


def _calls_log(repo: Path) -> Path:
    return repo.parent / f"{repo.name}.calls"


def _cli(
    repo: Path,
    args: list[str],
    trace: str,
    strace_args: list[str] | None = None,
    *,
    kill: str | None = None,
) -> int:
    cmd = [str(CLI), *args]
    if strace_args is not None:
        cmd = [*strace_prefix(strace_args), *cmd]
    proc = subprocess.run(
        cmd, capture_output=True, env=_env(repo, trace, kill), timeout=120, check=False
    )
    return proc.returncode


def _artifacts(repo: Path, ops: Path) -> dict[str, Any]:
    """Every artifact under ``ops``, normalised, and the runtime stub's calls."""
    out: dict[str, Any] = {}
    for path in sorted(ops.rglob("*")):
        if not path.is_file() or path.name.endswith(".lock"):
            continue
        name = str(path.relative_to(ops))
        text = path.read_text(encoding="utf-8").replace(str(repo), "R")
        if name.endswith(".jsonl"):
            assert text.endswith("\n"), f"{name}: torn last line"
            out[name] = [norm(json.loads(line)) for line in text.splitlines()]
        else:
            assert text, f"{name}: empty"
            out[name] = norm(_masked(name, json.loads(text)))
    calls = _calls_log(repo)
    out["<runtime calls>"] = (
        calls.read_text().replace(str(repo), "R").splitlines() if calls.exists() else []
    )
    return out


def _masked(name: str, value: Any) -> Any:
    """The idempotency store records the reserving process's pid: a different one in every
    history (the store compares it with the living processes, never with another pid)."""
    if name.endswith("intent-idempotency.json") and isinstance(value, dict):
        return {
            k: ({**v, "pid": "<pid>"} if isinstance(v, dict) and "pid" in v else v)
            for k, v in value.items()
        }
    return value


def _stub(root: Path) -> None:
    stub = root / "superloop-stub.sh"
    if not stub.exists():
        stub.write_text(STUB, encoding="utf-8")
        stub.chmod(0o755)


class Sweep:
    """Fresh copies of one template (same-length paths: rows record the repo path, and
    stream positions count its bytes), and the outcome tally."""

    def __init__(self, tmp_path: Path, template: Path) -> None:
        self.tmp_path = tmp_path
        self.template = template
        self.made = 0

    def fresh(self) -> Path:
        self.made += 1
        dest = self.tmp_path / f"h{self.made:03d}"
        shutil.copytree(self.template, dest, symlinks=True)
        return dest

    def run(
        self,
        label: str,
        counts: dict[str, int],
        histories: dict[str, dict[str, Any]],
        killed: Callable[[Path, list[str]], int],
        after: Callable[[Path], dict[str, Any]],
    ) -> dict[str, int]:
        """Kill at every commit point in turn; every outcome must be a legitimate history."""
        assert len({json.dumps(h, sort_keys=True) for h in histories.values()}) == len(histories)
        assert counts["fsync"] >= 1 and counts["rename"] >= 1, counts
        divergent: list[str] = []
        outcomes = dict.fromkeys(histories, 0)
        for call in COMMIT_CALLS:
            for k in range(1, counts[call] + 1):
                repo = self.fresh()
                assert killed(repo, kill_at(call, k)) != 0, f"{call} #{k}: not killed"
                got = after(repo)
                match = [name for name, history in histories.items() if got == history]
                if match:
                    outcomes[match[0]] += 1
                else:
                    divergent.append(f"{call} #{k}: {nearest(got, histories)}")
        total = sum(counts.values())
        print(f"\n{label}: commit points covered: {total} ({counts}); outcomes: {outcomes}")
        print(*divergent, sep="\n")
        assert not divergent, divergent
        assert sum(outcomes.values()) == total
        return outcomes


# --- ops-manager control -----------------------------------------------------------------------


def _events(names: list[str], start: int, loop_id: str = LOOP) -> list[dict[str, Any]]:
    return [
        event(
            name,
            format_ts(HOURS_AGO + start + i),
            iteration=1,
            role="implementer",
            loop_id=loop_id,
        )
        for i, name in enumerate(names)
    ]


def _control(repo: Path, strace_args: list[str] | None = None, *, kill: str | None = None) -> int:
    args = ["control", "--repo", str(repo), "--loop", LOOP, "--intent", "cancel"]
    args += ["--idempotency-key", KEY, "--trace-id", "p2", "--by", "sweep", "--no-confirm"]
    return _cli(repo, args, "p2", strace_args, kill=kill)


def _reconcile(repo: Path, trace: str) -> None:
    args = ["reconcile", "--repo", str(repo), "--loop", LOOP, "--trace-id", trace]
    assert _cli(repo, [*args, "--alerts-enabled", "false"], trace) in (0, 1)


def _control_after(repo: Path) -> dict[str, Any]:
    """The operator's retry (same key), 2 more events, a reconcile pass (it reads the last
    control status), then every artifact."""
    assert _control(repo) in (0, 2)
    append_events(repo, LOOP, _events(["role_start", "role_end"], 20))
    _reconcile(repo, "p3")
    return _artifacts(repo, repo / ".superloop" / "ops-manager" / LOOP)


def test_a_sigkill_at_any_commit_point_of_a_control_leaves_the_previous_run_or_the_next(
    tmp_path: Path,
) -> None:
    root = tmp_path / "template"
    _stub(tmp_path)
    repo = make_runtime_repo(
        root, events=_events(["loop_start", "iteration_start", "role_start"], 0)
    ).resolve()
    _reconcile(repo, "p1")
    append_events(repo, LOOP, _events(["role_end", "tests_start", "tests_end"], 10))
    sweep = Sweep(tmp_path, repo)

    counted = sweep.fresh()
    counts = count_commit_calls(lambda args: _control(counted, args), tmp_path / "count.log")
    before, after = sweep.fresh(), sweep.fresh()
    assert _control(before, kill="before") != 0
    assert _control(after, kill="after") != 0
    histories = {
        "committed": _control_after(counted),
        "not committed": _control_after(sweep.fresh()),
        "reserved, killed before the runtime ran": _control_after(before),
        "executed, killed before recording": _control_after(after),
    }
    # the runtime ran once in each (none when the kill came before it), never twice
    assert [len(h["<runtime calls>"]) for h in histories.values()] == [1, 1, 0, 1]
    # the commit record does not outlive a clean run; the retry of a committed control
    # replays it, that of an interrupted one answers ambiguous
    assert not any(".pass-commit" in name for h in histories.values() for name in h)
    replayed = [
        [row["execution"]["replayed"] for row in h["telemetry/control-invocations.jsonl"]]
        for h in histories.values()
    ]
    assert replayed == [[False, True], [False], [False], [False]], replayed
    statuses = [[row["status"] for row in h["intents.jsonl"]] for h in histories.values()]
    assert statuses[0] == ["executed_unconfirmed"] * 2 and statuses[2:] == [["ambiguous"]] * 2
    outcomes = sweep.run(
        "control", counts, histories, lambda r, args: _control(r, args), _control_after
    )
    # a kill after the commit point, and one before the reservation, were both reached
    assert outcomes["committed"] and outcomes["not committed"], outcomes


# --- fleet-handoff --execute -------------------------------------------------------------------

#: one target loop, no runtime confirmation (fleet.md §2.5 ``--no-runtime-confirm``: the
#: controls pass ``--no-confirm``), so the run is deterministic
HANDOFF = ["fleet-handoff", "--trace-id", "p2", "--by", "sweep", "--execute", "--confirm"]
HANDOFF += ["--no-runtime-confirm", "--loop", "loop-a"]


def _handoff(
    repo: Path,
    strace_args: list[str] | None = None,
    *,
    kill: str | None = None,
    loop: str = "loop-a",
) -> int:
    args = [*HANDOFF[:-1], loop, "--repo", str(repo)]
    return _cli(repo, args, "p2", strace_args, kill=kill)


def _handoff_after(repo: Path) -> dict[str, Any]:
    """The operator's retry (the same command), then a plan-only handoff (it reads the
    state the retry left: an ambiguous intent is retry-guarded), then every artifact of
    the fleet and of both loops."""
    assert _handoff(repo) == 0
    assert _cli(repo, ["fleet-handoff", "--repo", str(repo), "--trace-id", "r3"], "r3") == 0
    return _artifacts(repo, repo / ".superloop" / "ops-manager")


def test_a_sigkill_at_any_commit_point_of_a_handoff_execution_never_executes_twice(
    tmp_path: Path,
) -> None:
    from tests import test_fleet_crash_sweep as fleet_sweep

    _stub(tmp_path)
    sweep = Sweep(tmp_path, fleet_sweep._before_pass_2(tmp_path / "template"))

    counted = sweep.fresh()
    counts = count_commit_calls(lambda args: _handoff(counted, args), tmp_path / "count.log")
    state = json.loads((counted / ".superloop/ops-manager/fleet/handoff-state.json").read_text())
    (result,) = state["execution"]["results"]
    assert result["status"] == "executed", result
    before, after = sweep.fresh(), sweep.fresh()
    assert _handoff(before, kill="before") != 0
    assert _handoff(after, kill="after") != 0
    plan_only, control_only = sweep.fresh(), sweep.fresh()
    for repo in (plan_only, control_only):
        # §2.5: the plan row is appended before the filters are checked
        assert _handoff(repo, loop="no-such-loop") == 1
    # the loop-level control the handoff runs for its one target, as it runs it
    control = ["control", "--repo", str(control_only), "--loop", "loop-a"]
    control += ["--intent", result["intent"], "--trace-id", "p2", "--by", "sweep"]
    control += ["--idempotency-key", result["idempotencyKey"], "--no-confirm"]
    control += ["--note", f"fleet_handoff:manual:{result['intentId']}"]
    assert _cli(control_only, control, "p2") == 0
    histories = {
        "committed": _handoff_after(counted),
        "not committed": _handoff_after(sweep.fresh()),
        "plan recorded, nothing executed": _handoff_after(plan_only),
        "reserved, killed before the runtime ran": _handoff_after(before),
        "executed, killed before recording": _handoff_after(after),
        "control committed, the handoff's execution not": _handoff_after(control_only),
    }
    # the runtime ran once in each (none when the kill came before it), never twice
    calls = [len(h["<runtime calls>"]) for h in histories.values()]
    assert calls == [1, 1, 1, 0, 1, 1], calls
    assert not any(
        ".fleet-commit" in n or ".pass-commit" in n for h in histories.values() for n in h
    )
    outcomes = sweep.run(
        "fleet-handoff --execute",
        counts,
        histories,
        lambda r, args: _handoff(r, args),
        _handoff_after,
    )
    assert outcomes["committed"] and outcomes["not committed"], outcomes
