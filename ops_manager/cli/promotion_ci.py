"""``ops-manager promotion-ci``: promotion gates for CI — result JSON and a markdown summary
(``fleet.md`` §2.7, §3.13)."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, require
from ops_manager.cli.promotion_gates import add_evidence_flags, path_flag, threshold_values

HELP = """Run the promotion gates for CI: write the result JSON (--result-file) and a markdown
summary (--summary-file; also appended to $GITHUB_STEP_SUMMARY when set), print the JSON and
exit with the evaluator's code (0, or 2 on hold with --fail-on-hold). With
--skip-on-missing-evidence, missing evidence files make the run 'skipped' (exit 0) without
evaluating. The markdown only names paths in code spans; it never executes anything."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``fleet.md`` §2.7."""
    fleet = "<repo>/.superloop/ops-manager/fleet"
    add_evidence_flags(p)
    p.add_argument(
        "--summary-file", metavar="PATH", help=f"default {fleet}/promotion-ci-summary.md"
    )
    p.add_argument(
        "--result-file", metavar="PATH", help=f"default {fleet}/promotion-ci-result.json"
    )
    p.add_argument(
        "--skip-on-missing-evidence",
        action="store_true",
        help="decision 'skipped' (exit 0) when evidence files are missing",
    )


def run(args: argparse.Namespace) -> int:
    """Run the CI flow and print the result JSON."""
    from ops_manager.engine.paths import resolve_repo
    from ops_manager.engine.promotion import PromotionCISettings, promotion_ci

    repo_arg = require(args.repo, "--repo")
    settings = PromotionCISettings(
        repo=resolve_repo(repo_arg),
        fleet_status_file=path_flag(args.fleet_status_file),
        handoff_telemetry_file=path_flag(args.handoff_telemetry_file),
        drill_state_file=path_flag(args.drill_state_file),
        promotion_state_file=path_flag(args.promotion_state_file),
        promotion_telemetry_file=path_flag(args.promotion_telemetry_file),
        summary_file=path_flag(args.summary_file),
        result_file=path_flag(args.result_file),
        thresholds=threshold_values(args),
        trace_id=args.trace_id or None,
        fail_on_hold=bool(args.fail_on_hold),
        skip_on_missing_evidence=bool(args.skip_on_missing_evidence),
    )
    result = promotion_ci(settings)
    if result.exit_code == 0:
        # on a hold with --fail-on-hold (exit 2) the result is the whole output
        for warning in result.warnings:
            sys.stderr.write(f"warning: {warning}\n")
    sys.stdout.write(dumps(result.result, bool(args.pretty)) + "\n")
    return result.exit_code
