"""``ops-manager sprite-service``: serve snapshot, events and control over HTTP (§3.12)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ops_manager.cli._parser import CommandParser, nonneg_int, positive_int, require
from ops_manager.engine.settings import SERVICE_TOKEN_ENV, token_setting
from ops_manager.errors import OpsError

HELP = """Serve one repo's loop runs over HTTP inside a sprite: GET /healthz,
GET /ops/snapshot?loopId=, GET /ops/events?loopId=&cursor=&maxEvents=, POST /ops/control.
Every path requires the token (Authorization: Bearer <t> or X-Ops-Token: <t>) unless none is
configured; without a token the service only listens on a loopback host. Prints
'ops-manager sprite service listening on http://<host>:<port>' once ready; SIGTERM or SIGINT
stop it cleanly (in-flight requests finish, exit 0)."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.12 (plus limits of our own)."""
    p.add_argument("--repo", metavar="PATH", help="repo whose .superloop/ is served (required)")
    p.add_argument("--host", metavar="HOST", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--port", metavar="N", help="default 8787 (0 = pick a free port)")
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="required on every request (default $OPS_MANAGER_SERVICE_TOKEN; empty = no auth)",
    )
    p.add_argument(
        "--scripts-dir",
        metavar="PATH",
        help="accepted for compatibility with the upstream service; ignored (no scripts run)",
    )
    p.add_argument(
        "--confirm-timeout-seconds",
        metavar="N",
        help="control confirmation timeout (default 30)",
    )
    p.add_argument(
        "--confirm-interval-seconds",
        metavar="N",
        help="control confirmation poll interval (default 2)",
    )
    p.add_argument(
        "--max-events-per-request",
        metavar="N",
        help="cap on events in one /ops/events answer (default 10000)",
    )
    p.add_argument(
        "--max-concurrent-requests",
        metavar="N",
        help="requests handled at once; more get 503 (default 32)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-request access log on stderr")


def run(args: argparse.Namespace) -> int:
    """Bind, print the startup line, serve until SIGTERM/SIGINT, drain, exit 0."""
    from ops_manager.service import (
        DEFAULT_MAX_CONCURRENT_REQUESTS,
        DEFAULT_MAX_EVENTS_PER_REQUEST,
        ServiceConfig,
        SpriteService,
    )

    repo_arg = require(args.repo, "--repo")
    repo = Path(repo_arg)
    if not repo.is_dir():
        raise OpsError(f"repo path not found: {repo_arg}")
    port = nonneg_int(args.port, "--port must be an integer between 0 and 65535", 8787)
    if port > 65535:
        raise OpsError("--port must be an integer between 0 and 65535")
    confirm_timeout = nonneg_int(
        args.confirm_timeout_seconds, "--confirm-timeout-seconds must be a non-negative integer", 30
    )
    confirm_interval = nonneg_int(
        args.confirm_interval_seconds,
        "--confirm-interval-seconds must be a non-negative integer",
        2,
    )
    max_events = positive_int(
        args.max_events_per_request,
        "--max-events-per-request must be an integer >= 1",
        DEFAULT_MAX_EVENTS_PER_REQUEST,
    )
    max_concurrent = positive_int(
        args.max_concurrent_requests,
        "--max-concurrent-requests must be an integer >= 1",
        DEFAULT_MAX_CONCURRENT_REQUESTS,
    )
    token = token_setting(args.token, os.environ, SERVICE_TOKEN_ENV)
    host = args.host or "127.0.0.1"
    config = ServiceConfig(
        repo=repo.resolve(),
        host=host,
        port=port,
        token=token,
        max_events_per_request=max_events,
        max_concurrent_requests=max_concurrent,
        confirm_timeout_seconds=confirm_timeout,
        confirm_interval_seconds=confirm_interval,
        access_log=not args.quiet,
    )
    service = SpriteService(config)
    if not token:
        sys.stderr.write(
            "warning: no service token configured (--token or OPS_MANAGER_SERVICE_TOKEN): "
            "authentication is disabled; listening on loopback only\n"
        )
        sys.stderr.flush()

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            return
        stopping.set()
        # shutdown() waits for the serve loop, which runs in this (main) thread: hand it off
        threading.Thread(target=service.shutdown, name="service-shutdown", daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        sys.stdout.write(f"ops-manager sprite service listening on {service.url}\n")
        sys.stdout.flush()
        service.serve_forever()
        if not service.wait_idle(config.shutdown_grace_seconds):
            sys.stderr.write(
                "warning: requests still in flight after "
                f"{config.shutdown_grace_seconds:g}s; stopping anyway\n"
            )
    finally:
        service.close()
        if not stopping.is_set():
            # keep our handler once a stop was requested: a repeated SIGTERM during the
            # last moments must not turn a clean exit 0 into "killed by signal"
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    sys.stderr.write("ops-manager sprite service stopped\n")
    return 0
