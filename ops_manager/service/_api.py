"""The endpoints of the sprite service (``loop.md`` §3.12), independent of HTTP plumbing.

Each handler takes already-parsed request parts and returns an :class:`ApiResponse`; the
server (``_server.py``) does sockets, auth, size limits and serialisation. Snapshots and
event batches are built in-process by the engine (:mod:`ops_manager.engine.envelopes`,
:mod:`ops_manager.engine.runtime_feed`), and control runs the LOCAL control engine
in-process (:func:`ops_manager.engine.control.run_control`): no subprocess, no shell.

Loop ids are validated with :func:`~ops_manager.engine.paths.validate_loop_id` before any
path is built, so ``../x``, ``a/b``, NUL and friends are a 400 and never touch the
filesystem.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import strip_nulls
from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.engine.envelopes import loop_run_snapshot
from ops_manager.engine.paths import LoopPaths, loop_paths_in, validate_loop_id
from ops_manager.engine.runtime_feed import SCHEMA_VERSION, EventFeed
from ops_manager.engine.service_idempotency import IdempotencyStore
from ops_manager.engine.settings import requester_setting
from ops_manager.errors import OpsError

INTENTS = ("cancel", "approve", "reject")
#: most events one ``/ops/events`` answer carries (``maxEvents`` 0 or larger is capped)
DEFAULT_MAX_EVENTS_PER_REQUEST = 10000
#: longest idempotency key / trace id accepted (they are written into artifacts)
MAX_TOKEN_FIELD_CHARS = 256
#: Retry-After sent with "still in progress" answers
IN_PROGRESS_RETRY_AFTER_SECONDS = 2
_INTEGER = re.compile(r"^-?[0-9]+$")


@attrs.frozen
class ApiResponse:
    """An HTTP status, a JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def error(status: int, code: str, message: str, **extra: Any) -> ApiResponse:
    """The §3.12 error body ``{"ok": false, "error": {"code", "message"}}``."""
    body: dict[str, Any] = {"ok": False, "error": {"code": code, "message": message}}
    body.update(extra)
    return ApiResponse(status, body)


class ApiError(Exception):
    """Raised inside a handler to answer with an error body."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.body)
        self.response = response


def _bad_request(message: str) -> ApiError:
    return ApiError(error(400, "invalid_request", message))


def _runtime_error(exc: OpsError | OSError) -> ApiError:
    if isinstance(exc, OpsError):
        message = f"error: {exc.message}"
    else:
        message = f"error: {exc.strerror or exc}"
    return ApiError(error(502, "runtime_error", message))


@attrs.frozen
class ControlDefaults:
    """How the service runs control (upstream: always 30 s / 2 s, Q-38)."""

    timeout_seconds: int = 30
    interval_seconds: int = 2


class ServiceApi:
    """The endpoint logic for one repo (thread-safe: one instance serves every request)."""

    def __init__(
        self,
        repo: Path,
        *,
        max_events_per_request: int = DEFAULT_MAX_EVENTS_PER_REQUEST,
        control: ControlDefaults | None = None,
    ) -> None:
        self.repo = repo
        self.max_events_per_request = max_events_per_request
        self.control_defaults = control or ControlDefaults()
        #: identifies this service process in idempotency reservations
        self.instance = uuid.uuid4().hex
        # the event batches, and the positions they recently returned (engine.runtime_feed)
        self._feed = EventFeed()

    # -- helpers -------------------------------------------------------------------------
    def _paths(self, loop_id: str | None) -> LoopPaths:
        loop = (loop_id or "").strip()
        if loop == "":
            raise _bad_request("loopId is required")
        try:
            return loop_paths_in(self.repo, validate_loop_id(loop))
        except OpsError as exc:
            raise _bad_request(exc.message) from None

    # -- endpoints -------------------------------------------------------------------------
    def healthz(self) -> ApiResponse:
        """``GET /healthz`` -> ``{"ok": true}``."""
        return ApiResponse(200, {"ok": True})

    def snapshot(self, loop_id: str | None, trace_id: str | None) -> ApiResponse:
        """``GET /ops/snapshot?loopId=`` -> the ``loop_run_snapshot`` envelope."""
        try:
            paths = self._paths(loop_id)
            try:
                envelope = loop_run_snapshot(
                    paths, now=utc_now_epoch(), trace_id=trace_id, run_id=None
                )
            except (OpsError, OSError) as exc:
                raise _runtime_error(exc) from None
        except ApiError as exc:
            return exc.response
        return ApiResponse(200, envelope)

    def events(
        self,
        loop_id: str | None,
        cursor: str | None,
        max_events: str | None,
        trace_id: str | None,
    ) -> ApiResponse:
        """``GET /ops/events?loopId=&cursor=&maxEvents=`` -> a batch of event envelopes.

        ``cursor`` is the number of physical lines already consumed; ``maxEvents`` 0 means
        "as many as the service allows" (:attr:`max_events_per_request`).
        """
        try:
            paths = self._paths(loop_id)
            start_line = _query_int("cursor", cursor)
            wanted = _query_int("maxEvents", max_events)
            cap = self.max_events_per_request
            limit = cap if wanted == 0 else min(wanted, cap)
            now = utc_now_epoch()
            try:
                batch = self._feed.batch(paths, start_line, limit, now=now, trace_id=trace_id)
            except (OpsError, OSError) as exc:
                raise _runtime_error(exc) from None
        except ApiError as exc:
            return exc.response
        body = strip_nulls(
            {
                "ok": True,
                "schemaVersion": SCHEMA_VERSION,
                "traceId": trace_id,
                "source": {"repoPath": str(paths.repo), "loopId": paths.loop_id},
                "events": batch.envelopes,
                "cursor": {
                    "eventLineOffset": batch.line_offset,
                    "eventLineCount": batch.total_lines,
                    "updatedAt": format_ts(now),
                },
            }
        )
        return ApiResponse(200, body)

    def control(self, body: Any, header_key: str | None, header_trace: str | None) -> ApiResponse:
        """``POST /ops/control`` with the parsed JSON body: run the intent LOCALLY, once per key.

        Validation answers 400 ``invalid_request``. A stored key is replayed (200,
        ``replayed: true``, the original trace id); a key still executing answers 409
        ``idempotency_in_progress``. Otherwise the response is stored under the key (if
        any) before it is returned with 200 / 409 / 500 for exit code 0 / 2 / other.
        """
        try:
            request = _control_request(body, header_key, header_trace)
            paths = self._paths(request.loop_id)
        except ApiError as exc:
            return exc.response
        key = request.idempotency_key
        if key is None:
            return _status_for(self._run_control(paths, request))
        store = IdempotencyStore(paths, self.instance)
        decision = store.begin(key, intent=request.intent, trace_id=request.trace_id)
        if decision.action == "in_progress":
            busy = error(
                409,
                "idempotency_in_progress",
                f"a request with idempotency key '{key}' is still executing; "
                "retry later to get its result",
                inProgress=True,
            )
            return attrs.evolve(
                busy, headers=(("Retry-After", str(IN_PROGRESS_RETRY_AFTER_SECONDS)),)
            )
        if decision.action == "replay":
            stored = decision.stored or {}
            used_for = _stored_intent(stored)
            if used_for is not None and used_for != request.intent:
                return error(
                    422,
                    "idempotency_key_reused",
                    f"idempotency key '{key}' was already used for intent {used_for}",
                )
            replay = dict(stored)
            replay["replayed"] = True
            if "traceId" not in replay and request.trace_id:
                replay["traceId"] = request.trace_id
            return ApiResponse(200, replay)
        outcome: dict[str, Any] | None = None
        try:
            outcome = self._run_control(paths, request)
        finally:
            store.finish(key, outcome if outcome is not None else _crashed(request))
        return _status_for(outcome)

    def _run_control(self, paths: LoopPaths, request: _ControlRequest) -> dict[str, Any]:
        from ops_manager.engine.control import ControlSettings, run_control

        settings = ControlSettings(
            repo=paths.repo,
            loop_id=paths.loop_id,
            intent=request.intent,
            transport="local",
            idempotency_key=request.idempotency_key,
            trace_id=request.trace_id,
            by=request.by,
            note=request.note,
            timeout_seconds=self.control_defaults.timeout_seconds,
            interval_seconds=self.control_defaults.interval_seconds,
            confirm=not request.no_confirm,
        )
        result: dict[str, Any] | None = None
        stderr: str | None = None
        try:
            outcome = run_control(settings)
        except OpsError as exc:
            exit_code = exc.exit_code or 1
            stderr = f"error: {exc.message}"
        else:
            exit_code = outcome.exit_code
            result = outcome.entry
        trace = request.trace_id
        if not trace and result is not None and isinstance(result.get("traceId"), str):
            trace = result["traceId"]
        return strip_nulls(
            {
                "ok": exit_code == 0,
                "exitCode": exit_code,
                "result": result,
                "stderr": stderr,
                "replayed": False,
                "traceId": trace or None,
            }
        )


@attrs.frozen
class _ControlRequest:
    loop_id: str
    intent: str
    by: str
    note: str | None
    idempotency_key: str | None
    trace_id: str | None
    no_confirm: bool


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad_request(f"{key} must be a string")
    return value


def _bounded(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value == "":
        return None
    if len(value) > MAX_TOKEN_FIELD_CHARS:
        raise _bad_request(f"{name} must be at most {MAX_TOKEN_FIELD_CHARS} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise _bad_request(f"{name} must not contain control characters")
    return value


def _control_request(
    body: Any, header_key: str | None, header_trace: str | None
) -> _ControlRequest:
    if not isinstance(body, dict):
        raise _bad_request("request body must be an object")
    loop_id = _optional_str(body, "loopId")
    if loop_id is None or loop_id.strip() == "":
        raise _bad_request("loopId is required")
    intent = body.get("intent")
    if not isinstance(intent, str) or intent.strip() not in INTENTS:
        raise _bad_request("intent must be cancel, approve, or reject")
    by = _optional_str(body, "by")
    note = _optional_str(body, "note")
    key = _bounded("idempotencyKey", _optional_str(body, "idempotencyKey") or header_key)
    trace = _bounded("traceId", _optional_str(body, "traceId") or header_trace)
    no_confirm = body.get("noConfirm", False)
    if isinstance(no_confirm, (dict, list)):
        raise _bad_request("noConfirm must be a JSON scalar (boolean, number, string or null)")
    return _ControlRequest(
        loop_id=loop_id.strip(),
        intent=intent.strip(),
        by=requester_setting(by, os.environ, "ops-service"),
        note=note if note else None,
        idempotency_key=key,
        trace_id=trace,
        # Q-27 (kept): Python truthiness, so the string "false" means true
        no_confirm=bool(no_confirm),
    )


def _query_int(name: str, value: str | None) -> int:
    if value is None or value == "":
        return 0
    text = value.strip()
    if not _INTEGER.match(text) or len(text) > 18:
        raise _bad_request(f"query parameter '{name}' must be an integer")
    number = int(text)
    if number < 0:
        raise _bad_request(f"query parameter '{name}' must be >= 0")
    return number


def _stored_intent(stored: dict[str, Any]) -> str | None:
    result = stored.get("result")
    intent = result.get("intent") if isinstance(result, dict) else None
    return intent if isinstance(intent, str) else None


def _status_for(response: dict[str, Any]) -> ApiResponse:
    code = response.get("exitCode")
    status = 200 if code == 0 else 409 if code == 2 else 500
    return ApiResponse(status, response)


def _crashed(request: _ControlRequest) -> dict[str, Any]:
    """Stored when executing raised unexpectedly: failed, and never executed again."""
    return strip_nulls(
        {
            "ok": False,
            "exitCode": 1,
            "stderr": "error: internal error while executing the intent (see the service log)",
            "replayed": False,
            "traceId": request.trace_id,
        }
    )
