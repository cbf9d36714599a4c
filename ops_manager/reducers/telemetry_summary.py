"""The telemetry summary (``loop.md`` §3.6): a pure fold of recent reconcile/control rows
into counts, rates, a recommended threshold profile, a confidence and a rationale.

The shell samples the last ``window`` physical lines of ``TEL/reconcile.jsonl`` and
``TEL/control.jsonl`` (blank lines occupy window slots but contribute no rows, Q-40) and
hands the lines here; :func:`summarize_lines` parses them, :func:`summarize_rows` folds the
parsed rows. Nothing here reads a file or the clock: ``now`` arrives as data.

Deliberate difference from upstream (Q-34): a line that is not a JSON object does not fail
the whole summary. It is skipped and counted in the trailing ``observed.malformedRows``
(``{"reconcile": n, "control": m}``); the shell warns about it.

Every metric is a function of the *multiset* of rows, so the result does not depend on the
order of the rows inside the window (property-tested).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ops_manager.model._time import format_ts

#: recommendation -> rationale (exact contract strings)
RATIONALE_NO_DATA = "No telemetry window yet; keep balanced defaults"
RATIONALE_RELAXED = "Observed high critical/failure rates; reduce alert noise while stabilizing"
RATIONALE_STRICT = "Observed stable healthy runs; tighten thresholds for faster detection"
RATIONALE_BALANCED = "Observed mixed signals; keep balanced thresholds"

#: a JSON number as text (what ``tonumber`` accepts from a string, minus NaN/Infinity)
_NUMBER = re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")


class SummarySource(NamedTuple):
    """The ``source`` block: where the rows came from and the *requested* window.

    A named tuple, not an ``attrs`` class: ``status`` folds a summary and imports no
    ``attrs``.
    """

    repo_path: str
    loop_id: str
    reconcile_telemetry_file: str
    control_telemetry_file: str
    window: int

    def to_json(self) -> dict[str, Any]:
        """The contract's ``source`` object (key order of §3.6)."""
        return {
            "repoPath": self.repo_path,
            "loopId": self.loop_id,
            "reconcileTelemetryFile": self.reconcile_telemetry_file,
            "controlTelemetryFile": self.control_telemetry_file,
            "window": self.window,
        }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_line(line: bytes | str) -> tuple[bool, Any]:
    """Parse one telemetry line: ``(False, None)`` for a blank line, ``(True, value)`` for a
    JSON value, ``(True, _MALFORMED)`` when it is not JSON at all."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError:
        return True, _MALFORMED
    if not text.strip():
        return False, None
    try:
        return True, _DECODER.decode(text.strip())
    except (ValueError, RecursionError):
        return True, _MALFORMED


class _Malformed:
    """Sentinel for a line that is not JSON (never a dict, so it counts as malformed)."""

    def __repr__(self) -> str:
        return "MALFORMED"


_MALFORMED: Any = _Malformed()


def parse_lines(lines: Iterable[bytes | str]) -> list[Any]:
    """The rows of a sample of lines: blank lines dropped, unparseable ones kept as a
    sentinel that :func:`summarize_rows` counts as malformed."""
    rows: list[Any] = []
    for line in lines:
        present, value = parse_line(line)
        if present:
            rows.append(value)
    return rows


def to_number(value: object) -> int | float | None:
    """jq ``tonumber`` on a ``durationSeconds`` value; ``None`` when it is not numeric.

    Numbers pass (booleans are not numbers), numeric strings parse, NaN/Infinity and
    everything else are dropped. Integral values come back as ``int``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER.match(text):
            return None
        if re.fullmatch(r"-?[0-9]+", text):
            return int(text)
        num = float(text)
        if not math.isfinite(num):
            return None
        return int(num) if num.is_integer() else num
    return None


def rate(count: int, total: int) -> int | float:
    """``count / total`` as an exact ratio; integer ``0`` when ``total`` is 0.

    Integral results print as integers (``1``, ``0``), as jq prints them.
    """
    if total == 0:
        return 0
    value = count / total
    return int(value) if value.is_integer() else value


def _percentile(values: Sequence[int | float], p: float) -> int | float | None:
    """The element at index ``floor((n - 1) * p)`` of the ascending values (None if empty)."""
    if not values:
        return None
    return values[math.floor((len(values) - 1) * p)]


def recommend(
    attempts: int, critical_rate: float, failed_rate: float, degraded_rate: float, ambiguous: int
) -> tuple[str, str]:
    """``(recommendedProfile, rationale)``: the first matching rule of §3.6."""
    if attempts == 0:
        return "balanced", RATIONALE_NO_DATA
    if critical_rate >= 0.20 or failed_rate >= 0.25:
        return "relaxed", RATIONALE_RELAXED
    if critical_rate == 0 and degraded_rate <= 0.05 and failed_rate <= 0.02 and ambiguous == 0:
        return "strict", RATIONALE_STRICT
    return "balanced", RATIONALE_BALANCED


def confidence_for(attempts: int) -> str:
    """``high`` for >= 100 rows, ``medium`` for >= 30, else ``low``."""
    if attempts >= 100:
        return "high"
    if attempts >= 30:
        return "medium"
    return "low"


def reason_code_frequency(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``healthReasonCodes`` of all rows flattened and counted; sorted by count descending,
    ties by code descending (upstream: ``group_by | sort_by(.count) | reverse``).

    Only string codes count (a non-list ``healthReasonCodes`` contributes nothing).
    """
    counts: dict[str, int] = {}
    for row in rows:
        codes = row.get("healthReasonCodes")
        if not isinstance(codes, list):
            continue
        for code in codes:
            if isinstance(code, str):
                counts[code] = counts.get(code, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return [{"code": code, "count": count} for code, count in ordered]


def summarize_rows(
    reconcile_rows: Sequence[Any],
    control_rows: Sequence[Any],
    *,
    source: SummarySource,
    now: int,
) -> dict[str, Any]:
    """The summary object of §3.6 (key order exact) plus ``observed.malformedRows``.

    ``reconcile_rows`` / ``control_rows`` are parsed JSON values; anything that is not an
    object is malformed (skipped and counted). Never raises on any input.
    """
    ambiguous, malformed = control_counts(control_rows)
    return summarize_counted(
        reconcile_rows,
        control_ambiguous=ambiguous,
        control_malformed=malformed,
        source=source,
        now=now,
    )


def control_counts(control_rows: Sequence[Any]) -> tuple[int, int]:
    """``(ambiguous, malformed)`` of a control sample: all the summary takes from it (a
    reconcile pass records both, so ``rebuild`` can re-derive ``state.tuning``)."""
    ctrls = [r for r in control_rows if isinstance(r, dict)]
    ambiguous = sum(
        1
        for r in ctrls
        if r.get("status") == "ambiguous" or r.get("reasonCode") == "control_ambiguous"
    )
    return ambiguous, len(control_rows) - len(ctrls)


def summarize_counted(
    reconcile_rows: Sequence[Any],
    *,
    control_ambiguous: int,
    control_malformed: int,
    source: SummarySource,
    now: int,
) -> dict[str, Any]:
    """:func:`summarize_rows` with the control sample already reduced to its two counts
    (:func:`control_counts`); the one fold both a pass and ``rebuild`` run."""
    recs = [r for r in reconcile_rows if isinstance(r, dict)]
    n = len(recs)
    success = sum(1 for r in recs if r.get("status") == "success")
    failed = sum(1 for r in recs if r.get("status") == "failed")
    degraded = sum(1 for r in recs if r.get("healthStatus") == "degraded")
    critical = sum(1 for r in recs if r.get("healthStatus") == "critical")
    ambiguous = control_ambiguous
    durations = sorted(
        d for d in (to_number(r.get("durationSeconds")) for r in recs) if d is not None
    )
    degraded_rate = rate(degraded, n)
    critical_rate = rate(critical, n)
    failed_rate = rate(failed, n)
    profile, rationale = recommend(n, critical_rate, failed_rate, degraded_rate, ambiguous)
    return {
        "schemaVersion": "v1",
        "generatedAt": format_ts(now),
        "source": source.to_json(),
        "observed": {
            "reconcileAttempts": n,
            "reconcileSuccessCount": success,
            "reconcileFailedCount": failed,
            "health": {
                "degradedCount": degraded,
                "criticalCount": critical,
                "degradedRate": degraded_rate,
                "criticalRate": critical_rate,
                "reasonCodeFrequency": reason_code_frequency(recs),
            },
            "control": {"ambiguousCount": ambiguous},
            "durationSeconds": {
                "p50": _percentile(durations, 0.5),
                "p95": _percentile(durations, 0.95),
                "max": durations[-1] if durations else None,
            },
            "malformedRows": {
                "reconcile": len(reconcile_rows) - n,
                "control": control_malformed,
            },
        },
        "recommendedProfile": profile,
        "confidence": confidence_for(n),
        "rationale": rationale,
    }


def summarize_lines(
    reconcile_lines: Sequence[bytes | str],
    control_lines: Sequence[bytes | str],
    *,
    source: SummarySource,
    now: int,
) -> dict[str, Any]:
    """Sample the last ``source.window`` lines of each input, parse and fold them.

    The inputs may be longer than the window (the shell passes the lines it read, plus,
    in reconcile, the row it is about to append); only the last ``window`` count.
    """
    window = max(source.window, 0)
    rec_sample = list(reconcile_lines)[-window:] if window else []
    ctl_sample = list(control_lines)[-window:] if window else []
    return summarize_rows(parse_lines(rec_sample), parse_lines(ctl_sample), source=source, now=now)


def malformed_counts(summary: dict[str, Any]) -> tuple[int, int]:
    """``(reconcile, control)`` malformed-row counts of a summary (0 when absent)."""
    observed = summary.get("observed")
    block = observed.get("malformedRows") if isinstance(observed, dict) else None
    if not isinstance(block, dict):
        return 0, 0
    rec, ctl = block.get("reconcile"), block.get("control")
    return (rec if isinstance(rec, int) else 0, ctl if isinstance(ctl, int) else 0)


__all__ = [
    "RATIONALE_BALANCED",
    "RATIONALE_NO_DATA",
    "RATIONALE_RELAXED",
    "RATIONALE_STRICT",
    "SummarySource",
    "confidence_for",
    "control_counts",
    "malformed_counts",
    "parse_line",
    "parse_lines",
    "rate",
    "reason_code_frequency",
    "recommend",
    "summarize_counted",
    "summarize_lines",
    "summarize_rows",
    "to_number",
]
