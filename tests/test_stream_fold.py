"""The event-stream fold: split-invariance, replay determinism, crash re-reads."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact
from ops_manager.reducers.stream import FoldedBatch, StreamFold, fold_batch, fold_events

NAMES = [
    "loop_start",
    "iteration_start",
    "role_start",
    "role_end",
    "loop_stop",
    "loop_complete",
    "approval_wait",
    "role_timeout",
    "tests_end",
]

event_st = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(["run-a", "run-b", "", None, 7]),
    st.integers(min_value=1, max_value=3),  # line gap (blank lines in between)
)


def _events(spec: list[tuple[str, Any, int]]) -> list[tuple[int, dict[str, Any], str, str]]:
    out = []
    line = 0
    for i, (name, run_id, gap) in enumerate(spec):
        line += gap
        raw: dict[str, Any] = {"event": name, "timestamp": f"2026-01-01T00:00:{i % 60:02d}Z"}
        if run_id is not None:
            raw["run_id"] = run_id
        out.append((line, raw, name, raw["timestamp"]))
    return out


@given(
    st.lists(event_st, max_size=60), st.lists(st.integers(min_value=0, max_value=60), max_size=6)
)
def test_any_split_into_batches_folds_like_one_full_fold(spec: list[Any], cuts: list[int]) -> None:
    events = _events(spec)
    full = fold_events(StreamFold(), events)
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    fold = StreamFold()
    for a, b in itertools.pairwise(bounds):
        fold = fold_events(fold, events[a:b])
    assert fold == full
    assert dumps_compact(fold.to_json()) == dumps_compact(full.to_json())


@given(st.lists(event_st, max_size=40), st.integers(min_value=0, max_value=40))
def test_re_reading_an_already_folded_range_changes_nothing(spec: list[Any], k: int) -> None:
    events = _events(spec)
    once = fold_events(StreamFold(), events)
    # a crash before the cursor commit makes the next pass re-read events[k:]
    again = fold_events(once, events[min(k, len(events)) :])
    assert again == once


@given(st.lists(event_st, max_size=40))
def test_replay_is_deterministic_and_round_trips(spec: list[Any]) -> None:
    events = _events(spec)
    a = fold_events(StreamFold(), events)
    b = fold_events(StreamFold(), list(events))
    assert dumps_compact(a.to_json()) == dumps_compact(b.to_json())
    assert StreamFold.from_json(a.to_json()) == a
    assert a.event_count == len(events)
    assert sum(a.by_name.values()) == len(events)


def test_terminal_and_run_id_changes() -> None:
    events = _events(
        [
            ("loop_start", "r1", 1),
            ("role_start", "r1", 1),
            ("loop_start", "r2", 1),
            ("loop_complete", "r1", 1),
        ]
    )
    fold = fold_events(StreamFold(), events)
    assert fold.last_terminal_event == "loop_complete"
    assert fold.last_terminal_line == 4
    # runtime-observed §1: consuming an approval flips run_id and back
    assert fold.run_id_changes == 2
    assert fold.last_run_id == "r1"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    )
)
def test_from_json_never_raises(obj: Any) -> None:
    fold = StreamFold.from_json(obj)
    assert isinstance(fold, StreamFold)


@given(
    st.lists(event_st, max_size=40),
    st.integers(min_value=0, max_value=40),
    st.none() | st.integers(min_value=0, max_value=80),
)
def test_fold_batch_watches_the_batch_it_folds(spec: list[Any], k: int, watch: int | None) -> None:
    events = _events(spec)
    prev = fold_events(StreamFold(), events[:k])  # a batch overlapping what is folded
    batch = fold_batch(prev, events, watch)
    assert batch.fold == fold_events(prev, events)
    watched = [raw for line, raw, _n, _t in events if line == watch]
    assert batch == FoldedBatch(
        batch.fold,
        count=len(events),
        first=events[0][0] if events else None,
        last=events[-1] if events else None,
        watched=watched[-1] if watched else None,
    )
