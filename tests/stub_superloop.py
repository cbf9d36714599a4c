#!/usr/bin/env python3
"""A stub of the Superloop runtime CLI (``superloop.sh cancel|approve``) for control tests.

Behaves like the real runtime (``loop.md`` §1.8, ``runtime-observed.md``) unless a mode says
otherwise:

- ``cancel --repo R``: deletes ``.superloop/state.json`` and ``.superloop/active-run.json``
  (even when nothing runs), writes no event, prints ``Cancelled loop state.``;
- ``approve --repo R --loop L --by B [--reject] [--note N]``: on a pending ``approval.json``,
  rewrites it with ``status`` approved|rejected, ``decision{status,by,note,at}``,
  ``decided_at/by/note``, appends ``decisions.jsonl`` and an ``approval_decision`` event
  (role ``human``, run id / iteration from the approval); errors exactly like the runtime:
  ``--loop is required for approve``, ``no approval request found for loop '<L>'``,
  ``approval request is not pending (status=<s>)`` (exit 1).

Environment switches:

- ``STUB_SUPERLOOP_MODE`` (comma-separated):
  ``complete_on_approve`` (approve also appends a completed run-summary entry and
  ``loop_complete``, so the approve confirms), ``stop_on_cancel`` (cancel writes
  ``state.json`` ``active:false`` and appends ``loop_stop`` instead of deleting: the upstream
  test stub), ``noop`` (print and exit 0, change nothing), ``fail`` (exit 3 with a message);
- ``STUB_SUPERLOOP_DELAY``: seconds to sleep before acting (slow or hung runtime);
- ``STUB_SUPERLOOP_LOG``: append one JSON line per call (``{"argv": [...]}``) so tests can
  count executions.

Test usage: ``SUPERLOOP_BIN`` must be one executable path, so write a tiny wrapper script
that runs ``exec <python> <this file> "$@"`` (see ``tests/test_control_cli.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_pretty(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _log_event(
    loop_dir: Path,
    name: str,
    loop_id: str,
    run_id: str,
    iteration: int,
    *,
    role: str = "",
    status: str = "",
    data: Any = None,
) -> None:
    raw: dict[str, Any] = {
        "timestamp": _now(),
        "event": name,
        "loop_id": loop_id,
        "run_id": run_id,
        "iteration": iteration,
    }
    if role:
        raw["role"] = role
    if status:
        raw["status"] = status
    if data is not None:
        raw["data"] = data
    loop_dir.mkdir(parents=True, exist_ok=True)
    with open(loop_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(raw, separators=(",", ":")) + "\n")


def _opts(argv: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {"reject": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--reject":
            opts["reject"] = True
            i += 1
        elif arg in ("--repo", "--loop", "--by", "--note"):
            if i + 1 >= len(argv):
                _die(f"{arg} requires a value")
            opts[arg[2:]] = argv[i + 1]
            i += 2
        else:
            _die(f"unknown argument: {arg}")
    return opts


def _die(message: str, code: int = 1) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def _cancel(repo: Path, modes: set[str]) -> int:
    superloop = repo / ".superloop"
    state_file = superloop / "state.json"
    if "stop_on_cancel" in modes:
        loop_id = os.environ.get("STUB_SUPERLOOP_LOOP", "demo-loop")
        iteration = 1
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            loop_id = state.get("current_loop_id") or loop_id
            iteration = int(state.get("iteration") or 1)
        except (OSError, ValueError):
            pass
        _write_pretty(
            state_file,
            {
                "active": False,
                "loop_index": 0,
                "iteration": iteration,
                "current_loop_id": loop_id,
                "updated_at": _now(),
            },
        )
        (superloop / "active-run.json").unlink(missing_ok=True)
        _log_event(
            superloop / "loops" / loop_id,
            "loop_stop",
            loop_id,
            "run-123",
            iteration,
            data={"reason": "cancelled"},
        )
    else:
        state_file.unlink(missing_ok=True)
        (superloop / "active-run.json").unlink(missing_ok=True)
    print("Cancelled loop state.")
    return 0


def _approve(repo: Path, opts: dict[str, Any], modes: set[str]) -> int:
    loop_id = opts.get("loop")
    if not loop_id:
        _die("--loop is required for approve")
    loop_dir = repo / ".superloop" / "loops" / str(loop_id)
    approval_file = loop_dir / "approval.json"
    if not approval_file.is_file():
        _die(f"no approval request found for loop '{loop_id}'")
    approval = json.loads(approval_file.read_text(encoding="utf-8"))
    current = approval.get("status")
    if current != "pending":
        _die(f"approval request is not pending (status={current})")
    status = "rejected" if opts["reject"] else "approved"
    by = opts.get("by") or os.environ.get("USER") or "unknown"
    note = opts.get("note") or None
    at = _now()
    approval["status"] = status
    approval["decision"] = {"status": status, "by": by, "note": note, "at": at}
    approval["decided_at"] = at
    approval["decided_by"] = by
    approval["decided_note"] = note
    _write_pretty(approval_file, approval)
    with open(loop_dir / "decisions.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(approval["decision"], separators=(",", ":")) + "\n")
    run_id = str(approval.get("run_id") or "unknown")
    iteration = int(approval.get("iteration") or 0)
    _log_event(
        loop_dir,
        "approval_decision",
        str(loop_id),
        run_id,
        iteration,
        role="human",
        status=status,
        data={"status": status, "by": by, "note": note, "at": at},
    )
    if status == "approved" and "complete_on_approve" in modes:
        summary_file = loop_dir / "run-summary.json"
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {"version": 1, "loop_id": loop_id, "entries": []}
        summary["updated_at"] = at
        summary.setdefault("entries", []).append(
            {"run_id": run_id, "iteration": iteration, "ended_at": at, "completion_ok": True}
        )
        _write_pretty(summary_file, summary)
        _log_event(
            loop_dir,
            "loop_complete",
            str(loop_id),
            run_id,
            iteration,
            data={"iteration": iteration, "run_id": run_id, "approval": True},
        )
    print(f"Recorded approval decision for loop '{loop_id}': {status}")
    return 0


def main(argv: list[str]) -> int:
    log = os.environ.get("STUB_SUPERLOOP_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"argv": argv, "pid": os.getpid()}) + "\n")
    modes = {m.strip() for m in os.environ.get("STUB_SUPERLOOP_MODE", "").split(",") if m.strip()}
    delay = float(os.environ.get("STUB_SUPERLOOP_DELAY", "0") or 0)
    if delay > 0:
        time.sleep(delay)
    if "fail" in modes:
        sys.stderr.write("stub superloop: simulated runtime failure\n")
        return 3
    if not argv or argv[0] not in ("cancel", "approve"):
        _die(f"unknown command: {argv[0] if argv else ''}")
    opts = _opts(argv[1:])
    if "noop" in modes:
        print(f"stub superloop: {argv[0]} accepted (noop)")
        return 0
    repo = Path(opts.get("repo") or ".")
    if argv[0] == "cancel":
        return _cancel(repo, modes)
    return _approve(repo, opts, modes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
