"""Suppression, the policy-history index, dedupe windows and the autonomous cooldown (§3.4-§3.5)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ops_manager.model._time import format_ts, parse_ts
from ops_manager.reducers._fleet_json import (
    dig,
    str_list,
)
from ops_manager.reducers.fleet_policy._taxonomy import (
    COOLDOWN_SUPPRESSION,
    REGISTRY_SUPPRESSION,
    SCOPE_COOLDOWN,
    SCOPE_GLOBAL,
    SCOPE_LOOP,
    SOURCE_COOLDOWN,
    SOURCE_GLOBAL,
    SOURCE_LOOP,
)

# --- 2. suppression -------------------------------------------------------------------------


@attrs.frozen
class Suppression:
    """Why a candidate is suppressed (scope, reason code, the setting responsible)."""

    scope: str
    reason: str
    source: str


def registry_suppression(loop_id: str, category: str, suppressions: Any) -> Suppression | None:
    """§3.4: the loop's own list wins over ``*``; ``None`` when neither lists the category."""
    table = suppressions if isinstance(suppressions, Mapping) else {}
    if category in str_list(table.get(loop_id)):
        return Suppression(SCOPE_LOOP, REGISTRY_SUPPRESSION, SOURCE_LOOP)
    if category in str_list(table.get("*")):
        return Suppression(SCOPE_GLOBAL, REGISTRY_SUPPRESSION, SOURCE_GLOBAL)
    return None


COOLDOWN_SUPPRESSION_DECISION = Suppression(SCOPE_COOLDOWN, COOLDOWN_SUPPRESSION, SOURCE_COOLDOWN)


# --- 3. dedupe / history ----------------------------------------------------------------------


@attrs.frozen
class HistoryIndex:
    """What the policy history says per candidate: last unsuppressed / last eligible epoch.

    A fold of ``policy-history.jsonl``; the shell keeps it (with the stream position it
    reflects) so each run only folds the rows appended since the previous one.
    """

    last_unsuppressed: Mapping[str, int] = attrs.field(factory=dict)
    last_eligible: Mapping[str, int] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"lastUnsuppressed": {id: epoch}, "lastEligible": {id: epoch}}``."""
        return {
            "lastUnsuppressed": dict(self.last_unsuppressed),
            "lastEligible": dict(self.last_eligible),
        }

    @classmethod
    def from_json(cls, value: Any) -> HistoryIndex | None:
        """Read :meth:`to_json` output back; ``None`` if it is malformed."""
        maps = []
        for key in ("lastUnsuppressed", "lastEligible"):
            table = dig(value, key)
            if not isinstance(table, Mapping) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                for k, v in table.items()
            ):
                return None
            maps.append(dict(table))
        return cls(last_unsuppressed=maps[0], last_eligible=maps[1])


def index_history(
    rows: Iterable[Mapping[str, Any]], start: HistoryIndex | None = None
) -> HistoryIndex:
    """Fold policy-history rows into a :class:`HistoryIndex` (one pass, O(candidates) memory).

    ``start`` is the index of the rows before these (incremental fold). Rows lacking
    ``suppressed`` count as unsuppressed; rows whose ``timestamp`` does not parse are skipped
    (fleet.md §6.4).
    """
    unsuppressed: dict[str, int] = dict(start.last_unsuppressed) if start else {}
    eligible: dict[str, int] = dict(start.last_eligible) if start else {}
    for row in rows:
        candidate_id = row.get("candidateId")
        if not isinstance(candidate_id, str):
            continue
        epoch = parse_ts(row.get("timestamp"))
        if epoch is None:
            continue
        # jq ``(suppressed // false) == false``: only null/absent and false; ``0`` is not
        # false in jq (``0 in (None, False)`` is true in Python, hence ``is``)
        suppressed = row.get("suppressed")
        if (suppressed is None or suppressed is False) and epoch > unsuppressed.get(
            candidate_id, -1
        ):
            unsuppressed[candidate_id] = epoch
        if row.get("autonomousEligible") is True and epoch > eligible.get(candidate_id, -1):
            eligible[candidate_id] = epoch
    return HistoryIndex(last_unsuppressed=unsuppressed, last_eligible=eligible)


@attrs.frozen
class DedupeWindow:
    """The advisory dedupe window for one candidate (the candidate's ``cooldown`` object)."""

    window_seconds: int
    active: bool = False
    remaining_seconds: int = 0
    last_unsuppressed_at: int | None = None

    @property
    def enabled(self) -> bool:
        """A window of 0 disables dedupe."""
        return self.window_seconds > 0

    def to_json(self) -> dict[str, Any]:
        """Contract key order."""
        last = self.last_unsuppressed_at
        return {
            "enabled": self.enabled,
            "windowSeconds": self.window_seconds,
            "active": self.active,
            "remainingSeconds": self.remaining_seconds,
            "lastUnsuppressedAt": None if last is None else format_ts(last),
        }


def dedupe_window(candidate_id: str, history: HistoryIndex, now: int, window: int) -> DedupeWindow:
    """§3.5: active while ``now - lastUnsuppressed < window``."""
    if window <= 0:
        return DedupeWindow(window_seconds=window)
    last = history.last_unsuppressed.get(candidate_id)
    if last is None:
        return DedupeWindow(window_seconds=window)
    age = now - last
    active = age < window
    return DedupeWindow(
        window_seconds=window,
        active=active,
        remaining_seconds=window - age if active else 0,
        last_unsuppressed_at=last,
    )


@attrs.frozen
class AutonomousCooldown:
    """Per-candidate autonomous cooldown, anchored on the last eligible history row (§3.6)."""

    active: bool = False
    remaining_seconds: int = 0
    last_eligible_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``safety.cooldown`` object."""
        last = self.last_eligible_at
        return {
            "active": self.active,
            "remainingSeconds": self.remaining_seconds,
            "lastEligibleAt": None if last is None else format_ts(last),
        }


def autonomous_cooldown(
    candidate_id: str, history: HistoryIndex, now: int, cooldown_seconds: int
) -> AutonomousCooldown:
    """Active while ``cooldownSeconds > 0`` and ``now - lastEligible < cooldownSeconds``."""
    last = history.last_eligible.get(candidate_id)
    if last is None:
        return AutonomousCooldown()
    age = now - last
    active = cooldown_seconds > 0 and age < cooldown_seconds
    return AutonomousCooldown(
        active=active,
        remaining_seconds=cooldown_seconds - age if active else 0,
        last_eligible_at=last,
    )
