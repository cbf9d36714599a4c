"""One generic property over every fold of the package (issue 13.4).

For each :class:`tests.folds.FoldSpec`: for any stream and any split of it, folding the
parts one after the other from the intermediate states gives the state of the fold of the
whole (incremental == cold, compared as values and as the written bytes); replaying the same
events gives an equal state with equal bytes (and, where the projection is read back, the
bytes read back give the state again); no generated event raises, except the exceptions the
fold's contract names (``FoldSpec.rejects``), and then the split fold rejects the same event;
and the spec's invariant holds of every state reached.
A self-check shows the property catches a broken fold, and a coverage check makes a new
fold-shaped reducer without a spec a test failure.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import pkgutil
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ops_manager.reducers
from ops_manager._jsonfmt import dumps_compact
from ops_manager.errors import CorruptStreamError
from ops_manager.reducers.stream import StreamFold, fold_events
from ops_manager.store import iter_records
from tests.folds import FOLDS, STREAM, FoldSpec

#: 150 examples per fold and test: the whole file runs in ~20 s on one shared core
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@attrs.frozen
class Rejected:
    """The fold refused the event at ``index`` (of the whole stream) with ``error``."""

    index: int
    error: type[Exception]


def _run_steps(spec: FoldSpec[Any, Any], state: Any, events: Sequence[Any], offset: int) -> Any:
    """``state`` folded over ``events`` one step at a time, or :class:`Rejected`."""
    for i, event in enumerate(events):
        try:
            state = spec.step(state, event)
        except spec.rejects as exc:
            return Rejected(offset + i, type(exc))
        if spec.invariant is not None:
            spec.invariant(state)
    return state


def _run_batch(spec: FoldSpec[Any, Any], state: Any, events: Sequence[Any]) -> Any:
    assert spec.batch is not None
    try:
        return spec.batch(state, events)
    except spec.rejects as exc:
        return Rejected(-1, type(exc))


def _bounds(n: int, cuts: list[int]) -> list[int]:
    return sorted({0, n, *(min(c, n) for c in cuts)})


def _assert_same(spec: FoldSpec[Any, Any], got: Any, want: Any, what: str) -> None:
    if isinstance(want, Rejected) or isinstance(got, Rejected):
        # a batch cannot say which event it refused: compare the error only
        if isinstance(got, Rejected) and isinstance(want, Rejected):
            assert got.error is want.error, what
            assert -1 in (got.index, want.index) or got.index == want.index, what
            return
        raise AssertionError(f"{what}: {got!r} != {want!r}")
    assert got == want, what
    assert spec.serialize(got) == spec.serialize(want), f"{what} (serialized)"


def check_incremental_equals_cold(
    spec: FoldSpec[Any, Any], events: list[Any], cuts: list[int]
) -> None:
    """The split property for one stream and one set of cut points."""
    cold = _run_steps(spec, spec.initial(), events, 0)
    bounds = _bounds(len(events), cuts)

    state: Any = spec.initial()
    for a, b in itertools.pairwise(bounds):
        state = _run_steps(spec, state, events[a:b], a)
        if isinstance(state, Rejected):
            break
    _assert_same(spec, state, cold, "steps over the split != steps over the whole")

    if spec.load is not None:
        # what really happens between passes: the state is written, and read back
        state = spec.initial()
        for a, b in itertools.pairwise(bounds):
            state = _run_steps(spec, state, events[a:b], a)
            if isinstance(state, Rejected):
                break
            state = spec.load(spec.serialize(state))
        _assert_same(spec, state, cold, "steps persisted at each cut != steps over the whole")

    if spec.batch is not None:
        whole = _run_batch(spec, spec.initial(), events)
        _assert_same(spec, whole, cold, "the batch of the whole != steps over the whole")
        state = spec.initial()
        for a, b in itertools.pairwise(bounds):
            state = _run_batch(spec, state, events[a:b])
            if isinstance(state, Rejected):
                break
        _assert_same(spec, state, cold, "batches over the split != steps over the whole")

    if spec.cold is not None and not isinstance(cold, Rejected):
        _assert_same(spec, spec.cold(events), cold, "the whole-stream function != the steps")


def check_replay(spec: FoldSpec[Any, Any], events: list[Any]) -> None:
    """Replay determinism (and the written bytes read back) for one stream."""
    first = _run_steps(spec, spec.initial(), events, 0)
    second = _run_steps(spec, spec.initial(), list(events), 0)
    _assert_same(spec, second, first, "a replay of the same events differs")
    if spec.load is not None and not isinstance(first, Rejected):
        text = spec.serialize(first)
        back = spec.load(text)
        assert back == first, "the written projection reads back as another state"
        assert spec.serialize(back) == text, "the projection read back writes other bytes"


@pytest.mark.parametrize("spec", FOLDS, ids=lambda s: s.name)
@PROPERTY
@given(data=st.data())
def test_incremental_equals_cold(spec: FoldSpec[Any, Any], data: st.DataObject) -> None:
    events = data.draw(spec.events, label="events")
    cuts = data.draw(
        st.lists(st.integers(0, max(len(events), 1)), max_size=4), label="split points"
    )
    check_incremental_equals_cold(spec, events, cuts)


@pytest.mark.parametrize("spec", FOLDS, ids=lambda s: s.name)
@PROPERTY
@given(data=st.data())
def test_replay_is_deterministic(spec: FoldSpec[Any, Any], data: st.DataObject) -> None:
    check_replay(spec, data.draw(spec.events, label="events"))


# --- the reader's side of the contract ------------------------------------------------


@PROPERTY
@given(
    st.lists(
        st.sampled_from(
            [
                b'{"a":1}',
                b"",
                b"  ",
                b'{"t":NaN}',
                b'{"t":-Infinity}',
                b'{"x":[1e5,"NaN",1e999]}',
                b'{"x":2.5e-400}',
            ]
        )
        | st.binary(max_size=12),
        max_size=6,
    )
)
def test_the_reader_hands_over_only_writable_records(lines: list[bytes]) -> None:
    """The folds copy record values into the projections they write (``executedAt``, an
    outbox event, a heartbeat object): every record ``Stream.records`` yields must be
    writable by the projections' encoder, or the reader must refuse the line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.jsonl"
        path.write_bytes(b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines))
        try:
            records = [rec for _, rec in iter_records(path)]
        except CorruptStreamError:
            return
    for rec in records:
        assert isinstance(rec, dict)
        dumps_compact(rec)  # raises ValueError on NaN / Infinity


# --- the property can fail --------------------------------------------------------------

_calls = itertools.count()


def _counting_batch(state: StreamFold, events: Sequence[Any]) -> StreamFold:
    """A stream fold that also counts how often it was called: right for one cold read,
    wrong as soon as the stream is folded in more than one batch."""
    folded = fold_events(state, events)
    return attrs.evolve(folded, run_id_changes=folded.run_id_changes + 1)


def _clocked_step(state: StreamFold, event: Any) -> StreamFold:
    """A stream fold that stamps a process-wide counter (a clock, a random id): every
    replay of the same events gives another state."""
    folded = fold_events(state, [event])
    return attrs.evolve(folded, last_event_at=str(next(_calls)))


def _lossy_load(text: str) -> StreamFold:
    """Reads the projection back without ``byName`` (a field the writer adds and the
    reader forgot)."""
    assert STREAM.load is not None
    return attrs.evolve(STREAM.load(text), by_name={})


BROKEN: list[tuple[str, FoldSpec[Any, Any], Any]] = [
    ("counts-batches", attrs.evolve(STREAM, batch=_counting_batch), check_incremental_equals_cold),
    ("clocked", attrs.evolve(STREAM, step=_clocked_step, batch=None), check_replay),
    ("lossy-read-back", attrs.evolve(STREAM, load=_lossy_load), check_replay),
]


@pytest.mark.parametrize(("label", "spec", "check"), BROKEN, ids=[b[0] for b in BROKEN])
def test_the_property_catches_a_broken_fold(
    label: str, spec: FoldSpec[Any, Any], check: Any
) -> None:
    # generate only: the point is that a counterexample is found, not its shrunk form
    @settings(max_examples=200, deadline=None, database=None, phases=[Phase.generate])
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        events = data.draw(spec.events)
        if check is check_replay:
            check(spec, events)
        else:
            check(spec, events, data.draw(st.lists(st.integers(0, 40), max_size=4)))

    with pytest.raises(AssertionError):
        prop()


def test_a_rejecting_step_is_compared_not_swallowed() -> None:
    """A fold that rejects an event in the cold run must reject it in the split run too."""

    def step(state: int, event: int) -> int:
        if event < 0:
            raise ValueError("negative")
        return state + event

    spec = FoldSpec[int, int](
        name="sum",
        initial=int,
        step=step,
        events=st.just([1, -1, 2]),
        serialize=str,
        covers=(),
        rejects=(ValueError,),
    )
    check_incremental_equals_cold(spec, [1, -1, 2], [1, 2])
    assert _run_steps(spec, 0, [1, -1, 2], 0) == Rejected(1, ValueError)
    # an exception the contract does not name is a failure, not a rejection
    with pytest.raises(ValueError):
        check_replay(attrs.evolve(spec, rejects=()), [1, -1])


# --- every fold has a spec ----------------------------------------------------------------

#: a public name under ops_manager/reducers/ is fold-shaped when it is named like a fold
#: step (``fold``, ``fold_*``, ``*_fold``, ``*_step``, a ``*Fold`` class) or its docstring
#: says it is one (first line "Fold ..." / "A fold ..." / "The ... fold ...")
_FOLD_NAME = re.compile(r"^fold(_|$)|_fold$|_step$|Fold$")
_FOLD_DOC = re.compile(r"^(fold\b|a fold\b|the [\w -]*\bfold\b)", re.IGNORECASE)

#: fold-shaped names that are not folds over a stream, and why
NOT_FOLDS: dict[str, str] = {
    "ops_manager.reducers.stream:FoldedBatch": "the result of fold_batch, not a fold itself",
}


def _fold_shaped_names() -> set[str]:
    found: set[str] = set()
    prefix = ops_manager.reducers.__name__ + "."
    for info in pkgutil.walk_packages(ops_manager.reducers.__path__, prefix):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = (inspect.getdoc(obj) or "").splitlines()
            first = doc[0] if doc else ""
            if _FOLD_NAME.search(name) or _FOLD_DOC.match(first):
                found.add(f"{module.__name__}:{name}")
    return found


def _resolve(qualified: str) -> Any:
    module, _, name = qualified.partition(":")
    return getattr(importlib.import_module(module), name)


def test_every_fold_shaped_reducer_is_registered() -> None:
    covered = {name for spec in FOLDS for name in spec.covers}
    missing = _fold_shaped_names() - covered - set(NOT_FOLDS)
    assert not missing, (
        "fold-shaped reducers without a FoldSpec in tests/folds.py (register them, or list "
        f"them in NOT_FOLDS with the reason): {sorted(missing)}"
    )


def test_registry_names_are_real_and_unique() -> None:
    names = [spec.name for spec in FOLDS]
    assert len(names) == len(set(names))
    for qualified in [n for spec in FOLDS for n in spec.covers] + list(NOT_FOLDS):
        assert callable(_resolve(qualified)), qualified


def test_the_coverage_rule_sees_the_known_folds() -> None:
    """The rule is not vacuous: it finds the folds the registry was written from."""
    shaped = _fold_shaped_names()
    for known in (
        "ops_manager.reducers.stream:fold_events",
        "ops_manager.reducers.sequence:SeqBatch",
        "ops_manager.reducers.fleet_policy._history:index_history",
        "ops_manager.reducers.fleet_handoff._attempts:fold_attempts",
        "ops_manager.reducers.alerts._outbox:outbox_step",
        "ops_manager.reducers.transport:fold_reconcile_row",
    ):
        assert known in shaped, known


def test_a_new_unregistered_fold_fails_the_coverage_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold added to a reducer module without a spec is reported by name."""
    import ops_manager.reducers.transport as module

    def fold_widgets(state: int, event: int) -> int:
        """Fold widget rows."""
        return state + event

    fold_widgets.__module__ = module.__name__
    monkeypatch.setattr(module, "fold_widgets", fold_widgets, raising=False)
    with pytest.raises(
        AssertionError, match=re.escape("ops_manager.reducers.transport:fold_widgets")
    ):
        test_every_fold_shaped_reducer_is_registered()
