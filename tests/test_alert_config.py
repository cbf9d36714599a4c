"""``ops-manager alert-sink-config``: precedence, fail-closed validation, output shapes
(``alerts.md`` §1-§2, R1-R7, BUG-1, Q-16, Q-25).

Sink types used here are fakes registered in-test (``fakehook``, ``fakepage``) or the
contract's own types with sinks DISABLED, so nothing depends on the sink plugins being
installed (a disabled sink of a contract type may lack its plugin).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager.cli import main
from ops_manager.engine.alert_config import (
    PACKAGED_ALERT_SINKS_FILE,
    config_path,
    load_alert_config,
)
from ops_manager.errors import OpsError
from ops_manager.hookspecs import hookimpl
from ops_manager.plugins import get_plugin_manager
from ops_manager.sinks import AlertEvent, Sink, SinkRequest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "ops-manager-alert-sinks.v1.json"
SCHEMA = ROOT / "schema" / "ops-manager-alert-sinks.config.schema.json"


# --- fakes -------------------------------------------------------------------------------


class FakeUrlSink:
    """A sink type whose target URL is in ``urlEnv`` (and optional ``tokenEnv``)."""

    package = "ops-manager-fake"

    def __init__(self, kind: str = "fakehook", min_interval: float = 0.0) -> None:
        self.type = kind
        self.min_interval_seconds = min_interval

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        problems = []
        if not isinstance(config.get("urlEnv"), str):
            problems.append(f"sink '{sink_id}': urlEnv must name an env var")
        if "color" in config and config["color"] not in ("red", "blue"):
            problems.append("color must be red or blue")  # no sink id: core prefixes it
        return problems

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        names = [str(config["urlEnv"])]
        if config.get("tokenEnv"):
            names.append(str(config["tokenEnv"]))
        return names

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        return env[str(config["urlEnv"])]

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        body = {
            "sink": sink_id,
            "action": event.action,
            "loopId": event.loop_id,
            "category": event.category,
            "severity": event.severity,
            "traceId": event.trace_id,
            "runId": event.run_id,
            "dedupKey": event.dedup_key,
            "idempotencyKey": event.idempotency_key,
            "reasonCodes": list(event.reason_codes),
            "escalation": event.escalation,
        }
        return SinkRequest(
            url=env[str(config["urlEnv"])],
            body=json.dumps(body, separators=(",", ":")).encode(),
            headers={"Content-Type": "application/json"},
        )


class FakeSinksPlugin:
    """Registers the given sinks through the public hook."""

    def __init__(self, *sinks: FakeUrlSink) -> None:
        self.sinks = sinks

    @hookimpl
    def opsmgr_register_sinks(self, register: Callable[[str, Callable[[], Sink]], None]) -> None:
        for sink in self.sinks:
            register(sink.type, lambda s=sink: s)


@pytest.fixture
def fake_sinks() -> Iterator[tuple[FakeUrlSink, FakeUrlSink]]:
    """``fakehook`` and ``fakepage`` (0.5 s pacing), registered for the test only."""
    hook, page = FakeUrlSink("fakehook"), FakeUrlSink("fakepage", min_interval=0.5)
    pm = get_plugin_manager()
    plugin = FakeSinksPlugin(hook, page)
    pm.register(plugin, name="test-fake-sinks")
    try:
        yield hook, page
    finally:
        pm.unregister(plugin)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OPS_MANAGER_", "TEST_ALERT_")):
            monkeypatch.delenv(key)


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, cfg: Any, name: str = "alerts.json") -> Path:
    path = tmp_path / name
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg), encoding="utf-8")
    return path


def shipped() -> dict[str, Any]:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


def r4_config() -> dict[str, Any]:
    """The R4/R5/R6 config (with the fake type instead of ``webhook``)."""
    return {
        "schemaVersion": "v1",
        "defaultMinSeverity": "warning",
        "sinks": {
            "webhook-a": {
                "enabled": True,
                "type": "fakehook",
                "urlEnv": "TEST_ALERT_WEBHOOK_URL",
                "timeoutSeconds": 5,
            }
        },
        "routing": {
            "defaultSinks": ["webhook-a"],
            "categorySeverity": {"health_degraded": "warning"},
            "routes": [
                {
                    "category": "health_degraded",
                    "sinks": ["webhook-a"],
                    "minSeverity": "warning",
                    "enabled": True,
                }
            ],
        },
    }


# --- the shipped file --------------------------------------------------------------------


def test_shipped_config_is_the_packaged_file_and_validates_against_the_schema() -> None:
    assert SHIPPED.is_symlink()
    assert SHIPPED.resolve() == PACKAGED_ALERT_SINKS_FILE
    cfg = shipped()
    assert list(cfg) == ["schemaVersion", "defaultMinSeverity", "sinks", "routing"]
    assert list(cfg["sinks"]) == ["webhook-default", "slack-default", "pagerduty-default"]
    assert all(s["enabled"] is False for s in cfg["sinks"].values())
    assert [r["category"] for r in cfg["routing"]["routes"]] == [
        "health_critical",
        "health_degraded",
        "divergence_detected",
        "profile_drift_detected",
        # ours (issue 12): approval waits may notify, off by default
        "awaiting_approval",
    ]
    assert cfg["routing"]["routes"][-1]["enabled"] is False
    if SCHEMA.exists():
        import jsonschema

        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert (
            schema["$id"] == "https://superloop.sh/schemas/ops-manager-alert-sinks-config-v1.json"
        )
        assert schema["title"] == "OpsManagerAlertSinksConfigV1"
        jsonschema.Draft202012Validator(schema).validate(cfg)


def test_schema_accepts_plugin_types_and_rejects_what_the_contract_forbids() -> None:
    if not SCHEMA.exists():
        pytest.skip("schema/ not present")
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    ok = shipped()
    ok["sinks"]["x"] = {"enabled": True, "type": "fakehook", "urlEnv": "X"}
    ok["delivery"] = {"maxAttempts": 3, "deadlineSeconds": 10}
    # the contract allows what the resolver allows (§2.3, Q-11): extra keys, null/false/fraction
    # timeouts, a missing routes array
    ok["extra"] = 1
    ok["sinks"]["slack-default"]["timeoutSeconds"] = 2.5
    ok["sinks"]["webhook-default"]["timeoutSeconds"] = False
    ok["routing"]["routes"][0]["note"] = "x"
    assert list(validator.iter_errors(ok)) == []
    for broken in (
        {**shipped(), "defaultMinSeverity": "loud"},
        {**shipped(), "delivery": {"retries": 3}},
        {**shipped(), "schemaVersion": "v2"},
        {**shipped(), "sinks": {}},
    ):
        assert list(validator.iter_errors(broken))
    bad_env = shipped()
    bad_env["sinks"]["webhook-default"]["urlEnv"] = "lower-case"
    assert list(validator.iter_errors(bad_env))


def test_r1_list_sinks_and_q16_list_alias(capsys: pytest.CaptureFixture[str]) -> None:
    expected = (
        "webhook-default\twebhook\tfalse\n"
        "slack-default\tslack\tfalse\n"
        "pagerduty-default\tpagerduty_events\tfalse\n"
    )
    assert cli(capsys, "alert-sink-config", "--list-sinks") == (0, expected, "")
    assert cli(capsys, "alert-sink-config", "--list") == (0, expected, "")
    assert cli(capsys, "alert-sink-config", "--list-sinks", "--pretty") == (0, expected, "")


def test_r2_summary_of_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "alert-sink-config")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert list(doc) == [
        "schemaVersion",
        "sourceFile",
        "defaultMinSeverity",
        "sinks",
        "enabledSinkCount",
        "routing",
        "envStatus",
        "validation",
    ]
    assert doc["defaultMinSeverity"] == "warning" and doc["enabledSinkCount"] == 0
    assert doc["sourceFile"] == str(PACKAGED_ALERT_SINKS_FILE)
    assert doc["sinks"][0] == {
        "id": "webhook-default",
        "enabled": False,
        "type": "webhook",
        "timeoutSeconds": 5,
        "secretRefs": {
            "urlEnv": "OPS_MANAGER_ALERT_WEBHOOK_URL",
            "authTokenEnv": "OPS_MANAGER_ALERT_WEBHOOK_TOKEN",
        },
    }
    assert doc["sinks"][1]["secretRefs"] == {"webhookUrlEnv": "OPS_MANAGER_ALERT_SLACK_WEBHOOK_URL"}
    assert doc["routing"] == shipped()["routing"]
    assert list(doc["envStatus"]) == [
        "OPS_MANAGER_ALERT_PAGERDUTY_ROUTING_KEY",
        "OPS_MANAGER_ALERT_SLACK_WEBHOOK_URL",
        "OPS_MANAGER_ALERT_WEBHOOK_TOKEN",
        "OPS_MANAGER_ALERT_WEBHOOK_URL",
    ]
    assert all(v == {"present": False} for v in doc["envStatus"].values())
    assert doc["validation"] == {"envCheckEnabled": True}
    assert out.count("\n") == 1
    _, pretty, _ = cli(capsys, "alert-sink-config", "--pretty")
    assert json.loads(pretty) == doc and pretty.startswith('{\n  "schemaVersion": "v1",')


def test_category_mode_on_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        capsys, "alert-sink-config", "--category", "health_critical", "--severity", "critical"
    )
    doc = json.loads(out)
    assert code == 0
    assert list(doc) == [
        "schemaVersion",
        "sourceFile",
        "category",
        "eventSeverity",
        "categoryMappedSeverity",
        "minSeverity",
        "shouldDispatch",
        "route",
        "selectedSinks",
        "dispatchableSinks",
        "envStatus",
        "validation",
    ]
    assert (doc["eventSeverity"], doc["categoryMappedSeverity"], doc["minSeverity"]) == (
        "critical",
        "critical",
        "critical",
    )
    assert doc["shouldDispatch"] is True and doc["dispatchableSinks"] == []
    assert [s["id"] for s in doc["selectedSinks"]] == ["pagerduty-default", "slack-default"]
    assert doc["selectedSinks"][0] == {
        "id": "pagerduty-default",
        "type": "pagerduty_events",
        "enabled": False,
        "timeoutSeconds": 5,
        "secretRefs": {"routingKeyEnv": "OPS_MANAGER_ALERT_PAGERDUTY_ROUTING_KEY"},
        "config": {
            "source": "superloop-ops-manager",
            "component": "ops-manager",
            "group": "loop-run",
            "class": "escalation",
        },
    }
    assert doc["selectedSinks"][1]["config"] == {
        "channel": "#ops-alerts",
        "username": "ops-manager",
        "iconEmoji": ":rotating_light:",
    }
    assert doc["route"] == shipped()["routing"]["routes"][0]
    # an unknown category: no route, no mapped severity (null-filtered), default sinks
    _, out, _ = cli(capsys, "alert-sink-config", "--category", "nope")
    doc = json.loads(out)
    assert "route" not in doc and "categoryMappedSeverity" not in doc
    assert (doc["eventSeverity"], doc["minSeverity"], doc["shouldDispatch"]) == (
        "warning",
        "warning",
        True,
    )
    assert [s["id"] for s in doc["selectedSinks"]] == ["webhook-default"]
    assert doc["selectedSinks"][0]["config"] == {"headers": {"Content-Type": "application/json"}}


def test_r4_r5_r6_env_check_and_severity_gate(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_sinks: Any,
) -> None:
    path = write(tmp_path, r4_config())
    code, _, err = cli(capsys, "alert-sink-config", "--config-file", path)
    assert code == 1
    assert err == "error: enabled sink secret env var(s) are unset: TEST_ALERT_WEBHOOK_URL\n"
    # --no-env-check turns the check off but envStatus still reports
    code, out, _ = cli(capsys, "alert-sink-config", "--config-file", path, "--no-env-check")
    doc = json.loads(out)
    assert code == 0 and doc["validation"] == {"envCheckEnabled": False}
    assert doc["envStatus"] == {"TEST_ALERT_WEBHOOK_URL": {"present": False}}
    # an empty value counts as unset
    monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", "")
    assert cli(capsys, "alert-sink-config", "--config-file", path)[0] == 1
    monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", "https://hooks.example.test/s3cr3t")
    args = ("alert-sink-config", "--config-file", path, "--category", "health_degraded")
    code, out, _ = cli(capsys, *args, "--severity", "warning")
    doc = json.loads(out)
    assert code == 0 and doc["shouldDispatch"] is True
    assert [s["id"] for s in doc["dispatchableSinks"]] == ["webhook-a"]
    assert doc["dispatchableSinks"][0]["config"] == {}  # plugin type: its own fields only
    assert "s3cr3t" not in out
    code, out, _ = cli(capsys, *args, "--severity", "info")
    doc = json.loads(out)
    assert code == 0 and doc["shouldDispatch"] is False and doc["dispatchableSinks"] == []


def test_r7_env_var_precedence_and_verbatim_source_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = {
        "schemaVersion": "v1",
        "defaultMinSeverity": "critical",
        "sinks": {"w": {"enabled": False, "type": "webhook", "urlEnv": "TEST_ALERT_W"}},
        "routing": {"defaultSinks": [], "categorySeverity": {}, "routes": []},
    }
    path = write(tmp_path, cfg)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPS_MANAGER_ALERT_SINKS_FILE", "alerts.json")
    code, out, _ = cli(capsys, "alert-sink-config")
    doc = json.loads(out)
    assert code == 0 and doc["sourceFile"] == "alerts.json"
    assert doc["defaultMinSeverity"] == "critical"
    assert doc["sinks"][0]["timeoutSeconds"] == 5
    assert doc["sinks"][0]["secretRefs"] == {"urlEnv": "TEST_ALERT_W", "authTokenEnv": None}
    # the flag wins over the env var; an empty env var does not count
    other = write(tmp_path, shipped(), "other.json")
    assert json.loads(cli(capsys, "alert-sink-config", "--config-file", other)[1])[
        "sourceFile"
    ] == str(other)
    monkeypatch.setenv("OPS_MANAGER_ALERT_SINKS_FILE", "")
    assert config_path(None) == str(PACKAGED_ALERT_SINKS_FILE)
    assert config_path(None, {"OPS_MANAGER_ALERT_SINKS_FILE": str(path)}) == str(path)
    assert config_path("x.json", {"OPS_MANAGER_ALERT_SINKS_FILE": str(path)}) == "x.json"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--list-sinks", "--category", "x"], "--list-sinks cannot be combined with --category"),
        (["--list", "--category", "x"], "--list-sinks cannot be combined with --category"),
        (["--severity", "warning"], "--severity requires --category"),
        (["--list-sinks", "--severity", "warning"], "--severity requires --category"),
        (
            ["--category", "x", "--severity", "loud"],
            "--severity must be one of: info, warning, critical",
        ),
        (
            ["--config-file", "/nonexistent/a.json"],
            "alert sink config file not found: /nonexistent/a.json",
        ),
        (["--bogus"], "unknown argument: --bogus"),
        (["--category"], "--category requires a value"),
    ],
)
def test_argument_errors_in_contract_order(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = cli(capsys, "alert-sink-config", *argv)
    assert (code, err) == (1, f"error: {message}\n")


def test_empty_flag_values_count_as_not_given(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "alert-sink-config", "--category", "", "--severity", "")
    assert code == 0 and "enabledSinkCount" in json.loads(out)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "alert-sink-config", "--help")
    assert code == 0 and "--list-sinks" in out and "--no-env-check" in out


# --- fail-closed validation: one row per rule (§2.2 steps 5-8, §2.3) ---------------------


def _mutate(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    cfg = shipped()
    fn(cfg)
    return cfg


TOP = "alert sink config has invalid top-level shape"
SINKS = "alert sink config sink definitions are invalid"
ROUTING = "alert sink config routing is invalid"

VALIDATION_TABLE: list[tuple[str, Any, str | None]] = [
    ("not an object", [1, 2], TOP),
    ("schemaVersion v2", _mutate(lambda c: c.update(schemaVersion="v2")), TOP),
    ("bad defaultMinSeverity", _mutate(lambda c: c.update(defaultMinSeverity="loud")), TOP),
    ("no sinks", _mutate(lambda c: c.update(sinks={})), TOP),
    ("sinks array", _mutate(lambda c: c.update(sinks=[])), TOP),
    ("routing missing", _mutate(lambda c: c.pop("routing")), TOP),
    ("defaultSinks missing", _mutate(lambda c: c["routing"].pop("defaultSinks")), TOP),
    ("categorySeverity missing", _mutate(lambda c: c["routing"].pop("categorySeverity")), TOP),
    ("routes not array", _mutate(lambda c: c["routing"].update(routes={})), TOP),
    ("routes missing ok", _mutate(lambda c: c["routing"].pop("routes")), None),
    ("routes null ok", _mutate(lambda c: c["routing"].update(routes=None)), None),
    ("extra top-level key ok", _mutate(lambda c: c.update(comment="hi")), None),
    ("delivery not object", _mutate(lambda c: c.update(delivery=[])), TOP),
    ("delivery unknown key", _mutate(lambda c: c.update(delivery={"retries": 3})), TOP),
    ("delivery bad value", _mutate(lambda c: c.update(delivery={"maxAttempts": 0})), TOP),
    ("delivery ok", _mutate(lambda c: c.update(delivery={"maxAttempts": 2})), None),
    (
        "enabled string",
        _mutate(lambda c: c["sinks"]["slack-default"].update(enabled="false")),
        SINKS,
    ),
    ("type missing", _mutate(lambda c: c["sinks"]["slack-default"].pop("type")), SINKS),
    (
        "timeout too big",
        _mutate(lambda c: c["sinks"]["slack-default"].update(timeoutSeconds=121)),
        SINKS,
    ),
    (
        "timeout string",
        _mutate(lambda c: c["sinks"]["slack-default"].update(timeoutSeconds="5")),
        SINKS,
    ),
    (
        "timeout fractional ok",
        _mutate(lambda c: c["sinks"]["slack-default"].update(timeoutSeconds=2.5)),
        None,
    ),
    (
        "timeout false ok",
        _mutate(lambda c: c["sinks"]["slack-default"].update(timeoutSeconds=False)),
        None,
    ),
    (
        "webhook urlEnv lower",
        _mutate(lambda c: c["sinks"]["webhook-default"].update(urlEnv="lower")),
        SINKS,
    ),
    (
        "webhook headers array",
        _mutate(lambda c: c["sinks"]["webhook-default"].update(headers=["x"])),
        SINKS,
    ),
    (
        "slack env missing",
        _mutate(lambda c: c["sinks"]["slack-default"].pop("webhookUrlEnv")),
        SINKS,
    ),
    (
        "pagerduty env bad",
        _mutate(lambda c: c["sinks"]["pagerduty-default"].update(routingKeyEnv="1X")),
        SINKS,
    ),
    (
        "unknown defaultSinks id",
        _mutate(lambda c: c["routing"].update(defaultSinks=["nope"])),
        ROUTING,
    ),
    (
        "route without category",
        _mutate(lambda c: c["routing"]["routes"][0].pop("category")),
        ROUTING,
    ),
    (
        "route enabled string",
        _mutate(lambda c: c["routing"]["routes"][0].update(enabled="no")),
        ROUTING,
    ),
    (
        "route bad minSeverity",
        _mutate(lambda c: c["routing"]["routes"][0].update(minSeverity="loud")),
        ROUTING,
    ),
    (
        "route unknown sink",
        _mutate(lambda c: c["routing"]["routes"][0].update(sinks=["nope"])),
        ROUTING,
    ),
    (
        "route extra key ok",
        _mutate(lambda c: c["routing"]["routes"][0].update(note="x")),
        None,
    ),
    (
        "categorySeverity bad",
        _mutate(lambda c: c["routing"]["categorySeverity"].update(x="loud")),
        ROUTING,
    ),
]


@pytest.mark.parametrize(
    ("name", "cfg", "fragment"), VALIDATION_TABLE, ids=[r[0] for r in VALIDATION_TABLE]
)
def test_validation_table(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    cfg: Any,
    fragment: str | None,
) -> None:
    path = write(tmp_path, cfg)
    code, out, err = cli(capsys, "alert-sink-config", "--config-file", path)
    if fragment is None:
        assert (code, err) == (0, ""), name
    else:
        assert code == 1 and out == "", name
        assert err.startswith(f"error: {fragment}"), (name, err)
        assert err.count("\n") == 1


@pytest.mark.parametrize("content", ["", "   \n\t\n", "{", '{"a":NaN}'])
def test_q25_empty_or_broken_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    path = write(tmp_path, content)
    assert cli(capsys, "alert-sink-config", "--config-file", path) == (
        1,
        "",
        f"error: invalid alert sink config JSON: {path}\n",
    )


def test_directory_is_not_found(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "alert-sink-config", "--config-file", tmp_path)
    assert (code, err) == (1, f"error: alert sink config file not found: {tmp_path}\n")


def test_enabled_sink_whose_plugin_is_missing_names_the_package(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops_manager.engine.alert_config as alert_config
    import ops_manager.sinks as sinks

    monkeypatch.setattr(sinks, "available_sinks", dict)
    monkeypatch.setattr(alert_config, "available_sinks", dict)
    cfg = shipped()
    # disabled sinks of the contract types may lack their plugin
    assert load_alert_config(str(write(tmp_path, cfg))).config.sinks[0].id == "webhook-default"
    cfg["sinks"]["slack-default"]["enabled"] = True
    code, _, err = cli(capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg))
    assert code == 1
    assert err.startswith(f"error: {SINKS}: sink 'slack-default': ")
    assert "install the 'ops-manager-slack' package" in err
    # an unknown type is an error even when disabled
    cfg = shipped()
    cfg["sinks"]["pigeon"] = {"enabled": False, "type": "carrier_pigeon"}
    code, _, err = cli(capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg))
    assert code == 1 and "sink type 'carrier_pigeon' is not installed" in err
    assert "entry-point group 'ops_manager'" in err


def test_plugin_validation_and_secret_envs_are_used(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_sinks: Any,
) -> None:
    cfg = r4_config()
    cfg["sinks"]["webhook-a"]["color"] = "green"
    code, _, err = cli(capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg))
    assert code == 1
    assert err == f"error: {SINKS}: sink 'webhook-a': color must be red or blue\n"
    cfg["sinks"]["webhook-a"]["color"] = "red"
    cfg["sinks"]["webhook-a"]["tokenEnv"] = "TEST_ALERT_TOKEN"
    monkeypatch.setenv("TEST_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/x")
    code, _, err = cli(capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg))
    assert err == "error: enabled sink secret env var(s) are unset: TEST_ALERT_TOKEN\n"
    code, out, _ = cli(
        capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg), "--no-env-check"
    )
    doc = json.loads(out)
    assert doc["sinks"][0]["secretRefs"] == {
        "urlEnv": "TEST_ALERT_WEBHOOK_URL",
        "tokenEnv": "TEST_ALERT_TOKEN",
    }
    assert doc["envStatus"] == {
        "TEST_ALERT_TOKEN": {"present": False},
        "TEST_ALERT_WEBHOOK_URL": {"present": True},
    }


def test_missing_secrets_listed_sorted_and_deduplicated(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_sinks: Any
) -> None:
    cfg = r4_config()
    cfg["sinks"]["b"] = {"enabled": True, "type": "fakehook", "urlEnv": "TEST_ALERT_A"}
    cfg["sinks"]["c"] = {"enabled": True, "type": "fakehook", "urlEnv": "TEST_ALERT_A"}
    cfg["sinks"]["off"] = {"enabled": False, "type": "fakehook", "urlEnv": "TEST_ALERT_OFF"}
    code, _, err = cli(capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg))
    assert err == (
        "error: enabled sink secret env var(s) are unset: TEST_ALERT_A TEST_ALERT_WEBHOOK_URL\n"
    )
    # it also applies to --list-sinks
    code, _, err = cli(
        capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg), "--list-sinks"
    )
    assert code == 1 and "TEST_ALERT_A" in err


def test_bug1_disabled_route_does_not_match(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = shipped()
    cfg["routing"]["routes"][1]["enabled"] = False  # health_degraded → slack, warning
    cfg["routing"]["routes"].insert(
        1, {"category": "health_degraded", "minSeverity": "critical", "enabled": False}
    )
    path = write(tmp_path, cfg)
    code, out, _ = cli(
        capsys, "alert-sink-config", "--config-file", path, "--category", "health_degraded"
    )
    doc = json.loads(out)
    assert code == 0 and "route" not in doc
    assert doc["minSeverity"] == "warning" and doc["shouldDispatch"] is True
    assert [s["id"] for s in doc["selectedSinks"]] == ["webhook-default"]


def test_sensitive_header_values_are_never_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = shipped()
    cfg["sinks"]["webhook-default"]["headers"] = {
        "Content-Type": "application/json",
        "X-Api-Key": "literal-s3cr3t",
        "X-Team": "ops",
    }
    code, out, _ = cli(
        capsys, "alert-sink-config", "--config-file", write(tmp_path, cfg), "--category", "x"
    )
    assert code == 0 and "literal-s3cr3t" not in out
    assert json.loads(out)["selectedSinks"][0]["config"]["headers"] == {
        "Content-Type": "application/json",
        "X-Api-Key": "[redacted]",
        "X-Team": "ops",
    }


def test_library_load_reports_every_problem_at_once(tmp_path: Path) -> None:
    cfg = shipped()
    cfg["sinks"]["webhook-default"]["urlEnv"] = "bad-1"
    cfg["sinks"]["slack-default"]["timeoutSeconds"] = 0
    with pytest.raises(OpsError) as info:
        load_alert_config(str(write(tmp_path, cfg)))
    assert "sink 'webhook-default': urlEnv must name an env var" in info.value.message
    assert (
        "sink 'slack-default': timeoutSeconds must be a number from 1 to 120" in info.value.message
    )


# --------------------------------------------------------------------------------------------
# never a crash: any JSON document is a config or one OpsError (fail closed, no traceback)
# --------------------------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["schemaVersion", "defaultMinSeverity", "sinks", "routing", "delivery", "type", "enabled"]
)
_shaped = st.recursive(
    _scalars | st.sampled_from(["v1", "critical", "webhook", "slack", "URL_ENV"]),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(_keys | st.text(max_size=4), kids, max_size=5)
    ),
    max_leaves=25,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=_json | _shaped)
def test_any_json_document_is_a_config_or_one_ops_error(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        load_alert_config(str(path), installed={})
    except OpsError as exc:
        assert str(exc)
