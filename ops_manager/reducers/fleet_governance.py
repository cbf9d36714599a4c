"""Governance of guarded autonomy: authority context, review posture, audit events.

Pure (``fleet.md`` §2.3 ``autonomous.governance``, §2.4 posture, §3.10 audit events). ``now``
arrives as epoch seconds; nothing here reads a clock, a file or the environment.

Posture decision table (first matching row wins; only for a policy state that exists):

======================================  ==================================================
posture                                 when
======================================  ==================================================
``not_required``                        policy mode is not ``guarded_auto``
``authority_missing``                   authority context absent (actor, approvalRef,
                                        rationale, changedAt, reviewBy not all present)
``review_deadline_missing``             no ``reviewBy``
``review_expired``                      ``reviewBy <= now`` (or unparseable)
``review_due_soon``                     ``reviewBy - now <= 604800`` (7 days)
``active``                              otherwise
======================================  ==================================================

Governance reason codes (guarded_auto only, sorted): ``autonomous_governance_authority_missing``,
``autonomous_governance_review_deadline_missing``, ``autonomous_governance_review_expired``,
``autonomous_governance_review_due_soon``. Any of them makes ``blocksAutonomous`` true.

Audit events (one at most per policy run; the stream is append-only, never rewritten):

===================================  ==================================================
eventType                            when (prev = policy state before this run)
===================================  ==================================================
``autonomous_policy_initialized``    no previous policy state (also in advisory mode)
``autonomous_mode_toggled``          the mode differs
``autonomous_policy_mutated``        controls or governance differ (deep, key-order-free)
(none)                               nothing changed: re-runs are idempotent
===================================  ==================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ops_manager.model._json import strip_nulls
from ops_manager.model._time import parse_ts
from ops_manager.reducers._fleet_json import dig, json_equal, unique_sorted

GUARDED_AUTO = "guarded_auto"
ADVISORY = "advisory"
GOVERNANCE_FIELDS = ("actor", "approvalRef", "rationale", "changedAt", "reviewBy")
REVIEW_DUE_SOON_SECONDS = 604800

POSTURE_NOT_REQUIRED = "not_required"
POSTURE_AUTHORITY_MISSING = "authority_missing"
POSTURE_DEADLINE_MISSING = "review_deadline_missing"
POSTURE_EXPIRED = "review_expired"
POSTURE_DUE_SOON = "review_due_soon"
POSTURE_ACTIVE = "active"

REASON_AUTHORITY_MISSING = "autonomous_governance_authority_missing"
REASON_DEADLINE_MISSING = "autonomous_governance_review_deadline_missing"
REASON_EXPIRED = "autonomous_governance_review_expired"
REASON_DUE_SOON = "autonomous_governance_review_due_soon"

EVENT_INITIALIZED = "autonomous_policy_initialized"
EVENT_MODE_TOGGLED = "autonomous_mode_toggled"
EVENT_MUTATED = "autonomous_policy_mutated"
AUDIT_CATEGORY = "fleet_policy_governance"


# --- the policy-state governance block -----------------------------------------------------


def authority_fields_present(governance: Any) -> bool:
    """All five authority fields are present (non-null)."""
    return isinstance(governance, Mapping) and all(
        governance.get(key) is not None for key in GOVERNANCE_FIELDS
    )


def policy_governance_block(governance: Any, mode: str) -> dict[str, Any]:
    """``policy-state.autonomous.governance`` from the registry's governance object.

    ``authorityContextPresent`` is true outside ``guarded_auto`` (no authority is needed) and,
    in ``guarded_auto``, when all five authority fields are present.
    """
    source = governance if isinstance(governance, Mapping) else {}
    block: dict[str, Any] = {key: source.get(key) for key in GOVERNANCE_FIELDS}
    block["reviewWindowDays"] = source.get("reviewWindowDays")
    block["requiredForGuardedAuto"] = True
    block["authorityContextPresent"] = mode != GUARDED_AUTO or authority_fields_present(source)
    return strip_nulls(block)


# --- posture (fleet status view) -------------------------------------------------------------


@attrs.frozen
class GovernancePosture:
    """The governance posture of a policy state at ``now``."""

    mode: str
    governance: Mapping[str, Any]
    authority_context_present: bool
    posture: str
    reason_codes: tuple[str, ...]

    @property
    def blocks_autonomous(self) -> bool:
        """``guarded_auto`` with any governance reason (``review_due_soon`` alone blocks)."""
        return self.mode == GUARDED_AUTO and bool(self.reason_codes)

    def status_view(self) -> dict[str, Any]:
        """``fleet-status``'s ``autonomous.governance`` object (drop-nulls, key order)."""
        g = self.governance
        return strip_nulls(
            {
                "changedBy": g.get("actor"),
                "changedAt": g.get("changedAt"),
                "approvalRef": g.get("approvalRef"),
                "why": g.get("rationale"),
                "until": g.get("reviewBy"),
                "reviewWindowDays": g.get("reviewWindowDays"),
                "authorityContextPresent": self.authority_context_present,
                "posture": self.posture,
                "reasonCodes": list(self.reason_codes),
                "blocksAutonomous": self.blocks_autonomous,
            }
        )


def governance_posture(policy_state: Any, now: int) -> GovernancePosture | None:
    """Posture of ``policy_state`` (``None`` when there is no policy state).

    ``now`` is epoch seconds supplied by the caller. A ``reviewBy`` that does not parse counts
    as expired (fail closed), like upstream's comparison of a null epoch.
    """
    if not isinstance(policy_state, Mapping):
        return None
    mode = policy_state.get("mode")
    mode = mode if isinstance(mode, str) else ADVISORY
    governance = dig(policy_state, "autonomous", "governance")
    governance = governance if isinstance(governance, Mapping) else {}
    if "authorityContextPresent" in governance:
        authority = governance.get("authorityContextPresent") is True
    else:
        authority = authority_fields_present(governance)
    review_by = governance.get("reviewBy")
    deadline_missing = review_by is None
    review_epoch = parse_ts(review_by)
    expired = not deadline_missing and (review_epoch is None or review_epoch <= now)
    due_soon = (
        review_epoch is not None
        and review_epoch > now
        and review_epoch - now <= REVIEW_DUE_SOON_SECONDS
    )
    reasons: list[str] = []
    if mode == GUARDED_AUTO:
        if not authority:
            reasons.append(REASON_AUTHORITY_MISSING)
        if deadline_missing:
            reasons.append(REASON_DEADLINE_MISSING)
        if expired:
            reasons.append(REASON_EXPIRED)
        if due_soon and not expired:
            reasons.append(REASON_DUE_SOON)
    if mode != GUARDED_AUTO:
        posture = POSTURE_NOT_REQUIRED
    elif not authority:
        posture = POSTURE_AUTHORITY_MISSING
    elif deadline_missing:
        posture = POSTURE_DEADLINE_MISSING
    elif expired:
        posture = POSTURE_EXPIRED
    elif due_soon:
        posture = POSTURE_DUE_SOON
    else:
        posture = POSTURE_ACTIVE
    return GovernancePosture(
        mode=mode,
        governance=governance,
        authority_context_present=authority,
        posture=posture,
        reason_codes=tuple(unique_sorted(reasons)),
    )


# --- audit events ----------------------------------------------------------------------------


@attrs.frozen
class GovernanceSnapshot:
    """What the audit stream compares between runs: mode, controls, governance."""

    mode: str
    controls: Any
    governance: Any

    @classmethod
    def of_state(cls, policy_state: Any) -> GovernanceSnapshot | None:
        """Snapshot of a policy-state document (``None`` when there is none)."""
        if not isinstance(policy_state, Mapping):
            return None
        mode = policy_state.get("mode")
        controls = dig(policy_state, "autonomous", "controls")
        governance = dig(policy_state, "autonomous", "governance")
        return cls(
            mode=mode if isinstance(mode, str) else ADVISORY,
            controls={} if controls is None else controls,
            governance={} if governance is None else governance,
        )

    @classmethod
    def of_audit_row(cls, row: Any) -> GovernanceSnapshot | None:
        """The post-change snapshot an audit row recorded."""
        if not isinstance(row, Mapping) or row.get("category") != AUDIT_CATEGORY:
            return None
        mode = row.get("mode")
        return cls(
            mode=mode if isinstance(mode, str) else ADVISORY,
            controls=row.get("controls", {}),
            governance=row.get("governance", {}),
        )

    @classmethod
    def previous_of_audit_row(cls, row: Any) -> GovernanceSnapshot | None:
        """The pre-change snapshot an audit row recorded (``None`` for initialisation)."""
        if not isinstance(row, Mapping) or "previousMode" not in row:
            return None
        mode = row.get("previousMode")
        return cls(
            mode=mode if isinstance(mode, str) else ADVISORY,
            controls=row.get("previousControls", {}),
            governance=row.get("previousGovernance", {}),
        )

    def same_as(self, other: GovernanceSnapshot | None) -> bool:
        """Deep equality of all three parts."""
        return (
            other is not None
            and self.mode == other.mode
            and json_equal(self.controls, other.controls)
            and json_equal(self.governance, other.governance)
        )


@attrs.frozen
class AuditDecision:
    """Whether this policy run appends a governance audit row, and why."""

    event_type: str | None
    #: ``no_previous_policy_state`` | ``mode_changed`` | ``controls_changed`` |
    #: ``governance_changed`` | ``unchanged`` | ``already_recorded``
    reason: str


def decide_audit_event(
    previous: GovernanceSnapshot | None,
    current: GovernanceSnapshot,
    last_audit_row: Any = None,
) -> AuditDecision:
    """§3.10, plus crash recovery against the last row of the audit stream.

    Records are appended before the policy state is saved, so a crash in between leaves the
    event in the stream while the state still shows the old posture. When the last audit row
    already records exactly this transition (same type, same before and after), it is not
    appended twice. Initialisation is never suppressed: deleting ``policy-state.json``
    re-initialises, as upstream (fleet.md §6.25).
    """
    if previous is None:
        return AuditDecision(EVENT_INITIALIZED, "no_previous_policy_state")
    if previous.mode != current.mode:
        decision = AuditDecision(EVENT_MODE_TOGGLED, "mode_changed")
    elif not json_equal(previous.controls, current.controls):
        decision = AuditDecision(EVENT_MUTATED, "controls_changed")
    elif not json_equal(previous.governance, current.governance):
        decision = AuditDecision(EVENT_MUTATED, "governance_changed")
    else:
        return AuditDecision(None, "unchanged")
    if (
        isinstance(last_audit_row, Mapping)
        and last_audit_row.get("eventType") == decision.event_type
        and current.same_as(GovernanceSnapshot.of_audit_row(last_audit_row))
        and previous.same_as(GovernanceSnapshot.previous_of_audit_row(last_audit_row))
    ):
        return AuditDecision(None, "already_recorded")
    return decision


def audit_row(
    event_type: str,
    *,
    timestamp: str,
    fleet_id: str | None,
    trace_id: str | None,
    previous: GovernanceSnapshot | None,
    current: GovernanceSnapshot,
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``telemetry/policy-governance.jsonl`` row (drop-nulls at top level, key order)."""
    prev = previous
    return strip_nulls(
        {
            "timestamp": timestamp,
            "category": AUDIT_CATEGORY,
            "eventType": event_type,
            "fleetId": fleet_id,
            "traceId": trace_id,
            "mode": current.mode,
            "previousMode": prev.mode if prev else None,
            "governance": current.governance,
            "previousGovernance": prev.governance if prev else None,
            "controls": current.controls,
            "previousControls": prev.controls if prev else None,
            "source": dict(source),
        }
    )
