"""Sending one sink request over HTTP with retries, backoff, ``Retry-After`` and pacing.

Sinks only build requests (:class:`~ops_manager.sinks.SinkRequest`); this module sends
them, so every sink gets the same delivery guarantees (DECISIONS Q-4):

- one ``POST`` per attempt, redirects never followed, ``timeoutSeconds`` per attempt;
- an ``Idempotency-Key`` header on every request unless the sink set one itself;
- transient failures (connection errors, timeouts, 408/425/429/5xx) are retried with
  exponential backoff and full jitter, up to ``DeliveryPolicy.max_attempts`` and never past
  the run's deadline; a ``Retry-After`` (delta-seconds or HTTP-date) replaces the backoff
  when it fits under ``max_retry_after_seconds`` and the deadline, and is always recorded;
- any other status (3xx, other 4xx) is terminal;
- requests to one destination (``Sink.destination_key``: a webhook URL, a routing key)
  are spaced by ``Sink.min_interval_seconds``;
- a destination that still fails after its retries is "down" for the rest of the run:
  later notifications to it are deferred to the outbox without another wait.

The clock, the sleep, the jitter source and the HTTP sender are injected, so tests never
sleep. ``requests`` is imported only when the first request is sent.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs

from ops_manager.reducers.alerts import (
    DELIVERY_DEFERRED,
    HTTP_ERROR,
    HTTP_RETRYABLE,
    HTTP_SUCCESS,
    OUTBOX_DELIVERED,
    OUTBOX_RETRYING,
    OUTBOX_TERMINAL,
    REQUEST_FAILED,
    DeliveryPolicy,
    backoff_delay,
    classify_http_status,
    excerpt,
    pacing_delay,
    parse_retry_after,
    redact_text,
)
from ops_manager.sinks import SinkRequest

#: most response bytes read (the message keeps 300 characters anyway)
_MAX_BODY = 64 * 1024


@attrs.frozen
class HttpResponse:
    """What came back (headers with lower-case names)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class TransportFailure(Exception):
    """The request never completed (connect, DNS, TLS, timeout, invalid URL)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class HttpSender(Protocol):
    """Sends one POST; raises :class:`TransportFailure` when no response came back."""

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResponse: ...


class RequestsSender:
    """:class:`HttpSender` over ``requests`` (one pooled session; redirects not followed).

    The proxy environment (``HTTPS_PROXY`` / ``NO_PROXY``) is honoured as ``requests`` does.
    """

    def __init__(self) -> None:
        self._session: Any = None

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResponse:
        """POST ``body``; the first 64 KiB of the response body are kept."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        try:
            response = self._session.post(
                url,
                data=body,
                headers=dict(headers),
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.Timeout:
            raise TransportFailure("timeout", _where(url)) from None
        except requests.exceptions.SSLError:
            raise TransportFailure("tls_error", _where(url)) from None
        except requests.exceptions.ConnectionError:
            raise TransportFailure("connection_error", _where(url)) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            ValueError,
        ):
            raise TransportFailure("invalid_url") from None
        except requests.exceptions.RequestException as exc:
            raise TransportFailure("request_error", type(exc).__name__) from None
        try:
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_content(8192):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= _MAX_BODY:
                        break
            except requests.exceptions.RequestException:
                pass  # the status arrived; a broken body does not change the outcome
            return HttpResponse(
                status=int(response.status_code),
                headers={k.lower(): v for k, v in response.headers.items()},
                body=b"".join(chunks)[:_MAX_BODY],
            )
        finally:
            response.close()

    def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None


def _where(url: str) -> str:
    """``host:port`` of ``url`` only: paths and queries may carry secrets (Slack URLs)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"


@attrs.frozen
class DeliveryResult:
    """The outcome of delivering one request in this run (all attempts together)."""

    success: bool
    #: ``delivered`` | ``retrying`` (kept, retried by a later run) | ``terminal`` (kept,
    #: replay by hand)
    outbox_status: str
    attempts: int
    reason_code: str | None = None
    http_status: int | None = None
    message: str | None = None
    #: the last ``Retry-After`` received, in seconds
    retry_after_seconds: float | None = None
    #: for ``retrying``: seconds from now before the next automatic attempt
    retry_in_seconds: float | None = None


def destination_id(destination_key: str) -> str:
    """A non-reversible id for a destination (pacing and "down" bookkeeping)."""
    return hashlib.sha256(destination_key.encode("utf-8")).hexdigest()


class Deliverer:
    """Delivers requests for one run, within one deadline, pacing per destination."""

    def __init__(
        self,
        policy: DeliveryPolicy,
        *,
        sender: HttpSender | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        deadline_at: float | None = None,
    ) -> None:
        self.policy = policy
        self.sender: HttpSender = sender if sender is not None else RequestsSender()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.deadline_at = (
            deadline_at if deadline_at is not None else clock() + policy.deadline_seconds
        )
        self._last_sent: dict[str, float] = {}
        self._down: dict[str, DeliveryResult] = {}
        #: every pause taken, in order (pacing, backoff, Retry-After); for telemetry/tests
        self.pauses: list[tuple[str, float]] = []

    # -- helpers ----------------------------------------------------------------------------
    def _pause(self, why: str, seconds: float) -> None:
        if seconds > 0:
            self.pauses.append((why, seconds))
            self.sleep(seconds)

    def remaining(self) -> float:
        """Seconds left before the run's deadline."""
        return self.deadline_at - self.clock()

    def deferred(self, message: str) -> DeliveryResult:
        """A result for a request not attempted in this run (kept in the outbox)."""
        return DeliveryResult(
            success=False,
            outbox_status=OUTBOX_RETRYING,
            attempts=0,
            reason_code=DELIVERY_DEFERRED,
            message=message,
        )

    def is_down(self, destination: str) -> bool:
        """Whether ``destination`` already failed for good in this run."""
        return destination_id(destination) in self._down

    # -- the loop ---------------------------------------------------------------------------
    def deliver(
        self,
        request: SinkRequest,
        *,
        idempotency_key: str,
        timeout: float,
        destination: str,
        min_interval: float,
        secrets: Iterable[str] = (),
    ) -> DeliveryResult:
        """Send ``request`` until it succeeds, fails terminally, or the budget is spent."""
        dest = destination_id(destination)
        if dest in self._down:
            return self.deferred("destination failed earlier in this run; kept in the outbox")
        secret_values = tuple(secrets)
        headers = dict(request.headers)
        if not any(k.lower() == "idempotency-key" for k in headers):
            headers["Idempotency-Key"] = idempotency_key
        policy = self.policy
        attempts = 0
        retry_after: float | None = None
        last: DeliveryResult | None = None
        while True:
            wait = pacing_delay(self._last_sent.get(dest), self.clock(), min_interval)
            if self.clock() + wait >= self.deadline_at:
                if last is None:
                    return self.deferred("the run's delivery deadline passed; kept in the outbox")
                break
            self._pause("pacing", wait)
            attempts += 1
            self._last_sent[dest] = self.clock()
            try:
                response = self.sender.post(request.url, request.body, headers, timeout)
            except TransportFailure as exc:
                last = DeliveryResult(
                    success=False,
                    outbox_status=OUTBOX_RETRYING,
                    attempts=attempts,
                    reason_code=REQUEST_FAILED,
                    message=redact_text(f"request failed: {exc}", secret_values),
                    retry_after_seconds=retry_after,
                )
                why = "backoff"
                delay = backoff_delay(
                    attempts, policy.backoff_base_seconds, policy.backoff_max_seconds, self.rng()
                )
            else:
                kind = classify_http_status(response.status)
                message = excerpt(response.body.decode("utf-8", "replace"))
                message = redact_text(message, secret_values) if message else None
                if kind == HTTP_SUCCESS:
                    return DeliveryResult(
                        success=True,
                        outbox_status=OUTBOX_DELIVERED,
                        attempts=attempts,
                        http_status=response.status,
                        message=message,
                        retry_after_seconds=retry_after,
                    )
                if kind != HTTP_RETRYABLE:
                    return DeliveryResult(
                        success=False,
                        outbox_status=OUTBOX_TERMINAL,
                        attempts=attempts,
                        reason_code=HTTP_ERROR,
                        http_status=response.status,
                        message=message,
                        retry_after_seconds=retry_after,
                    )
                header_wait = parse_retry_after(response.headers.get("retry-after"), self.clock())
                if header_wait is not None:
                    retry_after = header_wait
                last = DeliveryResult(
                    success=False,
                    outbox_status=OUTBOX_RETRYING,
                    attempts=attempts,
                    reason_code=HTTP_ERROR,
                    http_status=response.status,
                    message=message,
                    retry_after_seconds=retry_after,
                )
                if header_wait is not None:
                    why = "retry_after"
                    delay = header_wait
                    if header_wait > policy.max_retry_after_seconds:
                        # too long to wait in this run: a later run tries again after it
                        return self._give_back(dest, last, header_wait)
                else:
                    why = "backoff"
                    delay = backoff_delay(
                        attempts,
                        policy.backoff_base_seconds,
                        policy.backoff_max_seconds,
                        self.rng(),
                    )
            if attempts >= policy.max_attempts or self.clock() + delay >= self.deadline_at:
                return self._give_back(dest, last, delay)
            self._pause(why, delay)
        return self._give_back(dest, last, 0.0)

    def _give_back(self, dest: str, last: DeliveryResult, retry_in: float) -> DeliveryResult:
        """Stop trying in this run: keep it for a later run, mark the destination down."""
        result = attrs.evolve(last, retry_in_seconds=max(0.0, retry_in))
        self._down[dest] = result
        return result


__all__ = [
    "Deliverer",
    "DeliveryResult",
    "HttpResponse",
    "HttpSender",
    "RequestsSender",
    "TransportFailure",
    "destination_id",
]
