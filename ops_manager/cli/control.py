"""``ops-manager control``: execute cancel / approve / reject and confirm it (``loop.md`` §3.10)."""

from __future__ import annotations

import argparse
import os
import sys

from ops_manager._jsonfmt import dumps_compact
from ops_manager.cli._parser import CommandParser, choice, nonneg_int, positive_int, require
from ops_manager.errors import OpsError

HELP = """Execute a control intent (cancel, approve, reject) against a loop's runtime through a
transport (local: the Superloop CLI in $SUPERLOOP_BIN; sprite_service: the sprite's HTTP
service), confirm it took effect from fresh runtime evidence, and record it in
OPS/intents.jsonl, TEL/control.jsonl and TEL/control-invocations.jsonl. Prints the intents
entry. Exit 0 confirmed / executed_unconfirmed, 2 ambiguous, 1 otherwise. An idempotency key
is executed at most once per loop: a repeat replays the stored result."""

TRANSPORTS = ("local", "sprite_service")
INTENTS = ("cancel", "approve", "reject")


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


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def run(args: argparse.Namespace) -> int:
    """Validate flags in the contract's order, run the intent, print the intents entry."""
    from ops_manager.engine.control import ControlSettings, TransportConfig, run_control
    from ops_manager.engine.paths import loop_paths

    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    intent = require(args.intent, "--intent")
    if intent not in INTENTS:
        raise OpsError("intent must be one of: cancel, approve, reject")
    transport = choice(
        args.transport, TRANSPORTS, "--transport must be local or sprite_service", "local"
    )
    retry_attempts = positive_int(
        args.retry_attempts, "--retry-attempts must be an integer >= 1", 3
    )
    retry_backoff = nonneg_int(
        args.retry_backoff_seconds, "--retry-backoff-seconds must be a non-negative integer", 1
    )
    timing_error = "timeout and interval must be non-negative integers"
    timeout = nonneg_int(args.timeout_seconds, timing_error, 30)
    interval = nonneg_int(args.interval_seconds, timing_error, 2)
    base_url = args.service_base_url or None
    if transport == "sprite_service" and not base_url:
        raise OpsError("--service-base-url is required when --transport sprite_service")

    paths = loop_paths(repo_arg, loop_arg)
    settings = ControlSettings(
        repo=paths.repo,
        loop_id=paths.loop_id,
        intent=intent,
        transport=transport,
        transport_config=TransportConfig(
            service_base_url=base_url,
            service_token=args.service_token or _env("OPS_MANAGER_SERVICE_TOKEN"),
            retry_attempts=retry_attempts,
            retry_backoff_seconds=retry_backoff,
        ),
        idempotency_key=args.idempotency_key or None,
        trace_id=args.trace_id or _env("OPS_MANAGER_TRACE_ID"),
        by=args.by or None,
        note=args.note or None,
        timeout_seconds=timeout,
        interval_seconds=interval,
        confirm=not args.no_confirm,
    )
    result = run_control(settings)
    sys.stdout.write(dumps_compact(result.entry) + "\n")
    return result.exit_code
