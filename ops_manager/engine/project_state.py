"""``project-state``'s use case: fold a snapshot (+ event envelopes) into the lifecycle
projection and write it to a state file (``loop.md`` §3.3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from ops_manager.errors import OpsError
from ops_manager.reducers.lifecycle import (
    SnapshotView,
    project_lifecycle,
    validate_event_envelope,
    validate_snapshot_envelope,
)
from ops_manager.store import LoopPaths, read_json_or_empty, write_json


def read_snapshot_file(path: Path, loop_id: str) -> dict[str, Any]:
    """Read and validate a snapshot envelope file (§3.3 fail-closed messages)."""
    try:
        text = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise OpsError(f"snapshot file not found: {path}") from None
    try:
        snapshot = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"invalid snapshot JSON: {path}") from None
    validate_snapshot_envelope(snapshot, loop_id)
    return cast("dict[str, Any]", snapshot)  # the validation proved it is an object


def last_event_envelope(path: Path, loop_id: str) -> dict[str, Any] | None:
    """Validate every non-blank line of an event-envelope NDJSON file; return the last one.

    Streams the file (memory does not grow with it). This is a finished input file, not a
    live log, so a final line without ``\\n`` is a line like any other.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise OpsError(f"events file not found: {path}") from None
    last: dict[str, Any] | None = None
    with handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                envelope = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise OpsError(f"invalid event envelope in {path}") from None
            validate_event_envelope(envelope, loop_id)
            last = envelope
    return last


def project_state(
    paths: LoopPaths,
    *,
    now: int,
    snapshot_file: str | None,
    events_file: str | None,
    state_file: Path,
    pretty: bool = False,
) -> dict[str, Any]:
    """Build the lifecycle state, write it atomically to ``state_file`` and return it.

    Without ``snapshot_file`` the snapshot is built in-process (nothing is written for it,
    so no temp file is left behind; ``evidence.snapshotFile`` is then ``null``).
    """
    if snapshot_file:
        snapshot = read_snapshot_file(Path(snapshot_file), paths.loop_id)
    else:
        from ops_manager.runtime import build_snapshot

        snapshot = build_snapshot(paths, now=now, trace_id=None, run_id=None)
        validate_snapshot_envelope(snapshot, paths.loop_id)
    last_event = last_event_envelope(Path(events_file), paths.loop_id) if events_file else None
    previous = read_json_or_empty(state_file)  # unparseable -> {} (as upstream)
    state = project_lifecycle(
        SnapshotView.from_envelope(snapshot),
        last_event_envelope=last_event,
        previous_state=previous,
        now=now,
        snapshot_file=snapshot_file or None,
        events_file=events_file or None,
        repo_path=str(paths.repo),
    )
    write_json(state_file, state, pretty)
    return state
