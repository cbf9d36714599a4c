"""Built-in plugin: control and confirmation through an operator's own command.

Operators wrap control in their own command (to reach a sprite through a bastion, to add an
audit step); the contract builds flows on that wrapper. Two upstream variables select it,
and this plugin is how ops-manager honours them (through the same hooks any plugin uses):

- ``$OPS_MANAGER_CONTROL_SCRIPT`` (``fleet.md`` §0.6, §2.5 "Execution"): ``fleet-handoff``
  runs each loop-level control call as ``<script> --repo R --loop L --intent I --transport T
  --trace-id ID --idempotency-key K --by B --note N --timeout-seconds S --interval-seconds S
  [--no-confirm]`` plus, for ``sprite_service``, ``--service-base-url U --retry-attempts N
  --retry-backoff-seconds N [--service-token T]``. stdout is parsed as the control's JSON
  document (not one JSON object -> ``None``); stderr is kept apart so a chatty wrapper does
  not spoil it. The exit code is the outcome: 0 executed, 2 ambiguous, else failed.
- ``$OPS_MANAGER_CONFIRM_SCRIPT`` (``loop.md`` §3.10, §3.10.2): the local control confirms
  by running ``<script> --repo R --loop L --intent I --timeout-seconds S --interval-seconds
  S``; exit 0 -> confirmed, else ambiguous with ``confirmExitCode`` = its exit code; stdout
  parsed as the ``confirm`` object (not one JSON object -> ``None``); stderr is discarded.

Both are argv lists run without a shell, stdin closed, in their own process group, with the
caller's environment (the plugin is loaded by every process, so it imports the process
runner only when a command actually runs). A command that does not exist or cannot be
executed is an outcome (exit 127 / 126 with a message), never an exception. A command still running
:data:`GRACE_SECONDS` after its confirmation timeout is killed (exit 124). The hook
implementations are ``tryfirst``: a set variable wins over every other plugin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ops_manager.hookspecs import hookimpl
from ops_manager.store import LoopPaths
from ops_manager.transports import ConfirmResult, ControlOutcome, ControlSettings, IntentConfirmer

CONTROL_SCRIPT_ENV = "OPS_MANAGER_CONTROL_SCRIPT"
CONFIRM_SCRIPT_ENV = "OPS_MANAGER_CONFIRM_SCRIPT"
#: a command still running this long after its confirmation timeout is killed; generous,
#: because a control wrapper may retry a sprite service several times
GRACE_SECONDS = 300


def parse_document(data: bytes) -> dict[str, Any] | None:
    """stdout as one JSON object, else ``None`` (empty, not JSON, or not an object)."""
    try:
        value = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _last_line(data: bytes) -> str:
    lines = [ln for ln in data.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


@attrs.frozen
class CommandOutcome:
    """How one external control command ended (a :class:`ControlOutcome`)."""

    exit_code: int
    entry: dict[str, Any] | None = None
    #: why it failed, in one line (``None`` for exit 0 / 2)
    message: str | None = None


def control_argv(script: str, settings: ControlSettings) -> list[str]:
    """The control command line of ``fleet.md`` §2.5 for one intent (flags never empty)."""
    argv = [script, "--repo", str(settings.repo), "--loop", settings.loop_id]
    argv += ["--intent", settings.intent, "--transport", settings.transport]
    for flag, value in (
        ("--trace-id", settings.trace_id),
        ("--idempotency-key", settings.idempotency_key),
        ("--by", settings.by),
        ("--note", settings.note),
    ):
        if value:
            argv += [flag, value]
    argv += ["--timeout-seconds", str(settings.timeout_seconds)]
    argv += ["--interval-seconds", str(settings.interval_seconds)]
    if not settings.confirm:
        argv.append("--no-confirm")
    if settings.transport == "sprite_service":
        config = settings.transport_config
        if config.service_base_url:
            argv += ["--service-base-url", config.service_base_url]
        argv += ["--retry-attempts", str(config.retry_attempts)]
        argv += ["--retry-backoff-seconds", str(config.retry_backoff_seconds)]
        if config.service_token:
            argv += ["--service-token", config.service_token]
    return argv


def _start_failure(kind: str, script: str, exc: OSError) -> tuple[int, str]:
    from ops_manager.transports.local_control import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND

    if isinstance(exc, FileNotFoundError):
        return EXIT_NOT_FOUND, f"{kind} not found: {script}"
    if isinstance(exc, PermissionError):
        return EXIT_NOT_EXECUTABLE, f"{kind} not executable: {script}"
    return EXIT_NOT_EXECUTABLE, f"{kind} could not start: {script}: {exc}"


@attrs.frozen
class ControlScript:
    """Runs loop-level control as ``$OPS_MANAGER_CONTROL_SCRIPT`` (for ``fleet-handoff``)."""

    script: str
    env: Mapping[str, str]

    def __call__(self, settings: ControlSettings) -> CommandOutcome:
        """Run the command for one intent; never raises for a failing command."""
        from ops_manager.transports.local_control import run_process

        timeout = settings.timeout_seconds + GRACE_SECONDS
        try:
            result = run_process(
                control_argv(self.script, settings), timeout, env=self.env, merge_stderr=False
            )
        except OSError as exc:
            code, message = _start_failure("control script", self.script, exc)
            return CommandOutcome(code, None, message)
        entry = parse_document(result.stdout)
        if result.timed_out:
            message = f"control script timed out after {timeout}s and was killed: {self.script}"
            return CommandOutcome(result.exit_code, entry, message)
        if result.exit_code in (0, 2):
            return CommandOutcome(result.exit_code, entry)
        detail = _last_line(result.stderr)
        failed = f"control script exited {result.exit_code}" + (f": {detail}" if detail else "")
        return CommandOutcome(result.exit_code, entry, failed)


@attrs.frozen
class ConfirmScript:
    """Confirms an intent with ``$OPS_MANAGER_CONFIRM_SCRIPT`` (an :class:`IntentConfirmer`)."""

    script: str

    def __call__(
        self, paths: LoopPaths, intent: str, *, timeout_seconds: int, interval_seconds: int
    ) -> ConfirmResult:
        """Run the command; its exit code and stdout are the confirmation."""
        from ops_manager.transports.local_control import run_process

        argv = [self.script, "--repo", str(paths.repo), "--loop", paths.loop_id]
        argv += ["--intent", intent, "--timeout-seconds", str(timeout_seconds)]
        argv += ["--interval-seconds", str(interval_seconds)]
        timeout = timeout_seconds + GRACE_SECONDS
        try:
            result = run_process(argv, timeout, merge_stderr=False)
        except OSError as exc:
            code, message = _start_failure("confirm script", self.script, exc)
            return ConfirmResult(exit_code=code, diagnostic=message)
        diagnostic: str | None = None
        if result.timed_out:
            diagnostic = f"confirm script timed out after {timeout}s and was killed: {self.script}"
        return ConfirmResult(
            exit_code=result.exit_code, outcome=parse_document(result.stdout), diagnostic=diagnostic
        )


@hookimpl(tryfirst=True)
def opsmgr_control_executor(
    env: Mapping[str, str],
) -> Callable[[ControlSettings], ControlOutcome] | None:
    """``$OPS_MANAGER_CONTROL_SCRIPT`` set (non-empty) -> run control through it."""
    script = env.get(CONTROL_SCRIPT_ENV)
    return ControlScript(script, env) if script else None


@hookimpl(tryfirst=True)
def opsmgr_intent_confirmer(env: Mapping[str, str]) -> IntentConfirmer | None:
    """``$OPS_MANAGER_CONFIRM_SCRIPT`` set (non-empty) -> confirm through it."""
    script = env.get(CONFIRM_SCRIPT_ENV)
    return ConfirmScript(script) if script else None
