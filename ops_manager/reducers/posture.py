"""Run posture: does the runtime still owe us events? Pure (no I/O, no clock).

Staleness (ingest lag, heartbeat lag) only means something while a run is expected to write.
A run that FINISHED (its log ends in a terminal event and no run process is registered)
writes nothing more; a loop AWAITING APPROVAL waits on a person, not on the runtime. Neither
is stale (issue 12 point 4, docs/compatibility.md). A run that died silently, on the other
hand, looks exactly like a live one to the lifecycle projection (``state.json`` stays
``active: true``, the log ends mid-iteration; runtime-observed.md #2): only staleness reveals
it, so it stays flagged, and :func:`presumed_dead` names it with the evidence.

The inputs are the facts reconcile records in ``state.json``: the lifecycle ``projection``
(last event, ``active``, pending approval) and ``evidence.runtime`` (what the runtime's own files
said: ``active-run.json`` present or missing, the approval's ``requested_at``).
"""

from __future__ import annotations

from typing import Any

import attrs

from ops_manager.model._json import nonempty_str, strip_nulls

#: last events after which a run writes nothing more (runtime-observed.md: ``role_timeout``
#: is the last line of its run; no-progress and stuck stops end in ``loop_stop``)
TERMINAL_EVENTS: frozenset[str] = frozenset(
    {"loop_complete", "loop_stop", "no_progress_stop", "rate_limit_stop", "role_timeout"}
)
#: last events of a run that stopped to wait for an approval decision
APPROVAL_WAIT_EVENTS: frozenset[str] = frozenset({"approval_requested", "approval_wait"})

FINISHED = "finished"
AWAITING_APPROVAL = "awaiting_approval"
LIVE = "live"
PRESUMED_DEAD = "presumed_dead"

#: ``evidence.runtime.activeRunFile`` values
ACTIVE_RUN_PRESENT = "present"
ACTIVE_RUN_MISSING = "missing"


def _get(obj: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _truthy(value: object) -> bool:
    # the runtime writes real booleans in state.json, but string booleans elsewhere
    # ("true"); accept both so a hand-edited or future file does not flip the verdict
    return value is True or value == "true"


@attrs.frozen
class Posture:
    """What the run is doing, as far as the manager can tell."""

    #: finished | awaiting_approval | live
    kind: str
    #: why (the terminal event name, ``approval_pending``, ...); ``None`` for live
    reason: str | None = None
    #: since when (the terminal event's time, the approval's ``requested_at``)
    since: str | None = None

    @property
    def expects_events(self) -> bool:
        """Whether silence from the runtime (ingest / heartbeat lag) means something."""
        return self.kind == LIVE


def run_evidence(*, active_run: object, active_run_known: bool, approval: object) -> dict[str, Any]:
    """The ``evidence.runtime`` block reconcile adds to ``state.json`` (ours): the runtime
    facts the posture needs that the lifecycle projection does not keep."""
    return strip_nulls(
        {
            "activeRunFile": (ACTIVE_RUN_PRESENT if active_run is not None else ACTIVE_RUN_MISSING)
            if active_run_known
            else None,
            "approvalStatus": nonempty_str(_get(approval, "status")),
            "approvalRequestedAt": nonempty_str(_get(approval, "requested_at")),
        }
    )


def run_posture(state: object) -> Posture:
    """The posture of the run a ``state.json`` object describes.

    First match wins: a pending approval (``approval.json`` or an approval-wait last event)
    -> ``awaiting_approval`` since the request; a terminal last event while no run process
    is registered (``active-run.json`` not present) -> ``finished`` at that event; else
    ``live``.
    """
    projection = _get(state, "projection")
    evidence = _get(state, "evidence", "runtime")
    last_name = nonempty_str(_get(projection, "lastEventName"))
    last_at = nonempty_str(_get(projection, "lastEventAt"))
    pending = _get(projection, "hasPendingApproval") is True or (
        _get(evidence, "approvalStatus") == "pending"
    )
    if pending or last_name in APPROVAL_WAIT_EVENTS:
        since = nonempty_str(_get(evidence, "approvalRequestedAt")) or last_at
        return Posture(AWAITING_APPROVAL, "approval_pending", since)
    active_run = _get(evidence, "activeRunFile")
    if last_name in TERMINAL_EVENTS and active_run != ACTIVE_RUN_PRESENT:
        return Posture(FINISHED, last_name, last_at)
    return Posture(LIVE)


def presumed_dead(
    state: object, posture: Posture, ingest_lag: int | None, degraded_lag: int
) -> dict[str, Any] | None:
    """The evidence that a live-looking run died silently, or ``None``.

    All of: the run is ``live`` by its posture (no terminal event, no approval wait), the
    runtime's ``state.json`` still says ``active``, ``active-run.json`` is gone, and nothing
    was written for at least the degraded ingest-lag threshold.
    """
    if posture.kind != LIVE or ingest_lag is None or ingest_lag < degraded_lag:
        return None
    projection = _get(state, "projection")
    if not _truthy(_get(projection, "active")):
        return None
    if _get(state, "evidence", "runtime", "activeRunFile") != ACTIVE_RUN_MISSING:
        return None
    return {
        "reason": "no_terminal_event_and_no_active_run",
        "lastEventName": nonempty_str(_get(projection, "lastEventName")),
        "lastEventAt": nonempty_str(_get(projection, "lastEventAt")),
        "ingestLagSeconds": ingest_lag,
        "stateActive": True,
        "activeRunFile": ACTIVE_RUN_MISSING,
    }


def posture_json(posture: Posture, dead: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``posture`` block of ``health.json`` (ours; null members stripped); ``None`` for
    a plain live run, so the contract's health object is unchanged where nothing is new."""
    if dead is not None:
        return {"kind": PRESUMED_DEAD, "reason": dead["reason"], "presumedDead": dead}
    if posture.kind == LIVE:
        return None
    return strip_nulls({"kind": posture.kind, "reason": posture.reason, "since": posture.since})
