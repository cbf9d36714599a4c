"""Alert dispatch: one run — new rows, outbox retries, resolves of cleared episodes
(see :mod:`ops_manager.engine.alert_dispatch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.engine._alert_dispatch_files import (
    DispatchEffects,
    DispatchFiles,
    DispatchSettings,
    Outbox,
    current_run_id,
    read_conditions,
)
from ops_manager.engine._alert_dispatch_sending import (
    Sending,
    make_sink_result,
    retry_row,
    str_or_none,
)
from ops_manager.engine.alert_config import (
    LoadedConfig,
)
from ops_manager.reducers.alerts import (
    ERR_SEVERITY,
    INVALID_SINK_REQUEST,
    MISSING_SECRET,
    OUTBOX_GAVE_UP,
    OUTBOX_RETRYING,
    OUTBOX_TERMINAL,
    OUTCOME_DELIVER,
    OUTCOME_FAIL,
    OUTCOME_SKIP,
    OUTCOME_SKIP_BLANK,
    RETRY_BUDGET_EXHAUSTED,
    ROW_INVALID,
    ROW_OK,
    SINK_DISABLED,
    SINK_NOT_CONFIGURED,
    Conditions,
    Episodes,
    EscalationRow,
    OutboxEntry,
    Route,
    RouteFailure,
    RunCounts,
    SinkDecision,
    SinkResult,
    build_event,
    cleared_episodes,
    close_episode,
    decide,
    env_status,
    episode_for_trigger,
    episodes_from_json,
    event_from_json,
    is_severity,
    note_episode_sinks,
    outbox_record,
    parse_row,
    resolve_route,
    route_json,
    t_delivery,
    t_invalid,
    t_nocat,
    t_routefail,
    t_skip,
)
from ops_manager.store import (
    LoopPaths,
)


class DispatchRun(Sending):
    def __init__(
        self,
        settings: DispatchSettings,
        paths: LoopPaths,
        files: DispatchFiles,
        effects: DispatchEffects,
        loaded: LoadedConfig | None,
        config_error: str | None,
        previous: dict[str, Any],
    ) -> None:
        super().__init__(
            paths=paths,
            loaded=loaded,
            outbox=Outbox(files.outbox),
            effects=effects,
            trace_id=settings.trace_id,
            telemetry=files.telemetry,
        )
        # a dispatch commits its telemetry rows and its state as one (alert_dispatch._commit)
        self.held_telemetry = []
        self.s = settings
        self.files = files
        self.config_error = config_error
        self.episodes: Episodes = episodes_from_json(previous.get("episodes"))
        self.counts = RunCounts()
        self.failure_codes: set[str] = set()
        self.repo = str(paths.repo)
        self._run_id: str | bool | None = False

    def run_id(self) -> str | None:
        if self._run_id is False:
            self._run_id = current_run_id(self.paths)
        return self._run_id if isinstance(self._run_id, str) else None

    def _count(self, **changes: int) -> None:
        self.counts = attrs.evolve(
            self.counts, **{k: getattr(self.counts, k) + v for k, v in changes.items()}
        )

    # -- 2. the outbox, before new rows ----------------------------------------------------
    def retry_outbox(self) -> None:
        now = self.now()
        for entry in self.outbox.ordered():
            if not entry.pending:
                continue
            ident = (entry.dedup_key, entry.sink_id)
            if self.loaded is None or ident in self.blocked:
                self.blocked.add(ident)
                continue
            first = parse_ts(entry.first_queued_at) if entry.first_queued_at else None
            if first is not None and now - first >= self.policy.give_up_after_seconds:
                self._stop(entry, OUTBOX_GAVE_UP, RETRY_BUDGET_EXHAUSTED, "retry budget spent")
                continue
            sink = self.loaded.config.sink(entry.sink_id)
            if sink is None:
                self._stop(entry, OUTBOX_GAVE_UP, SINK_NOT_CONFIGURED, "sink not in the config")
                continue
            if not sink.enabled:
                self._stop(entry, OUTBOX_GAVE_UP, SINK_DISABLED, "sink is disabled")
                continue
            plugin = self.loaded.plugin_for(sink)
            if plugin is None or self.missing.get(sink.id) or not entry.due(now):
                self.blocked.add(ident)
                continue
            try:
                event = event_from_json(entry.event)
            except ValueError as exc:
                self._stop(entry, OUTBOX_TERMINAL, INVALID_SINK_REQUEST, str(exc)[:300])
                continue
            result = self.send(sink, plugin, event)
            if result.attempts == 0 and not result.success:
                self.blocked.add(ident)
                continue  # deferred (deadline / destination down): nothing happened
            self.record_result(entry.event, sink, result, entry.attempts, source="outbox")
            self._count(retried=1, delivered_from_outbox=1 if result.success else 0)
            if not result.success and result.outbox_status == OUTBOX_RETRYING:
                self.blocked.add(ident)
            self.telemetry_row(
                retry_row(
                    self.now(), self.trace_id, entry, make_sink_result(sink, result), "outbox"
                )
            )

    def _stop(self, entry: OutboxEntry, status: str, reason: str, message: str) -> None:
        self.outbox.append(
            [
                outbox_record(
                    now=self.now(),
                    status=status,
                    key=entry.key,
                    sink_id=entry.sink_id,
                    sink_type=entry.sink_type,
                    event=entry.event,
                    attempts=entry.attempts,
                    trace_id=self.trace_id,
                    reason_code=reason,
                    message=message,
                    source="outbox",
                )
            ]
        )

    # -- 3. new rows -----------------------------------------------------------------------
    def process(self, line: int, raw: bytes) -> None:
        self._count(processed=1)
        try:
            text = raw.decode("utf-8")
            row = parse_row(line, text)
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            row = EscalationRow(line=line, raw=text, kind=ROW_INVALID)
        now = int(self.now())
        loop_id, trace = self.s.loop_id, self.s.trace_id
        route: Route | RouteFailure | None = None
        if row.kind == ROW_OK:
            route = self._route(row)
        decision = decide(row, route, self.missing)
        if decision.outcome == OUTCOME_SKIP_BLANK:
            self._count(skipped=1)
            return
        if decision.outcome == OUTCOME_FAIL:
            self._count(failed=1)
            assert decision.reason is not None
            self.failure_codes.add(decision.reason)
            if row.kind == ROW_INVALID:
                self.telemetry_row(t_invalid(now, loop_id, trace, row.raw))
            elif row.kind != ROW_OK:
                self.telemetry_row(t_nocat(now, loop_id, trace, row.escalation))
            else:
                self.telemetry_row(t_routefail(now, loop_id, trace, row, decision.message or ""))
            return
        assert isinstance(route, Route) and self.loaded is not None and row.category
        config = self.loaded.config
        route_obj = route_json(config, route, env_status(config, self.present), False)
        self.episodes, dedup_key = episode_for_trigger(
            self.episodes, loop_id=loop_id, row=row, severity=route.event_severity
        )
        if decision.outcome == OUTCOME_SKIP:
            self._count(skipped=1)
            self.telemetry_row(
                t_skip(now, loop_id, trace, row, route, route_obj, {"dedupKey": dedup_key})
            )
            return
        assert decision.outcome == OUTCOME_DELIVER
        event = build_event(
            action="trigger",
            loop_id=row.loop_id or loop_id,
            category=row.category,
            severity=route.event_severity,
            trace_id=row.trace_id or trace,
            escalation=row.escalation,
            escalation_timestamp=row.timestamp,
            emitted_at=format_ts(now),
            dedup_key=dedup_key,
            sequence=f"L{line}",
            run_id=str_or_none(row.escalation.get("runId")) or self.run_id(),
            repo=self.repo,
        )
        results = self.notify(event, decision.sinks)
        self.episodes = note_episode_sinks(
            self.episodes, row.category, [d.sink.id for d in decision.sinks]
        )
        self._tally(results)
        self.telemetry_row(
            t_delivery(
                int(self.now()),
                loop_id=row.loop_id or loop_id,
                trace_id=trace,
                escalation_trace_id=row.trace_id or trace,
                escalation_category=row.category,
                escalation_timestamp=row.timestamp,
                event_severity=route.event_severity,
                escalation=row.escalation,
                route_obj=route_obj,
                results=results,
                extra={
                    "action": "trigger",
                    "dedupKey": dedup_key,
                    "idempotencyKey": event.idempotency_key,
                },
            )
        )

    def _route(self, row: EscalationRow) -> Route | RouteFailure:
        if self.loaded is None:
            return RouteFailure(self.config_error or "error: alert sink config unavailable")
        if row.severity is not None and not is_severity(row.severity):
            return RouteFailure(f"error: {ERR_SEVERITY}")
        assert row.category is not None
        return resolve_route(self.loaded.config, row.category, row.severity)

    def _tally(self, results: Sequence[SinkResult]) -> None:
        ok = sum(1 for r in results if r.success)
        if ok:
            self._count(dispatched=1)
        if ok < len(results):
            self._count(failed=1)
        for r in results:
            if not r.success:
                self.failure_codes.add(r.reason_code or "sink_dispatch_failed")

    # -- 4. resolves -----------------------------------------------------------------------
    def resolve_cleared(self) -> None:
        if self.loaded is None or not self.episodes:
            return
        config = self.loaded.config
        conditions = read_conditions(self.paths)
        for episode in cleared_episodes(self.episodes, conditions):
            self.episodes = close_episode(self.episodes, episode.family)
            targets = [s for s in (config.sink(i) for i in episode.sinks) if s and s.enabled]
            if not targets:
                continue  # nobody was told about it: nothing to take back
            now = int(self.now())
            resolved = {
                "timestamp": format_ts(now),
                "loopId": self.s.loop_id,
                "traceId": self.s.trace_id,
                "category": episode.category,
                "action": "resolve",
                "dedupKey": episode.dedup_key,
                "openedAt": episode.opened_at,
                "escalationTraceId": episode.escalation_trace_id,
                "condition": _condition_json(episode.family, conditions),
            }
            event = build_event(
                action="resolve",
                loop_id=self.s.loop_id,
                category=episode.category,
                severity=episode.severity,
                trace_id=self.s.trace_id,
                escalation=resolved,
                escalation_timestamp=format_ts(now),
                emitted_at=format_ts(now),
                dedup_key=episode.dedup_key,
                sequence=f"r{episode.last_line}",
                run_id=self.run_id(),
                repo=self.repo,
            )
            decisions = [
                SinkDecision(
                    sink=s,
                    send=not self.missing.get(s.id),
                    reason=MISSING_SECRET if self.missing.get(s.id) else None,
                    message=s.missing_message(self.missing[s.id])
                    if self.missing.get(s.id)
                    else None,
                )
                for s in targets
            ]
            results = self.notify(event, decisions)
            self._count(resolves=1)
            for r in results:
                if not r.success:
                    self.failure_codes.add(r.reason_code or "sink_dispatch_failed")
            self.telemetry_row(
                t_delivery(
                    int(self.now()),
                    loop_id=self.s.loop_id,
                    trace_id=self.s.trace_id,
                    escalation_trace_id=self.s.trace_id,
                    escalation_category=episode.category,
                    escalation_timestamp=None,
                    event_severity=episode.severity,
                    escalation=resolved,
                    route_obj=None,
                    results=results,
                    extra={
                        "action": "resolve",
                        "dedupKey": episode.dedup_key,
                        "idempotencyKey": event.idempotency_key,
                    },
                )
            )


def _condition_json(family: str, c: Conditions) -> dict[str, Any]:
    if family == "health":
        return {"healthStatus": c.health_status}
    if family == "drift":
        return {"profileDriftActive": c.profile_drift_active}
    if family == "ordering":
        return {"orderingDriftActive": c.ordering_drift_active}
    return {"divergenceActive": c.divergence_active}
