"""Alert dispatch: settings, effects, file paths, reading the escalations file and the
dispatch state, and the outbox file (see :mod:`ops_manager.engine.alert_dispatch`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import dumps_compact
from ops_manager.engine._alert_quiet import commit_record_path as commit_record_path
from ops_manager.engine._alert_quiet import lock_path as lock_path
from ops_manager.engine._alert_quiet import outbox_path as outbox_path
from ops_manager.engine.alert_delivery import HttpSender
from ops_manager.errors import OpsError
from ops_manager.reducers.alerts import (
    OUTBOX_DELIVERED,
    Conditions,
    OutboxEntry,
    outbox_ident,
    outbox_step,
)
from ops_manager.store import (
    LoopPaths,
    Position,
    Stream,
    append_lines,
    iter_records,
    read_json_or_empty,
    write_atomic,
)


@attrs.frozen
class DispatchSettings:
    """Inputs of one dispatch run (the CLI resolves flags and env)."""

    repo: Path
    loop_id: str
    trace_id: str
    #: the ``--alert-config-file`` value; ``None`` → ``$OPS_MANAGER_ALERT_SINKS_FILE`` →
    #: the packaged default
    config_file: str | None = None
    escalations_file: Path | None = None
    state_file: Path | None = None
    telemetry_file: Path | None = None
    outbox_file: Path | None = None
    #: 0 = every new row
    max_escalations: int = 0


@attrs.frozen
class DispatchEffects:
    """The outside world of a run, injectable (tests pass a fake clock and sleep)."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    #: ``None`` → :class:`~ops_manager.engine.alert_delivery.RequestsSender`
    sender: HttpSender | None = None
    #: ``None`` → ``os.environ``
    environ: Mapping[str, str] | None = None


@attrs.frozen
class DispatchFiles:
    """Resolved artifact paths of a run."""

    escalations: Path
    state: Path
    telemetry: Path
    outbox: Path
    lock: Path
    #: where a run's telemetry rows and new state are made durable as one
    commit_record: Path

    @classmethod
    def resolve(
        cls,
        paths: LoopPaths,
        *,
        escalations: Path | None = None,
        state: Path | None = None,
        telemetry: Path | None = None,
        outbox: Path | None = None,
    ) -> DispatchFiles:
        """Apply overrides on top of the contract defaults."""
        return cls(
            escalations=escalations or paths.escalations_file,
            state=state or paths.alert_dispatch_state_file,
            telemetry=telemetry or paths.alert_telemetry_file,
            outbox=outbox or outbox_path(paths),
            lock=lock_path(paths),
            commit_record=commit_record_path(paths),
        )


# --- reading the escalations file --------------------------------------------------------


@attrs.frozen
class NewLines:
    line_count: int
    #: (line number, raw bytes without the newline)
    lines: list[tuple[int, bytes]]
    #: the verified position after the consumed lines (``None`` when unknown)
    position: dict[str, Any] | None


def read_new_lines(
    path: Path, prev_offset: int, stored_position: object, max_lines: int
) -> NewLines | None:
    """The complete lines after line ``prev_offset`` (``None`` if the file does not exist),
    read by :meth:`Stream.read_after_line <ops_manager.store.Stream.read_after_line>`.

    The stored position is used when :meth:`Position.from_json
    <ops_manager.store.Position.from_json>` takes it, it is at ``prev_offset`` and its
    fingerprinted line still matches; otherwise line ``prev_offset`` is found by a rescan.
    For every position a run wrote this is the check the dispatch had before; it is
    stricter in one way: the fingerprinted line must also start a line, so a position
    whose "line" is the tail of a longer one (hand-edited, or a rewrite that happens to end
    the same way) is rescanned instead of trusted (it used to re-read rows under shifted
    line numbers). When nothing new is read the stored position is handed back as it was
    stored. Raises the contract's ``dispatch state offset is ahead of escalation file:
    N > M`` (M: the complete lines; a torn last line is not counted).
    """
    hint = Position.from_json(stored_position) if prev_offset else None
    try:
        found = Stream(path).read_after_line(prev_offset, hint)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OpsError(f"escalations file is not a regular file: {path}") from None
    if isinstance(found, int):
        raise OpsError(
            f"dispatch state offset is ahead of escalation file: {prev_offset} > {found}"
        )
    take = found.lines[:max_lines] if max_lines > 0 else found.lines
    position: dict[str, Any] | None = None
    if take or prev_offset:
        position = found.position_after(len(take)).to_json()
        if not take and found.start == hint and isinstance(stored_position, dict):
            position = dict(stored_position)
    lines = [(prev_offset + i + 1, line) for i, line in enumerate(take)]
    return NewLines(line_count=prev_offset + len(found.lines), lines=lines, position=position)


def read_dispatch_state(path: Path) -> dict[str, Any]:
    """The previous state: missing or empty → ``{}``; not JSON → the contract's error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise OpsError(f"invalid dispatch state JSON: {path}") from None
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"invalid dispatch state JSON: {path}") from None
    return value if isinstance(value, dict) else {}


def read_conditions(paths: LoopPaths) -> Conditions:
    """What the last reconcile pass left in the projections (unknown → ``None``)."""
    health = read_json_or_empty(paths.health_file).get("status")
    drift = read_json_or_empty(paths.drift_state_file).get("driftActive")
    ordering = read_json_or_empty(paths.sequence_state_file).get("driftActive")
    divergence = read_json_or_empty(paths.state_file).get("divergence")
    div_any = divergence.get("any") if isinstance(divergence, dict) else None
    return Conditions(
        health_status=health if isinstance(health, str) else None,
        profile_drift_active=drift if isinstance(drift, bool) else None,
        ordering_drift_active=ordering if isinstance(ordering, bool) else None,
        divergence_active=div_any if isinstance(div_any, bool) else None,
    )


def current_run_id(paths: LoopPaths) -> str | None:
    run = read_json_or_empty(paths.state_file).get("run")
    run_id = run.get("runId") if isinstance(run, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


# --- the outbox --------------------------------------------------------------------------


class Outbox:
    """The folded outbox plus the append side (one ``write()`` per record)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[str, str], OutboxEntry] = {}
        self.records = 0
        for _, rec in iter_records(path):
            self._apply(rec)

    def _apply(self, rec: Mapping[str, Any]) -> None:
        ident = outbox_ident(rec)
        entry = None if ident is None else outbox_step(self.entries.get(ident), rec, self.records)
        self.records += 1
        if entry is not None:
            self.entries[(entry.key, entry.sink_id)] = entry

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records durably, then fold them in."""
        if not records:
            return
        append_lines(self.path, records)
        for rec in records:
            self._apply(rec)

    def ordered(self) -> list[OutboxEntry]:
        """Every entry in queue order."""
        return sorted(self.entries.values(), key=lambda e: e.order)

    def compact(self) -> None:
        """Rewrite the file with only the entries not delivered (atomically)."""
        kept = [e for e in self.ordered() if e.status != OUTBOX_DELIVERED]
        lines: list[str] = []
        for entry in kept:
            lines.append(dumps_compact(entry.queued_record))
            if entry.last is not entry.queued_record:
                lines.append(dumps_compact(entry.last))
        write_atomic(self.path, "".join(line + "\n" for line in lines))
        self.entries = {}
        self.records = 0
        for line in lines:
            self._apply(json.loads(line))
