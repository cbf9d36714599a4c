"""Fleet status: the operator's posture view of the fleet (``fleet.md`` §2.4). PURE.

:func:`build_fleet_status` folds the normalised registry, the fleet ``state.json`` written by
fleet-reconcile, the last fleet reconcile telemetry row, the policy state, the handoff state
and the last handoff telemetry row into the status document. Each part is its own function
(:func:`fleet_section`, :func:`health_rollup`, :func:`exception_buckets`, :func:`loop_rows`,
:func:`trace_linkage`, :func:`latest_telemetry_section`, :func:`policy_section`,
:func:`autonomous_section`, :func:`safety_gate_decisions`, :func:`rollout_view`) so other
views can reuse them.

The sections fed by the policy and handoff artifacts (``policy``, ``handoff``,
``autonomous``, ``latestHandoffTelemetry``, ``traceLinkage.policyTraceId``) are one section
builder, :func:`autonomy_sections`, composed first; callers may compose more builders through
``extra_sections`` (see :data:`SectionBuilder`). :func:`build_fleet_status` merges what each
builder returns and puts every key in the contract's position (:data:`STATUS_KEY_ORDER`,
:data:`TRACE_LINKAGE_ORDER`, :data:`FILES_ORDER`), so a builder never has to care about key
order. ``policy``, ``handoff``, ``autonomous`` and ``latestHandoffTelemetry`` are always
present, ``null`` when their artifact is absent (``autonomous`` only when both states are).

The handoff-fed pieces come from :mod:`ops_manager.reducers.fleet_handoff`
(``status_handoff_section``, ``outcome_rollup``, ``transport_gate_reason_counts``,
``status_autonomous_handoff``, ``status_latest_handoff_telemetry``), the governance posture
from :mod:`ops_manager.reducers.fleet_governance`, the gate reason families from
:mod:`ops_manager.reducers.fleet_policy` and :mod:`ops_manager.reducers.fleet_rollout`.

Safety-gate paths (``autonomous.safetyGateDecisions.byPath``); ``PAR`` is the policy's
``summary.byAutonomyReason`` (the reasons of unsuppressed candidates):

- ``policyGated``: ``byReason`` = PAR restricted to the gating reasons (§3.6) and the four
  safety rails (§3.9), in PAR's order; ``blockedCount`` = their sum;
- ``rolloutGated``: PAR restricted to the six rollout reasons; ``blockedCount`` = their sum;
- ``governanceGated``: ``reasonCodes`` = the governance reason codes; ``blockedCount`` = the
  policy's unsuppressed count while governance blocks autonomy, else 0;
- ``transportGated``: failed/ambiguous results of ``sprite_service`` intents by reasonCode;
  ``blockedCount`` = their sum.

``suppressionReasonCodes`` names every path whose ``blockedCount`` is positive; the top-level
``blockedCount`` sums PAR over the rollout reasons and the safety rails (upstream's formula).

Differences from upstream (``docs/compatibility.md``): ``fleet.partialFailure`` uses the same
counts as ``fleet.failedCount``/``successCount`` (upstream read the raw state fields, so a
state without counts could show ``fleet_partial_failure`` with ``partialFailure: false``);
``healthRollup.unknown`` counts every health status other than healthy/degraded/critical, so
the four buckets always add up to the number of loops; values of the wrong type in a
hand-edited state fall back to what the results say instead of crashing. Likewise the policy
counts (``candidateCount``, ``unsuppressedCount``, ``suppressedCount``, ``autoEligibleCount``,
``manualOnlyCount``) fall back to counting the policy's candidates when a hand-edited policy
state lacks them (upstream printed 0); ``false`` is a value, not "absent"
(``autopause.enabled: false`` stays ``false``, DECISIONS rule 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ops_manager._jsonfmt import as_nonneg_int
from ops_manager._timefmt import format_ts
from ops_manager.reducers._fleet_json import as_number, dig, integral, unique_sorted
from ops_manager.reducers.fleet_governance import GUARDED_AUTO, governance_posture
from ops_manager.reducers.fleet_handoff import (
    outcome_rollup,
    status_autonomous_handoff,
    status_handoff_section,
    status_latest_handoff_telemetry,
    transport_gate_reason_counts,
)
from ops_manager.reducers.fleet_policy import (
    GATING_REASONS,
    SAFETY_REASONS,
    autonomous_eligible_candidates,
    manual_only_candidates,
    unsuppressed_candidates,
)
from ops_manager.reducers.fleet_rollout import ROLLOUT_REASONS

SCHEMA_VERSION = "v1"

#: every top-level key of the status document, in contract order
STATUS_KEY_ORDER = (
    "schemaVersion",
    "generatedAt",
    "source",
    "fleet",
    "healthRollup",
    "exceptions",
    "policy",
    "handoff",
    "autonomous",
    "loops",
    "traceLinkage",
    "latestTelemetry",
    "latestHandoffTelemetry",
    "files",
)
TRACE_LINKAGE_ORDER = ("fleetTraceId", "policyTraceId", "loopTraceIds", "sharedTraceId")
FILES_ORDER = (
    "registryFile",
    "fleetStateFile",
    "policyStateFile",
    "fleetTelemetryFile",
    "handoffStateFile",
    "handoffTelemetryFile",
)
#: nested objects a section builder may extend, with their key order
NESTED_ORDERS: Mapping[str, tuple[str, ...]] = {
    "traceLinkage": TRACE_LINKAGE_ORDER,
    "files": FILES_ORDER,
}
HEALTH_BUCKETS = ("healthy", "degraded", "critical", "unknown")
ADVISORY = "advisory"

#: ``policy.topCandidates``: how many, and the severity ranks of the stable sort
TOP_CANDIDATES = 5
SEVERITY_ORDER = {"critical": 0, "warning": 1}

#: PAR keys of ``byPath.policyGated``: the gating reasons (§3.6) and the safety rails (§3.9)
POLICY_GATE_REASONS = frozenset((*GATING_REASONS, *SAFETY_REASONS))
#: PAR keys of ``byPath.rolloutGated``: scope, canary, manual/auto pause and its triggers
ROLLOUT_GATE_REASONS = frozenset(ROLLOUT_REASONS)
#: PAR keys summed into ``safetyGateDecisions.blockedCount``
BLOCKED_COUNT_REASONS = frozenset((*ROLLOUT_REASONS, *SAFETY_REASONS))

SUPPRESSION_POLICY_GATED = "autonomous_suppression_policy_gated"
SUPPRESSION_ROLLOUT_GATED = "autonomous_suppression_rollout_gated"
SUPPRESSION_GOVERNANCE_GATED = "autonomous_suppression_governance_gated"
SUPPRESSION_TRANSPORT_GATED = "autonomous_suppression_transport_gated"
#: ``byPath`` entry -> the suppression reason code it contributes when it blocks anything
SUPPRESSION_CODES = {
    "policyGated": SUPPRESSION_POLICY_GATED,
    "rolloutGated": SUPPRESSION_ROLLOUT_GATED,
    "governanceGated": SUPPRESSION_GOVERNANCE_GATED,
    "transportGated": SUPPRESSION_TRANSPORT_GATED,
}
ARTIFACT_KEYS = ("stateFile", "healthFile", "cursorFile", "reconcileTelemetryFile")

#: A section builder gets the status document built so far (read it, do not mutate it) and
#: returns keys to add: new top-level sections (``{"policy": {...}}``) and/or entries for a
#: nested object listed in :data:`NESTED_ORDERS` (``{"files": {"policyStateFile": ...}}``,
#: merged into the existing object). Extra inputs (policy state, handoff state ...) reach the
#: builder by closure, e.g. ``functools.partial(policy_section, policy_state)``.
SectionBuilder = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def _drop_nulls(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if value is not None}


def _unique_sorted(values: Any) -> list[str]:
    """jq ``unique`` over the string members (byte order = code point order for UTF-8)."""
    return sorted({v for v in values if isinstance(v, str)})


def fleet_state_problem(fleet_state: object) -> str | None:
    """Why ``fleet_state`` cannot be read as a fleet state, or ``None`` if it can.

    It must be an object whose ``results`` (when present) is an array of objects; every
    other field is read leniently.
    """
    if not isinstance(fleet_state, dict):
        return "the fleet state must be a JSON object"
    results = fleet_state.get("results")
    if results is not None and not (
        isinstance(results, list) and all(isinstance(r, dict) for r in results)
    ):
        return "results must be an array of objects"
    return None


def fleet_results(fleet_state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``F.results // []``, keeping only objects (see :func:`fleet_state_problem`)."""
    results = fleet_state.get("results")
    if not isinstance(results, list):
        return []
    return [r for r in results if isinstance(r, dict)]


def health_rollup(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Loops per health status; anything but healthy/degraded/critical counts as unknown."""
    rollup = dict.fromkeys(HEALTH_BUCKETS, 0)
    for result in results:
        status = result.get("healthStatus")
        key = status if isinstance(status, str) and status in rollup else "unknown"
        rollup[key] += 1
    return rollup


def _count(value: Any, fallback: int) -> int:
    count = as_nonneg_int(value)
    return fallback if count is None else count


def _status_count(results: Sequence[Mapping[str, Any]], status: str) -> int:
    return sum(1 for r in results if r.get("status") == status)


def fleet_reason_codes(
    fleet_state: Mapping[str, Any], failed: int, succeeded: int, rollup: Mapping[str, int]
) -> list[str]:
    """The state's reason codes plus partial-failure and health codes, unique-sorted."""
    raw = fleet_state.get("reasonCodes")
    codes: list[Any] = list(raw) if isinstance(raw, list) else []
    if failed > 0 and succeeded > 0:
        codes.append("fleet_partial_failure")
    if rollup.get("critical", 0) > 0:
        codes.append("fleet_health_critical")
    elif rollup.get("degraded", 0) > 0:
        codes.append("fleet_health_degraded")
    return _unique_sorted(codes)


def fleet_section(
    fleet_state: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    rollup: Mapping[str, int],
) -> dict[str, Any]:
    """The ``fleet`` object: status, counts, timing and trace of the last fleet reconcile.

    Counts come from the state and fall back to counting ``results``; nulls are kept.
    """
    failed = _count(fleet_state.get("failedCount"), _status_count(results, "failed"))
    succeeded = _count(fleet_state.get("successCount"), _status_count(results, "success"))
    return {
        "status": _default(fleet_state.get("status"), "unknown"),
        "reasonCodes": fleet_reason_codes(fleet_state, failed, succeeded, rollup),
        "loopCount": _count(fleet_state.get("loopCount"), len(results)),
        "successCount": succeeded,
        "failedCount": failed,
        "skippedCount": _count(fleet_state.get("skippedCount"), _status_count(results, "skipped")),
        "startedAt": fleet_state.get("startedAt"),
        "updatedAt": fleet_state.get("updatedAt"),
        "durationSeconds": fleet_state.get("durationSeconds"),
        "traceId": fleet_state.get("traceId"),
        "partialFailure": failed > 0 and succeeded > 0,
    }


def exception_buckets(results: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Loop ids needing attention, each bucket unique-sorted (byte order)."""

    def ids(field: str, value: str) -> list[str]:
        return _unique_sorted(r.get("loopId") for r in results if r.get(field) == value)

    return {
        "reconcileFailures": ids("status", "failed"),
        "criticalLoops": ids("healthStatus", "critical"),
        "degradedLoops": ids("healthStatus", "degraded"),
        "skippedLoops": ids("status", "skipped"),
    }


def loop_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """One loop's drill-down row: outcome, health, trace and its artifact paths."""
    files = result.get("files")
    files = files if isinstance(files, dict) else {}
    return _drop_nulls(
        {
            "loopId": result.get("loopId"),
            "status": _default(result.get("status"), "unknown"),
            "reasonCode": result.get("reasonCode"),
            "reconcileStatus": result.get("reconcileStatus"),
            "healthStatus": _default(result.get("healthStatus"), "unknown"),
            "healthReasonCodes": _default(result.get("healthReasonCodes"), []),
            "transitionState": result.get("transitionState"),
            "durationSeconds": result.get("durationSeconds"),
            "traceId": result.get("traceId"),
            "transport": _default(result.get("transport"), "local"),
            "sprite": _default(result.get("sprite"), {}),
            "artifacts": {key: files.get(key) for key in ARTIFACT_KEYS},
        }
    )


def loop_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`loop_row` for every result, in the state's order."""
    return [loop_row(result) for result in results]


def trace_linkage(
    fleet_state: Mapping[str, Any], results: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Fleet trace id, the loops' trace ids, and the one trace they share (if any).

    ``policyTraceId`` is added by :func:`autonomy_sections`.
    """
    fleet_trace = fleet_state.get("traceId")
    loop_traces = _unique_sorted(r.get("traceId") for r in results)
    non_empty = [t for t in loop_traces if t]
    shared = None
    if len(non_empty) == 1 and (not fleet_trace or fleet_trace == non_empty[0]):
        shared = non_empty[0]
    return {"fleetTraceId": fleet_trace, "loopTraceIds": loop_traces, "sharedTraceId": shared}


def latest_telemetry_section(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The last fleet reconcile telemetry row, summarised (``None`` when there is none)."""
    if row is None:
        return None
    return _drop_nulls(
        {
            "timestamp": row.get("timestamp"),
            "status": row.get("status"),
            "reasonCodes": _default(row.get("reasonCodes"), []),
        }
    )


# --- policy, handoff and autonomy (fed by policy-state.json / handoff-state.json) ----------


def _candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``P.candidates // []``, keeping only objects."""
    candidates = policy_state.get("candidates")
    if not isinstance(candidates, list):
        return []
    return [c for c in candidates if isinstance(c, Mapping)]


def policy_counts(policy_state: Mapping[str, Any]) -> dict[str, int]:
    """The policy's candidate counts as stored, else counted from its candidates.

    Keys: ``candidateCount``, ``unsuppressedCount``, ``suppressedCount``,
    ``autoEligibleCount``, ``manualOnlyCount``.
    """
    candidates = _candidates(policy_state)
    unsuppressed = len(unsuppressed_candidates(policy_state))
    counted = {
        "candidateCount": len(candidates),
        "unsuppressedCount": unsuppressed,
        "suppressedCount": len(candidates) - unsuppressed,
        "autoEligibleCount": len(autonomous_eligible_candidates(policy_state)),
        "manualOnlyCount": len(manual_only_candidates(policy_state)),
    }
    return {key: _count(policy_state.get(key), fallback) for key, fallback in counted.items()}


def _severity_rank(candidate: Mapping[str, Any]) -> int:
    severity = candidate.get("severity")
    return SEVERITY_ORDER.get(severity, 2) if isinstance(severity, str) else 2


def top_candidates(policy_state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The first five candidates after a stable sort by severity (critical, warning, other).

    Suppressed candidates are included, as upstream (fleet.md §6.24).
    """
    ranked = sorted(_candidates(policy_state), key=_severity_rank)
    return [dict(c) for c in ranked[:TOP_CANDIDATES]]


def policy_section(policy_state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``policy``: mode, candidate counts, reason codes, top candidates, trace and time."""
    if policy_state is None:
        return None
    counts = policy_counts(policy_state)
    return _drop_nulls(
        {
            "mode": _default(policy_state.get("mode"), ADVISORY),
            "candidateCount": counts["candidateCount"],
            "unsuppressedCount": counts["unsuppressedCount"],
            "suppressedCount": counts["suppressedCount"],
            "reasonCodes": _default(policy_state.get("reasonCodes"), []),
            "topCandidates": top_candidates(policy_state),
            "traceId": policy_state.get("traceId"),
            "updatedAt": policy_state.get("updatedAt"),
        }
    )


def autonomy_reason_counts(policy_state: Mapping[str, Any] | None) -> dict[str, Any]:
    """``PAR`` = ``P.summary.byAutonomyReason // {}`` (``{}`` when it is not an object)."""
    counts = dig(policy_state, "summary", "byAutonomyReason")
    return dict(counts) if isinstance(counts, Mapping) else {}


def _restrict(counts: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """``counts`` restricted to ``keys``, keeping ``counts``' order."""
    return {key: value for key, value in counts.items() if key in keys}


def _sum(values: Any) -> int | float:
    """Sum of the numbers among ``values`` (anything else counts 0)."""
    total: int | float = 0
    for value in values:
        number = as_number(value)
        if number is not None:
            total += number
    return integral(total)


def safety_gate_decisions(
    policy_state: Mapping[str, Any] | None,
    handoff_state: Mapping[str, Any] | None,
    *,
    governance_reason_codes: Sequence[str] = (),
    governance_blocks: bool = False,
) -> dict[str, Any]:
    """``autonomous.safetyGateDecisions``: why candidates were kept from acting, by path.

    ``governance_reason_codes`` / ``governance_blocks`` come from the governance posture
    (:func:`ops_manager.reducers.fleet_governance.governance_posture`).
    """
    par = autonomy_reason_counts(policy_state)
    policy_gated = _restrict(par, POLICY_GATE_REASONS)
    rollout_gated = _restrict(par, ROLLOUT_GATE_REASONS)
    transport_gated = transport_gate_reason_counts(handoff_state)
    governance_blocked = (
        policy_counts(policy_state)["unsuppressedCount"]
        if policy_state is not None and governance_blocks
        else 0
    )
    by_path: dict[str, dict[str, Any]] = {
        "policyGated": {"blockedCount": _sum(policy_gated.values()), "byReason": policy_gated},
        "rolloutGated": {
            "blockedCount": _sum(rollout_gated.values()),
            "byReason": rollout_gated,
        },
        "governanceGated": {
            "blockedCount": governance_blocked,
            "reasonCodes": list(governance_reason_codes),
        },
        "transportGated": {
            "blockedCount": _sum(transport_gated.values()),
            "byReason": transport_gated,
        },
    }
    suppression = unique_sorted(
        SUPPRESSION_CODES[path] for path, entry in by_path.items() if entry["blockedCount"] > 0
    )
    return {
        "byReason": par,
        "byPath": by_path,
        "suppressionReasonCodes": suppression,
        "blockedCount": _sum(_restrict(par, BLOCKED_COUNT_REASONS).values()),
        "killSwitchActive": dig(policy_state, "autonomous", "controls", "safety", "killSwitch")
        is True,
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _autopause_view(auto: Mapping[str, Any]) -> dict[str, Any]:
    """The eight keys of ``rollout.autopause`` / ``rollout.pause.auto`` (nulls kept)."""
    return {
        "enabled": _default(auto.get("enabled"), True),
        "active": _default(auto.get("active"), False),
        "reasons": _default(auto.get("reasons"), []),
        "lookbackExecutions": auto.get("lookbackExecutions"),
        "minSampleSize": auto.get("minSampleSize"),
        "ambiguityRateThreshold": auto.get("ambiguityRateThreshold"),
        "failureRateThreshold": auto.get("failureRateThreshold"),
        "metrics": _default(auto.get("metrics"), {}),
    }


def rollout_view(policy_state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``autonomous.rollout`` from ``P.autonomous.rollout``: cohort settings, candidate
    buckets, pause state (manual and auto) and the auto-pause settings and metrics."""
    if policy_state is None:
        return None
    rollout = _mapping(dig(policy_state, "autonomous", "rollout"))
    buckets = _mapping(rollout.get("candidateBuckets"))
    pause = _mapping(rollout.get("pause"))
    auto = _mapping(pause.get("auto"))
    autopause = _autopause_view(auto)
    return _drop_nulls(
        {
            "canaryPercent": rollout.get("canaryPercent"),
            "scopeLoopIds": _default(rollout.get("scopeLoopIds"), []),
            "selectorSalt": rollout.get("selectorSalt"),
            "candidateBuckets": {
                key: _default(buckets.get(key), 0)
                for key in ("inScopeCount", "inCohortCount", "outOfCohortCount")
            },
            "state": {
                "active": _default(pause.get("active"), False),
                "manualPauseActive": _default(pause.get("manual"), False),
                "autoPauseActive": autopause["active"],
                "reasonCodes": _default(pause.get("reasons"), []),
            },
            "autopause": autopause,
            "pause": {
                "active": _default(pause.get("active"), False),
                "reasons": _default(pause.get("reasons"), []),
                "manual": _default(pause.get("manual"), False),
                "auto": dict(autopause),
            },
        }
    )


def autonomous_section(
    policy_state: Mapping[str, Any] | None,
    handoff_state: Mapping[str, Any] | None,
    *,
    now: int,
) -> dict[str, Any] | None:
    """``autonomous``: mode, eligibility counts, outcome rollup, governance posture at
    ``now`` (epoch seconds), safety-gate decisions, rollout and handoff outcomes.

    ``None`` only when there is neither a policy state nor a handoff state.
    """
    if policy_state is None and handoff_state is None:
        return None
    mode = _default(
        dig(policy_state if policy_state is not None else handoff_state, "mode"), ADVISORY
    )
    counts = policy_counts(policy_state) if policy_state is not None else None
    posture = governance_posture(policy_state, now)
    reasons = posture.reason_codes if posture is not None else ()
    return _drop_nulls(
        {
            "mode": mode,
            "enabled": mode == GUARDED_AUTO,
            "policyReasonCodes": _default(dig(policy_state, "reasonCodes"), []),
            "handoffReasonCodes": _default(dig(handoff_state, "reasonCodes"), []),
            "eligibleCandidateCount": counts["autoEligibleCount"] if counts else 0,
            "manualOnlyCandidateCount": counts["manualOnlyCount"] if counts else 0,
            "outcomeRollup": outcome_rollup(handoff_state, policy_state),
            "governance": posture.status_view() if posture is not None else None,
            "safetyGateDecisions": safety_gate_decisions(
                policy_state,
                handoff_state,
                governance_reason_codes=reasons,
                governance_blocks=posture is not None and posture.blocks_autonomous,
            ),
            "rollout": rollout_view(policy_state),
            "handoff": status_autonomous_handoff(handoff_state, policy_state),
        }
    )


def autonomy_sections(
    policy_state: Mapping[str, Any] | None,
    handoff_state: Mapping[str, Any] | None,
    latest_handoff_telemetry: Mapping[str, Any] | None,
    *,
    now: int,
) -> SectionBuilder:
    """The builder of ``policy``, ``handoff``, ``autonomous``, ``latestHandoffTelemetry`` and
    ``traceLinkage.policyTraceId`` (each ``null`` when its artifact is absent)."""

    def build(_doc: Mapping[str, Any]) -> dict[str, Any]:
        rollup = outcome_rollup(handoff_state, policy_state)
        return {
            "policy": policy_section(policy_state),
            "handoff": status_handoff_section(handoff_state, policy_state),
            "autonomous": autonomous_section(policy_state, handoff_state, now=now),
            "traceLinkage": {"policyTraceId": dig(policy_state, "traceId")},
            "latestHandoffTelemetry": status_latest_handoff_telemetry(
                latest_handoff_telemetry, rollup
            ),
        }

    return build


def _merge(doc: dict[str, Any], additions: Mapping[str, Any]) -> None:
    for key, value in additions.items():
        current = doc.get(key)
        if key in NESTED_ORDERS and isinstance(current, dict) and isinstance(value, Mapping):
            doc[key] = {**current, **value}
        else:
            doc[key] = value


def _ordered(obj: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """``obj`` with the keys of ``order`` first, in that order, then any others as they came."""
    known = {key: obj[key] for key in order if key in obj}
    return {**known, **{key: value for key, value in obj.items() if key not in known}}


def build_fleet_status(
    registry: Mapping[str, Any],
    fleet_state: Mapping[str, Any],
    *,
    now: int,
    repo_path: str,
    files: Mapping[str, str],
    latest_telemetry: Mapping[str, Any] | None = None,
    policy_state: Mapping[str, Any] | None = None,
    handoff_state: Mapping[str, Any] | None = None,
    latest_handoff_telemetry: Mapping[str, Any] | None = None,
    extra_sections: Sequence[SectionBuilder] = (),
) -> dict[str, Any]:
    """The fleet status document (``fleet.md`` §2.4) from data already read and validated.

    ``registry`` is the normalised registry, ``fleet_state`` the fleet ``state.json`` object,
    ``latest_telemetry`` the last row of the fleet reconcile telemetry (or ``None``),
    ``policy_state`` / ``handoff_state`` the ``policy-state.json`` / ``handoff-state.json``
    objects (or ``None``), ``latest_handoff_telemetry`` the last ``handoff.jsonl`` row (or
    ``None``), ``files`` the artifact paths read (keys of :data:`FILES_ORDER`), ``now`` the
    epoch seconds stamped as ``generatedAt`` and the reference of the governance posture.
    :func:`autonomy_sections` is applied first, then ``extra_sections`` in order; see
    :data:`SectionBuilder`.
    """
    results = fleet_results(fleet_state)
    rollup = health_rollup(results)
    doc: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "generatedAt": format_ts(now),
        "source": {
            "repoPath": repo_path,
            "fleetId": _default(
                fleet_state.get("fleetId"), _default(registry.get("fleetId"), "default")
            ),
        },
        "fleet": fleet_section(fleet_state, results, rollup),
        "healthRollup": rollup,
        "exceptions": exception_buckets(results),
        "loops": loop_rows(results),
        "traceLinkage": trace_linkage(fleet_state, results),
        "latestTelemetry": latest_telemetry_section(latest_telemetry),
        "files": dict(files),
    }
    autonomy = autonomy_sections(policy_state, handoff_state, latest_handoff_telemetry, now=now)
    for builder in (autonomy, *extra_sections):
        _merge(doc, builder(doc))
    for key, order in NESTED_ORDERS.items():
        if isinstance(doc.get(key), dict):
            doc[key] = _ordered(doc[key], order)
    return _ordered(doc, STATUS_KEY_ORDER)
