"""The event-stream fold: everything the manager keeps about ``events.jsonl`` itself.

Pure. ``fold_events(fold, events)`` consumes ``(line, raw, name, timestamp)`` tuples in line
order and returns the new fold. Lines at or below ``fold.line`` were already folded and are
skipped, so re-reading a range after a crash never double-counts, and folding a stream in any
split of batches gives exactly the fold of the whole stream (property-tested).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs

#: events after which the runtime is no longer iterating (loop.md §1.2 + runtime-observed)
TERMINAL_EVENTS = frozenset(
    {"loop_complete", "loop_stop", "no_progress_stop", "rate_limit_stop", "role_timeout"}
)


@attrs.frozen
class StreamFold:
    """What the manager has folded out of a loop's event log so far."""

    #: physical line number of the last folded event (0 = nothing folded)
    line: int = 0
    event_count: int = 0
    first_event_at: str | None = None
    last_event_at: str | None = None
    last_event_name: str | None = None
    last_run_id: str | None = None
    #: how many times ``run_id`` changed between consecutive events (runtime-observed §1)
    run_id_changes: int = 0
    last_terminal_event: str | None = None
    last_terminal_line: int = 0
    #: event name -> count, keys sorted for byte-stable output
    by_name: dict[str, int] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The on-disk shape (camelCase, stable key order)."""
        return {
            "line": self.line,
            "eventCount": self.event_count,
            "firstEventAt": self.first_event_at,
            "lastEventAt": self.last_event_at,
            "lastEventName": self.last_event_name,
            "lastRunId": self.last_run_id,
            "runIdChanges": self.run_id_changes,
            "lastTerminalEvent": self.last_terminal_event,
            "lastTerminalLine": self.last_terminal_line,
            "byName": dict(sorted(self.by_name.items())),
        }

    @classmethod
    def from_json(cls, obj: object) -> StreamFold:
        """Read a stored fold; anything malformed gives the empty fold (a rebuild restores it)."""
        if not isinstance(obj, dict):
            return cls()
        try:
            by_name = obj.get("byName") or {}
            return cls(
                line=_int(obj.get("line")),
                event_count=_int(obj.get("eventCount")),
                first_event_at=_str(obj.get("firstEventAt")),
                last_event_at=_str(obj.get("lastEventAt")),
                last_event_name=_str(obj.get("lastEventName")),
                last_run_id=_str(obj.get("lastRunId")),
                run_id_changes=_int(obj.get("runIdChanges")),
                last_terminal_event=_str(obj.get("lastTerminalEvent")),
                last_terminal_line=_int(obj.get("lastTerminalLine")),
                by_name={str(k): _int(v) for k, v in by_name.items()},
            )
        except (AttributeError, TypeError):
            return cls()


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


#: one event as the fold consumes it: (physical line, parsed raw object, name, timestamp)
EventTuple = tuple[int, dict[str, Any], str, str]


@attrs.frozen
class FoldedBatch:
    """A batch folded in one pass: the new fold, and what the caller watches on the way."""

    fold: StreamFold
    #: events in the batch (already folded ones included)
    count: int = 0
    #: line of the first event in the batch
    first: int | None = None
    #: the last event in the batch
    last: EventTuple | None = None
    #: ``raw`` of the event at the watched line, if the batch had it
    watched: dict[str, Any] | None = None


def fold_events(fold: StreamFold, events: Iterable[EventTuple]) -> StreamFold:
    """Fold ``(line, raw, name, timestamp)`` events (in line order) into ``fold``.

    Reads only strings of ``raw`` (``run_id``), so a fold-grade ``raw`` folds exactly.
    """
    return fold_batch(fold, events).fold


def fold_batch(
    fold: StreamFold, events: Iterable[EventTuple], watch_line: int | None = None
) -> FoldedBatch:
    """:func:`fold_events`, also counting the batch and keeping its first line, its last
    event and the ``raw`` at ``watch_line`` (what a reconcile pass records of its batch).

    Written as one tight loop over locals: it runs once per event on the reconcile hot path,
    so the watching shares the fold's loop instead of adding a generator layer.
    """
    line = fold.line
    count = fold.event_count
    first_at = fold.first_event_at
    last_at = fold.last_event_at
    last_name = fold.last_event_name
    last_run = fold.last_run_id
    changes = fold.run_id_changes
    term_event = fold.last_terminal_event
    term_line = fold.last_terminal_line
    by_name = defaultdict(int, fold.by_name)
    terminal = TERMINAL_EVENTS
    skipped = 0
    watch = -1 if watch_line is None else watch_line  # an int compares faster than None
    watched: dict[str, Any] | None = None
    it = iter(events)
    item = next(it, None)
    if item is None:
        return FoldedBatch(fold)
    first = item[0]
    for ev_line, raw, name, timestamp in itertools.chain((item,), it):
        if ev_line == watch:
            watched = raw
        if ev_line <= line:
            skipped += 1
            continue  # already folded (a re-read after a crash, or an overlapping batch)
        line = ev_line
        count += 1
        if first_at is None:
            first_at = timestamp
        last_at = timestamp
        last_name = name
        by_name[name] += 1
        run_id = raw.get("run_id")
        # the same non-empty run id as before changes nothing: one comparison per event
        if run_id != last_run and isinstance(run_id, str) and run_id:
            if last_run is not None:
                changes += 1
            last_run = run_id
        if name in terminal:
            term_event = name
            term_line = ev_line
    new_fold = StreamFold(
        line=line,
        event_count=count,
        first_event_at=first_at,
        last_event_at=last_at,
        last_event_name=last_name,
        last_run_id=last_run,
        run_id_changes=changes,
        last_terminal_event=term_event,
        last_terminal_line=term_line,
        by_name=dict(by_name),
    )
    # the loop variables hold the last event once the loop is done
    seen = count - fold.event_count + skipped
    return FoldedBatch(new_fold, seen, first, (ev_line, raw, name, timestamp), watched)
