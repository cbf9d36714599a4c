"""Alert dispatch: what a run and a replay share (config, env, deliverer, outbox, ordering)
(see :mod:`ops_manager.engine.alert_dispatch`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ops_manager.engine._alert_dispatch_files import (
    DispatchEffects,
    Outbox,
)
from ops_manager.engine.alert_config import (
    LoadedConfig,
    env_presence,
)
from ops_manager.engine.alert_delivery import Deliverer, DeliveryResult
from ops_manager.reducers.alerts import (
    INVALID_SINK_REQUEST,
    MISSING_SECRET,
    OUTBOX_DELIVERED,
    OUTBOX_QUEUED,
    OUTBOX_RETRYING,
    OUTBOX_TERMINAL,
    DeliveryPolicy,
    OutboxEntry,
    SinkDecision,
    SinkDef,
    SinkResult,
    event_to_json,
    outbox_record,
    redact_text,
    sink_missing_secrets,
    t_delivery,
)
from ops_manager.sinks import AlertEvent, Sink
from ops_manager.store import (
    LoopPaths,
    append_line,
)

# --- one run -----------------------------------------------------------------------------


class Sending:
    """What a run or a replay shares: config, env, deliverer, outbox, ordering."""

    def __init__(
        self,
        *,
        paths: LoopPaths,
        loaded: LoadedConfig | None,
        outbox: Outbox,
        effects: DispatchEffects,
        trace_id: str,
        telemetry: Path,
    ) -> None:
        self.paths = paths
        self.loaded = loaded
        self.outbox = outbox
        self.effects = effects
        self.trace_id = trace_id
        self.telemetry = telemetry
        #: rows held for the run's commit (dispatch); ``None`` appends each one at once (replay)
        self.held_telemetry: list[dict[str, Any]] | None = None
        self.environ: Mapping[str, str] = os.environ if effects.environ is None else effects.environ
        config = loaded.config if loaded else None
        policy = config.delivery if config else DeliveryPolicy()
        self.policy = policy
        self.present = env_presence(config, self.environ) if config else {}
        self.missing = sink_missing_secrets(config, self.present) if config else {}
        self.deliverer = Deliverer(
            policy,
            sender=effects.sender,
            clock=effects.clock,
            sleep=effects.sleep,
            rng=effects.rng,
        )
        #: (dedup key, sink id) with an earlier notification still pending in this run
        self.blocked: set[tuple[str, str]] = set()

    def now(self) -> float:
        return self.effects.clock()

    def _secrets(self, sink: SinkDef, url: str) -> list[str]:
        values = [self.environ.get(name, "") for name in sink.secret_envs]
        return [v for v in values if v] + [url]

    def send(self, sink: SinkDef, plugin: Sink, event: AlertEvent) -> DeliveryResult:
        """Build the sink's request and deliver it (never raises for a plugin error)."""
        try:
            request = plugin.build_request(sink.id, sink.raw, event, self.environ)
            destination = plugin.destination_key(sink.raw, self.environ)
        except Exception as exc:  # a plugin bug must not stop the run
            secrets = [self.environ.get(n, "") for n in sink.secret_envs]
            return DeliveryResult(
                success=False,
                outbox_status=OUTBOX_TERMINAL,
                attempts=0,
                reason_code=INVALID_SINK_REQUEST,
                message=redact_text(f"{type(exc).__name__}: {exc}", [s for s in secrets if s])[
                    :300
                ],
            )
        return self.deliverer.deliver(
            request,
            idempotency_key=event.idempotency_key,
            timeout=float(sink.timeout_seconds),
            destination=destination,
            min_interval=float(getattr(plugin, "min_interval_seconds", 0.0) or 0.0),
            secrets=self._secrets(sink, request.url),
        )

    def record_result(
        self,
        entry_event: Mapping[str, Any],
        sink: SinkDef,
        result: DeliveryResult,
        previous_attempts: int,
        source: str | None = None,
    ) -> None:
        """Append the outcome of an attempt (nothing when no attempt was made)."""
        if result.attempts == 0 and result.outbox_status == OUTBOX_RETRYING:
            return
        now = self.now()
        self.outbox.append(
            [
                outbox_record(
                    now=now,
                    status=result.outbox_status,
                    key=str(entry_event["idempotencyKey"]),
                    sink_id=sink.id,
                    sink_type=sink.type,
                    event=entry_event,
                    attempts=previous_attempts + result.attempts,
                    trace_id=self.trace_id,
                    http_status=result.http_status,
                    reason_code=result.reason_code,
                    message=result.message,
                    retry_after_seconds=result.retry_after_seconds,
                    next_attempt_at=now + result.retry_in_seconds
                    if result.outbox_status == OUTBOX_RETRYING
                    and result.retry_in_seconds is not None
                    else None,
                    source=source,
                )
            ]
        )

    def notify(self, event: AlertEvent, decisions: Sequence[SinkDecision]) -> list[SinkResult]:
        """Queue ``event`` for every decided sink, then send where allowed (in order)."""
        ev = event_to_json(event)
        key = event.idempotency_key
        before = {d.sink.id: self.outbox.entries.get((key, d.sink.id)) for d in decisions}
        now = self.now()
        self.outbox.append(
            [
                outbox_record(
                    now=now,
                    status=OUTBOX_QUEUED,
                    key=key,
                    sink_id=d.sink.id,
                    sink_type=d.sink.type,
                    event=ev,
                    attempts=0,
                    trace_id=self.trace_id,
                )
                for d in decisions
                if before[d.sink.id] is None
            ]
        )
        results: list[SinkResult] = []
        for d in decisions:
            sink = d.sink
            existing = before[sink.id]
            if existing is not None:
                results.append(_result_from_entry(existing))
                if existing.pending:
                    self.blocked.add((event.dedup_key, sink.id))
                continue
            ident = (event.dedup_key, sink.id)
            if not d.send:
                self.outbox.append(
                    [
                        outbox_record(
                            now=now,
                            status=OUTBOX_RETRYING,
                            key=key,
                            sink_id=sink.id,
                            sink_type=sink.type,
                            event=ev,
                            attempts=0,
                            trace_id=self.trace_id,
                            reason_code=MISSING_SECRET,
                            message=d.message,
                        )
                    ]
                )
                self.blocked.add(ident)
                results.append(
                    SinkResult(
                        sink_id=sink.id,
                        sink_type=sink.type,
                        success=False,
                        reason_code=d.reason,
                        message=d.message,
                        outbox_status=OUTBOX_RETRYING,
                    )
                )
                continue
            plugin = self.loaded.plugin_for(sink) if self.loaded else None
            if ident in self.blocked:
                result = self.deliverer.deferred(
                    "an earlier notification of this episode to this sink is still pending; "
                    "kept in the outbox"
                )
            elif plugin is None:
                result = self.deliverer.deferred("sink plugin not installed; kept in the outbox")
            else:
                result = self.send(sink, plugin, event)
            self.record_result(ev, sink, result, 0)
            if not result.success and result.outbox_status == OUTBOX_RETRYING:
                self.blocked.add(ident)
            results.append(make_sink_result(sink, result))
        return results

    def telemetry_row(self, row: dict[str, Any]) -> None:
        """Record a telemetry row: held for the run's commit, or appended now."""
        if self.held_telemetry is not None:
            self.held_telemetry.append(row)
        else:
            append_line(self.telemetry, row)


def make_sink_result(sink: SinkDef, result: DeliveryResult) -> SinkResult:
    outbox_status = result.outbox_status
    if result.attempts == 0 and outbox_status == OUTBOX_RETRYING:
        outbox_status = OUTBOX_QUEUED
    return SinkResult(
        sink_id=sink.id,
        sink_type=sink.type,
        success=result.success,
        reason_code=result.reason_code,
        http_status=result.http_status,
        message=result.message,
        attempts=result.attempts,
        retry_after_seconds=result.retry_after_seconds,
        outbox_status=outbox_status,
    )


def _result_from_entry(entry: OutboxEntry) -> SinkResult:
    """A row re-processed after a crash: report what the outbox already knows."""
    last = entry.last
    http = last.get("httpStatus")
    if entry.status == OUTBOX_DELIVERED:
        return SinkResult(
            sink_id=entry.sink_id,
            sink_type=entry.sink_type,
            success=True,
            http_status=http if isinstance(http, int) else None,
            message="already delivered (outbox)",
            attempts=entry.attempts,
            outbox_status=entry.status,
        )
    reason = last.get("reasonCode")
    return SinkResult(
        sink_id=entry.sink_id,
        sink_type=entry.sink_type,
        success=False,
        reason_code=reason if isinstance(reason, str) else "delivery_deferred",
        http_status=http if isinstance(http, int) else None,
        message="already in the outbox (" + entry.status + ")",
        attempts=entry.attempts,
        outbox_status=entry.status,
    )


def retry_row(
    now: float, trace_id: str, entry: OutboxEntry, result: SinkResult, source: str
) -> dict[str, Any]:
    ev = entry.event
    return t_delivery(
        int(now),
        loop_id=str(ev.get("loopId", "")),
        trace_id=trace_id,
        escalation_trace_id=str(ev.get("traceId") or trace_id),
        escalation_category=str(ev.get("category", "")),
        escalation_timestamp=str_or_none(ev.get("escalationTimestamp")),
        event_severity=str(ev.get("severity", "")),
        escalation=ev.get("escalation"),
        route_obj=None,
        results=[result],
        extra={
            "action": ev.get("action"),
            "dedupKey": ev.get("dedupKey"),
            "idempotencyKey": entry.key,
            "source": source,
        },
    )


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
