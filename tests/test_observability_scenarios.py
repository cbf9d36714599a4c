"""Time-scripted observability scenarios: runtime events and reconcile passes in, health /
recommendation / drift / escalations out. No sleeping, no wall clock.

The runtime is data: a *scripted transport*, registered through the same plugin hook as
the built-in transports, serves a queue of events (with whatever sequence numbers the
script says), a heartbeat, and scripted outages. Each pass runs ``reconcile(settings,
clock=...)`` with the script's timestamp, so every decision comes from the pure reducers
under a clock the test controls; the engine only persists the manager's own artifacts in a
temp dir. Every expectation below was worked out by hand from the contract (``loop.md``
§3.4, §3.6, §3.7, §3.8) and is compared for *every* pass, so a regression anywhere in the
chain (health rules, escalation edges, telemetry summary, drift streak) fails the table.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.engine.reconcile import ReconcileSettings, reconcile
from ops_manager.engine.status import loop_status
from ops_manager.hookspecs import hookimpl
from ops_manager.plugins import get_plugin_manager
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.runtime import StreamPosition
from ops_manager.store import LoopPaths
from ops_manager.transports import (
    ControlExecution,
    ControlRequest,
    EventTuple,
    IngestFailure,
    ObserveRequest,
    ReadExtent,
    RuntimeView,
    TransportConfig,
)

LOOP = "demo-loop"
T0 = parse_ts("2030-01-01T00:00:00Z") or 0

# --- the scripted runtime ----------------------------------------------------------------


@attrs.define
class ScriptedRuntime:
    """A loop runtime made of data: pending events, a heartbeat, an outage switch."""

    pending: list[EventTuple] = attrs.field(factory=list)
    last_line: int = 0
    total_lines: int = 0
    last_event: dict[str, Any] | None = None
    heartbeat: dict[str, Any] | None = None
    outage: str | None = None

    def emit(self, at: int, name: str, line: int | None) -> None:
        number = self.last_line + 1 if line is None else line
        raw: dict[str, Any] = {
            "timestamp": format_ts(at),
            "event": name,
            "loop_id": LOOP,
            "run_id": "run-1",
            "iteration": 1,
        }
        self.pending.append((number, raw, name, format_ts(at)))
        self.last_line = number
        self.total_lines = max(self.total_lines, number)
        self.last_event = raw


class _Observation:
    def __init__(self, runtime: ScriptedRuntime, start: StreamPosition) -> None:
        self.runtime = runtime
        self.start = start
        self._batch = list(runtime.pending)
        runtime.pending.clear()
        self.view = RuntimeView(
            repo_path="scripted",
            run_id="run-1",
            iteration=1,
            status="running",
            summary=None,
            superloop_state={"active": True, "current_loop_id": LOOP},
            approval=None,
            heartbeat=runtime.heartbeat,
            last_event=runtime.last_event,
        )

    @property
    def events(self) -> Iterator[EventTuple]:
        yield from self._batch

    def extent(self) -> ReadExtent:
        position = self.start
        if self._batch:
            line = self._batch[-1][0]
            position = StreamPosition(byte_offset=100 * line, line_offset=line)
        return ReadExtent(
            position=position,
            total_lines=self.runtime.total_lines,
            events_emitted=len(self._batch),
        )


class ScriptedTransport:
    """The ``scripted`` transport: serves :data:`RUNTIME`."""

    name = "scripted"

    def __init__(self, config: TransportConfig) -> None:
        self.config = config

    def observe(self, request: ObserveRequest) -> _Observation:
        if RUNTIME.outage is not None:
            raise IngestFailure(RUNTIME.outage, "error: scripted outage")
        return _Observation(RUNTIME, request.start)

    def control(self, request: ControlRequest) -> ControlExecution:  # pragma: no cover
        raise NotImplementedError


RUNTIME = ScriptedRuntime()


class _Plugin:
    @hookimpl
    def opsmgr_register_transports(self, register: Callable[..., None]) -> None:
        register("scripted", ScriptedTransport)


@pytest.fixture(autouse=True)
def scripted_transport() -> Iterator[None]:
    """Register the scripted transport through the public hook for one test."""
    global RUNTIME
    RUNTIME = ScriptedRuntime()
    pm = get_plugin_manager(load_entry_points=False)
    plugin = _Plugin()
    pm.register(plugin, name="scripted-transport-for-tests")
    try:
        yield
    finally:
        pm.unregister(plugin)


# --- the script language -----------------------------------------------------------------


@attrs.frozen
class Emit:
    """The runtime appends an event at ``at`` (numbered ``line``, default: next)."""

    at: int
    name: str = "role_end"
    line: int | None = None


@attrs.frozen
class Beat:
    """The runtime writes its heartbeat file, stamped ``at``."""

    at: int


@attrs.frozen
class Outage:
    """The transport fails from now on with ``code`` (``None``: it recovers)."""

    code: str | None = "service_request_failed"


@attrs.frozen
class Pass:
    """A reconcile pass at ``at``; ``expect`` is the outcome it must have."""

    at: int
    expect: Expect


@attrs.frozen
class Expect:
    """A pass's observable outcome. ``None`` fields are not checked."""

    health: str
    reasons: tuple[str, ...] = ()
    #: escalation categories appended by this pass, in order
    escalations: tuple[str, ...] = ()
    recommended: str | None = None
    drift: str | None = None
    streak: int | None = None
    heartbeat: str | None = None
    sequence: str | None = None


Step = Emit | Beat | Outage | Pass


@attrs.frozen
class Observed:
    """What a pass produced, in :class:`Expect`'s shape."""

    health: str
    reasons: tuple[str, ...]
    escalations: tuple[str, ...]
    recommended: str | None
    drift: str | None
    streak: int | None
    heartbeat: str | None
    sequence: str | None

    def masked(self, expect: Expect) -> Observed:
        """Only the fields ``expect`` checks (the others set to ``None``)."""
        unchecked: dict[str, Any] = {
            f.name: None for f in attrs.fields(Expect) if getattr(expect, f.name) is None
        }
        return attrs.evolve(self, **unchecked)

    @classmethod
    def of(cls, expect: Expect) -> Observed:
        """The observation ``expect`` describes."""
        return cls(**{f.name: getattr(expect, f.name) for f in attrs.fields(Expect)})


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def run_script(
    repo: Path, steps: list[Step], **settings: Any
) -> tuple[list[Observed], list[Observed]]:
    """Play ``steps``; return what every pass produced and what it was expected to."""
    settings.setdefault("thresholds", Thresholds(profile="balanced"))
    paths = LoopPaths.for_loop(repo, LOOP)
    observed: list[Observed] = []
    expected: list[Observed] = []
    for number, step in enumerate(steps):
        if isinstance(step, Emit):
            RUNTIME.emit(step.at, step.name, step.line)
        elif isinstance(step, Beat):
            RUNTIME.heartbeat = {"schemaVersion": "v1", "timestamp": format_ts(step.at)}
        elif isinstance(step, Outage):
            RUNTIME.outage = step.code
        else:
            before = len(_jsonl(paths.escalations_file))
            result = reconcile(
                ReconcileSettings(
                    repo=repo,
                    loop_id=LOOP,
                    trace_id=f"pass-{number}",
                    transport="scripted",
                    **settings,
                ),
                clock=functools.partial(int, step.at),
            )
            assert result.ok == (RUNTIME.outage is None)
            health = _json(paths.health_file)
            drift = _json(paths.drift_state_file)
            state = _json(paths.state_file)
            observed.append(
                Observed(
                    health=health["status"],
                    reasons=tuple(health["reasonCodes"]),
                    escalations=tuple(
                        e["category"] for e in _jsonl(paths.escalations_file)[before:]
                    ),
                    recommended=(state.get("tuning") or {}).get("recommendedProfile"),
                    drift=drift.get("status"),
                    streak=drift.get("mismatchStreak"),
                    heartbeat=_json(paths.heartbeat_state_file).get("freshnessStatus"),
                    sequence=_json(paths.sequence_state_file).get("status"),
                ).masked(step.expect)
            )
            expected.append(Observed.of(step.expect))
    return observed, expected


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path.resolve()


def paths_of(repo: Path) -> LoopPaths:
    return LoopPaths.for_loop(repo, LOOP)


# --- scenarios ---------------------------------------------------------------------------

H = "healthy"
D = "degraded"
C = "critical"
TU = ("transport_unreachable",)
HB = ("runtime_heartbeat_stale",)


def test_steady_loop_recommends_strict_and_drift_activates_once(repo: Path) -> None:
    """A loop that makes progress every 10 s: always healthy, nothing to escalate, the
    summary recommends ``strict`` (stable healthy runs). Below 30 rows that is a ``low``
    confidence recommendation (min ``medium``: insufficient); from row 30 it counts, and the
    third counted mismatch in a row (required streak 3) activates drift: one
    ``profile_drift_detected`` escalation, then nothing more."""
    steps: list[Step] = []
    for i in range(1, 35):
        if i < 30:
            expect = Expect(H, recommended="strict", drift="insufficient_confidence", streak=0)
        elif i < 32:
            expect = Expect(H, recommended="strict", drift="mismatch_pending", streak=i - 29)
        elif i == 32:
            expect = Expect(
                H,
                escalations=("profile_drift_detected",),
                recommended="strict",
                drift="drift_active",
                streak=3,
            )
        else:
            expect = Expect(H, recommended="strict", drift="drift_active", streak=i - 29)
        steps += [Emit(T0 + 10 * i), Pass(T0 + 10 * i + 1, expect)]
    observed, expected = run_script(repo, steps)
    assert observed == expected

    # the escalation carries the drift facts an operator needs
    (row,) = [e for e in _jsonl(paths_of(repo).escalations_file)]
    assert row["category"] == "profile_drift_detected"
    assert row["traceId"] == "pass-63"  # the 32nd pass (steps are numbered from 0)
    assert row["drift"] == {
        "status": "drift_active",
        "appliedProfile": "balanced",
        "recommendedProfile": "strict",
        "recommendationConfidence": "medium",
        "mismatchStreak": 3,
        "requiredStreak": 3,
        "action": "review_threshold_profile",
        "rationale": "Observed stable healthy runs; tighten thresholds for faster detection",
    }
    # status shows the same picture
    st = loop_status(paths_of(repo), now=T0 + 400)
    assert st["tuning"]["recommendedProfile"] == "strict"
    assert st["tuning"]["confidence"] == "medium"
    assert st["tuning"]["telemetrySummary"]["observed"]["reconcileAttempts"] == 34
    assert st["drift"]["status"] == "drift_active"
    assert st["drift"]["action"] == "review_threshold_profile"


def test_flapping_transport(repo: Path) -> None:
    """Alternating failed / successful passes. A failed pass is ``transport_unreachable``
    (first from the ingest failure, then from the failure streak once it reaches the
    degraded threshold 2, critical at 4); a health escalation is appended once per change
    of status or reason codes, never for a repeat. The failures push the recommendation to
    ``relaxed``; with min confidence ``low`` and streak 2 the drift activates once."""
    t = T0
    steps: list[Step] = [
        Emit(t),
        Pass(t + 1, Expect(H, recommended="strict", drift="mismatch_pending", streak=1)),
        Outage(),
        Pass(
            t + 11,
            Expect(
                D,
                TU,
                ("health_degraded", "profile_drift_detected"),
                recommended="relaxed",
                drift="drift_active",
                streak=2,
            ),
        ),
        Outage(None),
        Emit(t + 15),
        Pass(t + 21, Expect(H, recommended="relaxed", drift="drift_active", streak=3)),
        Outage(),
        Pass(t + 31, Expect(D, TU, ("health_degraded",), recommended="relaxed", streak=4)),
        Pass(t + 41, Expect(D, TU, recommended="relaxed")),  # streak 2: same codes, no row
        Pass(t + 51, Expect(D, TU, recommended="relaxed")),  # streak 3
        Pass(t + 61, Expect(C, TU, ("health_critical",), recommended="relaxed")),  # streak 4
        Pass(t + 71, Expect(C, TU)),  # streak 5: unchanged
        Outage(None),
        Emit(t + 75),
        Pass(t + 81, Expect(H, recommended="relaxed", drift="drift_active")),
    ]
    observed, expected = run_script(
        repo, steps, drift_min_confidence="low", drift_required_streak=2
    )
    assert observed == expected

    health_rows = [
        e for e in _jsonl(paths_of(repo).escalations_file) if e["category"].startswith("health")
    ]
    # the first failure's reason comes from the ingest failure, the critical one from the
    # streak (Q-32: the streak reason wins the code:severity dedup once it fires)
    assert health_rows[0]["reasons"][0]["metric"] == "ingestStatus"
    assert health_rows[0]["failureCode"] == "service_request_failed"
    assert health_rows[-1]["reasons"][0] == {
        "code": "transport_unreachable",
        "severity": "critical",
        "metric": "transportFailureStreak",
        "observed": "4",
        "threshold": "4",
    }
    rows = _jsonl(paths_of(repo).reconcile_telemetry_file)
    assert [r["status"] for r in rows] == ["success", "failed", "success"] + ["failed"] * 5 + [
        "success"
    ]
    assert [r["transportFailureStreak"] for r in rows] == [0, 1, 0, 1, 2, 3, 4, 5, 0]
    # drift history: one evaluation per pass, failures included
    assert len(_jsonl(paths_of(repo).drift_history_file)) == 9


def test_stalled_heartbeat(repo: Path) -> None:
    """The runtime keeps logging events but its heartbeat stops at T0. Lag is recomputed on
    every pass: degraded at >= 120 s, critical at >= 300 s, one escalation per change; when
    the heartbeat resumes the loop is healthy again without an escalation. The summary goes
    strict -> balanced (degraded rows) -> relaxed (critical rate 1/4, then 1/5 >= 0.20)."""
    t = T0
    steps: list[Step] = [
        Beat(t),
        Emit(t + 5),
        Pass(
            t + 10,
            Expect(H, heartbeat="fresh", recommended="strict", drift="insufficient_confidence"),
        ),
        Emit(t + 125),
        Pass(
            t + 130,
            Expect(
                D, HB, ("health_degraded",), heartbeat=D, recommended="balanced", drift="aligned"
            ),
        ),
        Emit(t + 195),
        Pass(t + 200, Expect(D, HB, heartbeat=D, recommended="balanced", drift="aligned")),
        Emit(t + 305),
        Pass(
            t + 310,
            Expect(
                C,
                HB,
                ("health_critical",),
                heartbeat=C,
                recommended="relaxed",
                drift="insufficient_confidence",
            ),
        ),
        Beat(t + 315),
        Emit(t + 316),
        Pass(t + 320, Expect(H, heartbeat="fresh", recommended="relaxed")),
    ]
    observed, expected = run_script(repo, steps)
    assert observed == expected
    st = loop_status(paths_of(repo), now=t + 321)
    hb = st["visibility"]["heartbeat"]
    assert (hb["freshnessStatus"], hb["lastHeartbeatAt"], hb["heartbeatLagSeconds"]) == (
        "fresh",
        format_ts(t + 315),
        5,
    )
    assert st["visibility"]["trace"]["sharedTraceId"] == "pass-11"  # the last pass


def test_ordering_regression(repo: Path) -> None:
    """The runtime side renumbers its events (a restarted service): the batch starts below
    the previous pass's last sequence value. That pass is ordering drift: an
    ``ordering_drift_detected`` escalation, then the health one. The next pass (nothing
    regressed) recovers without an escalation, and later batches are checked against the
    renumbered baseline."""
    t = T0
    steps: list[Step] = [
        Emit(t, "loop_start"),
        Emit(t + 1, "iteration_start"),
        Pass(t + 2, Expect(H, sequence="ok")),
        Emit(t + 3),
        Emit(t + 4),
        Emit(t + 5),
        Pass(t + 6, Expect(H, sequence="ok")),
        Emit(t + 7, line=2),  # numbered 2, 3 after 5 was consumed
        Emit(t + 8),
        Pass(
            t + 9,
            Expect(
                D,
                ("ordering_drift_detected",),
                ("ordering_drift_detected", "health_degraded"),
                sequence="ordering_drift_detected",
            ),
        ),
        Pass(t + 10, Expect(H, sequence="ok")),
        Emit(t + 11, line=4),
        Emit(t + 12),
        Pass(t + 13, Expect(H, sequence="ok")),
        Emit(t + 14, line=1),  # below the baseline 5 again: a second, separate episode
        Pass(
            t + 15,
            Expect(
                D,
                ("ordering_drift_detected",),
                ("ordering_drift_detected", "health_degraded"),
                sequence="ordering_drift_detected",
            ),
        ),
    ]
    observed, expected = run_script(repo, steps)
    assert observed == expected
    seq_rows = _jsonl(paths_of(repo).sequence_telemetry_file)
    regressed = seq_rows[2]
    assert regressed["violations"] == ["event_sequence_regression"]
    assert (regressed["events"]["previousLast"], regressed["events"]["first"]) == (5, 2)
    assert regressed["transition"]["transitionedToDrift"] is True
    assert seq_rows[3]["transition"]["recoveredFromDrift"] is True
    assert [r["driftActive"] for r in seq_rows] == [False, False, True, False, False, True]


def test_drift_activates_after_the_streak_and_clears_again(repo: Path) -> None:
    """Applied ``balanced``; min confidence ``low``, required streak 3, window 4.

    Three healthy passes recommend ``strict``: pending, pending, active (one escalation).
    A stale heartbeat makes the window mixed (degraded rows), the recommendation becomes
    ``balanced`` = applied: drift clears (``aligned``, ``transitioned.toResolved``), no
    escalation for the clear. Once the window is healthy again the streak restarts and a
    second episode activates with its own escalation."""
    t = T0
    steps: list[Step] = [Beat(t)]
    healthy_strict = [("mismatch_pending", 1), ("mismatch_pending", 2), ("drift_active", 3)]
    for i, (status, streak) in enumerate(healthy_strict):
        at = t + 10 * (i + 1)
        steps += [
            Beat(at),
            Emit(at),
            Pass(
                at + 1,
                Expect(
                    H,
                    escalations=("profile_drift_detected",) if status == "drift_active" else (),
                    recommended="strict",
                    drift=status,
                    streak=streak,
                ),
            ),
        ]
    # the heartbeat stalls at t+30; passes at t+160 and t+170 see it degraded
    steps += [
        Emit(t + 159),
        Pass(
            t + 160,
            Expect(D, HB, ("health_degraded",), recommended="balanced", drift="aligned", streak=0),
        ),
        Emit(t + 169),
        Pass(t + 170, Expect(D, HB, recommended="balanced", drift="aligned", streak=0)),
    ]
    # it resumes; the 4-row window turns healthy one pass at a time
    windows = [("balanced", "aligned", 0)] * 3 + [
        ("strict", "mismatch_pending", 1),
        ("strict", "mismatch_pending", 2),
        ("strict", "drift_active", 3),
    ]
    for i, (rec, status, streak) in enumerate(windows):
        at = t + 200 + 10 * i
        steps += [
            Beat(at),
            Emit(at),
            Pass(
                at + 1,
                Expect(
                    H,
                    escalations=("profile_drift_detected",) if status == "drift_active" else (),
                    recommended=rec,
                    drift=status,
                    streak=streak,
                ),
            ),
        ]
    observed, expected = run_script(
        repo,
        steps,
        drift_min_confidence="low",
        drift_required_streak=3,
        drift_summary_window=4,
    )
    assert observed == expected

    history = [row["drift"] for row in _jsonl(paths_of(repo).drift_history_file)]
    edges = [
        (d["transitioned"]["toActive"], d["transitioned"]["toResolved"], d["driftActive"])
        for d in history
    ]
    assert edges == [
        (False, False, False),
        (False, False, False),
        (True, False, True),  # activation: the escalation
        (False, True, False),  # the clear: recorded in history, the resolve signal
        (False, False, False),
        (False, False, False),
        (False, False, False),
        (False, False, False),
        (False, False, False),
        (False, False, False),
        (True, False, True),  # the second episode
    ]
    drift_escalations = [
        e
        for e in _jsonl(paths_of(repo).escalations_file)
        if e["category"] == "profile_drift_detected"
    ]
    assert len(drift_escalations) == 2
    assert [e["drift"]["status"] for e in drift_escalations] == ["drift_active"] * 2


# --- properties over random scripts --------------------------------------------------------

PASS_KINDS = st.lists(st.sampled_from(["ok", "outage", "stale"]), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=PASS_KINDS, required=st.integers(1, 4), window=st.integers(1, 6))
def test_random_scripts_keep_the_invariants(kinds: list[str], required: int, window: int) -> None:
    """Any mix of good passes, outages and stale-heartbeat passes: the drift streak never
    exceeds the number of passes; drift is active iff the streak reached the requirement;
    exactly one ``profile_drift_detected`` escalation per activation edge; a health
    escalation only when the status is not healthy and differs from the previous pass (or
    its reason codes do); one telemetry row and one drift history row per pass."""
    global RUNTIME
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp).resolve()
        RUNTIME = ScriptedRuntime()
        steps: list[Step] = []
        at = T0
        for kind in kinds:
            at += 200
            steps.append(Outage("service_request_failed" if kind == "outage" else None))
            steps.append(Beat(at - (150 if kind == "stale" else 1)))
            steps.append(Emit(at - 1))
            steps.append(Pass(at, Expect(H)))  # the outcome is checked below, not here
        paths = paths_of(repo)
        for step in steps:
            if isinstance(step, Pass):
                run_script(
                    repo,
                    [step],
                    drift_min_confidence="low",
                    drift_required_streak=required,
                    drift_summary_window=window,
                )
            else:
                run_script(repo, [step])
        history = [r["drift"] for r in _jsonl(paths.drift_history_file)]
        rows = _jsonl(paths.reconcile_telemetry_file)
        escalations = _jsonl(paths.escalations_file)
        assert len(history) == len(rows) == len(kinds)
        for count, drift in enumerate(history, start=1):
            assert 0 <= drift["mismatchStreak"] <= count
            assert drift["driftActive"] == (drift["mismatchStreak"] >= required)
        activations = sum(1 for d in history if d["transitioned"]["toActive"])
        drift_rows = [e for e in escalations if e["category"] == "profile_drift_detected"]
        assert len(drift_rows) == activations
        previous: tuple[Any, Any] = ("healthy", [])
        due = 0
        for row in rows:
            current = (row["healthStatus"], row["healthReasonCodes"])
            if current[0] != "healthy" and current != previous:
                due += 1
            previous = current
        assert sum(1 for e in escalations if e["category"].startswith("health_")) == due
