"""Executing an intent with the Superloop CLI beside us (``loop.md`` §1.8, §3.10.2).

The runtime CLI is ``$SUPERLOOP_BIN`` (default: ``superloop`` on ``PATH``). The argv is
built as a list and run without a shell; the recorded ``command`` string is the argv joined
with :func:`shlex.quote` (DECISIONS rule 3). The child inherits our environment (the runtime
needs it); nothing of the environment is written anywhere.

Confirmation goes through the request's ``confirmer``, which the engine chooses: a plugin
answering the ``opsmgr_intent_confirmer`` hook (``$OPS_MANAGER_CONFIRM_SCRIPT`` selects the
built-in external-command one), else fresh-snapshot polling. Passing it in keeps this module
free of engine and plugin-manager imports (no import circle).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping

import attrs

from ops_manager.errors import OpsError
from ops_manager.transports import (
    ControlExecution,
    ControlRequest,
    TransportConfig,
)

#: a runtime command that has not finished after this long is killed (failed_command)
COMMAND_TIMEOUT_SECONDS = 120
#: how much of the command's combined output is kept
OUTPUT_TAIL_LINES = 40
#: exit codes recorded when the command could not run at all (shell conventions)
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
EXIT_TIMED_OUT = 124


def superloop_bin() -> str | None:
    """``$SUPERLOOP_BIN`` if set, else ``superloop`` found on ``PATH``, else ``None``."""
    configured = os.environ.get("SUPERLOOP_BIN")
    if configured:
        return configured
    return shutil.which("superloop")


def build_argv(bin_path: str, request: ControlRequest) -> list[str]:
    """The runtime CLI argv for an intent (§1.8).

    cancel -> ``<bin> cancel --repo <repo>``; approve -> ``<bin> approve --repo <repo>
    --loop <loop> --by <by> [--note <note>]``; reject -> the same with ``--reject`` before
    ``--note``.
    """
    repo = str(request.paths.repo)
    if request.intent == "cancel":
        return [bin_path, "cancel", "--repo", repo]
    argv = [bin_path, "approve", "--repo", repo, "--loop", request.paths.loop_id]
    argv += ["--by", request.by]
    if request.intent == "reject":
        argv.append("--reject")
    if request.note:
        argv += ["--note", request.note]
    return argv


def command_string(argv: list[str]) -> str:
    """The argv as one shell-safe line (``shlex.quote`` per word)."""
    return " ".join(shlex.quote(word) for word in argv)


def output_tail(data: bytes | str) -> str:
    """Last :data:`OUTPUT_TAIL_LINES` lines, CR removed, trailing newlines removed."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.replace("\r", "").rstrip("\n")
    return "\n".join(text.split("\n")[-OUTPUT_TAIL_LINES:])


def _failed(command: str, exit_code: int, output: str) -> ControlExecution:
    return ControlExecution(
        status="failed_command",
        command=command,
        exit_code=exit_code,
        confirm_exit_code=0,
        confirmed=False,
        execution_status="failed_command",
        confirmation_status="not_attempted",
        confirmation_attempted=False,
        command_output=output or None,
    )


@attrs.frozen
class ProcessResult:
    """How a child process ended: exit code, its output, and whether it was killed."""

    exit_code: int
    stdout: bytes
    #: empty when stderr was merged into stdout
    stderr: bytes
    timed_out: bool = False


def run_process(
    argv: list[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    merge_stderr: bool = True,
) -> ProcessResult:
    """Run ``argv`` (no shell, stdin closed) in its own process group.

    ``env`` replaces the inherited environment when given. On timeout the whole group is
    killed and the exit code is :data:`EXIT_TIMED_OUT`; a signal death is ``128 + signal``
    (as a shell reports it). Raises ``OSError`` if it cannot start.
    """
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        start_new_session=True,
        env=dict(env) if env is not None else None,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        out, err = proc.communicate()
        return ProcessResult(EXIT_TIMED_OUT, out or b"", err or b"", timed_out=True)
    code = proc.returncode
    if code < 0:  # killed by a signal: report it the way a shell would (128 + signal)
        code = 128 - code
    return ProcessResult(code, out or b"", err or b"")


def run_command(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` like :func:`run_process`, stderr merged into stdout.

    Returns ``(exit code, combined output tail)``; a timeout appends a line saying so.
    """
    result = run_process(argv, timeout)
    tail = output_tail(result.stdout)
    if result.timed_out:
        message = f"superloop command timed out after {timeout:g}s and was killed"
        return EXIT_TIMED_OUT, f"{tail}\n{message}" if tail else message
    return result.exit_code, tail


def execute_local_control(request: ControlRequest, config: TransportConfig) -> ControlExecution:
    """Run the runtime CLI for the intent, then (unless ``request.confirm`` is false)
    confirm it with ``request.confirmer`` (§3.10.2): exit 0 -> ``confirmed``, any other
    exit -> ``ambiguous`` with that ``confirmExitCode``.

    Never raises for runtime trouble: a missing CLI, a non-zero exit or a hung command is a
    ``failed_command`` with a clear ``command_output``.
    """
    del config  # the local transport has no settings
    bin_path = superloop_bin()
    if bin_path is None:
        return _failed("superloop", EXIT_NOT_FOUND, "superloop CLI not found: set SUPERLOOP_BIN")
    argv = build_argv(bin_path, request)
    command = command_string(argv)
    try:
        exit_code, output = run_command(argv, COMMAND_TIMEOUT_SECONDS)
    except FileNotFoundError:
        return _failed(command, EXIT_NOT_FOUND, f"superloop CLI not found: {bin_path}")
    except PermissionError:
        return _failed(command, EXIT_NOT_EXECUTABLE, f"superloop CLI not executable: {bin_path}")
    except OSError as exc:
        return _failed(
            command, EXIT_NOT_EXECUTABLE, f"superloop CLI could not start: {bin_path}: {exc}"
        )
    if exit_code != 0:
        return _failed(command, exit_code, output)
    if not request.confirm:
        return ControlExecution(
            status="executed_unconfirmed",
            command=command,
            exit_code=0,
            confirm_exit_code=0,
            confirmed=False,
            execution_status="succeeded",
            confirmation_status="skipped",
            confirmation_attempted=False,
            command_output=output or None,
        )
    if request.confirmer is None:
        raise OpsError("the local transport confirms with ControlRequest.confirmer; none was given")
    confirmation = request.confirmer(
        request.paths,
        request.intent,
        timeout_seconds=request.timeout_seconds,
        interval_seconds=request.interval_seconds,
    )
    confirmed = confirmation.exit_code == 0
    if confirmation.diagnostic:
        output = f"{output}\n{confirmation.diagnostic}" if output else confirmation.diagnostic
    return ControlExecution(
        status="confirmed" if confirmed else "ambiguous",
        command=command,
        exit_code=0,
        confirm_exit_code=confirmation.exit_code,
        confirmed=confirmed,
        execution_status="succeeded",
        confirmation_status="confirmed" if confirmed else "ambiguous",
        confirmation_attempted=True,
        command_output=output or None,
        confirm=confirmation.outcome,
    )
