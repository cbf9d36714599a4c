"""Progress of a long run on stderr, for a person watching a terminal.

Reusable by any command that works through many loops (``fleet-reconcile`` today,
``supervise --once``). Wiring it in is three lines::

    from ops_manager.cli._progress import progress_line

    progress = progress_line(sys.stderr, quiet=args.quiet, verb="reconciled")
    try:
        work(progress=progress)          # calls progress(done, total, failed) as loops finish
    finally:
        if progress is not None:
            progress.finish()

:func:`progress_line` returns ``None`` unless the stream is a terminal, so scripts and
CI logs get nothing; stdout (the JSON) is never touched. No dependency: one ``\\r``
line is all a person needs, and ``rich`` would cost start-up time on every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class ProgressLine:
    """``reconciled 340/1000 loops (12 failed) 8.2s`` on one line, rewritten in place.

    Writes ``\\r`` + text + erase-to-end-of-line, at most every ``min_interval`` seconds
    (the last update always), and a newline from :meth:`finish`, so the shell prompt or
    the next message starts on a fresh line.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        verb: str = "reconciled",
    ) -> None:
        self.stream = stream
        self.verb = verb
        self.min_interval = min_interval
        self.clock = clock
        self.started = clock()
        self._last_write: float | None = None
        self._wrote = False

    def __call__(self, done: int, total: int, failed: int) -> None:
        """Report that ``done`` of ``total`` loops finished, ``failed`` of them failed."""
        now = self.clock()
        last = self._last_write
        if done < total and last is not None and now - last < self.min_interval:
            return
        self._last_write = now
        elapsed = now - self.started
        self.stream.write(
            f"\r{self.verb} {done}/{total} loops ({failed} failed) {elapsed:.1f}s\x1b[K"
        )
        self.stream.flush()
        self._wrote = True

    def finish(self) -> None:
        """End the progress line (no-op when nothing was written)."""
        if self._wrote:
            self.stream.write("\n")
            self.stream.flush()
            self._wrote = False


def progress_line(
    stream: TextIO, *, quiet: bool = False, verb: str = "reconciled"
) -> ProgressLine | None:
    """A :class:`ProgressLine` on ``stream`` when it is a terminal and not ``quiet``, else ``None``.

    ``verb`` starts the line (``reconciled 3/10 loops (1 failed) 0.4s``); the returned
    object is the ``progress(done, total, failed)`` callback the engines accept.
    """
    if quiet:
        return None
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return ProgressLine(stream, verb=verb) if interactive else None
