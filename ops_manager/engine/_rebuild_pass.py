"""``rebuild``'s re-derivation of ``health.json`` and ``state.json`` (issue 13.4). Private to
:mod:`ops_manager.engine.rebuild`.

A pass records what its health and lifecycle state derive from as the ``inputs`` of its
``telemetry/reconcile.jsonl`` row (:mod:`ops_manager.reducers.pass_inputs`, C-15d). This
module joins the last row's ``inputs`` with the streams that hold the rest, and runs the
pass's own reducers on them:

- the lifecycle state: the last *successful* row's inputs, its last event re-read from
  ``events.jsonl`` (checked against the recorded digest);
- ``health``: the last row's inputs, the lifecycle state above (a failed pass judges the
  previous ``state.json``, which is that state), the last non-failed heartbeat row, the last
  sequence row, the transport-health fold of every reconcile row;
- ``state.drift``: the profile-drift history row the pass appended (same ``timestamp``);
- ``state.tuning``: the telemetry summary re-folded from the reconcile lines the pass saw
  (the last ``window`` lines up to its row) and the control counts it recorded.

Anything that makes this impossible (a row written before C-15d, a log rewritten since, a
``state.json`` written by another writer between passes) is a reason string, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import parse_ts
from ops_manager.engine._rebuild_model import (
    UNREADABLE,
    heartbeat_state_from_row,
    last_row,
    sequence_state_from_row,
    transport_health_fold,
)
from ops_manager.engine._reconcile_records import event_digest, merged_state
from ops_manager.errors import CorruptStreamError, OpsError
from ops_manager.reducers.drift import state_drift, tuning_block
from ops_manager.reducers.pass_inputs import PassInputs, pass_health, pass_lifecycle
from ops_manager.reducers.telemetry_summary import SummarySource, parse_lines, summarize_counted
from ops_manager.runtime import EventReader, build_event_envelope, position_for_line_offset
from ops_manager.store import LoopPaths, Stream, iter_records

#: the reason rows written before passes recorded their inputs give
NO_INPUTS = (
    "written before reconcile rows recorded their inputs (C-15d); the next reconcile records them"
)


@attrs.frozen
class Row:
    """One reconcile row with its physical line number (1-based) in the stream."""

    line: int
    row: dict[str, Any]


@attrs.frozen
class PassProjections:
    """What the last pass wrote, re-derived: ``health`` always, ``state`` when the pass
    wrote one (``None``: no ``state.json`` before and the pass failed), or the reason the
    state cannot be re-derived (``state_problem``)."""

    health: dict[str, Any]
    state: dict[str, Any] | None
    state_problem: str | None = None


@attrs.define
class ReconcileScan:
    """What one streaming read of ``telemetry/reconcile.jsonl`` keeps (memory is bounded by
    the rows since the last successful pass, not by the history)."""

    #: the fold of every row (``transport-health.json``); ``None`` when there is no row
    transport_health: dict[str, Any] | None = None
    last: Row | None = None
    #: the last successful row, and the (failed) rows after it, oldest first
    success: Row | None = None
    after_success: list[Row] = attrs.field(factory=list)
    #: the last successful row stamped like the last non-failed heartbeat row (its pass)
    heartbeat_pass: Row | None = None
    #: the number of complete physical lines (the summary window counts physical lines)
    lines: int = 0


def scan_reconcile(path: Path, heartbeat_stamp: object) -> ReconcileScan | str:
    """Read the reconcile stream once, oldest first; or why its rows are unusable."""
    scan = ReconcileScan()

    def rows() -> Iterator[dict[str, Any]]:
        for line, row in iter_records(path):
            r = Row(line, row)
            scan.last = r
            if row.get("status") == "success":
                scan.success, scan.after_success = r, []
                if heartbeat_stamp is not None and row.get("timestamp") == heartbeat_stamp:
                    scan.heartbeat_pass = r
            else:
                scan.after_success.append(r)
            yield row

    try:
        scan.transport_health = transport_health_fold(rows())
    except CorruptStreamError as exc:
        return f"unusable reconcile row: {exc.message}"
    except ValueError as exc:
        return f"unusable reconcile row: {exc}"
    scan.lines = Stream(path).count_newlines() if scan.last is not None else 0
    return scan


def thresholds_of_pass(scan: ReconcileScan) -> dict[str, Any] | None:
    """``heartbeat.json``'s ``thresholds`` for the last non-failed heartbeat row: the
    heartbeat thresholds its pass recorded (``None`` when that row has no inputs)."""
    r = scan.heartbeat_pass
    if r is None:
        return None
    try:
        t = PassInputs.from_json(r.row.get("inputs")).thresholds
    except ValueError:
        return None
    return {
        "degradedHeartbeatLagSeconds": t.degraded_heartbeat_lag_seconds,
        "criticalHeartbeatLagSeconds": t.critical_heartbeat_lag_seconds,
    }


class PassRefold:
    """Re-derive the last pass's ``health.json`` / ``state.json`` from the streams."""

    def __init__(self, paths: LoopPaths, scan: ReconcileScan) -> None:
        self.paths = paths
        self.scan = scan

    def refold(self) -> PassProjections | str:
        """The projections, or why they cannot be re-derived (a reason for the report)."""
        p = self.paths
        last = self.scan.last
        assert last is not None, "no reconcile row: nothing to re-derive"
        parsed = self._inputs(last)
        if isinstance(parsed, str):
            return f"the last reconcile row (line {last.line}) was {parsed}"
        inputs, now, ok = parsed, self._now(last), last.row.get("status") == "success"
        if now is None:
            return f"the last reconcile row (line {last.line}) has no usable timestamp"
        # the lifecycle state: of this pass, or (failed) of the last successful one, which a
        # failed pass keeps as state.json
        lifecycle: dict[str, Any] | None = None
        success = self.scan.success
        state_problem: str | None = None
        #: the last pass failed and found no state.json: it judged health without one and
        #: wrote none, though an earlier successful pass had written one (it was deleted)
        lost: str | None = None
        if not ok and inputs.previous is None and success is not None:
            lost = (
                "the last pass (failed) found no state.json, so it wrote none; the one the "
                f"successful pass of line {success.line} wrote was deleted before it"
            )
            success = None
        if success is not None:
            derived = self._lifecycle(success)
            if isinstance(derived, str):
                return derived
            lifecycle = derived
            state_problem = self._chain_problem(success, lifecycle)
        elif inputs.previous is not None:
            state_problem = (
                "state.json existed before any successful reconcile (written by project-state "
                "or another tool); its inputs are not in a stream"
            )
        if state_problem is not None and not ok:
            return state_problem
        hb_row = last_row(p.heartbeat_telemetry_file, lambda r: r.get("status") != "failed")
        seq_row = last_row(p.sequence_telemetry_file)
        if hb_row is UNREADABLE or seq_row is UNREADABLE:
            return "the last heartbeat or sequence row is not JSON"
        transport_health = self.scan.transport_health
        assert transport_health is not None
        trace = last.row.get("traceId")
        trace_id = trace if isinstance(trace, str) else None
        code = last.row.get("failureCode")
        sequence = sequence_state_from_row(seq_row) if isinstance(seq_row, dict) else {}
        health = pass_health(
            inputs,
            now=now,
            trace_id=trace_id,
            transport=str(last.row.get("transport")),
            failure_code=code if isinstance(code, str) else None,
            ok=ok,
            state=lifecycle if lifecycle is not None else {},
            heartbeat_state=heartbeat_state_from_row(hb_row, None)
            if isinstance(hb_row, dict)
            else {},
            sequence_state=sequence,
            transport_health=transport_health,
        )
        if lifecycle is None:
            return PassProjections(health=health, state=None, state_problem=lost)
        state = merged_state(lifecycle, {}, False, health, sequence, trace or "")
        assert state is not None
        drift = self._drift(last)
        if drift is None:
            return PassProjections(
                health, None, "the profile-drift history has no row of the last pass"
            )
        state["drift"] = state_drift(drift, trace_id)
        tuning = self._tuning(success)
        if isinstance(tuning, str):
            return PassProjections(health, None, tuning)
        if tuning is not None:
            state["tuning"] = tuning
        return PassProjections(health=health, state=state)

    # -- pieces ----------------------------------------------------------------------------
    @staticmethod
    def _inputs(r: Row) -> PassInputs | str:
        if "inputs" not in r.row:
            return NO_INPUTS
        try:
            return PassInputs.from_json(r.row["inputs"])
        except ValueError as exc:
            return f"recorded with unusable inputs ({exc})"

    @staticmethod
    def _now(r: Row) -> int | None:
        return parse_ts(r.row.get("timestamp"))

    def _lifecycle(self, success: Row) -> dict[str, Any] | str:
        """The lifecycle state the successful pass ``success`` computed."""
        p = self.paths
        inputs = self._inputs(success)
        now = self._now(success)
        if isinstance(inputs, str):
            return f"the last successful reconcile row (line {success.line}) was {inputs}"
        if inputs.snapshot is None or now is None:
            return f"the last successful reconcile row (line {success.line}) has no snapshot"
        envelope: dict[str, Any] | None = None
        if inputs.last_event is not None:
            line, sha = inputs.last_event["line"], inputs.last_event["sha256"]
            problem = (
                f"events.jsonl no longer holds line {line} as the last successful pass read "
                "it (rewritten, truncated, or a remote runtime's log); the lifecycle state "
                "cannot be re-derived"
            )
            try:
                reader = EventReader(
                    p.events_file, position_for_line_offset(p.events_file, line - 1)
                )
                ev = next(iter(reader), None)
            except OpsError:
                return problem
            if ev is None or ev.line != line or event_digest(ev.raw) != sha:
                return problem
            trace = success.row.get("traceId")
            envelope = build_event_envelope(
                (str(p.repo), p.loop_id),
                ev,
                total_lines=inputs.snapshot.event_line_count,
                now=now,
                trace_id=trace if isinstance(trace, str) else None,
            )
        return pass_lifecycle(inputs, last_event_envelope=envelope, now=now, repo_path=str(p.repo))

    def _chain_problem(self, success: Row, lifecycle: dict[str, Any]) -> str | None:
        """A failed pass after ``success`` keeps the ``state.json`` it found: it must be the
        one ``success`` wrote (same ``generatedAt``), not another writer's (project-state)."""
        at = lifecycle.get("generatedAt")
        for r in self.scan.after_success:
            inputs = self._inputs(r)
            if isinstance(inputs, str):
                return f"the reconcile row at line {r.line} was {inputs}"
            if inputs.previous is None:
                return (
                    f"the failed pass of line {r.line} found no state.json (deleted after the "
                    "last successful pass), so it judged health without one"
                )
            if inputs.previous.generated_at != at:
                return (
                    f"state.json was rewritten between passes (the pass of line {r.line} found "
                    "one the last successful pass did not write, e.g. by project-state); "
                    "its inputs are not in a stream"
                )
        return None

    def _drift(self, last: Row) -> dict[str, Any] | None:
        """The drift object the last pass evaluated (its history row has its ``timestamp``;
        a standalone profile-drift run may have appended rows after it)."""
        stamp = last.row.get("timestamp")
        row = last_row(
            self.paths.drift_history_file,
            lambda r: r.get("timestamp") == stamp and isinstance(r.get("drift"), dict),
        )
        return row["drift"] if isinstance(row, dict) else None

    def _tuning(self, success: Row | None) -> dict[str, Any] | str | None:
        """``state.tuning``: set by the latest pass (since the last successful one) whose
        telemetry summary ran; ``None`` when none did."""
        assert success is not None
        for r in (*reversed(self.scan.after_success), success):
            inputs = self._inputs(r)
            if isinstance(inputs, str):
                return f"the reconcile row at line {r.line} was {inputs}"
            control, now = inputs.control, self._now(r)
            if control is None or now is None:
                continue
            p = self.paths
            window = self._window(r.line, control.window)
            summary = summarize_counted(
                parse_lines(window),
                control_ambiguous=control.ambiguous,
                control_malformed=control.malformed,
                source=SummarySource(
                    repo_path=str(p.repo),
                    loop_id=p.loop_id,
                    reconcile_telemetry_file=str(p.reconcile_telemetry_file),
                    control_telemetry_file=str(p.control_telemetry_file),
                    window=control.window,
                ),
                now=now,
            )
            return tuning_block(summary, inputs.thresholds.profile)
        return None

    def _window(self, end: int, size: int) -> list[bytes]:
        """Physical lines ``end - size + 1 .. end`` of the reconcile stream (1-based), oldest
        first: what the pass's summary sampled (it counts blank and malformed lines too).
        Read from the end, so the cost is the rows since then plus the window."""
        out: list[bytes] = []
        number = self.scan.lines
        for line in Stream(self.paths.reconcile_telemetry_file).lines_reverse():
            if number <= end - size:
                break
            if number <= end:
                out.append(line)
            number -= 1
        out.reverse()
        return out


def written_by_project_state(stored: dict[str, Any]) -> bool:
    """Whether ``state.json`` is ``project-state``'s: it writes the bare lifecycle
    projection, while reconcile always merges ``health`` and ``trace`` into it."""
    return "health" not in stored or "trace" not in stored


__all__ = [
    "NO_INPUTS",
    "PassProjections",
    "PassRefold",
    "ReconcileScan",
    "Row",
    "scan_reconcile",
    "thresholds_of_pass",
    "written_by_project_state",
]
