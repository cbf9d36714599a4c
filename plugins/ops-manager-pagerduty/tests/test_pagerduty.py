"""The PagerDuty sink: the shared contract suite, its exact wire format, one real POST."""

from __future__ import annotations

import json
from typing import Any

import ops_manager_pagerduty
import pytest
import requests
from ops_manager_pagerduty import DEFAULT_ENDPOINT, PagerDutySink, wire_dedup_key

from ops_manager.sinks import SinkConfigError, get_sink
from ops_manager.testing import LoopbackReceiver, Reply, SinkContract, make_event

KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"
CONFIG: dict[str, Any] = {
    "enabled": True,
    "type": "pagerduty_events",
    "routingKeyEnv": "OPS_MANAGER_ALERT_PAGERDUTY_ROUTING_KEY",
    "source": "superloop-ops-manager",
    "component": "ops-manager",
    "group": "loop-run",
    "class": "escalation",
    "timeoutSeconds": 5,
}
ENV = {"OPS_MANAGER_ALERT_PAGERDUTY_ROUTING_KEY": KEY}


class TestPagerDutyContract(SinkContract):
    sink = PagerDutySink()
    plugin = ops_manager_pagerduty
    sample_config = CONFIG
    sample_env = ENV
    #: Events v2 carries the integration key in the body: that is the wire format
    body_secret_envs = ("OPS_MANAGER_ALERT_PAGERDUTY_ROUTING_KEY",)
    invalid_configs = (
        ({**CONFIG, "endpoint": "ftp://x"}, "endpoint must be an http(s) URL"),
        ({**CONFIG, "endpoint": 7}, "endpoint must be an http(s) URL"),
        ({**CONFIG, "source": 1}, "source must be a string"),
        ({**CONFIG, "class": ["x"]}, "class must be a string"),
    )


def test_exact_trigger_body_for_a_fixed_event() -> None:
    request = PagerDutySink().build_request("pagerduty-default", CONFIG, make_event(), ENV)
    assert request.url == DEFAULT_ENDPOINT == "https://events.pagerduty.com/v2/enqueue"
    assert dict(request.headers) == {"Content-Type": "application/json"}
    assert request.body == (
        b'{"routing_key":"' + KEY.encode() + b'","event_action":"trigger",'
        b'"dedup_key":"demo-loop:health_critical",'
        b'"payload":{"summary":"ops-manager health_critical (critical) loop=demo-loop '
        b'run=run-123 reasons=ingest_stale",'
        b'"severity":"critical","source":"superloop-ops-manager",'
        b'"timestamp":"2026-02-22T12:00:00Z","component":"ops-manager","group":"loop-run",'
        b'"class":"escalation","custom_details":{"loopId":"demo-loop","runId":"run-123",'
        b'"traceId":"trace-contract-1","category":"health_critical",'
        b'"reasonCodes":["ingest_stale"],"escalation":{"timestamp":"2026-02-22T12:00:00Z",'
        b'"loopId":"demo-loop","traceId":"trace-contract-1","category":"health_critical",'
        b'"transport":"local","ingestStatus":"success","healthStatus":"critical",'
        b'"reasonCodes":["ingest_stale"],"reasons":[{"code":"ingest_stale",'
        b'"severity":"critical","metric":"ingestLagSeconds","observed":"7200",'
        b'"threshold":"3600"}]}}}}'
    )


def test_resolve_is_key_action_and_dedup_key_only() -> None:
    request = PagerDutySink().build_request("p", CONFIG, make_event(action="resolve"), ENV)
    assert json.loads(request.body) == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": "demo-loop:health_critical",
    }


@pytest.mark.parametrize("ours", ["info", "warning", "critical"])
def test_severity_mapping(ours: str) -> None:
    body = json.loads(
        PagerDutySink().build_request("p", CONFIG, make_event(severity=ours), ENV).body
    )
    assert body["payload"]["severity"] == ours  # identity onto critical|error|warning|info


def test_defaults_apply_when_fields_are_absent_and_empty_strings_stay() -> None:
    config = {"enabled": True, "type": "pagerduty_events", "routingKeyEnv": "K", "group": ""}
    body = json.loads(PagerDutySink().build_request("p", config, make_event(), {"K": KEY}).body)
    payload = body["payload"]
    assert (payload["source"], payload["component"], payload["group"], payload["class"]) == (
        "superloop-ops-manager",
        "ops-manager",
        "",
        "escalation",
    )


def test_timestamp_falls_back_to_emitted_at() -> None:
    event = make_event(escalation_timestamp=None)
    body = json.loads(PagerDutySink().build_request("p", CONFIG, event, ENV).body)
    assert body["payload"]["timestamp"] == "2026-02-22T12:00:05Z"


def test_endpoint_is_configurable() -> None:
    config = {**CONFIG, "endpoint": "http://127.0.0.1:9/v2/enqueue"}
    assert PagerDutySink().build_request("p", config, make_event(), ENV).url == config["endpoint"]
    assert PagerDutySink().validate_config("p", config) == []


def test_long_dedup_keys_are_shortened_stably() -> None:
    key = "loop-" + "x" * 400 + ":health_critical"
    short = wire_dedup_key(key)
    assert len(short) <= 255
    assert short == wire_dedup_key(key)
    assert short != wire_dedup_key(key + "y")
    assert wire_dedup_key("demo-loop:health_critical") == "demo-loop:health_critical"


def test_summary_is_capped_at_1024_characters() -> None:
    body = json.loads(
        PagerDutySink()
        .build_request("p", CONFIG, make_event(reason_codes=["r" * 40] * 50), ENV)
        .body
    )
    assert len(body["payload"]["summary"]) <= 1024


def test_pacing_and_destination() -> None:
    sink = PagerDutySink()
    assert sink.min_interval_seconds == 0.5
    assert sink.destination_key(CONFIG, ENV) == KEY
    with pytest.raises(SinkConfigError, match="pagerduty routing key env is unset"):
        sink.destination_key(CONFIG, {})


def test_missing_routing_key_names_the_env_var_not_the_value() -> None:
    with pytest.raises(SinkConfigError) as info:
        PagerDutySink().build_request("p", CONFIG, make_event(), {})
    assert "OPS_MANAGER_ALERT_PAGERDUTY_ROUTING_KEY" in str(info.value)


def test_registered_through_the_entry_point() -> None:
    assert isinstance(get_sink("pagerduty_events"), PagerDutySink)


def test_a_real_http_server_accepts_the_request() -> None:
    accepted = Reply(
        202,
        b'{"status":"success","message":"Event processed","dedup_key":"demo-loop:health_critical"}',
        {"Content-Type": "application/json"},
    )
    with LoopbackReceiver(default=accepted) as receiver:
        config = {**CONFIG, "endpoint": receiver.url_for("/v2/enqueue")}
        for action in ("trigger", "resolve"):
            request = PagerDutySink().build_request("p", config, make_event(action=action), ENV)
            response = requests.post(
                request.url, data=request.body, headers=dict(request.headers), timeout=5
            )
            assert response.status_code == 202
        got = receiver.wait_for(2)
    assert [r.path for r in got] == ["/v2/enqueue", "/v2/enqueue"]
    assert [r.json()["event_action"] for r in got] == ["trigger", "resolve"]
    assert {r.json()["dedup_key"] for r in got} == {"demo-loop:health_critical"}
