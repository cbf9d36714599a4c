"""The supervisor's Prometheus metrics and its ``/metrics`` + ``/healthz`` listener.

The metrics live in a private :class:`prometheus_client.CollectorRegistry` (not the
library's global one), so a test or an embedding program can run two supervisors in one
process, and the text format comes from :func:`prometheus_client.generate_latest`.

The listener follows the console's rule (``docs/console.md``): on a loopback host it needs
no token but only answers loopback ``Host`` names (DNS rebinding); on any other host a
token is required (``Authorization: Bearer <token>``) and the supervisor refuses to start
without one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ops_manager._http import bind_server, is_loopback, token_matches
from ops_manager.errors import OpsError

#: health values a loop result can carry (``healthStatus``); each gets a series, even at 0
HEALTH_VALUES = ("healthy", "degraded", "critical", "unknown")
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class SuperviseMetrics:
    """Every metric of issue 15, registered on one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.loops = Gauge(
            "ops_manager_loops", "Loops supervised, by health status.", ["health"], registry=r
        )
        self.ticks = Counter(
            "ops_manager_supervise_ticks", "Supervisor ticks completed.", registry=r
        )
        self.tick_duration = Histogram(
            "ops_manager_supervise_tick_duration_seconds",
            "Wall time of one supervisor tick.",
            buckets=_BUCKETS,
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "ops_manager_reconcile_duration_seconds",
            "Wall time of one loop reconcile inside a tick.",
            buckets=_BUCKETS,
            registry=r,
        )
        self.ingest_lag = Gauge(
            "ops_manager_loop_ingest_lag_seconds",
            "Seconds since the loop's last ingested event, as of its last reconcile.",
            ["loop"],
            registry=r,
        )
        self.notifications = Counter(
            "ops_manager_alert_notifications",
            "Alert notifications attempted by this supervisor, by sink and outcome.",
            ["sink", "outcome"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "ops_manager_alert_outbox_pending",
            "Notifications waiting in the loops' alert outboxes for a retry.",
            registry=r,
        )
        self.last_success = Gauge(
            "ops_manager_last_tick_success_timestamp_seconds",
            "Unix time at which the last tick finished.",
            registry=r,
        )
        for value in HEALTH_VALUES:
            self.loops.labels(health=value).set(0)

    def set_loops(self, counts: Mapping[str, int]) -> None:
        """Replace the per-health gauge (values missing from ``counts`` drop to 0)."""
        for value in {*HEALTH_VALUES, *counts}:
            self.loops.labels(health=value).set(counts.get(value, 0))

    def set_ingest_lags(self, lags: Mapping[str, float], supervised: set[str]) -> None:
        """Set each loop's lag; forget series of loops no longer supervised (no leak)."""
        for loop, lag in lags.items():
            self.ingest_lag.labels(loop=loop).set(lag)
        # _metrics is prometheus_client's label map; there is no public "list children"
        known = [labels[0] for labels in list(self.ingest_lag._metrics)]
        for loop in known:
            if loop not in supervised:
                self.ingest_lag.remove(loop)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


@attrs.frozen
class ListenerConfig:
    """Where ``/metrics`` and ``/healthz`` listen, and the token guarding them."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = attrs.field(default=None, repr=False)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "ops-manager-supervise"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the supervisor's stderr is one JSON line per tick."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if not self._allowed():
            return
        if path == "/metrics":
            self._send(200, self.server.metrics.render(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            ok, text = self.server.health()
            self._send(200 if ok else 503, (text + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _allowed(self) -> bool:
        token = self.server.config.token
        if token:
            auth = self.headers.get("Authorization") or ""
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            if given is None or not token_matches(given, token.encode("utf-8")):
                self._send(401, b"missing or invalid token\n", "text/plain; charset=utf-8")
                return False
            return True
        host = (
            (self.headers.get("Host") or "").rsplit(":", 1)[0] if self.headers.get("Host") else ""
        )
        if host.startswith("["):
            host = host.strip("[]")
        if host and not is_loopback(host):
            self._send(403, b"Host must be a loopback name\n", "text/plain; charset=utf-8")
            return False
        return True

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        owner: tuple[SuperviseMetrics, ListenerConfig, Callable[[], tuple[bool, str]]],
        address: tuple[str, int],
        family: int,
    ) -> None:
        self.address_family = family
        self.metrics, self.config, self.health = owner
        super().__init__(address, _Handler)


class MetricsListener:
    """``/metrics`` and ``/healthz`` on a background thread until :meth:`close`."""

    def __init__(
        self,
        metrics: SuperviseMetrics,
        config: ListenerConfig,
        health: Callable[[], tuple[bool, str]],
    ) -> None:
        if not is_loopback(config.host) and not config.token:
            raise OpsError(
                f"--metrics-host {config.host} is not loopback: set a token "
                "(--metrics-token or $OPS_MANAGER_METRICS_TOKEN)"
            )
        self._server = bind_server(_Server, (metrics, config, health), config.host, config.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="supervise-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port`` as bound (the real port when 0 was asked for)."""
        raw, port = self._server.server_address[:2]
        host = raw.decode() if isinstance(raw, bytes) else str(raw)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


def health_verdict(last_finished: float | None, interval: float, now: float) -> tuple[bool, str]:
    """``/healthz``: ok while the last tick finished within 3 intervals (monotonic times);
    503 before the first tick has finished (a readiness probe then waits for tick 1)."""
    if last_finished is None:
        return False, "starting: no tick finished yet"
    age = now - last_finished
    if age <= 3 * interval:
        return True, f"ok: last tick finished {age:.1f}s ago"
    return False, f"stale: last tick finished {age:.1f}s ago (> 3 x {interval:g}s)"


__all__ = [
    "HEALTH_VALUES",
    "ListenerConfig",
    "MetricsListener",
    "SuperviseMetrics",
    "health_verdict",
]
