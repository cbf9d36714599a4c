"""Guarded-autonomy rollout: cohort hashing, scope, canary, manual pause, auto-pause.

Pure (``fleet.md`` §3.6-§3.8): normalised registry controls and handoff telemetry rows go
in, frozen decisions with named reasons come out. No clock, file or environment access.

Decision table (each row is one rollout reason a candidate can carry):

==========================================  ===============================================
reason                                      fires when
==========================================  ===============================================
``autonomous_rollout_scope_excluded``       ``scope.loopIds`` non-empty and the loop is not
                                            in it
``autonomous_rollout_canary_excluded``      the loop is in scope but its bucket is not below
                                            ``canaryPercent`` (never for out-of-scope loops)
``autonomous_rollout_paused_manual``        ``rollout.pause.manual`` is ``true``
``autonomous_rollout_paused_auto``          auto-pause is active (one of the two below)
``autonomous_autopause_ambiguous_spike``    auto-pause enabled, attempted >= minSampleSize,
                                            ambiguityRate >= ambiguityRateThreshold
``autonomous_autopause_failure_spike``      auto-pause enabled, attempted >= minSampleSize,
                                            failureRate >= failureRateThreshold
==========================================  ===============================================

The cohort hash (§3.7) is reproduced exactly so cohorts match existing deployments::

    value = 17
    for cp in code_points(loopId + "|" + salt):
        value = (value * 31 + cp) % 1000003
    bucket = value % 100

``autoPause.enabled: false`` disables auto-pause (DECISIONS fleet 6.1): the metrics are still
computed and reported, but no trigger fires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ops_manager.reducers._fleet_json import (
    as_number,
    bool_or,
    dig,
    int_or,
    integral,
    number_or,
    str_list,
    unique_sorted,
)

DEFAULT_SALT = "fleet-autonomous-rollout-v1"
HASH_SEED = 17
HASH_MULTIPLIER = 31
HASH_MODULUS = 1000003
BUCKETS = 100

SCOPE_EXCLUDED = "autonomous_rollout_scope_excluded"
CANARY_EXCLUDED = "autonomous_rollout_canary_excluded"
PAUSED_MANUAL = "autonomous_rollout_paused_manual"
PAUSED_AUTO = "autonomous_rollout_paused_auto"
AMBIGUOUS_SPIKE = "autonomous_autopause_ambiguous_spike"
FAILURE_SPIKE = "autonomous_autopause_failure_spike"

#: every reason this module can return, in the order the docs list them
ROLLOUT_REASONS = (
    SCOPE_EXCLUDED,
    CANARY_EXCLUDED,
    PAUSED_MANUAL,
    PAUSED_AUTO,
    AMBIGUOUS_SPIKE,
    FAILURE_SPIKE,
)

HANDOFF_EXECUTE_CATEGORY = "fleet_handoff_execute"
AUTONOMOUS_MODE = "autonomous"


# --- cohort ------------------------------------------------------------------------------


def cohort_seed(loop_id: str, salt: str = DEFAULT_SALT) -> str:
    """The hashed text: ``<loopId>|<salt>``."""
    return f"{loop_id}|{salt}"


def cohort_hash(seed: str) -> int:
    """The rolling hash of §3.7 over Unicode code points (jq ``explode``), before ``% 100``."""
    value = HASH_SEED
    for char in seed:
        value = (value * HASH_MULTIPLIER + ord(char)) % HASH_MODULUS
    return value


def cohort_bucket(loop_id: str, salt: str = DEFAULT_SALT) -> int:
    """The loop's rollout bucket, 0..99; stable across runs, independent of mode."""
    return cohort_hash(cohort_seed(loop_id, salt)) % BUCKETS


def canary_selected(bucket: int, canary_percent: int | float) -> bool:
    """``canaryPercent <= 0`` selects nothing, ``>= 100`` everything, else ``bucket < pct``."""
    if canary_percent <= 0:
        return False
    if canary_percent >= BUCKETS:
        return True
    return bucket < canary_percent


# --- settings ----------------------------------------------------------------------------


@attrs.frozen
class AutoPauseSettings:
    """``policy.autonomous.rollout.autoPause`` with defaults applied."""

    enabled: bool = True
    lookback_executions: int = 5
    min_sample_size: int = 3
    ambiguity_rate_threshold: int | float = 0.4
    failure_rate_threshold: int | float = 0.4

    @classmethod
    def from_json(cls, value: Any) -> AutoPauseSettings:
        """Read an ``autoPause`` object; missing or mistyped keys take their default."""
        return cls(
            enabled=bool_or(dig(value, "enabled"), True),
            lookback_executions=int_or(dig(value, "lookbackExecutions"), 5),
            min_sample_size=int_or(dig(value, "minSampleSize"), 3),
            ambiguity_rate_threshold=number_or(dig(value, "ambiguityRateThreshold"), 0.4),
            failure_rate_threshold=number_or(dig(value, "failureRateThreshold"), 0.4),
        )


@attrs.frozen
class RolloutSettings:
    """``policy.autonomous.rollout`` with defaults applied (§1.3)."""

    canary_percent: int = 100
    scope_loop_ids: tuple[str, ...] = ()
    salt: str = DEFAULT_SALT
    manual_pause: bool = False
    auto_pause: AutoPauseSettings = attrs.field(factory=AutoPauseSettings)

    @classmethod
    def from_controls(cls, controls: Any) -> RolloutSettings:
        """Read the rollout block of a normalised ``policy.autonomous`` object."""
        rollout = dig(controls, "rollout")
        salt = dig(rollout, "selector", "salt")
        return cls(
            canary_percent=int_or(dig(rollout, "canaryPercent"), 100),
            scope_loop_ids=tuple(str_list(dig(rollout, "scope", "loopIds"))),
            salt=salt if isinstance(salt, str) else DEFAULT_SALT,
            manual_pause=bool_or(dig(rollout, "pause", "manual"), False),
            auto_pause=AutoPauseSettings.from_json(dig(rollout, "autoPause")),
        )


# --- cohort selection --------------------------------------------------------------------


@attrs.frozen
class CohortSelection:
    """Where one loop falls in the rollout: scope, bucket, canary, cohort."""

    salt: str
    bucket: int
    in_scope: bool
    canary_selected: bool

    @property
    def in_cohort(self) -> bool:
        """In scope and canary-selected."""
        return self.in_scope and self.canary_selected

    @property
    def reasons(self) -> list[str]:
        """``scope_excluded`` or ``canary_excluded`` (the latter only for in-scope loops)."""
        if not self.in_scope:
            return [SCOPE_EXCLUDED]
        if not self.canary_selected:
            return [CANARY_EXCLUDED]
        return []

    def to_json(self) -> dict[str, Any]:
        """The candidate's ``autonomous.rollout.selector`` object."""
        return {
            "salt": self.salt,
            "bucket": self.bucket,
            "inScope": self.in_scope,
            "canarySelected": self.canary_selected,
            "inCohort": self.in_cohort,
        }


def select_cohort(loop_id: str, settings: RolloutSettings) -> CohortSelection:
    """Scope + deterministic canary selection for ``loop_id``."""
    bucket = cohort_bucket(loop_id, settings.salt)
    return CohortSelection(
        salt=settings.salt,
        bucket=bucket,
        in_scope=not settings.scope_loop_ids or loop_id in settings.scope_loop_ids,
        canary_selected=canary_selected(bucket, settings.canary_percent),
    )


# --- auto-pause --------------------------------------------------------------------------


@attrs.frozen
class AutoPauseMetrics:
    """Outcome metrics over the last ``lookbackExecutions`` autonomous executions."""

    window_execution_count: int = 0
    attempted_count: int | float = 0
    executed_count: int | float = 0
    ambiguous_count: int | float = 0
    failed_count: int | float = 0

    @property
    def ambiguity_rate(self) -> int | float:
        """ambiguous / attempted (0 when nothing was attempted)."""
        if self.attempted_count <= 0:
            return 0
        return integral(self.ambiguous_count / self.attempted_count)

    @property
    def failure_rate(self) -> int | float:
        """failed / attempted (0 when nothing was attempted)."""
        if self.attempted_count <= 0:
            return 0
        return integral(self.failed_count / self.attempted_count)

    def to_json(self) -> dict[str, Any]:
        """The ``metrics`` object, contract key order."""
        return {
            "windowExecutionCount": self.window_execution_count,
            "attemptedCount": integral(self.attempted_count),
            "executedCount": integral(self.executed_count),
            "ambiguousCount": integral(self.ambiguous_count),
            "failedCount": integral(self.failed_count),
            "ambiguityRate": self.ambiguity_rate,
            "failureRate": self.failure_rate,
        }


def _count(value: Any) -> int | float:
    number = as_number(value)
    return 0 if number is None else number


def _timestamp_key(row: Mapping[str, Any]) -> tuple[int, Any]:
    """jq sort key of ``.timestamp // ""``: booleans < numbers < strings."""
    value = row.get("timestamp")
    if value is True:
        return (0, 0)
    number = as_number(value)
    if number is not None:
        return (1, number)
    return (2, value if isinstance(value, str) else "")


def is_autonomous_execution(row: Any) -> bool:
    """A ``fleet_handoff_execute`` row whose ``execution.mode`` is ``autonomous``."""
    return (
        isinstance(row, Mapping)
        and row.get("category") == HANDOFF_EXECUTE_CATEGORY
        and dig(row, "execution", "mode") == AUTONOMOUS_MODE
    )


def autopause_metrics(
    handoff_rows: Iterable[Mapping[str, Any]], lookback_executions: int
) -> AutoPauseMetrics:
    """§3.8 steps 1-4: filter, stable-sort by timestamp, keep the last L, sum outcomes."""
    executions = sorted(
        (row for row in handoff_rows if is_autonomous_execution(row)), key=_timestamp_key
    )
    window = executions[-lookback_executions:] if lookback_executions >= 1 else []
    attempted: int | float = 0
    executed: int | float = 0
    ambiguous: int | float = 0
    failed: int | float = 0
    for row in window:
        execution = row.get("execution")
        intents = as_number(dig(execution, "executedIntentCount"))
        if intents is None:
            intents = _count(dig(execution, "requestedIntentCount"))
        attempted += intents
        executed += _count(dig(execution, "executedCount"))
        ambiguous += _count(dig(execution, "ambiguousCount"))
        failed += _count(dig(execution, "failedCount"))
    return AutoPauseMetrics(
        window_execution_count=len(window),
        attempted_count=attempted,
        executed_count=executed,
        ambiguous_count=ambiguous,
        failed_count=failed,
    )


@attrs.frozen
class AutoPauseDecision:
    """Whether handoff outcomes paused autonomy, with the trigger reasons."""

    settings: AutoPauseSettings
    metrics: AutoPauseMetrics
    reasons: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Any trigger fired."""
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        """The ``pause.auto`` object, contract key order."""
        return {
            "enabled": self.settings.enabled,
            "active": self.active,
            "reasons": list(self.reasons),
            "lookbackExecutions": self.settings.lookback_executions,
            "minSampleSize": self.settings.min_sample_size,
            "ambiguityRateThreshold": self.settings.ambiguity_rate_threshold,
            "failureRateThreshold": self.settings.failure_rate_threshold,
            "metrics": self.metrics.to_json(),
        }


def evaluate_auto_pause(
    handoff_rows: Iterable[Mapping[str, Any]], settings: AutoPauseSettings
) -> AutoPauseDecision:
    """§3.8: trigger on ``>=`` thresholds once ``attempted >= minSampleSize`` (if enabled)."""
    metrics = autopause_metrics(handoff_rows, settings.lookback_executions)
    reasons: list[str] = []
    if settings.enabled and metrics.attempted_count >= settings.min_sample_size:
        if metrics.ambiguity_rate >= settings.ambiguity_rate_threshold:
            reasons.append(AMBIGUOUS_SPIKE)
        if metrics.failure_rate >= settings.failure_rate_threshold:
            reasons.append(FAILURE_SPIKE)
    return AutoPauseDecision(
        settings=settings, metrics=metrics, reasons=tuple(unique_sorted(reasons))
    )


@attrs.frozen
class PauseDecision:
    """Manual and automatic pause combined (``autonomous.rollout.pause``)."""

    manual: bool
    auto: AutoPauseDecision

    @property
    def reasons(self) -> list[str]:
        """``paused_manual`` / ``paused_auto``, sorted."""
        reasons = []
        if self.manual:
            reasons.append(PAUSED_MANUAL)
        if self.auto.active:
            reasons.append(PAUSED_AUTO)
        return unique_sorted(reasons)

    @property
    def active(self) -> bool:
        """Either pause holds autonomy."""
        return bool(self.reasons)

    @property
    def gating_reasons(self) -> list[str]:
        """What the pause adds to every candidate's gating reasons (incl. the triggers)."""
        return unique_sorted([*self.reasons, *self.auto.reasons])

    def to_json(self) -> dict[str, Any]:
        """The ``pause`` object, contract key order."""
        return {
            "active": self.active,
            "reasons": self.reasons,
            "manual": self.manual,
            "auto": self.auto.to_json(),
        }


def evaluate_pause(
    settings: RolloutSettings, handoff_rows: Iterable[Mapping[str, Any]]
) -> PauseDecision:
    """The rollout pause decision for this policy run (same for every candidate)."""
    return PauseDecision(
        manual=settings.manual_pause,
        auto=evaluate_auto_pause(handoff_rows, settings.auto_pause),
    )


def idle_pause_json(settings: RolloutSettings) -> dict[str, Any]:
    """The ``pause`` block reported when there are no candidates (fleet.md §6.5, kept).

    Nothing is being gated, so nothing is reported as paused: ``active`` is ``false`` and the
    metrics are zero even when ``pause.manual`` is on (``manual`` still shows the setting).
    """
    idle = AutoPauseDecision(settings=settings.auto_pause, metrics=AutoPauseMetrics())
    return {"active": False, "reasons": [], "manual": settings.manual_pause, "auto": idle.to_json()}


@attrs.frozen
class RolloutDecision:
    """One candidate's rollout view: cohort selection plus the run's pause decision."""

    settings: RolloutSettings
    selection: CohortSelection
    pause: PauseDecision

    @property
    def reasons(self) -> list[str]:
        """Every rollout reason for this candidate, sorted."""
        return unique_sorted([*self.selection.reasons, *self.pause.gating_reasons])

    def to_json(self) -> dict[str, Any]:
        """The candidate's ``autonomous.rollout`` object."""
        return {
            "canaryPercent": self.settings.canary_percent,
            "scopeLoopIds": list(self.settings.scope_loop_ids),
            "selector": self.selection.to_json(),
            "pause": self.pause.to_json(),
        }


def evaluate_rollout(
    loop_id: str, settings: RolloutSettings, pause: PauseDecision
) -> RolloutDecision:
    """Cohort + pause for one candidate's loop."""
    return RolloutDecision(
        settings=settings, selection=select_cohort(loop_id, settings), pause=pause
    )
