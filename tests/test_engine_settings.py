"""The engine's settings resolvers (issue 13.6): flag > env > default, the contract's errors.

The CLI tests cover these through the ``ops-manager`` process; here each resolver is called
with an explicit environment mapping, so every precedence rung is pinned without touching
``os.environ``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ops_manager.engine.control_settings import ControlFlags, control_settings
from ops_manager.engine.paths import loop_paths_in
from ops_manager.engine.reconcile_settings import ReconcileFlags, reconcile_settings
from ops_manager.engine.settings import (
    color_allowed,
    debug_enabled,
    flag_or_env,
    output_format_setting,
    requester_setting,
    token_setting,
    trace_id_setting,
)
from ops_manager.errors import OpsError

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TOKEN = "s3cret-token-value"


def _reconcile(tmp_path: Path, env: dict[str, str], **flags: object) -> object:
    base: dict[str, object] = {"repo": str(tmp_path), "loop": "demo"}
    base.update(flags)
    return reconcile_settings(ReconcileFlags(**base), env)  # type: ignore[arg-type]


def _error(call: object) -> str:
    assert callable(call)
    with pytest.raises(OpsError) as info:
        call()
    assert info.value.exit_code == 1
    return info.value.message


# --- reconcile ---------------------------------------------------------------------------


def test_reconcile_defaults(tmp_path: Path) -> None:
    s = reconcile_settings(ReconcileFlags(repo=str(tmp_path), loop="demo"), {})
    assert s.drift_min_confidence == "medium"
    assert s.drift_required_streak == 3
    assert s.drift_summary_window == 200
    assert s.alerts is not None
    assert s.transport_config.service_token is None
    assert UUID.match(s.trace_id)
    assert s.thresholds.profile == "balanced"
    # the contract's order creates the loop's OPS directory once --repo/--loop are valid
    assert loop_paths_in(tmp_path.resolve(), "demo").ops_dir.is_dir()


def test_reconcile_env_fills_absent_flags(tmp_path: Path) -> None:
    env = {
        "OPS_MANAGER_SERVICE_TOKEN": TOKEN,
        "OPS_MANAGER_TRACE_ID": "trace-env",
        "OPS_MANAGER_DRIFT_MIN_CONFIDENCE": "high",
        "OPS_MANAGER_DRIFT_REQUIRED_STREAK": "5",
        "OPS_MANAGER_DRIFT_SUMMARY_WINDOW": "7",
        "OPS_MANAGER_ALERTS_ENABLED": "false",
        "OPS_MANAGER_THRESHOLD_PROFILE": "strict",
    }
    s = reconcile_settings(ReconcileFlags(repo=str(tmp_path), loop="demo"), env)
    assert s.transport_config.service_token == TOKEN
    assert s.trace_id == "trace-env"
    assert (s.drift_min_confidence, s.drift_required_streak, s.drift_summary_window) == (
        "high",
        5,
        7,
    )
    assert s.alerts is None
    assert s.thresholds.profile == "strict"


def test_reconcile_flags_win_over_env_even_an_invalid_env(tmp_path: Path) -> None:
    # an env value is only looked at when its flag is absent, so a bad one is harmless then
    env = {
        "OPS_MANAGER_SERVICE_TOKEN": "env-token",
        "OPS_MANAGER_TRACE_ID": "trace-env",
        "OPS_MANAGER_DRIFT_MIN_CONFIDENCE": "bogus",
        "OPS_MANAGER_DRIFT_REQUIRED_STREAK": "0",
        "OPS_MANAGER_DRIFT_SUMMARY_WINDOW": "x",
        "OPS_MANAGER_ALERTS_ENABLED": "maybe",
        "OPS_MANAGER_THRESHOLD_PROFILE": "strict",
    }
    s = reconcile_settings(
        ReconcileFlags(
            repo=str(tmp_path),
            loop="demo",
            service_token="flag-token",
            trace_id="trace-flag",
            drift_min_confidence="low",
            drift_required_streak="2",
            drift_summary_window="9",
            alerts_enabled="true",
            threshold_profile="relaxed",
        ),
        env,
    )
    assert s.transport_config.service_token == "flag-token"
    assert s.trace_id == "trace-flag"
    assert (s.drift_min_confidence, s.drift_required_streak, s.drift_summary_window) == (
        "low",
        2,
        9,
    )
    assert s.alerts is not None
    assert s.thresholds.profile == "relaxed"


def test_reconcile_empty_env_and_empty_token_flag_count_as_not_given(tmp_path: Path) -> None:
    env = {"OPS_MANAGER_DRIFT_REQUIRED_STREAK": "", "OPS_MANAGER_SERVICE_TOKEN": TOKEN}
    s = reconcile_settings(ReconcileFlags(repo=str(tmp_path), loop="demo", service_token=""), env)
    assert s.drift_required_streak == 3
    assert s.transport_config.service_token == TOKEN


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "OPS_MANAGER_DRIFT_MIN_CONFIDENCE",
            "certain",
            "OPS_MANAGER_DRIFT_MIN_CONFIDENCE must be one of: low, medium, high",
        ),
        (
            "OPS_MANAGER_DRIFT_REQUIRED_STREAK",
            "0",
            "OPS_MANAGER_DRIFT_REQUIRED_STREAK must be an integer >= 1",
        ),
        (
            "OPS_MANAGER_DRIFT_SUMMARY_WINDOW",
            "-1",
            "OPS_MANAGER_DRIFT_SUMMARY_WINDOW must be an integer >= 1",
        ),
        ("OPS_MANAGER_ALERTS_ENABLED", "yes", "OPS_MANAGER_ALERTS_ENABLED must be true or false"),
    ],
)
def test_reconcile_invalid_env_is_an_error(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    env = {name: value, "OPS_MANAGER_SERVICE_TOKEN": TOKEN}
    text = _error(lambda: _reconcile(tmp_path, env))
    assert text == message
    assert TOKEN not in text


def test_reconcile_flag_errors_come_before_env_errors(tmp_path: Path) -> None:
    env = {"OPS_MANAGER_ALERTS_ENABLED": "yes"}
    assert _error(lambda: _reconcile(tmp_path, env, max_events="x")) == (
        "--max-events must be a non-negative integer"
    )
    # --drift-min-confidence is checked after the profile is loaded (the contract's order)
    profile_env = {"OPS_MANAGER_THRESHOLD_PROFILE": "nope"}
    first = _error(lambda: _reconcile(tmp_path, profile_env, drift_min_confidence="x"))
    assert "nope" in first
    assert _error(lambda: _reconcile(tmp_path, {}, drift_min_confidence="x")) == (
        "--drift-min-confidence must be one of: low, medium, high"
    )
    assert _error(lambda: _reconcile(tmp_path, {}, transport="sprite_service")) == (
        "--service-base-url is required when --transport sprite_service"
    )


def test_reconcile_explicit_thresholds_in_the_given_order(tmp_path: Path) -> None:
    thresholds = {"degraded-ingest-lag-seconds": "x", "critical-ingest-lag-seconds": "y"}
    assert _error(lambda: _reconcile(tmp_path, {}, thresholds=thresholds)) == (
        "degraded-ingest-lag-seconds must be a non-negative integer"
    )
    s = _reconcile(tmp_path, {}, thresholds={"critical-ingest-lag-seconds": "999"})
    assert s.thresholds.critical_ingest_lag_seconds == 999  # type: ignore[attr-defined]


# --- control -----------------------------------------------------------------------------


def test_control_env_fallbacks(tmp_path: Path) -> None:
    flags = ControlFlags(repo=str(tmp_path), loop="demo", intent="cancel")
    none = control_settings(flags, {})
    assert none.transport_config.service_token is None
    assert none.trace_id is None  # run_control generates one
    env = {"OPS_MANAGER_SERVICE_TOKEN": TOKEN, "OPS_MANAGER_TRACE_ID": "t-env"}
    s = control_settings(flags, env)
    assert (s.transport_config.service_token, s.trace_id) == (TOKEN, "t-env")
    given = ControlFlags(
        repo=str(tmp_path), loop="demo", intent="cancel", service_token="f", trace_id="t"
    )
    s = control_settings(given, env)
    assert (s.transport_config.service_token, s.trace_id) == ("f", "t")
    assert s.by is None and s.confirm is True
    assert (s.timeout_seconds, s.interval_seconds) == (30, 2)


def test_control_errors(tmp_path: Path) -> None:
    def run(**kw: object) -> str:
        base: dict[str, object] = {"repo": str(tmp_path), "loop": "demo", "intent": "cancel"}
        base.update(kw)
        return _error(lambda: control_settings(ControlFlags(**base), {}))  # type: ignore[arg-type]

    assert run(intent=None) == "--intent is required"
    assert run(intent="pause") == "intent must be one of: cancel, approve, reject"
    assert run(transport="ssh") == "--transport must be local or sprite_service"
    assert run(retry_attempts="0") == "--retry-attempts must be an integer >= 1"
    assert run(timeout_seconds="x") == "timeout and interval must be non-negative integers"
    assert run(transport="sprite_service") == (
        "--service-base-url is required when --transport sprite_service"
    )
    assert run(repo=str(tmp_path / "missing")).startswith("repo directory not found")


# --- shared resolvers --------------------------------------------------------------------


def test_flag_or_env_and_token_setting_differ_on_an_empty_flag() -> None:
    env = {"T": "from-env"}
    assert flag_or_env(None, env, "T") == "from-env"
    assert flag_or_env("", env, "T") == "from-env"
    assert flag_or_env("f", env, "T") == "f"
    assert flag_or_env(None, {"T": ""}, "T") is None
    # a server's --token '' turns auth off whatever the environment says
    assert token_setting("", env, "T") is None
    assert token_setting(None, env, "T") == "from-env"
    assert token_setting("f", env, "T") == "f"
    assert token_setting(None, {}, "T") is None


def test_trace_id_setting() -> None:
    assert trace_id_setting("f", {"OPS_MANAGER_TRACE_ID": "e"}) == "f"
    assert trace_id_setting(None, {"OPS_MANAGER_TRACE_ID": "e"}) == "e"
    assert UUID.match(trace_id_setting("", {"OPS_MANAGER_TRACE_ID": ""}))


def test_output_format_setting() -> None:
    assert output_format_setting(None, {}, "json") == "json"
    assert output_format_setting(None, {"OPS_MANAGER_FORMAT": ""}, "table") == "table"
    assert output_format_setting(None, {"OPS_MANAGER_FORMAT": "table"}, "json") == "table"
    assert output_format_setting("json", {"OPS_MANAGER_FORMAT": "bogus"}, "table") == "json"
    assert _error(lambda: output_format_setting("xml", {}, "json")) == (
        "--format must be table or json"
    )
    assert _error(lambda: output_format_setting(None, {"OPS_MANAGER_FORMAT": "xml"}, "json")) == (
        "OPS_MANAGER_FORMAT must be table or json (got 'xml')"
    )


def test_color_debug_requester() -> None:
    assert color_allowed({}) is True
    assert color_allowed({"NO_COLOR": ""}) is True
    assert color_allowed({"NO_COLOR": "1"}) is False
    assert color_allowed({"TERM": "dumb"}) is False
    assert debug_enabled({}) is False
    assert debug_enabled({"OPS_MANAGER_DEBUG": ""}) is False
    assert debug_enabled({"OPS_MANAGER_DEBUG": "1"}) is True
    assert requester_setting("ann", {"USER": "bob"}, "ops-service") == "ann"
    assert requester_setting(None, {"USER": "bob"}, "ops-service") == "bob"
    assert requester_setting("", {}, "ops-service") == "ops-service"


# --- end to end: the env token reaches the service, and nothing else -------------------------


def test_env_token_authorizes_reconcile_and_service_client_and_is_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real loopback sprite service that demands the token; the CLI gets it only from
    # $OPS_MANAGER_SERVICE_TOKEN (no --service-token / --token)
    import secrets

    from ops_manager.cli import main
    from tests.runtime_fixtures import default_events, make_runtime_repo
    from tests.service_process import ServiceProcess

    token = secrets.token_hex(24)
    repo = make_runtime_repo(tmp_path / "repo", events=default_events()[:2]).resolve()
    reconcile_argv = [
        "reconcile", "--repo", str(repo), "--loop", "demo-loop", "--transport",
        "sprite_service", "--retry-attempts", "1", "--retry-backoff-seconds", "0",
    ]  # fmt: skip
    with ServiceProcess(repo, token=token).running() as svc:
        client_argv = ["service-client", "--method", "GET", "--base-url", svc.url, "--path"]
        # without the variable the service refuses: the env value is what authorizes below
        monkeypatch.delenv("OPS_MANAGER_SERVICE_TOKEN", raising=False)
        capsys.readouterr()
        assert (
            main(
                [
                    *client_argv,
                    "/ops/events?loopId=demo-loop&cursor=0&maxEvents=0",
                    "--retry-attempts",
                    "1",
                ]
            )
            != 0
        )
        refused = capsys.readouterr()
        assert "code=401" in refused.err
        monkeypatch.setenv("OPS_MANAGER_SERVICE_TOKEN", token)
        monkeypatch.setenv("OPS_MANAGER_TRACE_ID", "trace-from-env")
        assert main([*client_argv, "/ops/events?loopId=demo-loop&cursor=0&maxEvents=0"]) == 0
        client = capsys.readouterr()
        rc = main([*reconcile_argv, "--service-base-url", svc.url])
        out, err = capsys.readouterr()
        served = svc.stderr_text()
    assert rc == 0, err
    state = json.loads(out)
    assert state["transition"]["currentState"] == "running"  # read over the service
    assert state["health"]["traceId"] == "trace-from-env"
    for text in (refused.out, refused.err, client.out, client.err, out, err, served):
        assert token not in text
    for path in repo.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path
