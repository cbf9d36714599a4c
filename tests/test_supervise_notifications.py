"""The supervisor's alert notification counter, in process: how it reads the alert
telemetry stream through ``store.Stream`` between ticks."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ops_manager.engine.supervise import SuperviseSettings, Supervisor
from ops_manager.store import Position, Stream
from tests.fleet_fixtures import make_fleet_repo


def test_notification_counter_reads_the_alert_stream_once(tmp_path: Path) -> None:
    """The supervisor's notification counter, across a torn line, a truncation, a
    replacement and a missing stream: every complete row after the first look counts
    once, and nothing before it (a replacement that continues the stream is growth)."""
    sup = Supervisor(SuperviseSettings(repo=make_fleet_repo(tmp_path / "fleet", ["loop-a"])))

    def count(status: str) -> float:
        labels = {"sink": "hook", "outcome": status}
        value = sup.metrics.registry.get_sample_value(
            "ops_manager_alert_notifications_total", labels
        )
        return value or 0.0

    def row(status: str) -> bytes:
        return json.dumps({"sinks": [{"id": "hook", "status": status}]}).encode() + b"\n"

    alerts = Stream(tmp_path / "alerts.jsonl")
    pos = alerts.position_at_end()  # missing: the start
    assert pos == Position() and sup._count_notifications(alerts, pos) == pos
    alerts.path.write_bytes(row("old") + row("old")[:9])  # a torn row at the first look
    pos = alerts.position_at_end()
    assert count("old") == 0 and pos.line_offset == 1
    with open(alerts.path, "ab") as handle:
        handle.write(row("old")[9:] + b"not json\n\n" + row("success") + row("failed")[:5])
    pos = sup._count_notifications(alerts, pos)
    assert (count("old"), count("success"), count("failed")) == (1, 1, 0)
    assert sup._count_notifications(alerts, pos) == pos  # nothing new: nothing counted
    with open(alerts.path, "ab") as handle:
        handle.write(row("failed")[5:])
    pos = sup._count_notifications(alerts, pos)
    assert (count("success"), count("failed")) == (1, 1)
    # truncated, then replaced by a longer file: not re-counted, counting resumes at the end
    alerts.path.write_bytes(row("success"))
    pos = sup._count_notifications(alerts, pos)
    assert count("success") == 1 and pos == alerts.position_at_end()
    other = tmp_path / "next.jsonl"
    other.write_bytes(row("failed") + row("success") * 5)  # does not continue it
    os.replace(other, alerts.path)
    pos = sup._count_notifications(alerts, pos)
    assert (count("success"), count("failed")) == (1, 1) and pos.line_offset == 6
    with open(alerts.path, "ab") as handle:
        handle.write(row("failed"))
    pos = sup._count_notifications(alerts, pos)
    assert (count("success"), count("failed")) == (1, 2)
    alerts.path.unlink()  # gone: kept, looked at again next tick
    assert sup._count_notifications(alerts, pos) == pos
