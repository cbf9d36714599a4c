"""The sprite service as a REAL process on 127.0.0.1 (``loop.md`` §3.12, §7.7 items 85-90, 95-99).

Every test talks HTTP to ``ops-manager sprite-service`` started by
:class:`tests.service_process.ServiceProcess` (random free port, token from a fixture,
always stopped with SIGTERM). Control tests run the stub Superloop CLI
(``tests/stub_superloop.py``), which logs each invocation so "executed once" is counted,
not assumed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from ops_manager.cli import main
from tests.runtime_fixtures import (
    append_events,
    default_events,
    event,
    make_runtime_repo,
    pending_approval,
    ts,
    write_pretty,
)
from tests.service_process import ServiceProcess, stub_calls, stub_superloop_env

LOOP = "demo-loop"
BIG = "999999999"
QUIET = ("--degraded-ingest-lag-seconds", BIG, "--critical-ingest-lag-seconds", BIG)


# -- helpers ---------------------------------------------------------------------------------------


def call(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    data: bytes | str | None = None,
    timeout: float = 60,
) -> tuple[int, Any, requests.Response]:
    """One HTTP request (no retries); returns (status, parsed JSON body or None, response)."""
    response = requests.request(method, url, headers=headers or {}, data=data, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body, response


def raw_request(url: str, payload: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes on a fresh connection and read the whole answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body) if body else None


def err(body: Any) -> tuple[str, str]:
    assert body["ok"] is False, body
    return body["error"]["code"], body["error"]["message"]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, errtext = capsys.readouterr()
    return rc, out, errtext


@pytest.fixture(scope="module")
def token() -> str:
    # hex: a token starting with '-' would be read as a flag by `--service-token <t>`
    return secrets.token_hex(24)


@pytest.fixture(scope="module")
def two_event_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("svc") / "repo"
    return make_runtime_repo(root, events=default_events()[:2]).resolve()


@pytest.fixture(scope="module")
def service(two_event_repo: Path, token: str) -> Iterator[ServiceProcess]:
    with ServiceProcess(two_event_repo, token=token).running() as svc:
        yield svc


# -- auth (items 85, 99) ---------------------------------------------------------------------------


def test_healthz_requires_the_token_item_99(service: ServiceProcess, token: str) -> None:
    status, body, response = call("GET", service.url + "/healthz")
    assert status == 401
    assert err(body) == ("unauthorized", "missing or invalid token")
    assert response.headers["Content-Type"] == "application/json"
    status, body, response = call("GET", service.url + "/healthz", service.auth_headers())
    assert (status, body) == (200, {"ok": True})
    assert response.headers["Server"].startswith("OpsManagerSpriteService/0.1")
    # X-Ops-Token works too; the Bearer scheme is case-insensitive and trimmed
    assert call("GET", service.url + "/healthz", {"X-Ops-Token": token})[0] == 200
    assert call("GET", service.url + "/healthz", {"Authorization": f"bearer   {token} "})[0] == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-Ops-Token": "wrong"},
        {"Authorization": "Basic xyz"},
        {"Authorization": "Bearer"},
    ],
)
def test_snapshot_without_a_valid_token_is_401_item_85(
    service: ServiceProcess, headers: dict[str, str]
) -> None:
    status, body, _ = call("GET", service.url + f"/ops/snapshot?loopId={LOOP}", headers)
    assert status == 401
    assert err(body)[0] == "unauthorized"


def test_auth_is_checked_before_routing_and_validation(service: ServiceProcess) -> None:
    for method, path in [
        ("GET", "/nope"),
        ("GET", "/ops/events?loopId=../x&cursor=-1"),
        ("POST", "/ops/control"),
        ("DELETE", "/ops/control"),
    ]:
        status, body, _ = call(method, service.url + path, data=b"{oops")
        assert status == 401, (method, path)
        assert err(body)[0] == "unauthorized"


def test_the_token_never_reaches_the_log(service: ServiceProcess, token: str) -> None:
    call("GET", service.url + "/healthz", service.auth_headers())
    call("GET", service.url + "/healthz", {"X-Ops-Token": token})
    log = service.stderr_text()
    assert "/healthz" in log  # the access log is on
    assert token not in log


# -- snapshot / events (items 86, 87, 98) ----------------------------------------------------------


def test_snapshot_carries_sequence_and_the_trace_header_item_87(service: ServiceProcess) -> None:
    headers = {**service.auth_headers(), "X-Trace-Id": "trace-svc-snap"}
    status, body, _ = call("GET", service.url + f"/ops/snapshot?loopId={LOOP}", headers)
    assert status == 200
    assert body["envelopeType"] == "loop_run_snapshot"
    assert body["sequence"] == {"source": "cursor_event_line_offset", "value": 2}
    assert body["traceId"] == "trace-svc-snap"
    assert body["source"] == {"repoPath": str(service.repo), "loopId": LOOP}
    # no trace header: the key is present and null
    status, body, _ = call(
        "GET", service.url + f"/ops/snapshot?loopId={LOOP}", service.auth_headers()
    )
    assert body["traceId"] is None


def test_events_batch_with_cursor_and_max_events_item_86(service: ServiceProcess) -> None:
    headers = {**service.auth_headers(), "X-Trace-Id": "trace-svc-events"}
    url = service.url + f"/ops/events?loopId={LOOP}&cursor=0&maxEvents=2"
    status, body, _ = call("GET", url, headers)
    assert status == 200
    assert body["ok"] is True and body["schemaVersion"] == "v1"
    assert body["traceId"] == "trace-svc-events"
    assert len(body["events"]) == 2
    first = body["events"][0]
    assert first["sequence"] == {"source": "cursor_event_line_offset", "value": 1}
    assert first["traceId"] == "trace-svc-events"
    assert body["cursor"]["eventLineOffset"] == 2 and body["cursor"]["eventLineCount"] == 2
    assert list(body) == ["ok", "schemaVersion", "traceId", "source", "events", "cursor"]
    # resume after line 1, one event; no trace header -> no traceId key at all
    status, body, _ = call(
        "GET",
        service.url + f"/ops/events?loopId={LOOP}&cursor=1&maxEvents=1",
        service.auth_headers(),
    )
    assert "traceId" not in body
    assert [e["sequence"]["value"] for e in body["events"]] == [2]
    assert body["cursor"]["eventLineOffset"] == 2
    # at the end: nothing new, cursor unchanged
    status, body, _ = call(
        "GET", service.url + f"/ops/events?loopId={LOOP}&cursor=2", service.auth_headers()
    )
    assert (status, body["events"], body["cursor"]["eventLineOffset"]) == (200, [], 2)


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        ("/ops/snapshot", 400, "invalid_request", "loopId is required"),
        ("/ops/snapshot?loopId=", 400, "invalid_request", "loopId is required"),
        ("/ops/events?cursor=0", 400, "invalid_request", "loopId is required"),
        (
            f"/ops/events?loopId={LOOP}&cursor=-1",
            400,
            "invalid_request",
            "query parameter 'cursor' must be >= 0",
        ),
        (
            f"/ops/events?loopId={LOOP}&cursor=abc",
            400,
            "invalid_request",
            "query parameter 'cursor' must be an integer",
        ),
        (
            f"/ops/events?loopId={LOOP}&maxEvents=1.5",
            400,
            "invalid_request",
            "query parameter 'maxEvents' must be an integer",
        ),
        (
            f"/ops/events?loopId={LOOP}&maxEvents=-3",
            400,
            "invalid_request",
            "query parameter 'maxEvents' must be >= 0",
        ),
        (
            f"/ops/events?loopId={LOOP}&cursor=9",
            502,
            "runtime_error",
            "error: cursor offset (9) exceeds available events (2); "
            "reset cursor or use --from-start",
        ),
        ("/nope", 404, "not_found", "endpoint not found"),
        ("/ops/snapshot/extra?loopId=x", 404, "not_found", "endpoint not found"),
    ],
)
def test_get_error_bodies_item_98(
    service: ServiceProcess, path: str, status: int, code: str, message: str
) -> None:
    got, body, _ = call("GET", service.url + path, service.auth_headers())
    assert got == status
    assert err(body) == (code, message)


def test_missing_loop_is_a_502_with_the_adapter_message_item_98(service: ServiceProcess) -> None:
    for path in ("/ops/snapshot?loopId=ghost", "/ops/events?loopId=ghost"):
        status, body, _ = call("GET", service.url + path, service.auth_headers())
        assert status == 502
        code, message = err(body)
        assert code == "runtime_error"
        assert message == (
            f"error: required artifact root missing: {service.repo}/.superloop/loops/ghost"
        )


@pytest.mark.parametrize(
    "loop_id",
    ["..", ".", "../../etc", "a/b", "..%2F..%2Fetc", "%2Fetc", "x%00y", "a%5Cb", "%0a"],
)
def test_path_trick_loop_ids_are_rejected_before_touching_the_filesystem(
    service: ServiceProcess, loop_id: str
) -> None:
    parent = service.repo.parent
    before = tree(parent)
    for path in (f"/ops/snapshot?loopId={loop_id}", f"/ops/events?loopId={loop_id}&cursor=0"):
        status, body, _ = call("GET", service.url + path, service.auth_headers())
        assert status == 400, path
        code, message = err(body)
        assert code == "invalid_request"
        assert "invalid loop id" in message or message == "loopId is required"
    status, body, _ = call(
        "POST",
        service.url + "/ops/control",
        service.auth_headers(),
        json.dumps({"loopId": requests.utils.unquote(loop_id), "intent": "cancel"}),
    )
    assert status == 400 and err(body)[0] == "invalid_request"
    assert tree(parent) == before


def test_events_page_is_capped_and_reconcile_pages_through_it(
    tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    evs = default_events() + [event("role_start", ts(10 + i), role="implementer") for i in range(4)]
    repo = make_runtime_repo(tmp_path / "repo", events=evs).resolve()
    with ServiceProcess(repo, token=token, args=["--max-events-per-request", "2"]).running() as svc:
        status, body, _ = call(
            "GET", svc.url + f"/ops/events?loopId={LOOP}&cursor=0&maxEvents=0", svc.auth_headers()
        )
        assert status == 200 and len(body["events"]) == 2
        assert body["cursor"] == {
            "eventLineOffset": 2,
            "eventLineCount": 7,
            "updatedAt": body["cursor"]["updatedAt"],
        }
        rc, _out, errtext = run_cli(
            capsys,
            "reconcile", "--repo", str(repo), "--loop", LOOP, "--transport", "sprite_service",
            "--service-base-url", svc.url, "--service-token", token, *QUIET,
        )  # fmt: skip
        assert rc == 0, errtext
        cursor = json.loads((repo / ".superloop/ops-manager" / LOOP / "cursor.json").read_text())
        assert cursor["eventLineOffset"] == 7
        row = json.loads(
            (repo / ".superloop/ops-manager" / LOOP / "telemetry/reconcile.jsonl")
            .read_text()
            .splitlines()[-1]
        )
        assert row["eventsIngested"] == 7
        # --max-events 3 over a page cap of 2: two requests, three events
        append_events(repo, LOOP, [event("role_end", ts(30 + i), role="tester") for i in range(5)])
        rc, _out, errtext = run_cli(
            capsys,
            "reconcile", "--repo", str(repo), "--loop", LOOP, "--transport", "sprite_service",
            "--service-base-url", svc.url, "--service-token", token, "--max-events", "3", *QUIET,
        )  # fmt: skip
        assert rc == 0, errtext
        cursor = json.loads((repo / ".superloop/ops-manager" / LOOP / "cursor.json").read_text())
        assert cursor["eventLineOffset"] == 10


# -- malformed requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "code", "message"),
    [
        (b"{not json", 400, "invalid_json", "request body must be valid JSON"),
        (b"NaN", 400, "invalid_json", "request body must be valid JSON"),
        (b"\xff\xfe", 400, "invalid_json", "request body must be valid JSON"),
        (b"[1,2]", 400, "invalid_request", "request body must be an object"),
        (b'"cancel"', 400, "invalid_request", "request body must be an object"),
        (b"", 400, "invalid_request", "loopId is required"),
        (b"{}", 400, "invalid_request", "loopId is required"),
        (b'{"loopId":"  ","intent":"cancel"}', 400, "invalid_request", "loopId is required"),
        (b'{"loopId":5,"intent":"cancel"}', 400, "invalid_request", "loopId must be a string"),
        (
            b'{"loopId":"demo-loop","intent":"explode"}',
            400,
            "invalid_request",
            "intent must be cancel, approve, or reject",
        ),
        (
            b'{"loopId":"demo-loop","intent":["cancel"]}',
            400,
            "invalid_request",
            "intent must be cancel, approve, or reject",
        ),
        (
            b'{"loopId":"demo-loop","intent":"cancel","by":7}',
            400,
            "invalid_request",
            "by must be a string",
        ),
        (
            b'{"loopId":"demo-loop","intent":"cancel","note":{"a":1}}',
            400,
            "invalid_request",
            "note must be a string",
        ),
        (
            b'{"loopId":"demo-loop","intent":"cancel","idempotencyKey":[1]}',
            400,
            "invalid_request",
            "idempotencyKey must be a string",
        ),
        (
            b'{"loopId":"demo-loop","intent":"cancel","noConfirm":[]}',
            400,
            "invalid_request",
            "noConfirm must be a JSON scalar (boolean, number, string or null)",
        ),
        (
            b'{"loopId":"demo-loop","intent":"cancel","noConfirm":{}}',
            400,
            "invalid_request",
            "noConfirm must be a JSON scalar (boolean, number, string or null)",
        ),
        (
            json.dumps(
                {"loopId": "demo-loop", "intent": "cancel", "idempotencyKey": "k" * 300}
            ).encode(),
            400,
            "invalid_request",
            "idempotencyKey must be at most 256 characters",
        ),
    ],
)
def test_control_validation_errors_item_98(
    service: ServiceProcess, data: bytes, status: int, code: str, message: str
) -> None:
    got, body, _ = call("POST", service.url + "/ops/control", service.auth_headers(), data)
    assert got == status
    assert err(body) == (code, message)


def test_unknown_post_path_and_methods(service: ServiceProcess) -> None:
    status, body, _ = call("POST", service.url + "/ops/snapshot", service.auth_headers(), b"{}")
    assert (status, err(body)) == (404, ("not_found", "endpoint not found"))
    for method in ("PUT", "DELETE", "PATCH"):
        status, body, _ = call(method, service.url + "/ops/control", service.auth_headers())
        assert status == 405 and err(body)[0] == "method_not_allowed"


def test_oversized_body_is_413_json(service: ServiceProcess) -> None:
    big = json.dumps({"loopId": LOOP, "intent": "cancel", "note": "x" * 70000}).encode()
    status, body, _ = call("POST", service.url + "/ops/control", service.auth_headers(), big)
    assert status == 413
    assert err(body) == ("payload_too_large", "request body exceeds 65536 bytes")


def test_malformed_http_is_answered_with_json(service: ServiceProcess, token: str) -> None:
    status, _, body = split_response(raw_request(service.url, b"GARBAGE\r\n\r\n"))
    assert status == 400 and body["ok"] is False
    bad_length = (
        f"POST /ops/control HTTP/1.1\r\nHost: x\r\nX-Ops-Token: {token}\r\n"
        "Content-Length: nope\r\n\r\n"
    ).encode()
    status, headers, body = split_response(raw_request(service.url, bad_length))
    assert status == 400 and err(body) == ("invalid_request", "invalid Content-Length header")
    assert headers["content-type"] == "application/json"
    short = (
        f"POST /ops/control HTTP/1.1\r\nHost: x\r\nX-Ops-Token: {token}\r\n"
        "Content-Length: 50\r\n\r\n{}"
    ).encode()
    parts = urlsplit(service.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(short)
        sock.shutdown(socket.SHUT_WR)  # the client gives up half-way through the body
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status, _, body = split_response(data)
    assert status == 400 and err(body)[1] == "request body shorter than Content-Length"
    huge_header = (
        f"GET /healthz HTTP/1.1\r\nX-Ops-Token: {token}\r\nX-Big: {'a' * 70000}\r\n\r\n"
    ).encode()
    status, _, body = split_response(raw_request(service.url, huge_header))
    assert status in (400, 431) and body["ok"] is False


def test_a_stalled_client_does_not_block_others(service: ServiceProcess) -> None:
    parts = urlsplit(service.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as stalled:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\n")  # ...and never finishes the request
        status, body, _ = call("GET", service.url + "/healthz", service.auth_headers(), timeout=5)
        assert (status, body) == (200, {"ok": True})


# -- startup / shutdown ----------------------------------------------------------------------------


def test_startup_warns_without_token_and_refuses_public_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    with ServiceProcess(repo, token="").running() as svc:
        assert call("GET", svc.url + "/healthz")[:2] == (200, {"ok": True})
        time.sleep(0.1)
        assert "warning: no service token configured" in svc.stderr_text()
    rc, _out, errtext = run_cli(
        capsys, "sprite-service", "--repo", str(repo), "--host", "0.0.0.0", "--token", ""
    )
    assert rc == 1
    assert "refusing to listen on non-loopback host 0.0.0.0 without a token" in errtext
    rc, _out, errtext = run_cli(capsys, "sprite-service", "--repo", str(tmp_path / "missing"))
    assert rc == 1 and f"error: repo path not found: {tmp_path / 'missing'}" in errtext
    rc, _out, errtext = run_cli(capsys, "sprite-service")
    assert rc == 1 and "error: --repo is required" in errtext
    rc, _out, errtext = run_cli(capsys, "sprite-service", "--repo", str(repo), "--port", "99999")
    assert rc == 1 and "--port must be an integer between 0 and 65535" in errtext


def test_sigterm_exits_zero_promptly(tmp_path: Path, token: str) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    svc = ServiceProcess(repo, token=token).start()
    try:
        assert call("GET", svc.url + "/healthz", svc.auth_headers())[0] == 200
        started = time.monotonic()
        assert svc.stop(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert "ops-manager sprite service stopped" in svc.stderr_text()
        assert token not in svc.stderr_text()
    finally:
        svc.cleanup()


# -- control (items 89, 90, 95, 96, 97) ------------------------------------------------------------


@pytest.fixture
def stub_env(tmp_path: Path) -> dict[str, str]:
    return stub_superloop_env(
        tmp_path / "bin", tmp_path / "stub-calls.jsonl", mode="stop_on_cancel"
    )


def _ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def _last(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text().splitlines()[-1])


def _control(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    url: str,
    token: str,
    *extra: str,
) -> tuple[int, dict[str, Any], str]:
    rc, out, errtext = run_cli(
        capsys,
        "control", "--repo", str(repo), "--loop", LOOP, "--transport", "sprite_service",
        "--service-base-url", url, "--service-token", token, "--retry-backoff-seconds", "0",
        *extra,
    )  # fmt: skip
    return rc, json.loads(out), errtext


def test_control_twice_with_one_key_executes_once_item_89(
    tmp_path: Path,
    token: str,
    stub_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    log = Path(stub_env["STUB_SUPERLOOP_LOG"])
    monkeypatch.setenv("USER", "tester")
    with ServiceProcess(repo, token=token, env=stub_env).running() as svc:
        rc, first, _ = _control(
            capsys, repo, svc.url, token, "--intent", "cancel", "--idempotency-key", "idem-1",
            "--trace-id", "trace-svc-1",
        )  # fmt: skip
        assert rc == 0
        assert first["status"] == "confirmed" and first["transport"] == "sprite_service"
        assert first["command"] == f"POST {svc.url}/ops/control"
        rc, _second, _ = _control(
            capsys, repo, svc.url, token, "--intent", "cancel", "--idempotency-key", "idem-1",
            "--trace-id", "trace-svc-2",
        )  # fmt: skip
        assert rc == 0
        assert len(stub_calls(log)) == 1  # executed once
        output = json.loads(_last(_ops(repo) / "intents.jsonl")["commandOutput"])
        assert output["replayed"] is True
        assert output["traceId"] == "trace-svc-1"  # the ORIGINAL trace comes back
        store = json.loads((_ops(repo) / "service-idempotency.json").read_text())
        assert "idem-1" in store
        invocations = (_ops(repo) / "telemetry/control-invocations.jsonl").read_text().splitlines()
        assert len(invocations) >= 2
        last = json.loads(invocations[-1])
        assert last["transport"] == "sprite_service"
        assert last["idempotencyKey"] == "idem-1"
        assert last["execution"]["replayed"] is True
        assert last["traceId"] == "trace-svc-2"
        # the service ran the LOCAL control in-process: its inner row precedes the first outer row
        rows = [json.loads(x) for x in (_ops(repo) / "intents.jsonl").read_text().splitlines()]
        assert [r["transport"] for r in rows] == ["local", "sprite_service", "sprite_service"]
        assert token not in svc.stderr_text()
    for path in _ops(repo).rglob("*"):
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path


def test_wrong_token_fails_and_executes_nothing_items_90_97(
    tmp_path: Path,
    token: str,
    stub_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    log = Path(stub_env["STUB_SUPERLOOP_LOG"])
    with ServiceProcess(repo, token=token, env=stub_env).running() as svc:
        rc, entry, errtext = _control(capsys, repo, svc.url, "not-the-token", "--intent", "cancel")
        assert rc == 1
        assert entry["status"] == "failed_command"
        # the entry is the whole output: the client's error line is its commandOutput
        # (upstream: "{}" there and the line on stderr; docs/output-and-errors.md)
        assert entry["exitCode"] == 1
        assert entry["commandOutput"].startswith(
            f"error: service authentication failed (method=POST url={svc.url}/ops/control "
            'code=401): {"ok":false,'
        )
        assert errtext == ""
        assert "not-the-token" not in json.dumps(entry)
        invocation = _last(_ops(repo) / "telemetry/control-invocations.jsonl")
        assert invocation["confirmation"] == {
            "attempted": False,
            "status": "not_attempted",
            "exitCode": 0,
        }
    assert stub_calls(log) == []
    assert not (_ops(repo) / "service-idempotency.json").exists()


def test_no_confirm_over_the_service_item_96(
    tmp_path: Path, token: str, stub_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    with ServiceProcess(repo, token=token, env=stub_env).running() as svc:
        rc, entry, _ = _control(capsys, repo, svc.url, token, "--intent", "cancel", "--no-confirm")
    assert rc == 0
    assert entry["status"] == "executed_unconfirmed" and entry["confirmed"] is False
    invocation = _last(_ops(repo) / "telemetry/control-invocations.jsonl")
    assert invocation["confirmation"] == {"attempted": False, "status": "skipped", "exitCode": 0}
    assert invocation["request"]["doConfirm"] is False


def test_ambiguous_outcome_is_replayed_item_95(
    tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo", approval=pending_approval()).resolve()
    env = stub_superloop_env(tmp_path / "bin", tmp_path / "calls.jsonl", mode="noop")
    args = ["--confirm-timeout-seconds", "1", "--confirm-interval-seconds", "1"]
    with ServiceProcess(repo, token=token, env=env, args=args).running() as svc:
        # the service answers 409 (exit 2); the client retries with the same key -> replay
        rc, entry, _ = _control(
            capsys, repo, svc.url, token, "--intent", "approve", "--idempotency-key", "amb-1"
        )
        assert rc == 2
        assert entry["status"] == "ambiguous" and entry["exitCode"] == 2
        assert entry["confirmExitCode"] == 1
        invocation = _last(_ops(repo) / "telemetry/control-invocations.jsonl")
        assert invocation["execution"]["replayed"] is True
        assert invocation["confirmation"]["status"] == "ambiguous"
        assert invocation["outcome"]["reasonCode"] == "control_ambiguous"
        # with a single attempt the 409 itself carries the answer: still recorded as ambiguous
        rc, entry, _ = _control(
            capsys, repo, svc.url, token, "--intent", "approve", "--idempotency-key", "amb-2",
            "--retry-attempts", "1",
        )  # fmt: skip
        assert rc == 2 and entry["status"] == "ambiguous"
        assert json.loads(entry["commandOutput"])["replayed"] is False
    assert len(stub_calls(tmp_path / "calls.jsonl")) == 2


def test_http_status_follows_the_control_exit_code(tmp_path: Path, token: str) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    env = stub_superloop_env(tmp_path / "bin", tmp_path / "calls.jsonl", mode="fail")
    with ServiceProcess(repo, token=token, env=env).running() as svc:
        body = json.dumps({"loopId": LOOP, "intent": "cancel", "traceId": "t-fail"})
        status, answer, _ = call("POST", svc.url + "/ops/control", svc.auth_headers(), body)
        assert status == 500
        assert answer["ok"] is False and answer["exitCode"] == 1
        assert answer["result"]["status"] == "failed_command"
        assert answer["traceId"] == "t-fail" and answer["replayed"] is False
        assert list(answer) == ["ok", "exitCode", "result", "replayed", "traceId"]


def test_idempotency_store_survives_a_restart(
    tmp_path: Path, token: str, stub_env: dict[str, str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    log = Path(stub_env["STUB_SUPERLOOP_LOG"])
    body = json.dumps({"loopId": LOOP, "intent": "cancel", "idempotencyKey": "restart-1"})
    with ServiceProcess(repo, token=token, env=stub_env).running() as svc:
        status, first, _ = call("POST", svc.url + "/ops/control", svc.auth_headers(), body)
        assert status == 200 and first["replayed"] is False
    with ServiceProcess(repo, token=token, env=stub_env).running() as svc:
        status, again, _ = call("POST", svc.url + "/ops/control", svc.auth_headers(), body)
        assert status == 200 and again["replayed"] is True
        assert again["result"] == first["result"]
        # the same key for another intent is refused, not replayed as if it matched
        other = json.dumps({"loopId": LOOP, "intent": "approve", "idempotencyKey": "restart-1"})
        status, answer, _ = call("POST", svc.url + "/ops/control", svc.auth_headers(), other)
        assert status == 422 and err(answer)[0] == "idempotency_key_reused"
    assert len(stub_calls(log)) == 1


def test_concurrent_duplicates_execute_once(tmp_path: Path, token: str) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    log = tmp_path / "calls.jsonl"
    env = stub_superloop_env(tmp_path / "bin", log, mode="stop_on_cancel", delay=1.5)
    body = json.dumps({"loopId": LOOP, "intent": "cancel", "idempotencyKey": "dup-1"})
    results: list[tuple[int, Any]] = []
    with ServiceProcess(repo, token=token, env=env).running() as svc:

        def post() -> None:
            status, answer, _ = call("POST", svc.url + "/ops/control", svc.auth_headers(), body)
            results.append((status, answer))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 409, 409, 409]
        busy = [answer for status, answer in results if status == 409]
        assert all(err(a)[0] == "idempotency_in_progress" and a["inProgress"] for a in busy)
        # a retry after the first finished gets the stored answer
        status, answer, _ = call("POST", svc.url + "/ops/control", svc.auth_headers(), body)
        assert status == 200 and answer["replayed"] is True
        # the client's retries (Retry-After honoured) turn the 409 into that replay
        from ops_manager.service_client import ServiceRequest, call_service

        key2 = json.dumps({"loopId": LOOP, "intent": "cancel", "idempotencyKey": "dup-2"})
        answers: list[dict[str, Any]] = []

        def client() -> None:
            response = call_service(
                ServiceRequest(
                    method="POST",
                    base_url=svc.url,
                    path="/ops/control",
                    token=token,
                    body=key2.encode(),
                    retry_attempts=5,
                    retry_backoff_seconds=0,
                )
            )
            answers.append(response.json())

        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(a["replayed"] for a in answers) == [False, True]
    assert len(stub_calls(log)) == 2


def test_a_reservation_left_by_a_dead_service_is_ambiguous_not_re_executed(
    tmp_path: Path, token: str, stub_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_pretty(
        _ops(repo) / "service-idempotency.json",
        {
            "crashed-1": {
                "inProgress": {
                    "instance": "gone",
                    "pid": dead.pid,
                    "intent": "cancel",
                    "traceId": "t-crash",
                    "startedAt": "2026-01-01T00:00:00Z",
                }
            }
        },
    )
    with ServiceProcess(repo, token=token, env=stub_env).running() as svc:
        rc, entry, _ = _control(
            capsys, repo, svc.url, token, "--intent", "cancel", "--idempotency-key", "crashed-1"
        )
    assert rc == 2 and entry["status"] == "ambiguous"
    assert "whether the intent took effect is unknown" in entry["commandOutput"]
    assert stub_calls(Path(stub_env["STUB_SUPERLOOP_LOG"])) == []


def test_sigterm_lets_an_in_flight_control_finish(tmp_path: Path, token: str) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    env = stub_superloop_env(tmp_path / "bin", tmp_path / "calls.jsonl", delay=1.5)
    svc = ServiceProcess(repo, token=token, env=env).start()
    try:
        body = json.dumps({"loopId": LOOP, "intent": "cancel", "noConfirm": True})
        results: list[int] = []
        worker = threading.Thread(
            target=lambda: results.append(
                call("POST", svc.url + "/ops/control", svc.auth_headers(), body)[0]
            )
        )
        worker.start()
        time.sleep(0.5)  # the request is executing (the stub sleeps 1.5 s)
        assert svc.proc is not None
        svc.proc.send_signal(signal.SIGTERM)
        worker.join(30)
        assert results == [200]
        assert svc.proc.wait(timeout=10) == 0  # it stops by itself once the request is done
        assert svc.stop() == 0
    finally:
        svc.cleanup()


# -- reconcile over sprite_service (items 44, 45, 88) ----------------------------------------------


def test_reconcile_over_the_service_item_88(
    tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo", events=default_events()[:2]).resolve()
    with ServiceProcess(repo, token=token).running() as svc:
        rc, out, errtext = run_cli(
            capsys,
            "reconcile", "--repo", str(repo), "--loop", LOOP, "--transport", "sprite_service",
            "--service-base-url", svc.url + "/", "--service-token", token,
            "--trace-id", "trace-svc-rec",
        )  # fmt: skip
    assert rc == 0, errtext
    state = json.loads(out)
    assert state["transition"]["currentState"] == "running"
    assert state["health"]["traceId"] == "trace-svc-rec"
    cursor = json.loads((_ops(repo) / "cursor.json").read_text())
    assert cursor["eventLineOffset"] == 2 and cursor["eventLineCount"] == 2
    assert cursor["repoPath"] == str(repo)
    saved = json.loads((_ops(repo) / "state.json").read_text())
    assert saved["transition"]["currentState"] == "running"
    row = _last(_ops(repo) / "telemetry/reconcile.jsonl")
    assert row["transport"] == "sprite_service" and row["eventsIngested"] == 2


def test_unreachable_service_twice_is_critical_item_44(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    args = (
        "reconcile", "--repo", str(repo), "--loop", LOOP, "--transport", "sprite_service",
        "--service-base-url", "http://127.0.0.1:9", "--retry-attempts", "2",
        "--retry-backoff-seconds", "0", "--degraded-transport-failure-streak", "1",
        "--critical-transport-failure-streak", "2", *QUIET,
    )  # fmt: skip
    for _ in range(2):
        rc, _out, errtext = run_cli(capsys, *args)
        assert rc != 0
        assert errtext == ""  # the health document is the whole output
        assert "code=000" in _last(_ops(repo) / "telemetry/reconcile.jsonl")["failureMessage"]
    health = json.loads((_ops(repo) / "health.json").read_text())
    assert health["status"] == "critical"
    assert health["reasonCodes"] == ["transport_unreachable"]
    row = _last(_ops(repo) / "telemetry/reconcile.jsonl")
    assert row["status"] == "failed" and row["failureCode"] == "service_request_failed"
    assert "connection refused" in row["failureMessage"]
    assert _last(_ops(repo) / "escalations.jsonl")["category"] == "health_critical"


def test_empty_repo_fails_like_local_item_45(
    tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    local_repo = tmp_path / "local"
    service_repo = tmp_path / "service"
    local_repo.mkdir()
    service_repo.mkdir()
    rc, out, _ = run_cli(capsys, "reconcile", "--repo", str(local_repo), "--loop", LOOP)
    assert rc != 0
    local = json.loads(out)
    with ServiceProcess(service_repo.resolve(), token=token).running() as svc:
        rc, out, errtext = run_cli(
            capsys,
            "reconcile", "--repo", str(service_repo), "--loop", LOOP,
            "--transport", "sprite_service", "--service-base-url", svc.url,
            "--service-token", token, "--retry-backoff-seconds", "0",
        )  # fmt: skip
    assert rc != 0
    remote = json.loads(out)
    assert local["status"] == remote["status"] == "degraded"
    assert local["reasonCodes"] == remote["reasonCodes"]
    assert "transport_unreachable" in remote["reasonCodes"]
    assert local["transport"]["failureCode"] == "snapshot_unavailable"
    assert remote["transport"]["failureCode"] == "service_request_failed"
    assert errtext == ""  # the health document is the whole output; the why is in the row
    why = _last(_ops(service_repo) / "telemetry/reconcile.jsonl")["failureMessage"]
    assert "runtime_error" in why and "required artifact root missing" in why


def test_environment_token_is_not_required_on_the_command_line(
    tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    with ServiceProcess(repo, token=token).running() as svc:
        monkeypatch.setenv("OPS_MANAGER_SERVICE_TOKEN", token)
        rc, out, _ = run_cli(
            capsys, "service-client", "--method", "GET", "--base-url", svc.url, "--path", "/healthz"
        )
    assert rc == 0 and json.loads(out) == {"ok": True}
    assert os.environ["OPS_MANAGER_SERVICE_TOKEN"] == token


def test_a_separate_manager_repo_keeps_its_own_records(
    tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deployment layout: the manager's repo only holds the manager's records."""
    served = make_runtime_repo(tmp_path / "sprite").resolve()
    manager = (tmp_path / "manager").resolve()
    manager.mkdir()
    with ServiceProcess(served, token=token).running() as svc:
        rc, out, errtext = run_cli(
            capsys,
            "reconcile", "--repo", str(manager), "--loop", LOOP, "--transport", "sprite_service",
            "--service-base-url", svc.url, "--service-token", token, *QUIET,
        )  # fmt: skip
    assert rc == 0, errtext
    cursor = json.loads((_ops(manager) / "cursor.json").read_text())
    assert cursor["repoPath"] == str(manager) and cursor["eventLineOffset"] == 3
    assert not (_ops(served)).exists()  # reading never writes on the sprite's side
    assert json.loads(out)["transition"]["currentState"] == "running"


def test_state_source_is_the_local_repo_q36(
    tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    served = make_runtime_repo(tmp_path / "sprite").resolve()
    manager = (tmp_path / "manager").resolve()
    manager.mkdir()
    with ServiceProcess(served, token=token).running() as svc:
        rc, out, _ = run_cli(
            capsys,
            "reconcile", "--repo", str(manager), "--loop", LOOP, "--transport", "sprite_service",
            "--service-base-url", svc.url, "--service-token", token, *QUIET,
        )  # fmt: skip
    assert rc == 0
    assert json.loads(out)["source"]["repoPath"] == str(manager)
