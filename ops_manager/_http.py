"""HTTP plumbing shared by the operator console and the sprite service.

Both serve JSON over a hardened stdlib ``ThreadingHTTPServer``: HTTP/1.0 answers, a socket
timeout per connection, an optional access log on stderr, JSON bodies for the errors
:mod:`http.server` raises itself, a cap on concurrent requests and a JSON 500 (plus a log
line) instead of a traceback page. What differs between the two (routes, auth sources,
limits, extra headers, error wording) stays in their own ``_server`` modules, behind the
small hooks of :class:`JsonRequestHandler`.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import socket
import sys
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from ops_manager.errors import OpsError

_O = TypeVar("_O")
_S = TypeVar("_S")


class _OwnerConfig(Protocol):
    @property
    def token(self) -> str | None: ...
    @property
    def socket_timeout_seconds(self) -> float: ...
    @property
    def access_log(self) -> bool: ...


class ServerOwner(Protocol):
    """What the handler needs from the console/service object that owns the server."""

    @property
    def config(self) -> _OwnerConfig: ...
    def enter(self) -> bool: ...
    def leave(self) -> None: ...


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def encode_json(body: Any) -> bytes:
    """Compact, ASCII-only JSON (no NaN/Infinity): the wire form of every answer body."""
    return json.dumps(body, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode(
        "ascii"
    )


def token_matches(given: str, expected: bytes) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)


class JsonHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with daemon request threads, bound for one owner."""

    daemon_threads = True  # shutdown waits for in-flight requests itself (if it wants to)
    block_on_close = False

    def __init__(
        self,
        owner: ServerOwner,
        address: tuple[str, int],
        family: int,
        handler: type[JsonRequestHandler],
    ) -> None:
        self.address_family = family
        self.owner = owner
        super().__init__(address, handler)


def bind_server(
    make: Callable[[_O, tuple[str, int], int], _S], owner: _O, host: str, port: int
) -> _S:
    """``make(owner, address, family)`` for ``host`` (IPv6 literals may be bracketed) and
    ``port``; a bind failure becomes an :class:`OpsError`."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    try:
        return make(owner, (bare, port), family)
    except OSError as exc:
        raise OpsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class JsonRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.0 request handler scaffolding; subclasses set :attr:`server_version` and
    implement :meth:`_serve`, :meth:`_send_busy`, :meth:`_send_internal_error` and
    :meth:`_send_error_body`."""

    server: JsonHTTPServer
    protocol_version = "HTTP/1.0"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    # -- connection setup / logging ------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # a bounded read/write timeout on every connection (StreamRequestHandler's class
        # attribute would be process-wide; set it on this socket)
        self.connection.settimeout(self.server.owner.config.socket_timeout_seconds)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.owner.config.access_log:
            return
        try:
            text = format % args
        except TypeError:
            text = format
        sys.stderr.write(f"{self.address_string()} - {self.log_date_time_string()} {text}\n")

    # -- responses -----------------------------------------------------------------------
    def _write(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        head: bool = False,
    ) -> None:
        """Status line, ``Content-Type``, ``Content-Length``, ``headers``, then the body."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """JSON bodies for the errors :mod:`http.server` raises itself."""
        self.close_connection = True
        # an unparseable request line leaves http.server assuming HTTP/0.9 (no status line,
        # no headers); nobody speaks 0.9 any more: always answer with a full HTTP/1.0 reply
        self.request_version = "HTTP/1.0"
        text = message or self.responses.get(code, ("error",))[0]
        with contextlib.suppress(OSError):
            self._send_error_body(code, text)

    def _read_exact(self, length: int) -> bytes | None:
        """``length`` body bytes; ``None`` (and the connection closed) when fewer arrive."""
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            self.close_connection = True
            return None
        return data

    # -- dispatch ------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        owner = self.server.owner
        if not owner.enter():
            self._send_busy(method)
            return
        try:
            self._serve(method)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # never a traceback page: a JSON 500 and a log line
            sys.stderr.write(
                f"error: internal error handling {method} {urlsplit(self.path).path}: "
                f"{type(exc).__name__}: {exc}\n"
            )
            with contextlib.suppress(OSError):
                self._send_internal_error()
        finally:
            owner.leave()

    # -- hooks ---------------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        """Answer one request (a slot is held)."""
        raise NotImplementedError

    def _send_busy(self, method: str) -> None:
        """Answer a request refused at the concurrency cap."""
        raise NotImplementedError

    def _send_internal_error(self) -> None:
        """Answer a request whose handling raised."""
        raise NotImplementedError

    def _send_error_body(self, code: int, text: str) -> None:
        """Answer an error :mod:`http.server` raised itself."""
        raise NotImplementedError

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")
