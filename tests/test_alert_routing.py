"""The pure alert reducer (``ops_manager.reducers.alerts``): routing, per-row decisions,
episodes, keys, delivery arithmetic, the outbox fold — and ``alert-route-test`` on top.

Decision tables name every reason: ``severity_below_min``, ``no_dispatchable_sinks``,
``missing_secret`` (per sink, DECISIONS Q-5), ``invalid_escalation_json`` (BUG-2),
``missing_escalation_category``, ``route_resolution_failed``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager.cli import main
from ops_manager.errors import OpsError
from ops_manager.reducers import alerts as A
from ops_manager.reducers.alerts import (
    AlertConfig,
    Conditions,
    EscalationRow,
    RouteFailure,
    build_config,
    decide,
    parse_row,
    resolve_route,
)

# --- a config built in memory (pure: no plugins involved) ---------------------------------


def make_config(**overrides: Any) -> AlertConfig:
    cfg: dict[str, Any] = {
        "schemaVersion": "v1",
        "defaultMinSeverity": "warning",
        "sinks": {
            "hook": {"enabled": True, "type": "webhook", "urlEnv": "HOOK_URL"},
            "chat": {"enabled": True, "type": "slack", "webhookUrlEnv": "CHAT_URL"},
            "pager": {
                "enabled": True,
                "type": "pagerduty_events",
                "routingKeyEnv": "PAGER_KEY",
            },
            "off": {"enabled": False, "type": "webhook", "urlEnv": "OFF_URL"},
        },
        "routing": {
            "defaultSinks": ["hook"],
            "categorySeverity": {
                "health_degraded": "warning",
                "health_critical": "critical",
                "noisy": "info",
            },
            "routes": [
                {
                    "category": "health_critical",
                    "sinks": ["pager", "chat"],
                    "minSeverity": "critical",
                },
                {"category": "health_degraded", "sinks": ["chat"], "enabled": True},
                {"category": "only_off", "sinks": ["off"]},
                {"category": "empty_sinks", "sinks": []},
                {
                    "category": "gated",
                    "sinks": ["chat"],
                    "minSeverity": "critical",
                    "enabled": False,
                },
                {"category": "gated", "sinks": ["pager"], "minSeverity": "warning"},
            ],
        },
    }
    cfg.update(overrides)
    return build_config(cfg, "mem.json")


CONFIG = make_config()
ALL_PRESENT = {"HOOK_URL": (), "CHAT_URL": ()}
NONE_MISSING: dict[str, tuple[str, ...]] = {}


ROUTE_TABLE = [
    # category, severity, eventSeverity, minSeverity, reason, selected, dispatchable
    ("health_critical", None, "critical", "critical", None, ["pager", "chat"], ["pager", "chat"]),
    (
        "health_critical",
        "warning",
        "warning",
        "critical",
        "severity_below_min",
        ["pager", "chat"],
        [],
    ),
    ("health_degraded", None, "warning", "warning", None, ["chat"], ["chat"]),
    ("health_degraded", "info", "info", "warning", "severity_below_min", ["chat"], []),
    ("noisy", None, "info", "warning", "severity_below_min", ["hook"], []),
    ("unknown_category", None, "warning", "warning", None, ["hook"], ["hook"]),
    ("ordering_drift_detected", None, "warning", "warning", None, ["hook"], ["hook"]),
    ("only_off", None, "warning", "warning", "no_dispatchable_sinks", ["off"], []),
    ("empty_sinks", None, "warning", "warning", None, ["hook"], ["hook"]),
    # BUG-1: the disabled "gated" route is skipped, the next one matches
    ("gated", "warning", "warning", "warning", None, ["pager"], ["pager"]),
]


@pytest.mark.parametrize(
    ("category", "severity", "event", "minimum", "reason", "selected", "dispatchable"),
    ROUTE_TABLE,
)
def test_route_table(
    category: str,
    severity: str | None,
    event: str,
    minimum: str,
    reason: str | None,
    selected: list[str],
    dispatchable: list[str],
) -> None:
    route = resolve_route(CONFIG, category, severity)
    assert (route.event_severity, route.min_severity, route.reason) == (event, minimum, reason)
    assert [s.id for s in route.selected] == selected
    assert [s.id for s in route.dispatchable] == dispatchable
    assert route.should_dispatch == (reason != "severity_below_min")


def test_route_rejects_an_invalid_severity() -> None:
    with pytest.raises(OpsError, match="--severity must be one of: info, warning, critical"):
        resolve_route(CONFIG, "health_degraded", "loud")


def test_duplicate_sink_ids_are_kept_in_order() -> None:
    cfg = make_config()
    raw = dict(cfg.raw)
    raw["routing"] = {**raw["routing"], "routes": [{"category": "x", "sinks": ["chat", "chat"]}]}
    route = resolve_route(build_config(raw, "m"), "x")
    assert [s.id for s in route.selected] == ["chat", "chat"]


# --- rows --------------------------------------------------------------------------------


ROW_TABLE = [
    # raw line, kind
    ("", "blank"),
    ("   \t", "blank"),
    ("{not json", "invalid"),
    ('"a string"', "invalid"),  # BUG-2: valid JSON, not an object
    ("[1,2]", "invalid"),
    ("5", "invalid"),
    ("true", "invalid"),
    ('{"category":"x","v":NaN}', "invalid"),
    ("null", "no_category"),
    ("{}", "no_category"),
    ('{"category":""}', "no_category"),
    ('{"category":false}', "no_category"),
    ('{"category":7}', "no_category"),
    ('{"category":"health_degraded"}', "ok"),
]


@pytest.mark.parametrize(("raw", "kind"), ROW_TABLE)
def test_row_classification(raw: str, kind: str) -> None:
    assert parse_row(3, raw).kind == kind


def _row(category: str = "health_degraded", **fields: Any) -> EscalationRow:
    obj = {"timestamp": "2026-11-22T00:00:00Z", "loopId": "demo", "category": category, **fields}
    return parse_row(1, json.dumps(obj))


DECIDE_TABLE = [
    # row, route (or a failure), missing-secret map, outcome, reason, per-sink (id, send, reason)
    (parse_row(1, ""), None, NONE_MISSING, "skip_blank", None, []),
    (parse_row(1, "[1]"), None, NONE_MISSING, "fail", "invalid_escalation_json", []),
    (parse_row(1, "{}"), None, NONE_MISSING, "fail", "missing_escalation_category", []),
    (
        _row(),
        RouteFailure("error: invalid config"),
        NONE_MISSING,
        "fail",
        "route_resolution_failed",
        [],
    ),
    (
        _row(),
        resolve_route(CONFIG, "health_degraded", "info"),
        NONE_MISSING,
        "skip",
        "severity_below_min",
        [],
    ),
    (
        _row("only_off"),
        resolve_route(CONFIG, "only_off"),
        NONE_MISSING,
        "skip",
        "no_dispatchable_sinks",
        [],
    ),
    (
        _row("health_critical"),
        resolve_route(CONFIG, "health_critical"),
        NONE_MISSING,
        "deliver",
        None,
        [("pager", True, None), ("chat", True, None)],
    ),
    # Q-5: only the sink lacking its secret is blocked; the other still delivers
    (
        _row("health_critical"),
        resolve_route(CONFIG, "health_critical"),
        {"pager": ("PAGER_KEY",), "chat": ()},
        "deliver",
        None,
        [("pager", False, "missing_secret"), ("chat", True, None)],
    ),
]


@pytest.mark.parametrize(("row", "route", "missing", "outcome", "reason", "sinks"), DECIDE_TABLE)
def test_decide_table(
    row: EscalationRow,
    route: Any,
    missing: dict[str, tuple[str, ...]],
    outcome: str,
    reason: str | None,
    sinks: list[tuple[str, bool, str | None]],
) -> None:
    decision = decide(row, route, missing)
    assert (decision.outcome, decision.reason) == (outcome, reason)
    assert [(d.sink.id, d.send, d.reason) for d in decision.sinks] == sinks


def test_missing_secret_messages_use_the_contract_wording() -> None:
    route = resolve_route(CONFIG, "health_critical")
    decision = decide(
        _row("health_critical"), route, {"pager": ("PAGER_KEY",), "chat": ("CHAT_URL",)}
    )
    assert [d.message for d in decision.sinks] == [
        "pagerduty routing key env is unset",
        "slack webhook env is unset",
    ]
    hook = CONFIG.sink("hook")
    assert hook is not None and hook.missing_message(("HOOK_URL",)) == "webhook url env is unset"
    assert hook.missing_message(("OTHER",)) == "secret env var(s) are unset: OTHER"


def test_row_outcome_and_summary_status() -> None:
    assert A.row_outcome([True, True]) == ("dispatched", None)
    assert A.row_outcome([True, False]) == ("partial", "partial_dispatch_failure")
    assert A.row_outcome([False]) == ("failed", "dispatch_failed")
    assert A.summary_status(0, 0, 0) == "no_new_escalations"
    assert A.summary_status(2, 0, 0) == "success"  # everything skipped is success
    assert A.summary_status(2, 0, 1) == "failed"
    assert A.summary_status(2, 1, 1) == "partial"


def test_env_status_and_global_check() -> None:
    present = {"HOOK_URL": True, "CHAT_URL": False}
    assert A.env_status(CONFIG, present) == {
        "CHAT_URL": {"present": False},
        "HOOK_URL": {"present": True},
        "OFF_URL": {"present": False},
        "PAGER_KEY": {"present": False},
    }
    # the resolver's fail-closed check covers enabled sinks only
    assert A.missing_enabled_secrets(CONFIG, present) == ["CHAT_URL", "PAGER_KEY"]
    assert A.sink_missing_secrets(CONFIG, present)["hook"] == ()
    assert A.sink_missing_secrets(CONFIG, present)["chat"] == ("CHAT_URL",)


# --- episodes and keys -------------------------------------------------------------------


def test_health_degraded_and_critical_share_one_episode_until_healthy() -> None:
    episodes: A.Episodes = {}
    degraded = parse_row(
        4, json.dumps({"timestamp": "2026-11-22T00:00:00Z", "category": "health_degraded"})
    )
    critical = parse_row(
        9, json.dumps({"timestamp": "2026-11-22T00:05:00Z", "category": "health_critical"})
    )
    drift = parse_row(
        10, json.dumps({"timestamp": "2026-11-22T00:06:00Z", "category": "profile_drift_detected"})
    )
    episodes, k1 = A.episode_for_trigger(episodes, loop_id="demo", row=degraded, severity="warning")
    episodes, k2 = A.episode_for_trigger(
        episodes, loop_id="demo", row=critical, severity="critical"
    )
    episodes, k3 = A.episode_for_trigger(episodes, loop_id="demo", row=drift, severity="warning")
    assert k1 == k2 == "demo:health:2026-11-22T00:00:00Z:L4"
    assert k3 == "demo:drift:2026-11-22T00:06:00Z:L10"
    assert episodes["health"].severity == "critical" and episodes["health"].last_line == 9
    episodes = A.note_episode_sinks(episodes, "health_critical", ["pager", "chat", "pager"])
    assert episodes["health"].sinks == ("pager", "chat")
    # the stored form round-trips
    assert A.episodes_from_json(json.loads(json.dumps(A.episodes_to_json(episodes)))) == episodes
    # degraded → still open; healthy → health clears; drift unknown → stays open
    assert A.cleared_episodes(episodes, Conditions(health_status="degraded")) == []
    cleared = A.cleared_episodes(episodes, Conditions(health_status="healthy"))
    assert [e.family for e in cleared] == ["health"]
    cleared = A.cleared_episodes(
        episodes, Conditions(health_status="healthy", profile_drift_active=False)
    )
    assert [e.family for e in cleared] == ["health", "drift"]
    episodes = A.close_episode(episodes, "health")
    # a new problem opens a new episode with a new key
    again = parse_row(
        20, json.dumps({"timestamp": "2026-11-22T01:00:00Z", "category": "health_degraded"})
    )
    episodes, k4 = A.episode_for_trigger(episodes, loop_id="demo", row=again, severity="warning")
    assert k4 != k1


def test_other_families_and_unknown_categories() -> None:
    conds = Conditions(ordering_drift_active=False, divergence_active=False)
    for category in ("ordering_drift_detected", "divergence_detected"):
        row = parse_row(2, json.dumps({"category": category}))
        episodes, key = A.episode_for_trigger({}, loop_id="l", row=row, severity="warning")
        assert [e.dedup_key for e in A.cleared_episodes(episodes, conds)] == [key]
    row = parse_row(2, json.dumps({"category": "custom_thing", "timestamp": "T"}))
    episodes, key = A.episode_for_trigger({}, loop_id="l", row=row, severity="warning")
    assert episodes == {} and key == "l:custom_thing:T:L2"


def test_dedup_key_is_capped_at_255_characters() -> None:
    key = A.dedup_key_for("x" * 400, "health", "2026-11-22T00:00:00Z", 3)
    assert len(key) == 255
    assert key == A.dedup_key_for("x" * 400, "health", "2026-11-22T00:00:00Z", 3)
    assert key != A.dedup_key_for("x" * 400, "health", "2026-11-22T00:00:00Z", 4)


def test_notification_keys_are_stable_and_distinct() -> None:
    k = A.notification_key("demo", "demo:health:T:L1", "trigger", "L1")
    assert k == A.notification_key("demo", "demo:health:T:L1", "trigger", "L1")
    assert len(k) == 64 and int(k, 16) >= 0
    assert k != A.notification_key("demo", "demo:health:T:L1", "resolve", "r1")
    assert k != A.notification_key("demo", "demo:health:T:L1", "trigger", "L2")


def test_q19_absolute_paths_never_leave_the_machine() -> None:
    esc = {
        "stateFile": "/srv/repo/.superloop/ops-manager/demo/state.json",
        "healthFile": "/elsewhere/health.json",
        "nested": {"cursorFile": "/srv/repo/x.json", "text": "/srv/repo stays in prose"},
        "list": [{"driftStateFile": "/tmp/y"}],
        "relativeFile": "a/b.json",
    }
    out = A.redact_escalation(esc, "/srv/repo")
    assert out == {
        "stateFile": ".superloop/ops-manager/demo/state.json",
        "nested": {"cursorFile": "x.json", "text": "/srv/repo stays in prose"},
        "list": [{}],
        "relativeFile": "a/b.json",
    }


def test_build_event_carries_identifiers_and_a_stable_key() -> None:
    esc = {
        "timestamp": "2026-11-22T00:00:00Z",
        "loopId": "demo",
        "category": "health_critical",
        "stateFile": "/srv/repo/s.json",
        "reasonCodes": ["ingest_stale"],
    }
    kwargs: dict[str, Any] = {
        "action": "trigger",
        "loop_id": "demo",
        "category": "health_critical",
        "severity": "critical",
        "trace_id": "t-1",
        "escalation": esc,
        "escalation_timestamp": esc["timestamp"],
        "dedup_key": "demo:health:2026-11-22T00:00:00Z:L1",
        "sequence": "L1",
        "run_id": "run-1",
        "repo": "/srv/repo",
    }
    a = A.build_event(emitted_at="2026-11-22T00:00:05Z", **kwargs)
    b = A.build_event(emitted_at="2026-11-22T09:00:00Z", **kwargs)
    assert a.idempotency_key == b.idempotency_key
    assert a.escalation["stateFile"] == "s.json"
    assert a.reason_codes == ("ingest_stale",)
    assert a.summary == "ops-manager health_critical (critical) loop=demo"
    assert A.event_from_json(json.loads(json.dumps(A.event_to_json(a)))) == a
    with pytest.raises(ValueError):
        A.event_from_json({"action": "trigger"})


def test_reason_codes_per_category() -> None:
    assert A.escalation_reason_codes(
        {"sequence": {"violations": ["a", "b"]}, "reasonCode": "x"}, "o"
    ) == (
        "a",
        "b",
        "x",
    )
    assert A.escalation_reason_codes(
        {"divergenceFlags": {"activeMismatch": True, "cursorRegression": False}}, "d"
    ) == ("activeMismatch",)
    assert A.escalation_reason_codes({}, "divergence_detected") == ("divergence_detected",)


# --- delivery arithmetic -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "success"),
        (202, "success"),
        (204, "success"),
        (301, "terminal"),
        (302, "terminal"),
        (400, "terminal"),
        (401, "terminal"),
        (404, "terminal"),
        (408, "retryable"),
        (410, "terminal"),
        (425, "retryable"),
        (429, "retryable"),
        (500, "retryable"),
        (503, "retryable"),
        (599, "retryable"),
    ],
)
def test_http_status_classes(status: int, kind: str) -> None:
    assert A.classify_http_status(status) == kind


def test_retry_after_parsing() -> None:
    now = 1_763_769_600.0  # 2025-11-22T00:00:00Z
    assert A.parse_retry_after(None, now) is None
    assert A.parse_retry_after("1", now) == 1.0
    assert A.parse_retry_after(" 120 ", now) == 120.0
    assert A.parse_retry_after("Sat, 22 Nov 2025 00:00:30 GMT", now) == 30.0
    assert A.parse_retry_after("Fri, 21 Nov 2025 00:00:00 GMT", now) == 0.0
    assert A.parse_retry_after("soon", now) is None
    assert A.parse_retry_after("-5", now) is None


def test_backoff_is_full_jitter_and_capped() -> None:
    assert A.backoff_delay(1, 0.5, 8.0, 0.0) == 0.0
    assert A.backoff_delay(1, 0.5, 8.0, 0.5) == 0.25
    assert A.backoff_delay(3, 0.5, 8.0, 0.5) == 1.0
    assert A.backoff_delay(50, 0.5, 8.0, 0.999) < 8.0


@given(
    attempt=st.integers(min_value=1, max_value=100),
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=100),
    u=st.floats(min_value=0, max_value=0.999999),
)
def test_backoff_property(attempt: int, base: float, cap: float, u: float) -> None:
    delay = A.backoff_delay(attempt, base, cap, u)
    assert 0 <= delay <= cap


def test_pacing_delay() -> None:
    assert A.pacing_delay(None, 10.0, 1.0) == 0.0
    assert A.pacing_delay(10.0, 10.25, 1.0) == 0.75
    assert A.pacing_delay(10.0, 12.0, 1.0) == 0.0
    assert A.pacing_delay(10.0, 10.0, 0.0) == 0.0


def test_redact_text_and_excerpt() -> None:
    assert A.redact_text("url https://h/s3cr3t and s3cr3t", ["s3cr3t", ""]) == (
        "url https://h/[redacted] and [redacted]"
    )
    assert A.excerpt("a\nb" + "x" * 400) is not None
    assert A.excerpt("a\nb") == "a b"
    assert A.excerpt("") is None


# --- the outbox fold ---------------------------------------------------------------------


def _rec(status: str, key: str = "k1", sink: str = "s", **extra: Any) -> dict[str, Any]:
    rec = A.outbox_record(
        now=1_800_000_000,
        status=status,
        key=key,
        sink_id=sink,
        sink_type="fakehook",
        event={"idempotencyKey": key, "dedupKey": "d", "action": "trigger"},
        attempts=extra.pop("attempts", 0),
        trace_id="t",
        **extra,
    )
    return rec


def test_outbox_fold() -> None:
    records = [
        _rec("queued", "k1"),
        _rec("queued", "k2"),
        _rec("retrying", "k1", attempts=4, reason_code="http_error", next_attempt_at=1_800_000_060),
        _rec("delivered", "k2", attempts=1),
        _rec("terminal", "k3"),  # never queued: ignored
        {"status": "weird", "idempotencyKey": "k1", "sinkId": "s"},
        _rec("queued", "k4"),
        _rec("gave_up", "k4", attempts=9),
    ]
    assert "event" in records[0] and "event" not in records[2]
    entries = A.fold_outbox(records)
    assert list(entries) == [("k1", "s"), ("k2", "s"), ("k4", "s")]
    k1 = entries[("k1", "s")]
    assert (k1.status, k1.attempts, k1.pending) == ("retrying", 4, True)
    assert k1.next_attempt_at == "2027-01-15T08:01:00Z"
    assert not k1.due(1_800_000_000) and k1.due(1_800_000_060)
    assert entries[("k2", "s")].status == "delivered"
    assert A.outbox_counts(entries.values()) == {
        "pendingCount": 1,
        "terminalCount": 0,
        "gaveUpCount": 1,
    }


# --- alert-route-test --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def _write_config(tmp_path: Path) -> Path:
    """A copy of the shipped config (every sink disabled: no plugin needed)."""
    shipped = Path(__file__).resolve().parent.parent / "config" / "ops-manager-alert-sinks.v1.json"
    cfg = json.loads(shipped.read_text(encoding="utf-8"))
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(cfg))
    return path


def test_route_test_single_case(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _write_config(tmp_path)
    code = main(["alert-route-test", "--config-file", str(path), "--category", "health_critical"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["decision"] == "skip" and doc["reasonCode"] == "no_dispatchable_sinks"
    assert doc["via"] == "routes[0]" and doc["matchedRoute"] == 0
    assert [(s["id"], s["receives"], s["reason"]) for s in doc["sinks"]] == [
        ("pagerduty-default", False, "sink_disabled"),
        ("slack-default", False, "sink_disabled"),
    ]


def test_route_test_cases_file_with_expectations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _write_config(tmp_path)
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "# routing expectations for CI\n"
        '{"category":"health_critical","severity":"critical","expectSinks":[],"expectReason":"no_dispatchable_sinks"}\n'
        "\n"
        '{"category":"health_degraded","severity":"info","expectReason":"severity_below_min"}\n'
        '{"category":"ordering_drift_detected"}\n',
        encoding="utf-8",
    )
    code = main(["alert-route-test", "--config-file", str(path), "--cases-file", str(cases)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["line"] for d in docs] == [2, 4, 5]
    assert [d.get("pass") for d in docs] == [True, True, None]
    assert docs[2]["via"] == "defaultSinks" and docs[2]["sinks"][0]["id"] == "webhook-default"
    # a mismatch exits 1 and says which line
    cases.write_text('{"category":"health_critical","expectSinks":["pagerduty-default"]}\n')
    code = main(["alert-route-test", "--config-file", str(path), "--cases-file", str(cases)])
    out, err = capsys.readouterr()
    assert code == 1
    failed = json.loads(out)
    assert (failed["pass"], failed["line"]) == (False, 1)
    # the case objects are the failure document: no extra error line
    assert err == ""


def test_route_test_with_enabled_sinks_and_env_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops_manager.plugins import get_plugin_manager
    from tests.test_alert_config import FakeSinksPlugin, FakeUrlSink

    cfg = {
        "schemaVersion": "v1",
        "defaultMinSeverity": "warning",
        "sinks": {
            "a": {"enabled": True, "type": "fakehook", "urlEnv": "TEST_ROUTE_A"},
            "b": {"enabled": True, "type": "fakehook", "urlEnv": "TEST_ROUTE_B"},
        },
        "routing": {
            "defaultSinks": ["a"],
            "categorySeverity": {},
            "routes": [{"category": "x", "sinks": ["a", "b"]}],
        },
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    plugin = FakeSinksPlugin(FakeUrlSink("fakehook"))
    pm = get_plugin_manager()
    pm.register(plugin, name="test-route-fakes")
    try:
        monkeypatch.setenv("TEST_ROUTE_A", "http://127.0.0.1:9/a")
        base = ["alert-route-test", "--config-file", str(path), "--category", "x"]
        assert main(base) == 0
        assert json.loads(capsys.readouterr()[0])["receivingSinks"] == ["a", "b"]
        assert main([*base, "--env-check"]) == 0
        doc = json.loads(capsys.readouterr()[0])
        assert doc["receivingSinks"] == ["a"]
        assert doc["sinks"][1] == {
            "id": "b",
            "type": "fakehook",
            "enabled": True,
            "receives": False,
            "reason": "missing_secret",
            "missingSecrets": ["TEST_ROUTE_B"],
        }
    finally:
        pm.unregister(plugin)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--category or --cases-file is required"),
        (
            ["--category", "x", "--cases-file", "c"],
            "--category cannot be combined with --cases-file",
        ),
        (
            ["--cases-file", "/nonexistent/c.jsonl"],
            "routing cases file not found: /nonexistent/c.jsonl",
        ),
    ],
)
def test_route_test_argument_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["alert-route-test", *argv]) == 1
    assert capsys.readouterr()[1] == f"error: {message}\n"


def test_route_test_bad_case_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = tmp_path / "c.jsonl"
    cases.write_text('{"category":"x"}\n{oops\n')
    assert main(["alert-route-test", "--cases-file", str(cases)]) == 1
    assert capsys.readouterr()[1] == f"error: invalid routing case JSON at line 2 of {cases}\n"


@settings(max_examples=60, deadline=None)
@given(
    category=st.sampled_from(["health_critical", "health_degraded", "noisy", "gated", "zzz"]),
    severity=st.sampled_from([None, "info", "warning", "critical"]),
)
def test_explain_route_agrees_with_decide(category: str, severity: str | None) -> None:
    """The route test and dispatch take the same decision (property)."""
    explained = A.explain_route(CONFIG, category, severity, NONE_MISSING)
    route = resolve_route(CONFIG, category, severity)
    decision = decide(_row(category), route, NONE_MISSING)
    sent = [d.sink.id for d in decision.sinks if d.send]
    assert explained["receivingSinks"] == sent
    if decision.outcome == "skip":
        assert explained["reasonCode"] == decision.reason
    # raising the severity never removes a receiving sink
    if severity is not None:
        higher = A.SEVERITIES[min(2, A.SEVERITY_RANK[severity])]
        more = A.explain_route(CONFIG, category, higher, NONE_MISSING)["receivingSinks"]
        assert set(sent) <= set(more)
