"""``ops-manager reconcile``: one observe pass for one loop (``loop.md`` §3.8)."""

from __future__ import annotations

import argparse
import os
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser

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


def run(args: argparse.Namespace) -> int:
    """Hand the flags and the environment to the engine (which validates them in the
    contract's order and resolves env and profile), run one pass, print the result."""
    from ops_manager.engine.reconcile import reconcile
    from ops_manager.engine.reconcile_settings import (
        RECONCILE_FLAG_FIELDS,
        ReconcileFlags,
        reconcile_settings,
    )

    flags = ReconcileFlags(
        **{name: getattr(args, name) for name in RECONCILE_FLAG_FIELDS},
        thresholds={flag: getattr(args, flag.replace("-", "_")) for flag in THRESHOLD_FLAGS},
    )
    settings = reconcile_settings(flags, os.environ)
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
