"""The settings of one ``reconcile`` pass from its flags and the environment (``loop.md`` §3.8.1).

:func:`reconcile_settings` takes the raw flag values (``None`` when a flag was not given)
and an environment mapping, validates them in the contract's order and applies
flag > env > default, with the contract's error texts (all exit 1):

======================================  ==============================================
``--service-token``                     ``$OPS_MANAGER_SERVICE_TOKEN``
``--trace-id``                          ``$OPS_MANAGER_TRACE_ID``, else generated
``--drift-min-confidence``              ``$OPS_MANAGER_DRIFT_MIN_CONFIDENCE``, ``medium``
``--drift-required-streak``             ``$OPS_MANAGER_DRIFT_REQUIRED_STREAK``, ``3``
``--drift-summary-window``              ``$OPS_MANAGER_DRIFT_SUMMARY_WINDOW``, ``200``
``--alerts-enabled``                    ``$OPS_MANAGER_ALERTS_ENABLED``, ``true``
``--thresholds-file``/``--threshold-profile``  :func:`ops_manager.engine.profiles.load_profile`
======================================  ==============================================

An invalid environment value is an error like an invalid flag (DECISIONS Q-9); it is only
looked at when the flag is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from ops_manager.engine._reconcile_types import TRANSPORTS, AlertOptions, ReconcileSettings
from ops_manager.engine.paths import loop_paths_in, resolve_repo
from ops_manager.engine.profiles import load_profile, thresholds_over_profile
from ops_manager.engine.settings import (
    SERVICE_TOKEN_ENV,
    choice,
    env_value,
    flag_or_env,
    nonneg_int,
    positive_int,
    require,
    trace_id_setting,
)
from ops_manager.errors import OpsError
from ops_manager.transports import TransportConfig

CONFIDENCES = ("low", "medium", "high")
MIN_CONFIDENCE_ENV = "OPS_MANAGER_DRIFT_MIN_CONFIDENCE"
REQUIRED_STREAK_ENV = "OPS_MANAGER_DRIFT_REQUIRED_STREAK"
SUMMARY_WINDOW_ENV = "OPS_MANAGER_DRIFT_SUMMARY_WINDOW"
ALERTS_ENABLED_ENV = "OPS_MANAGER_ALERTS_ENABLED"


@attrs.frozen(kw_only=True)
class ReconcileFlags:
    """The flags of ``ops-manager reconcile`` as given: ``None`` when absent.

    Field names are the argparse destinations, so a front end can fill them by name
    (:data:`RECONCILE_FLAG_FIELDS`). ``thresholds`` maps each explicit-threshold flag name
    (``degraded-ingest-lag-seconds``, ...) to its raw value, in the order they are checked.
    """

    repo: str | None = None
    loop: str | None = None
    transport: str | None = None
    service_base_url: str | None = None
    service_token: str | None = None
    trace_id: str | None = None
    retry_attempts: str | None = None
    retry_backoff_seconds: str | None = None
    cursor_file: str | None = None
    state_file: str | None = None
    max_events: str | None = None
    from_start: bool = False
    threshold_profile: str | None = None
    thresholds_file: str | None = None
    drift_min_confidence: str | None = None
    drift_required_streak: str | None = None
    drift_summary_window: str | None = None
    drift_state_file: str | None = None
    drift_history_file: str | None = None
    sequence_state_file: str | None = None
    sequence_telemetry_file: str | None = None
    alerts_enabled: str | None = None
    alert_config_file: str | None = None
    alert_dispatch_state_file: str | None = None
    alert_dispatch_telemetry_file: str | None = None
    heartbeat_state_file: str | None = None
    heartbeat_telemetry_file: str | None = None
    thresholds: Mapping[str, str | None] = attrs.field(factory=dict)


#: the :class:`ReconcileFlags` fields that are argparse destinations (all but ``thresholds``)
RECONCILE_FLAG_FIELDS = tuple(
    field.name for field in attrs.fields(ReconcileFlags) if field.name != "thresholds"
)


def reconcile_settings(flags: ReconcileFlags, environ: Mapping[str, str]) -> ReconcileSettings:
    """Validate ``flags`` in the contract's order, resolve the environment and the threshold
    profile, and return the pass's settings.

    Side effect, kept from the contract's order: once ``--repo``/``--loop`` are valid the
    loop's OPS directory is created, before the environment and the profile are checked.
    """
    repo_arg = require(flags.repo, "--repo")
    loop_arg = require(flags.loop, "--loop")
    max_events = nonneg_int(flags.max_events, "--max-events must be a non-negative integer", 0)
    retry_attempts = positive_int(
        flags.retry_attempts, "--retry-attempts must be an integer >= 1", 3
    )
    retry_backoff = nonneg_int(
        flags.retry_backoff_seconds, "--retry-backoff-seconds must be a non-negative integer", 1
    )
    drift_streak = positive_int(
        flags.drift_required_streak, "--drift-required-streak must be an integer >= 1", 3
    )
    drift_window = positive_int(
        flags.drift_summary_window, "--drift-summary-window must be an integer >= 1", 200
    )
    alerts_enabled = choice(
        flags.alerts_enabled, ("true", "false"), "--alerts-enabled must be true or false", "true"
    )
    transport = choice(
        flags.transport, TRANSPORTS, "--transport must be local or sprite_service", "local"
    )

    repo = resolve_repo(repo_arg)
    paths = loop_paths_in(repo, loop_arg)
    paths.ops_dir.mkdir(parents=True, exist_ok=True)

    # env fallbacks (flag > env > default); invalid env values are errors, like the flags
    token = flag_or_env(flags.service_token, environ, SERVICE_TOKEN_ENV)
    trace_id = trace_id_setting(flags.trace_id, environ)
    env_min_confidence = "medium"
    if flags.drift_min_confidence is None:
        env_min_confidence = choice(
            env_value(environ, MIN_CONFIDENCE_ENV),
            CONFIDENCES,
            f"{MIN_CONFIDENCE_ENV} must be one of: low, medium, high",
            "medium",
        )
    if flags.drift_required_streak is None:
        drift_streak = positive_int(
            env_value(environ, REQUIRED_STREAK_ENV),
            f"{REQUIRED_STREAK_ENV} must be an integer >= 1",
            3,
        )
    if flags.drift_summary_window is None:
        drift_window = positive_int(
            env_value(environ, SUMMARY_WINDOW_ENV),
            f"{SUMMARY_WINDOW_ENV} must be an integer >= 1",
            200,
        )
    if flags.alerts_enabled is None:
        # DECISIONS Q-9: an invalid env value is an error, like the flag
        alerts_enabled = choice(
            env_value(environ, ALERTS_ENABLED_ENV),
            ("true", "false"),
            f"{ALERTS_ENABLED_ENV} must be true or false",
            "true",
        )

    # the catalog file and the profile name: flag > env > default (engine.profiles)
    resolved, known_profiles = load_profile(flags.thresholds_file, flags.threshold_profile, environ)
    min_confidence = choice(
        flags.drift_min_confidence,
        CONFIDENCES,
        "--drift-min-confidence must be one of: low, medium, high",
        env_min_confidence,
    )
    explicit: dict[str, int | None] = {}
    for flag, raw in flags.thresholds.items():
        explicit[flag.replace("-", "_")] = (
            nonneg_int(raw, f"{flag} must be a non-negative integer", 0)
            if raw is not None
            else None
        )
    thresholds = thresholds_over_profile(resolved, explicit)

    base_url = flags.service_base_url or None
    if transport == "sprite_service" and not base_url:
        raise OpsError("--service-base-url is required when --transport sprite_service")

    return ReconcileSettings(
        repo=repo,
        loop_id=paths.loop_id,
        trace_id=trace_id,
        thresholds=thresholds,
        transport=transport,
        transport_config=TransportConfig(
            service_base_url=base_url,
            service_token=token,
            retry_attempts=retry_attempts,
            retry_backoff_seconds=retry_backoff,
        ),
        max_events=max_events,
        from_start=bool(flags.from_start),
        cursor_file=_path(flags.cursor_file),
        state_file=_path(flags.state_file),
        sequence_state_file=_path(flags.sequence_state_file),
        sequence_telemetry_file=_path(flags.sequence_telemetry_file),
        heartbeat_state_file=_path(flags.heartbeat_state_file),
        heartbeat_telemetry_file=_path(flags.heartbeat_telemetry_file),
        drift_min_confidence=min_confidence,
        drift_required_streak=drift_streak,
        drift_summary_window=drift_window,
        drift_state_file=_path(flags.drift_state_file),
        drift_history_file=_path(flags.drift_history_file),
        known_profiles=known_profiles,
        alerts=AlertOptions(
            # None: the dispatcher falls back to $OPS_MANAGER_ALERT_SINKS_FILE, then the default
            config_file=Path(flags.alert_config_file) if flags.alert_config_file else None,
            state_file=_path(flags.alert_dispatch_state_file),
            telemetry_file=_path(flags.alert_dispatch_telemetry_file),
        )
        if alerts_enabled == "true"
        else None,
    )


def _path(value: str | None) -> Path | None:
    return Path(value).absolute() if value else None
