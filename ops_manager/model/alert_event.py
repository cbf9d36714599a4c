"""The value a sink is handed: one notification to deliver.

Part of the sink contract, public as ``ops_manager.sinks.AlertEvent`` (``sinks._contract``
and the ``sinks`` package re-export this same class, and it says ``ops_manager.sinks`` in
``__module__``). It lives in the model layer because a reducer builds it
(``reducers/alerts/_events.py``), and reducers import only the model.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class AlertEvent:
    """One notification to deliver, as data. Identical for every sink of one escalation."""

    #: ``trigger`` for a new problem, ``resolve`` when its condition cleared
    action: str
    loop_id: str
    category: str
    #: alert severity: info | warning | critical
    severity: str
    trace_id: str
    #: the escalation record (compact-JSON-able), absolute local paths removed
    escalation: dict[str, Any]
    escalation_timestamp: str | None
    emitted_at: str
    #: stable for one (loop, category) episode: the PagerDuty dedup_key, the Slack thread key
    dedup_key: str
    #: stable for one notification across every retry and replay
    idempotency_key: str
    run_id: str | None = None
    #: the repo's directory name (never an absolute local path, DECISIONS Q-19)
    repo_name: str | None = None
    reason_codes: tuple[str, ...] = ()
    summary: str = ""


#: public as ``ops_manager.sinks.AlertEvent`` (what docs and reprs of the class show)
AlertEvent.__module__ = "ops_manager.sinks"
