"""Run the REAL ``ops-manager supervise`` process on loopback for tests.

    with SuperviseProcess(repo, args=["--interval", "1"]).running() as sup:
        requests.get(sup.metrics_url)

The metrics listener binds ``127.0.0.1`` with ``--metrics-port 0``; the URL is read back from
the startup line. stderr (one JSON line per tick) goes to a file, read with
:meth:`SuperviseProcess.ticks`. :meth:`stop` sends SIGTERM and waits, SIGKILL after a
timeout; the context manager stops the process on every exit path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.service_process import read_startup_line, service_command, terminate

STARTUP_PREFIX = "ops-manager supervise: metrics on "


class SuperviseProcess:
    """One ``ops-manager supervise`` child process."""

    def __init__(
        self,
        repo: Path,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.repo = repo
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""
        self.base_url = ""
        self.returncode: int | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="ops-sup-"))
        self.stderr_path = self._tmp / "stderr.log"

    def argv(self) -> list[str]:
        """The command line (metrics on 127.0.0.1, any free port, unless args override)."""
        base = [*service_command(), "supervise", "--repo", str(self.repo)]
        if "--metrics-host" not in self.args:
            base += ["--metrics-host", "127.0.0.1"]
        if "--metrics-port" not in self.args:
            base += ["--metrics-port", "0"]
        return [*base, *self.args]

    def start(self) -> SuperviseProcess:
        """Start and wait for the startup line (raises if it never comes)."""
        env = dict(os.environ)
        env.setdefault("OPS_MANAGER_ALERTS_ENABLED", "false")
        env.update(self.extra_env)
        stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
            )
        finally:
            stderr.close()
        try:
            self.metrics_url = self._read_startup_line()
            self.base_url = self.metrics_url.removesuffix("/metrics")
        except BaseException:
            self.stop()
            raise
        return self

    def _read_startup_line(self) -> str:
        assert self.proc is not None
        return read_startup_line(
            self.proc, STARTUP_PREFIX, self.startup_timeout, "supervise", self.stderr_text
        )

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for exit (raises ``subprocess.TimeoutExpired``); the exit code."""
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s (then SIGKILL); returns the exit code."""
        if self.proc is not None:
            self.returncode = terminate(self.proc, timeout)
            self.proc = None
        return self.returncode

    def kill(self) -> None:
        """SIGKILL (a crashed host), then reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stderr_text(self) -> str:
        """Everything written to stderr so far."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def ticks(self) -> list[dict[str, Any]]:
        """The tick log lines parsed so far (complete lines only)."""
        out: list[dict[str, Any]] = []
        for line in self.stderr_text().splitlines(keepends=True):
            if line.endswith("\n") and line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Poll the tick log until ``predicate(ticks)`` holds (raises after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ticks = self.ticks()
            if predicate(ticks):
                return ticks
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"condition not reached; stderr:\n{self.stderr_text()}")

    def cleanup(self) -> None:
        """Stop (if needed) and remove the stderr log."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[SuperviseProcess]:
        """Start; yield; always stop and clean up."""
        try:
            yield self.start()
        finally:
            self.cleanup()
