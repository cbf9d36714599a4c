"""The registry of the package's folds, for the one generic fold property (issue 13.4).

Each :class:`FoldSpec` names one projection that is a fold ``step(state, event) -> state``
over a recorded stream, with the stream's events as hypothesis generates them: shaped like
what the real reader hands over (``Stream.records`` yields JSON objects only, the event
reader yields ``(line, raw, name, timestamp)`` with increasing lines; see
``../shared/spec/runtime-observed.md`` for string booleans, hours-old timestamps, ``run_id``
flips), including the malformed *fields* those readers let through.

Where production folds a batch (``fold_events``, ``fold_attempts``, ``index_history``) the
spec's ``step`` is that function on a one-event batch and ``batch`` is the function itself;
where production only has a whole-stream function (``fold_outbox``), ``cold`` is it. A
projection built per pass rather than by a fold (the pass inputs, the telemetry summary
window) is wrapped as the fold the shell actually performs (last row wins / last ``window``
lines), never rewritten.

``covers`` lists the production names (``module:qualname``) a spec exercises; the coverage
test in ``tests/test_folds_property.py`` fails when a fold-shaped public name under
``ops_manager/reducers/`` is neither covered here nor listed there as not a fold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact, dumps_pretty
from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.engine.rebuild import heartbeat_state_from_row, sequence_state_from_row
from ops_manager.reducers.alerts import (
    OUTBOX_STATUSES,
    Episode,
    OutboxEntry,
    close_episode,
    episode_for_trigger,
    episodes_from_json,
    episodes_to_json,
    fold_outbox,
    note_episode_sinks,
    outbox_counts,
    outbox_ident,
    outbox_step,
    parse_row,
)
from ops_manager.reducers.drift import DriftInputs, drift_history_row, evaluate_drift
from ops_manager.reducers.fleet_handoff import attempts_from_prior_state, fold_attempts
from ops_manager.reducers.fleet_policy import HistoryIndex, index_history
from ops_manager.reducers.heartbeat import observe_heartbeat
from ops_manager.reducers.lifecycle import SnapshotView
from ops_manager.reducers.pass_inputs import (
    ControlCounts,
    PassInputs,
    PreviousState,
    pass_health,
    pass_lifecycle,
)
from ops_manager.reducers.sequence import SeqBatch, evaluate_sequence, sequence_telemetry_row
from ops_manager.reducers.stream import EventTuple, StreamFold, fold_events
from ops_manager.reducers.telemetry_summary import SummarySource, summarize_lines
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.reducers.transport import fold_reconcile_row

S = TypeVar("S")
E = TypeVar("E")

#: the session's "now": the streams' timestamps are hours to days before it
NOW = 1_796_688_000  # 2026-12-08T00:00:00Z


@attrs.frozen
class FoldSpec(Generic[S, E]):
    """One fold of the package, as the generic property drives it."""

    name: str
    #: the state before the first event (a fresh value per call)
    initial: Callable[[], S]
    #: ``fold(state, event) -> state``: pure, the production step
    step: Callable[[S, E], S]
    #: a whole stream of events, as the reader hands them to the fold
    events: st.SearchStrategy[list[E]]
    #: the state as its projection is written (compared byte for byte)
    serialize: Callable[[S], str]
    #: production names (``module:qualname``) this spec drives
    covers: tuple[str, ...]
    #: the production batch entry point ``(state, events) -> state``, when there is one
    batch: Callable[[S, Sequence[E]], S] | None = None
    #: the production whole-stream function ``events -> state``, when there is one
    cold: Callable[[Sequence[E]], S] | None = None
    #: the state back from its written form, the way the next pass (or ``rebuild``) reads
    #: it; the split property then also persists and reloads the state at every cut
    load: Callable[[str], S] | None = None
    #: exceptions the fold's contract raises on a malformed event (its caller turns them
    #: into a reason); any other exception is a failure
    rejects: tuple[type[Exception], ...] = ()
    #: what must hold of every state the fold reaches (raises ``AssertionError``)
    invariant: Callable[[S], None] | None = None


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


# --- shared strategies --------------------------------------------------------------------


def mostly(
    good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], odds: int = 8
) -> st.SearchStrategy[Any]:
    """``good``, and ``bad`` about once in ``odds`` draws: a malformed field now and then,
    as the real streams have them, not in every row (``one_of`` would pick each branch
    half the time, and it drops repeated branches)."""
    return st.integers(1, odds).flatmap(lambda i: bad if i == 1 else good)


#: contract timestamps, hours to days old, plus what a hand-edited file may hold
good_ts = st.integers(min_value=NOW - 5 * 86_400, max_value=NOW).map(format_ts)
odd_ts = st.sampled_from(["", "yesterday", "2026-12-07T21:03:04.123Z", "2026-12-07 21:03:04"])
ts_st = mostly(good_ts, odd_ts | st.none() | st.integers(0, 10))
#: a JSON boolean as the runtime writes it: often the string
bool_like = st.sampled_from([True, False, "true", "false", None, 1, 0, ""])
trace_st = st.sampled_from(["trace-1", "trace-2", "", None, 7])
#: any JSON value where a field is malformed (the readers only check that a record is an
#: object: a field may be a list or an object, which is unhashable)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.text(max_size=4),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["a", "status"]), st.integers(0, 2), max_size=1),
)
# no NaN / Infinity: ``Stream.records`` refuses a line holding one (tests/test_store.py,
# and test_the_reader_hands_over_only_writable_records)


# --- stream: events.jsonl -> stream-state.json ------------------------------------------

EVENT_NAMES = [
    "run_start",
    "loop_start",
    "iteration_start",
    "role_start",
    "role_end",
    "gates_evaluated",
    "iteration_end",
    "approval_wait",
    "approval_consumed",
    "loop_stop",
    "loop_complete",
    "no_progress_stop",
    "role_timeout",
    "lifecycle_start",
]


@st.composite
def _event_stream(draw: st.DrawFn) -> list[EventTuple]:
    """``EventLine`` tuples as ``runtime._events`` yields them: increasing physical lines
    (blank or unparseable lines in between are gaps), a non-empty name and timestamp,
    ``run_id`` that flips on an approval consumption, and junk where the runtime's
    ``data`` holds string booleans."""
    out: list[EventTuple] = []
    line = 0
    for _ in range(draw(st.integers(0, 40))):
        line += draw(st.integers(1, 3))
        name = draw(st.sampled_from(EVENT_NAMES))
        timestamp = draw(mostly(good_ts, st.sampled_from(["2026-12-07T21:03:04.5Z", "x"])))
        raw: dict[str, Any] = {"timestamp": timestamp, "event": name}
        run_id = draw(mostly(st.sampled_from(["run-a", "run-b", "", "missing"]), junk))
        if run_id != "missing":
            raw["run_id"] = run_id
        raw["iteration"] = draw(st.integers(0, 5) | st.just("2"))
        raw["data"] = {"enabled": draw(bool_like), "prerequisites": draw(junk)}
        raw["sequence"] = {"value": line}
        out.append((line, raw, name, timestamp))
    return out


STREAM = FoldSpec[StreamFold, EventTuple](
    name="stream",
    initial=StreamFold,
    step=lambda s, e: fold_events(s, [e]),
    batch=fold_events,
    events=_event_stream(),
    serialize=lambda s: dumps_compact(s.to_json()),
    load=lambda text: StreamFold.from_json(json.loads(text)),
    invariant=lambda s: _check(
        s.event_count == sum(s.by_name.values())
        and (s.last_terminal_line == 0) == (s.last_terminal_event is None),
        "stream fold counts",
    ),
    covers=(
        "ops_manager.reducers.stream:fold_events",
        "ops_manager.reducers.stream:fold_batch",
        "ops_manager.reducers.stream:StreamFold",
    ),
)


# --- sequence: the events' sequence.value -> sequence-state.json ``events`` -------------

seq_value = mostly(
    st.integers(0, 50), st.sampled_from([None, -1, "3", True, 2.0, 2.5, {"value": 1}]), 4
)


def _seq_serialize(batch: SeqBatch) -> str:
    # the projection the fold feeds: the sequence state of a pass with this batch
    state = evaluate_sequence(
        {"events": {"last": 10}},
        snapshot_value=batch.last,
        batch=batch,
        now=NOW,
        loop_id="loop-a",
        trace_id="trace-1",
        transport="local",
    )
    return dumps_compact(state)


SEQUENCE = FoldSpec[SeqBatch, object](
    name="sequence",
    initial=SeqBatch,
    step=lambda s, v: s.add(v),
    cold=SeqBatch.of,
    events=st.lists(seq_value, max_size=40),
    serialize=_seq_serialize,
    covers=("ops_manager.reducers.sequence:SeqBatch",),
)


# --- sequence state: one pass after another -> sequence-state.json -------------------

#: one pass's sequence inputs: (snapshot sequence.value, the batch's event values,
#: ``--from-start``, the replay content check, the pass's clock)
SeqPass = tuple[object, tuple[object, ...], bool, str | None, int]


def _seq_pass_step(previous: dict[str, Any], p: SeqPass) -> dict[str, Any]:
    snapshot_value, values, replay, rewrite, now = p
    return evaluate_sequence(
        previous,
        snapshot_value=snapshot_value,
        batch=SeqBatch.of(values),
        now=now,
        loop_id="loop-a",
        trace_id="trace-1",
        transport="local",
        replay=replay,
        log_rewrite=rewrite,
    )


def _seq_rebuilt(text: str) -> dict[str, Any]:
    """What ``rebuild`` restores from the pass's ``telemetry/sequence.jsonl`` row (and so
    what the next pass reads as its previous state)."""
    state = json.loads(text)
    if not state:
        return {}
    now = parse_ts(state["updatedAt"])
    assert now is not None
    return sequence_state_from_row(json.loads(dumps_compact(sequence_telemetry_row(state, now))))


@st.composite
def _seq_passes(draw: st.DrawFn) -> list[SeqPass]:
    """Passes over a growing log: each ingests the next lines, now and then a replay from
    the start, a truncation (the snapshot value drops) or an envelope without a value."""
    out: list[SeqPass] = []
    line = 0
    now = NOW - 86_400
    for _ in range(draw(st.integers(0, 12))):
        replay = draw(st.integers(0, 6)) == 0
        start = 0 if replay else line
        line = max(start, line) + draw(st.integers(0, 4))
        values: list[object] = list(range(start + 1, line + 1))
        if values and draw(st.integers(0, 6)) == 0:
            values[draw(st.integers(0, len(values) - 1))] = draw(seq_value)
        snapshot: object = line
        if draw(st.integers(0, 8)) == 0:
            snapshot = draw(st.sampled_from([None, "7", max(line - 3, 0)]))
        rewrite = draw(st.sampled_from([None, None, "truncated", "rewritten", "junk"]))
        now += draw(st.integers(1, 3_600))
        out.append((snapshot, tuple(values), replay, rewrite if replay else None, now))
    return out


SEQUENCE_STATE = FoldSpec[dict[str, Any], SeqPass](
    name="sequence-state",
    initial=dict,
    step=_seq_pass_step,
    events=_seq_passes(),
    serialize=dumps_compact,
    load=_seq_rebuilt,
    covers=(
        "ops_manager.reducers.sequence:evaluate_sequence",
        "ops_manager.reducers.sequence:sequence_telemetry_row",
    ),
)


# --- profile drift: one evaluation after another -> profile-drift.json ----------------


def _drift_rebuilt(text: str) -> dict[str, Any]:
    """What ``rebuild`` restores: the ``drift`` of the last ``profile-drift.jsonl`` row."""
    drift = json.loads(text)
    if not drift:
        return {}
    now = parse_ts(drift["updatedAt"])
    assert now is not None
    row = json.loads(dumps_compact(drift_history_row(drift, now)))
    rebuilt = row["drift"]
    assert isinstance(rebuilt, dict)
    return rebuilt


@st.composite
def _drift_inputs(draw: st.DrawFn) -> list[DriftInputs]:
    profiles = st.sampled_from(["balanced", "strict", "relaxed", ""])
    levels = st.sampled_from(["low", "medium", "high"])
    now = NOW - 86_400
    out: list[DriftInputs] = []
    required = draw(st.integers(1, 4))
    for _ in range(draw(st.integers(0, 12))):
        now += draw(st.integers(1, 3_600))
        out.append(
            DriftInputs(
                loop_id="loop-a",
                now=now,
                applied_profile=draw(profiles),
                recommended_profile=draw(profiles),
                recommendation_confidence=draw(levels),
                min_confidence=draw(levels),
                required_streak=required,
                summary_window=200,
                rationale=draw(st.sampled_from(["", "Observed mixed signals"])),
            )
        )
    return out


PROFILE_DRIFT = FoldSpec[dict[str, Any], DriftInputs](
    name="profile-drift",
    initial=dict,
    step=evaluate_drift,
    events=_drift_inputs(),
    serialize=dumps_compact,
    load=_drift_rebuilt,
    covers=(
        "ops_manager.reducers.drift:evaluate_drift",
        "ops_manager.reducers.drift:drift_history_row",
    ),
)


# --- heartbeat: the snapshot's runtime.heartbeat, pass after pass -> heartbeat.json ----


@attrs.frozen
class HeartbeatFold:
    """``heartbeat.json`` (kept by a pass whose observation failed) and the last
    non-failed ``telemetry/heartbeat.jsonl`` row, the one ``rebuild`` restores it from."""

    state: dict[str, Any] | None = None
    row: dict[str, Any] | None = None


#: one pass's observation: (runtime.heartbeat, the pass's clock, degraded, critical lag)
HeartbeatPass = tuple[object, int, int, int]


def _heartbeat_step(fold: HeartbeatFold, p: HeartbeatPass) -> HeartbeatFold:
    heartbeat, now, degraded, critical = p
    obs = observe_heartbeat(
        heartbeat,
        now=now,
        loop_id="loop-a",
        trace_id="trace-1",
        transport="local",
        degraded=degraded,
        critical=critical,
    )
    if obs.state is None:  # nothing observed, or a failed row: heartbeat.json is kept
        return fold
    return HeartbeatFold(obs.state, json.loads(dumps_compact(obs.telemetry_row)))


def _heartbeat_rebuilds(fold: HeartbeatFold) -> None:
    if fold.state is None:
        return
    assert fold.row is not None
    rebuilt = heartbeat_state_from_row(fold.row, fold.state.get("thresholds"))
    assert dumps_compact(rebuilt) == dumps_compact(fold.state), "rebuild != heartbeat.json"


@st.composite
def _heartbeat_passes(draw: st.DrawFn) -> list[HeartbeatPass]:
    """The runtime's heartbeat object, seconds to hours old (its keys as the runtime writes
    them: ``active`` a string boolean), sometimes absent, without a timestamp, with an
    epoch number or an unparseable one."""
    out: list[HeartbeatPass] = []
    now = NOW - 86_400
    for _ in range(draw(st.integers(0, 10))):
        now += draw(st.integers(1, 3_600))
        at = format_ts(now - draw(st.integers(0, 7_200)))
        key = draw(st.sampled_from(["timestamp", "updatedAt"]))
        heartbeat: object = {
            key: at,
            "iteration": draw(mostly(st.integers(1, 5), junk)),
            "active": "true",
        }
        if draw(st.integers(0, 5)) == 0:
            heartbeat = draw(
                st.sampled_from(
                    [None, {}, {"timestamp": ""}, {"timestamp": now}, {"timestamp": "soon"}, [1]]
                )
                | st.builds(lambda v: {"timestamp": v}, junk)
                | st.builds(lambda v: {"updatedAt": v}, junk)
            )
        degraded = draw(st.integers(30, 300))
        out.append((heartbeat, now, degraded, degraded + draw(st.integers(0, 600))))
    return out


HEARTBEAT = FoldSpec[HeartbeatFold, HeartbeatPass](
    name="heartbeat",
    initial=HeartbeatFold,
    step=_heartbeat_step,
    events=_heartbeat_passes(),
    serialize=lambda f: dumps_compact(attrs.asdict(f)),
    load=lambda text: HeartbeatFold(**json.loads(text)),
    invariant=_heartbeat_rebuilds,
    covers=("ops_manager.reducers.heartbeat:observe_heartbeat",),
)


# --- transport health: reconcile rows -> TEL/transport-health.json ----------------------


@st.composite
def _reconcile_row(draw: st.DrawFn) -> dict[str, Any]:
    """A ``telemetry/reconcile.jsonl`` row: what the transport step reads of it, the keys a
    real row also has, and now and then a field a hand edit or an old writer broke."""
    row: dict[str, Any] = {
        "timestamp": draw(mostly(good_ts, odd_ts | st.none(), 40)),
        "loopId": "loop-a",
        "traceId": draw(mostly(trace_st, junk)),
        "transport": draw(mostly(st.sampled_from(["local", "ssh", "http"]), junk, 40)),
        "status": draw(mostly(st.sampled_from(["success", "failed", "ambiguous"]), junk)),
        "durationSeconds": draw(st.integers(0, 30)),
    }
    if draw(st.booleans()):
        row["failureCode"] = draw(
            mostly(st.sampled_from(["transport_unreachable", "snapshot_invalid", ""]), junk)
        )
    return row


TRANSPORT = FoldSpec[dict[str, Any] | None, dict[str, Any]](
    name="transport-health",
    initial=lambda: None,
    step=fold_reconcile_row,
    events=st.lists(_reconcile_row(), max_size=30),
    serialize=dumps_compact,
    load=json.loads,
    rejects=(ValueError,),
    covers=("ops_manager.reducers.transport:fold_reconcile_row",),
)


# --- fleet handoff: execution results -> handoff-state.json ``intentAttempts`` ----------


@st.composite
def _execution_result(draw: st.DrawFn) -> dict[str, Any]:
    """One ``execution.results[]`` row of ``fleet_handoff_execute`` telemetry."""
    base = draw(st.sampled_from(["K1", "K2", "K3"]))
    key = draw(st.sampled_from([base, f"{base}-retry-1", f"{base}-retry-2", "", None]))
    return {
        "intentId": draw(mostly(st.sampled_from(["i-1", "i-2", "i-3"]), junk)),
        "idempotencyKey": draw(mostly(st.just(key), junk)),
        "status": draw(
            mostly(st.sampled_from(["executed", "ambiguous", "failed", "skipped"]), junk)
        ),
        "executionMode": draw(mostly(st.sampled_from(["manual", "autonomous"]), junk)),
        "executedAt": draw(mostly(st.one_of(good_ts, st.none()), junk)),
        "traceId": draw(mostly(trace_st, junk)),
    }


HANDOFF = FoldSpec[dict[str, Any], dict[str, Any]](
    name="handoff-attempts",
    initial=dict,
    step=lambda s, r: fold_attempts(s, [r]),
    batch=fold_attempts,
    events=st.lists(_execution_result(), max_size=30),
    serialize=dumps_compact,
    # the next handoff run reads the ledger back from handoff-state.json's intentAttempts
    load=lambda text: attempts_from_prior_state({"intentAttempts": json.loads(text)}),
    covers=(
        "ops_manager.reducers.fleet_handoff._attempts:fold_attempts",
        "ops_manager.reducers.fleet_handoff._attempts:attempts_from_prior_state",
    ),
)


# --- fleet policy: policy-history.jsonl -> the history index ----------------------------


@st.composite
def _history_row(draw: st.DrawFn) -> dict[str, Any]:
    """A ``policy-history.jsonl`` row (``suppressed`` / ``autonomousEligible`` sometimes
    missing or a string, as an older writer or a hand edit leaves them)."""
    row: dict[str, Any] = {
        "timestamp": draw(mostly(ts_st, junk)),
        "candidateId": draw(mostly(st.sampled_from(["c-1", "c-2", "c-3"]), junk)),
    }
    for key in ("suppressed", "autonomousEligible"):
        value = draw(mostly(st.sampled_from([True, False, "absent"]), bool_like))
        if value != "absent":
            row[key] = value
    return row


def _strict(index: HistoryIndex | None) -> HistoryIndex:
    # ``None`` (unreadable) would make the next run refold from the start: still right,
    # but then the index it wrote was not what it reads; fail instead
    if index is None:
        raise AssertionError("the written history index does not read back")
    return index


HISTORY = FoldSpec[HistoryIndex, dict[str, Any]](
    name="policy-history",
    initial=HistoryIndex,
    step=lambda s, r: index_history([r], s),
    batch=lambda s, rows: index_history(rows, s),
    cold=index_history,
    events=st.lists(_history_row(), max_size=30),
    serialize=lambda s: dumps_compact(s.to_json()),
    load=lambda text: _strict(HistoryIndex.from_json(json.loads(text))),
    covers=("ops_manager.reducers.fleet_policy._history:index_history",),
)


# --- alert outbox: alert-outbox.jsonl -> the pending set -------------------------------


@attrs.frozen
class OutboxState:
    """The outbox fold as ``engine._alert_dispatch_files.Outbox`` keeps it: the entries
    and how many records were folded (an entry's ``order`` is its record position)."""

    entries: dict[tuple[str, str], OutboxEntry] = attrs.field(factory=dict)
    records: int = 0


def _outbox_add(state: OutboxState, rec: dict[str, Any]) -> OutboxState:
    """``Outbox._apply`` (``engine/_alert_dispatch_files.py``) on a value."""
    ident = outbox_ident(rec)
    entry = None if ident is None else outbox_step(state.entries.get(ident), rec, state.records)
    entries = dict(state.entries)
    if entry is not None:
        entries[(entry.key, entry.sink_id)] = entry
    return OutboxState(entries, state.records + 1)


def _outbox_serialize(state: OutboxState) -> str:
    ordered = sorted(state.entries.values(), key=lambda e: e.order)
    return dumps_compact(
        {
            "counts": outbox_counts(ordered),
            "entries": [
                {
                    "key": e.key,
                    "sinkId": e.sink_id,
                    "sinkType": e.sink_type,
                    "status": e.status,
                    "attempts": e.attempts,
                    "firstQueuedAt": e.first_queued_at,
                    "nextAttemptAt": e.next_attempt_at,
                    "order": e.order,
                    "event": dict(e.event),
                    "last": dict(e.last),
                }
                for e in ordered
            ],
        }
    )


@st.composite
def _outbox_record(draw: st.DrawFn) -> dict[str, Any]:
    """An ``alert-outbox.jsonl`` record as ``outbox_record`` writes it, or a field off."""
    status = draw(mostly(st.sampled_from([*OUTBOX_STATUSES, "queued", "queued"]), junk))
    rec: dict[str, Any] = {
        "timestamp": draw(ts_st),
        "status": status,
        "idempotencyKey": draw(mostly(st.sampled_from(["k1", "k2"]), junk)),
        "sinkId": draw(mostly(st.sampled_from(["pager", "slack"]), junk)),
        "sinkType": draw(mostly(st.sampled_from(["pagerduty", "slack_webhook"]), junk)),
        "attempts": draw(mostly(st.integers(0, 5), st.sampled_from([None, -1, "2"]))),
        "traceId": "trace-1",
    }
    if draw(st.booleans()):
        rec["nextAttemptAt"] = draw(mostly(ts_st, junk))
    if status == "queued" and draw(st.integers(0, 5)):
        rec["event"] = {"dedupKey": draw(st.sampled_from(["loop:health:L1", "loop:drift:L4"]))}
    elif draw(st.integers(0, 9)) == 0:
        rec["event"] = draw(junk)
    return rec


OUTBOX = FoldSpec[OutboxState, dict[str, Any]](
    name="alert-outbox",
    initial=OutboxState,
    step=_outbox_add,
    cold=lambda recs: OutboxState(fold_outbox(recs), len(recs)),
    events=st.lists(_outbox_record(), max_size=30),
    serialize=_outbox_serialize,
    covers=(
        "ops_manager.reducers.alerts._outbox:outbox_step",
        "ops_manager.reducers.alerts._outbox:outbox_ident",
        "ops_manager.reducers.alerts._outbox:fold_outbox",
    ),
)


# --- alert episodes: escalations.jsonl triggers -> alert-dispatch-state ``episodes`` ----

#: an episode event: ("trigger", line, raw escalation line, severity) | ("sinks", category,
#: sink ids) | ("close", family)
EpisodeEvent = tuple[Any, ...]

CATEGORIES = [
    "health_degraded",
    "health_critical",
    "profile_drift_detected",
    "divergence_detected",
    "ordering_drift_detected",
    "custom_thing",
]


def _episode_step(episodes: dict[str, Episode], ev: EpisodeEvent) -> dict[str, Episode]:
    """What a dispatch run does to the episodes per escalation line, sent trigger and
    cleared condition (``engine._alert_dispatch_run``), on the reducers it calls."""
    if ev[0] == "trigger":
        row = parse_row(ev[1], ev[2])
        if row.category is None:  # not routable: the run fails the row, episodes untouched
            return dict(episodes)
        new, _key = episode_for_trigger(episodes, loop_id="loop-a", row=row, severity=ev[3])
        return new
    if ev[0] == "sinks":
        return note_episode_sinks(episodes, ev[1], ev[2])
    return close_episode(episodes, ev[1])


@st.composite
def _escalation_events(draw: st.DrawFn) -> list[EpisodeEvent]:
    out: list[EpisodeEvent] = []
    line = 0
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["trigger", "trigger", "trigger", "sinks", "close"]))
        if kind == "trigger":
            line += draw(st.integers(1, 2))
            obj: dict[str, Any] = {
                "timestamp": draw(mostly(ts_st, junk)),
                "category": draw(mostly(st.sampled_from([*CATEGORIES, "", None]), junk)),
                "loopId": "loop-a",
                "traceId": draw(mostly(trace_st, junk)),
                "severity": draw(mostly(st.sampled_from(["critical", "warning", "", None]), junk)),
            }
            text = (
                dumps_compact(obj)
                if draw(st.integers(0, 9))
                else draw(st.sampled_from(["", "null", "[1]", "{not json", '{"category": NaN}']))
            )
            out.append(("trigger", line, text, draw(st.sampled_from(["critical", "warning"]))))
        elif kind == "sinks":
            sinks = tuple(draw(st.lists(st.sampled_from(["pager", "slack"]), max_size=2)))
            out.append(("sinks", draw(st.sampled_from(CATEGORIES)), sinks))
        else:
            out.append(("close", draw(st.sampled_from(["health", "drift", "ordering", "x"]))))
    return out


EPISODES = FoldSpec[dict[str, Episode], EpisodeEvent](
    name="alert-episodes",
    initial=dict,
    step=_episode_step,
    events=_escalation_events(),
    serialize=lambda s: dumps_compact(episodes_to_json(s)),
    load=lambda text: episodes_from_json(json.loads(text)),
    covers=(
        "ops_manager.reducers.alerts._episodes:episode_for_trigger",
        "ops_manager.reducers.alerts._episodes:note_episode_sinks",
        "ops_manager.reducers.alerts._episodes:close_episode",
    ),
)


# --- telemetry summary: the last ``window`` reconcile lines -> telemetry summary -------

SUMMARY_WINDOW = 12
_SOURCE = SummarySource("/repo", "loop-a", "rec.jsonl", "ctl.jsonl", SUMMARY_WINDOW)


def _summary_serialize(lines: tuple[str, ...]) -> str:
    return dumps_compact(summarize_lines(lines, [], source=_SOURCE, now=NOW))


@st.composite
def _reconcile_line(draw: st.DrawFn) -> str:
    """A physical line of ``telemetry/reconcile.jsonl`` as the summary samples it: mostly a
    compact row, sometimes blank (it still takes a window slot, Q-40), not JSON, or JSON
    that is not an object (counted as malformed, Q-34)."""
    kind = draw(st.integers(0, 9))
    if kind >= 3:
        row = {
            "timestamp": draw(good_ts),
            "status": draw(st.sampled_from(["success", "failed", "success"])),
            "healthStatus": draw(st.sampled_from(["healthy", "degraded", "critical", None])),
            "healthReasonCodes": draw(
                st.lists(st.sampled_from(["ingest_lag", "heartbeat_stale", 3]), max_size=3) | junk
            ),
            "durationSeconds": draw(
                st.integers(0, 40) | st.sampled_from(["2.5", "7", "NaN", " 3 ", True, 1.5, None])
            ),
        }
        return dumps_compact(row)
    return draw(st.sampled_from(["", "   ", "{oops", "[1, 2]", "null", "3", '{"status": NaN}']))


SUMMARY = FoldSpec[tuple[str, ...], str](
    name="telemetry-summary",
    initial=tuple,
    # the shell keeps the last ``window`` physical lines; the summary is their fold
    step=lambda s, line: (*s, line)[-SUMMARY_WINDOW:],
    cold=lambda lines: tuple(lines)[-SUMMARY_WINDOW:],
    events=st.lists(_reconcile_line(), max_size=30),
    serialize=_summary_serialize,
    covers=(
        "ops_manager.reducers.telemetry_summary:summarize_lines",
        "ops_manager.reducers.telemetry_summary:summarize_rows",
        "ops_manager.reducers.telemetry_summary:summarize_counted",
    ),
)


# --- pass inputs: reconcile rows' ``inputs`` -> health.json / state.json ---------------


@attrs.frozen
class PassProjection:
    """The last pass as ``rebuild`` re-derives it from its reconcile row: the recorded
    inputs (parsed back and written again), the health and the lifecycle state computed
    from them, or why the row is unusable (``PassRefold._inputs``'s reasons)."""

    reason: str | None = None
    inputs: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    state: dict[str, Any] | None = None


def _pass_step(_previous: PassProjection, row: dict[str, Any]) -> PassProjection:
    """Replace the projection by the row's (the last row wins, as in ``rebuild``)."""
    if "inputs" not in row:
        return PassProjection(reason="no inputs")
    try:
        inputs = PassInputs.from_json(row["inputs"])
    except ValueError as exc:
        return PassProjection(reason=str(exc))
    now = parse_ts(row.get("timestamp"))
    if now is None:
        return PassProjection(reason="no usable timestamp")
    ok = row.get("status") == "success"
    state = (
        pass_lifecycle(inputs, last_event_envelope=None, now=now, repo_path="/repo")
        if ok and inputs.snapshot is not None
        else None
    )
    health = pass_health(
        inputs,
        now=now,
        trace_id="trace-1",
        transport="local",
        failure_code=None if ok else "transport_unreachable",
        ok=ok,
        state=state or {},
        heartbeat_state={},
        sequence_state={},
        transport_health={"failureStreak": 0},
    )
    return PassProjection(inputs=inputs.to_json(), health=health, state=state)


def _thresholds(draw: st.DrawFn) -> Thresholds:
    lag = draw(st.integers(1, 600))
    return Thresholds(
        profile=draw(st.sampled_from(["balanced", "strict", "relaxed", None])),
        degraded_ingest_lag_seconds=lag,
        critical_ingest_lag_seconds=lag * 3,
        degraded_heartbeat_lag_seconds=draw(st.integers(1, 200)),
        critical_heartbeat_lag_seconds=draw(st.integers(200, 900)),
        degraded_transport_failure_streak=draw(st.integers(1, 3)),
        critical_transport_failure_streak=draw(st.integers(3, 6)),
    )


@st.composite
def _pass_row(draw: st.DrawFn) -> dict[str, Any]:
    """A reconcile row with the ``inputs`` a pass records: a successful pass's snapshot
    view (runtime ``active`` and gate values as the runtime writes them, strings
    included) or a failed pass's short form; now and then a broken or missing ``inputs``."""
    ok = draw(st.booleans())
    count = draw(st.integers(0, 400))
    snapshot = (
        SnapshotView(
            repo_path="/repo",
            loop_id="loop-a",
            run_id=draw(st.sampled_from(["run-a", "run-b", ""])),
            iteration=draw(st.integers(0, 9) | st.just(1.0)),
            status=draw(st.sampled_from(["running", "complete", "stopped", "pending_approval"])),
            has_pending_approval=draw(st.booleans()),
            completion_ok=draw(st.booleans()),
            active=draw(bool_like | junk),
            gates=draw(
                st.none() | st.just({}) | st.just({"tests": "true", "lifecycle": True}) | junk
            ),
            stuck=draw(st.none() | st.just({"triggered": "false"}) | st.just(True) | junk),
            last_event_name=draw(st.sampled_from(EVENT_NAMES) | st.none()),
            last_event_at=draw(st.one_of(good_ts, st.none())),
            event_line_count=count,
            event_line_offset=draw(st.none() | st.integers(0, count)),
        )
        if ok
        else None
    )
    previous = draw(
        st.none()
        | st.builds(
            PreviousState,
            current_state=st.sampled_from(["running", "complete", None, 3]) | junk,
            event_line_offset=st.none() | st.integers(0, 400) | st.just("12"),
            generated_at=st.one_of(good_ts, st.none()),
        )
    )
    inputs = PassInputs(
        thresholds=_thresholds(draw),
        last_control_status=draw(st.sampled_from(["executed", "ambiguous", None])),
        alert_config_error=draw(st.sampled_from([None, "alert config invalid"])),
        previous=previous,
        snapshot=snapshot,
        runtime={"superloopState": {"active": "true"}} if ok else None,
        last_event={"line": max(count, 1), "sha256": "0" * 64} if ok and count else None,
        control=draw(
            st.none()
            | st.builds(ControlCounts, st.integers(0, 50), st.integers(0, 5), st.integers(0, 5))
        ),
    )
    recorded: Any = inputs.to_json()
    breakage = draw(st.integers(0, 24))
    if breakage == 0:
        recorded = dict(recorded)
        recorded.pop(draw(st.sampled_from(sorted(recorded))))
    elif breakage == 1 and ok:
        recorded = dict(recorded, snapshot=dict(recorded["snapshot"], hasPendingApproval="false"))
    elif breakage == 2:
        recorded = draw(junk)
    row: dict[str, Any] = {
        "timestamp": draw(mostly(good_ts, odd_ts, 20)),
        "status": "success" if ok else "failed",
        "transport": "local",
    }
    if breakage != 3:
        row["inputs"] = recorded
    return row


PASS = FoldSpec[PassProjection, dict[str, Any]](
    name="pass-inputs",
    initial=PassProjection,
    step=_pass_step,
    events=st.lists(_pass_row(), max_size=6),
    # health.json / state.json are written pretty; the pretty bytes are the projection
    serialize=lambda p: dumps_pretty(attrs.asdict(p)),
    covers=(
        "ops_manager.reducers.pass_inputs:pass_health",
        "ops_manager.reducers.pass_inputs:pass_lifecycle",
    ),
)


#: every fold the generic property runs over
FOLDS: tuple[FoldSpec[Any, Any], ...] = (
    STREAM,
    SEQUENCE,
    SEQUENCE_STATE,
    PROFILE_DRIFT,
    HEARTBEAT,
    TRANSPORT,
    HANDOFF,
    HISTORY,
    OUTBOX,
    EPISODES,
    SUMMARY,
    PASS,
)
