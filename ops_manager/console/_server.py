"""HTTP plumbing of the operator console: stdlib ``ThreadingHTTPServer``, hardened.

- binds ``127.0.0.1`` by default; a non-loopback host is refused unless a token is set;
- with a token, every path needs it: ``Authorization: Bearer <token>`` or the
  ``ops_console_token`` cookie, which ``GET /?token=<token>`` sets (``HttpOnly``,
  ``SameSite=Strict``) before redirecting to ``/`` so the token leaves the address bar;
  comparisons are constant-time (:func:`hmac.compare_digest`);
- without a token (loopback only), the ``Host`` header must name a loopback host, which
  keeps DNS-rebinding pages out;
- ``POST`` needs ``Content-Type: application/json`` and, when the browser sends one, an
  ``Origin`` equal to the console's own: a foreign page cannot post a confirmation;
- bounded request line, headers and body (413 beyond :data:`MAX_BODY_BYTES`), a socket
  timeout per connection, a cap on concurrent requests (503 beyond);
- every answer has a JSON body on errors, ``Cache-Control: no-store``, a strict
  ``Content-Security-Policy`` (everything from ``'self'``; the page needs nothing else);
- :meth:`ConsoleServer.shutdown` stops accepting; in-flight requests finish.
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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
from ops_manager.console._api import ApiResponse, ConsoleApi, error
from ops_manager.errors import OpsError

SERVER_VERSION = "OpsManagerConsole/0.1"
#: request bodies above this many bytes are refused with 413
MAX_BODY_BYTES = 16 * 1024
#: request targets (path + query) above this many characters are refused with 414
MAX_TARGET_CHARS = 2048
DEFAULT_PORT = 8790
DEFAULT_SOCKET_TIMEOUT_SECONDS = 15.0
DEFAULT_MAX_CONCURRENT_REQUESTS = 16
COOKIE_NAME = "ops_console_token"
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: sent on every answer, after ``Content-Type`` and ``Content-Length``
_SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", CSP),
)


def _host_only(header: str) -> str:
    """The host part of a ``Host`` header value (``[::1]:8790`` -> ``::1``)."""
    value = header.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _unquote(segment: str) -> str | None:
    """Percent-decode one path segment; ``None`` when it is not valid UTF-8."""
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None


def static_file(name: str) -> bytes:
    """The bytes of one shipped page asset (``ops_manager/console/static/<name>``)."""
    return (resources.files("ops_manager.console") / "static" / name).read_bytes()


@attrs.frozen
class ConsoleConfig:
    """How to serve the console for one repo."""

    repo: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: ``None``/empty disables auth (allowed on loopback hosts only)
    token: str | None = attrs.field(default=None, repr=False)
    summary_window: int = 50
    socket_timeout_seconds: float = DEFAULT_SOCKET_TIMEOUT_SECONDS
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    #: write an access log line per request to stderr
    access_log: bool = True


@attrs.frozen
class _Answer:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def _json_answer(response: ApiResponse) -> _Answer:
    return _Answer(response.status, encode_json(response.body), "application/json")


class _Server(JsonHTTPServer):
    request_queue_size = 64

    def __init__(self, console: ConsoleServer, address: tuple[str, int], family: int) -> None:
        self.console = console
        super().__init__(console, address, family, _Handler)


class _Handler(JsonRequestHandler):
    server: _Server
    server_version = SERVER_VERSION

    # -- logging -------------------------------------------------------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # the query string may hold the token (/?token=...): log the path only
        code_text = code.value if hasattr(code, "value") else code
        self.log_message('"%s %s" %s', self.command, urlsplit(self.path).path, str(code_text))

    # -- answers ---------------------------------------------------------------------------------
    def _send(self, answer: _Answer, *, head: bool = False) -> None:
        headers = (*_SECURITY_HEADERS, *answer.headers)
        self._write(answer.status, answer.body, answer.content_type, headers, head=head)

    def _send_error_body(self, code: int, text: str) -> None:
        self._send(_json_answer(error(code, "bad_request", text)))

    # -- auth ------------------------------------------------------------------------------------
    def _token_ok(self, given: str | None) -> bool:
        token = self.server.console.config.token
        if not token or given is None:
            return False
        return token_matches(given, token.encode("utf-8", "surrogateescape"))

    def _cookie_token(self) -> str | None:
        raw = self.headers.get("Cookie") or ""
        for part in raw.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE_NAME:
                return unquote(value)
        return None

    def _authorized(self) -> bool:
        if not self.server.console.config.token:
            return True
        auth = self.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer " and self._token_ok(auth[7:].strip()):
            return True
        return self._token_ok(self._cookie_token())

    def _host_allowed(self) -> bool:
        """Without a token, only loopback ``Host`` names are served (DNS rebinding)."""
        if self.server.console.config.token:
            return True
        host = self.headers.get("Host")
        return host is None or is_loopback(_host_only(host))

    def _origin_allowed(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        host = self.headers.get("Host") or ""
        parts = urlsplit(origin)
        return parts.scheme == "http" and parts.netloc.lower() == host.strip().lower()

    # -- dispatch --------------------------------------------------------------------------------
    def _send_busy(self, method: str) -> None:
        self._send(
            _Answer(
                503,
                _json_answer(error(503, "busy", "too many concurrent requests")).body,
                "application/json",
                (("Retry-After", "1"),),
            )
        )

    def _send_internal_error(self) -> None:
        self._send(_json_answer(error(500, "internal_error", "internal error (see log)")))

    def _serve(self, method: str) -> None:
        self._send(self._respond(method), head=method == "HEAD")

    def _respond(self, method: str) -> _Answer:
        if len(self.path) > MAX_TARGET_CHARS:
            return _json_answer(error(414, "uri_too_long", "request target too long"))
        if not self._host_allowed():
            return _json_answer(error(403, "forbidden_host", "Host must be a loopback name"))
        parts = urlsplit(self.path)
        path = parts.path
        if method == "GET" and path == "/" and parts.query:
            login = self._login(parts.query)
            if login is not None:
                return login
        if not self._authorized():
            return _json_answer(
                error(401, "unauthorized", "missing or invalid token (open /?token=<token>)")
            )
        api = self.server.console.api
        if method in ("GET", "HEAD"):
            if path in STATIC_FILES:
                name, ctype = STATIC_FILES[path]
                return _Answer(200, static_file(name), ctype)
            if path == "/favicon.ico":
                return _Answer(204, b"", "image/x-icon")
            if path == "/api/fleet":
                return _json_answer(api.fleet())
            if path == "/api/slo":
                return _json_answer(api.slo())
            if path == "/api/backlog":
                return _json_answer(api.backlog())
            if path.startswith("/api/loops/"):
                loop_id = _unquote(path[len("/api/loops/") :])
                if loop_id is None:
                    return _json_answer(error(400, "invalid_loop_id", "loop id is not UTF-8"))
                return _json_answer(api.loop(loop_id))
            if path.startswith("/api/") and path.endswith("/confirm"):
                return _json_answer(error(405, "method_not_allowed", "use POST"))
            return _json_answer(error(404, "not_found", "not found"))
        if method != "POST":
            return _json_answer(error(405, "method_not_allowed", f"method {method} not allowed"))
        prefix, suffix = "/api/backlog/", "/confirm"
        if not (path.startswith(prefix) and path.endswith(suffix)):
            if path in STATIC_FILES or path.startswith("/api/"):
                return _json_answer(error(405, "method_not_allowed", "method POST not allowed"))
            return _json_answer(error(404, "not_found", "not found"))
        if not self._origin_allowed():
            return _json_answer(error(403, "forbidden_origin", "cross-origin request refused"))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _json_answer(
                error(415, "unsupported_media_type", "Content-Type must be application/json")
            )
        body = self._read_body()
        if isinstance(body, ApiResponse):
            return _json_answer(body)
        intent_id = _unquote(path[len(prefix) : -len(suffix)])
        if intent_id is None:
            return _json_answer(error(400, "invalid_intent_id", "intent id is not UTF-8"))
        return _json_answer(api.confirm(intent_id, body))

    def _login(self, query: str) -> _Answer | None:
        """``/?token=T``: set the cookie and redirect to ``/`` (401 for a wrong token)."""
        try:
            values = parse_qs(query, keep_blank_values=True, max_num_fields=10).get("token")
        except ValueError:
            return _json_answer(error(400, "invalid_request", "bad query string"))
        if not values or not self.server.console.config.token:
            return None
        if not self._token_ok(values[0]):
            return _json_answer(error(401, "unauthorized", "invalid token"))
        cookie = f"{COOKIE_NAME}={values[0]}; Path=/; HttpOnly; SameSite=Strict"
        return _Answer(303, b"", "text/plain", (("Location", "/"), ("Set-Cookie", cookie)))

    def _read_body(self) -> Any:
        raw = (self.headers.get("Content-Length") or "").strip()
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return error(411, "length_required", "a Content-Length header is required")
        if not raw.isdigit() or len(raw) > 12:
            self.close_connection = True
            return error(411, "length_required", "a valid Content-Length header is required")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return error(413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")
        data = self._read_exact(length)
        if data is None:
            return error(400, "invalid_request", "request body shorter than Content-Length")
        try:
            return json.loads(data.decode("utf-8")) if data.strip() else None
        except (UnicodeDecodeError, ValueError):
            return error(400, "invalid_json", "request body must be valid JSON")


class ConsoleServer:
    """A bound (not yet serving) console.

    ``ConsoleServer(config)`` binds the socket (port 0 picks a free port: see :attr:`port`);
    :meth:`serve_forever` serves until :meth:`shutdown` (from another thread)::

        server = ConsoleServer(ConsoleConfig(repo=repo, port=0))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ...
        server.shutdown(); server.close()
    """

    def __init__(self, config: ConsoleConfig, api: ConsoleApi | None = None) -> None:
        if not config.repo.is_dir():
            raise OpsError(f"repo directory not found: {config.repo}")
        if not config.token and not is_loopback(config.host):
            raise OpsError(
                f"refusing to listen on non-loopback host {config.host} without a token "
                "(set --token or OPS_MANAGER_CONSOLE_TOKEN)"
            )
        self.config = config
        self.api = api or ConsoleApi(config.repo, summary_window=config.summary_window)
        self._slots = threading.BoundedSemaphore(config.max_concurrent_requests)
        self._server = bind_server(_Server, self, config.host, config.port)

    @property
    def port(self) -> int:
        """The bound port (the real one when the config asked for port 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://<host>:<port>/`` (IPv6 literals bracketed)."""
        host = self.config.host.strip("[]")
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    def enter(self) -> bool:
        """Take a request slot; ``False`` at the concurrency cap."""
        return self._slots.acquire(blocking=False)

    def leave(self) -> None:
        """Give a request slot back."""
        self._slots.release()

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` is called from another thread."""
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop the serve loop (returns once it has exited)."""
        self._server.shutdown()

    def close(self) -> None:
        """Close the listening socket."""
        self._server.server_close()
