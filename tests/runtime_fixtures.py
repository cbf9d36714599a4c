"""Builders for realistic Superloop runtime trees in a temp dir (shared by the test suite).

Shapes follow ``loop.md`` §1 and, where the real runtime differs, ``runtime-observed.md``:
JSON files pretty-printed, ``events.jsonl`` compact, ``gates.lifecycle`` present,
``delegation: {}`` when off, string ``"true"``/``"false"`` inside ``loop_start`` data, a
summary entry only for iterations that ended normally.

    from tests.runtime_fixtures import make_runtime_repo, event, append_events
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops_manager._timefmt import format_ts, parse_ts

#: the stamp the upstream fixtures use for their runs
BASE_TS = "2026-02-22T10:00:00Z"
ROLES = ("planner", "implementer", "tester", "reviewer")


class _Default:
    """Sentinel: "use the standard fixture value" (``None`` means "write no file")."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def ts(offset_seconds: int = 0, base: str = BASE_TS) -> str:
    """``base`` plus ``offset_seconds``, as a contract timestamp."""
    epoch = parse_ts(base)
    assert epoch is not None, base
    return format_ts(epoch + offset_seconds)


def event(
    name: str,
    timestamp: str,
    *,
    run_id: str | None = "run-123",
    iteration: Any = 1,
    role: str | None = None,
    status: str | None = None,
    message: str | None = None,
    data: Any = None,
    loop_id: str = "demo-loop",
) -> dict[str, Any]:
    """One event object in the runtime's key order, with its null-stripping (§1.2)."""
    raw: dict[str, Any] = {
        "timestamp": timestamp,
        "event": name,
        "loop_id": loop_id,
        "run_id": run_id,
        "iteration": iteration,
    }
    if role:
        raw["role"] = role
    if status:
        raw["status"] = status
    if message:
        raw["message"] = message
    if data is not None:
        raw["data"] = data
    return {k: v for k, v in raw.items() if v is not None}


def compact(obj: Any) -> str:
    """The runtime's ``.jsonl`` form of one object (no trailing newline)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def pretty(obj: Any) -> str:
    """The runtime's pretty form of a JSON file (with trailing newline)."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def loop_dir(repo: Path, loop_id: str = "demo-loop") -> Path:
    """``<repo>/.superloop/loops/<loop>``."""
    return repo / ".superloop" / "loops" / loop_id


def events_path(repo: Path, loop_id: str = "demo-loop") -> Path:
    """``<repo>/.superloop/loops/<loop>/events.jsonl``."""
    return loop_dir(repo, loop_id) / "events.jsonl"


def events_bytes(events: list[dict[str, Any]]) -> bytes:
    """``events`` as ``events.jsonl`` content (one compact line each, ``\\n``-terminated)."""
    return "".join(compact(e) + "\n" for e in events).encode("utf-8")


def append_events(repo: Path, loop_id: str, events: list[dict[str, Any]]) -> None:
    """Append events the way the runtime does (``>>``, compact lines)."""
    append_raw(repo, loop_id, events_bytes(events))


def append_raw(repo: Path, loop_id: str, data: bytes) -> None:
    """Append raw bytes to ``events.jsonl`` (torn writes, blank lines, garbage...)."""
    path = events_path(repo, loop_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(data)


def write_events_raw(repo: Path, loop_id: str, data: bytes) -> Path:
    """Replace ``events.jsonl`` with ``data``; returns its path."""
    path = events_path(repo, loop_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_pretty(path: Path, obj: Any) -> Path:
    """Write ``obj`` pretty-printed (the runtime's JSON-file form); parents created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pretty(obj), encoding="utf-8")
    return path


def gates(
    *,
    tests: str = "passed",
    validation: str = "skipped",
    prerequisites: str = "skipped",
    checklist: str = "ok",
    evidence: str = "skipped",
    lifecycle: str | None = "skipped",
    approval: str = "skipped",
) -> dict[str, str]:
    """A gates object as the real runtime writes it (with ``lifecycle`` unless ``None``)."""
    out = {
        "tests": tests,
        "validation": validation,
        "prerequisites": prerequisites,
        "checklist": checklist,
        "evidence": evidence,
        "lifecycle": lifecycle,
        "approval": approval,
    }
    return {k: v for k, v in out.items() if v is not None}


def summary_entry(
    run_id: str = "run-123",
    iteration: int = 1,
    *,
    completion_ok: bool = False,
    started_at: str = BASE_TS,
    ended_at: str | None = None,
    gate_values: dict[str, str] | None = None,
    promise_matched: bool = False,
    stuck_streak: int = 0,
    stuck_threshold: int = 3,
) -> dict[str, Any]:
    """One ``run-summary.json`` entry in the runtime's shape (``delegation: {}`` when off)."""
    return {
        "run_id": run_id,
        "iteration": iteration,
        "started_at": started_at,
        "ended_at": ended_at if ended_at is not None else ts(60, started_at),
        "promise": {
            "expected": "SUPERLOOP_COMPLETE",
            "text": "SUPERLOOP_COMPLETE" if promise_matched else None,
            "matched": promise_matched,
        },
        "gates": gate_values if gate_values is not None else gates(),
        "tests_mode": "on_promise",
        "stuck": {"streak": stuck_streak, "threshold": stuck_threshold},
        "delegation": {},
        "completion_ok": completion_ok,
        "artifacts": {
            "plan": {
                "path": ".superloop/loops/demo-loop/plan.md",
                "exists": True,
                "sha256": "0" * 64,
                "mtime": started_at,
            },
            "test_report": {
                "path": ".superloop/loops/demo-loop/test-report.md",
                "exists": False,
                "gate": "tests",
            },
        },
    }


def default_events(loop_id: str = "demo-loop", run_id: str = "run-123") -> list[dict[str, Any]]:
    """The upstream contract fixture: ``loop_start``, ``iteration_start``, ``role_end``."""
    return [
        event(
            "loop_start",
            ts(0),
            loop_id=loop_id,
            run_id=run_id,
            iteration=0,
            data=loop_start_data(loop_id),
        ),
        event("iteration_start", ts(1), loop_id=loop_id, run_id=run_id, data={"started_at": ts(1)}),
        event(
            "role_end",
            ts(5),
            loop_id=loop_id,
            run_id=run_id,
            role="planner",
            data=_role_files(loop_id, 1, "planner", end=True),
        ),
    ]


def make_runtime_repo(
    root: Path,
    loop_id: str = "demo-loop",
    *,
    active: bool | None = True,
    events: list[dict[str, Any]] | None = None,
    summary_entries: Any = DEFAULT,
    approval: dict[str, Any] | None = None,
    heartbeat: dict[str, Any] | None = None,
    run_id: str = "run-123",
    iteration: int = 1,
) -> Path:
    """Write a runtime tree under ``root`` and return ``root`` (the repo path).

    - ``.superloop/state.json`` (pretty): ``active`` true/false; ``None`` writes no state file
      (what ``superloop cancel`` leaves behind);
    - ``.superloop/active-run.json`` only while ``active`` is true;
    - ``events.jsonl``: ``events`` (default: :func:`default_events`; ``[]`` = empty file);
    - ``run-summary.json`` + ``run-summary-entry.json``: ``summary_entries`` (default: one
      entry ``run-123``/iteration 1/``completion_ok: false``; ``None`` = no file);
    - ``approval.json`` / ``heartbeat.v1.json`` when given.
    """
    root.mkdir(parents=True, exist_ok=True)
    superloop = root / ".superloop"
    ldir = loop_dir(root, loop_id)
    ldir.mkdir(parents=True, exist_ok=True)
    if active is not None:
        write_pretty(
            superloop / "state.json",
            {
                "active": active,
                "loop_index": 0,
                "iteration": iteration,
                "current_loop_id": loop_id,
                "updated_at": ts(1),
            },
        )
    if active:
        write_pretty(
            superloop / "active-run.json",
            {
                "repo": str(root),
                "pid": 4242,
                "pgid": 4242,
                "loop_id": loop_id,
                "iteration": 1,
                "stage": "loop_start",
                "updated_at": ts(0),
            },
        )
    evs = default_events(loop_id, run_id) if events is None else events
    (ldir / "events.jsonl").write_bytes(events_bytes(evs))
    if summary_entries is DEFAULT:
        summary_entries = [summary_entry(run_id, iteration)]
    if summary_entries is not None:
        write_pretty(
            ldir / "run-summary.json",
            {
                "version": 1,
                "loop_id": loop_id,
                "updated_at": ts(120),
                "entries": summary_entries,
            },
        )
        if summary_entries:
            write_pretty(ldir / "run-summary-entry.json", summary_entries[-1])
    if approval is not None:
        write_pretty(ldir / "approval.json", approval)
    if heartbeat is not None:
        write_pretty(ldir / "heartbeat.v1.json", heartbeat)
    return root


def pending_approval(
    loop_id: str = "demo-loop", run_id: str = "run-123", iteration: int = 1
) -> dict[str, Any]:
    """An ``approval.json`` awaiting a decision (§1.6)."""
    d = f".superloop/loops/{loop_id}"
    return {
        "status": "pending",
        "loop_id": loop_id,
        "run_id": run_id,
        "iteration": iteration,
        "requested_at": ts(100),
        "iteration_started_at": ts(1),
        "iteration_ended_at": ts(99),
        "candidate": {
            "promise": {
                "expected": "SUPERLOOP_COMPLETE",
                "text": "SUPERLOOP_COMPLETE",
                "matched": True,
            },
            "gates": {k: v for k, v in gates().items() if k != "approval"},
        },
        "files": {
            "gate_summary": f"{d}/gate-summary.txt",
            "evidence": f"{d}/evidence.json",
            "reviewer_report": f"{d}/review.md",
            "test_report": f"{d}/test-report.md",
            "plan": f"{d}/plan.md",
            "iteration_notes": f"{d}/iteration_notes.md",
        },
    }


def runtime_heartbeat(timestamp: str = "2026-02-22T11:00:04Z") -> dict[str, Any]:
    """The heartbeat file shape the upstream tests write by hand (§1.7)."""
    return {
        "schemaVersion": "v1",
        "timestamp": timestamp,
        "source": "runtime",
        "status": "running",
        "stage": "iteration",
    }


def loop_start_data(loop_id: str = "demo-loop") -> dict[str, Any]:
    """``loop_start.data`` as the real runtime writes it (string booleans included)."""
    return {
        "spec_file": f".superloop/loops/{loop_id}/spec.md",
        "max_iterations": 5,
        "tests_mode": "on_promise",
        "test_commands": ["bats tests"],
        "checklists": [f".superloop/loops/{loop_id}/checklist.md"],
        "prerequisites": {"enabled": "false", "require_on_completion": "false"},
        "delegation": {
            "enabled": "false",
            "dispatch_mode": "serial",
            "wake_policy": "on_wave_complete",
            "failure_policy": "warn_and_continue",
            "max_children": 1,
            "max_parallel": 1,
            "max_waves": 1,
            "child_timeout_seconds": 300,
            "retry_limit": 0,
            "retry_backoff_seconds": 0,
            "retry_backoff_max_seconds": 30,
        },
        "rlms": {"enabled": "false", "mode": "auto"},
        "lifecycle": {
            "feature_prefix": "feat/",
            "main_ref": "origin/main",
            "no_fetch": "false",
            "strict": "false",
            "block_on_failure": "true",
        },
        "git": {
            "commit_strategy": "per_run",
            "commit_message": {
                "authoring": "llm",
                "author_role": "implementer",
                "timeout_seconds": 60,
            },
        },
    }


def _role_files(loop_id: str, iteration: int, role: str, *, end: bool = False) -> dict[str, str]:
    d = f".superloop/loops/{loop_id}"
    files = {
        "log_file": f"{d}/logs/iter-{iteration}/{role}.log",
        "last_message_file": f"{d}/last_messages/{role}.txt",
    }
    if not end:
        files = {"prompt_file": f"{d}/prompts/{role}.md", **files}
    return files


#: outcomes :func:`realistic_run_events` can produce
OUTCOMES = (
    "complete",
    "max_iterations",
    "no_progress",
    "role_timeout",
    "died",
    "approval_requested",
    "approval_consumed",
    "stuck",
    "approval_wait",
)


def realistic_run_events(
    *,
    loop_id: str = "demo-loop",
    run_id: str = BASE_TS,
    start: str = BASE_TS,
    iterations: int = 2,
    outcome: str = "complete",
    max_iterations: int | None = None,
) -> list[dict[str, Any]]:
    """A plausible event sequence of one ``superloop run`` (runtime-observed.md).

    Each full iteration: ``iteration_start``, ``role_start``/``role_end`` for planner,
    implementer, tester, reviewer, ``promise_checked``, ``tests_start``/``tests_end``,
    ``checklist_start``/``checklist_end``, ``stuck_checked``, ``gates_evaluated``,
    ``iteration_end``. The last iteration ends according to ``outcome`` (see
    :data:`OUTCOMES`): ``complete`` -> ``loop_complete``; ``max_iterations`` -> ``loop_stop``
    with ``iteration = max + 1``; ``no_progress`` -> ``no_progress_stop`` (status
    ``blocked``) + ``loop_stop`` without ``gates_evaluated``/``iteration_end``;
    ``role_timeout`` -> ``role_timeout`` as the last line; ``died`` -> the log ends at a
    ``role_start``; ``approval_requested`` -> ``approval_requested`` + ``iteration_end``;
    ``approval_consumed`` -> a second run (new ``run_id``) consuming the approval with the
    old ``run_id``/iteration; ``stuck`` -> ``stuck_checked`` triggered + ``loop_stop``
    (reason ``stuck``) without ``gates_evaluated``/``iteration_end``; ``approval_wait`` ->
    ``approval_requested`` as above, then a later ``run`` while the approval is pending:
    ``loop_start`` + ``approval_wait``.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    clock = [0]

    def at() -> str:
        clock[0] += 3
        return ts(clock[0], start)

    def ev(name: str, iteration: int, **kw: Any) -> dict[str, Any]:
        return event(name, at(), run_id=run_id, iteration=iteration, loop_id=loop_id, **kw)

    max_iter = max_iterations if max_iterations is not None else max(iterations, 1)
    data0 = loop_start_data(loop_id)
    data0["max_iterations"] = max_iter
    out = [
        event("loop_start", ts(0, start), run_id=run_id, iteration=0, loop_id=loop_id, data=data0)
    ]
    d = f".superloop/loops/{loop_id}"
    for it in range(1, iterations + 1):
        last = it == iterations
        started = at()
        out.append(
            event(
                "iteration_start",
                started,
                run_id=run_id,
                iteration=it,
                loop_id=loop_id,
                data={"started_at": started},
            )
        )
        for role in ROLES:
            out.append(ev("role_start", it, role=role, data=_role_files(loop_id, it, role)))
            if last and outcome == "died" and role == "implementer":
                return out
            if last and outcome == "role_timeout" and role == "implementer":
                out.append(
                    ev(
                        "role_timeout",
                        it,
                        role=role,
                        status="timeout",
                        data={"role": role, "timeout_seconds": 900},
                    )
                )
                return out
            out.append(ev("role_end", it, role=role, data=_role_files(loop_id, it, role, end=True)))
        matched = last and outcome in (
            "complete",
            "approval_requested",
            "approval_consumed",
            "approval_wait",
        )
        out.append(
            ev(
                "promise_checked",
                it,
                data={
                    "expected": "SUPERLOOP_COMPLETE",
                    "text": "SUPERLOOP_COMPLETE" if matched else "",
                    "matched": matched,
                },
            )
        )
        out.append(ev("tests_start", it, data={"mode": "on_promise", "commands": ["bats tests"]}))
        out.append(
            ev(
                "tests_end",
                it,
                data={"status": "ok" if matched else "skipped", "details": f"{d}/test-status.json"},
            )
        )
        out.append(ev("checklist_start", it, data={"patterns": [f"{d}/checklist.md"]}))
        out.append(
            ev(
                "checklist_end",
                it,
                data={
                    "status": "ok" if matched else "remaining",
                    "ok": matched,
                    "details": f"{d}/checklist-status.json",
                },
            )
        )
        if last and outcome == "stuck":
            out.append(
                ev(
                    "stuck_checked",
                    it,
                    data={"streak": 3, "threshold": 3, "triggered": True, "action": "stop"},
                )
            )
            out.append(ev("loop_stop", it, data={"reason": "stuck", "streak": 3, "threshold": 3}))
            return out
        if last and outcome == "no_progress":
            out.append(
                ev(
                    "stuck_checked",
                    it,
                    data={"streak": 3, "threshold": 3, "triggered": True, "action": "stop"},
                )
            )
            out.append(
                ev(
                    "no_progress_stop",
                    it,
                    status="blocked",
                    data={
                        "reason": "checklist_remaining_no_change",
                        "code_signature": "a1b2c3",
                        "test_signature": "d4e5f6",
                        "streak": 3,
                        "threshold": 3,
                    },
                )
            )
            out.append(
                ev("loop_stop", it, data={"reason": "no_progress", "streak": 3, "threshold": 3})
            )
            return out
        out.append(
            ev(
                "stuck_checked",
                it,
                data={"streak": 0, "threshold": 3, "triggered": False, "action": "none"},
            )
        )
        gate_state = "passed" if matched else "skipped"
        out.append(
            ev(
                "gates_evaluated",
                it,
                data={
                    "promise": "matched" if matched else "unmatched",
                    "tests": gate_state,
                    "validation": "skipped",
                    "prerequisites": "skipped",
                    "checklist": "ok" if matched else "remaining",
                    "evidence": "skipped",
                    "lifecycle": "skipped",
                    "approval": "pending" if outcome.startswith("approval") and last else "skipped",
                    "stuck": "ok",
                },
            )
        )
        if last and outcome in ("approval_requested", "approval_consumed", "approval_wait"):
            out.append(
                ev(
                    "approval_requested",
                    it,
                    data={
                        "approval_file": f"{d}/approval.json",
                        "promise": "matched",
                        "tests": "passed",
                        "validation": "skipped",
                        "prerequisites": "skipped",
                        "checklist": "ok",
                        "evidence": "skipped",
                        "lifecycle": "skipped",
                    },
                )
            )
        out.append(
            ev(
                "iteration_end",
                it,
                data={
                    "started_at": started,
                    "ended_at": at(),
                    "completion": matched,
                    "promise": matched,
                    "tests": matched,
                    "validation": True,
                    "prerequisites": True,
                    "checklist": matched,
                    "evidence": True,
                    "lifecycle": True,
                    "approval": not (outcome.startswith("approval") and last),
                },
            )
        )
        if last and outcome == "complete":
            out.append(ev("loop_complete", it, data={"iteration": it, "run_id": run_id}))
        if last and outcome == "max_iterations":
            out.append(
                ev(
                    "loop_stop",
                    max_iter + 1,
                    data={"reason": "max_iterations", "max_iterations": max_iter},
                )
            )
    if outcome == "approval_wait":
        # a later `superloop run` while the approval is pending: loop_start + approval_wait
        again = ts(clock[0] + 600, start)
        out.append(
            event(
                "loop_start",
                again,
                run_id=again,
                iteration=0,
                loop_id=loop_id,
                data=loop_start_data(loop_id),
            )
        )
        out.append(
            event(
                "approval_wait",
                ts(clock[0] + 601, start),
                run_id=again,
                iteration=iterations,
                loop_id=loop_id,
                data={"status": "pending", "approval_file": f"{d}/approval.json"},
            )
        )
    if outcome == "approval_consumed":
        # a later `superloop run`: new run_id on loop_start, old run_id/iteration afterwards
        new_run = ts(clock[0] + 600, start)
        out.append(
            event(
                "loop_start",
                new_run,
                run_id=new_run,
                iteration=0,
                loop_id=loop_id,
                data=loop_start_data(loop_id),
            )
        )
        out.append(
            ev(
                "approval_consumed",
                iterations,
                data={
                    "status": "approved",
                    "by": "operator",
                    "note": "ship it",
                    "at": new_run,
                },
            )
        )
        out.append(
            ev(
                "loop_complete",
                iterations,
                data={"iteration": iterations, "run_id": run_id, "approval": True},
            )
        )
    return out


def runtime_tree(
    root: Path,
    outcome: str,
    *,
    start: str,
    iterations: int = 1,
    loop_id: str = "demo-loop",
) -> Path:
    """The runtime tree a real ``superloop run`` leaves behind after ``outcome``.

    Built from :func:`realistic_run_events` (``run_id`` = the start time, as the runtime
    names runs), then what runtime-observed.md says remains on disk:

    - ``state.json`` (pretty) ``active: false`` once the run ended on its own (complete,
      stops, role timeout, approval wait), ``iteration: 1`` after completion; a run that
      ``died`` leaves ``active: true``;
    - ``active-run.json`` is always gone (removed at exit; a dead run's too);
    - ``run-summary.json`` has an entry only per iteration that ended normally (not the
      stopping / timed-out / dead one), so with one iteration and such an outcome there is
      no ``run-summary.json`` at all; a completed run's last entry has ``completion_ok``;
    - ``approval.json`` (pending) for ``approval_wait`` / ``approval_requested``.
    """
    evs = realistic_run_events(
        loop_id=loop_id, run_id=start, start=start, iterations=iterations, outcome=outcome
    )
    stopping = outcome in ("no_progress", "stuck", "role_timeout", "died")
    normal = iterations - 1 if stopping else iterations
    entries = [
        summary_entry(
            start,
            it,
            completion_ok=outcome in ("complete", "approval_consumed") and it == iterations,
            promise_matched=it == iterations and not stopping and outcome != "max_iterations",
            started_at=ts(60 * it, start),
        )
        for it in range(1, normal + 1)
    ]
    last_iteration = evs[-1].get("iteration")
    approval = None
    if outcome in ("approval_wait", "approval_requested"):
        approval = pending_approval(loop_id, start, iterations)
        requested = [e for e in evs if e["event"] == "approval_requested"][-1]
        approval["requested_at"] = requested["timestamp"]
        approval["iteration_started_at"] = ts(60 * iterations, start)
        approval["iteration_ended_at"] = requested["timestamp"]
    make_runtime_repo(
        root,
        loop_id,
        active=outcome == "died",
        events=evs,
        summary_entries=entries or None,
        approval=approval,
        run_id=start,
        iteration=1 if outcome == "complete" else int(last_iteration or 1),
    )
    # active-run.json is removed at run exit, and a dead run's never is rewritten either
    (root / ".superloop" / "active-run.json").unlink(missing_ok=True)
    state_file = root / ".superloop" / "state.json"
    state = json.loads(state_file.read_text())
    state["updated_at"] = evs[-1]["timestamp"]
    write_pretty(state_file, state)
    return root
