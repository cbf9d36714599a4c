"""Builders for fleet tests: registries, multi-loop runtime repos, fleet state/telemetry.

Shared by the fleet test modules (registry, reconcile, status, policy, handoff, promotion)::

    from tests.fleet_fixtures import (
        registry_doc, write_registry, loop_entry, sprite_loop, guarded_auto_policy, governance,
        make_fleet_repo, loop_result, fleet_state, write_fleet_state, append_reconcile_telemetry,
    )

Governance deadlines are computed relative to ``now`` (DECISIONS 6.17): nothing here expires
on a calendar date. Shapes follow ``fleet.md`` §1.1 (registry) and §2.2 (fleet state, result
and telemetry rows, key order included).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.store import FleetPaths, LoopPaths
from tests.runtime_fixtures import (
    event,
    loop_start_data,
    make_runtime_repo,
    runtime_heartbeat,
    summary_entry,
)

DAY = 86400
#: the token env var name fleet fixtures use for sprite_service loops
TOKEN_ENV = "OPS_MANAGER_TEST_SERVICE_TOKEN"


# --- registry -----------------------------------------------------------------------------


def governance(
    now: int | None = None,
    *,
    actor: str = "ops-user",
    approval_ref: str = "CAB-123",
    rationale: str = "guarded rollout expansion",
    changed_days_ago: int = 1,
    review_in_days: int = 90,
) -> dict[str, Any]:
    """A complete governance block whose ``reviewBy`` lies ``review_in_days`` after ``now``.

    ``changedAt`` is ``changed_days_ago`` before ``now``; a negative ``review_in_days`` makes
    an expired review (for the ``must be in the future`` check).
    """
    at = utc_now_epoch() if now is None else now
    return {
        "actor": actor,
        "approvalRef": approval_ref,
        "rationale": rationale,
        "changedAt": format_ts(at - changed_days_ago * DAY),
        "reviewBy": format_ts(at + review_in_days * DAY),
    }


def loop_entry(
    loop_id: str,
    *,
    enabled: bool | None = None,
    transport: str | None = None,
    sprite: Mapping[str, Any] | None = None,
    service: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One registry loop entry with only the keys given (``None`` = key absent)."""
    entry: dict[str, Any] = {"loopId": loop_id}
    for key, value in (
        ("enabled", enabled),
        ("transport", transport),
        ("sprite", sprite),
        ("service", service),
        ("metadata", metadata),
    ):
        if value is not None:
            entry[key] = dict(value) if isinstance(value, Mapping) else value
    entry.update(extra)
    return entry


def sprite_loop(
    loop_id: str,
    base_url: str = "http://sprite-service.local",
    *,
    token_env: str | None = TOKEN_ENV,
    retry_attempts: int | None = None,
    retry_backoff_seconds: float | None = None,
    timeout_seconds: float | None = None,
    sprite_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``sprite_service`` loop entry with ``service.baseUrl`` (and ``tokenEnv``)."""
    service: dict[str, Any] = {"baseUrl": base_url}
    if token_env is not None:
        service["tokenEnv"] = token_env
    if retry_attempts is not None:
        service["retryAttempts"] = retry_attempts
    if retry_backoff_seconds is not None:
        service["retryBackoffSeconds"] = retry_backoff_seconds
    if timeout_seconds is not None:
        service["timeoutSeconds"] = timeout_seconds
    sprite = {"id": sprite_id} if sprite_id is not None else None
    return loop_entry(loop_id, transport="sprite_service", service=service, sprite=sprite, **extra)


def guarded_auto_policy(
    now: int | None = None,
    *,
    gov: Mapping[str, Any] | None = None,
    **autonomous: Any,
) -> dict[str, Any]:
    """A ``guarded_auto`` policy with valid governance (relative to ``now``).

    Keyword arguments become keys of ``policy.autonomous`` (``allow=...``, ``safety=...``,
    ``rollout=...``, ``thresholds=...``); ``gov`` replaces the governance block.
    """
    block = dict(gov) if gov is not None else governance(now)
    return {"mode": "guarded_auto", "autonomous": {**autonomous, "governance": block}}


def registry_doc(
    loops: Iterable[str | Mapping[str, Any]],
    *,
    fleet_id: str | None = None,
    policy: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A registry document: plain strings become ``{"loopId": s}`` entries."""
    doc: dict[str, Any] = {"schemaVersion": "v1"}
    if fleet_id is not None:
        doc["fleetId"] = fleet_id
    doc["loops"] = [{"loopId": e} if isinstance(e, str) else dict(e) for e in loops]
    if policy is not None:
        doc["policy"] = dict(policy)
    doc.update(extra)
    return doc


def write_registry(
    repo: Path,
    doc: Mapping[str, Any] | Iterable[str | Mapping[str, Any]],
    *,
    path: Path | None = None,
    **kwargs: Any,
) -> Path:
    """Write a registry (a document, or loops for :func:`registry_doc`) and return its path.

    Default place: ``<repo>/.superloop/ops-manager/fleet/registry.v1.json`` (pretty JSON,
    as an operator would write it).
    """
    body = dict(doc) if isinstance(doc, Mapping) else registry_doc(doc, **kwargs)
    target = FleetPaths.for_repo(repo).registry_file if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return target


# --- runtime repos with many loops ----------------------------------------------------------


def loop_events(loop_id: str, timestamp: str, run_id: str = "run-123") -> list[dict[str, Any]]:
    """``loop_start`` + ``iteration_start`` stamped at ``timestamp`` (the upstream fixture)."""
    return [
        event(
            "loop_start",
            timestamp,
            loop_id=loop_id,
            run_id=run_id,
            iteration=0,
            data=loop_start_data(loop_id),
        ),
        event(
            "iteration_start",
            timestamp,
            loop_id=loop_id,
            run_id=run_id,
            data={"started_at": timestamp},
        ),
    ]


def make_fleet_repo(
    root: Path,
    loop_ids: Sequence[str],
    *,
    without_artifacts: Iterable[str] = (),
    heartbeat_ages: Mapping[str, int] | None = None,
    now: int | None = None,
    registry: bool = True,
) -> Path:
    """One repo holding the runtime artifacts of several loops; returns ``root``.

    Every loop gets ``events.jsonl`` (stamped ``now``) and ``run-summary.json`` unless listed in
    ``without_artifacts`` (such loops fail a loop-level reconcile with
    ``transport_unreachable``). ``heartbeat_ages`` maps loop id -> age in seconds of a
    runtime heartbeat (180 s -> degraded, 900 s -> critical with the balanced profile).
    ``.superloop/state.json`` names the last loop with artifacts as the current one. With
    ``registry`` a local-transport registry listing ``loop_ids`` is written too.
    """
    at = utc_now_epoch() if now is None else now
    stamp = format_ts(at)
    skip = set(without_artifacts)
    ages = dict(heartbeat_ages or {})
    root.mkdir(parents=True, exist_ok=True)
    for loop_id in loop_ids:
        if loop_id in skip:
            continue
        heartbeat = runtime_heartbeat(format_ts(at - ages[loop_id])) if loop_id in ages else None
        make_runtime_repo(
            root,
            loop_id,
            events=loop_events(loop_id, stamp),
            summary_entries=[summary_entry(started_at=stamp)],
            heartbeat=heartbeat,
        )
    if registry:
        write_registry(root, list(loop_ids))
    return root


# --- fleet state as fleet-reconcile writes it (fleet.md §2.2) --------------------------------


def loop_files(repo: Path, loop_id: str) -> dict[str, str]:
    """The ``files`` object of a per-loop result (absolute per-loop artifact paths)."""
    paths = LoopPaths(repo=repo, loop_id=loop_id)
    return {
        "stateFile": str(paths.state_file),
        "healthFile": str(paths.health_file),
        "cursorFile": str(paths.cursor_file),
        "reconcileTelemetryFile": str(paths.reconcile_telemetry_file),
    }


def loop_result(
    repo: Path,
    loop_id: str,
    *,
    status: str = "success",
    reason_code: str | None = None,
    health_status: str = "healthy",
    health_reason_codes: Sequence[str] = (),
    transition_state: str | None = None,
    transport: str = "local",
    enabled: bool = True,
    fleet_trace_id: str = "trace-fleet-1",
    timestamp: str = "2026-02-22T18:00:00Z",
    started_at: str | None = None,
    duration_seconds: int = 0,
    output_excerpt: str | None = None,
    sprite: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    files: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One per-loop result object in the contract's key order (null keys dropped).

    ``reasonCode`` defaults to ``loop_disabled`` for ``skipped`` and ``reconcile_failed`` for
    ``failed``; ``outputExcerpt`` defaults to ``" "`` for non-success results (§6.10).
    """
    if reason_code is None and status == "skipped":
        reason_code = "loop_disabled"
    if reason_code is None and status == "failed":
        reason_code = "reconcile_failed"
    if output_excerpt is None and status != "success":
        output_excerpt = " "
    row = {
        "timestamp": timestamp,
        "startedAt": started_at or timestamp,
        "loopId": loop_id,
        "transport": transport,
        "enabled": enabled,
        "status": status,
        "reasonCode": reason_code,
        "reconcileStatus": status,
        "healthStatus": health_status,
        "healthReasonCodes": list(health_reason_codes),
        "transitionState": transition_state,
        "durationSeconds": duration_seconds,
        "traceId": f"{fleet_trace_id}-{loop_id}",
        "outputExcerpt": output_excerpt,
        "sprite": dict(sprite or {}),
        "metadata": dict(metadata or {}),
        "files": dict(files) if files is not None else loop_files(repo, loop_id),
    }
    return {key: value for key, value in row.items() if value is not None}


def fleet_reason_codes(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fleet-level reason codes of §2.2 / §4.1 for ``results`` (unique-sorted)."""
    failed = sum(1 for r in results if r.get("status") == "failed")
    succeeded = sum(1 for r in results if r.get("status") == "success")
    skipped = sum(1 for r in results if r.get("status") == "skipped")
    health = {r.get("healthStatus") for r in results}
    codes = set()
    if failed and succeeded:
        codes.add("fleet_partial_failure")
    if failed and not succeeded:
        codes.add("fleet_reconcile_failed")
    if "critical" in health:
        codes.add("fleet_health_critical")
    elif "degraded" in health:
        codes.add("fleet_health_degraded")
    if skipped:
        codes.add("fleet_loop_skipped")
    return sorted(codes)


def fleet_state(
    results: Sequence[Mapping[str, Any]],
    *,
    fleet_id: str = "default",
    trace_id: str = "trace-fleet-1",
    started_at: str = "2026-02-22T17:59:40Z",
    updated_at: str = "2026-02-22T18:00:00Z",
    duration_seconds: int = 20,
    max_parallel: int = 2,
    deterministic_order: bool = False,
    from_start: bool = False,
    max_events: int = 0,
) -> dict[str, Any]:
    """The fleet ``state.json`` document fleet-reconcile writes for ``results`` (§2.2)."""
    failed = sum(1 for r in results if r.get("status") == "failed")
    succeeded = sum(1 for r in results if r.get("status") == "success")
    skipped = sum(1 for r in results if r.get("status") == "skipped")
    if failed and succeeded:
        status = "partial_failure"
    elif failed:
        status = "failed"
    else:
        status = "success"
    return {
        "schemaVersion": "v1",
        "updatedAt": updated_at,
        "startedAt": started_at,
        "fleetId": fleet_id,
        "traceId": trace_id,
        "status": status,
        "reasonCodes": fleet_reason_codes(results),
        "loopCount": len(results),
        "successCount": succeeded,
        "failedCount": failed,
        "skippedCount": skipped,
        "durationSeconds": duration_seconds,
        "execution": {
            "maxParallel": max_parallel,
            "deterministicOrder": deterministic_order,
            "fromStart": from_start,
            "maxEvents": max_events,
        },
        "results": [dict(r) for r in results],
    }


def write_fleet_state(
    repo: Path, state: Mapping[str, Any] | Any, *, path: Path | None = None
) -> Path:
    """Write ``state`` compactly (one line + ``\\n``) at the fleet state path; return it.

    ``state`` may be any JSON value (tests of malformed states pass lists, strings ...).
    """
    target = FleetPaths.for_repo(repo).state_file if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(state, separators=(",", ":")) + "\n", encoding="utf-8")
    return target


def reconcile_telemetry_row(state: Mapping[str, Any]) -> dict[str, Any]:
    """The ``telemetry/reconcile.jsonl`` row fleet-reconcile appends for ``state`` (§2.2)."""
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


def append_reconcile_telemetry(
    repo: Path, state: Mapping[str, Any], *, path: Path | None = None
) -> Path:
    """Append the telemetry row of ``state`` to the fleet reconcile stream; return its path."""
    target = FleetPaths.for_repo(repo).reconcile_telemetry_file if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(reconcile_telemetry_row(state), separators=(",", ":")) + "\n")
    return target


def seed_fleet(
    repo: Path,
    results: Sequence[Mapping[str, Any]],
    *,
    registry: Mapping[str, Any] | None = None,
    telemetry: bool = True,
    **state_kwargs: Any,
) -> dict[str, Any]:
    """Registry (default: the results' loops, local) + fleet state (+ one telemetry row).

    Returns the fleet state written. ``repo`` is created if needed.
    """
    repo.mkdir(parents=True, exist_ok=True)
    doc = registry or registry_doc([str(r["loopId"]) for r in results])
    write_registry(repo, doc)
    state = fleet_state(results, **state_kwargs)
    write_fleet_state(repo, state)
    if telemetry:
        append_reconcile_telemetry(repo, state)
    return state
