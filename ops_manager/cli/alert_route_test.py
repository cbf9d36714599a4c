"""``ops-manager alert-route-test``: which sinks would receive an alert, and why."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, color_enabled, output_format
from ops_manager.cli._parser import CommandParser
from ops_manager.errors import OpsError

HELP = """Explain routing without sending anything: for one --category [--severity], or for
every case of a --cases-file (JSON lines: {"category":..,"severity":..,"expectSinks":[..],
"expectReason":..}), print which sinks would receive it and why, using the same decision as
alert-dispatch. Cases with expectations get "pass"; any failing case makes the command exit 1,
so routing can be unit-tested in CI. Secrets are ignored unless --env-check is given."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``alert-route-test``."""
    p.add_argument(
        "--config-file",
        metavar="PATH",
        help="alert sink config (else $OPS_MANAGER_ALERT_SINKS_FILE, else the packaged one)",
    )
    p.add_argument("--category", metavar="NAME", help="one escalation category")
    p.add_argument("--severity", metavar="LEVEL", help="info | warning | critical")
    p.add_argument("--cases-file", metavar="PATH", help="routing cases, one JSON per line")
    p.add_argument(
        "--env-check",
        action="store_true",
        help="a sink whose secret env vars are unset does not receive",
    )
    p.add_argument("--pretty", action="store_true", help="pretty-print each case")
    add_format_flag(p)


def run(args: argparse.Namespace) -> int:
    """Print one JSON object per case; exit 1 when an expectation fails."""
    from ops_manager.engine.alert_config import (
        RouteCase,
        config_path,
        env_presence,
        load_alert_config,
        load_route_cases,
        route_test,
    )

    fmt = output_format(args)
    category: str | None = args.category or None
    if category and args.cases_file:
        raise OpsError("--category cannot be combined with --cases-file")
    if not category and not args.cases_file:
        raise OpsError("--category or --cases-file is required")
    if args.severity and not category:
        raise OpsError("--severity requires --category")
    config = load_alert_config(config_path(args.config_file or None)).config
    cases = (
        load_route_cases(args.cases_file)
        if args.cases_file
        else [RouteCase(category=str(category), severity=args.severity or None)]
    )
    present = env_presence(config) if args.env_check else None
    results = route_test(config, cases, present=present)
    if fmt == "table":
        from ops_manager.cli._table import route_test_table

        sys.stdout.write(route_test_table(results, color=color_enabled(sys.stdout)))
    else:
        for result in results:
            sys.stdout.write(dumps(result, bool(args.pretty)) + "\n")
    # the per-case objects ("pass": false, and why) are the failure document: they are the
    # whole output, no extra error line (docs/output-and-errors.md)
    return 1 if any(r.get("pass") is False for r in results) else 0
