"""``ops-manager <command>``: a thin shell over the engine.

Each command lives in its own module (imported only when that command runs, so ``status``
in a tight loop does not pay for ``requests`` or ``jsonschema``). A command module exposes
``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Protocol

from ops_manager.cli._parser import CommandParser
from ops_manager.errors import OpsError

#: command name -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "supervise": (
        "ops_manager.cli.supervise",
        "The main job: keep the fleet reconciled; serve /metrics and /healthz.",
    ),
    "loop-run-snapshot": (
        "ops_manager.cli.snapshot",
        "Emit a loop_run_snapshot envelope for one loop.",
    ),
    "poll-events": ("ops_manager.cli.poll", "Emit new loop_run_event envelopes after a cursor."),
    "project-state": (
        "ops_manager.cli.project_state",
        "Fold a snapshot (+ events) into the lifecycle projection.",
    ),
    "health": ("ops_manager.cli.health", "Compute the health projection from state artifacts."),
    "threshold-profile": (
        "ops_manager.cli.threshold_profile",
        "Resolve or list threshold profiles.",
    ),
    "reconcile": (
        "ops_manager.cli.reconcile",
        "One observe pass: ingest, project, health, escalations.",
    ),
    "status": ("ops_manager.cli.status", "Operator status for one loop."),
    "telemetry-summary": (
        "ops_manager.cli.telemetry_summary",
        "Fold recent telemetry into a recommended threshold profile.",
    ),
    "profile-drift": (
        "ops_manager.cli.profile_drift",
        "Track whether the applied profile keeps disagreeing with the recommendation.",
    ),
    "rebuild": (
        "ops_manager.cli.rebuild",
        "Re-fold a loop's projections from its streams; report or restore differences.",
    ),
    "control": (
        "ops_manager.cli.control",
        "Execute cancel / approve / reject and confirm it took effect.",
    ),
    "confirm-intent": (
        "ops_manager.cli.confirm_intent",
        "Wait for runtime evidence that an intent took effect.",
    ),
    "sprite-service": (
        "ops_manager.cli.sprite_service",
        "Serve snapshot, events and control over HTTP inside a sprite.",
    ),
    "service-client": (
        "ops_manager.cli.service_client",
        "Call a sprite service endpoint with auth and retries.",
    ),
    "fleet-registry": (
        "ops_manager.cli.fleet_registry",
        "Validate and normalise the fleet registry.",
    ),
    "fleet-reconcile": (
        "ops_manager.cli.fleet_reconcile",
        "Reconcile every loop of the fleet, concurrently.",
    ),
    "fleet-status": (
        "ops_manager.cli.fleet_status",
        "Fleet posture and the loops needing attention.",
    ),
    "fleet-policy": (
        "ops_manager.cli.fleet_policy",
        "Candidates, suppressions and autonomous eligibility from the fleet state.",
    ),
    "fleet-handoff": (
        "ops_manager.cli.fleet_handoff",
        "Plan, confirm or autonomously execute fleet control intents.",
    ),
    "promotion-gates": (
        "ops_manager.cli.promotion_gates",
        "Decide promote vs hold from five gates.",
    ),
    "promotion-ci": (
        "ops_manager.cli.promotion_ci",
        "CI wrapper: promotion result JSON and markdown.",
    ),
    "demo": (
        "ops_manager.cli.demo",
        "Build a realistic example runtime repo, reconcile it, show status.",
    ),
    "alert-sink-config": (
        "ops_manager.cli.alert_sink_config",
        "Validate the alert sink config; list sinks or resolve a route.",
    ),
    "alert-dispatch": (
        "ops_manager.cli.alert_dispatch",
        "Deliver new escalations to the alert sinks (retries, outbox, resolves).",
    ),
    "alert-replay": (
        "ops_manager.cli.alert_replay",
        "Re-send notifications kept in the alert outbox (same idempotency key).",
    ),
    "alert-route-test": (
        "ops_manager.cli.alert_route_test",
        "Show which sinks would receive a category/severity, and why; check expectations.",
    ),
    "console": (
        "ops_manager.cli.console",
        "Serve the operator console: fleet, loops, SLO charts, backlog confirm.",
    ),
    "plugins": (
        "ops_manager.cli.plugins",
        "List installed plugins, their versions, hooks and what they provide.",
    ),
    "completion": (
        "ops_manager.cli.completion",
        "Print a shell completion script (bash or zsh).",
    ),
}


class _CommandModule(Protocol):
    HELP: str

    def configure(self, parser: CommandParser) -> None: ...

    def run(self, args: object) -> int: ...


def _top_help() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: ops-manager <command> [flags]",
        "",
        "Supervise Superloop loop runs from outside their sandbox.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run 'ops-manager <command> --help' for the flags of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ops-manager`` console script."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(args)
    except OpsError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    except SystemExit as exc:  # argparse's --help (0) and the like
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `| head`): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        from ops_manager.engine.settings import debug_enabled

        if debug_enabled(os.environ):
            raise
        sys.stderr.write(f"error: internal error: {type(exc).__name__}: {exc}\n")
        return 1


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_top_help() + "\n")
        return 0
    if args[0] == "--version":
        from importlib.metadata import version

        sys.stdout.write(f"ops-manager {version('ops-manager')}\n")
        return 0
    name = args[0]
    entry = COMMANDS.get(name)
    if entry is None:
        sys.stdout.write(_top_help() + "\n")
        raise OpsError(f"unknown command: {name}")
    module: _CommandModule = importlib.import_module(entry[0])
    parser = CommandParser(prog=f"ops-manager {name}", description=module.HELP)
    module.configure(parser)
    parsed = parser.parse_args(args[1:])
    return module.run(parsed)
