"""``rebuild``: re-fold a loop's projections from its streams and compare (or restore).

DESIGN rule 2 says every projection is derived and can be rebuilt by re-folding the
streams. This command makes that promise checkable, and is honest about where it does not
hold. Per projection:

=============================== ===================================== =========================
projection                      re-derived from                       how much
=============================== ===================================== =========================
``stream-state.json``           ``events.jsonl`` up to the stored      ``fold`` and ``position``
                                position (``reducers.stream``)         exactly; the pass's
                                                                       ``updatedAt`` /
                                                                       ``eventLineCount`` /
                                                                       ``tornTailBytes`` are
                                                                       kept
``cursor.json``                 the re-derived position                ``eventLineOffset`` and
                                                                       ``position``
``profile-drift.json``          the last ``telemetry/profile-drift``   entirely (the row's
                                row                                    ``drift`` *is* the
                                                                       projection)
``sequence-state.json``         the last ``telemetry/sequence`` row    entirely (row minus
                                                                       ``timestamp``/``category``)
``heartbeat.json``              the last non-failed                    all but ``thresholds``
                                ``telemetry/heartbeat`` row            (not in the row)
``telemetry/transport-          every ``telemetry/reconcile`` row,     entirely (each row holds
health.json``                   oldest first (``reducers.transport``) the step's inputs and the
                                                                       pass's clock value)
``alert-dispatch-state.json``   --                                     offsets checked against
                                                                       ``escalations.jsonl``
``health.json``, ``state.json`` --                                     not rebuildable; checked
                                                                       for consistency
=============================== ===================================== =========================

``health.json`` and ``state.json`` are folds of the *runtime* as it was at each pass (the
snapshot's files, the intents file, the clock); those inputs are not kept in any stream, so
they are reported ``not_rebuildable`` with the reason, after a consistency check against the
projections and rows written in the same pass (a mismatch is ``differs``).

When ``stream-state.json`` and ``cursor.json`` are both gone, the position comes from the last
successful ``telemetry/reconcile.jsonl`` row (``cursorOffsetAfter``, ``timestamp``). A
projection that cannot be re-derived but is absent although its writer ran (its stream has
rows) is ``missing`` (``lost: ...``), so the command fails rather than say all is well.

Statuses: ``match``, ``differs``, ``missing`` (the stream has data, the projection is absent
or unreadable), ``restored`` (``--write`` rewrote it byte-identically to what a pass writes),
``not_rebuildable``. Everything runs under the loop's lock, so it never sees (or makes) a
half-written pass.
"""

from __future__ import annotations

from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine._rebuild_checks import Rebuild
from ops_manager.engine._rebuild_model import (
    DIFFERS,
    MATCH,
    MISSING,
    NOT_REBUILDABLE,
    RESTORED,
    ProjectionCheck,
    RebuildReport,
    heartbeat_state_from_row,
    json_differences,
    sequence_state_from_row,
    transport_health_fold,
)
from ops_manager.errors import OpsError
from ops_manager.store import LoopPaths, apply_pending, exclusive_lock, write_json


def rebuild(paths: LoopPaths, *, write: bool = False, now: int | None = None) -> RebuildReport:
    """Re-fold every projection of a loop from its streams; with ``write``, restore the ones
    that differ (or are missing) and can be rebuilt.

    Raises :class:`OpsError` ``no ops-manager artifacts found for loop: <loop>`` when the
    loop has no ``.superloop/ops-manager/<loop>/`` directory.
    """
    if not paths.ops_dir.is_dir():
        raise OpsError(f"no ops-manager artifacts found for loop: {paths.loop_id}")
    at = utc_now_epoch() if now is None else now
    with exclusive_lock(paths.lock_file):
        # a pass killed after its commit point is finished first: it is part of the history
        apply_pending(paths.pass_commit_file)
        r = Rebuild(paths, at)
        # stream-state first: it provides the position the cursor is checked against
        stream_state, drift, sequence = r.stream_state_check(), r.drift_check(), r.sequence_check()
        heartbeat, transport = r.heartbeat_check(), r.transport_health_check()
        cursor = r.cursor_check()
        health, state = r.health_check(), r.state_check()
        if write:
            # in reconcile's write order: state, health, ..., the cursor last
            for check in (
                state,
                health,
                heartbeat,
                sequence,
                transport,
                drift,
                stream_state,
                cursor,
            ):
                if check.status in (DIFFERS, MISSING) and check.expected is not None:
                    write_json(check.file, check.expected, pretty=check.pretty)
                    check.status = RESTORED
        # the dispatch check looks at the projection as it is now
        checks = (
            stream_state,
            drift,
            sequence,
            heartbeat,
            transport,
            cursor,
            r.dispatch_check(),
            health,
            state,
        )
    return RebuildReport(
        repo=paths.repo, loop_id=paths.loop_id, write=write, generated_at=at, checks=checks
    )


__all__ = [
    "DIFFERS",
    "MATCH",
    "MISSING",
    "NOT_REBUILDABLE",
    "RESTORED",
    "ProjectionCheck",
    "RebuildReport",
    "heartbeat_state_from_row",
    "json_differences",
    "rebuild",
    "sequence_state_from_row",
    "transport_health_fold",
]
