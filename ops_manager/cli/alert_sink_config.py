"""``ops-manager alert-sink-config``: check the alert sink config and resolve routes
(``alerts.md`` §2)."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, color_enabled, output_format
from ops_manager.cli._parser import CommandParser

HELP = """Validate the alert sink config (fail-closed) and print a summary, the sink list, or
where one category/severity is routed. Config precedence: --config-file >
$OPS_MANAGER_ALERT_SINKS_FILE > the packaged default (every sink disabled). By default every
ENABLED sink's secret env vars must be set; --no-env-check skips that (catalog inspection).
Secret values are never printed: only the names of the env vars and whether they are set."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``alerts.md`` §2.1 (plus ``--list``, an alias, DECISIONS Q-16)."""
    p.add_argument("--config-file", metavar="PATH", help="alert sink config file")
    p.add_argument("--category", metavar="NAME", help="resolve the route of this category")
    p.add_argument(
        "--severity", metavar="LEVEL", help="info | warning | critical (needs --category)"
    )
    p.add_argument(
        "--list-sinks", action="store_true", help="print <id>\\t<type>\\t<enabled> per sink"
    )
    p.add_argument("--list", action="store_true", help="alias of --list-sinks")
    p.add_argument(
        "--no-env-check", action="store_true", help="do not require enabled sinks' secrets"
    )
    p.add_argument("--pretty", action="store_true", help="pretty-print JSON")
    add_format_flag(p)


def run(args: argparse.Namespace) -> int:
    """Print the resolver's output (exit 0) or fail with the contract's error (exit 1)."""
    from ops_manager.engine.alert_config import ResolverRequest, resolve_sink_config

    fmt = output_format(args)
    output = resolve_sink_config(
        ResolverRequest(
            config_file=args.config_file or None,
            category=args.category or None,
            severity=args.severity or None,
            list_sinks=bool(args.list_sinks or args.list),
            env_check=not args.no_env_check,
        )
    )
    if output.text is not None:
        sys.stdout.write(output.text)
    elif fmt == "table":
        from ops_manager.cli._table import sink_config_table

        sys.stdout.write(sink_config_table(output.document or {}, color=color_enabled(sys.stdout)))
    else:
        sys.stdout.write(dumps(output.document, bool(args.pretty)) + "\n")
    return 0
