"""HTTP plumbing of the sprite service: stdlib ``ThreadingHTTPServer``, hardened.

- auth on every path and method, checked first (``Authorization: Bearer <t>`` or
  ``X-Ops-Token: <t>``, compared in constant time with :func:`hmac.compare_digest`);
- bounded request body (:attr:`ServiceConfig.max_body_bytes`, 413 beyond), a socket timeout
  on every connection (slow or stalled clients cannot hold a thread for long), a cap on
  concurrent requests (503 ``busy`` + ``Retry-After`` beyond), JSON bodies for every error,
  including the ones :mod:`http.server` produces itself (bad request line, huge headers);
- HTTP/1.0 responses, ``Content-Type: application/json`` and ``Content-Length`` always; one
  request per connection, unless the client asks for ``Connection: keep-alive`` (as
  ``requests`` does): then the connection serves further requests, and is closed whenever
  a request's body was not read to its end (unknown length, chunked, over the drain limit);
- :meth:`SpriteService.shutdown` stops accepting, lets in-flight requests finish (up to a
  grace period), then closes the socket.

The access log goes to stderr: client address, request line, status. Tokens travel in
headers only, so they never reach the log.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from ops_manager._http import (
    JsonHTTPServer,
    JsonRequestHandler,
    bind_server,
    encode_json,
    token_matches,
)
from ops_manager._http import (
    is_loopback as is_loopback,  # re-exported by the package
)
from ops_manager._jsonfmt import loads_json
from ops_manager.errors import OpsError
from ops_manager.service._api import (
    DEFAULT_MAX_EVENTS_PER_REQUEST,
    ApiResponse,
    ControlDefaults,
    ServiceApi,
    error,
)

SERVER_VERSION = "OpsManagerSpriteService/0.1"
#: request bodies above this many bytes are refused with 413
DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: socket timeout of every connection (reading the request, writing the response)
DEFAULT_SOCKET_TIMEOUT_SECONDS = 10.0
#: requests handled at once; more are answered 503 at once
DEFAULT_MAX_CONCURRENT_REQUESTS = 32
#: how long shutdown waits for in-flight requests (a control request confirms for up to 30 s)
DEFAULT_SHUTDOWN_GRACE_SECONDS = 40.0
#: unread request bytes drained before an early answer (so the client reads it, not a reset)
_DRAIN_LIMIT = 1 << 20
_ERROR_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    501: "method_not_allowed",
}


@attrs.frozen
class ServiceConfig:
    """How to run a sprite service for one repo."""

    repo: Path
    host: str = "127.0.0.1"
    port: int = 8787
    #: ``None``/empty disables auth (allowed on loopback hosts only)
    token: str | None = attrs.field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    socket_timeout_seconds: float = DEFAULT_SOCKET_TIMEOUT_SECONDS
    max_events_per_request: int = DEFAULT_MAX_EVENTS_PER_REQUEST
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS
    confirm_timeout_seconds: int = 30
    confirm_interval_seconds: int = 2
    #: write an access log line per request to stderr
    access_log: bool = True


class _Server(JsonHTTPServer):
    request_queue_size = 128

    def __init__(self, service: SpriteService, address: tuple[str, int], family: int) -> None:
        self.service = service
        super().__init__(service, address, family, _Handler)


class _Handler(JsonRequestHandler):
    server: _Server
    server_version = SERVER_VERSION
    keep_alive = True

    # -- connection setup / logging ------------------------------------------------------
    def setup(self) -> None:
        self._unread = 0
        super().setup()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        # the body bytes this request declares, drained before any answer (a 401, 503 or
        # 413 included), so a kept-alive connection resumes at the next request; a body
        # of unknown length cannot be skipped: the connection closes after the answer
        length = self._declared_length()
        self._unread = length or 0
        if length is None or self.headers.get("Transfer-Encoding") is not None:
            self.close_connection = True
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        code_text = code.value if hasattr(code, "value") else code
        self.log_message('"%s" %s', self.requestline, str(code_text))

    # -- responses -----------------------------------------------------------------------
    def _send(self, response: ApiResponse, *, head: bool = False) -> None:
        self._drain()
        data = encode_json(response.body)
        self._write(response.status, data, "application/json", response.headers, head=head)

    def _send_error_body(self, code: int, text: str) -> None:
        self._send(error(code, _ERROR_CODES.get(code, "invalid_request"), text))

    def _drain(self) -> None:
        """Read (and drop) up to 1 MiB of a request body we answered without reading."""
        if self._unread > _DRAIN_LIMIT:
            self.close_connection = True  # the rest of the body stays unread
        remaining = min(self._unread, _DRAIN_LIMIT)
        self._unread = 0
        try:
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    self.close_connection = True
                    break
                remaining -= len(chunk)
        except OSError:
            self.close_connection = True

    # -- dispatch ----------------------------------------------------------------------------
    def _authorized(self) -> bool:
        token = self.server.service.config.token
        if not token:
            return True
        expected = token.encode("utf-8")
        auth = self.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer " and token_matches(auth[7:].strip(), expected):
            return True
        header = self.headers.get("X-Ops-Token")
        return header is not None and token_matches(header, expected)

    def _declared_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        raw = raw.strip()
        if not raw.isdigit() or len(raw) > 18:
            return None
        return int(raw)

    def _send_busy(self, method: str) -> None:
        self._send(
            attrs.evolve(
                error(503, "busy", "too many concurrent requests; retry shortly"),
                headers=(("Retry-After", "1"),),
            ),
            head=method == "HEAD",
        )

    def _send_internal_error(self) -> None:
        self._send(error(500, "internal_error", "internal error (see the service log)"))

    def _serve(self, method: str) -> None:
        length = self._declared_length()
        response = self._respond(method, length)
        self._send(response, head=method == "HEAD")

    def _respond(self, method: str, length: int | None) -> ApiResponse:
        api = self.server.service.api
        if not self._authorized():
            return error(401, "unauthorized", "missing or invalid token")
        parts = urlsplit(self.path)
        path = parts.path
        trace = (self.headers.get("X-Trace-Id") or "").strip() or None
        if method in ("GET", "HEAD"):
            try:
                query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=50)
            except ValueError:
                return error(400, "invalid_request", "too many query parameters")

            def param(name: str) -> str | None:
                values = query.get(name)
                return values[0] if values else None

            if path == "/healthz":
                return api.healthz()
            if path == "/ops/snapshot":
                return api.snapshot(param("loopId"), trace)
            if path == "/ops/events":
                return api.events(param("loopId"), param("cursor"), param("maxEvents"), trace)
            return error(404, "not_found", "endpoint not found")
        if method != "POST":
            return error(405, "method_not_allowed", f"method {method} not allowed")
        if path != "/ops/control":
            return error(404, "not_found", "endpoint not found")
        if length is None:
            self._unread = 0
            self.close_connection = True
            return error(400, "invalid_request", "invalid Content-Length header")
        if self.headers.get("Transfer-Encoding") and self.headers.get("Content-Length") is None:
            self.close_connection = True
            return error(411, "length_required", "a Content-Length header is required")
        limit = self.server.service.config.max_body_bytes
        if length > limit:
            return error(413, "payload_too_large", f"request body exceeds {limit} bytes")
        data = self._read_exact(length)
        self._unread = 0
        if data is None:
            return error(400, "invalid_request", "request body shorter than Content-Length")
        if not data.strip():
            body: Any = {}
        else:
            try:
                body = loads_json(data)
            except ValueError:
                return error(400, "invalid_json", "request body must be valid JSON")
        header_key = (self.headers.get("X-Idempotency-Key") or "").strip() or None
        return api.control(body, header_key, trace)


class SpriteService:
    """A bound (not yet serving) sprite service.

    ``SpriteService(config)`` binds the socket (port 0 picks a free port: see
    :attr:`port`); :meth:`serve_forever` serves until :meth:`shutdown`.
    """

    def __init__(self, config: ServiceConfig) -> None:
        if not config.repo.is_dir():
            raise OpsError(f"repo path not found: {config.repo}")
        if not config.token and not is_loopback(config.host):
            raise OpsError(
                f"refusing to listen on non-loopback host {config.host} without a token "
                "(set --token or OPS_MANAGER_SERVICE_TOKEN)"
            )
        self.config = config
        self.api = ServiceApi(
            config.repo,
            max_events_per_request=config.max_events_per_request,
            control=ControlDefaults(
                timeout_seconds=config.confirm_timeout_seconds,
                interval_seconds=config.confirm_interval_seconds,
            ),
        )
        self._slots = threading.BoundedSemaphore(config.max_concurrent_requests)
        self._inflight = 0
        self._idle = threading.Condition()
        self._server = bind_server(_Server, self, config.host, config.port)

    @property
    def host(self) -> str:
        """The host the service listens on, as configured."""
        return self.config.host.strip("[]")

    @property
    def port(self) -> int:
        """The bound port (the real one when the config asked for port 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` (IPv6 literals bracketed)."""
        host = self.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def enter(self) -> bool:
        """Take a request slot; ``False`` when the service is at its concurrency cap."""
        if not self._slots.acquire(blocking=False):
            return False
        with self._idle:
            self._inflight += 1
        return True

    def leave(self) -> None:
        """Give a request slot back."""
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()
        self._slots.release()

    def serve_forever(self) -> None:
        """Serve requests until :meth:`shutdown` is called (from another thread)."""
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop accepting new connections (returns once the serve loop has exited)."""
        self._server.shutdown()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no request is in flight; ``False`` if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._inflight > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        """Close the listening socket."""
        self._server.server_close()
