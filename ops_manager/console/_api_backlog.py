"""The backlog endpoints: pending handoff intents and the operator confirm action."""

from __future__ import annotations

from typing import Any

from ops_manager.console._api_common import (
    JSON,
    MAX_BY_CHARS,
    MAX_INTENT_ID_CHARS,
    MAX_NOTE_CHARS,
    ApiResponse,
    ApiState,
    as_strs,
    error,
    fleet_dir,
    read_object,
)
from ops_manager.console._api_rows import execution_summary, intent_row, is_pending
from ops_manager.console._api_sources import ConfirmRequest, run_handoff_confirm
from ops_manager.errors import OpsError


class BacklogViews(ApiState):
    """``GET /api/backlog`` and ``POST /api/backlog/<intentId>/confirm``."""

    # -- backlog --------------------------------------------------------------------------------
    def _handoff_state(self) -> JSON | None:
        return read_object(fleet_dir(self.repo) / "handoff-state.json")

    def backlog(self) -> ApiResponse:
        """``GET /api/backlog``: pending handoff intents and the last execution."""
        path = fleet_dir(self.repo) / "handoff-state.json"
        state = self._handoff_state()
        if state is None:
            body: JSON = {
                "available": False,
                "handoffStateFile": str(path),
                "message": (
                    "no handoff plan yet: run 'ops-manager fleet-policy' then "
                    "'ops-manager fleet-handoff' for this repo"
                    if not path.exists()
                    else f"invalid handoff state JSON: {path}"
                ),
                "pending": [],
                "recent": [],
            }
            return ApiResponse(200, body)
        intents = [i for i in state.get("intents") or [] if isinstance(i, dict)]
        pending = [intent_row(i) for i in intents if is_pending(i)]
        recent = [intent_row(i) for i in intents if not is_pending(i)]
        body = {
            "available": True,
            "handoffStateFile": str(path),
            "mode": state.get("mode"),
            "fleetId": state.get("fleetId"),
            "traceId": state.get("traceId"),
            "updatedAt": state.get("updatedAt"),
            "summary": state.get("summary"),
            "reasonCodes": as_strs(state.get("reasonCodes")),
            "pending": pending,
            "manualBacklogCount": sum(1 for i in pending if i["manualOnly"]),
            "recent": recent,
            "lastExecution": execution_summary(state.get("execution")),
        }
        return ApiResponse(200, body)

    def confirm(self, intent_id: str, body: Any) -> ApiResponse:
        """``POST /api/backlog/<intentId>/confirm`` with ``{"by": ..., "note": ...}``.

        400 when ``by`` is missing/empty or a field is not a string (or too long), 404 for
        an intent the handoff plan does not have, 409 when it is no longer pending. Then
        the handoff runs (one at a time) and the answer carries the intent's outcome.
        """
        if not intent_id or len(intent_id) > MAX_INTENT_ID_CHARS or not intent_id.isprintable():
            return error(400, "invalid_intent_id", "invalid intent id")
        if not isinstance(body, dict):
            return error(400, "invalid_request", "request body must be a JSON object")
        by = body.get("by")
        note = body.get("note")
        if by is None or (isinstance(by, str) and not by.strip()):
            return error(400, "missing_by", "'by' is required: who confirms this intent")
        if not isinstance(by, str) or len(by) > MAX_BY_CHARS or not by.isprintable():
            return error(
                400,
                "invalid_by",
                f"'by' must be a printable string of at most {MAX_BY_CHARS} characters",
            )
        if note is not None and (
            not isinstance(note, str) or len(note) > MAX_NOTE_CHARS or not note.isprintable()
        ):
            return error(
                400,
                "invalid_note",
                f"'note' must be a printable string of at most {MAX_NOTE_CHARS} characters",
            )
        unknown = sorted(set(body) - {"by", "note"})
        if unknown:
            return error(400, "invalid_request", f"unknown field(s): {', '.join(unknown)}")
        with self._confirm_lock:
            state = self._handoff_state()
            if state is None:
                return error(404, "no_handoff_plan", "no handoff plan (handoff-state.json) yet")
            intent = next(
                (
                    i
                    for i in state.get("intents") or []
                    if isinstance(i, dict) and i.get("intentId") == intent_id
                ),
                None,
            )
            if intent is None:
                return error(404, "intent_not_found", f"unknown intent: {intent_id}")
            if not is_pending(intent):
                return error(
                    409,
                    "intent_not_pending",
                    f"intent {intent_id} is not pending (status {intent.get('status')})",
                )
            request = ConfirmRequest(intent_id=intent_id, by=by.strip(), note=note or None)
            try:
                new_state = run_handoff_confirm(self.repo, request)
            except OpsError as exc:
                return error(422, "handoff_failed", exc.message)
        execution = new_state.get("execution") if isinstance(new_state, dict) else None
        results = (execution or {}).get("results") if isinstance(execution, dict) else None
        outcome = next(
            (r for r in results or [] if isinstance(r, dict) and r.get("intentId") == intent_id),
            None,
        )
        updated = next(
            (
                i
                for i in new_state.get("intents") or []
                if isinstance(i, dict) and i.get("intentId") == intent_id
            ),
            None,
        )
        answer: JSON = {
            "intentId": intent_id,
            "outcome": outcome,
            "intent": intent_row(updated) if updated else None,
            "execution": execution_summary(execution),
            "reasonCodes": as_strs(new_state.get("reasonCodes")),
            "summary": new_state.get("summary"),
        }
        return ApiResponse(200, answer)
