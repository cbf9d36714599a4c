"""``ops-manager reconcile``: one observe pass for one loop (``loop.md`` §3.8)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager._traceid import new_trace_id
from ops_manager.cli._parser import CommandParser, choice, nonneg_int, positive_int, require
from ops_manager.errors import OpsError

HELP = """One reconcile pass: read the loop's runtime (snapshot + new events since the cursor),
fold them into the lifecycle projection, judge health, append escalations and telemetry,
then commit the cursor. Prints the merged state (exit 0) or, when the runtime could not be
read, the health projection (exit 1) as the whole output: why it failed is in its
transport.failureCode and in telemetry/reconcile.jsonl (failureMessage). Health never
changes the exit code."""

THRESHOLD_FLAGS = (
    "degraded-ingest-lag-seconds",
    "critical-ingest-lag-seconds",
    "degraded-heartbeat-lag-seconds",
    "critical-heartbeat-lag-seconds",
    "degraded-transport-failure-streak",
    "critical-transport-failure-streak",
)
CONFIDENCES = ("low", "medium", "high")


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.8.1."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--transport", metavar="NAME", help="local (default) or sprite_service")
    p.add_argument("--service-base-url", metavar="URL", help="sprite service base URL")
    p.add_argument(
        "--service-token", metavar="TOKEN", help="service token (else $OPS_MANAGER_SERVICE_TOKEN)"
    )
    p.add_argument(
        "--trace-id", metavar="ID", help="trace id (else $OPS_MANAGER_TRACE_ID, else generated)"
    )
    p.add_argument("--retry-attempts", metavar="N", help="service retry attempts, >= 1 (default 3)")
    p.add_argument("--retry-backoff-seconds", metavar="N", help="service retry backoff (default 1)")
    p.add_argument("--cursor-file", metavar="PATH", help="default OPS/cursor.json")
    p.add_argument("--state-file", metavar="PATH", help="default OPS/state.json")
    p.add_argument("--max-events", metavar="N", help="cap on events ingested this pass (0 = all)")
    p.add_argument("--from-start", action="store_true", help="replay the event log from line 1")
    p.add_argument("--threshold-profile", metavar="NAME", help="strict | balanced | relaxed | ...")
    p.add_argument("--thresholds-file", metavar="PATH", help="threshold profile catalog")
    p.add_argument(
        "--drift-min-confidence", metavar="LEVEL", help="low | medium | high (default medium)"
    )
    p.add_argument("--drift-required-streak", metavar="N", help="default 3")
    p.add_argument("--drift-summary-window", metavar="N", help="default 200")
    p.add_argument("--drift-state-file", metavar="PATH", help="default OPS/profile-drift.json")
    p.add_argument("--drift-history-file", metavar="PATH", help="default TEL/profile-drift.jsonl")
    p.add_argument("--sequence-state-file", metavar="PATH", help="default OPS/sequence-state.json")
    p.add_argument("--sequence-telemetry-file", metavar="PATH", help="default TEL/sequence.jsonl")
    p.add_argument("--alerts-enabled", metavar="BOOL", help="true (default) or false")
    p.add_argument("--alert-config-file", metavar="PATH", help="alert sink config")
    p.add_argument(
        "--alert-dispatch-state-file", metavar="PATH", help="default OPS/alert-dispatch-state.json"
    )
    p.add_argument(
        "--alert-dispatch-telemetry-file", metavar="PATH", help="default TEL/alerts.jsonl"
    )
    p.add_argument("--heartbeat-state-file", metavar="PATH", help="default OPS/heartbeat.json")
    p.add_argument("--heartbeat-telemetry-file", metavar="PATH", help="default TEL/heartbeat.jsonl")
    for flag in THRESHOLD_FLAGS:
        p.add_argument(f"--{flag}", metavar="N", help="explicit threshold (wins over the profile)")
    p.add_argument("--pretty", action="store_true", help="pretty-print stdout (files stay compact)")


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def run(args: argparse.Namespace) -> int:
    """Validate flags in the contract's order, resolve env and profile, run one pass."""
    from ops_manager.engine.paths import loop_paths_in, resolve_repo
    from ops_manager.engine.profiles import load_profile, thresholds_over_profile
    from ops_manager.engine.reconcile import (
        TRANSPORTS,
        AlertOptions,
        ReconcileSettings,
        TransportConfig,
        reconcile,
    )

    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    max_events = nonneg_int(args.max_events, "--max-events must be a non-negative integer", 0)
    retry_attempts = positive_int(
        args.retry_attempts, "--retry-attempts must be an integer >= 1", 3
    )
    retry_backoff = nonneg_int(
        args.retry_backoff_seconds, "--retry-backoff-seconds must be a non-negative integer", 1
    )
    drift_streak = positive_int(
        args.drift_required_streak, "--drift-required-streak must be an integer >= 1", 3
    )
    drift_window = positive_int(
        args.drift_summary_window, "--drift-summary-window must be an integer >= 1", 200
    )
    alerts_enabled = choice(
        args.alerts_enabled, ("true", "false"), "--alerts-enabled must be true or false", "true"
    )
    transport = choice(
        args.transport, TRANSPORTS, "--transport must be local or sprite_service", "local"
    )

    repo = resolve_repo(repo_arg)
    paths = loop_paths_in(repo, loop_arg)
    paths.ops_dir.mkdir(parents=True, exist_ok=True)

    # env fallbacks (flag > env > default); invalid env values are errors, like the flags
    token = args.service_token or _env("OPS_MANAGER_SERVICE_TOKEN")
    trace_id = args.trace_id or _env("OPS_MANAGER_TRACE_ID") or new_trace_id()
    env_min_confidence = "medium"
    if args.drift_min_confidence is None:
        env_min_confidence = choice(
            _env("OPS_MANAGER_DRIFT_MIN_CONFIDENCE"),
            CONFIDENCES,
            "OPS_MANAGER_DRIFT_MIN_CONFIDENCE must be one of: low, medium, high",
            "medium",
        )
    if args.drift_required_streak is None:
        drift_streak = positive_int(
            _env("OPS_MANAGER_DRIFT_REQUIRED_STREAK"),
            "OPS_MANAGER_DRIFT_REQUIRED_STREAK must be an integer >= 1",
            3,
        )
    if args.drift_summary_window is None:
        drift_window = positive_int(
            _env("OPS_MANAGER_DRIFT_SUMMARY_WINDOW"),
            "OPS_MANAGER_DRIFT_SUMMARY_WINDOW must be an integer >= 1",
            200,
        )
    if args.alerts_enabled is None:
        # DECISIONS Q-9: an invalid env value is an error, like the flag
        alerts_enabled = choice(
            _env("OPS_MANAGER_ALERTS_ENABLED"),
            ("true", "false"),
            "OPS_MANAGER_ALERTS_ENABLED must be true or false",
            "true",
        )

    # the catalog file and the profile name: flag > env > default (engine.profiles)
    resolved, known_profiles = load_profile(args.thresholds_file, args.threshold_profile)
    min_confidence = choice(
        args.drift_min_confidence,
        CONFIDENCES,
        "--drift-min-confidence must be one of: low, medium, high",
        env_min_confidence,
    )
    explicit: dict[str, int | None] = {}
    for flag in THRESHOLD_FLAGS:
        raw = getattr(args, flag.replace("-", "_"))
        explicit[flag.replace("-", "_")] = (
            nonneg_int(raw, f"{flag} must be a non-negative integer", 0)
            if raw is not None
            else None
        )
    thresholds = thresholds_over_profile(resolved, explicit)

    base_url = args.service_base_url or None
    if transport == "sprite_service" and not base_url:
        raise OpsError("--service-base-url is required when --transport sprite_service")

    settings = ReconcileSettings(
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
        from_start=bool(args.from_start),
        cursor_file=_path(args.cursor_file),
        state_file=_path(args.state_file),
        sequence_state_file=_path(args.sequence_state_file),
        sequence_telemetry_file=_path(args.sequence_telemetry_file),
        heartbeat_state_file=_path(args.heartbeat_state_file),
        heartbeat_telemetry_file=_path(args.heartbeat_telemetry_file),
        drift_min_confidence=min_confidence,
        drift_required_streak=drift_streak,
        drift_summary_window=drift_window,
        drift_state_file=_path(args.drift_state_file),
        drift_history_file=_path(args.drift_history_file),
        known_profiles=known_profiles,
        alerts=AlertOptions(
            # None: the dispatcher falls back to $OPS_MANAGER_ALERT_SINKS_FILE, then the default
            config_file=Path(args.alert_config_file) if args.alert_config_file else None,
            state_file=_path(args.alert_dispatch_state_file),
            telemetry_file=_path(args.alert_dispatch_telemetry_file),
        )
        if alerts_enabled == "true"
        else None,
    )
    result = reconcile(settings)
    if result.ok:
        for warning in result.warnings:
            sys.stderr.write(f"warning: {warning}\n")
    # A failed pass prints the health projection as its failure document and nothing else
    # (no error line, no warnings): a caller reading stdout and stderr together must be able
    # to parse it (docs/output-and-errors.md). The reason is in the document
    # (transport.failureCode) and in the reconcile telemetry row (failureMessage).
    sys.stdout.write(dumps(result.output, bool(args.pretty)) + "\n")
    return result.exit_code


def _path(value: str | None) -> Path | None:
    return Path(value).absolute() if value else None
