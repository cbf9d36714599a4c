"""Episodes (DECISIONS Q-8): dedup keys, trigger/clear bookkeeping, resolves. PURE."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import attrs

from ops_manager.model._json import as_nonneg_int
from ops_manager.reducers.alerts._decide import (
    EscalationRow,
    nonempty_str,
)
from ops_manager.reducers.alerts._vocab import (
    JSON,
    is_severity,
)

# --- episodes (DECISIONS Q-8) ------------------------------------------------------------

#: escalation category → episode family; health_degraded and health_critical are one
EPISODE_FAMILIES: dict[str, str] = {
    "health_degraded": "health",
    "health_critical": "health",
    "profile_drift_detected": "drift",
    "divergence_detected": "divergence",
    "ordering_drift_detected": "ordering",
}
_MAX_DEDUP_KEY = 255  # PagerDuty's limit


@attrs.frozen
class Episode:
    """One open problem of one loop: every trigger shares ``dedup_key`` until it clears."""

    family: str
    dedup_key: str
    opened_at: str | None
    opened_line: int
    last_line: int
    category: str
    severity: str
    escalation_trace_id: str | None
    #: sinks that were sent (or queued) a trigger: the resolve goes to them
    sinks: tuple[str, ...] = ()

    def to_json(self) -> JSON:
        """The ``episodes.<family>`` object of ``alert-dispatch-state.json``."""
        return {
            "dedupKey": self.dedup_key,
            "openedAt": self.opened_at,
            "openedLine": self.opened_line,
            "lastLine": self.last_line,
            "category": self.category,
            "severity": self.severity,
            "escalationTraceId": self.escalation_trace_id,
            "sinks": list(self.sinks),
        }

    @classmethod
    def from_json(cls, family: str, obj: object) -> Episode | None:
        """Read one stored episode; ``None`` when it is unusable."""
        if not isinstance(obj, dict):
            return None
        key = obj.get("dedupKey")
        category = obj.get("category")
        if not isinstance(key, str) or not key or not isinstance(category, str):
            return None
        sinks = obj.get("sinks")
        severity = obj.get("severity")
        return cls(
            family=family,
            dedup_key=key,
            opened_at=nonempty_str(obj.get("openedAt")),
            opened_line=as_nonneg_int(obj.get("openedLine")) or 0,
            last_line=as_nonneg_int(obj.get("lastLine")) or 0,
            category=category,
            severity=severity if is_severity(severity) else "warning",
            escalation_trace_id=nonempty_str(obj.get("escalationTraceId")),
            sinks=tuple(s for s in sinks if isinstance(s, str)) if isinstance(sinks, list) else (),
        )


Episodes = dict[str, Episode]


def episodes_from_json(obj: object) -> Episodes:
    """The ``episodes`` key of a dispatch state (anything unusable is dropped)."""
    if not isinstance(obj, dict):
        return {}
    out: Episodes = {}
    for family, value in obj.items():
        episode = Episode.from_json(str(family), value)
        if episode is not None:
            out[str(family)] = episode
    return out


def episodes_to_json(episodes: Mapping[str, Episode]) -> JSON:
    """The ``episodes`` object (family → episode)."""
    return {family: ep.to_json() for family, ep in episodes.items()}


def dedup_key_for(loop_id: str, family: str, opened_at: str | None, line: int) -> str:
    """``<loop>:<family>:<openedAt>:L<line>``; hashed down when over 255 characters."""
    key = f"{loop_id}:{family}:{opened_at or ''}:L{line}"
    if len(key) <= _MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[: _MAX_DEDUP_KEY - 65]}~{digest}"


def episode_for_trigger(
    episodes: Mapping[str, Episode],
    *,
    loop_id: str,
    row: EscalationRow,
    severity: str,
) -> tuple[Episodes, str]:
    """Open (or continue) the episode of ``row``'s category; returns the new map and the
    row's ``dedup_key``. Categories outside the known families get a one-off key."""
    assert row.category is not None
    family = EPISODE_FAMILIES.get(row.category)
    new = dict(episodes)
    if family is None:
        return new, dedup_key_for(loop_id, row.category, row.timestamp, row.line)
    current = episodes.get(family)
    if current is None:
        current = Episode(
            family=family,
            dedup_key=dedup_key_for(loop_id, family, row.timestamp, row.line),
            opened_at=row.timestamp or None,
            opened_line=row.line,
            last_line=row.line,
            category=row.category,
            severity=severity,
            escalation_trace_id=row.trace_id,
        )
    else:
        current = attrs.evolve(
            current,
            last_line=row.line,
            category=row.category,
            severity=severity,
            escalation_trace_id=row.trace_id or current.escalation_trace_id,
        )
    new[family] = current
    return new, current.dedup_key


def note_episode_sinks(
    episodes: Mapping[str, Episode], category: str, sink_ids: Iterable[str]
) -> Episodes:
    """Remember that ``sink_ids`` got (or have queued) a trigger of ``category``'s episode."""
    family = EPISODE_FAMILIES.get(category)
    new = dict(episodes)
    if family is None or family not in new:
        return new
    ep = new[family]
    new[family] = attrs.evolve(ep, sinks=tuple(dict.fromkeys((*ep.sinks, *sink_ids))))
    return new


@attrs.frozen
class Conditions:
    """The loop's current conditions as the dispatcher read them (``None`` = unknown)."""

    #: ``health.json`` ``status``
    health_status: str | None = None
    #: ``profile-drift.json`` ``driftActive``
    profile_drift_active: bool | None = None
    #: ``sequence-state.json`` ``driftActive``
    ordering_drift_active: bool | None = None
    #: ``state.json`` ``divergence.any``
    divergence_active: bool | None = None


def episode_cleared(episode: Episode, conditions: Conditions) -> bool:
    """Whether the condition behind ``episode`` has cleared (unknown → not cleared)."""
    if episode.family == "health":
        return conditions.health_status == "healthy"
    if episode.family == "drift":
        return conditions.profile_drift_active is False
    if episode.family == "ordering":
        return conditions.ordering_drift_active is False
    if episode.family == "divergence":
        return conditions.divergence_active is False
    return False


def cleared_episodes(episodes: Mapping[str, Episode], conditions: Conditions) -> list[Episode]:
    """The open episodes whose condition cleared, in the order they are stored."""
    return [ep for ep in episodes.values() if episode_cleared(ep, conditions)]


def close_episode(episodes: Mapping[str, Episode], family: str) -> Episodes:
    """``episodes`` without ``family``."""
    return {f: ep for f, ep in episodes.items() if f != family}
