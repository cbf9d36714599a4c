"""Fleet reconcile, the pure part (``fleet.md`` §2.2, §3.2, §4.1).

The shell (:mod:`ops_manager.engine.fleet_reconcile`) runs the loop-level reconcile of every
registry loop and hands each outcome to this module as a :class:`LoopRun`; everything the
operator sees is decided here, from plain values:

- :func:`precheck`: the checks that stop a loop before its reconcile runs (disabled loop,
  sprite_service loop without a base URL, a ``service.tokenEnv`` naming an unset variable);
- :func:`derive_failure_reason`: the per-loop ``reasonCode`` of a failed reconcile (§3.2):
  the failure JSON's ``reasonCodes`` by priority, then its ``transport.failureCode``, then a
  classification of the captured output text;
- :func:`loop_result`: the per-loop result object, keys in contract order, nulls dropped;
- :func:`fleet_state` / :func:`telemetry_row`: the fleet rollup (``state.json`` == stdout)
  and the row appended to ``telemetry/reconcile.jsonl``.

No clock, no environment, no I/O: timestamps arrive as epoch seconds, the environment as a
mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ops_manager.model._time import format_ts
from ops_manager.reducers._fleet_json import dig, unique_sorted

JSON = dict[str, Any]

#: per-loop ``status`` / ``reconcileStatus`` values
SUCCESS = "success"
FAILED = "failed"
SKIPPED = "skipped"

#: pre-check reason codes (§2.2 "Pre-checks")
LOOP_DISABLED = "loop_disabled"
MISSING_SERVICE_BASE_URL = "missing_service_base_url"
MISSING_SERVICE_TOKEN_ENV = "missing_service_token_env"

#: §3.2 rule 1: the failure JSON's reason codes, highest priority first
REASON_PRIORITY: tuple[str, ...] = (
    "transport_unreachable",
    "invalid_transport_payload",
    "projection_failed",
    "reconcile_failed",
)

#: §3.2 rule 2: ``transport.failureCode`` -> loop reason code (others pass through verbatim)
FAILURE_CODE_REASONS: Mapping[str, str] = {
    "snapshot_unavailable": "transport_unreachable",
    "events_unavailable": "transport_unreachable",
    "service_request_failed": "transport_unreachable",
    "service_response_invalid": "invalid_transport_payload",
}

#: ``outputExcerpt`` is cut at this many bytes (GNU ``cut -c``)
EXCERPT_BYTES = 600

_UNSAFE_TRACE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_WHITESPACE_RUN = re.compile(r"[ \t\n\r\f\v]+")
_INVALID_JSON = re.compile(r"invalid.*json", re.DOTALL)


def loop_trace_id(fleet_trace_id: str, loop_id: str) -> str:
    """``<fleet trace>-<loop id>``: every loop-id character outside ``[A-Za-z0-9._-]``
    becomes ``-``; the fleet trace id is used as it is (§2.2, §6.11)."""
    return f"{fleet_trace_id}-{_UNSAFE_TRACE_CHARS.sub('-', loop_id)}"


def ordered_loops(loops: Sequence[JSON], deterministic_order: bool) -> list[JSON]:
    """The launch order: registry order, or sorted by ``loopId`` (code point order, stable)
    with ``--deterministic-order``. Results always come back in this order."""
    if not deterministic_order:
        return list(loops)
    return sorted(loops, key=lambda loop: str(loop.get("loopId", "")))


def precheck(loop: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(status, reasonCode)`` when the loop must not be reconciled, else ``None``.

    First match wins (§2.2): a disabled loop is ``skipped`` / ``loop_disabled``
    (DECISIONS fleet 6.1: ``enabled: false`` is honoured); a sprite_service loop without a
    base URL is ``failed`` / ``missing_service_base_url``; a ``service.tokenEnv`` naming a
    variable that is unset or empty in ``env`` is ``failed`` / ``missing_service_token_env``
    (whatever the transport).
    """
    if loop.get("enabled") is False:
        return SKIPPED, LOOP_DISABLED
    if loop.get("transport") == "sprite_service" and not service_base_url(loop):
        return FAILED, MISSING_SERVICE_BASE_URL
    token_env = dig(loop, "service", "tokenEnv")
    if isinstance(token_env, str) and token_env and not env.get(token_env):
        return FAILED, MISSING_SERVICE_TOKEN_ENV
    return None


def service_base_url(loop: Mapping[str, Any]) -> str:
    """The loop's service base URL (``service.baseUrl``, else ``sprite.serviceBaseUrl``)."""
    for value in (dig(loop, "service", "baseUrl"), dig(loop, "sprite", "serviceBaseUrl")):
        if isinstance(value, str) and value:
            return value
    return ""


def classify_failure_text(text: str) -> str:
    """§3.2 rule 3: a reason code from the captured output of a failed reconcile."""
    lowered = text.lower()
    if "missing required artifact" in lowered or "events artifact" in lowered:
        return "missing_runtime_artifacts"
    if (
        "service request failed" in lowered
        or "transport_unreachable" in lowered
        or "connection refused" in lowered
    ):
        return "transport_unreachable"
    if _INVALID_JSON.search(lowered) or "invalid payload" in lowered:
        return "invalid_transport_payload"
    return "reconcile_failed"


def derive_failure_reason(failure_json: Mapping[str, Any] | None, output_text: str) -> str:
    """The ``reasonCode`` of a failed loop reconcile (§3.2).

    1. the first of :data:`REASON_PRIORITY` present in the failure JSON's ``reasonCodes``;
    2. else its ``transport.failureCode``, mapped by :data:`FAILURE_CODE_REASONS` (any other
       non-empty code is passed through verbatim);
    3. else (or without a failure JSON) :func:`classify_failure_text` of the output.
    """
    if failure_json is not None:
        codes = failure_json.get("reasonCodes")
        present = {c for c in codes if isinstance(c, str)} if isinstance(codes, list) else set()
        for code in REASON_PRIORITY:
            if code in present:
                return code
        failure_code = dig(failure_json, "transport", "failureCode")
        if isinstance(failure_code, str) and failure_code:
            return FAILURE_CODE_REASONS.get(failure_code, failure_code)
    return classify_failure_text(output_text)


def output_excerpt(text: str) -> str:
    """``outputExcerpt``: the output on one line, whitespace runs collapsed to one space,
    cut at :data:`EXCERPT_BYTES` bytes.

    Like upstream (§2.2, §6.10), a newline is appended first, so a short excerpt ends with
    a space and an empty output gives ``" "``. A cut inside a UTF-8 sequence leaves U+FFFD.
    """
    collapsed = _WHITESPACE_RUN.sub(" ", text + "\n")
    data = collapsed.encode("utf-8")[:EXCERPT_BYTES]
    return data.decode("utf-8", "replace")


@attrs.frozen
class LoopRun:
    """What happened to one loop, as the shell observed it.

    ``status`` is ``success`` / ``failed`` / ``skipped``. ``reason_code`` is set only by a
    pre-check (the loop-level reconcile did not run). ``output`` is the loop reconcile's
    JSON answer: the merged state on success, the health projection on failure (``None``
    when the reconcile never produced one, e.g. it raised). ``output_text`` is the captured
    output (what the loop-level command would have printed on stdout and stderr), used for
    the text classification and the excerpt of a failure.
    """

    status: str
    reason_code: str | None = None
    output: Mapping[str, Any] | None = None
    output_text: str = ""

    @classmethod
    def prechecked(cls, status: str, reason_code: str) -> LoopRun:
        """A loop stopped by :func:`precheck` (no output at all)."""
        return cls(status=status, reason_code=reason_code)


def loop_files(repo_path: str, loop_id: str) -> JSON:
    """The per-loop artifact pointers of a result (always the contract defaults)."""
    ops = f"{repo_path}/.superloop/ops-manager/{loop_id}"
    return {
        "stateFile": f"{ops}/state.json",
        "healthFile": f"{ops}/health.json",
        "cursorFile": f"{ops}/cursor.json",
        "reconcileTelemetryFile": f"{ops}/telemetry/reconcile.jsonl",
    }


def loop_result(
    loop: Mapping[str, Any],
    run: LoopRun,
    *,
    repo_path: str,
    trace_id: str,
    started: int,
    finished: int,
) -> JSON:
    """The per-loop result object (§2.2), keys in contract order, null keys dropped.

    ``trace_id`` is the loop's trace id (:func:`loop_trace_id`); ``started``/``finished``
    are epoch seconds around the loop's reconcile.
    """
    loop_id = str(loop.get("loopId", ""))
    health_status: Any = "unknown"
    health_codes: Any = []
    transition_state: Any = None
    reason_code = run.reason_code
    if run.status == SUCCESS and run.output is not None:
        health_status = _or(dig(run.output, "health", "status"), "unknown")
        health_codes = _or(dig(run.output, "health", "reasonCodes"), [])
        state = dig(run.output, "transition", "currentState")
        transition_state = state if state not in (None, "") else None
    elif run.status == FAILED and reason_code is None:
        if run.output is not None:
            health_status = _or(run.output.get("status"), "unknown")
            health_codes = _or(run.output.get("reasonCodes"), [])
        reason_code = derive_failure_reason(run.output, run.output_text)
    sprite = loop.get("sprite")
    metadata = loop.get("metadata")
    result: JSON = {
        "timestamp": format_ts(finished),
        "startedAt": format_ts(started),
        "loopId": loop_id,
        "transport": _or(loop.get("transport"), "local"),
        "enabled": loop.get("enabled") is not False,
        "status": run.status,
        "reasonCode": reason_code,
        "reconcileStatus": run.status,
        "healthStatus": health_status,
        "healthReasonCodes": health_codes,
        "transitionState": transition_state,
        "durationSeconds": max(0, finished - started),
        "traceId": trace_id,
        "outputExcerpt": None if run.status == SUCCESS else output_excerpt(run.output_text),
        "sprite": sprite if isinstance(sprite, dict) else {},
        "metadata": metadata if isinstance(metadata, dict) else {},
        "files": loop_files(repo_path, loop_id),
    }
    return {key: value for key, value in result.items() if value is not None}


def _or(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


@attrs.frozen
class FleetExecution:
    """The ``execution`` block of the fleet state (how the run was driven)."""

    max_parallel: int
    deterministic_order: bool
    from_start: bool
    max_events: int

    def to_json(self) -> JSON:
        """Contract key order."""
        return {
            "maxParallel": self.max_parallel,
            "deterministicOrder": self.deterministic_order,
            "fromStart": self.from_start,
            "maxEvents": self.max_events,
        }


def fleet_reason_codes(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fleet ``reasonCodes`` (§4.1), unique-sorted."""
    success, failed, skipped = _counts(results)
    codes: list[str] = []
    if failed > 0 and success > 0:
        codes.append("fleet_partial_failure")
    if failed > 0 and success == 0:
        codes.append("fleet_reconcile_failed")
    health = {r.get("healthStatus") for r in results}
    if "critical" in health:
        codes.append("fleet_health_critical")
    elif "degraded" in health:
        codes.append("fleet_health_degraded")
    if skipped > 0:
        codes.append("fleet_loop_skipped")
    return unique_sorted(codes)


def fleet_status(results: Sequence[Mapping[str, Any]]) -> str:
    """``partial_failure`` / ``failed`` / ``success`` (an all-skipped fleet is ``success``)."""
    success, failed, _ = _counts(results)
    if failed > 0:
        return "partial_failure" if success > 0 else "failed"
    return "success"


def _counts(results: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    success = failed = skipped = 0
    for result in results:
        status = result.get("status")
        if status == SUCCESS:
            success += 1
        elif status == FAILED:
            failed += 1
        elif status == SKIPPED:
            skipped += 1
    return success, failed, skipped


def fleet_state(
    results: Sequence[JSON],
    *,
    fleet_id: str,
    trace_id: str,
    started: int,
    finished: int,
    execution: FleetExecution,
) -> JSON:
    """The fleet ``state.json`` document (== stdout), keys in contract order (§2.2).

    Raises :class:`ValueError` for an empty result list (the registry guarantees >= 1 loop;
    the shell turns it into ``fleet reconcile produced no loop results``).
    """
    if not results:
        raise ValueError("fleet reconcile produced no loop results")
    success, failed, skipped = _counts(results)
    return {
        "schemaVersion": "v1",
        "updatedAt": format_ts(finished),
        "startedAt": format_ts(started),
        "fleetId": fleet_id,
        "traceId": trace_id,
        "status": fleet_status(results),
        "reasonCodes": fleet_reason_codes(results),
        "loopCount": len(results),
        "successCount": success,
        "failedCount": failed,
        "skippedCount": skipped,
        "durationSeconds": max(0, finished - started),
        "execution": execution.to_json(),
        "results": list(results),
    }


def telemetry_row(state: Mapping[str, Any]) -> JSON:
    """The ``fleet_reconcile`` row appended to ``telemetry/reconcile.jsonl`` (§2.2)."""
    return {
        "timestamp": state["updatedAt"],
        "category": "fleet_reconcile",
        "fleetId": state["fleetId"],
        "traceId": state["traceId"],
        "status": state["status"],
        "reasonCodes": state["reasonCodes"],
        "loopCount": state["loopCount"],
        "successCount": state["successCount"],
        "failedCount": state["failedCount"],
        "skippedCount": state["skippedCount"],
        "durationSeconds": state["durationSeconds"],
        "results": state["results"],
    }


__all__ = [
    "EXCERPT_BYTES",
    "FAILED",
    "FAILURE_CODE_REASONS",
    "LOOP_DISABLED",
    "MISSING_SERVICE_BASE_URL",
    "MISSING_SERVICE_TOKEN_ENV",
    "REASON_PRIORITY",
    "SKIPPED",
    "SUCCESS",
    "FleetExecution",
    "LoopRun",
    "classify_failure_text",
    "derive_failure_reason",
    "fleet_reason_codes",
    "fleet_state",
    "fleet_status",
    "loop_files",
    "loop_result",
    "loop_trace_id",
    "ordered_loops",
    "output_excerpt",
    "precheck",
    "service_base_url",
    "telemetry_row",
]
