"""Connection reuse between the service client and the REAL sprite service on 127.0.0.1.

The sprite service answers HTTP/1.0; a client that sends ``Connection: keep-alive`` (as
``requests`` does) keeps its connection for further requests. These tests count TCP
connections from the kernel's own table (``/proc/net/tcp``: every socket the service
accepted, open or in TIME_WAIT, has the service's port at one end), and drive raw
sockets to check that a request body the service does not read never bleeds into the next
request on the same connection. The client half (``service_client``) is checked against
loopback raw servers: the same request bytes as ``Session.request`` sends, and proxies from
the environment still honoured.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import pytest
import requests

from ops_manager import service_client
from ops_manager.service_client import ServiceRequest, call_service
from tests.runtime_fixtures import make_runtime_repo
from tests.service_process import ServiceProcess

TCP_TABLE = Path("/proc/net/tcp")
LISTEN = "0A"

pytestmark = pytest.mark.skipif(not TCP_TABLE.exists(), reason="needs Linux /proc/net/tcp")


@pytest.fixture
def token() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def service(tmp_path: Path, token: str) -> Iterator[ServiceProcess]:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    with ServiceProcess(repo, token=token).running() as svc:
        yield svc


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def accepted_connections(port: int) -> set[int]:
    """Client ports of every loopback connection to ``port`` the kernel still knows, from
    either end (established, closing, or in TIME_WAIT on whichever side closed first)."""
    peers: set[int] = set()
    for row in TCP_TABLE.read_text().splitlines()[1:]:
        fields = row.split()
        local = int(fields[1].split(":")[1], 16)
        remote = int(fields[2].split(":")[1], 16)
        if local == port and fields[3] != LISTEN:
            peers.add(remote)
        elif remote == port:
            peers.add(local)
    return peers


def read_response(reader: BinaryIO) -> tuple[bytes, dict[str, str], bytes]:
    """One HTTP response from a socket's buffered reader: status line, headers, body
    (``Content-Length`` bytes exactly, so the next response stays in the stream)."""
    status = reader.readline()
    headers: dict[str, str] = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return status.rstrip(b"\r\n"), headers, body


def test_the_client_reuses_one_connection_for_many_requests(
    service: ServiceProcess, token: str
) -> None:
    port = port_of(service.url)
    before = accepted_connections(port)
    calls = 20
    answers: list[int] = []

    def worker() -> None:  # a fresh thread: a fresh per-thread session
        for n in range(calls):
            path = "/healthz" if n % 2 else "/ops/snapshot?loopId=demo-loop"
            answers.append(
                call_service(
                    ServiceRequest(method="GET", base_url=service.url, path=path, token=token)
                ).status
            )

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    assert answers == [200] * calls
    assert len(accepted_connections(port) - before) == 1  # 20 requests, one connection
    log = service.stderr_text()
    assert log.count('"GET /healthz HTTP/1.1" 200') == calls // 2
    assert log.count('"GET /ops/snapshot?loopId=demo-loop HTTP/1.1" 200') == calls // 2


def test_a_client_that_does_not_ask_gets_one_request_per_connection(
    service: ServiceProcess, token: str
) -> None:
    port = port_of(service.url)
    before = accepted_connections(port)
    with requests.Session() as session:
        for _ in range(3):
            response = session.get(
                service.url + "/healthz",
                headers={"X-Ops-Token": token, "Connection": "close"},
                timeout=30,
            )
            assert response.json() == {"ok": True}
            assert "connection" not in {k.lower() for k in response.headers}
            assert response.raw.version == 10  # HTTP/1.0 answers, as the contract says
    assert len(accepted_connections(port) - before) == 3


def test_an_unread_request_body_does_not_corrupt_the_next_request(
    service: ServiceProcess, token: str
) -> None:
    port = port_of(service.url)
    before = accepted_connections(port)
    keep = "Connection: keep-alive\r\n"
    auth = f"X-Ops-Token: {token}\r\n"
    # bodies the service answers without reading: a GET's, a POST refused for its token,
    # a POST over the body limit (413); each one looks like a request if left in the stream
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    oversized = b"x" * 70_000
    requests_and_answers: list[tuple[bytes, bytes]] = [
        (
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n{keep}{auth}"
            f"Content-Length: {len(smuggled)}\r\n\r\n".encode()
            + smuggled,
            b"HTTP/1.0 200 OK",
        ),
        (
            f"POST /ops/control HTTP/1.1\r\nHost: x\r\n{keep}X-Ops-Token: wrong\r\n"
            f"Content-Length: {len(smuggled)}\r\n\r\n".encode()
            + smuggled,
            b"HTTP/1.0 401 Unauthorized",
        ),
        (
            f"POST /ops/control HTTP/1.1\r\nHost: x\r\n{keep}{auth}"
            f"Content-Length: {len(oversized)}\r\n\r\n".encode()
            + oversized,
            b"HTTP/1.0 413 Request Entity Too Large",
        ),
        (
            f"GET /ops/snapshot HTTP/1.1\r\nHost: x\r\n{keep}{auth}\r\n".encode(),
            b"HTTP/1.0 400 Bad Request",
        ),
        (f"GET /healthz HTTP/1.1\r\nHost: x\r\n{keep}{auth}\r\n".encode(), b"HTTP/1.0 200 OK"),
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")
        for payload, expected in requests_and_answers:
            sock.sendall(payload)
            status, headers, body = read_response(reader)
            assert status == expected, body
            assert headers["connection"] == "keep-alive"
        # the last answer was {"ok":true}; nothing else is waiting in the stream
        assert body == b'{"ok":true}'
    assert len(accepted_connections(port) - before) == 1
    log = service.stderr_text()
    assert log.count('"GET /healthz HTTP/1.1" 200') == 2  # the smuggled ones never ran


SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
DRAINED = b"y" * (1 << 20)  # what the service reads of a body it does not want


@pytest.mark.parametrize(
    ("head", "body"),
    [
        ("Content-Length: nope\r\n", SMUGGLED),  # unknown length: nothing can be skipped
        ("Transfer-Encoding: chunked\r\n", SMUGGLED),  # the service never decodes chunked
        # more than the service drains: the request after the drained MiB stays unread
        (f"Content-Length: {len(DRAINED + SMUGGLED)}\r\n", DRAINED + SMUGGLED),
    ],
    ids=["invalid-length", "chunked", "over-the-drain-limit"],
)
def test_a_body_that_cannot_be_skipped_closes_the_connection(
    service: ServiceProcess, token: str, head: str, body: bytes
) -> None:
    port = port_of(service.url)
    payload = (
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
        f"X-Ops-Token: {token}\r\n{head}\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")
        sock.sendall(payload)
        status, headers, _ = read_response(reader)
        assert status == b"HTTP/1.0 200 OK"
        assert "connection" not in headers  # not kept alive...
        assert reader.read() == b""  # ...and closed: the smuggled request got no answer
    assert service.stderr_text().count('"GET /healthz HTTP/1.1"') == 1


def test_shutdown_closes_an_idle_kept_alive_connection(tmp_path: Path, token: str) -> None:
    repo = make_runtime_repo(tmp_path / "repo").resolve()
    svc = ServiceProcess(repo, token=token).start()
    try:
        port = port_of(svc.url)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            reader = sock.makefile("rb")
            sock.sendall(
                f"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
                f"X-Ops-Token: {token}\r\n\r\n".encode()
            )
            status, headers, _ = read_response(reader)
            assert status == b"HTTP/1.0 200 OK" and headers["connection"] == "keep-alive"
            assert svc.stop(timeout=15) == 0  # the idle connection does not hold it up
            assert reader.read() == b""  # and it was closed, not left to serve more
        assert "ops-manager sprite service stopped" in svc.stderr_text()
    finally:
        svc.cleanup()


# -- the client half: same bytes as Session.request, proxies still honoured -------------------


class RawRecorder:
    """A loopback TCP server that records each request's raw bytes and answers
    ``{"ok":true}`` (HTTP/1.0, then closes)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.seen.append(head + b"\r\n\r\n" + rest)
                conn.sendall(
                    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 11\r\n\r\n{"ok":true}'
                )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def recorder() -> Iterator[RawRecorder]:
    server = RawRecorder()
    yield server
    server.close()


def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("POST", b'{"loopId":"x","idempotencyKey":"k"}')]
)
def test_the_client_sends_the_bytes_session_request_sends(
    recorder: RawRecorder,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    body: bytes | None,
) -> None:
    _no_proxy_env(monkeypatch)
    url = f"http://127.0.0.1:{recorder.port}"
    call_service(
        ServiceRequest(
            method=method,
            base_url=url,
            path="/ops/control" if body else "/ops/events?loopId=a%20b&cursor=3",
            token="tok",
            trace_id="trace-1",
            body=body,
        ),
        session=requests.Session(),
    )
    with requests.Session() as session:  # what the client did before: Session.request
        session.request(
            method,
            url + ("/ops/control" if body else "/ops/events?loopId=a%20b&cursor=3"),
            headers=service_client.request_headers(method, "tok", "trace-1"),
            data=body,
            timeout=(5, 45),
            allow_redirects=False,
        )
    assert len(recorder.seen) == 2
    assert recorder.seen[0] == recorder.seen[1]
    assert b"Authorization: Bearer tok" in recorder.seen[0]


def test_a_proxy_from_the_environment_is_still_used(
    recorder: RawRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{recorder.port}")
    # the "service" is an address nothing listens on: only the proxy can answer
    with socket.create_server(("127.0.0.1", 0)) as unused:
        target = f"http://127.0.0.1:{unused.getsockname()[1]}"
    response = call_service(
        ServiceRequest(method="GET", base_url=target, path="/healthz", retry_attempts=1),
        session=requests.Session(),
    )
    assert response.json() == {"ok": True}
    assert recorder.seen[0].startswith(f"GET {target}/healthz HTTP/1.1\r\n".encode())


# -- the plain http.client path of GET (no explicit session) --------------------------------


class RawAnswers:
    """A loopback TCP server that records each request's raw bytes and answers each with
    the next of ``answers`` (raw response bytes; the last repeats). ``keep`` serves further
    requests on a connection; ``close_after_each`` closes it after every answer anyway (a
    service that dropped an idle kept-alive connection)."""

    def __init__(self, answers: list[bytes], *, keep: bool, close_after_each: bool = False):
        self.answers = answers
        self.keep = keep
        self.close_after_each = close_after_each
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[bytes] = []
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as reader:
                conn.settimeout(10)
                while True:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head.endswith(b"\r\n\r\n"):
                        break
                    self.seen.append(head)
                    answer = self.answers[min(len(self.seen), len(self.answers)) - 1]
                    conn.sendall(answer)
                    if not self.keep or self.close_after_each:
                        break

    def close(self) -> None:
        self.sock.close()


KEPT = b'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 11\r\n\r\n{"ok":true}'


def _in_a_fresh_thread(fn: object) -> list[object]:
    """Run ``fn()`` on a new thread (its own connections) and return [result or error]."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())  # type: ignore[operator]
        except Exception as exc:  # handed back to the test
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return out


@pytest.mark.parametrize(
    "path", ["/ops/events?loopId=a%20b&cursor=3", "/healthz", "/ops/snapshot?loopId=x.y~z"]
)
def test_a_get_without_a_session_sends_the_bytes_session_request_sends(
    recorder: RawRecorder, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    _no_proxy_env(monkeypatch)
    url = f"http://127.0.0.1:{recorder.port}"
    got = _in_a_fresh_thread(
        lambda: call_service(
            ServiceRequest(method="GET", base_url=url, path=path, token="tok", trace_id="t-1")
        )
    )
    assert isinstance(got[0], service_client.ServiceResponse) and got[0].json() == {"ok": True}
    with requests.Session() as session:
        session.request(
            "GET",
            url + path,
            headers=service_client.request_headers("GET", "tok", "t-1"),
            data=None,
            timeout=(5, 45),
            allow_redirects=False,
        )
    assert len(recorder.seen) == 2
    assert recorder.seen[0] == recorder.seen[1]


def test_gets_without_a_session_reuse_one_kept_alive_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxy_env(monkeypatch)
    server = RawAnswers([KEPT], keep=True)
    try:

        def five() -> list[int]:
            request = ServiceRequest(method="GET", base_url=server.url, path="/healthz")
            return [call_service(request).status for _ in range(5)]

        assert _in_a_fresh_thread(five) == [[200] * 5]
        assert server.connections == 1 and len(server.seen) == 5
    finally:
        server.close()


def test_a_kept_alive_connection_the_service_dropped_is_replaced_not_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxy_env(monkeypatch)
    # says keep-alive, then closes: the next GET on that connection meets a closed socket
    server = RawAnswers([KEPT], keep=True, close_after_each=True)
    try:
        sleeps: list[float] = []

        def three() -> list[int]:
            request = ServiceRequest(method="GET", base_url=server.url, path="/healthz")
            return [call_service(request, sleep=sleeps.append).attempts for _ in range(3)]

        assert _in_a_fresh_thread(three) == [[1, 1, 1]]  # no failed try, no backoff
        assert sleeps == [] and len(server.seen) == 3 and server.connections == 3
    finally:
        server.close()


def test_a_compressed_answer_is_decoded_as_requests_decodes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gzip

    _no_proxy_env(monkeypatch)
    body = gzip.compress(b'{"ok":true,"n":1}')
    answer = (
        b"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    server = RawAnswers([answer], keep=False)
    try:
        request = ServiceRequest(method="GET", base_url=server.url, path="/healthz")
        got = _in_a_fresh_thread(lambda: call_service(request).json())
        assert got == [{"ok": True, "n": 1}]
    finally:
        server.close()


def test_plain_connection_failures_read_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy_env(monkeypatch)
    with socket.create_server(("127.0.0.1", 0)) as unused:
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    sleeps: list[float] = []
    request = ServiceRequest(method="GET", base_url=url, path="/healthz", retry_attempts=2)
    got = _in_a_fresh_thread(lambda: call_service(request, sleep=sleeps.append))
    error = got[0]
    assert isinstance(error, service_client.ServiceRequestError)
    assert error.code == "000" and error.attempts == 2 and sleeps == [1]
    assert str(error).endswith("code=000): connection refused")
    # a service that accepts and closes without answering: reset, as requests words it
    server = RawAnswers([b""], keep=False)
    try:
        request = ServiceRequest(
            method="GET", base_url=server.url, path="/healthz", retry_attempts=1
        )
        got = _in_a_fresh_thread(lambda: call_service(request))
        assert isinstance(got[0], service_client.ServiceRequestError)
        assert str(got[0]).endswith("code=000): connection reset by peer")
    finally:
        server.close()
