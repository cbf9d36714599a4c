"""End to end: a loop goes critical, and people hear about it once, through every sink, even
through an outage (issue 4, seed 004).

Real pipeline, real HTTP on 127.0.0.1, no mocks: runtime repo → ``ops-manager reconcile``
(alerts enabled) → escalation → dispatch → the installed sink plugins
(``ops-manager-webhook``, ``-slack``, ``-pagerduty``, found through the entry-point group) →
three :class:`~ops_manager.testing.LoopbackReceiver` s that answer like a webhook consumer, a
Slack incoming webhook (``200 ok``) and the PagerDuty Events v2 endpoint (``202``).

1. ``alpha-loop`` goes critical (events stamped three hours ago): each receiver gets exactly
   one payload carrying the loop, run and trace ids and the severity; a second pass with
   the condition unchanged sends nothing; no absolute path of this machine is sent.
2. ``beta-loop`` goes critical while the receivers answer 503 / 429 + ``Retry-After``:
   reconcile passes keep exiting 0; nothing is accepted. They recover: further passes
   deliver from the outbox, every notification is accepted exactly once per idempotency key,
   always with the same key and the original payload.
3. ``alpha-loop`` recovers (fresh events): PagerDuty gets a ``resolve`` with the trigger's
   ``dedup_key``; the webhook and Slack get the resolve too.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ops_manager.engine.alert_dispatch")

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.testing import LoopbackReceiver, RecordedRequest, Reply
from tests.runtime_fixtures import (
    append_events,
    event,
    loop_start_data,
    make_runtime_repo,
)

BIG = "999999999"
TOKEN = "e2e-webhook-bearer-s3cr3t"
ROUTING_KEY = "e2e0routing0key0s3cr3t0123456789"
PD_ACCEPTED = Reply(
    202,
    b'{"status":"success","message":"Event processed"}',
    {"Content-Type": "application/json"},
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OPS_MANAGER_* variable of the caller's environment leaks into the test."""
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


@pytest.fixture
def receivers() -> Iterator[dict[str, LoopbackReceiver]]:
    with (
        LoopbackReceiver(name="webhook") as webhook,
        LoopbackReceiver(name="slack") as slack,
        LoopbackReceiver(name="pagerduty", default=PD_ACCEPTED) as pagerduty,
    ):
        yield {"webhook": webhook, "slack": slack, "pagerduty": pagerduty}


def _config(pagerduty_endpoint: str) -> dict[str, Any]:
    return {
        "schemaVersion": "v1",
        "defaultMinSeverity": "warning",
        "sinks": {
            "ops-webhook": {
                "enabled": True,
                "type": "webhook",
                "urlEnv": "E2E_WEBHOOK_URL",
                "authTokenEnv": "E2E_WEBHOOK_TOKEN",
                "timeoutSeconds": 5,
                "headers": {"Content-Type": "application/json", "X-Team": "payments"},
            },
            "ops-slack": {
                "enabled": True,
                "type": "slack",
                "webhookUrlEnv": "E2E_SLACK_WEBHOOK_URL",
                "channel": "#ops-alerts",
                "username": "ops-manager",
                "timeoutSeconds": 5,
            },
            "ops-pagerduty": {
                "enabled": True,
                "type": "pagerduty_events",
                "routingKeyEnv": "E2E_PAGERDUTY_ROUTING_KEY",
                "endpoint": pagerduty_endpoint,
                "timeoutSeconds": 5,
            },
        },
        "routing": {
            "defaultSinks": ["ops-webhook"],
            "categorySeverity": {
                "health_degraded": "warning",
                "health_critical": "critical",
                "divergence_detected": "warning",
                "profile_drift_detected": "warning",
            },
            "routes": [
                {
                    "category": "health_critical",
                    "sinks": ["ops-webhook", "ops-slack", "ops-pagerduty"],
                    "minSeverity": "critical",
                    "enabled": True,
                }
            ],
        },
        # small budgets so an outage ends a run quickly (the outbox keeps the rest)
        "delivery": {
            "maxAttempts": 2,
            "deadlineSeconds": 5,
            "backoffBaseSeconds": 0.05,
            "backoffMaxSeconds": 0.2,
            "maxRetryAfterSeconds": 1,
        },
    }


def _stale_repo(root: Path, loop: str, run: str) -> Path:
    """A runtime repo whose last event is three hours old (ingest_stale → critical)."""
    now = utc_now_epoch()
    events = [
        event(
            "loop_start",
            format_ts(now - 10800),
            loop_id=loop,
            run_id=run,
            iteration=0,
            data=loop_start_data(loop),
        ),
        event("iteration_start", format_ts(now - 10790), loop_id=loop, run_id=run),
    ]
    return make_runtime_repo(root, loop, events=events, run_id=run).resolve()


class Pipeline:
    """The CLI driven in-process, as an operator's cron would run it."""

    def __init__(self, capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
        self.capsys = capsys
        self.config_file = config_file

    def reconcile(self, repo: Path, loop: str, trace: str) -> tuple[int, dict[str, Any]]:
        code = main(
            [
                "reconcile",
                "--repo",
                str(repo),
                "--loop",
                loop,
                "--trace-id",
                trace,
                "--alerts-enabled",
                "true",
                "--alert-config-file",
                str(self.config_file),
                "--degraded-ingest-lag-seconds",
                "600",
                "--critical-ingest-lag-seconds",
                "3600",
                "--degraded-heartbeat-lag-seconds",
                BIG,
                "--critical-heartbeat-lag-seconds",
                BIG,
            ]
        )
        out, err = self.capsys.readouterr()
        assert TOKEN not in out + err and ROUTING_KEY not in out + err
        return code, json.loads(out) if out.strip() else {}

    def dispatch(self, repo: Path, loop: str, trace: str) -> dict[str, Any]:
        code = main(
            [
                "alert-dispatch",
                "--repo",
                str(repo),
                "--loop",
                loop,
                "--trace-id",
                trace,
                "--alert-config-file",
                str(self.config_file),
            ]
        )
        out, err = self.capsys.readouterr()
        assert code == 0, err
        assert TOKEN not in out + err and ROUTING_KEY not in out + err
        summary: dict[str, Any] = json.loads(out)
        return summary


def _for_loop(requests: list[RecordedRequest], loop: str) -> list[RecordedRequest]:
    """The requests about ``loop`` (every body names it)."""
    return [r for r in requests if loop.encode() in r.body]


def _assert_once_per_key(requests: list[RecordedRequest]) -> None:
    keys = [r.header("Idempotency-Key") for r in requests if r.accepted]
    assert None not in keys, "every request carries an Idempotency-Key"
    assert [k for k, n in Counter(keys).items() if n > 1] == []


def _machine_paths(tmp_path: Path) -> list[str]:
    return [str(tmp_path), str(Path.cwd())]


def test_critical_loop_reaches_every_sink_once_survives_an_outage_and_resolves(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    receivers: dict[str, LoopbackReceiver],
) -> None:
    webhook, slack, pagerduty = receivers["webhook"], receivers["slack"], receivers["pagerduty"]
    config_file = tmp_path / "alert-sinks.json"
    config_file.write_text(json.dumps(_config(pagerduty.url_for("/v2/enqueue"))), "utf-8")
    monkeypatch.setenv("E2E_WEBHOOK_URL", webhook.url_for("/hooks/ops"))
    monkeypatch.setenv("E2E_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("E2E_SLACK_WEBHOOK_URL", slack.url_for("/services/T000/B000/XXXX"))
    monkeypatch.setenv("E2E_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    pipeline = Pipeline(capsys, config_file)

    # --- 1. alpha goes critical: one payload per receiver, with the identifiers ---------
    alpha = _stale_repo(tmp_path / "alpha", "alpha-loop", "run-alpha")
    code, state = pipeline.reconcile(alpha, "alpha-loop", "trace-alpha-1")
    assert code == 0
    assert state["health"]["status"] == "critical"

    [hook] = webhook.wait_for(1)
    [chat] = slack.wait_for(1)
    [page] = pagerduty.wait_for(1)

    body = hook.json()
    assert hook.path == "/hooks/ops" and hook.accepted
    assert hook.header("Authorization") == f"Bearer {TOKEN}"
    assert hook.header_values("Content-Type") == ["application/json"]  # de-duplicated
    assert hook.header("X-Team") == "payments"
    assert body["source"]["loopId"] == "alpha-loop"
    assert body["source"]["traceId"] == "trace-alpha-1"
    assert body["source"]["repoPath"] == "alpha"  # the repo's name, never an absolute path
    assert body["runId"] == "run-alpha"
    assert body["event"]["category"] == "health_critical"
    assert body["event"]["severity"] == "critical"
    assert body["event"]["action"] == "trigger"
    assert "ingest_stale" in body["reasonCodes"]
    assert body["sink"] == {"id": "ops-webhook", "type": "webhook"}
    assert hook.header("Idempotency-Key")

    message = chat.json()
    assert chat.path == "/services/T000/B000/XXXX"
    assert message["text"].startswith("[ops-manager][critical] health_critical")
    for needle in ("loop=alpha-loop", "run=run-alpha", "trace=trace-alpha-1"):
        assert needle in message["text"]
    section = message["blocks"][0]["text"]["text"]
    assert "\n" in section and "\\n" not in section  # real newlines
    assert "`ingest_stale`" in section

    event_v2 = page.json()
    assert page.path == "/v2/enqueue" and page.status == 202
    assert event_v2["routing_key"] == ROUTING_KEY
    assert event_v2["event_action"] == "trigger"
    assert event_v2["payload"]["severity"] == "critical"
    assert event_v2["payload"]["timestamp"]
    details = event_v2["payload"]["custom_details"]
    assert (details["loopId"], details["runId"], details["traceId"]) == (
        "alpha-loop",
        "run-alpha",
        "trace-alpha-1",
    )
    alpha_dedup_key = event_v2["dedup_key"]
    assert alpha_dedup_key and len(alpha_dedup_key) <= 255

    for got in (hook, chat, page):  # no absolute path of this machine leaves it
        for local in _machine_paths(tmp_path):
            assert local.encode() not in got.body

    # unchanged condition: nothing new is sent
    code, _ = pipeline.reconcile(alpha, "alpha-loop", "trace-alpha-2")
    assert code == 0
    assert (len(webhook.requests), len(slack.requests), len(pagerduty.requests)) == (1, 1, 1)

    # --- 2. beta goes critical during an outage: nothing lost, once per key ------------
    webhook.script(default=503)
    slack.script(default=Reply.retry_after(1))
    pagerduty.script(default=Reply(503, b"upstream unavailable"))
    beta = _stale_repo(tmp_path / "beta", "beta-loop", "run-beta")
    for trace in ("trace-beta-1", "trace-beta-2"):
        code, state = pipeline.reconcile(beta, "beta-loop", trace)
        assert code == 0  # a sink outage never fails a reconcile (fail-open)
        assert state["health"]["status"] == "critical"
    for receiver in (webhook, slack, pagerduty):
        tried = _for_loop(receiver.requests, "beta-loop")
        assert tried, f"{receiver.name}: the notification was attempted during the outage"
        assert not [r for r in tried if r.accepted]
    assert any(r.status == 429 for r in slack.requests)

    webhook.script(default=200)
    slack.script(default=200)
    pagerduty.script(default=PD_ACCEPTED)
    deadline = time.monotonic() + 30
    passes = 0
    while time.monotonic() < deadline:
        passes += 1
        code, _ = pipeline.reconcile(beta, "beta-loop", f"trace-beta-recover-{passes}")
        assert code == 0
        if all(_for_loop(r.accepted(), "beta-loop") for r in (webhook, slack, pagerduty)):
            break
        time.sleep(0.5)  # wait until the outbox entries are due again
    for receiver in (webhook, slack, pagerduty):
        beta_requests = _for_loop(receiver.requests, "beta-loop")
        accepted = [r for r in beta_requests if r.accepted]
        assert len(accepted) == 1, f"{receiver.name}: delivered exactly once after the outage"
        # every attempt was the same notification: same key, same bytes
        assert {r.header("Idempotency-Key") for r in beta_requests} == {
            accepted[0].header("Idempotency-Key")
        }
        assert {r.body for r in beta_requests} == {accepted[0].body}
    assert webhook.accepted()[-1].json()["source"]["traceId"] == "trace-beta-1"

    # more passes after recovery (reconcile, or a manual alert-dispatch) send nothing twice
    before = [len(r.requests) for r in (webhook, slack, pagerduty)]
    code, _ = pipeline.reconcile(beta, "beta-loop", "trace-beta-after")
    assert code == 0
    summary = pipeline.dispatch(beta, "beta-loop", "trace-beta-manual")
    assert summary["status"] in ("success", "no_new_escalations")
    assert [len(r.requests) for r in (webhook, slack, pagerduty)] == before

    # --- 3. alpha recovers: PagerDuty resolves the incident with the same dedup_key ----
    append_events(
        alpha,
        "alpha-loop",
        [event("role_start", format_ts(utc_now_epoch()), loop_id="alpha-loop", run_id="run-alpha")],
    )
    code, state = pipeline.reconcile(alpha, "alpha-loop", "trace-alpha-3")
    assert code == 0
    assert state["health"]["status"] == "healthy"

    resolves = [
        p for p in (r.json() for r in pagerduty.accepted()) if p["event_action"] == "resolve"
    ]
    assert resolves == [
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": alpha_dedup_key}
    ]
    hook_resolves = [
        r.json() for r in _for_loop(webhook.accepted(), "alpha-loop") if b'"resolve"' in r.body
    ]
    assert [b["event"]["dedupKey"] for b in hook_resolves] == [body["event"]["dedupKey"]]
    assert any(
        r.json()["text"].startswith("[resolved]") for r in _for_loop(slack.accepted(), "alpha-loop")
    )

    for receiver in (webhook, slack, pagerduty):
        _assert_once_per_key(receiver.requests)
        for got in receiver.requests:
            for local in _machine_paths(tmp_path):
                assert local.encode() not in got.body
