"""Envelope sequence diagnostics (``loop.md`` §3.8.6), run on successful passes only.

The events side is a fold (:class:`SeqBatch`) over the ``sequence.value`` of each ingested
event envelope, so the shell can feed it one event at a time without keeping a list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ops_manager.model._json import alt, as_nonneg_int, strip_nulls
from ops_manager.model._time import format_ts

DRIFT_CODE = "ordering_drift_detected"
CATEGORY = "envelope_sequence"

#: the violation an explicit replay (``--from-start``) of the SAME log is exempt from
#: (DECISIONS Q-12): a replay restarts the event numbering at 1, so "first < previous
#: last" is expected. Only this one: a replay of an append-only log never has fewer lines
#: than before, so ``snapshot_sequence_regression`` on a replay means the log was truncated
#: or rewritten, which is ordering drift (loop.md 7.5 #58-#64); and a replay whose events
#: differ from the ones ingested before (``log_rewrite``) is not a replay of the same log.
REPLAY_EXEMPT_VIOLATIONS: frozenset[str] = frozenset({"event_sequence_regression"})

#: ``log_rewrite`` values the shell may pass (what its content check of the replay found)
LOG_REWRITES: tuple[str, ...] = ("truncated", "rewritten")


@attrs.frozen
class SeqBatch:
    """A fold over the ``sequence.value`` of this pass's event envelopes, in line order."""

    count: int = 0
    first: int | None = None
    last: int | None = None
    #: False once a value is lower than the previous numeric value of the batch
    monotonic: bool = True
    #: True once a value is missing or not a non-negative integer
    missing: bool = False

    def add(self, value: object) -> SeqBatch:
        """Fold one event's ``sequence.value`` (``None`` when the envelope has none)."""
        number = as_nonneg_int(value)
        if number is None:
            return attrs.evolve(self, count=self.count + 1, missing=True)
        return SeqBatch(
            count=self.count + 1,
            first=number if self.first is None else self.first,
            last=number,
            monotonic=self.monotonic and (self.last is None or number >= self.last),
            missing=self.missing,
        )

    @classmethod
    def of(cls, values: Iterable[object]) -> SeqBatch:
        """Fold a whole sequence of values from the empty batch."""
        batch = cls()
        for value in values:
            batch = batch.add(value)
        return batch


def _get(obj: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def evaluate_sequence(
    previous: dict[str, Any],
    *,
    snapshot_value: object,
    batch: SeqBatch,
    now: int,
    loop_id: str,
    trace_id: str | None,
    transport: str,
    replay: bool = False,
    log_rewrite: str | None = None,
) -> dict[str, Any]:
    """The new ``sequence-state.json`` object (§3.8.6 key order, top level **[strip]**).

    ``previous`` is the stored sequence state (``{}`` when absent or unparseable);
    ``snapshot_value`` the snapshot's ``sequence.value``; ``replay`` is True for an
    explicit ``--from-start`` pass (see :data:`REPLAY_EXEMPT_VIOLATIONS`);
    ``log_rewrite`` is what the shell's content check of a replay found (``"truncated"``
    / ``"rewritten"``, ``None`` = the replay matches what was ingested before, or it
    could not be checked). A replay then also carries a ``replay`` block (ours):
    ``{fromStart: true, sameLog: bool, logRewrite?}``.

    The cross-batch baseline is the previous pass's ``events.last``, or, when that pass
    ingested nothing, the baseline it had itself (``events.previousLast``): upstream loses
    the baseline after an empty pass (Q-12b), which hides a later regression.
    """
    prev = previous if isinstance(previous, dict) else {}
    prev_snap = as_nonneg_int(_get(prev, "snapshot", "current"))
    prev_last = as_nonneg_int(_get(prev, "events", "last"))
    if prev_last is None:
        prev_last = as_nonneg_int(_get(prev, "events", "previousLast"))
    prev_drift = alt(prev.get("driftActive"), False) is True

    violations: set[str] = set()

    current = as_nonneg_int(snapshot_value)
    snap_missing = current is None
    snap_regressed = current is not None and prev_snap is not None and current < prev_snap
    if snap_missing:
        violations.add("snapshot_sequence_missing")
    if snap_regressed:
        violations.add("snapshot_sequence_regression")

    across_regressed = batch.first is not None and prev_last is not None and batch.first < prev_last
    if across_regressed:
        violations.add("event_sequence_regression")
    if not batch.monotonic:
        violations.add("event_sequence_non_monotonic")
    if batch.missing:
        violations.add("event_sequence_missing")

    rewrite = log_rewrite if log_rewrite in LOG_REWRITES else None
    if rewrite is None and snap_regressed:
        # fewer lines than the previous pass saw: an append-only log was truncated
        rewrite = "truncated"
    same_log = rewrite is None
    if replay and same_log:
        violations -= REPLAY_EXEMPT_VIOLATIONS
        # an exempted comparison is not made, so it does not mark anything regressed either
        across_regressed = False
    elif replay and batch.first is not None and prev_last is not None:
        # a replay of a different log re-issues sequence values the previous passes had
        # already consumed for other events: that is the cross-batch regression, even when
        # the rewritten log is as long as (or longer than) the old one
        across_regressed = True
        violations.add("event_sequence_regression")

    drift = bool(violations)
    return strip_nulls(
        {
            "schemaVersion": "v1",
            "updatedAt": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id or None,
            "transport": transport,
            "status": DRIFT_CODE if drift else "ok",
            "reasonCode": DRIFT_CODE if drift else None,
            "driftActive": drift,
            "violations": sorted(violations),
            "snapshot": {
                "previous": prev_snap,
                "current": current,
                "monotonic": not (snap_missing or snap_regressed),
                "regressed": snap_regressed,
                "missing": snap_missing,
            },
            "events": {
                "ingestedCount": batch.count,
                "previousLast": prev_last,
                "first": batch.first,
                "last": batch.last,
                "monotonicWithinBatch": batch.monotonic,
                "monotonicAcrossBatches": not across_regressed,
                "regressed": across_regressed or not batch.monotonic,
                "missing": batch.missing,
            },
            "transition": {
                "previousDriftActive": prev_drift,
                "transitionedToDrift": drift and not prev_drift,
                "recoveredFromDrift": prev_drift and not drift,
            },
            # ours (docs/compatibility.md): why a replay was or was not judged drift
            "replay": strip_nulls({"fromStart": True, "sameLog": same_log, "logRewrite": rewrite})
            if replay
            else None,
        }
    )


def sequence_telemetry_row(state: dict[str, Any], now: int) -> dict[str, Any]:
    """The ``TEL/sequence.jsonl`` row for a sequence state (§3.8.6, **[strip]**)."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": state.get("loopId"),
            "traceId": state.get("traceId"),
            "transport": state.get("transport"),
            "category": CATEGORY,
            "status": state.get("status"),
            "reasonCode": state.get("reasonCode"),
            "driftActive": state.get("driftActive"),
            "violations": state.get("violations"),
            "snapshot": state.get("snapshot"),
            "events": state.get("events"),
            "transition": state.get("transition"),
            "replay": state.get("replay"),
        }
    )
