"""Confirming a control intent from runtime evidence (``loop.md`` §3.9).

Pure: a snapshot-shaped dict goes in, an :class:`Observation`, a named reason and the
``confirm-intent`` output object come out. No I/O, no clock (``observedAt`` arrives as data).

The decision table (reason when confirmed, else ``None``):

- ``cancel`` -> ``inactive_not_running``: runtime state not active **and** run status is
  not ``running``;
- ``approve`` -> ``completion_observed``: summary ``completion_ok`` **or** status
  ``complete`` **or** last event ``loop_complete``;
- ``reject`` -> ``rejection_observed``: approval status ``rejected`` **or** last event
  ``approval_rejected`` **or** last event ``approval_decision`` while ``approval.json``
  does not say ``approved``.

Notes against real runtime trees (``runtime-observed.md``):

- a run that died leaves ``state.json`` at ``active: true``: cancel is *not* confirmed until
  the state changes (real ``cancel`` deletes ``state.json``, which confirms it, Q-23);
- real ``approve`` only records the decision (``approval_decision``); completion appears on
  the next ``run``, so approve usually stays unconfirmed -> ``ambiguous`` (Q-22, kept);
- ``approval_decision`` is written for approvals too, so it is rejection evidence only
  while ``approval.json`` does not say ``approved`` (upstream accepted it unconditionally);
- nothing here keys on ``run_id``: consuming an approval changes it mid-stream.
"""

from __future__ import annotations

from typing import Any

import attrs

from ops_manager.model._json import alt, nonempty_str

CONFIRM_REASONS = ("inactive_not_running", "completion_observed", "rejection_observed", "timeout")

#: the ``confirm-intent`` output object's keys, in contract order
OUTCOME_KEYS = (
    "intent",
    "confirmed",
    "reason",
    "attempts",
    "timeoutSeconds",
    "observedStatus",
    "observedLastEvent",
    "observedApprovalStatus",
    "observedActive",
    "observedAt",
)


def _get(obj: Any, *keys: str) -> Any:
    """jq ``.a.b.c`` that yields ``None`` instead of failing on a non-object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _str_or(value: Any, default: str) -> str:
    """jq ``value // default`` restricted to strings (any other type is "no evidence")."""
    value = alt(value)
    return value if isinstance(value, str) else default


@attrs.frozen
class Observation:
    """What one snapshot says about the runtime, as confirm-intent reads it.

    Defaults are the values before any snapshot succeeded (``unknown``, ``""``, ``""``,
    ``false``, ``false``).
    """

    observed_status: str = "unknown"
    observed_last_event: str = ""
    observed_approval_status: str = ""
    observed_active: bool = False
    completion_ok: bool = False

    @classmethod
    def from_snapshot(cls, snapshot: Any) -> Observation:
        """Read a ``loop_run_snapshot``-shaped value with jq ``//`` semantics (§3.9).

        ``run.status // "unknown"``, ``health.lastEventName // ""``,
        ``runtime.approval.status // ""``, ``runtime.superloopState.active // false``,
        ``run.summary.completion_ok // false``. Booleans count only when they are ``true``
        (the predicates compare with ``== true``); strings only when they are strings.
        Never raises, whatever the input.
        """
        return cls(
            observed_status=_str_or(_get(snapshot, "run", "status"), "unknown"),
            observed_last_event=_str_or(_get(snapshot, "health", "lastEventName"), ""),
            observed_approval_status=_str_or(_get(snapshot, "runtime", "approval", "status"), ""),
            observed_active=_get(snapshot, "runtime", "superloopState", "active") is True,
            completion_ok=_get(snapshot, "run", "summary", "completion_ok") is True,
        )


def confirm_predicate(intent: str, obs: Observation) -> str | None:
    """The named reason ``obs`` confirms ``intent`` (see the module table), else ``None``.

    An unknown intent is never confirmed.
    """
    if intent == "cancel":
        if not obs.observed_active and obs.observed_status != "running":
            return "inactive_not_running"
        return None
    if intent == "approve":
        if (
            obs.completion_ok
            or obs.observed_status == "complete"
            or obs.observed_last_event == "loop_complete"
        ):
            return "completion_observed"
        return None
    if intent == "reject":
        if (
            obs.observed_approval_status == "rejected"
            or obs.observed_last_event == "approval_rejected"
            or (
                obs.observed_last_event == "approval_decision"
                and obs.observed_approval_status != "approved"
            )
        ):
            return "rejection_observed"
        return None
    return None


def confirm_outcome(
    *,
    intent: str,
    reason: str | None,
    attempts: int,
    timeout_seconds: int,
    obs: Observation,
    observed_at: str,
) -> dict[str, Any]:
    """The ``confirm-intent`` output object, keys in contract order (§3.9).

    ``confirmed`` is ``reason is not None``; an unconfirmed outcome has reason ``timeout``.
    ``observedLastEvent`` / ``observedApprovalStatus`` print ``""`` as ``null``.
    """
    return {
        "intent": intent,
        "confirmed": reason is not None,
        "reason": reason if reason is not None else "timeout",
        "attempts": attempts,
        "timeoutSeconds": timeout_seconds,
        "observedStatus": obs.observed_status,
        "observedLastEvent": nonempty_str(obs.observed_last_event),
        "observedApprovalStatus": nonempty_str(obs.observed_approval_status),
        "observedActive": obs.observed_active,
        "observedAt": observed_at,
    }
