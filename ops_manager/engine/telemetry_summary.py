"""``telemetry-summary``: sample the tails of the telemetry streams, fold them (pure), report.

Reading is O(window), not O(history): :func:`tail_lines` seeks to the end of the file and
reads backwards block by block until it has the last ``n`` complete lines. A final line
without ``\\n`` is a write in progress (DESIGN rule 4): it is neither read nor counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from ops_manager._timefmt import utc_now_epoch
from ops_manager.errors import OpsError
from ops_manager.reducers.telemetry_summary import (
    SummarySource,
    malformed_counts,
    summarize_lines,
)
from ops_manager.store import LoopPaths

_BLOCK = 64 * 1024


def _complete_end(handle: BinaryIO, size: int) -> int:
    """The offset just after the last ``\\n`` of the file (0 when it has none)."""
    pos = size
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        handle.seek(pos)
        chunk = handle.read(step)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return pos + idx + 1
    return 0


def iter_lines_reverse(path: Path) -> Iterator[bytes]:
    """Yield the complete physical lines of ``path`` from the last to the first (without
    their ``\\n``; blank lines included). An unterminated final line is skipped. A missing
    file yields nothing. Memory is bounded by one block plus the longest line."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with-block below
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return
    with handle:
        size = handle.seek(0, os.SEEK_END)
        end = _complete_end(handle, size)
        pos = end
        carry = b""  # the (possibly partial) first line of the block read last, with its \n
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            handle.seek(pos)
            # every buffer ends at a line boundary ("\n"), so the split's last part is b""
            buf = handle.read(step) + carry
            body = buf.split(b"\n")[:-1]
            if pos > 0:
                carry = body[0] + b"\n"
                complete = body[1:]
            else:
                carry = b""
                complete = body
            yield from reversed(complete)


def tail_lines(path: Path, n: int) -> list[bytes]:
    """The last ``n`` complete physical lines of ``path`` (blank ones included), oldest
    first. ``[]`` when the file is missing or ``n <= 0``."""
    if n <= 0:
        return []
    out: list[bytes] = []
    for line in iter_lines_reverse(path):
        out.append(line)
        if len(out) >= n:
            break
    out.reverse()
    return out


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
    "iter_lines_reverse",
    "summarize_with",
    "summary_warnings",
    "tail_lines",
    "telemetry_summary",
]
