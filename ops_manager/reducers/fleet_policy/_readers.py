"""Lenient readers of a policy state for the handoff / status helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ops_manager.reducers._fleet_json import (
    dig,
    str_list,
)

# --- readers for the handoff / status helpers ---------------------------------------------------


@attrs.frozen
class CandidateAutonomy:
    """A policy-state candidate's autonomy verdict, read leniently (hand-written states)."""

    candidate_id: str | None
    loop_id: str | None
    eligible: bool
    manual_only: bool
    reasons: tuple[str, ...]


def candidate_autonomy(candidate: Mapping[str, Any]) -> CandidateAutonomy:
    """Read ``autonomous.{eligible,manualOnly,reasons}`` with the handoff defaults (§2.5).

    ``eligible`` is ``true`` only when literally ``true``; ``manualOnly`` is the stored boolean
    when there is one, else ``not eligible``; ``reasons`` default to ``[]``.
    """
    autonomous = candidate.get("autonomous")
    eligible = dig(autonomous, "eligible") is True
    manual = dig(autonomous, "manualOnly")
    candidate_id = candidate.get("candidateId")
    loop_id = candidate.get("loopId")
    return CandidateAutonomy(
        candidate_id=candidate_id if isinstance(candidate_id, str) else None,
        loop_id=loop_id if isinstance(loop_id, str) else None,
        eligible=eligible,
        manual_only=manual if isinstance(manual, bool) else not eligible,
        reasons=tuple(str_list(dig(autonomous, "reasons"))),
    )


def unsuppressed_candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``candidates`` whose ``suppressed`` is absent or ``false`` (what handoff maps)."""
    candidates = policy_state.get("candidates")
    return [
        c
        for c in (candidates if isinstance(candidates, list) else [])
        # jq ``(suppressed // false) == false``: ``0`` is not false there (it is in Python)
        if isinstance(c, Mapping) and (c.get("suppressed") is None or c.get("suppressed") is False)
    ]


def autonomous_eligible_candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Unsuppressed candidates the policy marked autonomous-eligible, in policy order."""
    return [c for c in unsuppressed_candidates(policy_state) if candidate_autonomy(c).eligible]


def manual_only_candidates(policy_state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Unsuppressed candidates that need an operator, in policy order."""
    return [c for c in unsuppressed_candidates(policy_state) if candidate_autonomy(c).manual_only]
