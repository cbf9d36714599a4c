"""``ops-manager control``: execute cancel / approve / reject and confirm it (``loop.md`` §3.10)."""

from __future__ import annotations

import argparse
import os
import sys

from ops_manager._jsonfmt import dumps_compact
from ops_manager.cli._parser import CommandParser

HELP = """Execute a control intent (cancel, approve, reject) against a loop's runtime through a
transport (local: the Superloop CLI in $SUPERLOOP_BIN; sprite_service: the sprite's HTTP
service), confirm it took effect from fresh runtime evidence, and record it in
OPS/intents.jsonl, TEL/control.jsonl and TEL/control-invocations.jsonl. Prints the intents
entry. Exit 0 confirmed / executed_unconfirmed, 2 ambiguous, 1 otherwise. An idempotency key
is executed at most once per loop: a repeat replays the stored result."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.10.1."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--intent", metavar="INTENT", help="cancel | approve | reject (required)")
    p.add_argument("--transport", metavar="NAME", help="local (default) or sprite_service")
    p.add_argument("--service-base-url", metavar="URL", help="sprite service base URL")
    p.add_argument(
        "--service-token", metavar="TOKEN", help="service token (else $OPS_MANAGER_SERVICE_TOKEN)"
    )
    p.add_argument(
        "--idempotency-key", metavar="KEY", help="default <intent>-<epoch seconds>-<pid>"
    )
    p.add_argument(
        "--trace-id", metavar="ID", help="trace id (else $OPS_MANAGER_TRACE_ID, else generated)"
    )
    p.add_argument("--retry-attempts", metavar="N", help="service retry attempts, >= 1 (default 3)")
    p.add_argument("--retry-backoff-seconds", metavar="N", help="service retry backoff (default 1)")
    p.add_argument("--by", metavar="NAME", help="who asks (default $USER, else unknown)")
    p.add_argument("--note", metavar="TEXT", help="note passed to approve / reject")
    p.add_argument("--timeout-seconds", metavar="N", help="confirmation timeout (default 30)")
    p.add_argument("--interval-seconds", metavar="N", help="confirmation poll interval (default 2)")
    p.add_argument("--no-confirm", action="store_true", help="skip confirmation")


def run(args: argparse.Namespace) -> int:
    """Hand the flags and the environment to the engine (which validates them in the
    contract's order), run the intent, print the intents entry."""
    from ops_manager.engine.control import run_control
    from ops_manager.engine.control_settings import (
        CONTROL_FLAG_FIELDS,
        ControlFlags,
        control_settings,
    )

    flags = ControlFlags(**{name: getattr(args, name) for name in CONTROL_FLAG_FIELDS})
    result = run_control(control_settings(flags, os.environ))
    sys.stdout.write(dumps_compact(result.entry) + "\n")
    return result.exit_code
