"""``ops-manager profile-drift``: one drift evaluation of the applied threshold profile
against a recommendation (``loop.md`` §3.7)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, choice, positive_int, require

HELP = """Compare the applied threshold profile with a recommended one. A mismatch counts when
the recommendation's confidence reaches --min-confidence; drift becomes active after
--required-streak consecutive counted mismatches and clears on the first pass without one.
Writes OPS/profile-drift.json (the current state) and appends to TEL/profile-drift.jsonl
(the history); prints the drift object."""

CONFIDENCE_MESSAGE = "must be one of: low, medium, high"


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.7."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--applied-profile", metavar="NAME", help="the profile in use")
    p.add_argument("--recommended-profile", metavar="NAME", help="the telemetry's recommendation")
    p.add_argument(
        "--thresholds-file",
        metavar="PATH",
        help="threshold profile catalog (else $OPS_MANAGER_THRESHOLD_PROFILES_FILE, else packaged)",
    )
    p.add_argument(
        "--recommendation-confidence", metavar="LEVEL", help="low (default) | medium | high"
    )
    p.add_argument("--min-confidence", metavar="LEVEL", help="low | medium (default) | high")
    p.add_argument("--required-streak", metavar="N", help="counted mismatches to activate (3)")
    p.add_argument("--summary-window", metavar="N", help="recorded as metadata (200)")
    p.add_argument("--rationale", metavar="TEXT", help="why the recommendation was made")
    p.add_argument("--drift-state-file", metavar="PATH", help="default OPS/profile-drift.json")
    p.add_argument("--drift-history-file", metavar="PATH", help="default TEL/profile-drift.jsonl")
    p.add_argument("--pretty", action="store_true", help="pretty-print stdout (files stay compact)")


def run(args: argparse.Namespace) -> int:
    """Validate in the contract's order, evaluate, record, print."""
    from ops_manager.engine.drift import CONFIDENCES, DriftRequest, profile_drift
    from ops_manager.engine.paths import loop_paths

    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    streak = positive_int(args.required_streak, "--required-streak must be an integer >= 1", 3)
    window = positive_int(args.summary_window, "--summary-window must be an integer >= 1", 200)
    rec_conf = choice(
        args.recommendation_confidence,
        CONFIDENCES,
        f"--recommendation-confidence {CONFIDENCE_MESSAGE}",
        "low",
    )
    min_conf = choice(
        args.min_confidence, CONFIDENCES, f"--min-confidence {CONFIDENCE_MESSAGE}", "medium"
    )
    paths = loop_paths(repo_arg, loop_arg)
    drift = profile_drift(
        paths,
        DriftRequest(
            applied_profile=args.applied_profile or "",
            recommended_profile=args.recommended_profile or "",
            recommendation_confidence=rec_conf,
            min_confidence=min_conf,
            required_streak=streak,
            summary_window=window,
            rationale=args.rationale or "",
            thresholds_file=_path(args.thresholds_file),
            drift_state_file=_path(args.drift_state_file),
            drift_history_file=_path(args.drift_history_file),
        ),
    )
    sys.stdout.write(dumps(drift, bool(args.pretty)) + "\n")
    return 0


def _path(value: str | None) -> Path | None:
    return Path(value).absolute() if value else None
