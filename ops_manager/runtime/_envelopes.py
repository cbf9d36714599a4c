"""The v1 envelopes (``loop.md`` §2): ``loop_run_snapshot`` and ``loop_run_event``.

Key order is part of the contract and follows §2.2 / §2.3 exactly. The event-envelope
builder takes plain values (repo path string, loop id) so the sprite-side service can build
the same envelopes without a :class:`~ops_manager.store.LoopPaths`.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import alt, nonempty_str
from ops_manager._timefmt import format_ts
from ops_manager.reducers.run_status import (
    coerce_iteration,
    derive_run_identity,
    derive_run_status,
    event_name,
)
from ops_manager.runtime._events import EventLine
from ops_manager.runtime._files import (
    check_runtime_layout,
    last_event,
    latest_summary_entry,
    read_runtime_files,
)
from ops_manager.store import LoopPaths, Stream

SCHEMA_VERSION = "v1"
SEQUENCE_SOURCE = "cursor_event_line_offset"

#: where an envelope comes from: a LoopPaths, or plain ``(repo_path, loop_id)``
Source = LoopPaths | tuple[str, str]


@functools.lru_cache(maxsize=8)
def _emitted_at(now: int) -> str:
    # a poll stamps thousands of envelopes with the same second; format it once
    return format_ts(now)


def envelope_source(source: Source) -> dict[str, str]:
    """The ``source`` object: ``{"repoPath", "loopId"}``."""
    if isinstance(source, LoopPaths):
        return {"repoPath": str(source.repo), "loopId": source.loop_id}
    repo_path, loop_id = source
    return {"repoPath": repo_path, "loopId": loop_id}


def _relative(repo: Path, path: Path) -> str:
    try:
        return str(path.relative_to(repo))
    except ValueError:
        return str(path)


def artifact_ref(
    repo: LoopPaths | Path | str,
    path: Path,
    *,
    full: bool = True,
    line_count: int | None = None,
) -> dict[str, Any]:
    """An ``artifactRef`` (§2.1): ``path, exists, sizeBytes, lineCount, sha256, mtimeEpoch``.

    ``path`` is relative to the repo when the file is inside it. ``full=True`` reads the file
    once for its newline count and sha256. ``full=False`` skips the digest (``sha256: null``)
    and, when the caller already knows it (e.g. from an incremental read), takes
    ``line_count`` instead of reading the file at all. A missing or non-regular file gives
    ``exists: false, sizeBytes: 0, lineCount: 0, sha256: null, mtimeEpoch: null``.
    """
    repo_path = repo.repo if isinstance(repo, LoopPaths) else Path(repo)
    rel = _relative(repo_path, path)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        return {
            "path": rel,
            "exists": False,
            "sizeBytes": 0,
            "lineCount": 0,
            "sha256": None,
            "mtimeEpoch": None,
        }
    sha: str | None = None
    if full or line_count is None:
        try:
            sha, line_count = Stream(path).digest_and_count(want_digest=full)
        except OSError:
            sha, line_count = None, 0
    return {
        "path": rel,
        "exists": True,
        "sizeBytes": st.st_size,
        "lineCount": line_count,
        "sha256": sha,
        "mtimeEpoch": int(st.st_mtime),
    }


def build_snapshot(
    paths: LoopPaths,
    *,
    now: int,
    trace_id: str | None,
    run_id: str | None,
) -> dict[str, Any]:
    """The ``loop_run_snapshot`` envelope of one loop (§2.2, derivations §3.1).

    Fail-closed order: loop dir, ``events.jsonl``, the last complete events line, then each
    optional runtime file. Reads the whole events log once (newline count + sha256): a
    caller asked for a full snapshot. ``trace_id``/``run_id`` of ``None`` or ``""`` mean
    "not given".
    """
    check_runtime_layout(paths)
    last = last_event(paths)
    files = read_runtime_files(paths)
    latest = latest_summary_entry(files.run_summary)
    state = files.superloop_state
    approval = files.approval
    run_id_value, iteration = derive_run_identity(
        run_id_override=run_id, latest=latest, last_event=last, state=state
    )
    status = derive_run_status(
        approval=approval, latest=latest, state=state, last_event=last, loop_id=paths.loop_id
    )
    events_ref = artifact_ref(paths, paths.events_file)
    count = events_ref["lineCount"]
    summary_updated = (
        files.run_summary.get("updated_at") if isinstance(files.run_summary, dict) else None
    )
    last_obj = last if last is not None else {}
    latest_obj = latest if latest is not None else {}
    return {
        "schemaVersion": SCHEMA_VERSION,
        "envelopeType": "loop_run_snapshot",
        "emittedAt": format_ts(now),
        "traceId": nonempty_str(trace_id),
        "source": envelope_source(paths),
        "run": {
            "runId": run_id_value,
            "iteration": iteration,
            "status": status,
            "summary": latest,
        },
        "runtime": {
            "superloopState": state,
            "activeRun": files.active_run,
            "approval": approval,
            "heartbeat": files.heartbeat,
        },
        "artifacts": {
            "events": events_ref,
            "runSummary": artifact_ref(paths, paths.run_summary_file),
            "state": artifact_ref(paths, paths.runtime_state_file),
            "activeRun": artifact_ref(paths, paths.active_run_file),
            "approval": artifact_ref(paths, paths.approval_file),
            "heartbeat": artifact_ref(paths, paths.heartbeat_file),
        },
        "sequence": {"source": SEQUENCE_SOURCE, "value": count},
        "cursor": {"eventLineOffset": count, "eventLineCount": count},
        "health": {
            "eventCount": count,
            "lastEventAt": alt(last_obj.get("timestamp")),
            "lastEventName": event_name(last),
            "lastSummaryAt": alt(summary_updated, latest_obj.get("ended_at")),
            "hasPendingApproval": isinstance(approval, dict)
            and approval.get("status") == "pending",
            "gates": alt(latest_obj.get("gates")),
            "stuck": alt(latest_obj.get("stuck")),
        },
    }


def build_event_envelope(
    source: Source,
    ev: EventLine,
    *,
    total_lines: int,
    now: int,
    trace_id: str | None,
) -> dict[str, Any]:
    """The ``loop_run_event`` envelope of one event (§2.3).

    ``source`` is a :class:`LoopPaths` or ``(repo_path, loop_id)``; ``total_lines`` is the
    events file's newline count when the batch was read. ``event.raw`` is the parsed object
    (printed compactly with the envelope); ``payload`` is ``raw.data`` with ``null``/``false``
    -> ``null`` (any other JSON type passes through). ``role``/``status``/``message`` are the
    raw strings, empty or non-string -> ``null``. ``run.runId`` is ``raw.run_id`` or
    ``"unknown"``; ``run.iteration`` is ``raw.iteration`` via :func:`coerce_iteration`.
    """
    raw = ev.raw
    get = raw.get
    line = ev.line
    return {
        "schemaVersion": SCHEMA_VERSION,
        "envelopeType": "loop_run_event",
        "emittedAt": _emitted_at(now),
        "traceId": trace_id or None,
        "source": envelope_source(source),
        "sequence": {"source": SEQUENCE_SOURCE, "value": line},
        "cursor": {"eventLineOffset": line, "eventLineCount": total_lines},
        "run": {
            "runId": nonempty_str(get("run_id")) or "unknown",
            "iteration": coerce_iteration(get("iteration")),
        },
        "event": {
            "timestamp": ev.timestamp,
            "name": ev.name,
            "role": nonempty_str(get("role")),
            "status": nonempty_str(get("status")),
            "message": nonempty_str(get("message")),
            "payload": alt(get("data")),
            "raw": raw,
        },
    }
