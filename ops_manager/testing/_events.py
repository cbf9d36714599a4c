"""Shared constants, :class:`ContractFailure` and the fake events of the sink test kit."""

from __future__ import annotations

import re
from typing import Any

import attrs

from ops_manager.sinks import AlertEvent

#: the pattern every env-var reference in a sink config must match (alerts.md §1.3)
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: the sink id the contract passes to ``validate_config`` / ``build_request``
CONTRACT_SINK_ID = "contract-sink"
#: the home directory of the fake machine whose paths :func:`event_with_local_paths` carries
LOCAL_PATH_PROBE = "/home/contract-probe"
_PROBE_REPO = f"{LOCAL_PATH_PROBE}/work/payments-service"
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
OS_ENVIRON_MARK = "read-from-os-environ"


class ContractFailure(AssertionError):
    """A sink broke a rule of the contract; the message says which and how."""


# --------------------------------------------------------------------------- events


def make_event(**overrides: Any) -> AlertEvent:
    """A realistic :class:`AlertEvent`: loop ``demo-loop`` went critical (stale ingest).

    The escalation is what core hands a sink (absolute local paths already removed). Any
    field can be overridden, e.g. ``make_event(action="resolve")`` or
    ``make_event(severity="warning", category="health_degraded")``.
    """
    escalation: dict[str, Any] = {
        "timestamp": "2026-02-22T12:00:00Z",
        "loopId": "demo-loop",
        "traceId": "trace-contract-1",
        "category": "health_critical",
        "transport": "local",
        "ingestStatus": "success",
        "healthStatus": "critical",
        "reasonCodes": ["ingest_stale"],
        "reasons": [
            {
                "code": "ingest_stale",
                "severity": "critical",
                "metric": "ingestLagSeconds",
                "observed": "7200",
                "threshold": "3600",
            }
        ],
    }
    fields: dict[str, Any] = {
        "action": "trigger",
        "loop_id": "demo-loop",
        "category": "health_critical",
        "severity": "critical",
        "trace_id": "trace-contract-1",
        "escalation": escalation,
        "escalation_timestamp": "2026-02-22T12:00:00Z",
        "emitted_at": "2026-02-22T12:00:05Z",
        "dedup_key": "demo-loop:health_critical",
        "idempotency_key": "demo-loop:health_critical:trigger:2026-02-22T12:00:00Z",
        "run_id": "run-123",
        "reason_codes": ("ingest_stale",),
        "summary": "loop demo-loop is critical: ingest_stale",
    }
    unknown = set(overrides) - {f.name for f in attrs.fields(AlertEvent)}
    if unknown:
        raise TypeError(f"make_event() got unknown fields: {sorted(unknown)}")
    fields.update(overrides)
    if "reason_codes" in overrides:
        fields["reason_codes"] = tuple(overrides["reason_codes"])
    return AlertEvent(**fields)


def event_with_local_paths(**overrides: Any) -> AlertEvent:
    """An event whose escalation still carries absolute paths of a (fake) machine.

    Every path lives under :data:`LOCAL_PATH_PROBE`: top-level values, nested objects,
    lists and free text. A sink must not put any of them on the wire (DECISIONS Q-19).
    """
    ops = f"{_PROBE_REPO}/.superloop/ops-manager/demo-loop"
    escalation = dict(make_event().escalation)
    escalation.update(
        {
            "repoPath": _PROBE_REPO,
            "stateFile": f"{ops}/state.json",
            "cursorFile": f"{ops}/cursor.json",
            "healthFile": f"{ops}/health.json",
            "files": {"nested": [f"{ops}/telemetry/reconcile.jsonl", "relative/ok.txt"]},
            "message": f"could not read {ops}/heartbeat.json: permission denied",
        }
    )
    fields: dict[str, Any] = {"escalation": escalation}
    fields.update(overrides)
    return make_event(**fields)
