"""The console's JSON API against a real server on 127.0.0.1 and a seeded fleet (issue 8).

The seeded fleet is built by the real pipeline, in-process through ``ops_manager.cli.main``:
a repo with four loops (``tests/fleet_fixtures.make_fleet_repo``) -- ``loop-green`` healthy,
``loop-amber`` degraded (heartbeat 180 s old), ``loop-red`` critical (heartbeat 900 s old),
``loop-gone`` without runtime artifacts (its reconcile fails) -- under a ``guarded_auto``
registry; two ``fleet-reconcile`` passes, the first dispatching the escalations to three
webhook sinks on loopback receivers answering 200 (delivered), 503 (retrying) and 400
(failed), the second with dispatch off; ``fleet-policy``; ``fleet-handoff
--autonomous-execute`` (one autonomous outcome, ambiguous), which leaves three intents
pending in the manual backlog. Control goes to the stub Superloop CLI
(``tests/stub_superloop.py``) through ``SUPERLOOP_BIN``.

Every test runs a :class:`ConsoleServer` in a thread on 127.0.0.1 with port 0 and stops it;
one test runs the real ``ops-manager console`` process and stops it with SIGTERM.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from ops_manager.cli import main
from ops_manager.console import ConsoleApi, ConsoleConfig, ConsoleServer, delivery_outcome
from ops_manager.errors import OpsError
from ops_manager.testing import LoopbackReceiver
from tests.fleet_fixtures import guarded_auto_policy, make_fleet_repo, registry_doc, write_registry

STUB = Path(__file__).with_name("stub_superloop.py")
LOOPS = ("loop-amber", "loop-gone", "loop-green", "loop-red")
RED_INTENT = "loop-red:health_critical:cancel"
AMBER_INTENT = "loop-amber:health_degraded:cancel"
GONE_INTENT = "loop-gone:health_degraded:cancel"


# --- the seeded fleet -------------------------------------------------------------------------


@attrs.frozen
class SeededFleet:
    """A repo whose fleet has been reconciled, alerted, planned and partly executed."""

    repo: Path
    env: Mapping[str, str]

    @property
    def handoff_state_file(self) -> Path:
        return self.repo / ".superloop" / "ops-manager" / "fleet" / "handoff-state.json"

    def handoff_state(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.handoff_state_file.read_text("utf-8"))
        return value

    def intent(self, intent_id: str) -> dict[str, Any]:
        return next(i for i in self.handoff_state()["intents"] if i["intentId"] == intent_id)


def _run(argv: list[str]) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, f"{argv[0]} exited {code}: {err.getvalue()}"
    value: dict[str, Any] = json.loads(out.getvalue())
    return value


def _alert_config() -> dict[str, Any]:
    def sink(env: str) -> dict[str, Any]:
        return {"enabled": True, "type": "webhook", "urlEnv": env, "timeoutSeconds": 2}

    return {
        "schemaVersion": "v1",
        "defaultMinSeverity": "warning",
        "sinks": {
            "ops-webhook": sink("CONSOLE_SINK_OK_URL"),
            "ops-flaky": sink("CONSOLE_SINK_FLAKY_URL"),
            "ops-broken": sink("CONSOLE_SINK_BROKEN_URL"),
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
                    "sinks": ["ops-webhook", "ops-flaky", "ops-broken"],
                    "minSeverity": "critical",
                    "enabled": True,
                }
            ],
        },
        "delivery": {
            "maxAttempts": 2,
            "deadlineSeconds": 3,
            "backoffBaseSeconds": 0.05,
            "backoffMaxSeconds": 0.1,
            "maxRetryAfterSeconds": 1,
        },
    }


def seed_fleet(root: Path, mp: pytest.MonkeyPatch, *, history: int = 0) -> SeededFleet:
    """Build and run the seeded fleet described in the module docstring.

    ``history`` adds that many more ``fleet-reconcile`` passes, a second apart (longer
    lines on the SLO charts, for the documentation's screenshots).
    """
    repo = make_fleet_repo(
        root / "repo",
        list(LOOPS),
        without_artifacts=["loop-gone"],
        heartbeat_ages={"loop-amber": 180, "loop-red": 900},
        registry=False,
    ).resolve()
    policy = guarded_auto_policy(
        allow={"categories": ["reconcile_failed", "health_critical"], "intents": ["cancel"]},
        safety={"maxActionsPerRun": 1, "maxActionsPerLoop": 1, "cooldownSeconds": 0},
    )
    write_registry(repo, registry_doc(list(LOOPS), fleet_id="console-fleet", policy=policy))

    bindir = root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    wrapper = bindir / "superloop"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(STUB))} "$@"\n'
    )
    wrapper.chmod(0o755)
    for key in list(os.environ):
        if key.startswith(("OPS_MANAGER_", "STUB_SUPERLOOP_")):
            mp.delenv(key)
    env = {
        "SUPERLOOP_BIN": str(wrapper),
        "STUB_SUPERLOOP_LOG": str(root / "stub-calls.jsonl"),
        "STUB_SUPERLOOP_MODE": "stop_on_cancel",
        "USER": "console-tester",
    }
    for key, value in env.items():
        mp.setenv(key, value)

    config = root / "alert-sinks.json"
    config.write_text(json.dumps(_alert_config()), "utf-8")
    mp.setenv("OPS_MANAGER_ALERT_SINKS_FILE", str(config))
    with (
        LoopbackReceiver(name="ok") as ok,
        LoopbackReceiver(name="flaky", default=503) as flaky,
        LoopbackReceiver(name="broken", default=400) as broken,
    ):
        mp.setenv("CONSOLE_SINK_OK_URL", ok.url_for("/hooks/ok"))
        mp.setenv("CONSOLE_SINK_FLAKY_URL", flaky.url_for("/hooks/flaky"))
        mp.setenv("CONSOLE_SINK_BROKEN_URL", broken.url_for("/hooks/broken"))
        # each loop-level reconcile dispatches its new escalations (fail-open)
        _run(["fleet-reconcile", "--repo", str(repo), "--trace-id", "trace-console-1"])
    # a second pass without dispatch: the outbox keeps its 'retrying' entry as it is
    mp.setenv("OPS_MANAGER_ALERTS_ENABLED", "false")
    for n in range(2, 2 + history):
        _run(["fleet-reconcile", "--repo", str(repo), "--trace-id", f"trace-console-h{n}"])
        time.sleep(1.05)
    _run(["fleet-reconcile", "--repo", str(repo), "--trace-id", "trace-console-2"])
    mp.delenv("OPS_MANAGER_ALERTS_ENABLED")
    _run(["fleet-policy", "--repo", str(repo)])
    # one autonomous execution (the first eligible intent; maxActionsPerRun 1)
    _run(["fleet-handoff", "--repo", str(repo), "--autonomous-execute", "--timeout-seconds", "3"])
    return SeededFleet(repo=repo, env=env)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededFleet]:
    """One seeded fleet per test module (built once; tests that write use their own)."""
    with pytest.MonkeyPatch.context() as mp:
        yield seed_fleet(tmp_path_factory.mktemp("console-fleet"), mp)


@pytest.fixture
def fresh_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SeededFleet:
    """A seeded fleet of this test's own (for tests that confirm an intent)."""
    return seed_fleet(tmp_path, monkeypatch)


# --- a console server in a thread -------------------------------------------------------------


class Client:
    """Minimal HTTP client for the console (urllib; no redirects followed)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, data=body, method=method)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=60) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def get_json(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, _, data = self.request("GET", path, **kw)
        return status, json.loads(data)

    def post_json(
        self, path: str, value: Any, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        status, _, data = self.request("POST", path, body=json.dumps(value).encode(), headers=hdrs)
        return status, json.loads(data)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextlib.contextmanager
def running_console(repo: Path, **config: Any) -> Iterator[tuple[ConsoleServer, Client]]:
    """A :class:`ConsoleServer` on 127.0.0.1:0 in a daemon thread; always stopped."""
    server = ConsoleServer(
        ConsoleConfig(repo=repo, host="127.0.0.1", port=0, access_log=False, **config)
    )
    thread = threading.Thread(target=server.serve_forever, name="console", daemon=True)
    thread.start()
    try:
        yield server, Client(server.url)
    finally:
        server.shutdown()
        server.close()
        thread.join(timeout=10)


@pytest.fixture
def console(seeded: SeededFleet) -> Iterator[Client]:
    with running_console(seeded.repo) as (_, client):
        yield client


# --- GET /api/fleet ---------------------------------------------------------------------------


def test_fleet_posture_and_loops(console: Client, seeded: SeededFleet) -> None:
    status, body = console.get_json("/api/fleet")
    assert status == 200
    assert body["fleetId"] == "console-fleet"
    assert body["source"] == "fleet-status"
    # loop-gone's failed reconcile reports a degraded health (its failure JSON)
    assert body["posture"] == {"healthy": 1, "degraded": 2, "critical": 1, "unknown": 0}
    assert body["fleet"]["status"] == "partial_failure"
    assert "fleet_health_critical" in body["fleet"]["reasonCodes"]
    assert body["exceptions"]["criticalLoops"] == ["loop-red"]
    assert body["exceptions"]["degradedLoops"] == ["loop-amber", "loop-gone"]
    assert body["exceptions"]["reconcileFailures"] == ["loop-gone"]
    rows = {r["loopId"]: r for r in body["loops"]}
    assert list(rows) == list(LOOPS)  # registry order
    assert rows["loop-red"]["healthStatus"] == "critical" and rows["loop-red"]["critical"]
    assert "runtime_heartbeat_stale" in rows["loop-red"]["healthReasonCodes"]
    assert rows["loop-amber"]["healthStatus"] == "degraded" and not rows["loop-amber"]["critical"]
    assert rows["loop-green"]["healthStatus"] == "healthy"
    for loop in LOOPS:  # the lifecycle the status command reports
        if loop != "loop-gone":
            cli = _run(["status", "--repo", str(seeded.repo), "--loop", loop])
            assert rows[loop]["lifecycleState"] == cli["lifecycle"]["state"]
            assert rows[loop]["healthReasonCodes"] == cli["health"]["reasonCodes"]
    assert rows["loop-green"]["lastReconcileStatus"] == "success"
    assert rows["loop-green"]["ingestLagSeconds"] is not None
    assert rows["loop-red"]["heartbeatAgeSeconds"] >= 900
    assert rows["loop-gone"]["fleetReconcileStatus"] == "failed"
    assert rows["loop-gone"]["fleetReasonCode"]
    assert body["backlog"] == {"pendingCount": 3, "manualBacklogCount": 3}
    assert body["policyMode"] == "guarded_auto"
    assert body["warnings"] == []


def test_fleet_matches_the_fleet_status_command(console: Client, seeded: SeededFleet) -> None:
    """No second implementation: the posture is what ``ops-manager fleet-status`` says."""
    cli = _run(["fleet-status", "--repo", str(seeded.repo)])
    _, body = console.get_json("/api/fleet")
    assert body["posture"] == cli["healthRollup"]
    assert body["exceptions"] == cli["exceptions"]
    assert body["fleet"] == cli["fleet"]


def test_fleet_without_any_fleet_artifacts(tmp_path: Path) -> None:
    """A repo never fleet-reconciled: loops found on disk, posture from their health."""
    repo = make_fleet_repo(tmp_path / "r", ["solo"], registry=False).resolve()
    _run(["reconcile", "--repo", str(repo), "--loop", "solo"])
    with running_console(repo) as (_, client):
        status, body = client.get_json("/api/fleet")
        assert status == 200
        assert body["source"] == "loops" and body["fleet"] is None
        assert [r["loopId"] for r in body["loops"]] == ["solo"]
        assert body["posture"]["healthy"] == 1
        status, backlog = client.get_json("/api/backlog")
        assert status == 200 and backlog["available"] is False and backlog["pending"] == []


def test_fleet_with_a_rejected_registry_still_shows_the_loops(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "r", ["one", "two"]).resolve()
    _run(["fleet-reconcile", "--repo", str(repo)])
    registry = repo / ".superloop" / "ops-manager" / "fleet" / "registry.v1.json"
    doc = json.loads(registry.read_text("utf-8"))
    doc["policy"] = {"mode": "bogus"}
    registry.write_text(json.dumps(doc), "utf-8")
    with running_console(repo) as (_, client):
        status, body = client.get_json("/api/fleet")
    assert status == 200
    assert [r["loopId"] for r in body["loops"]] == ["one", "two"]
    assert body["source"] == "fleet-status"  # the reduced object read from state.json
    assert any("invalid fleet registry" in w for w in body["warnings"])


# --- GET /api/loops/<id> ----------------------------------------------------------------------


def test_loop_drilldown(console: Client, seeded: SeededFleet) -> None:
    status, body = console.get_json("/api/loops/loop-red")
    assert status == 200
    assert body["loopId"] == "loop-red"
    # the per-loop status is the status command's object
    cli = _run(
        ["status", "--repo", str(seeded.repo), "--loop", "loop-red", "--summary-window", "50"]
    )
    for key in ("lifecycle", "health", "cursor", "reconcile"):
        assert body["status"][key] == cli[key]
    assert body["row"]["critical"] is True
    assert [e["event"] for e in body["events"]][-1] == "loop_start"  # newest first
    assert body["escalations"] and body["escalations"][0]["category"] == "health_critical"
    [delivery] = [d for d in body["deliveries"] if d["category"] == "health_critical"]
    outcomes = {s["id"]: s["outcome"] for s in delivery["sinks"]}
    assert outcomes == {"ops-webhook": "delivered", "ops-flaky": "retrying", "ops-broken": "failed"}
    reasons = {s["id"]: s["reasonCode"] for s in delivery["sinks"]}
    assert reasons["ops-webhook"] is None
    assert reasons["ops-flaky"] and reasons["ops-broken"]
    outbox = {o["sinkId"]: o["outcome"] for o in body["outbox"]}
    assert outbox.get("ops-flaky") == "retrying"
    assert len(body["reconciles"]) == 2


def test_loop_drilldown_of_a_loop_without_artifacts(console: Client) -> None:
    status, body = console.get_json("/api/loops/loop-gone")
    assert status == 200
    # its failed reconcile still wrote a health projection: degraded, transport_unreachable
    assert body["status"]["health"]["reasonCodes"] == ["transport_unreachable"]
    assert body["statusError"] is None
    assert body["events"] == []  # no runtime stream at all
    assert {d["category"] for d in body["deliveries"]} == {"health_degraded"}


@pytest.mark.parametrize(
    ("path", "code", "error"),
    [
        ("/api/loops/..", 400, "invalid_loop_id"),
        ("/api/loops/a%2Fb", 400, "invalid_loop_id"),
        ("/api/loops/%2E%2E%2Fetc", 400, "invalid_loop_id"),
        ("/api/loops/bad%00id", 400, "invalid_loop_id"),
        ("/api/loops/%ff%fe", 400, "invalid_loop_id"),
        ("/api/loops/no-such-loop", 404, "loop_not_found"),
        ("/api/nope", 404, "not_found"),
        ("/api/backlog/x/confirm", 405, "method_not_allowed"),
    ],
)
def test_bad_paths_are_json_errors(console: Client, path: str, code: int, error: str) -> None:
    status, headers, data = console.request("GET", path)
    assert status == code
    assert headers["Content-Type"] == "application/json"
    assert json.loads(data)["error"]["code"] == error


# --- GET /api/slo -----------------------------------------------------------------------------


def test_slo_series(console: Client) -> None:
    status, body = console.get_json("/api/slo")
    assert status == 200
    latency = {s["name"]: s["points"] for s in body["reconcileLatency"]["series"]}
    assert {"loop-green", "loop-amber", "loop-red", "fleet reconcile"} <= set(latency)
    assert len(latency["fleet reconcile"]) == 2
    assert all(isinstance(v, float) for _, v in latency["loop-red"])
    lag = {s["name"] for s in body["ingestLag"]["series"]}
    assert {"loop-green", "loop-amber", "loop-red"} <= lag
    delivery = body["deliverySuccess"]
    assert delivery["totals"]["delivered"] >= 2  # loop-red and loop-amber to ops-webhook
    assert delivery["totals"]["retrying"] >= 1 and delivery["totals"]["failed"] >= 1
    assert 0 < delivery["rate"] < 1
    assert {s["id"] for s in delivery["bySink"]} == {"ops-webhook", "ops-flaky", "ops-broken"}
    auto = body["autonomousOutcomes"]
    assert auto["totals"]["attempted"] == 1
    assert auto["totals"]["ambiguous"] == 1  # the stub's cancel of a loop without a run
    assert auto["series"]


# --- GET /api/backlog and POST confirm --------------------------------------------------------


def test_backlog_lists_pending_intents(console: Client, seeded: SeededFleet) -> None:
    status, body = console.get_json("/api/backlog")
    assert status == 200 and body["available"] is True
    assert [i["intentId"] for i in body["pending"]] == [AMBER_INTENT, GONE_INTENT, RED_INTENT]
    assert all(i["manualOnly"] for i in body["pending"])
    assert body["manualBacklogCount"] == 3
    assert body["mode"] == "guarded_auto"
    on_disk = seeded.handoff_state()
    assert body["updatedAt"] == on_disk["updatedAt"]
    assert body["summary"] == on_disk["summary"]
    # the autonomous execution of the seed shows in the recently handled list
    [handled] = body["recent"]
    assert handled["intentId"] == "loop-gone:reconcile_failed:cancel"
    assert handled["status"] == "execution_ambiguous"
    assert handled["execution"]["mode"] == "autonomous"


def test_confirm_runs_the_handoff_and_changes_the_state(fresh_fleet: SeededFleet) -> None:
    before = fresh_fleet.intent(RED_INTENT)
    assert before["status"] == "pending_operator_confirmation"
    with running_console(fresh_fleet.repo) as (_, client):
        status, body = client.post_json(
            f"/api/backlog/{RED_INTENT}/confirm", {"by": "alice", "note": "paged by console"}
        )
        assert status == 200, body
        assert body["intentId"] == RED_INTENT
        outcome = body["outcome"]
        assert (outcome["status"], outcome["reasonCode"]) == ("executed", "control_confirmed")
        assert outcome["requestedBy"] == "alice"
        assert body["execution"]["mode"] == "manual"
        assert body["execution"]["note"] == "paged by console"
        # on disk: the same state the CLI would have written
        after = fresh_fleet.intent(RED_INTENT)
        assert after["status"] != "pending_operator_confirmation"
        assert after["execution"]["requestedBy"] == "alice"
        state = fresh_fleet.handoff_state()
        assert state["execution"]["requestedIntentCount"] == 1
        assert [r["intentId"] for r in state["execution"]["results"]] == [RED_INTENT]
        # the other intent is untouched and still pending
        assert fresh_fleet.intent(AMBER_INTENT)["status"] == "pending_operator_confirmation"
        # the control call carried the note and the requester
        control = (
            fresh_fleet.repo / ".superloop/ops-manager/loop-red/telemetry/control.jsonl"
        ).read_text("utf-8")
        assert "alice" in control
        # confirming again: no longer pending
        status, body = client.post_json(f"/api/backlog/{RED_INTENT}/confirm", {"by": "alice"})
        assert status == 409 and body["error"]["code"] == "intent_not_pending"
        _, backlog = client.get_json("/api/backlog")
        # the re-plan puts the ambiguous autonomous intent back, retry-guarded (manual-only)
        assert [i["intentId"] for i in backlog["pending"]] == [
            AMBER_INTENT,
            GONE_INTENT,
            "loop-gone:reconcile_failed:cancel",
        ]
        assert all(i["manualOnly"] for i in backlog["pending"])


@pytest.mark.parametrize(
    ("body", "code", "error"),
    [
        ({}, 400, "missing_by"),
        ({"by": ""}, 400, "missing_by"),
        ({"by": "   "}, 400, "missing_by"),
        ({"note": "x"}, 400, "missing_by"),
        ({"by": 7}, 400, "invalid_by"),
        ({"by": "x" * 200}, 400, "invalid_by"),
        ({"by": "a\nb"}, 400, "invalid_by"),
        ({"by": "alice", "note": 5}, 400, "invalid_note"),
        ({"by": "alice", "extra": 1}, 400, "invalid_request"),
        ([1, 2], 400, "invalid_request"),
        (None, 400, "invalid_request"),
    ],
)
def test_confirm_rejects_bad_input(
    console: Client, seeded: SeededFleet, body: Any, code: int, error: str
) -> None:
    before = seeded.handoff_state_file.read_bytes()
    status, answer = console.post_json(f"/api/backlog/{RED_INTENT}/confirm", body)
    assert status == code, answer
    assert answer["error"]["code"] == error
    assert seeded.handoff_state_file.read_bytes() == before  # nothing executed


def test_confirm_unknown_intent_and_transport_errors(console: Client, seeded: SeededFleet) -> None:
    before = seeded.handoff_state_file.read_bytes()
    status, answer = console.post_json("/api/backlog/no:such:intent/confirm", {"by": "bob"})
    assert (status, answer["error"]["code"]) == (404, "intent_not_found")
    # not JSON
    status, _, data = console.request(
        "POST",
        f"/api/backlog/{RED_INTENT}/confirm",
        body=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert (status, json.loads(data)["error"]["code"]) == (400, "invalid_json")
    # wrong content type (what a cross-site HTML form would send)
    status, _, data = console.request(
        "POST",
        f"/api/backlog/{RED_INTENT}/confirm",
        body=b"by=mallory",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, json.loads(data)["error"]["code"]) == (415, "unsupported_media_type")
    # a foreign Origin
    status, answer = console.post_json(
        f"/api/backlog/{RED_INTENT}/confirm", {"by": "x"}, headers={"Origin": "http://evil.test"}
    )
    assert (status, answer["error"]["code"]) == (403, "forbidden_origin")
    # too large
    status, _, data = console.request(
        "POST",
        f"/api/backlog/{RED_INTENT}/confirm",
        body=b"{" + b" " * 20000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert (status, json.loads(data)["error"]["code"]) == (413, "payload_too_large")
    # other methods
    status, _, data = console.request("PUT", "/api/fleet")
    assert status == 405 and json.loads(data)["error"]["code"] == "method_not_allowed"
    status, _, data = console.request("POST", "/api/fleet", headers={"Content-Type": "x"})
    assert status == 405
    assert seeded.handoff_state_file.read_bytes() == before


def test_confirm_reports_a_failing_handoff_as_422(fresh_fleet: SeededFleet) -> None:
    """The handoff command's own error (here: the policy state vanished) reaches the page."""
    (fresh_fleet.repo / ".superloop/ops-manager/fleet/policy-state.json").unlink()
    with running_console(fresh_fleet.repo) as (_, client):
        status, answer = client.post_json(f"/api/backlog/{RED_INTENT}/confirm", {"by": "carol"})
    assert status == 422
    assert answer["error"]["code"] == "handoff_failed"
    assert "policy state file not found" in answer["error"]["message"]


# --- the page and its assets ------------------------------------------------------------------


def test_page_and_assets_are_served_with_a_strict_policy(console: Client) -> None:
    status, headers, data = console.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = data.decode("utf-8")
    assert '<script src="/static/app.js"' in page and "/static/app.css" in page
    assert "http://" not in page and "https://" not in page  # nothing from the internet
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    for asset, ctype in (("/static/app.js", "text/javascript"), ("/static/app.css", "text/css")):
        status, headers, data = console.request("GET", asset)
        assert status == 200 and headers["Content-Type"].startswith(ctype)
        text = data.decode("utf-8")
        assert "https://" not in text and "import(" not in text and "@import" not in text
    status, _, _ = console.request("GET", "/favicon.ico")
    assert status == 204
    status, _, data = console.request("HEAD", "/api/fleet")
    assert status == 200 and data == b""


# --- auth and binding -------------------------------------------------------------------------


def test_token_auth(seeded: SeededFleet) -> None:
    token = "console-test-token-0123"
    with running_console(seeded.repo, token=token) as (_, client):
        for path in ("/", "/static/app.js", "/api/fleet", "/api/slo", "/api/backlog"):
            status, _, data = client.request("GET", path)
            assert status == 401, path
            assert json.loads(data)["error"]["code"] == "unauthorized"
        status, _, _ = client.request("GET", "/api/fleet", headers={"Authorization": "Bearer nope"})
        assert status == 401
        status, _, _ = client.request(
            "GET", "/api/fleet", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 200
        status, answer = client.post_json(f"/api/backlog/{RED_INTENT}/confirm", {"by": "eve"})
        assert status == 401 and answer["error"]["code"] == "unauthorized"
        # /?token= sets an HttpOnly SameSite cookie and redirects to / (token leaves the URL)
        status, headers, _ = client.request("GET", f"/?token={token}")
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        pair = cookie.split(";")[0]
        status, _, _ = client.request("GET", "/api/backlog", headers={"Cookie": pair})
        assert status == 200
        status, _, _ = client.request("GET", "/?token=wrong")
        assert status == 401
        status, _, _ = client.request(
            "GET", "/api/fleet", headers={"Cookie": "ops_console_token=wrong"}
        )
        assert status == 401


def test_non_loopback_host_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(OpsError, match=r"non-loopback host 0\.0\.0\.0 without a token"):
        ConsoleServer(ConsoleConfig(repo=tmp_path, host="0.0.0.0", port=0))
    code = main(["console", "--repo", str(tmp_path), "--host", "0.0.0.0", "--port", "0"])
    assert code == 1


def test_foreign_host_header_is_refused_without_a_token(console: Client) -> None:
    """DNS rebinding: a page served under another name cannot read the API."""
    status, _, data = console.request("GET", "/api/fleet", headers={"Host": "evil.test:80"})
    assert status == 403 and json.loads(data)["error"]["code"] == "forbidden_host"
    status, _, _ = console.request("GET", "/api/fleet", headers={"Host": "localhost:1"})
    assert status == 200


def test_cli_flag_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["console"]) == 1
    assert "error: --repo is required" in capsys.readouterr().err
    assert main(["console", "--repo", str(tmp_path / "missing")]) == 1
    assert "repo directory not found" in capsys.readouterr().err
    assert main(["console", "--repo", str(tmp_path), "--port", "99999"]) == 1
    assert "--port must be" in capsys.readouterr().err


# --- the real process -------------------------------------------------------------------------


def test_real_console_process_serves_and_stops_on_sigterm(seeded: SeededFleet) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    env["OPS_MANAGER_CONSOLE_TOKEN"] = "process-token-42"
    code = "import sys; from ops_manager.cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "console", "--repo", str(seeded.repo), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("ops-manager console listening on http://127.0.0.1:"), line
        assert "process-token-42" not in line  # the token is never printed
        client = Client(line.split(" on ", 1)[1].split(" ", 1)[0])
        status, _, _ = client.request("GET", "/api/fleet")
        assert status == 401
        status, body = client.get_json(
            "/api/fleet", headers={"Authorization": "Bearer process-token-42"}
        )
        assert status == 200 and body["fleetId"] == "console-fleet"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_delivery_outcome_mapping() -> None:
    assert delivery_outcome({"status": "success"}) == "delivered"
    assert delivery_outcome({"status": "failed", "outboxStatus": "retrying"}) == "retrying"
    assert delivery_outcome({"status": "failed", "outboxStatus": "queued"}) == "retrying"
    assert delivery_outcome({"status": "failed", "outboxStatus": "terminal"}) == "failed"
    assert delivery_outcome({"status": "failed", "outboxStatus": "gave_up"}) == "failed"
    assert delivery_outcome({"status": "failed"}) == "failed"


def test_ingest_lag_samples_one_point_per_reconcile_pass(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "r", ["solo"], registry=False).resolve()
    _run(["reconcile", "--repo", str(repo), "--loop", "solo"])
    api = ConsoleApi(repo)
    for _ in range(3):
        api.fleet()
    series = {s["name"]: s["points"] for s in api.slo().body["ingestLag"]["series"]}
    assert len(series["solo"]) == 1  # same health.updatedAt: one sample
    time.sleep(1.1)
    _run(["reconcile", "--repo", str(repo), "--loop", "solo"])
    series = {s["name"]: s["points"] for s in api.slo().body["ingestLag"]["series"]}
    assert len(series["solo"]) == 2
