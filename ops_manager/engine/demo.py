"""The embedded demo: small, realistic Superloop runtime repos and a tour of the tool.

One loop run per sprite is the deployment model, so the demo writes one repo per loop,
each the way the real runtime does (pretty JSON state files, compact
``events.jsonl``, ``run_id`` = loop start time, string booleans inside ``data``):

- ``api-refactor``: iterating right now, heartbeat fresh -> healthy;
- ``docs-sweep``: waiting for an operator's approval -> healthy, state awaiting_approval;
- ``flaky-migration``: died mid-iteration two hours ago, ``state.json`` still says
  active (runtime-observed §2) -> lifecycle says running, health says critical.

Then it reconciles each loop, appends new events to one of them and reconciles again
(incremental), and returns per-loop status. Everything is relative to ``now``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops_manager._timefmt import format_ts
from ops_manager.store import Stream

JSON = dict[str, Any]


def _event(loop: str, run_id: str, ts: int, name: str, iteration: int, **extra: Any) -> JSON:
    row: JSON = {
        "timestamp": format_ts(ts),
        "event": name,
        "loop_id": loop,
        "run_id": run_id,
        "iteration": iteration,
    }
    for key in ("role", "status"):
        if key in extra:
            row[key] = extra.pop(key)
    if extra.get("data") is not None:
        row["data"] = extra["data"]
    return row


def iteration_events(
    loop: str, run_id: str, start: int, iteration: int, *, complete: bool
) -> list[JSON]:
    """One runtime iteration: roles, promise, tests, gates, end (runtime-observed shapes)."""
    ts = start
    out = [
        _event(loop, run_id, ts, "iteration_start", iteration, data={"started_at": format_ts(ts)})
    ]
    for role in ("planner", "implementer", "tester", "reviewer"):
        base = f".superloop/loops/{loop}/logs/iter-{iteration}/{role}"
        ts += 40
        out.append(
            _event(
                loop,
                run_id,
                ts,
                "role_start",
                iteration,
                role=role,
                data={
                    "prompt_file": f"{base}.prompt.md",
                    "log_file": f"{base}.log",
                    "last_message_file": f"{base}.last.md",
                },
            )
        )
        ts += 200
        out.append(
            _event(
                loop,
                run_id,
                ts,
                "role_end",
                iteration,
                role=role,
                data={"log_file": f"{base}.log", "last_message_file": f"{base}.last.md"},
            )
        )
    ts += 5
    out.append(
        _event(
            loop,
            run_id,
            ts,
            "promise_checked",
            iteration,
            data={
                "expected": "SUPERLOOP_COMPLETE",
                "text": "SUPERLOOP_COMPLETE" if complete else None,
                "matched": complete,
            },
        )
    )
    out.append(
        _event(
            loop,
            run_id,
            ts,
            "tests_start",
            iteration,
            data={"mode": "on_promise", "commands": ["pytest -q"]},
        )
    )
    ts += 30
    out.append(
        _event(
            loop,
            run_id,
            ts,
            "tests_end",
            iteration,
            data={"status": "ok" if complete else "failed", "details": None},
        )
    )
    gates = {
        "promise": "ok" if complete else "missing",
        "tests": "ok" if complete else "failed",
        "validation": "skipped",
        "prerequisites": "skipped",
        "checklist": "ok",
        "evidence": "skipped",
        "lifecycle": "skipped",
        "approval": "none",
        "stuck": "ok",
    }
    out.append(_event(loop, run_id, ts, "gates_evaluated", iteration, data=gates))
    out.append(
        _event(
            loop,
            run_id,
            ts,
            "iteration_end",
            iteration,
            data={
                "started_at": format_ts(start),
                "ended_at": format_ts(ts),
                "completion": complete,
                **{k: v for k, v in gates.items() if k != "stuck"},
            },
        )
    )
    return out


def _loop_start(loop: str, run_id: str, ts: int) -> JSON:
    return _event(
        loop,
        run_id,
        ts,
        "loop_start",
        0,
        data={
            "spec_file": f".superloop/loops/{loop}/spec.md",
            "max_iterations": 20,
            "tests_mode": "on_promise",
            "test_commands": ["pytest -q"],
            "checklists": [],
            "prerequisites": {"enabled": "false", "require_on_completion": "false"},
            "lifecycle": {
                "feature_prefix": "feat/",
                "main_ref": "main",
                "no_fetch": "true",
                "strict": "false",
                "block_on_failure": "false",
            },
        },
    )


def _summary_entry(
    run_id: str, iteration: int, started: int, ended: int, *, complete: bool
) -> JSON:
    return {
        "run_id": run_id,
        "iteration": iteration,
        "started_at": format_ts(started),
        "ended_at": format_ts(ended),
        "promise": {"expected": "SUPERLOOP_COMPLETE", "text": None, "matched": complete},
        "gates": {
            "tests": "ok" if complete else "failed",
            "validation": "skipped",
            "prerequisites": "skipped",
            "checklist": "ok",
            "evidence": "skipped",
            "lifecycle": "skipped",
            "approval": "none",
        },
        "tests_mode": "on_promise",
        "stuck": {"streak": 0, "threshold": 3},
        "delegation": {},
        "completion_ok": complete,
        "artifacts": {},
    }


def _write_pretty(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def _write_events(path: Path, events: list[JSON]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for row in events:
            handle.write(json.dumps(row, separators=(",", ":")) + "\n")


def _mid_iteration(
    loop: str, run_id: str, started: int, role_at: int, role: str, files: str
) -> list[JSON]:
    """``iteration_start`` of iteration 2, then ``role_start`` of ``role`` (still running)."""
    return [
        _event(
            loop, run_id, started, "iteration_start", 2, data={"started_at": format_ts(started)}
        ),
        _event(
            loop,
            run_id,
            role_at,
            "role_start",
            2,
            role=role,
            data={
                "prompt_file": f"{files}.md",
                "log_file": f"{files}.log",
                "last_message_file": f"{files}.last",
            },
        ),
    ]


def _write_run_summary(loop_dir: Path, loop: str, updated_at: int, entry: JSON) -> None:
    _write_pretty(
        loop_dir / "run-summary.json",
        {"version": 1, "loop_id": loop, "updated_at": format_ts(updated_at), "entries": [entry]},
    )


def _write_heartbeat(loop_dir: Path, at: int) -> None:
    _write_pretty(
        loop_dir / "heartbeat.v1.json",
        {
            "schemaVersion": "v1",
            "timestamp": format_ts(at),
            "source": "runtime",
            "status": "running",
            "stage": "iteration",
        },
    )


def build_demo(root: Path, now: int) -> dict[str, tuple[Path, str]]:
    """Create one runtime repo per demo loop under ``root`` (replacing an earlier demo).

    Returns loop id -> (repo path, a one-line description of what the loop is doing).
    """
    import shutil

    loops: dict[str, tuple[Path, str]] = {}

    def fresh(loop: str) -> Path:
        repo = root / loop
        if (repo / ".superloop").exists():
            shutil.rmtree(repo / ".superloop")
        repo.mkdir(parents=True, exist_ok=True)
        return repo / ".superloop"

    # api-refactor: iterating now (the runtime's state.json points at it)
    loop, start = "api-refactor", now - 1500
    sl = fresh(loop)
    run_id = format_ts(start)
    events = [_loop_start(loop, run_id, start)]
    events += iteration_events(loop, run_id, start + 10, 1, complete=False)
    events += _mid_iteration(loop, run_id, now - 100, now - 60, "planner", "p")
    _write_events(sl / "loops" / loop / "events.jsonl", events)
    _write_run_summary(
        sl / "loops" / loop,
        loop,
        start + 900,
        _summary_entry(run_id, 1, start + 10, start + 900, complete=False),
    )
    _write_heartbeat(sl / "loops" / loop, now - 20)
    _write_pretty(
        sl / "state.json",
        {
            "active": True,
            "loop_index": 0,
            "iteration": 2,
            "current_loop_id": loop,
            "updated_at": format_ts(now - 100),
        },
    )
    _write_pretty(
        sl / "active-run.json",
        {
            "repo": str(sl.parent),
            "pid": 4242,
            "pgid": 4242,
            "loop_id": loop,
            "iteration": 1,
            "stage": "loop_start",
            "updated_at": format_ts(start),
        },
    )
    loops[loop] = (sl.parent, "iterating now, heartbeat fresh")

    # docs-sweep: finished an iteration and asked for approval
    loop, start = "docs-sweep", now - 3000
    sl = fresh(loop)
    run_id = format_ts(start)
    events = [_loop_start(loop, run_id, start)]
    events += iteration_events(loop, run_id, start + 10, 1, complete=True)
    approval_at = start + 960
    events.append(
        _event(
            loop,
            run_id,
            approval_at,
            "approval_requested",
            1,
            data={
                "approval_file": f".superloop/loops/{loop}/approval.json",
                "promise": "ok",
                "tests": "ok",
            },
        )
    )
    events.append(
        _event(
            loop,
            run_id,
            approval_at,
            "approval_wait",
            1,
            data={"status": "pending", "approval_file": f".superloop/loops/{loop}/approval.json"},
        )
    )
    # a fresh `run` while approval is pending logs loop_start + approval_wait again
    events.append(_loop_start(loop, format_ts(now - 120), now - 120))
    events.append(
        _event(
            loop,
            format_ts(now - 120),
            now - 119,
            "approval_wait",
            1,
            data={"status": "pending", "approval_file": f".superloop/loops/{loop}/approval.json"},
        )
    )
    _write_events(sl / "loops" / loop / "events.jsonl", events)
    _write_run_summary(
        sl / "loops" / loop,
        loop,
        approval_at,
        _summary_entry(run_id, 1, start + 10, approval_at, complete=False),
    )
    _write_pretty(
        sl / "loops" / loop / "approval.json",
        {
            "status": "pending",
            "loop_id": loop,
            "run_id": run_id,
            "iteration": 1,
            "requested_at": format_ts(approval_at),
            "iteration_started_at": format_ts(start + 10),
            "iteration_ended_at": format_ts(approval_at),
            "candidate": {
                "promise": {
                    "expected": "SUPERLOOP_COMPLETE",
                    "text": "SUPERLOOP_COMPLETE",
                    "matched": True,
                },
                "gates": {
                    "tests": "ok",
                    "validation": "skipped",
                    "prerequisites": "skipped",
                    "checklist": "ok",
                    "evidence": "skipped",
                    "lifecycle": "skipped",
                },
            },
            "files": {},
        },
    )
    # approval_wait leaves the runtime inactive
    _write_pretty(
        sl / "state.json",
        {
            "active": False,
            "loop_index": 0,
            "iteration": 1,
            "current_loop_id": loop,
            "updated_at": format_ts(now - 119),
        },
    )
    loops[loop] = (sl.parent, "waiting for an operator's approval")

    # flaky-migration: the runner died mid-iteration two hours ago; nothing says so but silence
    loop, start = "flaky-migration", now - 9000
    sl = fresh(loop)
    run_id = format_ts(start)
    events = [_loop_start(loop, run_id, start)]
    events += iteration_events(loop, run_id, start + 10, 1, complete=False)
    died = now - 7200
    events += _mid_iteration(loop, run_id, died - 60, died, "implementer", "i")
    _write_events(sl / "loops" / loop / "events.jsonl", events)
    _write_run_summary(
        sl / "loops" / loop,
        loop,
        start + 900,
        _summary_entry(run_id, 1, start + 10, start + 900, complete=False),
    )
    _write_heartbeat(sl / "loops" / loop, died)
    # a run that dies leaves state.json active and writes no terminal event (runtime-observed §2)
    _write_pretty(
        sl / "state.json",
        {
            "active": True,
            "loop_index": 0,
            "iteration": 2,
            "current_loop_id": loop,
            "updated_at": format_ts(died - 60),
        },
    )
    loops[loop] = (sl.parent, "runner died 2h ago; state.json still says active")
    return loops


def append_progress(repo: Path, loop: str, now: int) -> int:
    """Append a few new events to a loop (the runtime moving on); returns how many."""
    events_file = repo / ".superloop" / "loops" / loop / "events.jsonl"
    last = json.loads(Stream(events_file).last() or b"")  # the demo wrote whole lines
    run_id = last["run_id"]
    new = [
        _event(
            loop,
            run_id,
            now - 30,
            "role_end",
            2,
            role="planner",
            data={"log_file": "p.log", "last_message_file": "p.last"},
        ),
        _event(
            loop,
            run_id,
            now - 25,
            "role_start",
            2,
            role="implementer",
            data={"prompt_file": "i.md", "log_file": "i.log", "last_message_file": "i.last"},
        ),
    ]
    _write_events(events_file, new)
    _write_heartbeat(repo / ".superloop" / "loops" / loop, now - 5)
    return len(new)
