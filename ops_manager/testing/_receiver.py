"""A loopback HTTP receiver that records requests, and :func:`post_request`.

``requests`` is imported only when :func:`post_request` runs.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ops_manager.sinks import SinkRequest

# --------------------------------------------------------------------------- loopback HTTP


@attrs.frozen
class Reply:
    """One scripted HTTP answer of a :class:`LoopbackReceiver`."""

    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def retry_after(cls, seconds: int | str = 1, status: int = 429) -> Reply:
        """``429 Too Many Requests`` (or ``status``) with ``Retry-After: <seconds>``."""
        return cls(status, b"rate limited", {"Retry-After": str(seconds)})

    @classmethod
    def of(cls, value: int | Reply) -> Reply:
        """``value`` as a :class:`Reply` (an int is a status with a short body)."""
        if isinstance(value, Reply):
            return value
        return cls(value, b"ok" if 200 <= value < 300 else f"status {value}".encode())


@attrs.frozen
class RecordedRequest:
    """One request a :class:`LoopbackReceiver` received, and what it answered."""

    method: str
    path: str
    #: every header as received, in order, duplicates kept
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: the status the receiver answered with
    status: int

    @property
    def accepted(self) -> bool:
        """Whether the receiver answered 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, receiver: LoopbackReceiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: requests may carry secrets."""

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        reply = self.server.receiver._record(
            self.command, self.path, tuple(self.headers.items()), body
        )
        self.close_connection = True
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _handle


class LoopbackReceiver:
    """A real HTTP server on 127.0.0.1 (random port, own thread) that records requests.

    Use it as a context manager (it always stops)::

        with LoopbackReceiver([503, Reply.retry_after(1), 200]) as rx:
            requests.post(rx.url_for("/hook"), data=b"{}")
            ...
            assert rx.accepted()[0].json() == {}

    It answers the scripted replies in order (an ``int`` is a status), then ``default``.
    :meth:`script` replaces the remaining script at any time.
    """

    def __init__(
        self,
        script: Iterable[int | Reply] = (),
        *,
        default: int | Reply = 200,
        name: str = "receiver",
    ) -> None:
        self.name = name
        self._lock = threading.Condition()
        self._script: deque[Reply] = deque(Reply.of(r) for r in script)
        self._default = Reply.of(default)
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------
    def start(self) -> LoopbackReceiver:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LoopbackReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (the receiver must be started)."""
        if self._server is None:
            raise RuntimeError(f"loopback receiver {self.name!r} is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str = "/") -> str:
        """The URL of ``path`` on this receiver."""
        return self.url + (path if path.startswith("/") else "/" + path)

    # scripting -----------------------------------------------------------------------
    def script(self, *replies: int | Reply, default: int | Reply | None = None) -> None:
        """Replace the pending script (and optionally the default reply)."""
        with self._lock:
            self._script = deque(Reply.of(r) for r in replies)
            if default is not None:
                self._default = Reply.of(default)

    def _record(
        self, method: str, path: str, headers: tuple[tuple[str, str], ...], body: bytes
    ) -> Reply:
        with self._lock:
            reply = self._script.popleft() if self._script else self._default
            self._requests.append(RecordedRequest(method, path, headers, body, reply.status))
            self._lock.notify_all()
            return reply

    # observations --------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def accepted(self) -> list[RecordedRequest]:
        """The requests answered with 2xx."""
        return [r for r in self.requests if r.accepted]

    def clear(self) -> None:
        """Forget the requests received so far (the script is kept)."""
        with self._lock:
            self._requests.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; raise ``TimeoutError`` if not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.name}: expected {count} requests, got {len(self._requests)}"
                    )
                self._lock.wait(left)
            return list(self._requests)


def post_request(request: SinkRequest, *, url: str | None = None, timeout: float = 5.0) -> int:
    """POST a :class:`SinkRequest` with ``requests`` (to ``url`` if given); return the status.

    For tests only: core owns real delivery (retries, pacing, outbox).
    """
    import requests

    response = requests.post(
        url or request.url,
        data=request.body,
        headers=dict(request.headers),
        timeout=timeout,
        allow_redirects=False,
    )
    return int(response.status_code)
