"""The supervisor's worker pool: long-lived daemon threads with a per-job deadline.

``fleet-reconcile`` runs its loops on a ``ThreadPoolExecutor`` made for one run. A
supervisor runs forever, so it needs two things an executor does not give:

- a deadline per loop: a sprite that hangs must not hold the tick. A Python thread cannot
  be killed, so a job past its deadline is *given up on* (its result slot becomes
  :data:`TIMED_OUT`), its worker is written off and a replacement thread starts, so the
  other loops keep ``max_parallel`` workers. The late job finishes on its own and its
  worker then exits; until then its key stays in :attr:`LoopPool.busy`, so the
  supervisor never starts a second reconcile of the same loop;
- daemon threads, so SIGTERM can abandon a tick: the process exits without joining a
  worker stuck in a socket read (every write of a reconcile is atomic or an append, and
  the flocks die with the process).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final

#: the result slot of a job that missed its deadline
TIMED_OUT: Final = object()
#: the result slot of a job never started (or abandoned) because the pool was told to stop
ABANDONED: Final = object()

_Job = tuple[Hashable, Callable[[], Any], "queue.Queue[tuple[Hashable, Any]]"]


class LoopPool:
    """``workers`` daemon threads taking jobs from one queue, reused across ticks."""

    def __init__(self, workers: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._live = 0  # workers that count towards the target (stuck ones do not)
        #: key -> start time (monotonic) of every job running now, late ones included
        self._running: dict[Hashable, float] = {}
        self._stuck: set[Hashable] = set()
        for _ in range(workers):
            self._spawn()

    @property
    def busy(self) -> frozenset[Hashable]:
        """Keys whose job is still running (a late job from an earlier tick included)."""
        with self._lock:
            return frozenset(self._running)

    def _spawn(self) -> None:
        with self._lock:
            self._live += 1
        threading.Thread(target=self._work, name="supervise-loop", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            key, fn, results = job
            with self._lock:
                self._running[key] = self._clock()
            try:
                outcome: Any = fn()
            except BaseException as exc:  # a job must never take its worker down
                outcome = exc
            with self._lock:
                self._running.pop(key, None)
                was_stuck = key in self._stuck
                self._stuck.discard(key)
            results.put((key, outcome))
            if was_stuck:
                # a replacement took this worker's place when the job was given up on
                return

    def run(
        self,
        jobs: Sequence[tuple[Hashable, Callable[[], Any]]],
        *,
        timeout: float,
        stop: threading.Event,
        grace: float = 5.0,
        on_result: Callable[[Hashable, Any], None] | None = None,
    ) -> dict[Hashable, Any]:
        """Run ``jobs`` (key, fn); return key -> result, :data:`TIMED_OUT` or :data:`ABANDONED`.

        A job raising yields its exception as the result. Once ``stop`` is set, queued jobs
        are dropped (:data:`ABANDONED`) and running ones get ``grace`` more seconds.
        """
        results: queue.Queue[tuple[Hashable, Any]] = queue.Queue()
        pending = {key for key, _ in jobs}
        out: dict[Hashable, Any] = {}
        for key, fn in jobs:
            self._jobs.put((key, fn, results))
        stop_at: float | None = None
        while pending:
            try:
                key, outcome = results.get(timeout=0.05)
            except queue.Empty:
                pass
            else:
                if key in pending:
                    pending.discard(key)
                    out[key] = outcome
                    if on_result is not None:
                        on_result(key, outcome)
                continue
            now = self._clock()
            if stop.is_set() and stop_at is None:
                stop_at = now + grace
                self._drain(pending, out)
            with self._lock:
                late = [
                    k
                    for k, started in self._running.items()
                    if k in pending and k not in self._stuck and now - started > timeout
                ]
                self._stuck.update(late)
                self._live -= len(late)
            for k in late:
                pending.discard(k)
                out[k] = TIMED_OUT
                self._spawn()
            if stop_at is not None and now >= stop_at:
                for k in pending:
                    out[k] = ABANDONED
                pending.clear()
        return out

    def _drain(self, pending: set[Hashable], out: dict[Hashable, Any]) -> None:
        """Drop every queued job of this run (they never started)."""
        kept: list[_Job | None] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and job[0] in pending:
                pending.discard(job[0])
                out[job[0]] = ABANDONED
            else:
                kept.append(job)
        for job in kept:
            self._jobs.put(job)


__all__ = ["ABANDONED", "TIMED_OUT", "LoopPool"]
