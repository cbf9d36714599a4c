"""Governance reducer: authority block, review posture (relative to now), audit event decisions.

Every deadline here is computed from ``now`` (DECISIONS fleet 6.17): nothing in this file
breaks on a calendar date.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts
from ops_manager.reducers.fleet_governance import (
    EVENT_INITIALIZED,
    EVENT_MODE_TOGGLED,
    EVENT_MUTATED,
    REVIEW_DUE_SOON_SECONDS,
    GovernanceSnapshot,
    audit_row,
    decide_audit_event,
    governance_posture,
    policy_governance_block,
)

DAY = 86400
NOW = int(time.time())


def _governance(now: int, review_in: int | None, **overrides: Any) -> dict[str, Any]:
    gov: dict[str, Any] = {
        "actor": "ops-user",
        "approvalRef": "CAB-123",
        "rationale": "guarded rollout expansion",
        "changedAt": format_ts(now - 30 * DAY),
    }
    if review_in is not None:
        gov["reviewBy"] = format_ts(now + review_in)
    gov.update(overrides)
    return gov


def _state(mode: str, governance: dict[str, Any]) -> dict[str, Any]:
    return {"mode": mode, "autonomous": {"governance": governance}}


# --- policy-state governance block ---------------------------------------------------------------


def test_block_advisory_without_governance() -> None:
    assert policy_governance_block({}, "advisory") == {
        "requiredForGuardedAuto": True,
        "authorityContextPresent": True,
    }


def test_block_guarded_auto_complete_keeps_key_order() -> None:
    gov = {
        "actor": "ops-user",
        "approvalRef": "CAB-123",
        "rationale": "dogfood guarded auto",
        "changedAt": "2026-02-23T00:00:00Z",
        "reviewBy": "2026-12-31T00:00:00Z",
        "reviewWindowDays": 311,
    }
    block = policy_governance_block(gov, "guarded_auto")
    # Appendix A.3 governance object
    assert list(block) == [*gov, "requiredForGuardedAuto", "authorityContextPresent"]
    assert block["authorityContextPresent"] is True


def test_block_guarded_auto_missing_field_has_no_authority() -> None:
    block = policy_governance_block({"actor": "a"}, "guarded_auto")
    assert block == {"actor": "a", "requiredForGuardedAuto": True, "authorityContextPresent": False}


# --- posture decision table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "review_in", "overrides", "posture", "reasons"),
    [
        ("advisory", None, {}, "not_required", []),
        ("advisory", -DAY, {}, "not_required", []),  # advisory is never blocked
        ("guarded_auto", 30 * DAY, {}, "active", []),
        (
            "guarded_auto",
            REVIEW_DUE_SOON_SECONDS,
            {},
            "review_due_soon",
            ["autonomous_governance_review_due_soon"],
        ),
        ("guarded_auto", REVIEW_DUE_SOON_SECONDS + 1, {}, "active", []),
        ("guarded_auto", 0, {}, "review_expired", ["autonomous_governance_review_expired"]),
        ("guarded_auto", -DAY, {}, "review_expired", ["autonomous_governance_review_expired"]),
        (
            "guarded_auto",
            None,
            {},
            "authority_missing",  # reviewBy is one of the five authority fields
            [
                "autonomous_governance_authority_missing",
                "autonomous_governance_review_deadline_missing",
            ],
        ),
        (
            "guarded_auto",
            30 * DAY,
            {"authorityContextPresent": False},
            "authority_missing",
            ["autonomous_governance_authority_missing"],
        ),
        (
            "guarded_auto",
            None,
            {"authorityContextPresent": True},
            "review_deadline_missing",
            ["autonomous_governance_review_deadline_missing"],
        ),
        (
            "guarded_auto",
            None,
            {"authorityContextPresent": True, "reviewBy": "someday"},
            "review_expired",  # an unparseable deadline fails closed
            ["autonomous_governance_review_expired"],
        ),
    ],
)
def test_posture_table(
    mode: str, review_in: int | None, overrides: dict[str, Any], posture: str, reasons: list[str]
) -> None:
    result = governance_posture(_state(mode, _governance(NOW, review_in, **overrides)), NOW)
    assert result is not None
    assert result.posture == posture
    assert list(result.reason_codes) == reasons
    assert result.blocks_autonomous is (mode == "guarded_auto" and bool(reasons))
    view = result.status_view()
    assert view["posture"] == posture and view["blocksAutonomous"] is result.blocks_autonomous


def test_posture_of_no_policy_state_is_none() -> None:
    assert governance_posture(None, NOW) is None


def test_status_view_renames_and_drops_nulls() -> None:
    gov = _governance(NOW, 30 * DAY)
    view = governance_posture(_state("guarded_auto", gov), NOW)
    assert view is not None
    assert view.status_view() == {
        "changedBy": "ops-user",
        "changedAt": gov["changedAt"],
        "approvalRef": "CAB-123",
        "why": "guarded rollout expansion",
        "until": gov["reviewBy"],
        "authorityContextPresent": True,
        "posture": "active",
        "reasonCodes": [],
        "blocksAutonomous": False,
    }


@given(
    now=st.integers(min_value=10 * 365 * DAY, max_value=4_000_000_000),
    offset=st.integers(min_value=-400 * DAY, max_value=400 * DAY),
)
def test_posture_depends_only_on_deadline_relative_to_now(now: int, offset: int) -> None:
    """Shifting ``now`` and ``reviewBy`` together never changes the posture."""
    here = governance_posture(_state("guarded_auto", _governance(now, offset)), now)
    later = now + 3 * 365 * DAY
    there = governance_posture(_state("guarded_auto", _governance(later, offset)), later)
    assert here is not None and there is not None
    assert (here.posture, here.reason_codes) == (there.posture, there.reason_codes)
    expected = (
        "review_expired"
        if offset <= 0
        else "review_due_soon"
        if offset <= REVIEW_DUE_SOON_SECONDS
        else "active"
    )
    assert here.posture == expected


# --- audit decisions -----------------------------------------------------------------------------

CONTROLS = {"enabled": True, "safety": {"maxActionsPerRun": 1, "killSwitch": False}}
GOV = {"actor": "ops-user", "approvalRef": "CAB-301"}


def _snap(mode: str = "guarded_auto", controls: Any = None, gov: Any = None) -> GovernanceSnapshot:
    return GovernanceSnapshot(
        mode=mode,
        controls=CONTROLS if controls is None else controls,
        governance=GOV if gov is None else gov,
    )


@pytest.mark.parametrize(
    ("previous", "current", "event", "reason"),
    [
        (None, _snap(), EVENT_INITIALIZED, "no_previous_policy_state"),
        (None, _snap("advisory"), EVENT_INITIALIZED, "no_previous_policy_state"),
        (_snap("guarded_auto"), _snap("advisory"), EVENT_MODE_TOGGLED, "mode_changed"),
        (
            _snap(),
            _snap(
                controls={"enabled": True, "safety": {"maxActionsPerRun": 2, "killSwitch": False}}
            ),
            EVENT_MUTATED,
            "controls_changed",
        ),
        (
            _snap(),
            _snap(gov={"actor": "ops-user", "approvalRef": "CAB-302"}),
            EVENT_MUTATED,
            "governance_changed",
        ),
        (_snap(), _snap(), None, "unchanged"),
        # deep equality ignores key order
        (
            _snap(),
            _snap(
                controls={"safety": {"killSwitch": False, "maxActionsPerRun": 1}, "enabled": True}
            ),
            None,
            "unchanged",
        ),
        # ... but true is not 1
        (
            _snap(controls={"enabled": True, "safety": {"maxActionsPerRun": 1, "killSwitch": 1}}),
            _snap(
                controls={"enabled": True, "safety": {"maxActionsPerRun": 1, "killSwitch": True}}
            ),
            EVENT_MUTATED,
            "controls_changed",
        ),
    ],
)
def test_audit_decision_table(
    previous: GovernanceSnapshot | None, current: GovernanceSnapshot, event: str | None, reason: str
) -> None:
    decision = decide_audit_event(previous, current)
    assert (decision.event_type, decision.reason) == (event, reason)


def _row(previous: GovernanceSnapshot | None, current: GovernanceSnapshot, event: str) -> Any:
    return audit_row(
        event,
        timestamp=format_ts(NOW),
        fleet_id="fleet",
        trace_id="t1",
        previous=previous,
        current=current,
        source={"registryFile": "r", "policyStateFile": "p", "governanceAuditFile": "g"},
    )


def test_audit_recorded_but_state_not_saved_is_not_repeated() -> None:
    before, after = _snap(), _snap(gov={"actor": "ops-user", "approvalRef": "CAB-302"})
    last = _row(before, after, EVENT_MUTATED)
    decision = decide_audit_event(before, after, last)
    assert (decision.event_type, decision.reason) == (None, "already_recorded")
    # a different transition is still recorded
    other = _snap(gov={"actor": "ops-user", "approvalRef": "CAB-303"})
    assert decide_audit_event(before, other, last).event_type == EVENT_MUTATED


def test_initialisation_is_never_suppressed() -> None:
    current = _snap()
    last = _row(None, current, EVENT_INITIALIZED)
    assert decide_audit_event(None, current, last).event_type == EVENT_INITIALIZED


def test_audit_row_shape() -> None:
    init = _row(None, _snap(), EVENT_INITIALIZED)
    assert list(init) == [
        "timestamp",
        "category",
        "eventType",
        "fleetId",
        "traceId",
        "mode",
        "governance",
        "controls",
        "source",
    ]
    mutated = _row(_snap(), _snap("advisory"), EVENT_MODE_TOGGLED)
    assert list(mutated) == [
        "timestamp",
        "category",
        "eventType",
        "fleetId",
        "traceId",
        "mode",
        "previousMode",
        "governance",
        "previousGovernance",
        "controls",
        "previousControls",
        "source",
    ]
    assert mutated["category"] == "fleet_policy_governance"
    assert (mutated["mode"], mutated["previousMode"]) == ("advisory", "guarded_auto")


def test_snapshot_of_state_defaults() -> None:
    assert GovernanceSnapshot.of_state(None) is None
    snap = GovernanceSnapshot.of_state({"autonomous": {}})
    assert snap == GovernanceSnapshot(mode="advisory", controls={}, governance={})
