"""The console's JSON API: functions from a repo's artifacts to JSON, independent of HTTP.

Every number the page shows comes from the same library calls the CLI uses:

- per loop: :func:`ops_manager.engine.status.loop_status` (what ``ops-manager status``
  prints), plus the recent rows of the loop's own streams (``events.jsonl``,
  ``OPS/escalations.jsonl``, ``TEL/alerts.jsonl``, ``OPS/alert-outbox.jsonl`` folded with
  :func:`ops_manager.engine.alert_outbox.outbox_entries`, ``TEL/reconcile.jsonl``), read from the
  end of each file so a long history costs nothing;
- fleet: the fleet-status object of ``fleet.md`` §2.4 built by
  :func:`ops_manager.engine.fleet_status.fleet_status`, the registry through
  :func:`ops_manager.engine.fleet_registry.load_registry`; when the fleet was never
  reconciled the posture comes from the loops' own health projections, and when the fleet
  commands fail closed (an invalid registry) from ``fleet/state.json``, with a warning;
- backlog: ``fleet/handoff-state.json`` as ``fleet-handoff`` wrote it;
- the backlog confirm action runs the same handoff path as
  ``ops-manager fleet-handoff --execute --confirm --intent-id ID --by B --note N``.

The API never writes an artifact except through that handoff call. Loop ids are checked
with :func:`~ops_manager.store.validate_loop_id` before any path is built.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from pathlib import Path

from ops_manager._timefmt import utc_now_epoch
from ops_manager.console._api_backlog import BacklogViews
from ops_manager.console._api_common import HEALTH_STATES as HEALTH_STATES
from ops_manager.console._api_common import JSON as JSON
from ops_manager.console._api_common import LAG_SAMPLES as LAG_SAMPLES
from ops_manager.console._api_common import MAX_BY_CHARS as MAX_BY_CHARS
from ops_manager.console._api_common import MAX_INTENT_ID_CHARS as MAX_INTENT_ID_CHARS
from ops_manager.console._api_common import MAX_NOTE_CHARS as MAX_NOTE_CHARS
from ops_manager.console._api_common import PENDING as PENDING
from ops_manager.console._api_common import RECENT_EVENTS as RECENT_EVENTS
from ops_manager.console._api_common import RECENT_ROWS as RECENT_ROWS
from ops_manager.console._api_common import SLO_WINDOW as SLO_WINDOW
from ops_manager.console._api_common import ApiResponse as ApiResponse
from ops_manager.console._api_common import error as error
from ops_manager.console._api_common import fleet_dir as fleet_dir
from ops_manager.console._api_common import recent_records as recent_records
from ops_manager.console._api_fleet import FleetViews
from ops_manager.console._api_rows import delivery_outcome as delivery_outcome
from ops_manager.console._api_slo import SloViews
from ops_manager.console._api_sources import ConfirmRequest as ConfirmRequest
from ops_manager.console._api_sources import fleet_status_object as fleet_status_object
from ops_manager.console._api_sources import registry_loop_ids as registry_loop_ids
from ops_manager.console._api_sources import run_handoff_confirm as run_handoff_confirm

# --- the API -----------------------------------------------------------------------------------


class ConsoleApi(SloViews, FleetViews, BacklogViews):
    """The endpoints, for one repo. Thread-safe; holds only the ingest-lag samples."""

    def __init__(
        self,
        repo: Path,
        *,
        summary_window: int = 50,
        clock: Callable[[], int] = utc_now_epoch,
    ) -> None:
        self.repo = repo
        self.summary_window = summary_window
        self.clock = clock
        self._lag: dict[str, collections.deque[tuple[str, float]]] = {}
        self._lag_lock = threading.Lock()
        self._confirm_lock = threading.Lock()
