"""``ops-manager demo``: build example runtime repos, reconcile them, show what an operator sees."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager.cli._format import color_enabled
from ops_manager.cli._parser import CommandParser

HELP = """Build three realistic Superloop runtime repos (a healthy loop, one awaiting approval, one
whose runner died), reconcile each, let one make progress and reconcile it again
(incrementally), supervise them as a fleet for a few ticks (`ops-manager supervise`, metrics
URL and a summary), then show every loop's status as a table and say, in a sentence each, which
loops need attention and why."""


def configure(p: CommandParser) -> None:
    """Declare the demo's flags."""
    p.add_argument(
        "--dir",
        metavar="PATH",
        default="examples/demo-fleet",
        help="where to write the demo repos (default examples/demo-fleet)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the tour and print it."""
    from ops_manager._timefmt import utc_now_epoch
    from ops_manager.cli._table import attention, loops_table, rank
    from ops_manager.engine.demo import append_progress, build_demo
    from ops_manager.engine.paths import loop_paths_in
    from ops_manager.engine.reconcile import ReconcileSettings, reconcile
    from ops_manager.engine.status import loop_status

    out = sys.stdout.write
    root = Path(args.dir).absolute()
    now = utc_now_epoch()
    loops = build_demo(root, now)
    out(f"Built {len(loops)} runtime repos under {root}:\n")
    for loop, (_, what) in loops.items():
        out(f"  {loop:<16} {what}\n")

    out("\n$ ops-manager reconcile --repo <repo> --loop <loop>   (once per loop)\n")
    out(f"  {'loop':<16} {'lifecycle':<18} {'health':<9} {'events':>6}  reasons\n")
    for loop, (repo, _) in loops.items():
        result = reconcile(ReconcileSettings(repo=repo, loop_id=loop, trace_id=f"demo-{loop}"))
        state = result.output
        health = state.get("health", {})
        out(
            f"  {loop:<16} {state['transition']['currentState']:<18} {health.get('status', '?'):<9}"
            f" {result.events_ingested:>6}  {','.join(health.get('reasonCodes', [])) or '-'}\n"
        )

    repo = loops["api-refactor"][0]
    added = append_progress(repo, "api-refactor", utc_now_epoch())
    result = reconcile(ReconcileSettings(repo=repo, loop_id="api-refactor", trace_id="demo-again"))
    cursor = result.output["cursor"]
    out(
        f"\napi-refactor wrote {added} more events; reconcile again reads only those: "
        f"ingested {result.events_ingested}, cursor at line {cursor['eventLineOffset']} "
        f"of {cursor['eventLineCount']}.\n"
    )

    # issue 15: the main job, `ops-manager supervise`, for a few ticks over the same loops
    from ops_manager.engine.demo_supervise import supervise_demo

    supervise_demo(root, {loop: repo for loop, (repo, _) in loops.items()}, out)

    statuses = [loop_status(loop_paths_in(repo, loop)) for loop, (repo, _) in loops.items()]
    out("\n$ ops-manager status --repo <repo> --loop <loop> --format table   (each loop)\n")
    out(loops_table(statuses, color=color_enabled(sys.stdout)))
    worst_first = sorted(statuses, key=lambda s: rank(str((s.get("health") or {}).get("status"))))
    sentences = [s for s in (attention(status) for status in worst_first) if s]
    if sentences:
        out("\nNeeds attention:\n")
        out("".join(f"  - {s}\n" for s in sentences))
    repo = loops["flaky-migration"][0]
    out(
        "\nThe full status document (the JSON the contract defines, for scripts):\n"
        f"  ops-manager status --repo {repo} --loop flaky-migration --pretty\n"
    )
    return 0
