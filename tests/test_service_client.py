"""The service client (``loop.md`` §3.11; DECISIONS Q-16/Q-28) against scripted loopback servers.

Each test runs a tiny :mod:`http.server` on 127.0.0.1 (a free port, stopped after the test)
that answers from a script (``[(status, body, headers), ...]``) and records every request,
so retries, backoff, headers and the idempotency key of each try are observed, not mocked.
Sleeps are injected (``sleep=...``) so no test waits for its backoff.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ops_manager.cli import main
from ops_manager.service_client import (
    DEFAULT_MAX_TIME_SECONDS,
    RETRY_AFTER_CAP,
    ServiceRequest,
    ServiceRequestError,
    call_service,
    service_url,
)

Step = tuple[int, bytes, dict[str, str]]


class Scripted:
    """A loopback HTTP server answering from ``script``; the last step repeats."""

    def __init__(self, script: list[Step], delay: float = 0) -> None:
        self.script = list(script)
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                    }
                )
                if owner.delay:
                    time.sleep(owner.delay)
                index = min(len(owner.requests), len(owner.script)) - 1
                status, payload, headers = owner.script[index]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer
            do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a client that gave up (read-timeout test) makes the handler's write fail: expected
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def ok(body: Any = None, status: int = 200) -> Step:
    return (status, json.dumps(body if body is not None else {"ok": True}).encode(), {})


def fail(status: int, headers: dict[str, str] | None = None) -> Step:
    body = {"ok": False, "error": {"code": "x", "message": f"status {status}"}}
    return (status, json.dumps(body).encode(), headers or {})


@pytest.fixture
def sleeps() -> list[float]:
    return []


def request(url: str, **kw: Any) -> ServiceRequest:
    base = dict(method="GET", base_url=url, path="/ops/snapshot?loopId=demo-loop")
    base.update(kw)
    return ServiceRequest(**base)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- retries ---------------------------------------------------------------------------------------


def test_503_twice_then_200_is_retried_with_backoff_times_attempt(sleeps: list[float]) -> None:
    with Scripted([fail(503), fail(503), ok({"ok": True, "n": 3})]) as srv:
        response = call_service(request(srv.url, retry_backoff_seconds=2), sleep=sleeps.append)
    assert response.status == 200 and response.json() == {"ok": True, "n": 3}
    assert response.attempts == 3
    assert sleeps == [2, 4]  # backoff x attempt, attempt 1-based
    assert len(srv.requests) == 3


def test_post_retries_resend_the_same_idempotency_key(sleeps: list[float]) -> None:
    body = json.dumps({"loopId": "demo-loop", "intent": "cancel", "idempotencyKey": "k-1"})
    with Scripted([fail(500), fail(409), ok({"ok": True, "replayed": True})]) as srv:
        response = call_service(
            request(srv.url, method="POST", path="/ops/control", body=body.encode(), token="tok"),
            sleep=sleeps.append,
        )
    assert response.json()["replayed"] is True
    assert [r["body"] for r in srv.requests] == [body.encode()] * 3
    for r in srv.requests:
        headers = r["headers"]
        assert headers["Content-Type"] == "application/json"
        assert headers["Authorization"] == "Bearer tok" and headers["X-Ops-Token"] == "tok"
        assert headers["Accept"] == "application/json"


def test_post_without_a_key_is_not_repeated_once_the_service_may_have_acted(
    sleeps: list[float],
) -> None:
    body = json.dumps({"loopId": "demo-loop", "intent": "cancel"}).encode()
    with Scripted([fail(500), ok()]) as srv, pytest.raises(ServiceRequestError) as caught:
        call_service(
            request(srv.url, method="POST", path="/ops/control", body=body), sleep=sleeps.append
        )
    assert caught.value.code == "500" and len(srv.requests) == 1
    # ...but a 503 ("not processed") is safe to repeat even without a key
    with Scripted([fail(503), ok()]) as srv:
        call_service(
            request(srv.url, method="POST", path="/ops/control", body=body), sleep=sleeps.append
        )
    assert len(srv.requests) == 2


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_every_transient_code_is_retried(status: int, sleeps: list[float]) -> None:
    with Scripted([fail(status), ok()]) as srv:
        response = call_service(request(srv.url), sleep=sleeps.append)
    assert response.attempts == 2


@pytest.mark.parametrize("status", [400, 403, 404, 413, 422])
def test_other_4xx_are_not_retried(status: int, sleeps: list[float]) -> None:
    with Scripted([fail(status), ok()]) as srv, pytest.raises(ServiceRequestError) as caught:
        call_service(request(srv.url), sleep=sleeps.append)
    assert caught.value.code == str(status)
    assert len(srv.requests) == 1 and sleeps == []
    assert str(caught.value).startswith(
        f"service request failed (method=GET url={srv.url}/ops/snapshot?loopId=demo-loop "
        f"code={status}): "
    )


def test_401_is_an_auth_failure_and_not_retried(sleeps: list[float]) -> None:
    with Scripted([fail(401), ok()]) as srv, pytest.raises(ServiceRequestError) as caught:
        call_service(request(srv.url, token="secret-token"), sleep=sleeps.append)
    exc = caught.value
    assert exc.auth_failed and exc.attempts == 1 and len(srv.requests) == 1
    assert str(exc) == (
        f"service authentication failed (method=GET url={srv.url}/ops/snapshot?loopId=demo-loop "
        'code=401): {"ok": false, "error": {"code": "x", "message": "status 401"}}'
    )
    assert "secret-token" not in str(exc)


def test_connection_refused_is_retried_then_code_000(sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceRequestError) as caught:
        call_service(request(url, retry_attempts=3, retry_backoff_seconds=1), sleep=sleeps.append)
    exc = caught.value
    assert exc.code == "000" and exc.status is None and exc.attempts == 3
    assert sleeps == [1, 2]
    assert str(exc) == (
        f"service request failed (method=GET url={url}/ops/snapshot?loopId=demo-loop "
        "code=000): connection refused"
    )


def test_a_read_timeout_is_retried_and_reported_as_000(sleeps: list[float]) -> None:
    with Scripted([ok()], delay=1.5) as srv, pytest.raises(ServiceRequestError) as caught:
        call_service(request(srv.url, max_time_seconds=0.3, retry_attempts=2), sleep=sleeps.append)
    assert caught.value.code == "000" and "no response within 0.3s" in str(caught.value)
    assert len(srv.requests) == 2


def test_retry_after_is_honoured_up_to_a_cap(sleeps: list[float]) -> None:
    with Scripted(
        [fail(429, {"Retry-After": "3"}), fail(503, {"Retry-After": "9999"}), ok()]
    ) as srv:
        call_service(request(srv.url, retry_backoff_seconds=1), sleep=sleeps.append)
    assert sleeps == [3, RETRY_AFTER_CAP]
    # a Retry-After below the backoff does not shorten it; a date is ignored
    sleeps.clear()
    with Scripted(
        [fail(503, {"Retry-After": "0"}), fail(503, {"Retry-After": "Wed, 21 Oct 2015"}), ok()]
    ) as srv:
        call_service(request(srv.url, retry_backoff_seconds=1), sleep=sleeps.append)
    assert sleeps == [1, 2]


def test_trace_header_and_url_joining() -> None:
    with Scripted([ok()]) as srv:
        call_service(request(srv.url + "/", trace_id="trace-c-1", path="/healthz"))
    headers = srv.requests[0]["headers"]
    assert srv.requests[0]["path"] == "/healthz"
    assert headers["X-Trace-Id"] == "trace-c-1"
    assert "Authorization" not in headers and "X-Ops-Token" not in headers
    assert service_url("http://h:1//", "/x") == "http://h:1//x"  # only ONE slash is removed


def test_read_timeout_outlives_the_services_confirmation() -> None:
    assert DEFAULT_MAX_TIME_SECONDS > 30
    assert ServiceRequest(method="GET", base_url="u", path="/").max_time_seconds > 30


# -- CLI -------------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    capsys.readouterr()
    rc = main(["service-client", *argv])
    captured = capsys.readouterr()
    return (
        rc,
        captured.out,
        captured.err.decode() if isinstance(captured.err, bytes) else captured.err,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "error: --method is required"),
        (["--method", "PUT"], "error: --method must be GET or POST"),
        (["--method", "GET"], "error: --base-url is required"),
        (["--method", "GET", "--base-url", "http://x"], "error: --path is required"),
        (
            ["--method", "GET", "--base-url", "http://x", "--path", "/", "--retry-attempts", "0"],
            "error: --retry-attempts must be an integer >= 1",
        ),
        (
            ["--method", "GET", "--base-url", "http://x", "--path", "/", "--max-time-seconds", "x"],
            "error: timeout/backoff values must be non-negative integers",
        ),
        (
            ["--method", "POST", "--base-url", "http://x", "--path", "/"],
            "error: --body-file is required for POST",
        ),
        (
            ["--method", "POST", "--base-url", "http://x", "--path", "/", "--body-file", "/nope"],
            "error: body file not found: /nope",
        ),
    ],
)
def test_cli_validation(
    capsysbinary: pytest.CaptureFixture[bytes], argv: list[str], message: str
) -> None:
    rc, _, err = run(capsysbinary, *argv)
    assert rc == 1
    assert message in err


def test_cli_prints_the_body_verbatim_and_fails_cleanly(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_text('{"loopId":"demo-loop","intent":"cancel","idempotencyKey":"k"}')
    payload = b'{"ok":true,  "spaced": "as sent"}'
    with Scripted([(200, payload, {})]) as srv:
        rc, out, _ = run(
            capsysbinary, "--method", "POST", "--base-url", srv.url, "--path", "/ops/control",
            "--body-file", str(body_file), "--token", "cli-secret", "--trace-id", "t-cli",
        )  # fmt: skip
    assert rc == 0 and out == payload
    assert srv.requests[0]["body"] == body_file.read_bytes()
    assert srv.requests[0]["headers"]["X-Trace-Id"] == "t-cli"
    with Scripted([fail(502)]) as srv:
        rc, out, err = run(
            capsysbinary, "--method", "GET", "--base-url", srv.url, "--path", "/ops/events",
            "--retry-attempts", "2", "--retry-backoff-seconds", "0", "--token", "cli-secret",
        )  # fmt: skip
    assert rc == 1 and out == b""
    assert err.startswith(
        f"error: service request failed (method=GET url={srv.url}/ops/events code=502): "
    )
    assert len(srv.requests) == 2
    assert "cli-secret" not in err


# -- the sprite_service transport against scripted answers --------------------------------


def _snapshot_envelope(tmp_path: Path) -> bytes:
    from ops_manager.runtime import build_snapshot
    from ops_manager.store import LoopPaths
    from tests.runtime_fixtures import make_runtime_repo

    repo = make_runtime_repo(tmp_path / "served").resolve()
    envelope = build_snapshot(
        LoopPaths.for_loop(repo, "demo-loop"), now=0, trace_id=None, run_id=None
    )
    return json.dumps(envelope).encode()


def _reconcile(capsys: pytest.CaptureFixture[str], repo: Path, url: str) -> tuple[int, Any]:
    capsys.readouterr()
    rc = main(
        [
            "reconcile", "--repo", str(repo), "--loop", "demo-loop",
            "--transport", "sprite_service", "--service-base-url", url,
            "--retry-attempts", "1", "--retry-backoff-seconds", "0",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    return rc, json.loads(out)


def _last_row(repo: Path) -> dict[str, Any]:
    path = repo / ".superloop/ops-manager/demo-loop/telemetry/reconcile.jsonl"
    return json.loads(path.read_text().splitlines()[-1])


@pytest.mark.parametrize(
    ("snapshot", "events", "message"),
    [
        ((200, b"<html>oops</html>", {}), None, "service /ops/snapshot response is not valid JSON"),
        ((200, b'{"ok":true}', {}), None, "not a loop_run_snapshot envelope"),
        (None, (200, b"[]", {}), "service /ops/events response shape invalid"),
        (None, ok({"ok": False, "events": [], "cursor": {}}), "response shape invalid"),
        (
            None,
            ok({"ok": True, "events": [], "cursor": {"eventLineOffset": -1}}),
            "service cursor values are invalid",
        ),
        (
            None,
            ok({"ok": True, "events": [], "cursor": {"eventLineOffset": 0, "eventLineCount": "2"}}),
            "service cursor values are invalid",
        ),
        (
            None,
            ok({"ok": True, "events": [{"sequence": {"value": 1}}], "cursor": {}}),
            "service event envelope 0 is invalid",
        ),
    ],
)
def test_invalid_service_answers_are_service_response_invalid(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    snapshot: Step | None,
    events: Step | None,
    message: str,
) -> None:
    """Q-10: a 2xx that is not the expected JSON is a recorded failed pass, never a crash."""
    from tests.runtime_fixtures import make_runtime_repo

    repo = make_runtime_repo(tmp_path / "caller").resolve()
    good_snapshot: Step = (200, _snapshot_envelope(tmp_path), {})
    script = [snapshot or good_snapshot]
    if events is not None:
        script.append(events)
    with Scripted(script) as srv:
        rc, health = _reconcile(capsys, repo, srv.url)
    assert rc == 1
    assert health["transport"]["failureCode"] == "service_response_invalid"
    assert "invalid_transport_payload" in health["reasonCodes"]
    assert message in _last_row(repo)["failureMessage"]


def test_events_are_fetched_in_pages_until_the_log_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ops_manager.runtime import StreamPosition
    from ops_manager.store import LoopPaths
    from ops_manager.transports import ObserveRequest, TransportConfig
    from ops_manager.transports.sprite_service import SpriteServiceTransport

    def envelope(line: int) -> dict[str, Any]:
        raw = {"timestamp": f"2026-02-22T10:00:{line:02d}Z", "event": "role_end", "run_id": "r"}
        return {
            "sequence": {"value": line},
            "event": {"raw": raw, "name": "role_end", "timestamp": raw["timestamp"]},
        }

    def page(lines: list[int], offset: int) -> Step:
        return ok(
            {
                "ok": True,
                "events": [envelope(n) for n in lines],
                "cursor": {"eventLineOffset": offset, "eventLineCount": 5},
            }
        )

    script = [
        (200, _snapshot_envelope(tmp_path), {}),
        page([1, 2], 2),
        page([3, 4], 4),
        page([5], 5),
    ]
    with Scripted(script) as srv:
        transport = SpriteServiceTransport(
            TransportConfig(service_base_url=srv.url, retry_attempts=1), events_page=2
        )
        paths = LoopPaths.for_loop(tmp_path, "demo-loop")
        observation = transport.observe(
            ObserveRequest(paths=paths, start=StreamPosition(), max_events=0, trace_id="t", now=0)
        )
        lines = [item[0] for item in observation.events]
        extent = observation.extent()
    assert lines == [1, 2, 3, 4, 5]
    assert (extent.position.line_offset, extent.position.byte_offset) == (5, 0)
    assert extent.total_lines == 5 and extent.events_emitted == 5
    paths_seen = [r["path"] for r in srv.requests]
    assert paths_seen == [
        "/ops/snapshot?loopId=demo-loop",
        "/ops/events?loopId=demo-loop&cursor=0&maxEvents=2",
        "/ops/events?loopId=demo-loop&cursor=2&maxEvents=2",
        "/ops/events?loopId=demo-loop&cursor=4&maxEvents=2",
    ]
    assert all(r["headers"]["X-Trace-Id"] == "t" for r in srv.requests)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {
                "ok": True,
                "exitCode": 0,
                "result": {
                    "status": "confirmed",
                    "confirmed": True,
                    "confirm": {"reason": "inactive_not_running"},
                    "confirmExitCode": 0,
                },
                "replayed": False,
            },
            ("confirmed", "succeeded", "confirmed", True, 0, 0, True, False),
        ),
        (
            {
                "ok": False,
                "exitCode": 2,
                "result": {
                    "status": "ambiguous",
                    "confirmed": False,
                    "confirm": {"reason": "timeout"},
                    "confirmExitCode": 1,
                },
                "replayed": True,
            },
            ("ambiguous", "succeeded", "ambiguous", False, 2, 1, True, True),
        ),
        (
            {"ok": True, "exitCode": 0, "result": {"status": "executed_unconfirmed"}},
            ("executed_unconfirmed", "succeeded", "skipped", False, 0, 0, False, False),
        ),
        (
            {"ok": False, "exitCode": 1, "stderr": "error: x"},
            ("failed_command", "failed_command", "not_attempted", False, 1, 0, False, False),
        ),
        (
            {"ok": False, "exitCode": 2},
            ("ambiguous", "succeeded", "ambiguous", False, 2, 0, False, False),
        ),
        (
            {"ok": True},
            ("confirmed", "succeeded", "confirmed", True, 0, 0, False, False),
        ),
        (
            {"ok": False, "exitCode": 1, "result": {"status": "executed", "confirm": {}}},
            ("executed", "succeeded", "attempted_unknown", False, 1, 0, True, False),
        ),
    ],
)
def test_control_answer_mapping_section_3_10_3(
    answer: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    from ops_manager.transports.sprite_service import execution_from_answer

    ex = execution_from_answer(answer, "POST http://h/ops/control")
    got = (
        ex.status, ex.execution_status, ex.confirmation_status, ex.confirmed, ex.exit_code,
        ex.confirm_exit_code, ex.confirmation_attempted, ex.replayed,
    )  # fmt: skip
    assert got == expected
    assert json.loads(ex.command_output or "") == answer
    assert ex.command == "POST http://h/ops/control"


def test_sprite_service_is_a_registered_plugin() -> None:
    from ops_manager.plugins import plugin_names
    from ops_manager.transports import TransportConfig, available_transports, get_transport

    assert "ops_manager.transports.sprite_service" in plugin_names()
    assert "sprite_service" in available_transports()
    transport = get_transport("sprite_service", TransportConfig(service_base_url="http://x"))
    assert transport.name == "sprite_service"


def test_loop_ids_are_percent_encoded_in_the_query(tmp_path: Path) -> None:
    from ops_manager.runtime import StreamPosition
    from ops_manager.store import LoopPaths
    from ops_manager.transports import ObserveRequest, TransportConfig
    from ops_manager.transports.sprite_service import SpriteServiceTransport

    with Scripted([fail(502)]) as srv:
        transport = SpriteServiceTransport(
            TransportConfig(service_base_url=srv.url, retry_attempts=1)
        )
        paths = LoopPaths.for_loop(tmp_path, "loop a&b#1")
        with pytest.raises(Exception, match="code=502"):
            transport.observe(
                ObserveRequest(
                    paths=paths, start=StreamPosition(), max_events=0, trace_id=None, now=0
                )
            )
    assert srv.requests[0]["path"] == "/ops/snapshot?loopId=loop%20a%26b%231"


@pytest.mark.parametrize(
    ("configured", "observe", "control"),
    [
        (None, (5, DEFAULT_MAX_TIME_SECONDS), (5, DEFAULT_MAX_TIME_SECONDS)),
        (2.5, (2.5, 2.5), (2.5, DEFAULT_MAX_TIME_SECONDS)),
        (10, (5, 10), (5, DEFAULT_MAX_TIME_SECONDS)),
        (120, (5, 120), (5, 120)),
    ],
)
def test_sprite_transport_timeout_reaches_the_request(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    configured: float | None,
    observe: tuple[float, float],
    control: tuple[float, float],
) -> None:
    """``TransportConfig.timeout_seconds`` (registry ``service.timeoutSeconds``) bounds the
    read time of observe requests and caps the connect time at 5 s; control never waits
    less than the default 45 s (Q-16: the client outlives the service's confirmation)."""
    from ops_manager.runtime import StreamPosition
    from ops_manager.store import LoopPaths
    from ops_manager.transports import ControlRequest, ObserveRequest, TransportConfig
    from ops_manager.transports.sprite_service import SpriteServiceTransport

    seen: list[ServiceRequest] = []

    def call(request: ServiceRequest) -> Any:
        seen.append(request)
        raise ServiceRequestError(
            method=request.method, url=request.url, code="000", body=b"", detail="x", attempts=1
        )

    transport = SpriteServiceTransport(
        TransportConfig(service_base_url="http://h", timeout_seconds=configured), call=call
    )
    paths = LoopPaths.for_loop(tmp_path, "loop-a")
    with pytest.raises(Exception, match="code=000"):
        transport.observe(
            ObserveRequest(paths=paths, start=StreamPosition(), max_events=0, trace_id=None, now=0)
        )
    execution = transport.control(
        ControlRequest(
            paths=paths, intent="cancel", by="t", note=None, trace_id="t", idempotency_key="k"
        )
    )
    capsys.readouterr()
    assert execution.status == "failed_command"
    got = [(r.method, r.connect_timeout_seconds, r.max_time_seconds) for r in seen]
    assert got == [("GET", *observe), ("POST", *control)]
