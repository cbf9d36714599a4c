"""The ``sprite_service`` transport: observe and control a loop through its sprite service.

Registered through :func:`opsmgr_register_transports` like any plugin. Over HTTP
(``loop.md`` §3.8.2 ingest, §3.10.3 control):

- ``observe``: ``GET /ops/snapshot?loopId=<loop>`` first (a failure skips the events call),
  then ``GET /ops/events?loopId=<loop>&cursor=<line offset>&maxEvents=<n>``. Events arrive in
  pages (at most :data:`EVENTS_PAGE` per request; further pages are fetched while the
  caller iterates), so a long backlog neither hits the service's per-request cap nor
  builds one huge response. Positions are line offsets only: over HTTP there is no byte
  offset or fingerprint (the service verifies its own position cache).
- ``control``: ``POST /ops/control`` with ``{loopId, intent, by, note?, traceId,
  idempotencyKey, noConfirm}``; the answer is mapped to a :class:`ControlExecution` exactly
  as §3.10.3 says.

Failure codes: ``service_request_failed`` (no usable HTTP answer, after the client's
retries) and ``service_response_invalid`` (a 2xx answer that is not JSON, or not the
expected shape; DECISIONS: a non-JSON snapshot body is ``service_response_invalid``, not a
crash, Q-10).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from ops_manager._jsonfmt import alt, as_nonneg_int, dumps_compact, nonempty_str, strip_nulls
from ops_manager.hookspecs import hookimpl
from ops_manager.runtime import StreamPosition
from ops_manager.service_client import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_MAX_TIME_SECONDS,
    ServiceRequest,
    ServiceRequestError,
    ServiceResponse,
    body_tail,
    call_service,
    service_url,
)
from ops_manager.transports import (
    ControlExecution,
    ControlRequest,
    EventTuple,
    IngestFailure,
    ObserveRequest,
    ReadExtent,
    RuntimeView,
    Transport,
    TransportConfig,
    TransportFactory,
)

#: events requested per ``/ops/events`` call (below the service's 10000 cap)
EVENTS_PAGE = 2000
#: lines of a failure message kept (like upstream's ``tail -n 40``)
MESSAGE_TAIL_LINES = 40

REQUEST_FAILED = "service_request_failed"
RESPONSE_INVALID = "service_response_invalid"


def _tail(text: str) -> str:
    return "\n".join(text.replace("\r", "").rstrip("\n").split("\n")[-MESSAGE_TAIL_LINES:])


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def view_from_snapshot(envelope: Any) -> RuntimeView:
    """A :class:`RuntimeView` from a ``loop_run_snapshot`` envelope (raises ValueError).

    ``repo_path`` is the SERVICE's repo path (Q-36). The last event is rebuilt from
    ``health.lastEventName`` / ``health.lastEventAt`` (all the lifecycle projection reads
    of it); :class:`_ServiceObservation` swaps in the full raw event when the batch holds it.
    """
    if not isinstance(envelope, dict) or envelope.get("envelopeType") != "loop_run_snapshot":
        raise ValueError("service /ops/snapshot response is not a loop_run_snapshot envelope")
    run = envelope.get("run")
    runtime = envelope.get("runtime")
    health = envelope.get("health")
    source = envelope.get("source")
    if not (
        isinstance(run, dict)
        and isinstance(runtime, dict)
        and isinstance(health, dict)
        and isinstance(source, dict)
    ):
        raise ValueError("service /ops/snapshot response shape invalid")
    repo_path = source.get("repoPath")
    run_id = run.get("runId")
    status = run.get("status")
    iteration = run.get("iteration")
    if not (
        isinstance(repo_path, str)
        and isinstance(run_id, str)
        and isinstance(status, str)
        and isinstance(iteration, (int, float))
        and not isinstance(iteration, bool)
    ):
        raise ValueError("service /ops/snapshot response shape invalid")
    name = nonempty_str(health.get("lastEventName"))
    at = health.get("lastEventAt")
    last_event: dict[str, Any] | None = None
    if name is not None or at is not None:
        last_event = {"timestamp": at, "event": name}
    return RuntimeView(
        repo_path=repo_path,
        run_id=run_id,
        iteration=iteration,
        status=status,
        summary=_dict_or_none(run.get("summary")),
        superloop_state=runtime.get("superloopState"),
        approval=runtime.get("approval"),
        heartbeat=runtime.get("heartbeat"),
        last_event=last_event,
        summary_updated_at=health.get("lastSummaryAt"),
        active_run=runtime.get("activeRun"),
        # the contract's snapshot always has the key; its absence means "not told"
        active_run_known="activeRun" in runtime,
    )


def parse_events_page(body: Any) -> tuple[list[EventTuple], int, int]:
    """``(events, eventLineOffset, eventLineCount)`` of an ``/ops/events`` answer.

    Raises :class:`IngestFailure` ``service_response_invalid`` with upstream's messages
    (``service /ops/events response shape invalid``, ``service cursor values are
    invalid``) or, for a malformed envelope, ``service event envelope <i> is invalid``.
    Sequence values must increase strictly within the batch.
    """
    if (
        not isinstance(body, dict)
        or body.get("ok") is not True
        or not isinstance(body.get("events"), list)
        or not isinstance(body.get("cursor"), dict)
    ):
        raise IngestFailure(RESPONSE_INVALID, "service /ops/events response shape invalid")
    cursor = body["cursor"]
    # jq: `.eventLineOffset // 0` then `^[0-9]+$`
    offset = as_nonneg_int(alt(cursor.get("eventLineOffset"), 0))
    count = as_nonneg_int(alt(cursor.get("eventLineCount"), 0))
    if offset is None or count is None:
        raise IngestFailure(RESPONSE_INVALID, "service cursor values are invalid")
    events: list[EventTuple] = []
    previous = 0
    for index, envelope in enumerate(body["events"]):
        line = as_nonneg_int(_get(envelope, "sequence", "value"))
        raw = _get(envelope, "event", "raw")
        name = _get(envelope, "event", "name")
        timestamp = _get(envelope, "event", "timestamp")
        if (
            line is None
            or line <= previous
            or not isinstance(raw, dict)
            or not isinstance(name, str)
            or not name
            or not isinstance(timestamp, str)
            or not timestamp
        ):
            raise IngestFailure(
                RESPONSE_INVALID,
                f"service event envelope {index} is invalid "
                "(sequence.value must increase; event.raw/name/timestamp required)",
            )
        previous = line
        events.append((line, raw, name, timestamp))
    return events, offset, count


class _ServiceObservation:
    """Snapshot view + the first events page, further pages fetched while iterating."""

    def __init__(
        self,
        transport: SpriteServiceTransport,
        request: ObserveRequest,
        view: RuntimeView,
        first: tuple[list[EventTuple], int, int],
        page: int,
        remaining: int | None,
    ) -> None:
        self._transport = transport
        self._request = request
        self._first = first
        self._page = page
        self._remaining = remaining
        events, offset, count = first
        self._offset = offset
        self._count = count
        self._emitted = 0
        last = view.last_event
        if events and last is not None:
            _line, raw, name, timestamp = events[-1]
            if name == last.get("event") and timestamp == last.get("timestamp"):
                # the batch holds the snapshot's last event: hand over the full raw object
                view = RuntimeView(
                    repo_path=view.repo_path,
                    run_id=view.run_id,
                    iteration=view.iteration,
                    status=view.status,
                    summary=view.summary,
                    superloop_state=view.superloop_state,
                    approval=view.approval,
                    heartbeat=view.heartbeat,
                    last_event=raw,
                    summary_updated_at=view.summary_updated_at,
                    active_run=view.active_run,
                    active_run_known=view.active_run_known,
                )
        self.view = view

    @property
    def events(self) -> Iterator[EventTuple]:
        batch, _, _ = self._first
        while True:
            yield from batch
            self._emitted += len(batch)
            if self._remaining is not None:
                self._remaining -= len(batch)
            # another page while the last one was not empty and lines remain (the service
            # may cap a page below what we asked for, so a short page does not mean "done")
            if (
                not batch
                or self._offset >= self._count
                or (self._remaining is not None and self._remaining <= 0)
            ):
                return
            requested = self._page if self._remaining is None else min(self._page, self._remaining)
            batch, self._offset, self._count = self._transport._events_page(
                self._request, self._offset, requested
            )

    def extent(self) -> ReadExtent:
        return ReadExtent(
            position=StreamPosition(byte_offset=0, line_offset=self._offset),
            total_lines=self._count,
            events_emitted=self._emitted,
        )


class SpriteServiceTransport:
    """Talks to ``ops-manager sprite-service`` (or the upstream service) over HTTP."""

    name = "sprite_service"
    #: the service deduplicates control by idempotency key itself (§3.12)
    deduplicates_intents = True

    def __init__(
        self,
        config: TransportConfig,
        *,
        call: Callable[[ServiceRequest], ServiceResponse] = call_service,
        events_page: int = EVENTS_PAGE,
    ) -> None:
        self.config = config
        self._call = call
        self._page = events_page

    # -- plumbing ----------------------------------------------------------------------------
    def _base_url(self) -> str:
        base = self.config.service_base_url
        if not base:
            raise IngestFailure(
                REQUEST_FAILED,
                "error: --service-base-url is required when --transport sprite_service",
            )
        return base

    def _timeouts(self, *, control: bool = False) -> tuple[float, float]:
        """``(connect, read)`` timeouts of one request.

        A configured ``timeout_seconds`` bounds the read time and caps the connect time
        (``min(5, timeout)``); ``None`` keeps the client's defaults (5 s, 45 s).
        """
        configured = self.config.timeout_seconds
        if configured is None:
            return DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_MAX_TIME_SECONDS
        connect = min(DEFAULT_CONNECT_TIMEOUT_SECONDS, configured)
        if control:
            # the client must outlive the service's confirmation (up to 30 s), or an
            # ambiguous outcome would arrive as a client timeout instead of the service's
            # answer. So POST /ops/control never waits less than the default 45 s read time.
            return connect, max(configured, DEFAULT_MAX_TIME_SECONDS)
        return connect, configured

    def _request(
        self,
        method: str,
        path: str,
        trace_id: str | None,
        body: bytes | None = None,
        *,
        control: bool = False,
    ) -> ServiceRequest:
        connect, read = self._timeouts(control=control)
        return ServiceRequest(
            method=method,
            base_url=self._base_url(),
            path=path,
            token=self.config.service_token or None,
            trace_id=trace_id or None,
            body=body,
            retry_attempts=self.config.retry_attempts,
            retry_backoff_seconds=self.config.retry_backoff_seconds,
            connect_timeout_seconds=connect,
            max_time_seconds=read,
        )

    def _get_json(self, path: str, trace_id: str | None, what: str) -> Any:
        try:
            response = self._call(self._request("GET", path, trace_id))
        except ServiceRequestError as exc:
            raise IngestFailure(REQUEST_FAILED, _tail(f"error: {exc.message}")) from None
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError):
            raise IngestFailure(
                RESPONSE_INVALID,
                f"service {what} response is not valid JSON: {body_tail(response.body, 5)[:500]}",
            ) from None

    def _events_page(
        self, request: ObserveRequest, cursor: int, max_events: int
    ) -> tuple[list[EventTuple], int, int]:
        loop = _query_value(request.paths.loop_id)
        path = f"/ops/events?loopId={loop}&cursor={cursor}&maxEvents={max_events}"
        body = self._get_json(path, request.trace_id, "/ops/events")
        return parse_events_page(body)

    # -- Transport -----------------------------------------------------------------------------
    def observe(self, request: ObserveRequest) -> _ServiceObservation:
        """GET the snapshot, then the first page of events after ``request.start``."""
        loop = _query_value(request.paths.loop_id)
        snapshot = self._get_json(f"/ops/snapshot?loopId={loop}", request.trace_id, "/ops/snapshot")
        try:
            view = view_from_snapshot(snapshot)
        except ValueError as exc:
            raise IngestFailure(RESPONSE_INVALID, str(exc)) from None
        remaining = request.max_events if request.max_events > 0 else None
        page = self._page if remaining is None else min(self._page, remaining)
        first = self._events_page(request, request.start.line_offset, page)
        return _ServiceObservation(self, request, view, first, page, remaining)

    def control(self, request: ControlRequest) -> ControlExecution:
        """POST the intent to ``/ops/control`` and map the answer (§3.10.3).

        The service runs the intent (and its confirmation) locally and deduplicates by
        idempotency key. A client failure is ``failed_command`` with exit code 1; its
        ``error: ...`` line is the ``commandOutput`` (upstream put ``"{}"`` there and the line
        on stderr, next to the printed entry: the entry is the failure document and must be
        the whole output, docs/output-and-errors.md). A final 409/500 whose body is a control
        answer (not an error body) is mapped like a 2xx: it carries the outcome (e.g.
        ``ambiguous``) the caller must record.
        """
        base = self.config.service_base_url or ""
        command = f"POST {base[:-1] if base.endswith('/') else base}/ops/control"
        payload = strip_nulls(
            {
                "loopId": request.paths.loop_id,
                "intent": request.intent,
                "by": request.by,
                "note": nonempty_str(request.note),
                "traceId": nonempty_str(request.trace_id),
                "idempotencyKey": request.idempotency_key,
                "noConfirm": not request.confirm,
            }
        )
        body = dumps_compact(payload).encode("utf-8")
        answer: Any
        try:
            if not base:
                raise IngestFailure(REQUEST_FAILED, "--service-base-url is required")
            response = self._call(
                self._request("POST", "/ops/control", request.trace_id, body, control=True)
            )
            answer = response.json()
        except IngestFailure as exc:
            return _client_failure(command, f"error: {exc.message.removeprefix('error: ')}")
        except ServiceRequestError as exc:
            answer = exc.json_body()
            if not (exc.status in (409, 500) and _is_control_answer(answer)):
                return _client_failure(command, f"error: {exc.message}")
        except (ValueError, UnicodeDecodeError):
            url = service_url(base, "/ops/control")
            return _client_failure(
                command, f"error: service control response is not valid JSON (url={url})"
            )
        if not isinstance(answer, dict):
            answer = {}
        return execution_from_answer(answer, command)


def _query_value(value: str) -> str:
    """Percent-encode a query value (upstream sent it raw; identical for usual loop ids, and
    a loop id with ``&``, ``#``, ``%`` or a space no longer breaks the query)."""
    from urllib.parse import quote

    return quote(value, safe="-_.~")


def _is_control_answer(answer: Any) -> bool:
    return isinstance(answer, dict) and "exitCode" in answer and "error" not in answer


def _client_failure(command: str, message: str) -> ControlExecution:
    """``failed_command`` for a request that got no control answer; ``message`` (the client's
    ``error: ...`` line, token-free) is kept as the command output."""
    return ControlExecution(
        status="failed_command",
        command=command,
        exit_code=1,
        confirm_exit_code=0,
        confirmed=False,
        execution_status="failed_command",
        confirmation_status="not_attempted",
        confirmation_attempted=False,
        command_output=message,
        confirm=None,
        replayed=False,
    )


def execution_from_answer(answer: dict[str, Any], command: str) -> ControlExecution:
    """Map a service ``/ops/control`` answer to a :class:`ControlExecution` (§3.10.3)."""
    found = answer.get("result")
    result: dict[str, Any] = found if isinstance(found, dict) else {}
    exit_code = as_nonneg_int(answer.get("exitCode"))
    if exit_code is None:
        exit_code = 0
    confirm = result.get("confirm")
    confirm = confirm if isinstance(confirm, dict) else None
    confirm_exit = as_nonneg_int(result.get("confirmExitCode"))
    if confirm_exit is None:
        confirm_exit = 0
    attempted = result.get("confirm") is not None
    status = nonempty_str(result.get("status"))
    if status is None:
        if answer.get("ok") is True:
            status = "confirmed"
        elif exit_code == 2:
            status = "ambiguous"
        else:
            status = "failed_command"
    confirmed = result.get("confirmed") is True or status == "confirmed"
    execution_status = "failed_command" if status == "failed_command" else "succeeded"
    if status == "confirmed":
        confirmation_status = "confirmed"
    elif status == "ambiguous":
        confirmation_status = "ambiguous"
    elif status == "executed_unconfirmed":
        confirmation_status = "skipped"
    else:
        confirmation_status = "attempted_unknown" if attempted else "not_attempted"
    return ControlExecution(
        status=status,
        command=command,
        exit_code=exit_code,
        confirm_exit_code=confirm_exit,
        confirmed=confirmed,
        execution_status=execution_status,
        confirmation_status=confirmation_status,
        confirmation_attempted=attempted,
        command_output=json.dumps(answer, ensure_ascii=False, separators=(",", ":")),
        confirm=confirm,
        replayed=answer.get("replayed") is True,
    )


@hookimpl
def opsmgr_register_transports(register: Callable[[str, TransportFactory], None]) -> None:
    """Provide the ``sprite_service`` transport."""
    factory: Callable[[TransportConfig], Transport] = SpriteServiceTransport
    register("sprite_service", factory)
