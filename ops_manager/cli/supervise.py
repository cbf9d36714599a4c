"""``ops-manager supervise``: keep the fleet reconciled, serve /metrics and /healthz."""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from ops_manager._http import is_loopback
from ops_manager._jsonfmt import dumps_compact
from ops_manager.cli._parser import CommandParser, nonneg_int, positive_int, require
from ops_manager.cli._progress import progress_line
from ops_manager.engine.settings import METRICS_TOKEN_ENV, token_setting
from ops_manager.errors import OpsError

HELP = """Run the fleet's reconcile loop forever in this process: every --interval seconds,
reconcile each registry loop (local and sprite_service, at most --max-parallel at once, each
bounded by --loop-timeout), dispatch alerts and due outbox retries, write the fleet state,
run the fleet policy (and the autonomous handoff where the policy mode is guarded_auto).
One JSON line per tick on stderr. /metrics (Prometheus) and /healthz on --metrics-host
(127.0.0.1; any other host needs --metrics-token or $OPS_MANAGER_METRICS_TOKEN); the URL is
printed on stdout once listening. One supervisor per fleet repo (and shard). SIGHUP reloads
the registry and config; SIGTERM/SIGINT stop it (exit 0). --once runs one tick and exits."""

_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def configure(p: CommandParser) -> None:
    """Declare the flags."""
    p.add_argument("--repo", metavar="PATH", help="fleet repo (required)")
    p.add_argument("--registry-file", metavar="PATH", help="default FLEET/registry.v1.json")
    p.add_argument("--interval", metavar="SECONDS", help="seconds between tick starts (30)")
    p.add_argument("--max-parallel", metavar="N", help="loops reconciled at once, >= 1 (2)")
    p.add_argument(
        "--loop-timeout", metavar="SECONDS", help="give up on one loop after this (the interval)"
    )
    p.add_argument("--metrics-host", metavar="HOST", default="127.0.0.1", help="127.0.0.1")
    p.add_argument("--metrics-port", metavar="PORT", help="0 = any free port (default 0)")
    p.add_argument(
        "--metrics-token",
        metavar="TOKEN",
        help="bearer token for /metrics and /healthz (else $OPS_MANAGER_METRICS_TOKEN)",
    )
    p.add_argument("--shard", metavar="K/N", help="supervise only shard K (0-based) of N")
    p.add_argument("--once", action="store_true", help="run one tick, then exit")


def _seconds(value: str | None, flag: str, default: float | None) -> float | None:
    if value is None:
        return default
    if not _NUMBER.match(value) or float(value) <= 0:
        raise OpsError(f"{flag} must be a number > 0")
    return float(value)


def _lock(path: Path) -> int:
    """Hold ``path``'s flock for the life of the process, or fail: one supervisor only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OpsError(
            f"another supervisor is already running for this fleet (lock: {path})"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def run(args: argparse.Namespace) -> int:
    """Validate, lock, listen, tick until told to stop."""
    from ops_manager.engine.paths import fleet_paths, resolve_repo
    from ops_manager.engine.supervise import SuperviseSettings, Supervisor
    from ops_manager.engine.supervise_metrics import ListenerConfig, MetricsListener, health_verdict
    from ops_manager.engine.supervise_shards import Shard, shards_dir

    repo = resolve_repo(require(args.repo, "--repo"))
    interval = _seconds(args.interval, "--interval", 30.0)
    assert interval is not None
    loop_timeout = _seconds(args.loop_timeout, "--loop-timeout", None)
    max_parallel = positive_int(args.max_parallel, "--max-parallel must be an integer >= 1", 2)
    port = nonneg_int(args.metrics_port, "--metrics-port must be an integer 0-65535", 0)
    if port > 65535:
        raise OpsError("--metrics-port must be an integer 0-65535")
    shard = Shard.parse(args.shard) if args.shard else None
    token = token_setting(args.metrics_token, os.environ, METRICS_TOKEN_ENV)
    settings = SuperviseSettings(
        repo=repo,
        interval=interval,
        max_parallel=max_parallel,
        loop_timeout=loop_timeout,
        shard=shard,
        registry_file=Path(args.registry_file) if args.registry_file else None,
    )
    host = args.metrics_host or "127.0.0.1"
    if not is_loopback(host) and not token:
        raise OpsError(
            f"--metrics-host {host} is not loopback: set a token "
            "(--metrics-token or $OPS_MANAGER_METRICS_TOKEN)"
        )
    # registry and environment are validated before anything is created on disk
    supervisor = Supervisor(settings)
    paths = fleet_paths(repo)
    lock_file = (
        shards_dir(paths) / f"{shard.stem}.lock" if shard else paths.fleet_dir / "supervise.lock"
    )
    lock_fd = _lock(lock_file)
    stop = threading.Event()
    reload = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def _hup(signum: int, frame: FrameType | None) -> None:
        reload.set()

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, _stop),
        signal.SIGINT: signal.signal(signal.SIGINT, _stop),
        signal.SIGHUP: signal.signal(signal.SIGHUP, _hup),
    }
    listener: MetricsListener | None = None
    try:
        listener = MetricsListener(
            supervisor.metrics,
            ListenerConfig(host=host, port=port, token=token or None),
            lambda: health_verdict(supervisor.last_tick_finished, interval, time.monotonic()),
        )
        sys.stdout.write(f"ops-manager supervise: metrics on {listener.url}/metrics\n")
        sys.stdout.flush()
        while True:
            began = time.monotonic()
            do_reload = reload.is_set()
            reload.clear()
            # a person running one tick by hand sees it advance (a terminal only; the
            # JSON tick line still follows on stderr)
            progress = progress_line(sys.stderr) if args.once else None
            try:
                summary = supervisor.tick(stop, reload=do_reload, progress=progress)
            finally:
                if progress is not None:
                    progress.finish()
            if do_reload:
                summary["reloaded"] = True
            sys.stderr.write(dumps_compact(summary) + "\n")
            sys.stderr.flush()
            if args.once or stop.is_set():
                break
            delay = supervisor.next_delay(time.monotonic() - began)
            # SIGHUP during the wait starts the next tick early, with the new registry
            deadline = time.monotonic() + delay
            while not stop.is_set() and not reload.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                stop.wait(min(left, 0.2))
            if stop.is_set():
                break
    finally:
        if listener is not None:
            listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(lock_fd)
    return 0
