"""Verdicts, pure re-derivations and reading helpers of ``rebuild``. Private to
:mod:`ops_manager.engine.rebuild`, which re-exports the public names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import dumps_compact, strip_nulls
from ops_manager._timefmt import format_ts
from ops_manager.reducers.transport import fold_reconcile_row
from ops_manager.store import Stream

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


def transport_health_fold(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """``transport-health.json`` as the fold of every ``telemetry/reconcile`` row, oldest
    first, through the pass's own step
    (:func:`~ops_manager.reducers.transport.next_transport_health`, one row at a time by
    :func:`~ops_manager.reducers.transport.fold_reconcile_row`).

    Each row records what the pass's step used: its outcome (``status``, ``failureCode``),
    its one clock value (``timestamp``), ``traceId`` and ``transport``. ``None`` when there
    is no row; a row without a parseable ``timestamp`` or ``transport`` raises ``ValueError``.
    """
    state: dict[str, Any] | None = None
    for row in rows:
        state = fold_reconcile_row(state, row)
    return state


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


class Unreadable:
    """A projection file that exists but is not a JSON object."""


UNREADABLE = Unreadable()


def read_projection(path: Path) -> dict[str, Any] | Unreadable | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return UNREADABLE
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return UNREADABLE
    return value if isinstance(value, dict) else UNREADABLE


def last_row(path: Path, accept: Callable[[dict[str, Any]], bool] = lambda _r: True) -> Any:
    """The last complete non-blank row of a stream that ``accept`` takes; ``None`` when
    there is none; ``UNREADABLE`` when the last candidate line is not a JSON object."""
    for line in Stream(path).lines_reverse():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return UNREADABLE
        if not isinstance(row, dict):
            return UNREADABLE
        if accept(row):
            return row
    return None


def compare_projection(
    file: Path,
    stream: Path | None,
    stored: dict[str, Any] | Unreadable | None,
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
