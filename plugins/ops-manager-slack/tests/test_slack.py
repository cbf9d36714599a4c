"""The Slack sink: the shared contract suite, its exact wire format, one real POST."""

from __future__ import annotations

import json
from typing import Any

import ops_manager_slack
import pytest
import requests
from ops_manager_slack import SlackSink

from ops_manager.sinks import SinkConfigError, get_sink
from ops_manager.testing import LoopbackReceiver, SinkContract, make_event

URL = "https://hooks.slack.example.test/services/T000/B000/s3cr3tSlackToken"
CONFIG: dict[str, Any] = {
    "enabled": True,
    "type": "slack",
    "webhookUrlEnv": "OPS_MANAGER_ALERT_SLACK_WEBHOOK_URL",
    "channel": "#ops-alerts",
    "username": "ops-manager",
    "iconEmoji": ":rotating_light:",
    "timeoutSeconds": 5,
}
ENV = {"OPS_MANAGER_ALERT_SLACK_WEBHOOK_URL": URL}


class TestSlackContract(SinkContract):
    sink = SlackSink()
    plugin = ops_manager_slack
    sample_config = CONFIG
    sample_env = ENV
    invalid_configs = (
        ({**CONFIG, "channel": 5}, "channel must be a string"),
        ({**CONFIG, "iconEmoji": [":x:"]}, "iconEmoji must be a string"),
        (
            {k: v for k, v in CONFIG.items() if k != "webhookUrlEnv"},
            "webhookUrlEnv must name an env var",
        ),
    )


def test_exact_body_for_a_fixed_event() -> None:
    request = SlackSink().build_request("slack-default", CONFIG, make_event(), ENV)
    assert request.url == URL
    assert dict(request.headers) == {"Content-Type": "application/json"}
    section = (
        "*Ops Manager Alert*\n"
        "Category: `health_critical`\n"
        "Severity: `critical`\n"
        "Loop: `demo-loop`\n"
        "Run: `run-123`\n"
        "Trace: `trace-contract-1`\n"
        "Reason codes: `ingest_stale`"
    )
    expected = {
        "text": "[ops-manager][critical] health_critical loop=demo-loop run=run-123 "
        "trace=trace-contract-1",
        "channel": "#ops-alerts",
        "username": "ops-manager",
        "icon_emoji": ":rotating_light:",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "Escalation timestamp: `2026-02-22T12:00:00Z`"},
                    {"type": "mrkdwn", "text": "Trace: `trace-contract-1`"},
                ],
            },
        ],
    }
    assert request.body == json.dumps(expected, separators=(",", ":")).encode()


def test_newlines_are_real_not_backslash_n() -> None:
    body = SlackSink().build_request("s", CONFIG, make_event(), ENV).body
    text = json.loads(body)["blocks"][0]["text"]["text"]
    assert "\n" in text and "\\n" not in text
    assert b"\\\\n" not in body


def test_resolve_renders_as_resolved() -> None:
    body = json.loads(
        SlackSink().build_request("s", CONFIG, make_event(action="resolve"), ENV).body
    )
    assert body["text"].startswith("[resolved] [ops-manager][critical] health_critical")
    assert body["blocks"][0]["text"]["text"].startswith("*Ops Manager Alert resolved*\n")


def test_optional_fields_are_omitted_when_absent_or_empty() -> None:
    config = {"enabled": True, "type": "slack", "webhookUrlEnv": "X", "channel": ""}
    event = make_event(run_id=None, reason_codes=(), escalation_timestamp=None, summary="")
    body = json.loads(SlackSink().build_request("s", config, event, {"X": URL}).body)
    assert list(body) == ["text", "blocks"]
    assert "run=" not in body["text"]
    assert "Run:" not in body["blocks"][0]["text"]["text"]
    assert "Reason codes" not in body["blocks"][0]["text"]["text"]
    assert body["blocks"][1]["elements"][0]["text"] == "Escalation timestamp unavailable"


def test_mrkdwn_control_characters_are_escaped() -> None:
    event = make_event(reason_codes=["a<!channel>&b"], loop_id="x>y")
    body = json.loads(SlackSink().build_request("s", CONFIG, event, ENV).body)
    assert "`a&lt;!channel&gt;&amp;b`" in body["blocks"][0]["text"]["text"]
    assert "loop=x&gt;y" in body["text"]


def test_long_sections_fit_the_block_kit_limit() -> None:
    event = make_event(reason_codes=[f"reason_{i}" for i in range(400)])
    body = json.loads(SlackSink().build_request("s", CONFIG, event, ENV).body)
    assert len(body["blocks"][0]["text"]["text"]) <= 3000


def test_pacing_and_destination() -> None:
    sink = SlackSink()
    assert sink.min_interval_seconds == 1.0
    assert sink.destination_key(CONFIG, ENV) == URL
    with pytest.raises(SinkConfigError, match="OPS_MANAGER_ALERT_SLACK_WEBHOOK_URL"):
        sink.destination_key(CONFIG, {})


def test_missing_webhook_url_names_the_env_var() -> None:
    with pytest.raises(
        SinkConfigError, match="slack webhook env is unset: OPS_MANAGER_ALERT_SLACK_WEBHOOK_URL"
    ):
        SlackSink().build_request("s", CONFIG, make_event(), {})


def test_registered_through_the_entry_point() -> None:
    assert isinstance(get_sink("slack"), SlackSink)


def test_a_real_http_server_accepts_the_request() -> None:
    request = SlackSink().build_request("s", CONFIG, make_event(), ENV)
    with LoopbackReceiver() as receiver:
        response = requests.post(
            receiver.url_for("/services/T000/B000/x"),
            data=request.body,
            headers=dict(request.headers),
            timeout=5,
        )
        got = receiver.wait_for(1)[0]
    assert (response.status_code, response.text) == (200, "ok")  # what Slack answers
    assert got.body == request.body
    assert got.json()["blocks"][0]["text"]["type"] == "mrkdwn"
