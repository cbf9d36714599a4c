"""Tables for people: rows in, text out (pure functions, no I/O, no clock).

Every table is sorted worst-first and ends with a one-line summary such as
``3 loops: 1 critical, 1 degraded, 1 healthy``. The state is always written out as a word;
colour (only when the caller says so) merely repeats it. Ages are computed between two
timestamps of the same document (``generatedAt`` and the artifact's own time), never from
the wall clock, so the output of a given document is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ops_manager._timefmt import parse_ts

#: lower = worse; anything unlisted sorts between "unknown" and the good states
_RANK = {
    "critical": 0,
    "failed": 0,
    "fail": 0,
    "differs": 0,
    "degraded": 1,
    "ambiguous": 1,
    "partial_failure": 1,
    "missing": 1,
    "not_rebuildable": 2,
    "pending_operator_confirmation": 2,
    "unknown": 3,
    "skip": 4,
    "disabled": 4,
    "suppressed": 4,
    "healthy": 6,
    "success": 6,
    "match": 6,
    "pass": 6,
    "deliver": 6,
    "enabled": 6,
    "restored": 6,
}
_COLOR = {0: "\x1b[31m", 1: "\x1b[33m", 2: "\x1b[33m", 6: "\x1b[32m"}
_RESET = "\x1b[0m"


def rank(state: str) -> int:
    """Sort key of a state word: critical/failed first, healthy/ok last."""
    return _RANK.get(state, 5)


def fmt_age(seconds: float | int | None) -> str:
    """``45s``, ``12m05s``, ``3h20m``, ``2d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def age_between(now: Any, then: Any) -> int | None:
    """Seconds from timestamp ``then`` to ``now`` (both ISO strings); ``None`` if unparsable."""
    if not isinstance(now, str) or not isinstance(then, str):
        return None
    a, b = parse_ts(now), parse_ts(then)
    if a is None or b is None:
        return None
    return int(a - b)


def summary(noun: str, states: Iterable[str]) -> str:
    """``3 loops: 1 critical, 1 degraded, 1 healthy`` (states worst-first, counts > 0).

    ``noun`` is singular; an ``s`` is added unless the total is 1.
    """
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    total = sum(counts.values())
    parts = [f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (rank(kv[0]), kv[0]))]
    return f"{total} {noun}{'' if total == 1 else 's'}: " + (", ".join(parts) if parts else "none")


def grid(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    state_col: int | None = None,
    color: bool = False,
) -> str:
    """Left-aligned columns two spaces apart; the ``state_col`` cell coloured when ``color``.

    Widths are measured on the plain text so colour never shifts a column.
    """
    table = [list(headers)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(table):
        cells = []
        for i, cell in enumerate(row):
            padded = cell if i == len(row) - 1 else cell.ljust(widths[i])
            code = _COLOR.get(rank(cell)) if color and index > 0 and i == state_col else None
            cells.append(f"{code}{padded}{_RESET}" if code else padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _first(values: Any, fallback: str) -> str:
    """The first reason and how many more: tables stay one screen wide."""
    if not isinstance(values, list) or not values:
        return fallback
    return str(values[0]) + (f" (+{len(values) - 1})" if len(values) > 1 else "")


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _metric(health: Mapping[str, Any] | None, key: str) -> Any:
    metrics = (health or {}).get("metrics")
    return metrics.get(key) if isinstance(metrics, Mapping) else None


def _lag(value: Any) -> str:
    return (
        fmt_age(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"
    )


_LOOP_HEADERS = ("LOOP", "LIFECYCLE", "HEALTH", "REASONS", "INGEST LAG", "RECONCILED", "PENDING")


def _loop_table(
    rows: list[tuple[str, str, str, str, str, str, str]], *, color: bool, extra: str = ""
) -> str:
    rows.sort(key=lambda r: (rank(r[2]), r[0]))
    body = grid(_LOOP_HEADERS, rows, state_col=2, color=color)
    return body + summary("loop", (r[2] for r in rows)) + extra + "\n"


def status_table(status: Mapping[str, Any], *, color: bool = False) -> str:
    """``status``: one row for the loop (health, lag, reconcile age, last intent if pending)."""
    return loops_table([status], color=color)


def loops_table(statuses: Sequence[Mapping[str, Any]], *, color: bool = False) -> str:
    """Several ``status`` documents (e.g. one per sprite repo) as one worst-first table."""
    return _loop_table([_status_row(s) for s in statuses], color=color)


def _status_row(status: Mapping[str, Any]) -> tuple[str, str, str, str, str, str, str]:
    health = status.get("health") or {}
    control = status.get("control") or {}
    reconcile = status.get("reconcile") or {}
    pending = (
        f"{control.get('lastIntent')} ({control.get('lastStatus')})"
        if str(control.get("lastStatus") or "").startswith("pending")
        else "0"
    )
    return (
        _text((status.get("source") or {}).get("loopId")),
        _lifecycle_cell(status.get("lifecycle") or {}),
        _text(health.get("status") or "unknown"),
        _text(health.get("reasonCodes")),
        _lag(_metric(health, "ingestLagSeconds")),
        _reconciled(
            reconcile.get("lastStatus"), status.get("generatedAt"), reconcile.get("lastTimestamp")
        ),
        pending,
    )


def _lifecycle_cell(lifecycle: Mapping[str, Any]) -> str:
    """The lifecycle state, with the run's posture when it says more (``running (presumed
    dead)``, ``stopped (finished)``): lifecycle alone says ``running`` for a dead run."""
    state = _text(lifecycle.get("state"))
    posture = lifecycle.get("posture")
    if isinstance(posture, str) and posture and posture != state:
        return f"{state} ({posture.replace('_', ' ')})"
    return state


def attention(status: Mapping[str, Any]) -> str | None:
    """One sentence for a person when the loop needs attention, else ``None``.

    Unhealthy health comes first (with the heartbeat age when that is the reason); a
    healthy loop waiting for an approval needs a person too.
    """
    loop = _text((status.get("source") or {}).get("loopId"))
    repo = _text((status.get("source") or {}).get("repoPath"))
    lifecycle = _text((status.get("lifecycle") or {}).get("state"))
    health = status.get("health") or {}
    state = str(health.get("status") or "unknown")
    dead = (status.get("lifecycle") or {}).get("presumedDead")
    if isinstance(dead, Mapping):
        lag = dead.get("ingestLagSeconds")
        quiet = f" {fmt_age(lag)} ago" if isinstance(lag, int) else ""
        return (
            f"{loop} looks dead: state.json still says active, but active-run.json is"
            f" {_text(dead.get('activeRunFile'))} and its last event"
            f" ({_text(dead.get('lastEventName'))}) was{quiet}, with no terminal event;"
            f" health is {state}. Check the sandbox, then cancel it"
            f" (ops-manager control --repo {repo} --loop {loop} --intent cancel)."
        )
    if state != "healthy":
        codes = _text(health.get("reasonCodes"))
        beat = ((status.get("visibility") or {}).get("heartbeat") or {}).get("heartbeatLagSeconds")
        heard = f", last heartbeat {fmt_age(beat)} ago" if isinstance(beat, int) else ""
        return (
            f"{loop} is {state} ({codes}{heard}) although its lifecycle says {lifecycle}:"
            f" check the run, and cancel it if it is dead"
            f" (ops-manager control --repo {repo} --loop {loop} --intent cancel)."
        )
    if lifecycle == "awaiting_approval":
        since = (status.get("lifecycle") or {}).get("awaitingApprovalSince")
        when = f" since {since}" if isinstance(since, str) and since else ""
        return (
            f"{loop} is waiting for an operator's approval{when}"
            f" (ops-manager control --repo {repo} --loop {loop} --intent approve, or reject)."
        )
    return None


def _reconciled(outcome: Any, now: Any, then: Any) -> str:
    age = age_between(now, then)
    if age is None:
        return "-"
    return f"{fmt_age(age)} ago" + ("" if outcome in (None, "success") else f" ({outcome})")


def fleet_status_table(
    doc: Mapping[str, Any],
    *,
    health: Mapping[str, Mapping[str, Any] | None] | None = None,
    intents: Sequence[Mapping[str, Any]] = (),
    color: bool = False,
) -> str:
    """``fleet-status``: one row per loop; ``health`` (loopId -> health.json) adds the ingest
    lag and reconcile age, ``intents`` (the handoff plan) the pending intents per loop."""
    pending: dict[str, int] = {}
    for intent in intents:
        if str(intent.get("status") or "").startswith("pending"):
            loop = str(intent.get("loopId"))
            pending[loop] = pending.get(loop, 0) + 1
    fleet = doc.get("fleet") or {}
    rows = []
    for loop in doc.get("loops") or []:
        loop_id = str(loop.get("loopId"))
        h = (health or {}).get(loop_id)
        when = (h or {}).get("updatedAt") or fleet.get("updatedAt")
        rows.append(
            (
                loop_id,
                _lifecycle_cell(
                    {
                        "state": loop.get("transitionState") or "unknown",
                        "posture": ((h or {}).get("posture") or {}).get("kind"),
                    }
                ),
                _text(loop.get("healthStatus") or "unknown"),
                _text(loop.get("healthReasonCodes") or loop.get("reasonCode")),
                _lag(_metric(h, "ingestLagSeconds")),
                _reconciled(loop.get("reconcileStatus"), doc.get("generatedAt"), when),
                str(pending.get(loop_id, 0)),
            )
        )
    posture = f" (fleet {fleet.get('status')})" if fleet.get("status") else ""
    return _loop_table(rows, color=color, extra=posture)


def fleet_policy_table(state: Mapping[str, Any], *, color: bool = False) -> str:
    """``fleet-policy``: one row per candidate, worst severity first."""
    rows = []
    for c in state.get("candidates") or []:
        auto = c.get("autonomous") or {}
        rows.append(
            (
                _text(c.get("loopId")),
                _text(c.get("category")),
                _text(c.get("severity")),
                _text(c.get("recommendedIntent")),
                _text(c.get("suppressionReason") if c.get("suppressed") else "no"),
                "eligible" if auto.get("eligible") else _first(auto.get("reasons"), "manual"),
            )
        )
    rows.sort(key=lambda r: (rank(r[2]), r[0], r[1]))
    head = ("LOOP", "CATEGORY", "SEVERITY", "INTENT", "SUPPRESSED", "AUTONOMY")
    mode = f" (mode {state.get('mode')})" if state.get("mode") else ""
    return (
        grid(head, rows, state_col=2, color=color)
        + summary("candidate", (r[2] for r in rows))
        + mode
        + "\n"
    )


def fleet_handoff_table(state: Mapping[str, Any], *, color: bool = False) -> str:
    """``fleet-handoff``: one row per intent of the plan (or of the execution)."""
    rows = []
    for i in state.get("intents") or []:
        rows.append(
            (
                _text(i.get("loopId")),
                _text(i.get("intent")),
                _text(i.get("category")),
                _text(i.get("severity")),
                _text(i.get("status")),
                "eligible" if (i.get("autonomous") or {}).get("eligible") else "manual",
            )
        )
    rows.sort(key=lambda r: (rank(r[3]), rank(r[4]), r[0]))
    head = ("LOOP", "INTENT", "CATEGORY", "SEVERITY", "STATUS", "AUTONOMY")
    return (
        grid(head, rows, state_col=3, color=color) + summary("intent", (r[4] for r in rows)) + "\n"
    )


def sink_config_table(document: Mapping[str, Any], *, color: bool = False) -> str:
    """``alert-sink-config``: one row per sink (or the resolved route), enabled first."""
    route = "sinks" not in document
    sinks = document.get("selectedSinks" if route else "sinks") or []
    dispatchable = {str(s.get("id")) for s in document.get("dispatchableSinks") or []}
    rows = []
    for s in sinks:
        env = ", ".join(str(v) for v in (s.get("secretRefs") or {}).values())
        rows.append(
            (
                _text(s.get("id")),
                _text(s.get("type")),
                "enabled" if s.get("enabled") else "disabled",
                *((("yes" if str(s.get("id")) in dispatchable else "no"),) if route else ()),
                _text(s.get("timeoutSeconds")),
                env or "-",
            )
        )
    rows.sort(key=lambda r: (-rank(r[2]), r[0]))
    head = (
        "SINK",
        "TYPE",
        "STATE",
        *(("DISPATCH",) if route else ()),
        "TIMEOUT",
        "SECRET ENV VARS",
    )
    tail = ""
    if route:
        verdict = "dispatch" if document.get("shouldDispatch") and dispatchable else "no dispatch"
        tail = (
            f" (route of {document.get('category')}/{document.get('eventSeverity')}:"
            f" {verdict}, min severity {document.get('minSeverity')})"
        )
    return (
        grid(head, rows, state_col=2, color=color)
        + summary("sink", (r[2] for r in rows))
        + tail
        + "\n"
    )


def route_test_table(results: Sequence[Mapping[str, Any]], *, color: bool = False) -> str:
    """``alert-route-test``: one row per case; failed expectations first."""
    rows = []
    for r in results:
        verdict = r.get("pass")
        rows.append(
            (
                _text(r.get("line")),
                _text(r.get("category")),
                _text(r.get("severity") or r.get("eventSeverity")),
                _text(r.get("decision")),
                _text(r.get("reasonCode")),
                _text(r.get("receivingSinks")),
                "fail" if verdict is False else "pass" if verdict is True else "-",
            )
        )
    rows.sort(key=lambda r: (rank(r[6]), rank(r[3])))
    head = ("LINE", "CATEGORY", "SEVERITY", "DECISION", "REASON", "RECEIVING", "EXPECT")
    states = [r[6] if r[6] != "-" else r[3] for r in rows]
    return grid(head, rows, state_col=6, color=color) + summary("case", states) + "\n"


def rebuild_table(report: Mapping[str, Any], *, color: bool = False) -> str:
    """``rebuild``: one row per projection, differences first."""
    rows = []
    for p in report.get("projections") or []:
        diffs = p.get("differences") or []
        rows.append(
            (
                _text(str(p.get("file", "")).rsplit("/", 1)[-1]),
                _text(p.get("status")),
                _text(p.get("rebuildable")),
                _text(diffs[:3]) + (f" (+{len(diffs) - 3})" if len(diffs) > 3 else ""),
                _clip(_text(p.get("reason"))),
            )
        )
    rows.sort(key=lambda r: (rank(r[1]), r[0]))
    head = ("PROJECTION", "STATUS", "REBUILDABLE", "DIFFERENCES", "NOTE")
    loop = (report.get("source") or {}).get("loopId")
    return (
        grid(head, rows, state_col=1, color=color)
        + summary("projection", (r[1] for r in rows))
        + (f" (loop {loop})" if loop else "")
        + "\n"
    )


def plugins_table(plugins: Sequence[Mapping[str, Any]]) -> str:
    """``plugins``: one row per plugin (name order, nothing to rank)."""
    rows = []
    for p in plugins:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in (p.get("provides") or {}).items())
        rows.append(
            (
                str(p.get("name")),
                p.get("distribution") or "-",
                p.get("version") or "-",
                ", ".join(p.get("hooks") or []) or "-",
                provides or "-",
            )
        )
    kinds = ("built-in" if p.get("builtin") else "installed" for p in plugins)
    head = ("PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS", "PROVIDES")
    return grid(head, rows) + summary("plugin", kinds) + "\n"
