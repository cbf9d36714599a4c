"""``profile-drift``: one drift evaluation, recorded (the shell around ``reducers.drift``).

Reads the catalog and the previous ``profile-drift.json``, lets the pure reducer decide,
then writes the history row first and the projection second (records before projections,
as in reconcile), all under the loop's lock so it never races a reconcile of the same loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine._files import last_jsonl_object
from ops_manager.errors import OpsError
from ops_manager.reducers.drift import (
    CONFIDENCES,
    DriftInputs,
    check_known_profiles,
    drift_history_row,
    evaluate_drift,
)
from ops_manager.store import (
    LoopPaths,
    append_line,
    apply_pending,
    exclusive_lock,
    read_json_file,
    write_json,
)


def load_profile_names(path: Path) -> frozenset[str]:
    """The profile names of a catalog, as the drift command checks it: the file must parse
    and ``.profiles`` must be an object, else ``invalid threshold profiles file: <path>``."""
    try:
        catalog = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        raise OpsError(f"invalid threshold profiles file: {path}") from None
    profiles = catalog.get("profiles") if isinstance(catalog, dict) else None
    if not isinstance(profiles, dict):
        raise OpsError(f"invalid threshold profiles file: {path}")
    return frozenset(profiles)


def read_drift_state(path: Path) -> dict[str, Any]:
    """The previous drift projection, strictly: missing -> ``{}``; not JSON (or not an
    object) -> ``invalid drift state JSON: <path>``."""
    value = read_json_file(path, "invalid drift state JSON")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OpsError(f"invalid drift state JSON: {path}")
    return value


def last_drift_from_history(path: Path) -> dict[str, Any] | None:
    """The ``drift`` object of the last complete, parseable history row (or ``None``).

    The history is the stream ``profile-drift.json`` is projected from, so this is the
    projection's rebuild.
    """
    row = last_jsonl_object(path)
    drift = row.get("drift") if row is not None else None
    return drift if isinstance(drift, dict) else None


def previous_drift_lenient(
    state_file: Path, history_file: Path
) -> tuple[dict[str, Any], str | None]:
    """The previous drift projection for reconcile, which must not stop supervising a loop
    because a derived file is damaged: an unreadable ``profile-drift.json`` is rebuilt from
    the last history row (``{}`` if that fails too), with a warning."""
    try:
        return read_drift_state(state_file), None
    except OpsError as exc:
        rebuilt = last_drift_from_history(history_file)
        how = "rebuilt from the last history row" if rebuilt is not None else "starting over"
        return rebuilt or {}, f"{exc.message}; {how} ({history_file})"


@attrs.frozen
class DriftRequest:
    """The ``profile-drift`` command's inputs, flags already validated."""

    applied_profile: str = ""
    recommended_profile: str = ""
    recommendation_confidence: str = "low"
    min_confidence: str = "medium"
    required_streak: int = 3
    summary_window: int = 200
    rationale: str = ""
    thresholds_file: Path | None = None
    drift_state_file: Path | None = None
    drift_history_file: Path | None = None


def profile_drift(
    paths: LoopPaths,
    request: DriftRequest,
    *,
    now: int | None = None,
    profiles_path: Path | None = None,
) -> dict[str, Any]:
    """Evaluate drift once, append the history row, rewrite ``profile-drift.json``; return
    the drift object.

    Errors (:class:`OpsError`, in the contract's order): ``invalid threshold profiles file:
    <path>``, ``unknown applied profile: <name>``, ``unknown recommended profile: <name>``,
    ``invalid drift state JSON: <path>``. ``profiles_path`` is the catalog used when the
    request names none (the caller applies flag > env > packaged default).
    """
    from ops_manager.engine.profiles import default_profiles_path

    catalog = request.thresholds_file or profiles_path or default_profiles_path()
    known = load_profile_names(catalog)
    check_known_profiles(known, request.applied_profile, request.recommended_profile)
    state_file = request.drift_state_file or paths.drift_state_file
    history_file = request.drift_history_file or paths.drift_history_file
    paths.ops_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(paths.lock_file):
        apply_pending(paths.pass_commit_file)  # a killed pass's profile-drift.json first
        previous = read_drift_state(state_file)
        at = utc_now_epoch() if now is None else now
        drift = evaluate_drift(previous, drift_inputs(paths.loop_id, at, request))
        append_line(history_file, drift_history_row(drift, at))
        write_json(state_file, drift)
    return drift


def drift_inputs(loop_id: str, now: int, request: DriftRequest) -> DriftInputs:
    """The reducer's inputs for a request."""
    return DriftInputs(
        loop_id=loop_id,
        now=now,
        applied_profile=request.applied_profile,
        recommended_profile=request.recommended_profile,
        recommendation_confidence=request.recommendation_confidence,
        min_confidence=request.min_confidence,
        required_streak=request.required_streak,
        summary_window=request.summary_window,
        rationale=request.rationale,
    )


def summary_recommendation(summary: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """``(recommendedProfile, confidence, rationale)`` read off a telemetry summary the way
    reconcile feeds drift: ``"" / "low" / ""`` when absent."""
    if summary is None:
        return "", "low", ""
    rec = summary.get("recommendedProfile")
    conf = summary.get("confidence")
    why = summary.get("rationale")
    return (
        rec if isinstance(rec, str) else "",
        conf if isinstance(conf, str) and conf else "low",
        why if isinstance(why, str) else "",
    )


__all__ = [
    "CONFIDENCES",
    "DriftRequest",
    "drift_inputs",
    "last_drift_from_history",
    "load_profile_names",
    "previous_drift_lenient",
    "profile_drift",
    "read_drift_state",
    "summary_recommendation",
]
