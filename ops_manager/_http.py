"""HTTP plumbing shared by the operator console and the sprite service.

Both serve JSON over a hardened stdlib ``ThreadingHTTPServer``: HTTP/1.0 answers, a socket
timeout per connection, an optional access log on stderr, JSON bodies for the errors
:mod:`http.server` raises itself, a cap on concurrent requests and a JSON 500 (plus a log
line) instead of a traceback page. A handler may opt in to HTTP/1.0 keep-alive
(:attr:`JsonRequestHandler.keep_alive`): a client that asks for it with ``Connection:
keep-alive`` keeps its connection for further requests; every other client gets exactly the
one-request-per-connection answer it got before. What differs between the two (routes, auth sources,
limits, extra headers, error wording) stays in their own ``_server`` modules, behind the
small hooks of :class:`JsonRequestHandler`.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import ipaddress
import json
import socket
import sys
import threading
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


#: the longest a kept-alive connection may sit idle between two requests, in seconds
KEEP_ALIVE_IDLE_SECONDS = 5.0


class JsonHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with daemon request threads, bound for one owner.

    It also knows its kept-alive connections that wait for their next request, so that
    :meth:`shutdown` can close them: after a shutdown no further request is served.
    """

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
        self._idle_lock = threading.Lock()
        self._idle: set[socket.socket] = set()
        self._stopping = False
        super().__init__(address, handler)

    def wait_for_next(self, connection: socket.socket) -> bool:
        """Register ``connection`` as idle; ``False`` once the server is shutting down."""
        with self._idle_lock:
            if self._stopping:
                return False
            self._idle.add(connection)
            return True

    def busy_again(self, connection: socket.socket) -> bool:
        """``connection`` stopped waiting; ``False`` if the server is shutting down."""
        with self._idle_lock:
            self._idle.discard(connection)
            return not self._stopping

    def shutdown(self) -> None:
        """Stop the serve loop, then close every connection waiting for its next request
        (a request in flight is answered; its connection closes after the answer)."""
        with self._idle_lock:
            self._stopping = True
            idle = list(self._idle)
        for connection in idle:
            # wakes the handler thread blocked on its read with an end of file
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        super().shutdown()


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
    :meth:`_send_error_body`.

    With :attr:`keep_alive` set, a request that carries ``Connection: keep-alive`` is
    answered with ``Connection: keep-alive`` and the connection waits (at most
    :data:`KEEP_ALIVE_IDLE_SECONDS`) for the next request. A subclass that enables it must
    set :attr:`close_connection` whenever part of a request body is left unread, or the
    next request on the connection would start inside that body.
    """

    server: JsonHTTPServer
    protocol_version = "HTTP/1.0"
    sys_version = ""
    #: honour ``Connection: keep-alive`` (HTTP/1.0 persistent connections)
    keep_alive = False
    _headers_buffer: list[bytes]  # http.server's pending head lines (set by send_response)

    def version_string(self) -> str:
        return self.server_version

    # -- connection setup / logging ------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # a bounded read/write timeout on every connection (StreamRequestHandler's class
        # attribute would be process-wide; set it on this socket)
        self.connection.settimeout(self.server.owner.config.socket_timeout_seconds)
        self._kept_alive = False

    def handle(self) -> None:
        """Serve requests on this connection: one, or more while the client keeps it alive."""
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and self._next_request_arrives():
            self.handle_one_request()

    def _next_request_arrives(self) -> bool:
        """Wait for the first byte of the next request on a kept-alive connection.

        An idle connection that times out, is closed by the client, or is closed by the
        server's shutdown ends quietly: none of these is an error worth a log line (a
        stalled request *inside* a request still is, as before).
        """
        config = self.server.owner.config
        connection = self.connection
        if not self.server.wait_for_next(connection):
            return False
        try:
            connection.settimeout(min(KEEP_ALIVE_IDLE_SECONDS, config.socket_timeout_seconds))
            reader = self.rfile
            # a StreamRequestHandler's rfile is a BufferedReader: peek waits for a byte
            # without consuming it (or returns what a pipelined request left buffered)
            waiting = reader.peek(1) if isinstance(reader, io.BufferedReader) else b"?"
        except OSError:  # TimeoutError included
            waiting = b""
        finally:
            serving = self.server.busy_again(connection)
        if not waiting or not serving:
            return False
        connection.settimeout(config.socket_timeout_seconds)
        self._kept_alive = False
        return True

    def parse_request(self) -> bool:
        """:meth:`BaseHTTPRequestHandler.parse_request`, plus HTTP/1.0 keep-alive."""
        if not super().parse_request():
            return False
        self._kept_alive = False
        if self.keep_alive:
            tokens = {t.strip().lower() for t in (self.headers.get("Connection") or "").split(",")}
            if "keep-alive" in tokens and "close" not in tokens:
                self._kept_alive = True
                self.close_connection = False
        return True

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
        """Status line, ``Content-Type``, ``Content-Length``, ``headers``, then the body.

        ``Connection: keep-alive`` comes last when the connection stays open. Head and body
        go out in one write: a second small write on a kept-alive connection would wait for
        the client's delayed ACK of the first (Nagle).
        """
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if self._kept_alive and not self.close_connection:
            self.send_header("Connection", "keep-alive")
        if self.request_version == "HTTP/0.9":  # http.server sends no head at all then
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        self._headers_buffer.append(b"\r\n")
        if not head:
            self._headers_buffer.append(body)
        self.flush_headers()

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
            self.close_connection = True  # whatever of the request is left unread: drop it
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
