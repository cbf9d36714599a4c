"""SIGKILL each fleet command (reconcile, policy, handoff, promotion gates) at every commit point.

The same sweep as ``test_crash_sweep`` (its helpers: ``tests/crash_sweep.py``), one level up.
A fleet of two local loops; a *round* is ``fleet-reconcile``, ``fleet-policy``,
``fleet-handoff`` (plan) and ``promotion-gates``, each through the real CLI. The history:
round 1, 3 new events per loop, the command under test alone (its pass 2), 2 new events per
loop, round 3. Pass 2 runs under ``strace -f -e inject=fsync:signal=KILL:when=K`` (then the
same for every rename), for every K the uninterrupted pass 2 reaches. After round 3, every
artifact of the fleet and of both loops must equal one of the histories a kill may
legitimately leave:

- pass 2 committed (the uninterrupted history), or
- pass 2 did not commit, and round 3 did its work;
- for ``fleet-reconcile``, also: the first loop's pass committed and the second's did not,
  or both loop passes committed and the fleet's did not (``--max-parallel 1``: the loops run
  one after the other on one thread, so the kill points are one deterministic sequence, and
  every loop pass commits on its own under its loop's lock).

Never anything else: no re-ingest, no double-counted run (a telemetry row twice, a history
row without its policy state), no torn row, no commit record left over. Round 3 starts with
``fleet-reconcile`` whatever command was killed, so a record left by a killed
``fleet-policy``, ``fleet-handoff`` or ``promotion-gates`` is finished by another command
that takes the fleet lock: the record is shared by every fleet writer.

``fleet-handoff --execute`` (its controls run the runtime) is swept in
``test_control_crash_sweep``.

Alert dispatch is off here (``OPS_MANAGER_ALERTS_ENABLED=false``): the per-loop dispatch and
its pages are what ``test_crash_sweep`` sweeps.
"""

from __future__ import annotations

import json
import os
import re
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
from tests.fleet_fixtures import write_registry
from tests.runtime_fixtures import append_events, event, make_runtime_repo

pytestmark = pytest.mark.skipif(STRACE is None, reason="strace (Debian's strace) is not installed")

CLI = Path(sys.executable).parent / "ops-manager"
LOOPS = ("loop-a", "loop-b")
HOURS_AGO = utc_now_epoch() - 3 * 3600
COMMANDS = ("fleet-reconcile", "fleet-policy", "fleet-handoff", "promotion-gates")
#: the flags of each command in a round (fleet-handoff: plan mode)
FLAGS = {
    # one loop at a time: the kill points of pass 2 are one sequence (see the docstring)
    "fleet-reconcile": ["--max-parallel", "1"],
    # every candidate of round 3 is deduplicated against the last unsuppressed one, however
    # long the sweep takes (the default window is 300 s)
    "fleet-policy": ["--dedupe-window-seconds", "86400"],
    "fleet-handoff": [],
    # its fleet status is generated in process; the drill file is missing (a gate reason)
    "promotion-gates": [],
}

Runner = Callable[[list[str] | None], int]


def _env(trace: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    return {**env, "OPS_MANAGER_TRACE_ID": trace, "OPS_MANAGER_ALERTS_ENABLED": "false"}


def _run(repo: Path, command: str, trace: str, strace_args: list[str] | None = None) -> int:
    cmd = [str(CLI), command, "--repo", str(repo), "--trace-id", trace, *FLAGS[command]]
    if strace_args is not None:
        cmd = [*strace_prefix(strace_args), *cmd]
    proc = subprocess.run(cmd, capture_output=True, env=_env(trace), timeout=120, check=False)
    if strace_args is None:
        assert proc.returncode == 0, (command, proc.stderr.decode())
    return proc.returncode


def _round(repo: Path, trace: str) -> None:
    for command in COMMANDS:
        _run(repo, command, trace)


def _events(loop_id: str, names: list[str], start: int) -> list[dict[str, Any]]:
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


def _before_pass_2(root: Path) -> Path:
    """A fleet after round 1, with pass 2's events appended to each loop (a dead run that
    stays active, events three hours old: every loop is critical, so policy has candidates
    and handoff intents)."""
    for loop_id in LOOPS:
        make_runtime_repo(
            root,
            loop_id,
            events=_events(loop_id, ["loop_start", "iteration_start", "role_start"], 0),
        )
    repo = root.resolve()
    write_registry(repo, list(LOOPS), fleet_id="sweep-fleet")
    _round(repo, "r1")
    for loop_id in LOOPS:
        append_events(repo, loop_id, _events(loop_id, ["role_end", "tests_start", "tests_end"], 10))
    return repo


def _after(repo: Path) -> dict[str, Any]:
    """Round 3 (2 more events per loop), then every artifact, normalised."""
    for loop_id in LOOPS:
        append_events(repo, loop_id, _events(loop_id, ["role_start", "role_end"], 20))
    _round(repo, "r3")
    ops = repo / ".superloop" / "ops-manager"
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
            out[name] = norm(_excerpts(json.loads(text)))
    return out


def _excerpts(value: Any) -> Any:
    """A loop result's ``outputExcerpt`` is the first 600 bytes of the loop's JSON output,
    which holds ages and durations (its length moves with their digits): compared as the
    reason codes it names, not byte for byte."""
    if isinstance(value, dict):
        return {
            k: (_reasons(v) if k == "outputExcerpt" else _excerpts(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_excerpts(v) for v in value]
    return value


def _reasons(excerpt: Any) -> Any:
    if not isinstance(excerpt, str):
        return excerpt
    return sorted(set(re.findall(r'"(?:code|reasonCode|status)":"([^"]+)"', excerpt)))


def _loop_passes(repo: Path, loop_ids: tuple[str, ...]) -> None:
    """The loop passes the fleet's pass 2 runs first, run alone as it runs them (the same
    library call, trace ids and defaults), without the fleet write that follows them."""
    code = (
        "import sys; from pathlib import Path\n"
        "from ops_manager.engine.fleet_reconcile import ("
        "FleetReconcileSettings, LoopContext, loop_defaults_from_env, run_loop)\n"
        "from ops_manager.engine.fleet_registry import load_registry\n"
        "from ops_manager.engine.reconcile import reconcile\n"
        "from ops_manager._timefmt import utc_now_epoch\n"
        "import os\n"
        "repo = Path(sys.argv[1]); wanted = sys.argv[2:]\n"
        "settings = FleetReconcileSettings(repo=repo, max_parallel=1, trace_id='p2')\n"
        "ctx = LoopContext(repo=repo, fleet_trace_id='p2', settings=settings,"
        " defaults=loop_defaults_from_env(os.environ), env=os.environ,"
        " clock=utc_now_epoch, reconcile_fn=reconcile)\n"
        "for loop in load_registry(repo, None)['loops']:\n"
        "    if loop['loopId'] in wanted:\n"
        "        assert run_loop(loop, ctx)['status'] == 'success'\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(repo), *loop_ids],
        env=_env("p2"),
        check=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_sigkill_at_any_commit_point_of_a_fleet_command_leaves_the_previous_run_or_the_next(
    tmp_path: Path, command: str
) -> None:
    template = _before_pass_2(tmp_path / "template")
    made: list[str] = []

    def fresh(name: str) -> Path:
        # same-length paths: rows record the repo path, and stream positions count its bytes
        made.append(name)
        dest = tmp_path / f"h{len(made):03d}"
        shutil.copytree(template, dest, symlinks=True)
        return dest

    def pass_2(repo: Path) -> Runner:
        return lambda args: _run(repo, command, "p2", args)

    counted = fresh("counted")
    counts = count_commit_calls(pass_2(counted), tmp_path / "count.log")
    histories = {"committed": _after(counted), "not committed": _after(fresh("skipped"))}
    if command == "fleet-reconcile":
        first = fresh("first loop only")
        _loop_passes(first, LOOPS[:1])
        both = fresh("both loops, not the fleet")
        _loop_passes(both, LOOPS)
        histories["loop-a's pass committed, loop-b's not"] = _after(first)
        histories["both loop passes committed, the fleet's not"] = _after(both)
    assert len({json.dumps(h, sort_keys=True) for h in histories.values()}) == len(histories)
    assert counts["fsync"] >= 1 and counts["rename"] >= 1, counts

    divergent: list[str] = []
    outcomes = dict.fromkeys(histories, 0)
    for call in COMMIT_CALLS:
        for k in range(1, counts[call] + 1):
            repo = fresh(f"{call}-{k}")
            assert _run(repo, command, "p2", kill_at(call, k)) != 0, f"{call} #{k}: not killed"
            got = _after(repo)
            match = [name for name, history in histories.items() if got == history]
            if match:
                outcomes[match[0]] += 1
            else:
                divergent.append(f"{call} #{k}: {nearest(got, histories)}")
    total = sum(counts.values())
    print(f"\n{command}: commit points covered: {total} ({counts}); outcomes: {outcomes}")
    assert not divergent, divergent
    assert sum(outcomes.values()) == total
    # every legitimate outcome a kill can leave was reached by some kill
    assert all(outcomes.values()), outcomes
