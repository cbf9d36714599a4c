"""Alert dispatch inside supervise ticks: notification metrics and Retry-After across ticks."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from ops_manager.testing import LoopbackReceiver, Reply
from tests.fleet_fixtures import make_fleet_repo
from tests.supervise_process import SuperviseProcess


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_retry_after_is_honoured_across_ticks_and_counted(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", ["loop-a"], heartbeat_ages={"loop-a": 900})
    config = tmp_path / "sinks.json"
    config.write_text(
        json.dumps(
            {
                "schemaVersion": "v1",
                "defaultMinSeverity": "warning",
                "sinks": {
                    "ops-webhook": {
                        "enabled": True,
                        "type": "webhook",
                        "urlEnv": "SUP_WEBHOOK_URL",
                        "timeoutSeconds": 5,
                    }
                },
                "routing": {
                    "defaultSinks": ["ops-webhook"],
                    "categorySeverity": {"health_critical": "critical"},
                    "routes": [],
                },
                # a Retry-After above maxRetryAfterSeconds is not waited for inside the run:
                # the notification goes to the outbox, due when the sink asked
                "delivery": {"maxAttempts": 1, "maxRetryAfterSeconds": 1},
            },
            indent=2,
        )
    )
    with LoopbackReceiver([Reply.retry_after(5)], name="webhook") as hook:
        env = {
            "OPS_MANAGER_ALERTS_ENABLED": "true",
            "OPS_MANAGER_ALERT_SINKS_FILE": str(config),
            "SUP_WEBHOOK_URL": hook.url_for("/hook"),
        }
        with SuperviseProcess(repo, args=["--interval", "0.5"], env=env).running() as sup:
            sup.wait_for(lambda ticks: any(t["outboxPending"] == 1 for t in ticks))
            pending = _samples(sup.metrics_url)
            assert pending[("ops_manager_alert_outbox_pending", ())] == 1
            failed = ("outcome", "failed"), ("sink", "ops-webhook")
            assert pending[("ops_manager_alert_notifications_total", failed)] == 1
            ticks = sup.wait_for(
                lambda ticks: (
                    any(t["outboxPending"] == 0 for t in ticks[1:])
                    and any(t["outboxPending"] == 1 for t in ticks)
                ),
                timeout=60,
            )
            done = _samples(sup.metrics_url)
            ok = ("outcome", "success"), ("sink", "ops-webhook")
            assert done[("ops_manager_alert_notifications_total", ok)] == 1
            assert done[("ops_manager_alert_outbox_pending", ())] == 0
    # one refused attempt, one retry: the ticks in between (every 0.5 s) did not resend
    # before the 5 s the sink asked for
    assert [r.status for r in hook.requests] == [429, 200]
    waiting = [t for t in ticks if t["outboxPending"] == 1]
    assert len(waiting) >= 2
