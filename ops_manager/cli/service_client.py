"""``ops-manager service-client``: one call to a sprite service with auth and retries (§3.11)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ops_manager.cli._parser import CommandParser, nonneg_int, positive_int, require
from ops_manager.engine.settings import SERVICE_TOKEN_ENV, flag_or_env
from ops_manager.errors import OpsError

HELP = """Call a sprite service endpoint. Prints the response body of a 2xx answer verbatim
(exit 0). Transient failures (connection refused/reset, timeouts, HTTP 408, 409, 425, 429,
500, 502, 503, 504) are retried with the same request body, so a control POST keeps its
idempotency key; a 401 is an authentication failure and is not retried. Final failure:
'error: service request failed (method=M url=U code=C): <body tail>' and exit 1."""

_TIMING = "timeout/backoff values must be non-negative integers"


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.11."""
    p.add_argument("--method", metavar="GET|POST", help="HTTP method (required)")
    p.add_argument("--base-url", metavar="URL", help="service base URL (required)")
    p.add_argument("--path", metavar="PATH", help="endpoint path + query, sent verbatim (required)")
    p.add_argument(
        "--token", metavar="TOKEN", help="service token (else $OPS_MANAGER_SERVICE_TOKEN)"
    )
    p.add_argument("--trace-id", metavar="ID", help="sent as X-Trace-Id")
    p.add_argument("--body-file", metavar="PATH", help="request body (required for POST)")
    p.add_argument("--retry-attempts", metavar="N", help="tries in total, >= 1 (default 3)")
    p.add_argument("--retry-backoff-seconds", metavar="N", help="backoff x attempt (default 1)")
    p.add_argument("--connect-timeout-seconds", metavar="N", help="connect timeout (default 5)")
    p.add_argument(
        "--max-time-seconds",
        metavar="N",
        help="read timeout (default 45: longer than the service's 30 s confirmation)",
    )


def run(args: argparse.Namespace) -> int:
    """Validate the flags in the contract's order, send the request, print the body."""
    from ops_manager.service_client import (
        DEFAULT_CONNECT_TIMEOUT_SECONDS,
        DEFAULT_MAX_TIME_SECONDS,
        ServiceRequest,
        call_service,
    )

    method = require(args.method, "--method")
    if method not in ("GET", "POST"):
        raise OpsError("--method must be GET or POST")
    base_url = require(args.base_url, "--base-url")
    path = require(args.path, "--path")
    attempts = positive_int(args.retry_attempts, "--retry-attempts must be an integer >= 1", 3)
    backoff = nonneg_int(args.retry_backoff_seconds, _TIMING, 1)
    connect = nonneg_int(args.connect_timeout_seconds, _TIMING, DEFAULT_CONNECT_TIMEOUT_SECONDS)
    max_time = nonneg_int(args.max_time_seconds, _TIMING, DEFAULT_MAX_TIME_SECONDS)
    body: bytes | None = None
    if method == "POST":
        body_file = args.body_file
        if not body_file:
            raise OpsError("--body-file is required for POST")
        path_obj = Path(body_file)
        if not path_obj.is_file():
            raise OpsError(f"body file not found: {body_file}")
        try:
            body = path_obj.read_bytes()
        except OSError as exc:
            raise OpsError(f"cannot read body file: {body_file}: {exc.strerror}") from None
    token = flag_or_env(args.token, os.environ, SERVICE_TOKEN_ENV)
    response = call_service(
        ServiceRequest(
            method=method,
            base_url=base_url,
            path=path,
            token=token,
            trace_id=args.trace_id or None,
            body=body,
            retry_attempts=attempts,
            retry_backoff_seconds=backoff,
            # 0 means "no limit" for curl; requests needs a number: use a day
            connect_timeout_seconds=connect or 86400,
            max_time_seconds=max_time or 86400,
        )
    )
    out = sys.stdout.buffer
    out.write(response.body)
    out.flush()
    return 0
