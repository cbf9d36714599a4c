"""Promotion gates and promotion CI, the shell (``fleet.md`` §2.6, §2.7).

:func:`promotion_gates` reads the evidence — the fleet status (a file, or generated in process
by :func:`ops_manager.engine.fleet_status.fleet_status`), ``telemetry/handoff.jsonl`` and the
operator's drill file ``drills/promotion.v1.json`` — hands it to the pure gates
(:mod:`ops_manager.reducers.promotion`), then appends the result to
``telemetry/promotion.jsonl`` and overwrites ``promotion-state.json`` as one commit under the
fleet lock (``store._commit``, record ``FLEET/.fleet-commit.json``: a kill leaves the previous
run or this one). A fleet command killed after its commit point is finished before the
evidence is read. Missing or unparseable handoff telemetry and drill files are never fatal:
they become gate reasons.

:func:`promotion_ci` wraps it for CI: with ``skip_on_missing_evidence`` a run whose evidence
files are missing is ``skipped`` (exit 0, the evaluator does not run); otherwise it writes the
evaluator's result JSON and a markdown summary (also appended to ``$GITHUB_STEP_SUMMARY``)
and exits with the evaluator's code (2 on ``hold`` with ``fail_on_hold``). The markdown only
*names* paths; nothing is ever executed (DECISIONS 6.9).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.errors import CorruptStreamError, OpsError
from ops_manager.reducers.promotion import (
    Evidence,
    Thresholds,
    decision_markdown,
    promotion_document,
    skipped_markdown,
    skipped_result,
)
from ops_manager.store import (
    FleetPaths,
    commit,
    finish_pending,
    iter_records,
    json_replace,
    locked,
    rows_append,
    write_atomic,
    write_json,
)

JSON = dict[str, Any]

_INT = re.compile(r"^[0-9]+$")
_RATE = re.compile(r"^([0-9]+([.][0-9]+)?|[.][0-9]+)$")

#: ``(flag, message)`` of each threshold, in the contract's validation order
THRESHOLD_FLAGS = (
    ("--window-executions", "--window-executions must be an integer >= 1"),
    ("--min-sample-size", "--min-sample-size must be an integer >= 1"),
    ("--max-ambiguity-rate", "--max-ambiguity-rate must be a number between 0 and 1"),
    ("--max-failure-rate", "--max-failure-rate must be a number between 0 and 1"),
    ("--max-manual-backlog", "--max-manual-backlog must be an integer >= 0"),
    ("--max-drill-age-hours", "--max-drill-age-hours must be an integer >= 1"),
)


def _int_flag(value: str | None, default: int, minimum: int, message: str) -> int:
    if value is None:
        return default
    if not _INT.match(value) or int(value) < minimum:
        raise OpsError(message)
    return int(value)


def _rate_flag(value: str | None, default: float, message: str) -> int | float:
    if value is None:
        return default
    if not _RATE.match(value):
        raise OpsError(message)
    number = float(value)
    if not 0 <= number <= 1:
        raise OpsError(message)
    return int(number) if number.is_integer() else number


def parse_thresholds(
    *,
    window_executions: str | None = None,
    min_sample_size: str | None = None,
    max_ambiguity_rate: str | None = None,
    max_failure_rate: str | None = None,
    max_manual_backlog: str | None = None,
    max_drill_age_hours: str | None = None,
) -> Thresholds:
    """Validate the threshold flags in table order (``None`` = default); canonical numbers
    (``.5`` -> ``0.5``, ``007`` -> ``7``)."""
    msg = dict(THRESHOLD_FLAGS)
    return Thresholds(
        window_executions=_int_flag(window_executions, 20, 1, msg["--window-executions"]),
        min_sample_size=_int_flag(min_sample_size, 20, 1, msg["--min-sample-size"]),
        max_ambiguity_rate=_rate_flag(max_ambiguity_rate, 0.2, msg["--max-ambiguity-rate"]),
        max_failure_rate=_rate_flag(max_failure_rate, 0.2, msg["--max-failure-rate"]),
        max_manual_backlog=_int_flag(max_manual_backlog, 5, 0, msg["--max-manual-backlog"]),
        max_drill_age_hours=_int_flag(max_drill_age_hours, 168, 1, msg["--max-drill-age-hours"]),
    )


@attrs.frozen
class PromotionSettings:
    """One promotion-gates run. ``None`` paths take the fleet defaults (absolute)."""

    repo: Path
    fleet_status_file: Path | None = None
    handoff_telemetry_file: Path | None = None
    drill_state_file: Path | None = None
    promotion_state_file: Path | None = None
    promotion_telemetry_file: Path | None = None
    thresholds: Thresholds = attrs.field(factory=Thresholds)
    trace_id: str | None = None
    fail_on_hold: bool = False


@attrs.frozen
class PromotionResult:
    """The result document and the exit code (2 on ``hold`` with ``fail_on_hold``)."""

    document: JSON
    exit_code: int = 0

    @property
    def decision(self) -> str:
        """``promote`` or ``hold``."""
        return str(self.document["summary"]["decision"])


#: builds the fleet status when no file is given: ``(repo, now) -> status``
StatusFn = Callable[[Path, int], Mapping[str, Any]]


def _generated_status(repo: Path, now: int) -> Mapping[str, Any]:
    from ops_manager.engine.fleet_status import fleet_status

    return fleet_status(repo, now=now)


def read_fleet_status(path: Path) -> JSON:
    """A fleet status file: ``fleet status file not found`` / ``invalid fleet status JSON``."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise OpsError(f"fleet status file not found: {path}") from None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"invalid fleet status JSON: {path}") from None
    if not isinstance(value, dict):
        raise OpsError(f"invalid fleet status JSON: {path}")
    return value


def read_handoff_rows(path: Path) -> tuple[list[JSON], bool, bool]:
    """``(rows, missing, invalid)`` of ``handoff.jsonl`` (a torn final line is ignored)."""
    if not path.is_file():
        return [], True, False
    try:
        return [row for _, row in iter_records(path)], False, False
    except (CorruptStreamError, OSError):
        return [], False, True


def read_drill_state(path: Path) -> tuple[Any, bool, bool]:
    """``(document, missing, invalid)`` of the drill evidence file."""
    if not path.is_file():
        return None, True, False
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return None, False, True
    if not isinstance(value, dict):
        return None, False, True
    return value, False, False


def promotion_gates(
    settings: PromotionSettings,
    *,
    clock: Callable[[], int] = utc_now_epoch,
    env: Mapping[str, str] | None = None,
    status_fn: StatusFn | None = None,
) -> PromotionResult:
    """Evaluate the five gates, record the result, and decide the exit code.

    ``clock`` is "now" (drill ages, the generated status); ``env`` replaces ``os.environ``
    (``OPS_MANAGER_TRACE_ID``); ``status_fn`` replaces the in-process fleet-status.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    paths = FleetPaths.for_repo(settings.repo)
    handoff_file = settings.handoff_telemetry_file or paths.handoff_telemetry_file
    drill_file = settings.drill_state_file or paths.promotion_drill_file
    state_file = settings.promotion_state_file or paths.promotion_state_file
    telemetry_file = settings.promotion_telemetry_file or paths.promotion_telemetry_file
    trace_id = settings.trace_id or environ.get("OPS_MANAGER_TRACE_ID") or str(uuid.uuid4())
    now = clock()
    # the evidence read below is committed evidence (a handoff killed after its commit point)
    finish_pending(paths.lock_file, paths.commit_record_file)

    if settings.fleet_status_file is not None:
        status: Mapping[str, Any] = read_fleet_status(settings.fleet_status_file)
        status_source = "file"
    else:
        try:
            status = (status_fn or _generated_status)(paths.repo, now)
        except OpsError as exc:
            raise OpsError(
                f"failed to read fleet status via ops-manager fleet-status: {exc.message}"
            ) from None
        status_source = "generated"

    rows, handoff_missing, handoff_invalid = read_handoff_rows(handoff_file)
    drill_state, drill_missing, drill_invalid = read_drill_state(drill_file)
    evidence = Evidence(
        status=status,
        handoff_rows=rows,
        handoff_missing=handoff_missing,
        handoff_invalid=handoff_invalid,
        drill_state=drill_state,
        drill_missing=drill_missing,
        drill_invalid=drill_invalid,
    )
    document = promotion_document(
        evidence=evidence,
        thresholds=settings.thresholds,
        now=now,
        generated_at=format_ts(now),
        trace_id=trace_id,
        source={
            "repoPath": str(paths.repo),
            "fleetStatusSource": status_source,
            "fleetStatusFile": (
                None if settings.fleet_status_file is None else str(settings.fleet_status_file)
            ),
            "handoffTelemetryFile": str(handoff_file),
            "drillStateFile": str(drill_file),
            "promotionStateFile": str(state_file),
            "promotionTelemetryFile": str(telemetry_file),
        },
    )
    state_file.parent.mkdir(parents=True, exist_ok=True)
    telemetry_file.parent.mkdir(parents=True, exist_ok=True)
    with locked(paths.lock_file, paths.commit_record_file):
        commit(
            paths.commit_record_file,
            [rows_append(telemetry_file, [document])],
            [json_replace(state_file, document)],
        )
    hold = document["summary"]["decision"] == "hold"
    return PromotionResult(document=document, exit_code=2 if hold and settings.fail_on_hold else 0)


# --- promotion CI ---------------------------------------------------------------------------


@attrs.frozen
class PromotionCISettings:
    """One promotion-ci run. Threshold values are the raw flag strings (validated by the
    evaluator, after the skip decision, like upstream)."""

    repo: Path
    fleet_status_file: Path | None = None
    handoff_telemetry_file: Path | None = None
    drill_state_file: Path | None = None
    promotion_state_file: Path | None = None
    promotion_telemetry_file: Path | None = None
    summary_file: Path | None = None
    result_file: Path | None = None
    thresholds: Mapping[str, str | None] = attrs.field(factory=dict)
    trace_id: str | None = None
    fail_on_hold: bool = False
    skip_on_missing_evidence: bool = False


@attrs.frozen
class PromotionCIResult:
    """The result JSON written (and printed), the markdown, and the exit code."""

    result: JSON
    markdown: str
    exit_code: int
    #: operator warnings (an unwritable ``$GITHUB_STEP_SUMMARY``); the CLI prints them on a
    #: successful run only (a failure document is the whole output)
    warnings: tuple[str, ...] = ()


def missing_evidence(settings: PromotionCISettings) -> list[str]:
    """Evidence paths that are not files, in contract order (status, handoff, drills)."""
    paths = FleetPaths.for_repo(settings.repo)
    missing: list[str] = []
    if settings.fleet_status_file is not None and not settings.fleet_status_file.is_file():
        missing.append(str(settings.fleet_status_file))
    handoff = settings.handoff_telemetry_file or paths.handoff_telemetry_file
    if not handoff.is_file():
        missing.append(str(handoff))
    drills = settings.drill_state_file or paths.promotion_drill_file
    if not drills.is_file():
        missing.append(str(drills))
    return missing


def _append_step_summary(markdown: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """Append to ``$GITHUB_STEP_SUMMARY`` when set; a failure is a warning (returned), not
    fatal (the result and summary files are already written)."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if target:
        try:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(markdown)
        except OSError as exc:
            return (f"cannot append to GITHUB_STEP_SUMMARY ({target}): {exc.strerror}",)
    return ()


def promotion_ci(
    settings: PromotionCISettings,
    *,
    clock: Callable[[], int] = utc_now_epoch,
    env: Mapping[str, str] | None = None,
    status_fn: StatusFn | None = None,
) -> PromotionCIResult:
    """Run the CI flow of §2.7 (see the module docstring). Evaluator errors propagate as
    :class:`OpsError` and leave the result and summary files unwritten."""
    environ: Mapping[str, str] = os.environ if env is None else env
    paths = FleetPaths.for_repo(settings.repo)
    summary_file = settings.summary_file or paths.promotion_ci_summary_file
    result_file = settings.result_file or paths.promotion_ci_result_file
    summary_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.parent.mkdir(parents=True, exist_ok=True)

    missing = missing_evidence(settings)
    if settings.skip_on_missing_evidence and missing:
        result = skipped_result(
            generated_at=format_ts(clock()), repo_path=str(paths.repo), missing=missing
        )
        markdown = skipped_markdown(missing)
        write_json(result_file, result)
        write_atomic(summary_file, markdown)
        warnings = _append_step_summary(markdown, environ)
        return PromotionCIResult(result=result, markdown=markdown, exit_code=0, warnings=warnings)

    thresholds = parse_thresholds(**{k: v for k, v in settings.thresholds.items() if v})
    gates_settings = PromotionSettings(
        repo=settings.repo,
        fleet_status_file=settings.fleet_status_file,
        handoff_telemetry_file=settings.handoff_telemetry_file,
        drill_state_file=settings.drill_state_file,
        promotion_state_file=settings.promotion_state_file,
        promotion_telemetry_file=settings.promotion_telemetry_file,
        thresholds=thresholds,
        trace_id=settings.trace_id,
        fail_on_hold=settings.fail_on_hold,
    )
    evaluated = promotion_gates(gates_settings, clock=clock, env=environ, status_fn=status_fn)
    state_file = settings.promotion_state_file or paths.promotion_state_file
    telemetry_file = settings.promotion_telemetry_file or paths.promotion_telemetry_file
    markdown = decision_markdown(
        evaluated.document,
        result_file=str(result_file),
        state_file=str(state_file),
        telemetry_file=str(telemetry_file),
    )
    write_json(result_file, evaluated.document)
    write_atomic(summary_file, markdown)
    warnings = _append_step_summary(markdown, environ)
    return PromotionCIResult(
        result=evaluated.document,
        markdown=markdown,
        exit_code=evaluated.exit_code,
        warnings=warnings,
    )
