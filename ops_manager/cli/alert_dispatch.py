"""``ops-manager alert-dispatch``: deliver new escalations to the alert sinks
(``alerts.md`` §3)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, nonneg_int, require
from ops_manager.engine.settings import trace_id_setting

HELP = """Read the escalations appended since the last run, route each one, deliver it to its
sinks (retrying transient failures; what still fails is kept in OPS/alert-outbox.jsonl and
retried by later runs, before new rows), send a resolve when an episode's condition cleared,
append one telemetry row per notification and write alert-dispatch-state.json. Prints the
state. Exit 0 whatever the delivery outcome. When the sink config cannot be loaded, no row
is consumed (they are delivered once it is fixed): the state (status "config_invalid",
configError) is printed as the only output and the exit code is 1. Argument or state
errors: one error line, exit 1."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``alerts.md`` §3.1 (plus ``--outbox-file``)."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--escalations-file", metavar="PATH", help="default OPS/escalations.jsonl")
    p.add_argument(
        "--dispatch-state-file", metavar="PATH", help="default OPS/alert-dispatch-state.json"
    )
    p.add_argument("--dispatch-telemetry-file", metavar="PATH", help="default TEL/alerts.jsonl")
    p.add_argument("--outbox-file", metavar="PATH", help="default OPS/alert-outbox.jsonl")
    p.add_argument(
        "--trace-id", metavar="ID", help="trace id (else $OPS_MANAGER_TRACE_ID, else generated)"
    )
    p.add_argument(
        "--alert-config-file",
        metavar="PATH",
        help="alert sink config (else $OPS_MANAGER_ALERT_SINKS_FILE, else the packaged one)",
    )
    p.add_argument("--max-escalations", metavar="N", help="at most N new rows (default 0 = all)")
    p.add_argument("--pretty", action="store_true", help="pretty-print stdout (files stay compact)")


def trace_id_from(value: str | None) -> str:
    """``--trace-id``, else ``$OPS_MANAGER_TRACE_ID``, else a fresh lowercase UUID."""
    return trace_id_setting(value, os.environ)


def path_or_none(value: str | None) -> Path | None:
    """A non-empty flag value as an absolute path."""
    return Path(value).absolute() if value else None


def run(args: argparse.Namespace) -> int:
    """Run one dispatch and print the state object."""
    from ops_manager.engine.alert_dispatch import STATUS_CONFIG_INVALID, DispatchSettings, dispatch
    from ops_manager.engine.paths import loop_paths

    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    max_escalations = nonneg_int(
        args.max_escalations, "--max-escalations must be a non-negative integer", 0
    )
    paths = loop_paths(repo_arg, loop_arg)
    state = dispatch(
        DispatchSettings(
            repo=paths.repo,
            loop_id=paths.loop_id,
            trace_id=trace_id_from(args.trace_id),
            config_file=args.alert_config_file or None,
            escalations_file=path_or_none(args.escalations_file),
            state_file=path_or_none(args.dispatch_state_file),
            telemetry_file=path_or_none(args.dispatch_telemetry_file),
            outbox_file=path_or_none(args.outbox_file),
            max_escalations=max_escalations,
        )
    )
    sys.stdout.write(dumps(state, bool(args.pretty)) + "\n")
    # the state is the failure document: no extra error line (docs/output-and-errors.md)
    return 1 if state.get("status") == STATUS_CONFIG_INVALID else 0
