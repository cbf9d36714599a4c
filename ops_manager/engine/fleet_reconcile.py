"""Fleet reconcile, the shell (``fleet.md`` §2.2, §3.1): fan the loop reconcile out in process.

One call of :func:`fleet_reconcile`:

1. resolves the trace id and creates the directories of the fleet state and telemetry
   files (before the registry is read, like upstream, §6.23);
2. loads the normalised registry (its errors propagate unchanged: ``error: ...``, exit 1);
3. runs the loop-level reconcile (:func:`ops_manager.engine.reconcile.reconcile`, a library
   call, no subprocess) of every loop on a thread pool of ``max_parallel`` workers. Each
   worker holds only its own loop's lock (taken inside the loop reconcile); nothing is
   locked across loops while the fan-out runs (DESIGN "Beyond one machine");
4. collects the per-loop results in launch order (registry order, or sorted by ``loopId``
   with ``deterministic_order``), never in completion order;
5. under the fleet lock, commits the run as one (:func:`commit_fleet_state`): the row
   appended to ``telemetry/reconcile.jsonl`` and the new ``state.json`` go into one commit
   record, ``FLEET/.fleet-commit.json``, made durable before either file is touched (two
   concurrent fleet reconciles never interleave these writes, DECISIONS 6.27; a kill leaves
   the previous run or this one, never a state without its row or a row without its state).

Isolation: a sprite that is slow or dead costs its own worker the service client's timeouts
and retries (``service.retryAttempts``, ``service.retryBackoffSeconds``, and the read timeout
``service.timeoutSeconds`` when set); the other workers keep taking loops. A loop whose
reconcile raises (an invalid loop id, a corrupt stream, a bug) becomes a ``failed`` result
whose reason is derived from the error text (§3.2), never a crash of the fleet run.

Per-loop settings that the registry does not carry follow the loop reconcile's own defaults
and environment, read once per fleet run (:func:`loop_defaults_from_env`): threshold profile
(``OPS_MANAGER_THRESHOLD_PROFILE``, ``OPS_MANAGER_THRESHOLD_PROFILES_FILE``), drift gating
(``OPS_MANAGER_DRIFT_*``), alert dispatch (``OPS_MANAGER_ALERTS_ENABLED``, default true;
the sink config from ``OPS_MANAGER_ALERT_SINKS_FILE`` or the default, alerts.md §4.1) and the
fallback service token ``OPS_MANAGER_SERVICE_TOKEN`` for sprite loops without
``service.tokenEnv``. Tokens come from the environment only, never from the registry.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine.reconcile import (
    AlertOptions,
    ReconcileResult,
    ReconcileSettings,
    reconcile,
)
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_reconcile import (
    FAILED,
    SUCCESS,
    FleetExecution,
    LoopRun,
    fleet_state,
    loop_result,
    loop_trace_id,
    ordered_loops,
    precheck,
    service_base_url,
    telemetry_row,
)
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.store import (
    Append,
    FleetPaths,
    commit,
    json_replace,
    locked,
    rows_append,
)
from ops_manager.transports import TransportConfig

JSON = dict[str, Any]

#: the loop reconcile, as the fan-out calls it (tests inject a stand-in)
ReconcileFn = Callable[..., ReconcileResult]
#: ``progress(done, total, failed)``, called on the calling thread after each loop
ProgressFn = Callable[[int, int, int], None]

DEFAULT_MAX_PARALLEL = 2
_CONFIDENCES = ("low", "medium", "high")


@attrs.frozen
class FleetFiles:
    """The fleet artifacts one run touches (defaults under ``.superloop/ops-manager/fleet``)."""

    registry: Path | None
    state: Path
    telemetry: Path
    lock: Path
    #: ``FLEET/.fleet-commit.json``, shared by every writer under the fleet lock
    commit_record: Path

    @classmethod
    def resolve(
        cls,
        repo: Path,
        *,
        registry_file: Path | None = None,
        state_file: Path | None = None,
        telemetry_file: Path | None = None,
    ) -> FleetFiles:
        """Flag paths are used verbatim; defaults are absolute under ``repo``."""
        paths = FleetPaths.for_repo(repo)
        return cls(
            registry=registry_file,
            state=state_file if state_file is not None else paths.state_file,
            telemetry=(
                telemetry_file if telemetry_file is not None else paths.reconcile_telemetry_file
            ),
            lock=paths.lock_file,
            commit_record=paths.commit_record_file,
        )


def commit_fleet_state(
    lock: Path, record: Path, state_file: Path, telemetry_file: Path | None, state: JSON
) -> None:
    """Write a fleet run's ``state.json`` and its ``reconcile.jsonl`` row as one commit.

    Under the fleet lock, with a record a killed holder left applied first. ``telemetry_file``
    ``None`` writes the state alone (supervise appends a row only when the outcome changed).
    """
    with locked(lock, record):
        appends: list[Append] = []
        if telemetry_file is not None:
            appends.append(rows_append(telemetry_file, [telemetry_row(state)]))
        commit(record, appends, [json_replace(state_file, state)])


@attrs.frozen
class LoopDefaults:
    """Loop reconcile settings that do not come from the registry (same for every loop)."""

    thresholds: Thresholds = attrs.field(factory=lambda: Thresholds(profile="balanced"))
    known_profiles: frozenset[str] | None = None
    drift_min_confidence: str = "medium"
    drift_required_streak: int = 3
    drift_summary_window: int = 200
    #: alert dispatch after each loop pass; ``None`` = off
    alerts: AlertOptions | None = attrs.field(factory=AlertOptions)
    #: token for sprite loops without ``service.tokenEnv`` ($OPS_MANAGER_SERVICE_TOKEN)
    default_service_token: str | None = attrs.field(default=None, repr=False)


def _choice(value: str | None, choices: tuple[str, ...], message: str, default: str) -> str:
    # The engine resolves settings itself (layering: it must not import cli/).
    if value is None:
        return default
    if value not in choices:
        raise OpsError(message)
    return value


def _positive_int(value: str | None, message: str, default: int) -> int:
    # Same rule as the loop command's flags: ``^[0-9]+$`` and >= 1.
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise OpsError(message)
    return int(value)


def loop_defaults_from_env(env: Mapping[str, str]) -> LoopDefaults:
    """What ``ops-manager reconcile --repo R --loop L`` would use with no other flag.

    Raises :class:`OpsError` with the loop command's message for an invalid value (an
    unknown profile, a bad ``OPS_MANAGER_ALERTS_ENABLED``, ...): it would fail every loop
    alike, so the fleet run stops before the fan-out instead.
    """
    from ops_manager.engine.profiles import default_profiles_path, load_catalog
    from ops_manager.reducers.thresholds import (
        apply_precedence,
        resolve_profile,
        validate_thresholds,
    )

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value else None

    catalog = load_catalog(default_profiles_path(env))
    resolved = resolve_profile(catalog, get("OPS_MANAGER_THRESHOLD_PROFILE"))
    thresholds = apply_precedence(
        resolved,
        {
            "degradedIngestLagSeconds": None,
            "criticalIngestLagSeconds": None,
            "degradedTransportFailureStreak": None,
            "criticalTransportFailureStreak": None,
        },
        None,
        None,
    )
    validate_thresholds(thresholds)
    min_confidence = _choice(
        get("OPS_MANAGER_DRIFT_MIN_CONFIDENCE"),
        _CONFIDENCES,
        "OPS_MANAGER_DRIFT_MIN_CONFIDENCE must be one of: low, medium, high",
        "medium",
    )
    streak = _positive_int(
        get("OPS_MANAGER_DRIFT_REQUIRED_STREAK"),
        "OPS_MANAGER_DRIFT_REQUIRED_STREAK must be an integer >= 1",
        3,
    )
    window = _positive_int(
        get("OPS_MANAGER_DRIFT_SUMMARY_WINDOW"),
        "OPS_MANAGER_DRIFT_SUMMARY_WINDOW must be an integer >= 1",
        200,
    )
    alerts_enabled = _choice(
        get("OPS_MANAGER_ALERTS_ENABLED"),
        ("true", "false"),
        "OPS_MANAGER_ALERTS_ENABLED must be true or false",
        "true",
    )
    return LoopDefaults(
        thresholds=thresholds,
        known_profiles=frozenset(catalog["profiles"]),
        drift_min_confidence=min_confidence,
        drift_required_streak=streak,
        drift_summary_window=window,
        alerts=AlertOptions() if alerts_enabled == "true" else None,
        default_service_token=get("OPS_MANAGER_SERVICE_TOKEN"),
    )


@attrs.frozen
class FleetReconcileSettings:
    """One fleet run, flags already validated (the CLI checks them in contract order)."""

    repo: Path
    registry_file: Path | None = None
    fleet_state_file: Path | None = None
    fleet_telemetry_file: Path | None = None
    max_parallel: int = DEFAULT_MAX_PARALLEL
    deterministic_order: bool = False
    max_events: int = 0
    from_start: bool = False
    #: ``None``: ``$OPS_MANAGER_TRACE_ID``, else a generated uuid4
    trace_id: str | None = None


@attrs.frozen
class FleetReconcileResult:
    """The fleet state (also written to ``state.json``) and where it went."""

    state: JSON
    files: FleetFiles

    @property
    def exit_code(self) -> int:
        """Always 0 once aggregation completed, failed loops included (§2.2, §6.12)."""
        return 0


def resolve_trace_id(flag: str | None, env: Mapping[str, str]) -> str:
    """``--trace-id`` > ``$OPS_MANAGER_TRACE_ID`` > a generated uuid4 (§2.2)."""
    return flag or env.get("OPS_MANAGER_TRACE_ID") or str(uuid.uuid4())


def fleet_reconcile(
    settings: FleetReconcileSettings,
    *,
    clock: Callable[[], int] = utc_now_epoch,
    env: Mapping[str, str] | None = None,
    loop_defaults: LoopDefaults | None = None,
    progress: ProgressFn | None = None,
    reconcile_fn: ReconcileFn = reconcile,
) -> FleetReconcileResult:
    """Reconcile every registry loop concurrently and record the fleet state.

    ``env`` (default ``os.environ``) supplies tokens and the loop defaults;
    ``loop_defaults`` overrides the latter (library callers, tests). ``progress`` is called
    on this thread after each loop finishes. Raises :class:`OpsError` for configuration
    errors (registry, environment) before any loop runs; loop failures are results.
    """
    from ops_manager.engine.fleet_registry import load_registry

    environ: Mapping[str, str] = os.environ if env is None else env
    if settings.max_parallel < 1:
        raise OpsError("--max-parallel must be an integer >= 1")
    repo = settings.repo
    if not repo.is_dir():
        raise OpsError(f"repo directory not found: {repo}")
    trace_id = resolve_trace_id(settings.trace_id, environ)
    files = FleetFiles.resolve(
        repo,
        registry_file=settings.registry_file,
        state_file=settings.fleet_state_file,
        telemetry_file=settings.fleet_telemetry_file,
    )
    files.state.parent.mkdir(parents=True, exist_ok=True)
    files.telemetry.parent.mkdir(parents=True, exist_ok=True)

    registry = load_registry(repo, settings.registry_file)
    fleet_id = registry.get("fleetId")
    loops = ordered_loops(
        [loop for loop in registry.get("loops", []) if isinstance(loop, dict)],
        settings.deterministic_order,
    )
    if not loops:
        raise OpsError("fleet reconcile produced no loop results")
    defaults = loop_defaults if loop_defaults is not None else loop_defaults_from_env(environ)
    warm_up(loops)

    context = LoopContext(
        repo=repo,
        fleet_trace_id=trace_id,
        settings=settings,
        defaults=defaults,
        env=environ,
        clock=clock,
        reconcile_fn=reconcile_fn,
    )
    started = clock()
    results = _fan_out(loops, context, settings.max_parallel, progress)
    finished = clock()
    state = fleet_state(
        results,
        fleet_id=fleet_id if isinstance(fleet_id, str) and fleet_id else "default",
        trace_id=trace_id,
        started=started,
        finished=finished,
        execution=FleetExecution(
            max_parallel=settings.max_parallel,
            deterministic_order=settings.deterministic_order,
            from_start=settings.from_start,
            max_events=settings.max_events,
        ),
    )
    commit_fleet_state(files.lock, files.commit_record, files.state, files.telemetry, state)
    return FleetReconcileResult(state=state, files=files)


def warm_up(loops: list[JSON]) -> None:
    """Import lazily-loaded modules once, on this thread, before the workers start."""
    from ops_manager.plugins import get_plugin_manager

    get_plugin_manager(load_entry_points=False)
    import ops_manager.engine.alert_dispatch  # noqa: F401 - imported by every pass with alerts

    if any(loop.get("transport") == "sprite_service" for loop in loops):
        import requests  # noqa: F401 - the service client imports it on first use


@attrs.frozen
class LoopContext:
    """What :func:`run_loop` needs besides the loop (shared by every loop of one run)."""

    repo: Path
    fleet_trace_id: str
    settings: FleetReconcileSettings
    defaults: LoopDefaults
    env: Mapping[str, str]
    clock: Callable[[], int]
    reconcile_fn: ReconcileFn


def _fan_out(
    loops: list[JSON], context: LoopContext, max_parallel: int, progress: ProgressFn | None
) -> list[JSON]:
    """Run :func:`run_loop` for every loop on ``max_parallel`` threads; launch order back.

    Equivalent to §3.1's FIFO window for what can be observed (result order, the
    concurrency bound), without its head-of-line blocking: a free worker always takes the
    next loop, whichever loop finished before it.
    """
    total = len(loops)
    results: list[JSON | None] = [None] * total
    done = failed = 0
    if max_parallel == 1 or total == 1:
        for index, loop in enumerate(loops):
            result = results[index] = run_loop(loop, context)
            done += 1
            if result.get("status") == FAILED:
                failed += 1
            if progress is not None:
                progress(done, total, failed)
        return [r for r in results if r is not None]
    executor = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="fleet-loop")
    try:
        index_of: dict[Future[JSON], int] = {
            executor.submit(run_loop, loop, context): index for index, loop in enumerate(loops)
        }
        for future in as_completed(index_of):
            result = results[index_of[future]] = future.result()  # run_loop never raises
            done += 1
            if result.get("status") == FAILED:
                failed += 1
            if progress is not None:
                progress(done, total, failed)
    finally:
        # Ctrl-C (or a progress callback raising): drop queued loops, let running ones end
        executor.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]


def run_loop(loop: JSON, ctx: LoopContext) -> JSON:
    """Reconcile one loop and reduce the outcome to its result object. Never raises."""
    loop_id = str(loop.get("loopId", ""))
    trace_id = loop_trace_id(ctx.fleet_trace_id, loop_id)
    started = ctx.clock()
    stop = precheck(loop, ctx.env)
    if stop is not None:
        run = LoopRun.prechecked(*stop)
    else:
        try:
            run = _reconcile_loop(loop, loop_id, trace_id, ctx)
        except OpsError as exc:
            run = LoopRun(status=FAILED, output_text=f"error: {exc.message}")
        except Exception as exc:
            run = LoopRun(
                status=FAILED,
                output_text=f"error: internal error: {type(exc).__name__}: {exc}",
            )
    finished = ctx.clock()
    return loop_result(
        loop,
        run,
        repo_path=str(ctx.repo),
        trace_id=trace_id,
        started=started,
        finished=finished,
    )


def _reconcile_loop(loop: JSON, loop_id: str, trace_id: str, ctx: LoopContext) -> LoopRun:
    transport = loop.get("transport") or "local"
    found = loop.get("service")
    service: JSON = found if isinstance(found, dict) else {}
    config = TransportConfig()
    if transport == "sprite_service":
        token_env = service.get("tokenEnv")
        token = (
            ctx.env.get(token_env) or None
            if isinstance(token_env, str) and token_env
            else ctx.defaults.default_service_token
        )
        config = TransportConfig(
            service_base_url=service_base_url(loop),
            service_token=token,
            retry_attempts=_whole(
                service.get("retryAttempts"), 3, 1, "--retry-attempts must be an integer >= 1"
            ),
            retry_backoff_seconds=_whole(
                service.get("retryBackoffSeconds"),
                1,
                0,
                "--retry-backoff-seconds must be a non-negative integer",
            ),
            timeout_seconds=_timeout_seconds(service.get("timeoutSeconds")),
        )
    d = ctx.defaults
    s = ctx.settings
    result = ctx.reconcile_fn(
        ReconcileSettings(
            repo=ctx.repo,
            loop_id=loop_id,
            trace_id=trace_id,
            thresholds=d.thresholds,
            transport=str(transport),
            transport_config=config,
            max_events=s.max_events,
            from_start=s.from_start,
            drift_min_confidence=d.drift_min_confidence,
            drift_required_streak=d.drift_required_streak,
            drift_summary_window=d.drift_summary_window,
            known_profiles=d.known_profiles,
            alerts=d.alerts,
        ),
        clock=ctx.clock,
    )
    if result.ok:
        return LoopRun(status=SUCCESS, output=result.output)
    return LoopRun(status=FAILED, output=result.output, output_text=_failure_text(result))


def _timeout_seconds(value: Any) -> float | None:
    """The registry's optional ``service.timeoutSeconds`` (``None`` = client defaults)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise OpsError("service.timeoutSeconds must be a number > 0 and <= 300")
    return float(value)


def _whole(value: Any, default: int, minimum: int, message: str) -> int:
    """A registry number the loop reconcile takes as an integer flag (upstream passed it as
    ``--retry-attempts <n>``, whose check rejects fractions)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OpsError(message)
    if isinstance(value, float):
        if not value.is_integer():
            raise OpsError(message)
        value = int(value)
    if value < minimum:
        raise OpsError(message)
    return int(value)


def _failure_text(result: ReconcileResult) -> str:
    """The ``outputExcerpt`` source of a failed pass: an ``error: reconcile failed`` line,
    the warnings, then the health JSON (which alone is what ``ops-manager reconcile`` prints:
    a failure document is the whole output, docs/output-and-errors.md).

    The error line leads so that the 600-byte ``outputExcerpt`` says why the loop failed
    instead of starting (and ending) inside the health projection.
    """
    lines: list[str] = []
    if result.failure_message:
        lines.append(
            f"error: reconcile failed ({result.failure_code}): "
            f"{result.failure_message.removeprefix('error: ')}"
        )
    lines.extend(f"warning: {w}" for w in result.warnings)
    lines.append(dumps_compact(result.output))
    return "\n".join(lines)


__all__ = [
    "DEFAULT_MAX_PARALLEL",
    "FleetFiles",
    "FleetReconcileResult",
    "FleetReconcileSettings",
    "LoopContext",
    "LoopDefaults",
    "ProgressFn",
    "ReconcileFn",
    "commit_fleet_state",
    "fleet_reconcile",
    "loop_defaults_from_env",
    "resolve_trace_id",
    "run_loop",
    "warm_up",
]
