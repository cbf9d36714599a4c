"""Fleet handoff, the shell (``fleet.md`` §2.5): plan intents, execute them through control.

One call of :func:`fleet_handoff`:

1. checks the policy state exists, creates the handoff state / telemetry directories,
   validates the registry (fail closed: an expired governance ``reviewBy`` stops here), parses
   the policy state and checks the mode (``--autonomous-execute requires policy mode
   guarded_auto``);
2. takes the handoff run lock (``<handoff-state-file>.lock``): two handoff runs on the same
   state serialize, so the prior state one reads is the state the other wrote (a run killed
   after its commit point is finished first, under the fleet lock, before the prior state
   is read);
3. builds the plan with the pure reducer (:mod:`ops_manager.reducers.fleet_handoff`), carrying
   the ``intentAttempts`` ledger (retry guards) from the prior state — or, when there is no
   prior state, rebuilding it from ``handoff.jsonl``;
4. appends the ``fleet_handoff_plan`` row (always, before any execution); in ``plan`` mode
   this row and the new ``handoff-state.json`` are one commit (below);
5. for ``manual`` / ``autonomous`` execution: selects the targets (an unknown ``--loop`` /
   ``--intent-id`` filter is an error, DECISIONS 6.6: nothing executed, no state written),
   then runs each target through :func:`ops_manager.engine.control.run_control` — a library
   call — or, when ``$OPS_MANAGER_CONTROL_SCRIPT`` is set (or another plugin answers
   ``opsmgr_control_executor``), through that executor, with the handoff trace id and the
   intent's deterministic idempotency key, so the loop's own control records
   (``intents.jsonl``, ``telemetry/control.jsonl``, ``control-invocations.jsonl``) carry
   both, and a repeated run replays instead of executing twice;
6. commits the ``fleet_handoff_execute`` row and the new ``handoff-state.json`` as one.

Every write is a commit (``store._commit``, record ``FLEET/.fleet-commit.json``) under the
fleet lock (``FLEET/.lock``), held only for the write itself: a kill leaves the previous run
or the next step of this one. With execution, the plan row is committed on its own before any
control runs (the record that a plan was made, like an outbox entry); a run killed during
execution leaves that row without an execute row, and a repeated run runs its controls again
under the same idempotency keys: a control that committed replays, one killed after its
reservation answers ``ambiguous`` without executing (``engine.control``), none executes twice
(``tests/test_control_crash_sweep.py`` kills it at every fsync and rename).

Exit code 0 whatever the control outcomes (§6.12); errors are :class:`OpsError`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import alt
from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.engine.fleet_registry import load_registry
from ops_manager.errors import CorruptStreamError, OpsError
from ops_manager.reducers import fleet_handoff as rh
from ops_manager.reducers.fleet_handoff import MODE_AUTONOMOUS as MODE_AUTONOMOUS
from ops_manager.reducers.fleet_handoff import MODE_MANUAL as MODE_MANUAL
from ops_manager.store import (
    Append,
    FleetPaths,
    commit,
    exclusive_lock,
    finish_pending,
    iter_records,
    json_replace,
    locked,
    read_json_file,
    rows_append,
)

JSON = dict[str, Any]

MODE_PLAN = "plan"
EXECUTION_MODES = (rh.MODE_MANUAL, rh.MODE_AUTONOMOUS)
DEFAULT_PREFIX = "fleet-handoff"


@attrs.frozen
class HandoffSettings:
    """One handoff run, flags already validated (the CLI applies the contract's checks).

    Paths given as ``None`` take the fleet defaults (absolute); a given path is used and
    echoed verbatim.
    """

    repo: Path
    mode: str = MODE_PLAN
    registry_file: Path | None = None
    policy_state_file: Path | None = None
    handoff_state_file: Path | None = None
    handoff_telemetry_file: Path | None = None
    trace_id: str | None = None
    idempotency_prefix: str = DEFAULT_PREFIX
    loops: tuple[str, ...] = ()
    intent_ids: tuple[str, ...] = ()
    by: str | None = None
    note: str | None = None
    timeout_seconds: int = 30
    interval_seconds: int = 2
    runtime_confirm: bool = True


@attrs.frozen
class HandoffResult:
    """The state written (and printed) and the exit code."""

    state: JSON
    exit_code: int = 0


#: the control call, as the engine makes it (tests may inject a stand-in)
ControlFn = Callable[..., Any]


def _object(path: Path, error: str) -> JSON | None:
    value = read_json_file(path, error)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OpsError(f"{error}: {path}")
    return value


def _attempts_from_stream(path: Path) -> JSON:
    try:
        rows = [row for _, row in iter_records(path)]
    except CorruptStreamError as exc:
        raise OpsError(f"invalid handoff telemetry JSONL: {path} ({exc.message})") from None
    except IsADirectoryError:
        raise OpsError(f"invalid handoff telemetry JSONL: {path}") from None
    return rh.attempts_from_telemetry(rows)


def fleet_handoff(
    settings: HandoffSettings,
    *,
    clock: Callable[[], int] = utc_now_epoch,
    env: Mapping[str, str] | None = None,
    control: ControlFn | None = None,
) -> HandoffResult:
    """Plan (and optionally execute) the fleet's control intents; see the module docstring.

    ``clock`` stamps everything and is the registry's "now" (governance deadlines);
    ``env`` replaces ``os.environ`` (``USER``, ``OPS_MANAGER_TRACE_ID``, service tokens);
    ``control`` replaces the control executor (:func:`ops_manager.engine.control.run_control`
    or the one a plugin selects from ``env``, e.g. ``$OPS_MANAGER_CONTROL_SCRIPT``).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if settings.mode not in (MODE_PLAN, *EXECUTION_MODES):
        raise OpsError(f"unsupported handoff mode: {settings.mode}")
    if not settings.idempotency_prefix:
        raise OpsError("--idempotency-prefix must be non-empty")
    paths = FleetPaths.for_repo(settings.repo)
    policy_file = settings.policy_state_file or paths.policy_state_file
    state_file = settings.handoff_state_file or paths.handoff_state_file
    telemetry_file = settings.handoff_telemetry_file or paths.handoff_telemetry_file
    # a policy run killed after its commit point is finished first: the policy state read
    # below is the committed one
    finish_pending(paths.lock_file, paths.commit_record_file)
    if not policy_file.is_file():
        raise OpsError(f"policy state file not found: {policy_file}")
    state_file.parent.mkdir(parents=True, exist_ok=True)
    telemetry_file.parent.mkdir(parents=True, exist_ok=True)
    registry = load_registry(settings.repo, settings.registry_file, now=clock())
    policy = _object(policy_file, "invalid policy state JSON")
    if policy is None:  # removed between the two checks
        raise OpsError(f"policy state file not found: {policy_file}")
    by = settings.by or environ.get("USER") or "unknown"

    with exclusive_lock(Path(f"{state_file}.lock")):
        # this command's previous run, if killed after its last commit point, first
        finish_pending(paths.lock_file, paths.commit_record_file)
        prior = _object(state_file, "invalid existing handoff state JSON")
        mode = alt(policy.get("mode"), "advisory")
        if mode not in ("advisory", "guarded_auto"):
            raise OpsError(f"unsupported policy mode: {mode}")
        if settings.mode == rh.MODE_AUTONOMOUS and mode != "guarded_auto":
            raise OpsError("--autonomous-execute requires policy mode guarded_auto")
        trace_id = (
            settings.trace_id
            or _str(policy.get("traceId"))
            or environ.get("OPS_MANAGER_TRACE_ID")
            or str(uuid.uuid4())
        )
        if prior is not None:
            attempts = rh.attempts_from_prior_state(prior)
        else:
            attempts = _attempts_from_stream(telemetry_file)
        plan = rh.build_plan(
            rh.PlanInputs(
                policy_state=policy,
                registry=registry,
                trace_id=trace_id,
                idempotency_prefix=settings.idempotency_prefix,
                generated_at=format_ts(clock()),
                registry_file=str(registry.get("sourceFile") or paths.registry_file),
                policy_state_file=str(policy_file),
                attempts=attempts,
            )
        )
        if settings.mode == MODE_PLAN:
            state = plan
            # the plan row and the state that is the plan, as one
            _commit(paths, telemetry_file, rh.plan_telemetry_row(plan), state_file, state)
        else:
            # the plan row on its own, before any control runs
            _commit(paths, telemetry_file, rh.plan_telemetry_row(plan), None, None)
            state = _execute(
                plan,
                settings,
                trace_id=trace_id,
                by=by,
                clock=clock,
                env=environ,
                control=control,
            )
            row = rh.execute_telemetry_row(state) if "execution" in state else None
            _commit(paths, telemetry_file, row, state_file, state)
    return HandoffResult(state=state)


def _commit(
    paths: FleetPaths,
    telemetry_file: Path,
    row: JSON | None,
    state_file: Path | None,
    state: JSON | None,
) -> None:
    """Append ``row`` to ``handoff.jsonl`` and replace ``state_file`` with ``state``, as one
    commit under the fleet lock (either may be absent)."""
    record = paths.commit_record_file
    with locked(paths.lock_file, record):
        appends: list[Append] = [] if row is None else [rows_append(telemetry_file, [row])]
        replaces = [] if state_file is None else [json_replace(state_file, state)]
        commit(record, appends, replaces)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _execute(
    plan: JSON,
    settings: HandoffSettings,
    *,
    trace_id: str,
    by: str,
    clock: Callable[[], int],
    env: Mapping[str, str],
    control: ControlFn | None,
) -> JSON:
    mode = settings.mode
    selection = rh.select_targets(plan["intents"], mode, settings.loops, settings.intent_ids)
    if selection.missing_loops:
        raise OpsError(
            f"loop filter not found in {mode} execution intents: "
            + ",".join(selection.missing_loops)
        )
    if selection.missing_intents:
        raise OpsError(
            f"intent filter not found in {mode} execution intents: "
            + ",".join(selection.missing_intents)
        )
    requested_at = format_ts(clock())
    results: list[JSON] = []
    found = plan.get("intentAttempts")
    ledger: JSON = found if isinstance(found, dict) else {}
    for target in selection.targets:
        call = rh.plan_control_call(
            target,
            mode=mode,
            trace_id=trace_id,
            prefix=settings.idempotency_prefix,
            note=settings.note,
            attempts=ledger,
        )
        exit_code, entry = 1, None
        if call.precheck_failure is None:
            exit_code, entry = _call_control(call, settings, by=by, env=env, control=control)
        results.append(
            rh.execution_result(
                call,
                mode=mode,
                requested_by=by,
                executed_at=format_ts(clock()),
                exit_code=exit_code,
                control=entry,
            )
        )
    return rh.apply_execution(
        plan,
        mode=mode,
        requested_by=by,
        requested_at=requested_at,
        completed_at=format_ts(clock()),
        note=settings.note,
        requested_count=len(selection.targets),
        results=results,
    )


def _selected_executor(env: Mapping[str, str]) -> ControlFn | None:
    """The control executor a plugin selects for this environment, if any."""
    from ops_manager.plugins import get_plugin_manager

    chosen: ControlFn | None = get_plugin_manager().hook.opsmgr_control_executor(env=env)
    return chosen


def _call_control(
    call: rh.ControlCall,
    settings: HandoffSettings,
    *,
    by: str,
    env: Mapping[str, str],
    control: ControlFn | None,
) -> tuple[int, JSON | None]:
    """Run one control intent; ``(exit code, the control's JSON document or None)``.

    The executor is ``control`` when injected, else the one a plugin selects
    (``opsmgr_control_executor``: ``$OPS_MANAGER_CONTROL_SCRIPT`` selects the built-in
    external command), else :func:`~ops_manager.engine.control.run_control`. A control that
    cannot even start (invalid loop id, unavailable transport, a key reused for another
    intent, a control script that is missing) gets a ``control`` document saying why
    (``status: failed_command``, ``error``); its exit code is kept (1 for a library error).
    """
    from ops_manager.engine.control import ControlSettings, run_control
    from ops_manager.transports import TransportConfig

    selected = None if control is not None else _selected_executor(env)
    token: str | None = None
    if call.transport == "sprite_service":
        # the registry's token goes to the control as --service-token; without one the
        # control falls back to $OPS_MANAGER_SERVICE_TOKEN itself (a control command reads
        # it from the environment it inherits, so only the library call needs it here)
        if call.token_env and env.get(call.token_env):
            token = env[call.token_env]
        elif selected is None:  # the library call (or its injected stand-in)
            token = env.get("OPS_MANAGER_SERVICE_TOKEN") or None
    control_settings = ControlSettings(
        repo=settings.repo,
        loop_id=call.loop_id,
        intent=call.control_intent,
        transport=call.transport,
        transport_config=TransportConfig(
            service_base_url=call.service_base_url,
            service_token=token,
            retry_attempts=max(call.retry_attempts, 1),
            retry_backoff_seconds=max(call.retry_backoff_seconds, 0),
            timeout_seconds=call.timeout_seconds if call.transport == "sprite_service" else None,
        ),
        idempotency_key=call.idempotency_key,
        trace_id=call.trace_id,
        by=by,
        note=call.note,
        timeout_seconds=settings.timeout_seconds,
        interval_seconds=settings.interval_seconds,
        confirm=settings.runtime_confirm,
    )
    try:
        result = (control or selected or run_control)(control_settings)
    except OpsError as exc:
        return 1, _failure_document(exc.message)
    message = getattr(result, "message", None)
    entry = dict(result.entry) if result.entry is not None else None
    if entry is None and isinstance(message, str) and message:
        # why the control failed goes into the handoff document, not onto stderr: the
        # document is the command's whole output (docs/output-and-errors.md); a script's
        # own JSON document is kept as it printed it (§2.5)
        entry = _failure_document(message)
    return int(result.exit_code), entry


def _failure_document(message: str) -> JSON:
    """The ``control`` object of a result whose control could not start or said nothing
    parseable: the status the exit code implies, and why."""
    return {"status": "failed_command", "confirmed": False, "error": message}
