"""The demo's supervise step: the demo loops as a fleet, supervised for a few ticks.

Each demo loop lives in its own runtime repo (as on a real sprite), so the demo serves each
repo with an in-process sprite service on 127.0.0.1 (a random token), writes a fleet
registry of ``sprite_service`` loops under ``<dir>/fleet``, and runs the same
:class:`~ops_manager.engine.supervise.Supervisor` and metrics listener as
``ops-manager supervise`` for ``ticks`` ticks, then scrapes its own ``/metrics`` once and
stops everything. Alert dispatch is off: the demo has no sink to page.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from ops_manager.engine.supervise import SuperviseSettings, Supervisor
from ops_manager.engine.supervise_metrics import ListenerConfig, MetricsListener, health_verdict

_TOKEN_ENV = "OPS_MANAGER_DEMO_SERVICE_TOKEN"


def supervise_demo(
    root: Path,
    repos: Mapping[str, Path],
    out: Callable[[str], object],
    *,
    ticks: int = 3,
    interval: float = 1.0,
) -> None:
    """Supervise the demo loops for ``ticks`` ticks and print what an operator would see."""
    from ops_manager.service import ServiceConfig, SpriteService

    token = secrets.token_hex(16)
    services: list[SpriteService] = []
    listener: MetricsListener | None = None
    try:
        urls: dict[str, str] = {}
        for loop, repo in repos.items():
            service = SpriteService(ServiceConfig(repo=repo, port=0, token=token, access_log=False))
            threading.Thread(target=service.serve_forever, daemon=True).start()
            services.append(service)
            urls[loop] = service.url
        fleet = root / "fleet"
        registry = fleet / ".superloop" / "ops-manager" / "fleet" / "registry.v1.json"
        registry.parent.mkdir(parents=True, exist_ok=True)
        loops = [
            {
                "loopId": loop,
                "transport": "sprite_service",
                "sprite": {"id": f"sprite-{loop}"},
                "service": {"baseUrl": url, "tokenEnv": _TOKEN_ENV, "timeoutSeconds": 10},
            }
            for loop, url in urls.items()
        ]
        doc = {"schemaVersion": "v1", "fleetId": "demo", "loops": loops}
        registry.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
        env[_TOKEN_ENV] = token
        env["OPS_MANAGER_ALERTS_ENABLED"] = "false"
        supervisor = Supervisor(
            SuperviseSettings(repo=fleet, interval=interval, max_parallel=3, jitter=0), env=env
        )
        listener = MetricsListener(
            supervisor.metrics,
            ListenerConfig(),
            lambda: health_verdict(supervisor.last_tick_finished, interval, time.monotonic()),
        )
        out(
            f"\n$ ops-manager supervise --repo {fleet} --interval {interval:g}"
            f"   (the main job; {ticks} ticks, then stopped)\n"
            f"  metrics: {listener.url}/metrics   health: {listener.url}/healthz\n"
        )
        for n in range(ticks):
            began = time.monotonic()
            summary = supervisor.tick()
            health = ", ".join(f"{v} {k}" for k, v in summary["health"].items())
            out(
                f"  tick {n + 1}: {summary['loops']} loops over sprite_service in "
                f"{summary['durationSeconds']:.2f}s, {summary['succeeded']} ok / "
                f"{summary['failed']} failed; health: {health}; "
                f"policy {summary.get('policyMode', '-')}\n"
            )
            if n + 1 < ticks:
                time.sleep(supervisor.next_delay(time.monotonic() - began))
        with urllib.request.urlopen(listener.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        wanted = ("ops_manager_loops{", "ops_manager_supervise_ticks_total")
        lines = [line for line in text.splitlines() if line.startswith(wanted)]
        out("  scraped /metrics:\n" + "".join(f"    {line}\n" for line in lines))
    finally:
        if listener is not None:
            listener.close()
        for service in services:
            service.shutdown()
            service.close()


__all__ = ["supervise_demo"]
