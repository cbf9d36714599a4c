"""The per-projection checks of ``rebuild``. Private to :mod:`ops_manager.engine.rebuild`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ops_manager._timefmt import format_ts
from ops_manager.engine._rebuild_model import (
    DIFFERS,
    MATCH,
    MISSING,
    NOT_REBUILDABLE,
    UNREADABLE,
    ProjectionCheck,
    Unreadable,
    compare_projection,
    heartbeat_state_from_row,
    json_differences,
    last_row,
    read_projection,
    sequence_state_from_row,
)
from ops_manager.engine._rebuild_pass import (
    NO_INPUTS,
    PassProjections,
    PassRefold,
    ReconcileScan,
    scan_reconcile,
    thresholds_of_pass,
    written_by_project_state,
)
from ops_manager.engine._reconcile_records import event_digest
from ops_manager.errors import OpsError
from ops_manager.reducers.stream import StreamFold, fold_events
from ops_manager.runtime import (
    EventLine,
    EventReader,
    StreamPosition,
    count_newlines,
    position_for_line_offset,
    verify_position,
)
from ops_manager.store import LoopPaths

# --- per projection ----------------------------------------------------------------------


class Rebuild:
    def __init__(self, paths: LoopPaths, now: int) -> None:
        self.paths = paths
        self.now = now
        self.position: StreamPosition | None = None
        self.stream_state: dict[str, Any] | None = None
        self._scan: ReconcileScan | str | None = None
        self._refolded: PassProjections | str | None = None

    def reconcile_scan(self) -> ReconcileScan | str:
        """The reconcile stream read once (shared by the transport-health, heartbeat,
        health and state checks), or why its rows are unusable."""
        if self._scan is None:
            hb = last_row(
                self.paths.heartbeat_telemetry_file, lambda r: r.get("status") != "failed"
            )
            stamp = hb.get("timestamp") if isinstance(hb, dict) else None
            self._scan = scan_reconcile(self.paths.reconcile_telemetry_file, stamp)
        return self._scan

    def refolded(self) -> PassProjections | str:
        """The last pass's health/state re-derived (once), or why they cannot be."""
        if self._refolded is None:
            scan = self.reconcile_scan()
            self._refolded = (
                scan if isinstance(scan, str) else PassRefold(self.paths, scan).refold()
            )
        return self._refolded

    def stream_state_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.stream_state_file, p.events_file
        stored = read_projection(file)
        cursor = read_projection(p.cursor_file)
        pos = StreamPosition.from_json(stored.get("position")) if isinstance(stored, dict) else None
        if pos is None and isinstance(cursor, dict):
            pos = StreamPosition.from_json(cursor.get("position"))
        base = cursor if isinstance(cursor, dict) else {}
        if pos is None and stored is None:
            # both gone: the last successful pass's row says how far it read, and when
            row = last_row(p.reconcile_telemetry_file, lambda r: r.get("status") == "success")
            lines = row.get("cursorOffsetAfter") if isinstance(row, dict) else None
            if (
                not isinstance(row, dict)
                or not isinstance(lines, int)
                or isinstance(lines, bool)
                or lines <= 0
            ):
                return ProjectionCheck(
                    file, stream, MATCH, True, reason="nothing recorded yet (no successful pass)"
                )
            try:
                pos = position_for_line_offset(stream, lines)
            except OpsError:
                return ProjectionCheck(
                    file,
                    stream,
                    MISSING,
                    False,
                    ["$"],
                    reason=f"the last successful pass read {lines} lines, and events.jsonl "
                    "no longer has them; reconcile --from-start rebuilds it",
                )
            # a pass reads every complete line unless --max-events stopped it, so the
            # line count it saw is its offset; otherwise the count now is the best known
            counted = lines if not row.get("maxEvents") else count_newlines(stream)
            base = {"updatedAt": row.get("timestamp"), "eventLineCount": counted}
        if pos is None:
            return ProjectionCheck(
                file,
                stream,
                DIFFERS,
                False,
                ["$.position"],
                reason="no usable stream position in stream-state.json or cursor.json; "
                "reconcile --from-start rebuilds it",
            )
        problem = verify_position(stream, pos)
        if problem is not None:
            return ProjectionCheck(
                file,
                stream,
                DIFFERS,
                False,
                ["$.position"],
                reason=f"events.jsonl was {problem} after this position was recorded; "
                "the fold cannot be re-derived (reconcile --from-start rebuilds it)",
            )
        last: list[tuple[int, dict[str, Any]]] = []
        if pos.byte_offset == 0:
            fold, position = StreamFold(), StreamPosition()
        else:
            try:
                reader = EventReader(stream, StreamPosition(), end_offset=pos.byte_offset)
                fold = fold_events(StreamFold(), _keep_last(reader, last))
            except OpsError as exc:
                return ProjectionCheck(file, stream, DIFFERS, False, ["$.fold"], reason=exc.message)
            position = reader.position
        fingerprint = {"line": last[0][0], "sha256": event_digest(last[0][1])} if last else None
        self.position = position
        if isinstance(stored, dict):
            expected = dict(stored)
            expected["position"] = position.to_json()
            expected["fold"] = fold.to_json()
            if "lastEvent" in stored:
                expected["lastEvent"] = fingerprint
        else:
            expected = {
                "schemaVersion": "v1",
                "updatedAt": base.get("updatedAt", format_ts(self.now)),
                "loopId": p.loop_id,
                "eventsFile": p.relative(stream),
                "position": position.to_json(),
                "eventLineCount": base.get("eventLineCount", position.line_offset),
                "tornTailBytes": 0,
                "fold": fold.to_json(),
                "lastEvent": fingerprint,
            }
        self.stream_state = expected
        return compare_projection(file, stream, stored, expected)

    def cursor_check(self) -> ProjectionCheck:
        p = self.paths
        file = p.cursor_file
        stored = read_projection(file)
        if self.position is None or self.stream_state is None:
            if stored is None:
                return ProjectionCheck(file, p.events_file, MATCH, True, reason="no cursor yet")
            return ProjectionCheck(
                file,
                p.events_file,
                NOT_REBUILDABLE,
                False,
                reason="no verified stream position to check it against",
            )
        pos = self.position
        if isinstance(stored, dict):
            expected = dict(stored)
            expected["eventLineOffset"] = pos.line_offset
            if "position" in stored or "position" in self.stream_state:
                expected["position"] = pos.to_json()
        else:
            ss = self.stream_state
            expected = {
                "schemaVersion": "v1",
                "repoPath": str(p.repo),
                "loopId": p.loop_id,
                "eventsFile": p.relative(p.events_file),
                "eventLineOffset": pos.line_offset,
                "eventLineCount": ss.get("eventLineCount", pos.line_offset),
                "updatedAt": ss.get("updatedAt", format_ts(self.now)),
                "position": pos.to_json(),
            }
        return compare_projection(file, p.events_file, stored, expected, pretty=True)

    def drift_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.drift_state_file, p.drift_history_file
        stored = read_projection(file)
        row = last_row(stream)
        if row is UNREADABLE:
            return ProjectionCheck(
                file, stream, NOT_REBUILDABLE, False, reason="the last history row is not JSON"
            )
        if row is None:
            return _absent_stream(file, stream, stored)
        drift = row.get("drift")
        if not isinstance(drift, dict):
            return ProjectionCheck(
                file, stream, NOT_REBUILDABLE, False, reason="the last history row has no drift"
            )
        return compare_projection(file, stream, stored, drift)

    def sequence_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.sequence_state_file, p.sequence_telemetry_file
        stored = read_projection(file)
        row = last_row(stream)
        if row is UNREADABLE:
            return ProjectionCheck(
                file, stream, NOT_REBUILDABLE, False, reason="the last sequence row is not JSON"
            )
        if row is None:
            return _absent_stream(file, stream, stored)
        return compare_projection(file, stream, stored, sequence_state_from_row(row))

    def heartbeat_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.heartbeat_state_file, p.heartbeat_telemetry_file
        stored = read_projection(file)
        row = last_row(stream, lambda r: r.get("status") != "failed")
        if row is UNREADABLE:
            return ProjectionCheck(
                file, stream, NOT_REBUILDABLE, False, reason="the last heartbeat row is not JSON"
            )
        if row is None:
            return _absent_stream(file, stream, stored)
        scan = self.reconcile_scan()
        thresholds = None if isinstance(scan, str) else thresholds_of_pass(scan)
        if thresholds is not None:
            # the thresholds the pass that wrote this row applied, from its reconcile row
            return compare_projection(
                file, stream, stored, heartbeat_state_from_row(row, thresholds)
            )
        if not isinstance(stored, dict):
            return ProjectionCheck(
                file,
                stream,
                MISSING,
                False,
                ["$"],
                reason="the heartbeat thresholds of the pass that wrote the last heartbeat row "
                f"are not recorded: its reconcile row was {NO_INPUTS}",
            )
        expected = heartbeat_state_from_row(row, stored.get("thresholds"))
        check = compare_projection(file, stream, stored, expected)
        check.reason = (
            "thresholds are kept from the stored projection (the reconcile row of the pass "
            f"that wrote the last heartbeat row was {NO_INPUTS})"
        )
        return check

    def transport_health_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.transport_health_file, p.reconcile_telemetry_file
        stored = read_projection(file)
        scan = self.reconcile_scan()  # read once, shared with the health/state re-fold
        if isinstance(scan, str):
            return ProjectionCheck(file, stream, NOT_REBUILDABLE, False, reason=scan)
        expected = scan.transport_health
        if expected is None:
            return _absent_stream(file, stream, stored)
        return compare_projection(file, stream, stored, expected)

    def dispatch_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.alert_dispatch_state_file, p.escalations_file
        stored = read_projection(file)
        reason = (
            "dispatch outcomes (sink responses) are not in a stream this command re-folds; "
            "its escalation offsets were checked against escalations.jsonl"
        )
        if stored is None:
            return _absent_or_unreadable(
                file,
                None,
                "not written (alerts disabled, or dispatch never ran)",
                p.alert_telemetry_file,
            )
        if isinstance(stored, Unreadable):
            return ProjectionCheck(
                file, stream, DIFFERS, False, ["$"], reason="the projection is unreadable"
            )
        lines = count_newlines(stream) if stream.exists() else 0
        diffs = [
            f"$.{key}"
            for key in ("escalationsLineOffset", "escalationsLineCount")
            if not isinstance(stored.get(key), int) or not 0 <= stored[key] <= lines
        ]
        offset = stored.get("escalationsLineOffset")
        detail = {
            "escalationsLines": lines,
            "escalationsLineOffset": offset,
            "pending": lines - offset if isinstance(offset, int) else None,
        }
        if diffs:
            return ProjectionCheck(
                file,
                stream,
                DIFFERS,
                False,
                diffs,
                reason="offsets point beyond escalations.jsonl (was it truncated?)",
                detail=detail,
            )
        return ProjectionCheck(file, stream, NOT_REBUILDABLE, False, reason=reason, detail=detail)

    def health_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.health_file, p.reconcile_telemetry_file
        stored = read_projection(file)
        scan = self.reconcile_scan()
        if not isinstance(scan, str) and scan.last is None:
            return _absent_stream(file, stream, stored)
        derived = self.refolded()
        if isinstance(derived, PassProjections):
            return compare_projection(file, stream, stored, derived.health)
        # cannot be re-derived: say why, and check it against the last row
        reason = f"not re-derivable: {derived}. Checked against the last reconcile row"
        if not isinstance(stored, dict):
            return _absent_or_unreadable(file, stored, reason, stream)
        row = last_row(stream)
        diffs: list[str] = []
        if isinstance(row, dict):
            if row.get("healthStatus") != stored.get("status"):
                diffs.append("$.status")
            if row.get("healthReasonCodes") != stored.get("reasonCodes"):
                diffs.append("$.reasonCodes")
        status = DIFFERS if diffs else NOT_REBUILDABLE
        return ProjectionCheck(file, None, status, False, diffs, reason=reason)

    def state_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.state_file, p.reconcile_telemetry_file
        stored = read_projection(file)
        if isinstance(stored, dict) and written_by_project_state(stored):
            # the newer writer: project-state's bare lifecycle projection (no health/trace),
            # folded from a snapshot that is in no stream; the next reconcile folds it
            return ProjectionCheck(
                file,
                None,
                NOT_REBUILDABLE,
                False,
                reason="written by project-state after the last reconcile pass (no "
                "health/trace); its snapshot is not in a stream, the next reconcile folds it",
            )
        scan = self.reconcile_scan()
        if not isinstance(scan, str) and scan.last is None:
            return _absent_stream(file, stream, stored)
        derived = self.refolded()
        if isinstance(derived, PassProjections) and derived.state_problem is None:
            if derived.state is not None:
                return compare_projection(file, stream, stored, derived.state)
            if stored is None:
                return ProjectionCheck(
                    file, stream, MATCH, True, reason="no pass wrote one (none succeeded)"
                )
            return ProjectionCheck(
                file,
                stream,
                NOT_REBUILDABLE,
                False,
                reason="no reconcile pass wrote it (none succeeded): another tool's",
            )
        problem = derived if isinstance(derived, str) else derived.state_problem
        reason = (
            f"not re-derivable: {problem}. Checked for consistency with health.json and "
            "sequence-state.json (state.drift is not: a standalone profile-drift run "
            "legitimately moves profile-drift.json past it)"
        )
        if not isinstance(stored, dict):
            return _absent_or_unreadable(file, stored, reason, stream)
        diffs: list[str] = []
        for key, other in (
            ("health", read_projection(p.health_file)),
            ("sequence", read_projection(p.sequence_state_file)),
        ):
            if key in stored and isinstance(other, dict):
                diffs.extend(json_differences(stored[key], other, f"$.{key}"))
        status = DIFFERS if diffs else NOT_REBUILDABLE
        return ProjectionCheck(file, None, status, False, diffs, reason=reason)


def _absent_or_unreadable(
    file: Path, stored: Unreadable | None, reason: str, written_by: Path
) -> ProjectionCheck:
    """The verdict for a projection that cannot be re-derived from streams when it is
    absent or unreadable (differs as a whole).

    Absent is only fine when nothing ever wrote it: if ``written_by`` (the stream of the
    command that writes it) has rows, the projection was lost, and ``rebuild`` must not
    say all is well.
    """
    if stored is None:
        if last_row(written_by) is not None:
            return ProjectionCheck(
                file,
                None,
                MISSING,
                False,
                ["$"],
                reason=f"lost: {written_by.name} has rows, so it was written; it cannot be "
                f"re-derived here ({reason}); the next run rewrites it",
            )
        return ProjectionCheck(file, None, NOT_REBUILDABLE, False, reason=reason)
    return ProjectionCheck(file, None, DIFFERS, False, ["$"], reason="the projection is unreadable")


def _absent_stream(
    file: Path, stream: Path, stored: dict[str, Any] | Unreadable | None
) -> ProjectionCheck:
    if stored is None:
        return ProjectionCheck(file, stream, MATCH, True, reason="neither exists yet")
    return ProjectionCheck(
        file,
        stream,
        NOT_REBUILDABLE,
        False,
        reason="its stream has no rows to re-fold (written by another tool?)",
    )


def _keep_last(
    reader: Iterable[EventLine], last: list[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[int, dict[str, Any], str, str]]:
    """Feed the fold, remembering the last event (its fingerprint is re-derived too)."""
    for ev in reader:
        last[:] = [(ev.line, ev.raw)]
        yield ev.line, ev.raw, ev.name, ev.timestamp
