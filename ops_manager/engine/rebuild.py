"""``rebuild``: re-fold a loop's projections from its streams and compare (or restore).

DESIGN rule 2 says every projection is derived and can be rebuilt by re-folding the
streams. This command makes that promise checkable, and is honest about where it does not
hold. Per projection:

=============================== ===================================== =========================
projection                      re-derived from                       how much
=============================== ===================================== =========================
``stream-state.json``           ``events.jsonl`` up to the stored      ``fold`` and ``position``
                                position (``reducers.stream``)         exactly; the pass's
                                                                       ``updatedAt`` /
                                                                       ``eventLineCount`` /
                                                                       ``tornTailBytes`` are
                                                                       kept
``cursor.json``                 the re-derived position                ``eventLineOffset`` and
                                                                       ``position``
``profile-drift.json``          the last ``telemetry/profile-drift``   entirely (the row's
                                row                                    ``drift`` *is* the
                                                                       projection)
``sequence-state.json``         the last ``telemetry/sequence`` row    entirely (row minus
                                                                       ``timestamp``/``category``)
``heartbeat.json``              the last non-failed                    all but ``thresholds``
                                ``telemetry/heartbeat`` row            (not in the row)
``telemetry/transport-          the last ``telemetry/reconcile`` row   ``traceId``, ``transport``,
health.json``                                                          ``lastResult``,
                                                                       ``failureStreak``,
                                                                       ``lastFailureCode``
``alert-dispatch-state.json``   --                                     offsets checked against
                                                                       ``escalations.jsonl``
``health.json``, ``state.json`` --                                     not rebuildable; checked
                                                                       for consistency
=============================== ===================================== =========================

``health.json`` and ``state.json`` are folds of the *runtime* as it was at each pass (the
snapshot's files, the intents file, the clock); those inputs are not kept in any stream, so
they are reported ``not_rebuildable`` with the reason, after a consistency check against the
projections and rows written in the same pass (a mismatch is ``differs``).

Statuses: ``match``, ``differs``, ``missing`` (the stream has data, the projection is absent
or unreadable), ``restored`` (``--write`` rewrote it byte-identically to what a pass writes),
``not_rebuildable``. Everything runs under the loop's lock, so it never sees (or makes) a
half-written pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import dumps_compact, strip_nulls
from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.engine.telemetry_summary import iter_lines_reverse
from ops_manager.errors import OpsError
from ops_manager.reducers.stream import StreamFold, fold_events
from ops_manager.runtime import EventReader, StreamPosition, count_newlines, verify_position
from ops_manager.store import LoopPaths, exclusive_lock, write_json

MATCH = "match"
DIFFERS = "differs"
MISSING = "missing"
RESTORED = "restored"
NOT_REBUILDABLE = "not_rebuildable"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- pure helpers ------------------------------------------------------------------------


def json_differences(stored: Any, expected: Any, path: str = "$") -> list[str]:
    """JSON paths where ``stored`` differs from ``expected`` (``[]`` when byte-identical).

    Objects are compared key by key (a key present on one side only is a difference at its
    path); a pure key-order difference is reported as ``<path> (key order)``. Leaves are
    compared by their JSON text, so ``1`` and ``1.0`` or ``1`` and ``true`` differ.
    """
    if isinstance(stored, dict) and isinstance(expected, dict):
        out: list[str] = []
        keys = list(expected) + [k for k in stored if k not in expected]
        for key in keys:
            sub = f"{path}.{key}" if _IDENT.match(key) else f"{path}[{json.dumps(key)}]"
            if key not in stored or key not in expected:
                out.append(sub)
            else:
                out.extend(json_differences(stored[key], expected[key], sub))
        if not out and list(stored) != list(expected):
            out.append(f"{path} (key order)")
        return out
    if isinstance(stored, list) and isinstance(expected, list):
        out = []
        for index in range(max(len(stored), len(expected))):
            sub = f"{path}[{index}]"
            if index >= len(stored) or index >= len(expected):
                out.append(sub)
            else:
                out.extend(json_differences(stored[index], expected[index], sub))
        return out
    return [] if dumps_compact(stored) == dumps_compact(expected) else [path]


def sequence_state_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """``sequence-state.json`` from its ``telemetry/sequence.jsonl`` row: the same object
    with ``schemaVersion`` first and ``updatedAt`` = the row's ``timestamp``."""
    return {
        "schemaVersion": "v1",
        "updatedAt": row.get("timestamp"),
        **{k: v for k, v in row.items() if k not in ("timestamp", "category")},
    }


def heartbeat_state_from_row(row: dict[str, Any], thresholds: Any) -> dict[str, Any]:
    """``heartbeat.json`` from a non-failed ``telemetry/heartbeat.jsonl`` row; the
    thresholds (not recorded in the row) come from the stored projection."""
    return strip_nulls(
        {
            "schemaVersion": "v1",
            "updatedAt": row.get("timestamp"),
            "loopId": row.get("loopId"),
            "traceId": row.get("traceId"),
            "transport": row.get("transport"),
            "lastHeartbeatAt": row.get("heartbeatAt"),
            "heartbeatLagSeconds": row.get("heartbeatLagSeconds"),
            "freshnessStatus": row.get("status"),
            "reasonCode": row.get("reasonCode"),
            "thresholds": thresholds,
            "heartbeat": row.get("heartbeat"),
        }
    )


def transport_health_from_row(row: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """``transport-health.json`` with the fields the last reconcile row determines; the
    pass's timestamps (``updatedAt``, ``lastSuccessAt``, ``lastFailureAt``) are kept."""
    failed = row.get("status") == "failed"
    return strip_nulls(
        {
            "schemaVersion": stored.get("schemaVersion", "v1"),
            "updatedAt": stored.get("updatedAt"),
            "traceId": row.get("traceId"),
            "transport": row.get("transport"),
            "lastResult": row.get("status"),
            "failureStreak": row.get("transportFailureStreak"),
            "lastFailureCode": row.get("failureCode") if failed else None,
            "lastSuccessAt": stored.get("lastSuccessAt"),
            "lastFailureAt": stored.get("lastFailureAt"),
        }
    )


# --- report ------------------------------------------------------------------------------


@attrs.define
class ProjectionCheck:
    """One projection's verdict."""

    file: Path
    stream: Path | None
    status: str
    rebuildable: bool
    differences: list[str] = attrs.field(factory=list)
    reason: str | None = None
    detail: dict[str, Any] | None = None
    #: what ``--write`` would write (``None``: cannot be restored)
    expected: Any = None
    pretty: bool = False

    def to_json(self) -> dict[str, Any]:
        """``{file, stream, status, rebuildable, differences, reason?, detail?}``
        (``stream`` is ``null`` for projections that have none)."""
        out: dict[str, Any] = {
            "file": str(self.file),
            "stream": None if self.stream is None else str(self.stream),
            "status": self.status,
            "rebuildable": self.rebuildable,
            "differences": list(self.differences),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.detail is not None:
            out["detail"] = self.detail
        return out


@attrs.frozen
class RebuildReport:
    """The rebuild report; :attr:`exit_code` is 0 when nothing differs any more."""

    repo: Path
    loop_id: str
    write: bool
    generated_at: int
    checks: tuple[ProjectionCheck, ...]

    @property
    def ok(self) -> bool:
        """No projection ``differs`` or is ``missing`` (after ``--write``, if given)."""
        return all(c.status not in (DIFFERS, MISSING) for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": "v1",
            "generatedAt": format_ts(self.generated_at),
            "source": {"repoPath": str(self.repo), "loopId": self.loop_id},
            "write": self.write,
            "ok": self.ok,
            "projections": [c.to_json() for c in self.checks],
        }


# --- reading -----------------------------------------------------------------------------


class _Unreadable:
    """A projection file that exists but is not a JSON object."""


_UNREADABLE = _Unreadable()


def _read(path: Path) -> dict[str, Any] | _Unreadable | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return _UNREADABLE
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return _UNREADABLE
    return value if isinstance(value, dict) else _UNREADABLE


def _last_row(path: Path, accept: Callable[[dict[str, Any]], bool] = lambda _r: True) -> Any:
    """The last complete non-blank row of a stream that ``accept`` takes; ``None`` when
    there is none; ``_UNREADABLE`` when the last candidate line is not a JSON object."""
    for line in iter_lines_reverse(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _UNREADABLE
        if not isinstance(row, dict):
            return _UNREADABLE
        if accept(row):
            return row
    return None


def _compare(
    file: Path,
    stream: Path | None,
    stored: dict[str, Any] | _Unreadable | None,
    expected: dict[str, Any],
    *,
    pretty: bool = False,
    reason: str | None = None,
) -> ProjectionCheck:
    """``match`` / ``differs`` / ``missing`` of a rebuildable projection, carrying what
    ``--write`` would write."""
    if not isinstance(stored, dict):
        return ProjectionCheck(
            file,
            stream,
            MISSING,
            True,
            ["$"],
            reason=reason
            or ("the projection is absent" if stored is None else "the projection is unreadable"),
            expected=expected,
            pretty=pretty,
        )
    diffs = json_differences(stored, expected)
    return ProjectionCheck(
        file,
        stream,
        DIFFERS if diffs else MATCH,
        True,
        diffs,
        reason=reason,
        expected=expected if diffs else None,
        pretty=pretty,
    )


# --- per projection ----------------------------------------------------------------------


class _Rebuild:
    def __init__(self, paths: LoopPaths, now: int) -> None:
        self.paths = paths
        self.now = now
        self.position: StreamPosition | None = None
        self.stream_state: dict[str, Any] | None = None

    def stream_state_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.stream_state_file, p.events_file
        stored = _read(file)
        cursor = _read(p.cursor_file)
        pos = StreamPosition.from_json(stored.get("position")) if isinstance(stored, dict) else None
        if pos is None and isinstance(cursor, dict):
            pos = StreamPosition.from_json(cursor.get("position"))
        if pos is None:
            if stored is None:
                return ProjectionCheck(
                    file, stream, MATCH, True, reason="nothing recorded yet (no successful pass)"
                )
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
        if pos.byte_offset == 0:
            fold, position = StreamFold(), StreamPosition()
        else:
            try:
                reader = EventReader(stream, StreamPosition(), end_offset=pos.byte_offset)
                fold = fold_events(
                    StreamFold(), ((ev.line, ev.raw, ev.name, ev.timestamp) for ev in reader)
                )
            except OpsError as exc:
                return ProjectionCheck(file, stream, DIFFERS, False, ["$.fold"], reason=exc.message)
            position = reader.position
        self.position = position
        if isinstance(stored, dict):
            expected = dict(stored)
            expected["position"] = position.to_json()
            expected["fold"] = fold.to_json()
        else:
            base = cursor if isinstance(cursor, dict) else {}
            expected = {
                "schemaVersion": "v1",
                "updatedAt": base.get("updatedAt", format_ts(self.now)),
                "loopId": p.loop_id,
                "eventsFile": p.relative(stream),
                "position": position.to_json(),
                "eventLineCount": base.get("eventLineCount", position.line_offset),
                "tornTailBytes": 0,
                "fold": fold.to_json(),
            }
        self.stream_state = expected
        return _compare(file, stream, stored, expected)

    def cursor_check(self) -> ProjectionCheck:
        p = self.paths
        file = p.cursor_file
        stored = _read(file)
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
        return _compare(file, p.events_file, stored, expected, pretty=True)

    def drift_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.drift_state_file, p.drift_history_file
        stored = _read(file)
        row = _last_row(stream)
        if row is _UNREADABLE:
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
        return _compare(file, stream, stored, drift)

    def sequence_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.sequence_state_file, p.sequence_telemetry_file
        stored = _read(file)
        row = _last_row(stream)
        if row is _UNREADABLE:
            return ProjectionCheck(
                file, stream, NOT_REBUILDABLE, False, reason="the last sequence row is not JSON"
            )
        if row is None:
            return _absent_stream(file, stream, stored)
        return _compare(file, stream, stored, sequence_state_from_row(row))

    def heartbeat_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.heartbeat_state_file, p.heartbeat_telemetry_file
        stored = _read(file)
        row = _last_row(stream, lambda r: r.get("status") != "failed")
        if row is _UNREADABLE:
            return ProjectionCheck(
                file, stream, NOT_REBUILDABLE, False, reason="the last heartbeat row is not JSON"
            )
        if row is None:
            return _absent_stream(file, stream, stored)
        if not isinstance(stored, dict):
            return ProjectionCheck(
                file,
                stream,
                MISSING,
                False,
                ["$"],
                reason="heartbeat.jsonl rows do not record the heartbeat thresholds; "
                "the next successful reconcile rewrites heartbeat.json",
            )
        expected = heartbeat_state_from_row(row, stored.get("thresholds"))
        check = _compare(file, stream, stored, expected)
        check.reason = "thresholds are kept from the stored projection (not in the rows)"
        return check

    def transport_health_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.transport_health_file, p.reconcile_telemetry_file
        stored = _read(file)
        row = _last_row(stream)
        if row is _UNREADABLE:
            return ProjectionCheck(
                file, stream, NOT_REBUILDABLE, False, reason="the last reconcile row is not JSON"
            )
        if row is None:
            return _absent_stream(file, stream, stored)
        if not isinstance(stored, dict):
            return ProjectionCheck(
                file,
                stream,
                MISSING,
                False,
                ["$"],
                reason="the pass timestamps (updatedAt, lastSuccessAt, lastFailureAt) are not "
                "in the rows; the next reconcile rewrites transport-health.json",
            )
        check = _compare(file, stream, stored, transport_health_from_row(row, stored))
        check.reason = "updatedAt / lastSuccessAt / lastFailureAt are kept from the projection"
        return check

    def dispatch_check(self) -> ProjectionCheck:
        p = self.paths
        file, stream = p.alert_dispatch_state_file, p.escalations_file
        stored = _read(file)
        reason = (
            "dispatch outcomes (sink responses) are not in a stream this command re-folds; "
            "its escalation offsets were checked against escalations.jsonl"
        )
        if stored is None:
            return ProjectionCheck(
                file,
                stream,
                NOT_REBUILDABLE,
                False,
                reason="not written (alerts disabled, or dispatch never ran)",
            )
        if isinstance(stored, _Unreadable):
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
        file = p.health_file
        stored = _read(file)
        reason = (
            "health is computed from the runtime snapshot (last event time, heartbeat), the "
            "intents file and the clock at the time of each pass; those inputs are not kept "
            "in a stream. Checked against the last reconcile row (healthStatus, "
            "healthReasonCodes)"
        )
        if stored is None:
            return ProjectionCheck(file, None, NOT_REBUILDABLE, False, reason=reason)
        if isinstance(stored, _Unreadable):
            return ProjectionCheck(
                file, None, DIFFERS, False, ["$"], reason="the projection is unreadable"
            )
        row = _last_row(p.reconcile_telemetry_file)
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
        file = p.state_file
        stored = _read(file)
        reason = (
            "the lifecycle projection folds the runtime's files (state, run summary, approval) "
            "as they were at each pass; those are not kept in a stream. Checked for consistency "
            "with health.json and sequence-state.json (state.drift is not: a standalone "
            "profile-drift run legitimately moves profile-drift.json past it)"
        )
        if stored is None:
            return ProjectionCheck(file, None, NOT_REBUILDABLE, False, reason=reason)
        if isinstance(stored, _Unreadable):
            return ProjectionCheck(
                file, None, DIFFERS, False, ["$"], reason="the projection is unreadable"
            )
        diffs: list[str] = []
        for key, other in (
            ("health", _read(p.health_file)),
            ("sequence", _read(p.sequence_state_file)),
        ):
            if key in stored and isinstance(other, dict):
                diffs.extend(json_differences(stored[key], other, f"$.{key}"))
        status = DIFFERS if diffs else NOT_REBUILDABLE
        return ProjectionCheck(file, None, status, False, diffs, reason=reason)


def _absent_stream(
    file: Path, stream: Path, stored: dict[str, Any] | _Unreadable | None
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


def rebuild(paths: LoopPaths, *, write: bool = False, now: int | None = None) -> RebuildReport:
    """Re-fold every projection of a loop from its streams; with ``write``, restore the ones
    that differ (or are missing) and can be rebuilt.

    Raises :class:`OpsError` ``no ops-manager artifacts found for loop: <loop>`` when the
    loop has no ``.superloop/ops-manager/<loop>/`` directory.
    """
    if not paths.ops_dir.is_dir():
        raise OpsError(f"no ops-manager artifacts found for loop: {paths.loop_id}")
    at = utc_now_epoch() if now is None else now
    with exclusive_lock(paths.lock_file):
        r = _Rebuild(paths, at)
        # stream-state first: it provides the position the cursor is checked against
        rebuildable = [
            r.stream_state_check(),
            r.drift_check(),
            r.sequence_check(),
            r.heartbeat_check(),
            r.transport_health_check(),
            r.cursor_check(),
        ]
        if write:
            # in reconcile's order: projections, the cursor last
            for check in rebuildable:
                if check.status in (DIFFERS, MISSING) and check.expected is not None:
                    write_json(check.file, check.expected, pretty=check.pretty)
                    check.status = RESTORED
        # consistency checks look at the projections as they are now (after restoring)
        checks = (*rebuildable, r.dispatch_check(), r.health_check(), r.state_check())
    return RebuildReport(
        repo=paths.repo, loop_id=paths.loop_id, write=write, generated_at=at, checks=checks
    )


__all__ = [
    "DIFFERS",
    "MATCH",
    "MISSING",
    "NOT_REBUILDABLE",
    "RESTORED",
    "ProjectionCheck",
    "RebuildReport",
    "heartbeat_state_from_row",
    "json_differences",
    "rebuild",
    "sequence_state_from_row",
    "transport_health_from_row",
]
