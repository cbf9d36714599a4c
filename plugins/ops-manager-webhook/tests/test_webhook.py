"""The webhook sink: the shared contract suite, its exact wire format, one real POST."""

from __future__ import annotations

import json
from typing import Any

import attrs
import ops_manager_webhook
import pytest
import requests
from ops_manager_webhook import WebhookSink, repo_label, scrub_local_paths

from ops_manager.sinks import AlertEvent, SinkConfigError, get_sink
from ops_manager.testing import LoopbackReceiver, SinkContract, make_event

URL = "https://hooks.example.test/ingest/s3cr3t-webhook-path"
TOKEN = "tok-s3cr3t-0123456789"
CONFIG: dict[str, Any] = {
    "enabled": True,
    "type": "webhook",
    "urlEnv": "OPS_MANAGER_ALERT_WEBHOOK_URL",
    "authTokenEnv": "OPS_MANAGER_ALERT_WEBHOOK_TOKEN",
    "timeoutSeconds": 5,
    "headers": {"Content-Type": "application/json", "X-Team": "payments"},
}
ENV = {"OPS_MANAGER_ALERT_WEBHOOK_URL": URL, "OPS_MANAGER_ALERT_WEBHOOK_TOKEN": TOKEN}


class TestWebhookContract(SinkContract):
    sink = WebhookSink()
    plugin = ops_manager_webhook
    sample_config = CONFIG
    sample_env = ENV
    invalid_configs = (
        ({**CONFIG, "headers": ["X-A: b"]}, "headers must be an object"),
        ({**CONFIG, "headers": {"X-A": 1}}, "headers.X-A must be a string"),
        ({**CONFIG, "headers": {"X-A": "a\r\nX-Evil: 1"}}, "must not contain line breaks"),
        ({**CONFIG, "headers": {"Bad Name": "x"}}, "invalid header name"),
        ({**CONFIG, "headers": {"idempotency-key": "x"}}, "is set by ops-manager"),
        ({k: v for k, v in CONFIG.items() if k != "urlEnv"}, "urlEnv must name an env var"),
    )


def test_exact_body_and_headers_for_a_fixed_event() -> None:
    request = WebhookSink().build_request("webhook-default", CONFIG, make_event(), ENV)
    assert request.url == URL
    # config Content-Type replaces the built-in one in place; bearer before config headers
    assert list(request.headers.items()) == [
        ("Content-Type", "application/json"),
        ("Authorization", f"Bearer {TOKEN}"),
        ("X-Team", "payments"),
        ("Idempotency-Key", "demo-loop:health_critical:trigger:2026-02-22T12:00:00Z"),
    ]
    assert request.body == (
        b'{"schemaVersion":"v1","emittedAt":"2026-02-22T12:00:05Z",'
        b'"source":{"repoPath":null,"loopId":"demo-loop","channel":"ops_manager_alert_dispatch",'
        b'"traceId":"trace-contract-1"},'
        b'"event":{"category":"health_critical","severity":"critical","action":"trigger",'
        b'"dedupKey":"demo-loop:health_critical"},'
        b'"sink":{"id":"webhook-default","type":"webhook"},'
        b'"escalation":{"timestamp":"2026-02-22T12:00:00Z","loopId":"demo-loop",'
        b'"traceId":"trace-contract-1","category":"health_critical","transport":"local",'
        b'"ingestStatus":"success","healthStatus":"critical","reasonCodes":["ingest_stale"],'
        b'"reasons":[{"code":"ingest_stale","severity":"critical","metric":"ingestLagSeconds",'
        b'"observed":"7200","threshold":"3600"}]},'
        b'"runId":"run-123","reasonCodes":["ingest_stale"]}'
    )


def test_upstream_keys_keep_their_order_and_additions_come_last() -> None:
    body = json.loads(WebhookSink().build_request("w", CONFIG, make_event(), ENV).body)
    assert list(body) == [
        "schemaVersion",
        "emittedAt",
        "source",
        "event",
        "sink",
        "escalation",
        "runId",
        "reasonCodes",
    ]
    assert list(body["source"]) == ["repoPath", "loopId", "channel", "traceId"]
    assert list(body["event"]) == ["category", "severity", "action", "dedupKey"]


def test_resolve_carries_the_same_dedup_key() -> None:
    sink = WebhookSink()
    trigger = json.loads(sink.build_request("w", CONFIG, make_event(), ENV).body)
    resolve = json.loads(sink.build_request("w", CONFIG, make_event(action="resolve"), ENV).body)
    assert resolve["event"]["action"] == "resolve"
    assert resolve["event"]["dedupKey"] == trigger["event"]["dedupKey"]


def test_no_token_configured_means_no_authorization_header() -> None:
    config = {k: v for k, v in CONFIG.items() if k not in ("authTokenEnv", "headers")}
    request = WebhookSink().build_request("w", config, make_event(), ENV)
    assert list(request.headers) == ["Content-Type", "Idempotency-Key"]
    assert WebhookSink().secret_envs(config) == ["OPS_MANAGER_ALERT_WEBHOOK_URL"]


def test_headers_are_deduplicated_case_insensitively_with_the_config_winning() -> None:
    config = {
        **CONFIG,
        "headers": {"content-type": "application/vnd.acme+json", "authorization": "Basic eA=="},
    }
    request = WebhookSink().build_request("w", config, make_event(), ENV)
    assert list(request.headers.items())[:2] == [
        ("content-type", "application/vnd.acme+json"),
        ("authorization", "Basic eA=="),
    ]
    assert len({name.lower() for name in request.headers}) == len(request.headers)


def test_missing_url_names_the_env_var() -> None:
    with pytest.raises(
        SinkConfigError, match="webhook url env is unset: OPS_MANAGER_ALERT_WEBHOOK_URL"
    ):
        WebhookSink().build_request("w", CONFIG, make_event(), {})


def test_local_paths_are_reduced_to_their_last_component() -> None:
    escalation = {
        "stateFile": "/home/op/repo/.superloop/ops-manager/demo-loop/state.json",
        "note": "read /srv/x/y.json failed; see C:\\Users\\op\\log.txt",
        "url": "https://example.test/a/b",
        "relative": "a/b/c",
        "list": ["/tmp/q", 3, None],
    }
    assert scrub_local_paths(escalation) == {
        "stateFile": "state.json",
        "note": "read y.json failed; see log.txt",
        "url": "https://example.test/a/b",
        "relative": "a/b/c",
        "list": ["q", 3, None],
    }


def test_repo_path_is_a_repo_name_never_a_local_path() -> None:
    class Named:
        """Stands in for an event that carries the repo (core passes a name)."""

        repo_name = "/home/op/work/payments"

    assert repo_label(Named()) == "payments"  # type: ignore[arg-type]
    assert repo_label(make_event()) is None
    if "repo_name" in {f.name for f in attrs.fields(AlertEvent)}:  # core passes the name
        event = make_event(repo_name="payments")
        body = json.loads(WebhookSink().build_request("w", CONFIG, event, ENV).body)
        assert body["source"]["repoPath"] == "payments"


def test_registered_through_the_entry_point() -> None:
    assert isinstance(get_sink("webhook"), WebhookSink)


def test_a_real_http_server_accepts_the_request() -> None:
    request = WebhookSink().build_request("w", CONFIG, make_event(), ENV)
    with LoopbackReceiver() as receiver:
        response = requests.post(
            receiver.url_for("/ingest"), data=request.body, headers=dict(request.headers), timeout=5
        )
        got = receiver.wait_for(1)[0]
    assert response.status_code == 200
    assert got.method == "POST" and got.path == "/ingest"
    assert got.body == request.body
    assert got.header_values("content-type") == ["application/json"]  # sent once
    assert got.header("Idempotency-Key") == make_event().idempotency_key
    assert got.json()["source"]["loopId"] == "demo-loop"
