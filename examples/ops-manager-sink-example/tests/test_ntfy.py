"""Tests of the example ntfy sink: the ops-manager contract suite plus our own wire checks."""

from __future__ import annotations

import ops_manager_ntfy
import requests
from ops_manager_ntfy import NtfySink

from ops_manager.testing import LoopbackReceiver, SinkContract, make_event

TOPIC_URL = "https://ntfy.example.test/ops-s3cr3t-topic-91f2"
TOKEN = "tk_s3cr3t0123456789"
CONFIG = {
    "enabled": True,
    "type": "ntfy",
    "topicUrlEnv": "OPS_MANAGER_NTFY_TOPIC_URL",
    "tokenEnv": "OPS_MANAGER_NTFY_TOKEN",
    "timeoutSeconds": 5,
}
ENV = {"OPS_MANAGER_NTFY_TOPIC_URL": TOPIC_URL, "OPS_MANAGER_NTFY_TOKEN": TOKEN}


class TestNtfyContract(SinkContract):
    """Step 4 of the walk-through: every check ops-manager asks of a sink, for free."""

    sink = NtfySink()
    plugin = ops_manager_ntfy
    sample_config = CONFIG
    sample_env = ENV
    body_is_json = False  # ntfy takes the message as plain text
    invalid_configs = (({**CONFIG, "tokenEnv": "lower"}, "tokenEnv"),)


def test_trigger_wire_format() -> None:
    request = NtfySink().build_request("ntfy-phone", CONFIG, make_event(), ENV)
    assert request.url == TOPIC_URL
    assert dict(request.headers) == {
        "Content-Type": "text/plain; charset=utf-8",
        "Title": "health_critical on demo-loop",
        "Priority": "5",
        "Tags": "rotating_light,ops-manager",
        "Authorization": f"Bearer {TOKEN}",
    }
    assert request.body.decode() == (
        "health_critical (critical) on loop demo-loop\n"
        "run: run-123\n"
        "trace: trace-contract-1\n"
        "reasons: ingest_stale\n"
        "loop demo-loop is critical: ingest_stale"
    )


def test_resolve_is_quiet_and_marked() -> None:
    request = NtfySink().build_request("n", CONFIG, make_event(action="resolve"), ENV)
    assert request.headers["Title"] == "[resolved] health_critical on demo-loop"
    assert request.headers["Priority"] == "3"
    assert request.body.startswith(b"resolved: health_critical")


def test_a_real_http_server_accepts_it() -> None:
    request = NtfySink().build_request("n", CONFIG, make_event(), ENV)
    with LoopbackReceiver() as receiver:
        response = requests.post(
            receiver.url_for("/ops-topic"),
            data=request.body,
            headers=dict(request.headers),
            timeout=5,
        )
        got = receiver.wait_for(1)[0]
    assert response.status_code == 200
    assert got.body == request.body
    assert got.header("Priority") == "5"
