"""``ops-manager status``: the operator view of one loop (``loop.md`` §3.13)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, color_enabled, output_format
from ops_manager.cli._parser import CommandParser, positive_int, require

HELP = """Operator status for one loop: lifecycle state, health and its reasons, cursor, last
control intent, last reconcile, heartbeat / sequence / invocation visibility and trace
linkage, read from the artifacts reconcile and control wrote. Writes nothing."""

_FILE_FLAGS = (
    ("state-file", "state", "OPS/state.json"),
    ("cursor-file", "cursor", "OPS/cursor.json"),
    ("health-file", "health", "OPS/health.json"),
    ("intents-file", "intents", "OPS/intents.jsonl"),
    ("heartbeat-state-file", "heartbeat_state", "OPS/heartbeat.json"),
    ("heartbeat-telemetry-file", "heartbeat_telemetry", "TEL/heartbeat.jsonl"),
    ("sequence-state-file", "sequence_state", "OPS/sequence-state.json"),
    ("sequence-telemetry-file", "sequence_telemetry", "TEL/sequence.jsonl"),
    ("control-invocations-file", "control_invocations", "TEL/control-invocations.jsonl"),
    ("drift-state-file", "drift_state", "OPS/profile-drift.json"),
    ("drift-history-file", "drift_history", "TEL/profile-drift.jsonl"),
    ("alert-dispatch-state-file", "alert_dispatch_state", "OPS/alert-dispatch-state.json"),
    ("alert-dispatch-telemetry-file", "alert_dispatch_telemetry", "TEL/alerts.jsonl"),
)


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.13.1."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    for flag, _, default in _FILE_FLAGS:
        p.add_argument(f"--{flag}", metavar="PATH", help=f"default {default}")
    p.add_argument("--summary-window", metavar="N", help="telemetry summary window (default 200)")
    p.add_argument("--pretty", action="store_true", help="pretty-print")
    add_format_flag(p)


def run(args: argparse.Namespace) -> int:
    """Print the status object."""
    from ops_manager.engine.paths import loop_paths
    from ops_manager.engine.status import StatusFiles, loop_status

    fmt = output_format(args)
    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    window = positive_int(args.summary_window, "--summary-window must be an integer >= 1", 200)
    paths = loop_paths(repo_arg, loop_arg)
    overrides = {
        field: Path(value).absolute()
        for flag, field, _ in _FILE_FLAGS
        if (value := getattr(args, flag.replace("-", "_")))
    }
    status = loop_status(paths, files=StatusFiles(**overrides), summary_window=window)
    if fmt == "table":
        from ops_manager.cli._table import status_table

        sys.stdout.write(status_table(status, color=color_enabled(sys.stdout)))
        return 0
    sys.stdout.write(dumps(status, bool(args.pretty)) + "\n")
    return 0
