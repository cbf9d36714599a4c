"""``telemetry-summary``: sample the tails of the telemetry streams, fold them (pure), report.

Reading is O(window), not O(history): :meth:`Stream.tail <ops_manager.store.Stream.tail>`
reads backwards from the end block by block until it has the last ``n`` complete lines. A
final line without ``\\n`` is a write in progress (DESIGN rule 4): it is neither read nor
counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ops_manager._timefmt import utc_now_epoch
from ops_manager.errors import OpsError
from ops_manager.reducers.telemetry_summary import (
    SummarySource,
    malformed_counts,
    summarize_lines,
)
from ops_manager.store import LoopPaths, tail_lines


class SummaryResult(NamedTuple):
    """A summary and the warnings to show an operator (malformed rows skipped).

    A named tuple, not an ``attrs`` class: ``status`` imports no ``attrs``.
    """

    summary: dict[str, Any]
    warnings: tuple[str, ...] = ()


def summary_warnings(
    summary: dict[str, Any], reconcile_file: Path, control_file: Path, window: int
) -> tuple[str, ...]:
    """One warning per telemetry file whose sampled window had malformed rows."""
    rec, ctl = malformed_counts(summary)
    out = []
    for count, path in ((rec, reconcile_file), (ctl, control_file)):
        if count:
            out.append(
                f"skipped {count} malformed telemetry row(s) in the last {window} lines of {path}"
            )
    return tuple(out)


def summarize_with(
    *,
    paths: LoopPaths,
    reconcile_file: Path,
    control_file: Path,
    window: int,
    now: int,
    extra_reconcile_lines: Sequence[bytes] = (),
) -> SummaryResult:
    """Read the tails and fold them; ``extra_reconcile_lines`` are appended after the file's
    lines (reconcile passes the row it is about to append, so the summary sees the pass
    itself, as upstream's summary ran after the row was written)."""
    rec_lines = tail_lines(reconcile_file, window) + list(extra_reconcile_lines)
    ctl_lines = tail_lines(control_file, window)
    summary = summarize_lines(
        rec_lines,
        ctl_lines,
        source=SummarySource(
            repo_path=str(paths.repo),
            loop_id=paths.loop_id,
            reconcile_telemetry_file=str(reconcile_file),
            control_telemetry_file=str(control_file),
            window=window,
        ),
        now=now,
    )
    return SummaryResult(
        summary=summary,
        warnings=summary_warnings(summary, reconcile_file, control_file, window),
    )


def telemetry_summary(
    paths: LoopPaths,
    *,
    window: int = 200,
    reconcile_file: Path | None = None,
    control_file: Path | None = None,
    now: int | None = None,
) -> SummaryResult:
    """The telemetry summary of one loop (``loop.md`` §3.6).

    Raises :class:`OpsError` ``reconcile telemetry file not found: <path>`` when the
    reconcile stream does not exist; a missing control stream is an empty sample. Malformed
    rows are skipped and reported (``observed.malformedRows`` + :attr:`SummaryResult.warnings`).
    """
    if window < 1:
        raise OpsError("--window must be an integer >= 1")
    rec = reconcile_file or paths.reconcile_telemetry_file
    ctl = control_file or paths.control_telemetry_file
    if not rec.is_file():
        raise OpsError(f"reconcile telemetry file not found: {rec}")
    return summarize_with(
        paths=paths,
        reconcile_file=rec,
        control_file=ctl,
        window=window,
        now=utc_now_epoch() if now is None else now,
    )


__all__ = [
    "SummaryResult",
    "summarize_with",
    "summary_warnings",
    "tail_lines",
    "telemetry_summary",
]
