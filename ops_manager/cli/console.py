"""``ops-manager console``: serve the operator console (one page + JSON API) for a repo."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ops_manager.cli._parser import CommandParser, nonneg_int, positive_int, require
from ops_manager.engine.settings import CONSOLE_TOKEN_ENV, token_setting
from ops_manager.errors import OpsError

HELP = """Serve the operator console for one repo: fleet posture, the loops with their
lifecycle state, health and reasons, a drill-down per loop (recent events, escalations,
alert deliveries per sink), SLO charts, and the manual backlog of handoff intents with a
confirm action (the same path as 'fleet-handoff --execute --confirm --intent-id ID --by B
--note N'). Binds 127.0.0.1 by default; any other host requires a token (--token or
$OPS_MANAGER_CONSOLE_TOKEN), sent as 'Authorization: Bearer <t>' or set as a cookie by
opening /?token=<t>. Prints 'ops-manager console listening on <url>' once ready; SIGTERM
or SIGINT stop it cleanly (exit 0)."""


def configure(p: CommandParser) -> None:
    """Declare the console's flags."""
    p.add_argument("--repo", metavar="PATH", help="repo whose .superloop/ is shown (required)")
    p.add_argument("--host", metavar="HOST", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--port", metavar="N", help="default 8790 (0 = pick a free port)")
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="required on every request (default $OPS_MANAGER_CONSOLE_TOKEN; empty = no auth, "
        "loopback only)",
    )
    p.add_argument(
        "--summary-window",
        metavar="N",
        help="telemetry summary window of the per-loop status (default 50)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-request access log on stderr")


def run(args: argparse.Namespace) -> int:
    """Bind, print the startup line, serve until SIGTERM/SIGINT, exit 0."""
    from ops_manager.console import DEFAULT_PORT, ConsoleConfig, ConsoleServer

    repo_arg = require(args.repo, "--repo")
    repo = Path(repo_arg)
    if not repo.is_dir():
        raise OpsError(f"repo directory not found: {repo_arg}")
    port = nonneg_int(args.port, "--port must be an integer between 0 and 65535", DEFAULT_PORT)
    if port > 65535:
        raise OpsError("--port must be an integer between 0 and 65535")
    window = positive_int(args.summary_window, "--summary-window must be an integer >= 1", 50)
    token = token_setting(args.token, os.environ, CONSOLE_TOKEN_ENV)
    server = ConsoleServer(
        ConsoleConfig(
            repo=repo.resolve(),
            host=args.host or "127.0.0.1",
            port=port,
            token=token,
            summary_window=window,
            access_log=not args.quiet,
        )
    )
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            # shutdown() waits for the serve loop: call it off the signal handler's thread
            threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        auth = "token required: open <url>?token=<token>" if token else "no token, loopback only"
        sys.stdout.write(f"ops-manager console listening on {server.url} ({auth})\n")
        sys.stdout.flush()
        server.serve_forever()
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
