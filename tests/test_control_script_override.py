"""``$OPS_MANAGER_CONTROL_SCRIPT`` and ``$OPS_MANAGER_CONFIRM_SCRIPT`` (issue 12 point 1).

``fleet-handoff`` runs loop-level control through ``$OPS_MANAGER_CONTROL_SCRIPT`` when it is
set (``fleet.md`` §0.6, §2.5 "Execution"); ``control`` confirms through
``$OPS_MANAGER_CONFIRM_SCRIPT`` (``loop.md`` §3.10.2). Both are served by the built-in plugin
``ops_manager.transports.external_command`` through the selection hooks.

The stubs are bash scripts as ``fleet.md`` §5.1 describes: they parse their flags (an unknown
flag is exit 64, so an extra or misspelt flag fails the test), append one JSON line per call
to a log file (the full argv too), print the confirmation JSON and exit 0 / 2 / 1. The
control stub also writes a line on stderr, which must not spoil the parse of its stdout.
Every flow the issue lists is driven through the real CLI (``main``) in-process; the
sprite_service confirmation runs a real service process on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ops_manager.cli import main
from ops_manager.plugins import get_plugin_manager, plugin_names
from ops_manager.store import LoopPaths
from tests.fleet_fixtures import TOKEN_ENV, sprite_loop, write_registry
from tests.runtime_fixtures import make_runtime_repo
from tests.service_process import ServiceProcess
from tests.test_fleet_handoff import candidate, read_state, registry, seed, write_policy

BASH = "#!/usr/bin/env bash\nset -u\n"

#: a bash function that prints its argument as a JSON string (tests use plain text values)
JSON_STRING = r"""
js() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
jargv() {
  local out="" a
  for a in "$@"; do out="$out${out:+,}$(js "$a")"; done
  printf '[%s]' "$out"
}
"""

CONTROL_STUB = (
    BASH
    + JSON_STRING
    + r"""
argv=$(jargv "$@")
repo="" loop="" intent="" transport="" trace="" key="" by="" note="" base="" token=""
timeout="" interval="" attempts="" backoff="" noconfirm=false
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo=$2; shift 2;;
    --loop) loop=$2; shift 2;;
    --intent) intent=$2; shift 2;;
    --transport) transport=$2; shift 2;;
    --trace-id) trace=$2; shift 2;;
    --idempotency-key) key=$2; shift 2;;
    --by) by=$2; shift 2;;
    --note) note=$2; shift 2;;
    --timeout-seconds) timeout=$2; shift 2;;
    --interval-seconds) interval=$2; shift 2;;
    --no-confirm) noconfirm=true; shift;;
    --service-base-url) base=$2; shift 2;;
    --retry-attempts) attempts=$2; shift 2;;
    --retry-backoff-seconds) backoff=$2; shift 2;;
    --service-token) token=$2; shift 2;;
    *) echo "stub control: unknown flag $1" >&2; exit 64;;
  esac
done
{
  printf '{"loopId":%s,"intent":%s,"transport":%s,' "$(js "$loop")" "$(js "$intent")" \
    "$(js "$transport")"
  printf '"traceId":%s,"idempotencyKey":%s,"by":%s,"note":%s,' "$(js "$trace")" \
    "$(js "$key")" "$(js "$by")" "$(js "$note")"
  printf '"serviceBaseUrl":%s,"serviceToken":%s,"noConfirm":%s,"argv":%s}\n' \
    "$(js "$base")" "$(js "$token")" "$noconfirm" "$argv"
} >> "$STUB_CONTROL_LOG"
echo "stub control: $intent $loop" >&2
code=${STUB_CONTROL_DEFAULT:-0}
case "$loop" in
  *-amb) code=2;;
  *-fail) code=1;;
  *-ok) code=0;;
esac
case $code in
  0) echo '{"status":"confirmed","confirmed":true}';;
  2) echo '{"status":"ambiguous","confirmed":false}';;
  *) echo '{"status":"failed_command","confirmed":false}';;
esac
exit "$code"
"""
)

CONFIRM_STUB = (
    BASH
    + JSON_STRING
    + r"""
printf '{"argv":%s}\n' "$(jargv "$@")" >> "$STUB_CONFIRM_LOG"
intent=""
while [ $# -gt 0 ]; do
  case "$1" in
    --repo|--loop|--timeout-seconds|--interval-seconds) shift 2;;
    --intent) intent=$2; shift 2;;
    *) echo "stub confirm: unknown flag $1" >&2; exit 64;;
  esac
done
code=${STUB_CONFIRM_EXIT:-0}
if [ "${STUB_CONFIRM_GARBAGE:-}" = 1 ]; then
  echo "not json"
elif [ "$code" = 0 ]; then
  printf '{"intent":"%s","confirmed":true,"reason":"stub_confirmed","attempts":1}\n' "$intent"
else
  printf '{"intent":"%s","confirmed":false,"reason":"timeout","attempts":3}\n' "$intent"
fi
exit "$code"
"""
)

#: upstream's SUPERLOOP_BIN stub for the real control (fleet.md §5.1): prints ok
SUPERLOOP_OK = BASH + 'echo "$*" >> "$STUB_SUPERLOOP_LOG"\necho ok\n'


def write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (
        "OPS_MANAGER_TRACE_ID",
        "OPS_MANAGER_CONTROL_SCRIPT",
        "OPS_MANAGER_CONFIRM_SCRIPT",
        "OPS_MANAGER_SERVICE_TOKEN",
        TOKEN_ENV,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER", "ops-bot")
    root = tmp_path / "repo"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def control_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the control stub as ``$OPS_MANAGER_CONTROL_SCRIPT``; returns its call log."""
    script = write_script(tmp_path / "bin" / "control-stub.sh", CONTROL_STUB)
    log = tmp_path / "control-calls.jsonl"
    monkeypatch.setenv("OPS_MANAGER_CONTROL_SCRIPT", str(script))
    monkeypatch.setenv("STUB_CONTROL_LOG", str(log))
    monkeypatch.delenv("STUB_CONTROL_DEFAULT", raising=False)
    return log


def handoff(capsys: pytest.CaptureFixture[str], repo: Path, *flags: str) -> dict[str, Any]:
    """Run ``fleet-handoff`` (exit 0 required); the state it printed (== the state file)."""
    code = main(["fleet-handoff", "--repo", str(repo), *flags])
    out = capsys.readouterr().out
    assert code == 0, out
    state: dict[str, Any] = json.loads(out)
    assert state == read_state(repo)
    return state


def by_loop(state: Mapping[str, Any], key: str = "intents") -> dict[str, dict[str, Any]]:
    rows = state[key] if key == "intents" else state["execution"]["results"]
    return {str(row["loopId"]): row for row in rows}


# --- the plugin -------------------------------------------------------------------------------


def test_the_override_is_a_builtin_plugin_selected_by_the_variables(tmp_path: Path) -> None:
    assert "ops_manager.transports.external_command" in plugin_names()
    hook = get_plugin_manager().hook
    assert hook.opsmgr_control_executor(env={}) is None
    assert hook.opsmgr_intent_confirmer(env={"OPS_MANAGER_CONFIRM_SCRIPT": ""}) is None
    executor = hook.opsmgr_control_executor(env={"OPS_MANAGER_CONTROL_SCRIPT": "/x/ctl"})
    confirmer = hook.opsmgr_intent_confirmer(env={"OPS_MANAGER_CONFIRM_SCRIPT": "/x/confirm"})
    assert (type(executor).__name__, executor.script) == ("ControlScript", "/x/ctl")
    assert (type(confirmer).__name__, confirmer.script) == ("ConfirmScript", "/x/confirm")


# --- fleet-handoff through $OPS_MANAGER_CONTROL_SCRIPT -----------------------------------------


def test_kill_switch_falls_back_to_manual_handoff(
    repo: Path, control_stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R-DRILL-KS: the kill switch leaves nothing to the autonomous run (the stub is never
    called); the operator's ``--execute --confirm --intent-id`` runs it exactly once."""
    seed(
        repo,
        [candidate("loop-red", "health_critical", reasons=["autonomous_kill_switch_enabled"])],
        safety={"killSwitch": True},
    )
    auto = handoff(capsys, repo, "--autonomous-execute", "--by", "ops-bot")
    assert auto["execution"]["mode"] == "autonomous"
    assert auto["execution"]["requestedIntentCount"] == 0
    assert auto["summary"]["pendingConfirmationCount"] == 1
    assert "fleet_handoff_confirmation_pending" in auto["reasonCodes"]
    assert log_lines(control_stub) == []
    intent_id = auto["intents"][0]["intentId"]
    manual = handoff(
        capsys,
        repo,
        "--execute",
        "--confirm",
        "--intent-id",
        intent_id,
        "--by",
        "oncall-operator",
    )
    assert manual["execution"]["mode"] == "manual"
    assert manual["execution"]["requestedIntentCount"] == 1
    assert manual["summary"]["executedCount"] == 1
    assert manual["summary"]["pendingConfirmationCount"] == 0
    assert manual["intents"][0]["status"] == "executed"
    assert "fleet_handoff_executed" in manual["reasonCodes"]
    calls = log_lines(control_stub)
    assert len(calls) == 1
    assert (calls[0]["loopId"], calls[0]["by"]) == ("loop-red", "oncall-operator")


def test_mixed_autonomous_outcomes(
    repo: Path, control_stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """§2.5 "Autonomous-mode example" / R-HO-1: stub exits 0 / 2 / 1."""
    seed(
        repo,
        [
            candidate("loop-ok", "reconcile_failed", eligible=True),
            candidate("loop-amb", "reconcile_failed", eligible=True),
            candidate("loop-fail", "reconcile_failed", eligible=True),
        ],
        safety={"maxActionsPerRun": 5},
    )
    state = handoff(capsys, repo, "--autonomous-execute", "--trace-id", "trace-mixed-1")
    execution = state["execution"]
    assert execution["requestedIntentCount"] == 3
    assert (execution["executedCount"], execution["ambiguousCount"], execution["failedCount"]) == (
        1,
        1,
        1,
    )
    statuses = {loop: i["status"] for loop, i in by_loop(state).items()}
    assert statuses == {
        "loop-ok": "executed",
        "loop-amb": "execution_ambiguous",
        "loop-fail": "execution_failed",
    }
    assert state["reasonCodes"] == [
        "fleet_handoff_action_required",
        "fleet_handoff_auto_eligible_intents",
        "fleet_handoff_executed",
        "fleet_handoff_execution_ambiguous",
        "fleet_handoff_execution_failed",
    ]
    results = by_loop(state, "results")
    expected = {
        "loop-ok": ("executed", "control_confirmed", 0, "confirmed", True),
        "loop-amb": ("ambiguous", "control_ambiguous", 2, "ambiguous", False),
        "loop-fail": ("failed", "control_failed_command", 1, "failed_command", False),
    }
    for loop, (status, reason, code, control_status, confirmed) in expected.items():
        row = results[loop]
        assert (row["status"], row["reasonCode"], row["controlExitCode"]) == (status, reason, code)
        # the stub's stdout, parsed (its stderr line did not spoil it)
        assert row["control"] == {"status": control_status, "confirmed": confirmed}
        assert row["traceId"] == "trace-mixed-1"
    assert len(log_lines(control_stub)) == 3
    # the script owns the loop-level records: ops-manager wrote none of its own
    for loop in expected:
        assert not LoopPaths.for_loop(repo, loop).intents_file.exists()


def test_eligibility_classification_decides_who_is_called(
    repo: Path, control_stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R-HO-6: one eligible (red) and one manual-only (blue) intent."""
    seed(
        repo,
        [
            candidate("loop-red", "reconcile_failed", eligible=True),
            candidate("loop-blue", "health_critical"),
        ],
    )
    plan = handoff(capsys, repo)
    assert plan["summary"]["autoEligibleIntentCount"] == 1
    assert plan["summary"]["manualOnlyIntentCount"] == 1
    assert by_loop(plan)["loop-blue"]["autonomous"]["reasons"] == ["category_not_allowlisted"]
    assert log_lines(control_stub) == []  # a plan calls nothing
    state = handoff(capsys, repo, "--autonomous-execute")
    assert state["execution"]["mode"] == "autonomous"
    assert state["execution"]["requestedIntentCount"] == 1
    assert state["summary"]["executedCount"] == 1
    assert state["summary"]["pendingConfirmationCount"] == 1
    intents = by_loop(state)
    assert intents["loop-red"]["status"] == "executed"
    assert intents["loop-blue"]["status"] == "pending_operator_confirmation"
    assert state["execution"]["results"][0]["reasonCode"] == "control_confirmed"
    assert [c["loopId"] for c in log_lines(control_stub)] == ["loop-red"]


def test_execute_confirm_propagates_trace_and_idempotency_key(
    repo: Path, control_stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R-HO-4 with the stub: the exact §2.5 flags for a local loop."""
    seed(repo, [candidate("loop-red", "reconcile_failed")])
    args = ["--by", "operator-a", "--note", "manual_action"]
    args += ["--trace-id", "trace-fleet-handoff-exec-1"]
    code = main(["fleet-handoff", "--repo", str(repo), "--execute", *args])
    assert code == 1  # --execute without --confirm
    assert "--execute requires --confirm" in capsys.readouterr().err
    assert log_lines(control_stub) == []
    state = handoff(capsys, repo, "--execute", "--confirm", *args)
    result = state["execution"]["results"][0]
    intent = state["intents"][0]
    assert state["summary"]["executedCount"] == 1
    assert intent["status"] == "executed"
    assert result["traceId"] == "trace-fleet-handoff-exec-1"
    assert result["idempotencyKey"] == intent["idempotencyKey"]
    assert intent["idempotencyKey"] == (
        "fleet-handoff-trace-fleet-handoff-exec-1-loop-red-reconcile_failed-cancel"
    )
    (call,) = log_lines(control_stub)
    note = "manual_action | fleet_handoff:manual:loop-red:reconcile_failed:cancel"
    assert call["argv"] == [
        "--repo",
        str(repo),
        "--loop",
        "loop-red",
        "--intent",
        "cancel",
        "--transport",
        "local",
        "--trace-id",
        "trace-fleet-handoff-exec-1",
        "--idempotency-key",
        intent["idempotencyKey"],
        "--by",
        "operator-a",
        "--note",
        note,
        "--timeout-seconds",
        "30",
        "--interval-seconds",
        "2",
    ]


def test_no_runtime_confirm_adds_no_confirm(
    repo: Path, control_stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(repo, [candidate("loop-red", "reconcile_failed")])
    flags = ["--execute", "--confirm", "--no-runtime-confirm"]
    handoff(capsys, repo, *flags, "--timeout-seconds", "0", "--interval-seconds", "0")
    (call,) = log_lines(control_stub)
    assert call["argv"][-5:] == [
        "--timeout-seconds",
        "0",
        "--interval-seconds",
        "0",
        "--no-confirm",
    ]
    assert call["noConfirm"] is True


def test_retry_guard_after_an_ambiguous_outcome(
    repo: Path, control_stub: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """R-DRILL-RETRY: the stub always answers ambiguous (exit 2)."""
    monkeypatch.setenv("STUB_CONTROL_DEFAULT", "2")
    seed(repo, [candidate("loop-red", "reconcile_failed", eligible=True)])
    run1 = handoff(capsys, repo, "--autonomous-execute")
    assert run1["execution"]["requestedIntentCount"] == 1
    assert run1["summary"]["ambiguousCount"] == 1
    assert "fleet_handoff_execution_ambiguous" in run1["reasonCodes"]
    assert len(log_lines(control_stub)) == 1
    run2 = handoff(capsys, repo, "--autonomous-execute")
    assert run2["execution"]["requestedIntentCount"] == 0
    assert run2["summary"]["ambiguousCount"] == 0
    assert run2["summary"]["pendingConfirmationCount"] == 1
    intent = run2["intents"][0]
    assert intent["status"] == "pending_operator_confirmation"
    assert intent["autonomous"]["manualOnly"] is True
    assert "autonomous_retry_guard_ambiguous" in intent["autonomous"]["reasons"]
    assert {"fleet_handoff_retry_guarded", "fleet_handoff_confirmation_pending"} <= set(
        run2["reasonCodes"]
    )
    assert len(log_lines(control_stub)) == 1
    # an operator can always execute a guarded intent; it goes out under a fresh key
    monkeypatch.setenv("STUB_CONTROL_DEFAULT", "0")
    manual = handoff(capsys, repo, "--execute", "--confirm")
    assert manual["execution"]["results"][0]["status"] == "executed"
    keys = [c["idempotencyKey"] for c in log_lines(control_stub)]
    assert keys == [intent["idempotencyKey"], f"{intent['idempotencyKey']}-retry-1"]


def test_status_mapping_across_local_and_sprite_service(
    repo: Path, control_stub: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """R-HO-7: loop-ok local, loop-amb and loop-fail over sprite_service. ``--service-token``
    is passed only when the registry's ``tokenEnv`` names a non-empty variable; the
    ``$OPS_MANAGER_SERVICE_TOKEN`` fallback is the script's own business (it inherits it)."""
    monkeypatch.setenv(TOKEN_ENV, "tok-amb")
    monkeypatch.setenv("OPS_MANAGER_SERVICE_TOKEN", "fallback-token")
    base = "http://sprite-service.local"
    loops = [
        "loop-ok",
        sprite_loop("loop-amb", base, retry_attempts=2, retry_backoff_seconds=0),
        sprite_loop("loop-fail", base, token_env="UNSET_TOKEN_VAR_FOR_TEST"),
    ]
    cands = [
        candidate("loop-ok", "reconcile_failed"),
        candidate("loop-amb", "reconcile_failed"),
        candidate("loop-fail", "reconcile_failed"),
    ]
    write_registry(repo, registry(loops))
    from tests.test_fleet_handoff import policy_state

    write_policy(repo, policy_state(cands))
    state = handoff(capsys, repo, "--execute", "--confirm", "--trace-id", "trace-ho-7")
    assert (
        state["execution"]["executedCount"],
        state["execution"]["ambiguousCount"],
        state["execution"]["failedCount"],
    ) == (1, 1, 1)
    assert {loop: i["status"] for loop, i in by_loop(state).items()} == {
        "loop-ok": "executed",
        "loop-amb": "execution_ambiguous",
        "loop-fail": "execution_failed",
    }
    results = by_loop(state, "results")
    assert {loop: r["reasonCode"] for loop, r in results.items()} == {
        "loop-ok": "control_confirmed",
        "loop-amb": "control_ambiguous",
        "loop-fail": "control_failed_command",
    }
    assert results["loop-amb"]["traceId"] == "trace-ho-7"
    assert results["loop-fail"]["idempotencyKey"]
    calls = {c["loopId"]: c for c in log_lines(control_stub)}
    assert len(calls) == 3
    assert calls["loop-ok"]["transport"] == "local"
    assert "--service-base-url" not in calls["loop-ok"]["argv"]
    amb = calls["loop-amb"]
    assert (amb["transport"], amb["serviceBaseUrl"], amb["serviceToken"]) == (
        "sprite_service",
        base,
        "tok-amb",
    )
    assert amb["argv"][-8:] == [
        "--service-base-url",
        base,
        "--retry-attempts",
        "2",
        "--retry-backoff-seconds",
        "0",
        "--service-token",
        "tok-amb",
    ]
    fail = calls["loop-fail"]
    assert fail["argv"][-6:] == [
        "--service-base-url",
        base,
        "--retry-attempts",
        "3",
        "--retry-backoff-seconds",
        "1",
    ]
    assert fail["serviceToken"] == ""


@pytest.mark.parametrize("problem", ["missing", "not_executable"])
def test_a_control_script_that_cannot_run_is_a_failed_result(
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    problem: str,
) -> None:
    script = tmp_path / "no-such-control.sh"
    if problem == "not_executable":
        script.write_text(CONTROL_STUB)
        script.chmod(0o644)
    monkeypatch.setenv("OPS_MANAGER_CONTROL_SCRIPT", str(script))
    seed(repo, [candidate("loop-red", "reconcile_failed", eligible=True)])
    code = main(["fleet-handoff", "--repo", str(repo), "--autonomous-execute"])
    captured = capsys.readouterr()
    assert code == 0
    state = json.loads(captured.out)
    result = state["execution"]["results"][0]
    expected_code, words = (127, "not found") if problem == "missing" else (126, "not executable")
    assert (result["status"], result["reasonCode"], result["controlExitCode"]) == (
        "failed",
        "control_failed_command",
        expected_code,
    )
    # why is in the document, the command's whole output (nothing on stderr)
    assert result["control"] == {
        "status": "failed_command",
        "confirmed": False,
        "error": f"control script {words}: {script}",
    }
    assert state["intents"][0]["status"] == "execution_failed"
    assert state["intents"][0]["execution"]["controlStatus"] == "failed_command"
    assert captured.err == ""


def test_unparseable_control_output_is_null_and_stderr_is_named(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    script = write_script(
        tmp_path / "noisy.sh",
        BASH + 'echo "progress: working"\necho "boom: no route" >&2\nexit 5\n',
    )
    monkeypatch.setenv("OPS_MANAGER_CONTROL_SCRIPT", str(script))
    seed(repo, [candidate("loop-red", "reconcile_failed", eligible=True)])
    assert main(["fleet-handoff", "--repo", str(repo), "--autonomous-execute"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)["execution"]["results"][0]
    assert (result["status"], result["controlExitCode"]) == ("failed", 5)
    # unparseable stdout: no document of the script's own; the failure says why instead
    assert result["control"]["status"] == "failed_command"
    assert "control script exited 5: boom: no route" in result["control"]["error"]
    assert captured.err == ""


# --- the real loop-level control with $OPS_MANAGER_CONFIRM_SCRIPT ------------------------------


@pytest.fixture
def confirm_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``SUPERLOOP_BIN`` prints ok; ``$OPS_MANAGER_CONFIRM_SCRIPT`` is the confirm stub."""
    bindir = tmp_path / "bin"
    superloop = write_script(bindir / "superloop", SUPERLOOP_OK)
    confirm = write_script(bindir / "confirm-stub.sh", CONFIRM_STUB)
    log = tmp_path / "confirm-calls.jsonl"
    monkeypatch.setenv("SUPERLOOP_BIN", str(superloop))
    monkeypatch.setenv("STUB_SUPERLOOP_LOG", str(tmp_path / "superloop-calls.log"))
    monkeypatch.setenv("OPS_MANAGER_CONFIRM_SCRIPT", str(confirm))
    monkeypatch.setenv("STUB_CONFIRM_LOG", str(log))
    for name in ("STUB_CONFIRM_EXIT", "STUB_CONFIRM_GARBAGE"):
        monkeypatch.delenv(name, raising=False)
    return log


def last_record(path: Path) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(path.read_text().splitlines()[-1])
    return row


def test_handoff_through_the_real_control_confirms_with_the_confirm_script(
    repo: Path, confirm_stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fleet.md §5.1 test 34: no control script; the real control runs ``SUPERLOOP_BIN``
    (prints ok, changes nothing) and the confirm stub confirms."""
    make_runtime_repo(repo, "loop-red", active=True)
    seed(repo, [candidate("loop-red", "reconcile_failed")])
    state = handoff(
        capsys,
        repo,
        "--execute",
        "--confirm",
        "--by",
        "operator-a",
        "--note",
        "manual_action",
        "--trace-id",
        "trace-fleet-handoff-exec-1",
        "--timeout-seconds",
        "7",
        "--interval-seconds",
        "1",
    )
    result = state["execution"]["results"][0]
    assert state["summary"]["executedCount"] == 1
    assert state["intents"][0]["status"] == "executed"
    assert result["control"]["status"] == "confirmed"
    paths = LoopPaths.for_loop(repo, "loop-red")
    row = last_record(paths.control_telemetry_file)
    assert (row["traceId"], row["idempotencyKey"]) == (
        "trace-fleet-handoff-exec-1",
        result["idempotencyKey"],
    )
    entry = last_record(paths.intents_file)
    assert entry["confirm"] == {
        "intent": "cancel",
        "confirmed": True,
        "reason": "stub_confirmed",
        "attempts": 1,
    }
    assert (entry["commandOutput"], entry["confirmExitCode"]) == ("ok", 0)
    (call,) = log_lines(confirm_stub)
    assert call["argv"] == [
        "--repo",
        str(repo),
        "--loop",
        "loop-red",
        "--intent",
        "cancel",
        "--timeout-seconds",
        "7",
        "--interval-seconds",
        "1",
    ]


def control_cli(
    capsys: pytest.CaptureFixture[str], repo: Path, *flags: str
) -> tuple[int, dict[str, Any], str]:
    code = main(["control", "--repo", str(repo), "--loop", "demo-loop", *flags])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


@pytest.mark.parametrize("garbage", [False, True])
def test_a_failing_confirm_script_makes_the_intent_ambiguous(
    repo: Path,
    confirm_stub: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    garbage: bool,
) -> None:
    make_runtime_repo(repo, active=True)
    monkeypatch.setenv("STUB_CONFIRM_EXIT", "3")
    if garbage:
        monkeypatch.setenv("STUB_CONFIRM_GARBAGE", "1")
    code, entry, err = control_cli(capsys, repo, "--intent", "approve", "--idempotency-key", "k")
    assert code == 2
    assert err == ""
    assert (entry["status"], entry["confirmed"], entry["confirmExitCode"]) == (
        "ambiguous",
        False,
        3,
    )
    if garbage:
        assert "confirm" not in entry  # unparseable -> null (stripped)
    else:
        assert entry["confirm"]["reason"] == "timeout"
    invocation = last_record(LoopPaths.for_loop(repo, "demo-loop").control_invocations_file)
    assert invocation["confirmation"]["status"] == "ambiguous"
    assert invocation["confirmation"]["exitCode"] == 3
    assert invocation["outcome"]["reasonCode"] == "control_ambiguous"
    assert len(log_lines(confirm_stub)) == 1


def test_a_missing_confirm_script_is_ambiguous_and_says_why(
    repo: Path,
    confirm_stub: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_runtime_repo(repo, active=True)
    missing = tmp_path / "nowhere" / "confirm.sh"
    monkeypatch.setenv("OPS_MANAGER_CONFIRM_SCRIPT", str(missing))
    code, entry, err = control_cli(capsys, repo, "--intent", "cancel")
    assert (code, err) == (2, "")
    assert (entry["status"], entry["confirmExitCode"]) == ("ambiguous", 127)
    assert entry["commandOutput"] == f"ok\nconfirm script not found: {missing}"


def test_no_confirm_skips_the_confirm_script(
    repo: Path, confirm_stub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_runtime_repo(repo, active=True)
    code, entry, _ = control_cli(capsys, repo, "--intent", "cancel", "--no-confirm")
    assert (code, entry["status"]) == (0, "executed_unconfirmed")
    assert log_lines(confirm_stub) == []


@pytest.mark.parametrize(
    ("confirm_exit", "status", "code"), [(0, "confirmed", 0), (4, "ambiguous", 2)]
)
def test_sprite_service_confirms_through_the_services_confirm_script(
    tmp_path: Path,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    confirm_exit: int,
    status: str,
    code: int,
) -> None:
    """Over ``sprite_service`` the service runs the local control, so the variable is read
    from the service's environment (inside the sprite), and its verdict travels back."""
    service_repo = make_runtime_repo(tmp_path / "sprite-repo", active=True).resolve()
    bindir = tmp_path / "svc-bin"
    log = tmp_path / "svc-confirm.jsonl"
    env = {
        "SUPERLOOP_BIN": str(write_script(bindir / "superloop", SUPERLOOP_OK)),
        "STUB_SUPERLOOP_LOG": str(tmp_path / "svc-superloop.log"),
        "OPS_MANAGER_CONFIRM_SCRIPT": str(write_script(bindir / "confirm.sh", CONFIRM_STUB)),
        "STUB_CONFIRM_LOG": str(log),
        "STUB_CONFIRM_EXIT": str(confirm_exit),
    }
    token = "svc-token-for-test"
    with ServiceProcess(service_repo, token=token, env=env).running() as service:
        monkeypatch.setenv("OPS_MANAGER_SERVICE_TOKEN", token)  # the manager's side
        got, entry, err = control_cli(
            capsys,
            repo,
            "--intent",
            "cancel",
            "--transport",
            "sprite_service",
            "--service-base-url",
            service.url,
            "--idempotency-key",
            f"svc-confirm-{confirm_exit}",
        )
    assert err == ""
    assert (got, entry["status"], entry["transport"]) == (code, status, "sprite_service")
    assert entry["confirm"]["reason"] == ("stub_confirmed" if confirm_exit == 0 else "timeout")
    assert entry["confirmExitCode"] == confirm_exit
    (call,) = log_lines(log)
    assert call["argv"][:6] == [
        "--repo",
        str(service_repo),
        "--loop",
        "demo-loop",
        "--intent",
        "cancel",
    ]
