"""Promotion gates (``fleet.md`` §2.6, §3.12, §4.5) and the CI summary (§2.7, §3.13): pure.

Five gates decide ``promote`` vs ``hold``; each returns ``pass`` / ``fail`` with the named
reasons it found, in evaluation order:

1. **governance** — the fleet runs ``guarded_auto``, its governance posture is ``active``,
   governance does not block autonomy, no authority / deadline / expiry problem;
2. **outcome_reliability** — enough recent autonomous execution runs, with ambiguity and
   failure rates at or below the thresholds;
3. **manual_backlog** — the pending manual-only backlog is known and small enough;
4. **safety_suppression** — auto-pause is off and status reports all four suppression paths;
5. **drill_recency** — the three incident drills passed recently, each judged on its own
   (DECISIONS 6.28: a drill with a missing or unparseable ``completedAt`` fails with
   ``promotion_drill_timestamp_invalid_<id>``; upstream silently skipped or reset it).

The shell reads the evidence (fleet status, ``handoff.jsonl`` rows, the drill file), passes
``now`` in, and writes what :func:`promotion_document` returns. The CI markdown builders
return text only; nothing here (or in the shell) ever executes a path (DECISIONS 6.9).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ops_manager.model._json import alt
from ops_manager.model._time import parse_ts

REQUIRED_DRILLS = ("kill_switch", "sprite_service_outage", "ambiguous_retry_guard")
#: (snake_case name used in ``failedGates``, camelCase key under ``gates``)
GATES = (
    ("governance", "governance"),
    ("outcome_reliability", "outcomeReliability"),
    ("manual_backlog", "manualBacklog"),
    ("safety_suppression", "safetySuppression"),
    ("drill_recency", "drillRecency"),
)
SUPPRESSION_PATHS = ("policyGated", "rolloutGated", "governanceGated", "transportGated")
#: status governance reason -> promotion reason
GOVERNANCE_REASONS = (
    ("autonomous_governance_authority_missing", "promotion_governance_authority_missing"),
    (
        "autonomous_governance_review_deadline_missing",
        "promotion_governance_review_deadline_missing",
    ),
    ("autonomous_governance_review_expired", "promotion_governance_review_expired"),
)
CI_MISSING_EVIDENCE = "promotion_ci_missing_evidence"


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _or(value: Any, default: Any) -> Any:
    """jq ``value // default``."""
    chosen = alt(value)
    return default if chosen is None else chosen


def _number(value: float) -> int | float:
    """Integral floats print as integers (``1``, not ``1.0``)."""
    return int(value) if float(value).is_integer() else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _gate(reasons: list[str], **fields: Any) -> dict[str, Any]:
    return {"status": "fail" if reasons else "pass", "reasons": reasons, **fields}


@attrs.frozen
class Thresholds:
    """The gate thresholds (flags ``--window-executions`` ... ``--max-drill-age-hours``)."""

    window_executions: int = 20
    min_sample_size: int = 20
    max_ambiguity_rate: int | float = 0.2
    max_failure_rate: int | float = 0.2
    max_manual_backlog: int = 5
    max_drill_age_hours: int = 168

    def to_json(self) -> dict[str, Any]:
        """The ``thresholds`` object of the result document."""
        return {
            "windowExecutions": self.window_executions,
            "minSampleSize": self.min_sample_size,
            "maxAmbiguityRate": self.max_ambiguity_rate,
            "maxFailureRate": self.max_failure_rate,
            "maxManualBacklog": self.max_manual_backlog,
            "maxDrillAgeHours": self.max_drill_age_hours,
        }


@attrs.frozen
class Evidence:
    """What the gates judge; the shell fills it from files (or the generated status)."""

    status: Mapping[str, Any]
    #: ``handoff.jsonl`` rows in file order (empty when missing or invalid)
    handoff_rows: Sequence[Mapping[str, Any]] = ()
    handoff_missing: bool = False
    handoff_invalid: bool = False
    #: the parsed drill file (``None`` when missing or invalid)
    drill_state: Any = None
    drill_missing: bool = False
    drill_invalid: bool = False


# --- the five gates ---------------------------------------------------------------------


def governance_gate(status: Mapping[str, Any]) -> dict[str, Any]:
    """Gate 1: autonomy enabled, posture ``active``, not blocked, no governance problem."""
    auto = _or(status.get("autonomous"), {})
    gov = _or(_get(auto, "governance"), {})
    reasons: list[str] = []
    if _or(_get(auto, "enabled"), False) is False:
        reasons.append("promotion_policy_mode_not_guarded_auto")
    if _or(_get(gov, "posture"), "") != "active":
        reasons.append("promotion_governance_posture_not_active")
    if _or(_get(gov, "blocksAutonomous"), False) is True:
        reasons.append("promotion_governance_blocks_autonomous")
    codes_raw = _or(_get(gov, "reasonCodes"), [])
    codes = codes_raw if isinstance(codes_raw, list) else []
    for status_code, promotion_code in GOVERNANCE_REASONS:
        if status_code in codes:
            reasons.append(promotion_code)
    posture = _get(gov, "posture")
    return _gate(
        reasons,
        posture=posture,
        blocksAutonomous=_or(_get(gov, "blocksAutonomous"), False),
        reasonCodes=sorted(
            {c if isinstance(c, str) else json.dumps(c, separators=(",", ":")) for c in codes}
        ),
    )


def autonomous_execute_runs(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``fleet_handoff_execute`` rows whose execution was autonomous, in file order."""
    return [
        r
        for r in rows
        if r.get("category") == "fleet_handoff_execute"
        and _get(r, "execution", "mode") == "autonomous"
    ]


def outcome_reliability_gate(evidence: Evidence, thresholds: Thresholds) -> dict[str, Any]:
    """Gate 2: the last ``windowExecutions`` autonomous runs (file order, no sort).

    ``attempted`` sums ``requestedIntentCount``; the sample is the number of runs (rows),
    not intents; rates fail only when strictly above their threshold (§6.13).
    """
    runs = autonomous_execute_runs(evidence.handoff_rows)
    window = runs[-thresholds.window_executions :] if thresholds.window_executions > 0 else []

    def total(key: str) -> int | float:
        sum_: int | float = 0
        for run in window:
            value = _or(_get(run, "execution", key), 0)
            if _is_number(value):
                sum_ += value
        return _number(sum_)

    attempted = total("requestedIntentCount")
    executed = total("executedCount")
    ambiguous = total("ambiguousCount")
    failed = total("failedCount")
    ambiguity_rate = _number(ambiguous / attempted) if attempted > 0 else 0
    failure_rate = _number(failed / attempted) if attempted > 0 else 0
    reasons: list[str] = []
    if evidence.handoff_missing:
        reasons.append("promotion_handoff_telemetry_missing")
    if evidence.handoff_invalid:
        reasons.append("promotion_handoff_telemetry_invalid")
    sample = len(window)
    if sample < thresholds.min_sample_size:
        reasons.append("promotion_autonomous_sample_insufficient")
    elif attempted == 0:
        reasons.append("promotion_autonomous_attempts_zero")
    if attempted > 0 and ambiguity_rate > thresholds.max_ambiguity_rate:
        reasons.append("promotion_autonomous_ambiguity_rate_exceeded")
    if attempted > 0 and failure_rate > thresholds.max_failure_rate:
        reasons.append("promotion_autonomous_failure_rate_exceeded")
    return _gate(
        reasons,
        sampleRuns=sample,
        attempted=attempted,
        executed=executed,
        ambiguous=ambiguous,
        failed=failed,
        ambiguityRate=ambiguity_rate,
        failureRate=failure_rate,
    )


def manual_backlog_gate(status: Mapping[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    """Gate 3: ``autonomous.outcomeRollup.manual_backlog`` known and <= the maximum.

    A backlog that is not a number counts as unavailable (upstream compared whatever was
    there).
    """
    value = _or(_get(status, "autonomous", "outcomeRollup", "manual_backlog"), None)
    backlog = value if _is_number(value) else None
    reasons: list[str] = []
    if backlog is None:
        reasons.append("promotion_manual_backlog_unavailable")
    elif backlog > thresholds.max_manual_backlog:
        reasons.append("promotion_manual_backlog_exceeded")
    return _gate(reasons, manualBacklog=backlog)


def safety_suppression_gate(status: Mapping[str, Any]) -> dict[str, Any]:
    """Gate 4: auto-pause inactive and all four ``safetyGateDecisions.byPath`` entries."""
    auto = _or(status.get("autonomous"), {})
    active = (
        _or(
            _get(auto, "rollout", "autopause", "active"),
            _or(_get(auto, "rollout", "state", "autoPauseActive"), False),
        )
        is True
    )
    by_path = _get(auto, "safetyGateDecisions", "byPath")
    if isinstance(by_path, dict):
        missing = [p for p in SUPPRESSION_PATHS if p not in by_path]
    else:
        missing = list(SUPPRESSION_PATHS)
        by_path = None
    reasons: list[str] = []
    if active:
        reasons.append("promotion_autopause_active")
    if missing:
        reasons.append("promotion_suppression_paths_missing")
    return _gate(reasons, autopauseActive=active, missingPaths=missing, byPath=by_path)


def drill_reasons(
    drill: Mapping[str, Any], drill_id: str, now: int, max_age_hours: int
) -> list[str]:
    """The reasons one present drill fails (empty: it passes). Each check is independent."""
    reasons: list[str] = []
    if _or(drill.get("status"), "") != "pass":
        reasons.append(f"promotion_drill_not_passed_{drill_id}")
    completed = parse_ts(drill.get("completedAt"))
    if completed is None:
        reasons.append(f"promotion_drill_timestamp_invalid_{drill_id}")
    elif (now - completed) / 3600 > max_age_hours:
        reasons.append(f"promotion_drill_stale_{drill_id}")
    return reasons


def drill_recency_gate(evidence: Evidence, thresholds: Thresholds, now: int) -> dict[str, Any]:
    """Gate 5: every required drill present, passed, timestamped and fresh (per drill)."""
    reasons: list[str] = []
    drills_out: Any = []
    if evidence.drill_missing:
        reasons.append("promotion_drill_state_missing")
    elif evidence.drill_invalid or not isinstance(evidence.drill_state, dict):
        reasons.append("promotion_drill_state_invalid")
    else:
        found = _or(evidence.drill_state.get("drills"), [])
        drills_out = found
        drills = [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []
        for drill_id in REQUIRED_DRILLS:
            drill = next((d for d in drills if d.get("id") == drill_id), None)
            if drill is None:
                reasons.append(f"promotion_drill_missing_{drill_id}")
            else:
                reasons.extend(drill_reasons(drill, drill_id, now, thresholds.max_drill_age_hours))
    return _gate(reasons, requiredDrills=list(REQUIRED_DRILLS), drills=drills_out)


# --- the decision -----------------------------------------------------------------------


def evaluate_gates(evidence: Evidence, thresholds: Thresholds, now: int) -> dict[str, Any]:
    """All five gates, keyed by their camelCase names, in the fixed order."""
    return {
        "governance": governance_gate(evidence.status),
        "outcomeReliability": outcome_reliability_gate(evidence, thresholds),
        "manualBacklog": manual_backlog_gate(evidence.status, thresholds),
        "safetySuppression": safety_suppression_gate(evidence.status),
        "drillRecency": drill_recency_gate(evidence, thresholds, now),
    }


def summarize_gates(gates: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``promote`` iff no gate fails; failed gate names (snake_case) and every reason."""
    failed = [name for name, key in GATES if gates[key]["status"] == "fail"]
    reasons = sorted({r for _, key in GATES for r in gates[key]["reasons"]})
    decision = "hold" if failed else "promote"
    return {
        "decision": decision,
        "promote": decision == "promote",
        "gatePassCount": len(GATES) - len(failed),
        "gateFailCount": len(failed),
        "failedGates": failed,
        "reasonCodes": reasons,
    }


def promotion_document(
    *,
    evidence: Evidence,
    thresholds: Thresholds,
    now: int,
    generated_at: str,
    trace_id: str,
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """The result document (``promotion-state.json`` == telemetry row == stdout)."""
    gates = evaluate_gates(evidence, thresholds, now)
    return {
        "schemaVersion": "v1",
        "generatedAt": generated_at,
        "traceId": trace_id,
        "source": dict(source),
        "thresholds": thresholds.to_json(),
        "summary": summarize_gates(gates),
        "gates": gates,
    }


# --- promotion CI -------------------------------------------------------------------------


def skipped_result(*, generated_at: str, repo_path: str, missing: Sequence[str]) -> dict[str, Any]:
    """The CI result when evidence is missing and ``--skip-on-missing-evidence`` is set."""
    return {
        "schemaVersion": "v1",
        "generatedAt": generated_at,
        "source": {"repoPath": repo_path},
        "summary": {
            "decision": "skipped",
            "promote": False,
            "reasonCodes": [CI_MISSING_EVIDENCE],
            "missingEvidencePaths": list(missing),
        },
    }


def md_code(text: str) -> str:
    """``text`` as a markdown code span; a fence longer than any backtick run inside it."""
    if "`" not in text:
        return f"`{text}`"
    longest = max(len(run) for run in re.findall(r"`+", text))
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def skipped_markdown(missing: Sequence[str]) -> str:
    """§3.13 skipped summary, with the intended ``- `<path>``` lines (DECISIONS 6.9)."""
    lines = [
        "## Ops Manager Promotion CI",
        "",
        "Decision: `skipped`",
        "",
        f"Reason codes: `{CI_MISSING_EVIDENCE}`",
        "",
        "Missing evidence paths:",
        *(f"- {md_code(path)}" for path in missing),
    ]
    return "\n".join(lines) + "\n"


def decision_markdown(
    result: Mapping[str, Any], *, result_file: str, state_file: str, telemetry_file: str
) -> str:
    """§3.13 evaluated summary, with the intended `` `path` `` lines (DECISIONS 6.9)."""
    summary = _or(result.get("summary"), {})
    decision = _or(_get(summary, "decision"), "unknown")
    failed = _get(summary, "failedGates")
    reasons = _get(summary, "reasonCodes")

    def joined(values: Any) -> str:
        items = [v if isinstance(v, str) else json.dumps(v) for v in values or []]
        return ", ".join(items) if items else "none"

    lines = [
        "## Ops Manager Promotion CI",
        "",
        f"Decision: `{decision}`",
        "",
        f"Failed gates: {joined(failed if isinstance(failed, list) else [])}",
        "",
        f"Reason codes: {joined(reasons if isinstance(reasons, list) else [])}",
        "",
        f"Result JSON: {md_code(result_file)}",
        "",
        f"Promotion state: {md_code(state_file)}",
        "",
        f"Promotion telemetry: {md_code(telemetry_file)}",
    ]
    return "\n".join(lines) + "\n"
