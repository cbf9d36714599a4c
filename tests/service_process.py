"""Run the REAL ``ops-manager sprite-service`` process on loopback for tests.

    with ServiceProcess(repo, token=token).running() as service:
        requests.get(service.url + "/healthz", headers=service.auth_headers())

The process listens on ``127.0.0.1`` with ``--port 0`` (the kernel picks a free port; the
URL is read back from the startup line, so there is no port race). The token is handed over
in the environment, never on the command line. :meth:`ServiceProcess.stop` sends SIGTERM
and waits (SIGKILL only if it does not exit in time); the context manager calls it on every
exit path, including test failures. The service's stderr (access log, warnings) goes to a
file, :attr:`ServiceProcess.stderr_path`, so a chatty service can never block on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

STARTUP_PREFIX = "ops-manager sprite service listening on "


def service_command() -> list[str]:
    """The argv prefix that runs ``ops-manager`` from this interpreter's environment."""
    script = Path(sys.executable).parent / "ops-manager"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from ops_manager.cli import main; sys.exit(main())"]


class ServiceProcess:
    """One ``ops-manager sprite-service`` child process bound to 127.0.0.1."""

    def __init__(
        self,
        repo: Path,
        *,
        token: str | None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        self.repo = repo
        self.token = token
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.returncode: int | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="ops-svc-"))
        self.stderr_path = self._tmp / "stderr.log"

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <token>`` (empty when the service runs without a token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self) -> ServiceProcess:
        """Start the process and wait for its startup line (raises if it never comes)."""
        env = dict(os.environ)
        env.pop("OPS_MANAGER_SERVICE_TOKEN", None)
        env.update(self.extra_env)
        if self.token is not None:
            env["OPS_MANAGER_SERVICE_TOKEN"] = self.token
        argv = [
            *service_command(),
            "sprite-service",
            "--repo",
            str(self.repo),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *self.args,
        ]
        stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env
            )
        finally:
            stderr.close()
        try:
            self.url = self._read_startup_line()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_startup_line(self) -> str:
        assert self.proc is not None
        return read_startup_line(
            self.proc, STARTUP_PREFIX, self.startup_timeout, "sprite service", self.stderr_text
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s (then SIGKILL); returns the exit code."""
        if self.proc is not None:
            self.returncode = terminate(self.proc, timeout)
            self.proc = None
        return self.returncode

    def stderr_text(self) -> str:
        """Everything the service wrote to stderr so far."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Stop (if needed) and remove the stderr log."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[ServiceProcess]:
        """Start; yield; always stop (SIGTERM) and clean up, whatever happened inside."""
        try:
            yield self.start()
        finally:
            self.cleanup()


def read_startup_line(
    proc: subprocess.Popen[bytes],
    prefix: str,
    timeout: float,
    what: str,
    stderr_text: Callable[[], str],
) -> str:
    """The rest of ``proc``'s first stdout line after ``prefix`` (its URL); raises with the
    child's stderr if the line does not come within ``timeout`` s or the child exits."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{what} did not start: {stderr_text()}")
            if not sel.select(remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                proc.wait(timeout=5)
                raise RuntimeError(f"{what} exited with {proc.returncode}: {stderr_text()}")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    if not line.startswith(prefix):
        raise RuntimeError(f"unexpected startup line: {line!r}")
    return line[len(prefix) :]


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM ``proc``, wait up to ``timeout`` s (then SIGKILL), close its stdout; the
    exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


def stub_superloop_env(bindir: Path, log: Path, mode: str = "", delay: float = 0) -> dict[str, str]:
    """Environment that makes control run ``tests/stub_superloop.py`` (logging every call).

    Writes the one-line wrapper ``<bindir>/superloop`` that ``SUPERLOOP_BIN`` points at.
    """
    import shlex

    stub = Path(__file__).with_name("stub_superloop.py")
    bindir.mkdir(parents=True, exist_ok=True)
    wrapper = bindir / "superloop"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(stub))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return {
        "SUPERLOOP_BIN": str(wrapper),
        "STUB_SUPERLOOP_LOG": str(log),
        "STUB_SUPERLOOP_MODE": mode,
        "STUB_SUPERLOOP_DELAY": str(delay),
        "USER": "tester",
    }


def stub_calls(log: Path) -> list[list[str]]:
    """The argv of every stub invocation logged so far."""
    import json

    if not log.exists():
        return []
    return [json.loads(line)["argv"] for line in log.read_text().splitlines() if line.strip()]
