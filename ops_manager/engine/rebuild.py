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
``heartbeat.json``              the last non-failed                    entirely (``thresholds``
                                ``telemetry/heartbeat`` row + the      from the ``inputs`` of
                                reconcile row of its pass              that pass, C-15d)
``telemetry/transport-          every ``telemetry/reconcile`` row,     entirely (each row holds
health.json``                   oldest first (``reducers.transport``) the step's inputs and the
                                                                       pass's clock value)
``health.json``                 the last reconcile row's ``inputs``    entirely (``_rebuild_pass``)
                                + heartbeat/sequence rows + the
                                transport-health fold
``state.json``                  the last successful row's ``inputs``   entirely (``_rebuild_pass``)
                                + its last event in ``events.jsonl``
                                + the sequence/drift rows + the
                                summary re-folded from the rows
``alert-dispatch-state.json``   --                                     offsets checked against
                                                                       ``escalations.jsonl``
=============================== ===================================== =========================

``health.json`` and ``state.json`` are folds of what each pass records (C-15d): the trailing
``inputs`` of its ``telemetry/reconcile.jsonl`` row holds exactly what they derive from that no
other stream holds (:mod:`ops_manager.reducers.pass_inputs`), and rebuild calls the pass's own
reducers (``pass_lifecycle``, ``pass_health``) on it, so the two cannot drift apart. When they
cannot be re-derived (rows written before C-15d, the last event no longer in ``events.jsonl``
as it was read, a failed pass that kept a ``state.json`` another writer put there) the reason
says so and they are checked for consistency as before: ``not_rebuildable`` when present and
consistent, ``differs`` when not, ``missing`` (exit 1) when absent although a pass wrote them.

``project-state`` writes ``state.json`` too (the bare lifecycle projection: no ``health`` /
``trace``). Such a ``state.json`` is the newer writer's and ``not_rebuildable`` (never a false
``differs``); the next successful reconcile folds it (its ``inputs.previous`` records what it
read). A deleted project-state output is restored as the last reconcile pass wrote it.

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
