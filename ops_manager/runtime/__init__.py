"""Reading Superloop runtime artifacts into envelopes (``loop.md`` §1-§3.2).

- :mod:`._events`: the incremental, fingerprinted ``events.jsonl`` reader;
- :mod:`._files`: the runtime's JSON files and the last event;
- :mod:`._envelopes`: ``loop_run_snapshot`` / ``loop_run_event`` envelopes;
- :mod:`._poll`: ``poll-events`` (cursor read / verify / write) as one call.
"""

from ops_manager.runtime._envelopes import (
    SCHEMA_VERSION,
    SEQUENCE_SOURCE,
    artifact_ref,
    build_event_envelope,
    build_snapshot,
    envelope_source,
)
from ops_manager.runtime._events import (
    EventLine,
    EventReader,
    StreamPosition,
    count_newlines,
    loads_json,
    position_for_line_offset,
    verify_position,
)
from ops_manager.runtime._files import (
    RuntimeFiles,
    check_runtime_layout,
    last_event,
    latest_summary_entry,
    read_optional_json,
    read_runtime_files,
)
from ops_manager.runtime._poll import PollResult, poll_events, read_cursor_start

__all__ = [
    "SCHEMA_VERSION",
    "SEQUENCE_SOURCE",
    "EventLine",
    "EventReader",
    "PollResult",
    "RuntimeFiles",
    "StreamPosition",
    "artifact_ref",
    "build_event_envelope",
    "build_snapshot",
    "check_runtime_layout",
    "count_newlines",
    "envelope_source",
    "last_event",
    "latest_summary_entry",
    "loads_json",
    "poll_events",
    "position_for_line_offset",
    "read_cursor_start",
    "read_optional_json",
    "read_runtime_files",
    "verify_position",
]
