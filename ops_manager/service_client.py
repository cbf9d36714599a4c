"""Calling a sprite service over HTTP: auth headers, bounded timeouts, retries (``loop.md`` §3.11).

One function, :func:`call_service`, used by the ``service-client`` command and by the
``sprite_service`` transport. ``requests`` is imported inside it, so importing this module
costs nothing for commands that never talk to a service.

Retry policy (DECISIONS Q-16/Q-28, which changes upstream here):

- transient failures are retried up to ``retry_attempts`` tries in total, sleeping
  ``backoff * attempt`` seconds between tries (``attempt`` is 1-based), or longer when the
  service sent a numeric ``Retry-After`` (honoured up to :data:`RETRY_AFTER_CAP` seconds);
- transient = connection refused / reset / timed out (reported as code ``000``) and HTTP
  408, 409, 425, 429, 500, 502, 503, 504. Unlike upstream, connection failures ARE retried;
- every try of one call sends the same bytes, so a control POST carries the same
  ``idempotencyKey`` each time and the service answers a retry from its idempotency store;
- a POST that carries no idempotency key is not safe to repeat once the service may have
  acted on it: it is retried only when it certainly was not processed (the connection was
  never established, or 408/425/429/503);
- 401 is an authentication failure and is never retried; other 4xx are not retried.

The read timeout (``max_time_seconds``, default 45 s) is deliberately longer than the
service's confirmation timeout (30 s), so an ambiguous control outcome arrives as the
service's answer instead of a client timeout (Q-16). The token is sent in headers only and
never appears in a message this module builds.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ops_manager.errors import OpsError

if TYPE_CHECKING:  # pragma: no cover
    import requests

#: HTTP codes worth another try (the service may answer differently a moment later)
TRANSIENT_CODES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: transient codes that say the request was not processed (safe to repeat for any POST)
NOT_PROCESSED_CODES = frozenset({408, 425, 429, 503})
#: the longest ``Retry-After`` we honour, in seconds
RETRY_AFTER_CAP = 30
#: default read timeout: longer than the service's 30 s confirmation timeout (Q-16)
DEFAULT_MAX_TIME_SECONDS = 45
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5
#: lines of the response body quoted in an error message
BODY_TAIL_LINES = 40
#: the code reported when no HTTP response arrived (connection failure, timeout)
NO_RESPONSE = "000"


@attrs.frozen
class ServiceRequest:
    """One logical call to a sprite service (all tries share it)."""

    method: str
    base_url: str
    path: str
    token: str | None = attrs.field(default=None, repr=False)
    trace_id: str | None = None
    body: bytes | None = None
    retry_attempts: int = 3
    retry_backoff_seconds: float = 1
    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
    max_time_seconds: float = DEFAULT_MAX_TIME_SECONDS

    @property
    def url(self) -> str:
        """Base URL with one trailing ``/`` removed, plus the path verbatim (no encoding)."""
        return service_url(self.base_url, self.path)


@attrs.frozen
class ServiceResponse:
    """A 2xx answer."""

    status: int
    body: bytes
    attempts: int

    def json(self) -> Any:
        """The body parsed as JSON (raises :class:`ValueError` when it is not JSON)."""
        return json.loads(self.body.decode("utf-8"))


class ServiceRequestError(OpsError):
    """The call failed for good (after any retries).

    ``code`` is the last HTTP status as a 3-digit string, or ``"000"`` when no response
    arrived. ``body`` is the last response body (empty for ``000``). The message is
    ``service request failed (method=<M> url=<U> code=<C>): <body tail>``, or
    ``service authentication failed (...)`` for a 401.
    """

    def __init__(
        self,
        *,
        method: str,
        url: str,
        code: str,
        body: bytes,
        detail: str,
        attempts: int,
    ) -> None:
        self.method = method
        self.url = url
        self.code = code
        self.body = body
        self.detail = detail
        self.attempts = attempts
        what = "service authentication failed" if code == "401" else "service request failed"
        super().__init__(f"{what} (method={method} url={url} code={code}): {detail}")

    @property
    def status(self) -> int | None:
        """The last HTTP status, or ``None`` when no response arrived."""
        return None if self.code == NO_RESPONSE else int(self.code)

    @property
    def auth_failed(self) -> bool:
        """True for a 401 (wrong or missing token)."""
        return self.code == "401"

    def json_body(self) -> Any:
        """The last response body as JSON, or ``None`` when it is absent or not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None


def service_url(base_url: str, path: str) -> str:
    """``base_url`` with one trailing ``/`` removed, followed by ``path`` verbatim."""
    return (base_url[:-1] if base_url.endswith("/") else base_url) + path


def request_headers(method: str, token: str | None, trace_id: str | None) -> dict[str, str]:
    """The headers of §3.11: Accept, both token headers, the trace id, Content-Type for POST."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
        headers["X-Ops-Token"] = token
    if trace_id:
        headers["X-Trace-Id"] = trace_id
    if method == "POST":
        headers["Content-Type"] = "application/json"
    return headers


def body_tail(body: bytes, lines: int = BODY_TAIL_LINES) -> str:
    """The last ``lines`` lines of a body as text (CR removed, bad bytes replaced)."""
    text = body.decode("utf-8", "replace").replace("\r", "")
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


def _carries_idempotency_key(body: bytes | None) -> bool:
    if not body:
        return False
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    key = value.get("idempotencyKey") if isinstance(value, dict) else None
    return isinstance(key, str) and key != ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP-date: not worth parsing; the backoff applies
    if seconds != seconds or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_CAP)


def _describe(exc: Exception, request: ServiceRequest) -> tuple[str, bool]:
    """A short operator-facing text for a connection-level failure, and whether the request
    certainly never reached the service (connect phase)."""
    import requests

    if isinstance(exc, _invalid_request_errors()):
        return f"invalid request: {str(exc)[-200:]}", False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connection timed out after {request.connect_timeout_seconds:g}s", True
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no response within {request.max_time_seconds:g}s", False
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused", True
    if "reset" in lowered or "aborted" in lowered or "remotedisconnected" in lowered:
        return "connection reset by peer", False
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "host name could not be resolved", True
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection failed: {text[-200:]}", False
    return f"{type(exc).__name__}: {text[-200:]}", False


def _invalid_request_errors() -> tuple[type[Exception], ...]:
    import requests

    ex = requests.exceptions
    return (ex.InvalidURL, ex.MissingSchema, ex.InvalidSchema, ex.InvalidHeader, ex.URLRequired)


_local = threading.local()


def _thread_session() -> requests.Session:
    """One ``requests.Session`` per thread, reused across calls.

    Building a session (adapters, proxy environment scan) costs ~0.5 ms; a fleet reconcile
    makes two calls per loop from a handful of worker threads (docs/fleet-sizing.md).
    """
    import requests

    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        _local.session = session
    return session


def _environment_names_a_proxy() -> bool:
    """Whether any ``<scheme>_proxy`` variable (any case) is set, as urllib scans for them."""
    return any(name[-6:].lower() == "_proxy" for name in os.environ)


def _send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    data: bytes | None,
    timeout: tuple[float, float],
) -> requests.Response:
    """``session.request(method, url, ..., allow_redirects=False)``, minus a cost.

    ``Session.request`` merges the environment's proxy settings on every call, which scans
    and lower-cases the whole environment twice per request (getproxies_environment, ~5 %
    of a fleet pass). When no ``*_proxy`` variable exists that merge provably finds no
    proxy, so this builds the very same prepared request and send arguments
    ``Session.request`` would (same headers, same bytes on the wire, the CA bundle variables
    still read) and skips the scan. With any proxy variable set, ``Session.request`` runs
    as it always did: proxies and ``NO_PROXY`` are honoured exactly as before.
    """
    import requests

    if not session.trust_env or _environment_names_a_proxy():
        return session.request(
            method,
            url,
            headers=headers,
            data=data,
            timeout=timeout,
            allow_redirects=False,
        )
    # what Session.request builds (requests 2.x), with the environment merge's outcome for
    # an environment that names no proxy: no proxies; verify from the CA bundle variables
    prepared = session.prepare_request(
        requests.Request(
            method=method.upper(),
            url=url,
            headers=headers,
            data=data or {},
            params={},
        )
    )
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    # requests' merge_setting of each: the session's proxies without None values, the
    # session's stream and cert (the call gives none), the call's verify (never None)
    return session.send(
        prepared,
        timeout=timeout,
        allow_redirects=False,
        proxies={k: v for k, v in session.proxies.items() if v is not None},
        stream=session.stream,
        verify=verify,
        cert=session.cert,
    )


# -- plain http GET over a kept-alive http.client connection -----------------------------------
#
# A fleet pass makes two GETs per loop. Through requests each costs ~500 µs of CPU (request
# preparation, urllib3's pool, the netrc/CA lookups), a bare http.client keep-alive request
# ~100 µs. So a GET to a plain ``http://`` URL that requests would send unchanged goes out
# over a per-thread http.client connection with the very bytes requests would send (the
# same headers in the same order; tests compare them). Anything this path does not model
# goes through requests as before: https, a proxy or netrc in the environment, a URL
# requests would rewrite, an explicit session, a compressed answer, an unexpected error.


class _PlainFailure(Exception):
    """A connection-level failure of the plain path, as :func:`_describe` words it."""

    def __init__(self, detail: str, not_sent: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.not_sent = not_sent


@attrs.frozen
class _PlainAnswer:
    """What :func:`call_service` reads from a response (as from a ``requests.Response``)."""

    status_code: int
    content: bytes
    #: only what :func:`_retry_after` reads
    headers: Mapping[str, str]


_HOME_NETRC = tuple(os.path.expanduser(f"~/{name}") for name in (".netrc", "_netrc"))


def _requests_would_change(url: str, netloc: str) -> bool:
    """Whether requests would send something else than ``url`` as is, or add auth to it."""
    from requests.utils import requote_uri

    if not netloc.isascii() or netloc != netloc.lower() or "@" in netloc or "[" in netloc:
        return True  # IDNA/case normalising, URL credentials, IPv6 brackets: not modelled
    if "#" in url or requote_uri(url) != url:
        return True
    # requests adds Basic auth from a netrc file for the host (trust_env): not modelled
    return bool(os.environ.get("NETRC")) or any(os.path.exists(n) for n in _HOME_NETRC)


_DEFAULT_HEADERS: list[tuple[str, str]] = []


def _wire_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers requests sends: its session defaults, overridden in place, then ours."""
    if not _DEFAULT_HEADERS:
        from requests.utils import default_headers

        _DEFAULT_HEADERS.extend(default_headers().items())
    merged = list(_DEFAULT_HEADERS)
    index = {name.lower(): i for i, (name, _) in enumerate(merged)}
    for name, value in headers.items():
        at = index.get(name.lower())
        if at is None:
            index[name.lower()] = len(merged)
            merged.append((name, value))
        else:
            merged[at] = (merged[at][0], value)
    return merged


def _plain_get(
    url: str, headers: Mapping[str, str], timeout: tuple[float, float]
) -> _PlainAnswer | None:
    """GET ``url`` over this thread's kept-alive connection; ``None``: use requests.

    Raises :class:`_PlainFailure` for the connection failures :func:`_describe` names.
    """
    import http.client
    from urllib.parse import urlsplit

    if not url.startswith("http://") or _environment_names_a_proxy():
        return None
    parts = urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError:
        return None
    host = parts.hostname
    if not host or _requests_would_change(url, parts.netloc):
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    wire = _wire_headers(headers)
    conns: dict[tuple[str, int], http.client.HTTPConnection] | None = getattr(_local, "plain", None)
    if conns is None:
        conns = _local.plain = {}
    connect_timeout, read_timeout = timeout
    for _ in range(2):
        conn = conns.pop((host, port), None)
        reused = conn is not None
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=connect_timeout)
            try:
                conn.connect()
            except ConnectionRefusedError:
                raise _PlainFailure("connection refused", True) from None
            except TimeoutError:
                raise _PlainFailure(
                    f"connection timed out after {connect_timeout:g}s", True
                ) from None
            except OSError:
                conn.close()
                return None  # requests words the rest (and nothing was sent)
        try:
            assert conn.sock is not None
            conn.sock.settimeout(read_timeout)
            conn.putrequest("GET", target, skip_accept_encoding=True)
            for name, value in wire:
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
        except TimeoutError:
            conn.close()
            raise _PlainFailure(f"no response within {read_timeout:g}s", False) from None
        except (ConnectionError, http.client.RemoteDisconnected) as exc:
            conn.close()
            if reused:
                continue  # the service closed the idle connection: once more, on a new one
            if isinstance(exc, ConnectionRefusedError):
                raise _PlainFailure("connection refused", True) from None
            raise _PlainFailure("connection reset by peer", False) from None
        except (OSError, http.client.HTTPException):
            conn.close()
            return None
        encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            conn.close()
            return None  # requests decodes it
        if response.will_close:
            conn.close()
        else:
            conns[(host, port)] = conn
        retry_after = response.getheader("Retry-After")
        return _PlainAnswer(
            response.status, body, {} if retry_after is None else {"Retry-After": retry_after}
        )
    return None


def call_service(
    request: ServiceRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
    session: requests.Session | None = None,
) -> ServiceResponse:
    """Send ``request`` with retries; return the first 2xx answer or raise.

    Raises :class:`ServiceRequestError` when every try failed (or a non-transient status
    came back), and :class:`~ops_manager.errors.OpsError` for an invalid request (method not
    GET/POST, retry attempts < 1). ``sleep`` and ``session`` are injectable for tests.
    """
    import requests

    method = request.method
    if method not in ("GET", "POST"):
        raise OpsError("--method must be GET or POST")
    if request.retry_attempts < 1:
        raise OpsError("--retry-attempts must be an integer >= 1")
    url = request.url
    headers = request_headers(method, request.token, request.trace_id)
    repeatable = method == "GET" or _carries_idempotency_key(request.body)
    timeout = (request.connect_timeout_seconds, request.max_time_seconds)
    http = session
    # an explicit session is used as given; else a GET to a plain http URL takes the
    # kept-alive http.client path (same bytes; requests for what it does not model)
    plain = session is None and method == "GET"
    attempt = 0
    while True:
        attempt += 1
        retry_after: float | None = None
        try:
            response: requests.Response | _PlainAnswer | None = None
            if plain:
                response = _plain_get(url, headers, timeout)
            if response is None:
                if http is None:
                    http = _thread_session()
                response = _send(
                    http,
                    method,
                    url,
                    headers=headers,
                    data=request.body if method == "POST" else None,
                    timeout=timeout,
                )
            body = response.content
            status = response.status_code
        except _PlainFailure as exc:
            failure = ServiceRequestError(
                method=method,
                url=url,
                code=NO_RESPONSE,
                body=b"",
                detail=exc.detail,
                attempts=attempt,
            )
            retryable = repeatable or exc.not_sent
        except requests.exceptions.RequestException as exc:
            detail, not_sent = _describe(exc, request)
            failure = ServiceRequestError(
                method=method,
                url=url,
                code=NO_RESPONSE,
                body=b"",
                detail=detail,
                attempts=attempt,
            )
            # a malformed URL or header fails the same way every time: no retry
            retryable = (repeatable or not_sent) and not isinstance(exc, _invalid_request_errors())
        else:
            if 200 <= status < 300:
                return ServiceResponse(status=status, body=body, attempts=attempt)
            failure = ServiceRequestError(
                method=method,
                url=url,
                code=f"{status:03d}",
                body=body,
                detail=body_tail(body),
                attempts=attempt,
            )
            retryable = status in TRANSIENT_CODES and (repeatable or status in NOT_PROCESSED_CODES)
            retry_after = _retry_after(response.headers)
        if not retryable or attempt >= request.retry_attempts:
            raise failure
        delay = float(request.retry_backoff_seconds) * attempt
        if retry_after is not None:
            delay = max(delay, retry_after)
        if delay > 0:
            sleep(delay)


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_MAX_TIME_SECONDS",
    "NO_RESPONSE",
    "RETRY_AFTER_CAP",
    "TRANSIENT_CODES",
    "ServiceRequest",
    "ServiceRequestError",
    "ServiceResponse",
    "body_tail",
    "call_service",
    "request_headers",
    "service_url",
]
