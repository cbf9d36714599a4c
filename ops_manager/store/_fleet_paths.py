"""Where every fleet artifact lives (``fleet.md`` §0.1).

``FLEET = <repo>/.superloop/ops-manager/fleet``, ``FTEL = FLEET/telemetry``. The per-loop
artifacts a fleet command points at (``OPS/state.json`` ...) come from
:class:`~ops_manager.store.LoopPaths`, reachable through :meth:`FleetPaths.loop`.

These are the defaults; a path given on the command line replaces one of them verbatim.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ops_manager.store._paths import LoopPaths


@attrs.frozen
class FleetPaths:
    """Every fleet-level artifact location under one repo."""

    repo: Path

    @classmethod
    def for_repo(cls, repo: Path) -> FleetPaths:
        """Paths for ``repo`` (made absolute; the caller resolves/validates the repo)."""
        return cls(repo=repo.absolute())

    # --- directories ----------------------------------------------------------------------
    @property
    def fleet_dir(self) -> Path:
        """``.superloop/ops-manager/fleet``."""
        return self.repo / ".superloop" / "ops-manager" / "fleet"

    @property
    def telemetry_dir(self) -> Path:
        """``FLEET/telemetry``."""
        return self.fleet_dir / "telemetry"

    @property
    def drills_dir(self) -> Path:
        """``FLEET/drills``."""
        return self.fleet_dir / "drills"

    # --- operator inputs (read-only for every command) ------------------------------------
    @property
    def registry_file(self) -> Path:
        """``FLEET/registry.v1.json``: the fleet registry (operator input)."""
        return self.fleet_dir / "registry.v1.json"

    @property
    def promotion_drill_file(self) -> Path:
        """``FLEET/drills/promotion.v1.json``: drill evidence (operator input)."""
        return self.drills_dir / "promotion.v1.json"

    # --- projections (overwrite) ----------------------------------------------------------
    @property
    def state_file(self) -> Path:
        """``FLEET/state.json``: written by fleet-reconcile."""
        return self.fleet_dir / "state.json"

    @property
    def policy_state_file(self) -> Path:
        """``FLEET/policy-state.json``: written by fleet-policy."""
        return self.fleet_dir / "policy-state.json"

    @property
    def handoff_state_file(self) -> Path:
        """``FLEET/handoff-state.json``: written by fleet-handoff."""
        return self.fleet_dir / "handoff-state.json"

    @property
    def promotion_state_file(self) -> Path:
        """``FLEET/promotion-state.json``: written by promotion-gates."""
        return self.fleet_dir / "promotion-state.json"

    @property
    def promotion_ci_result_file(self) -> Path:
        """``FLEET/promotion-ci-result.json``: written by promotion-ci."""
        return self.fleet_dir / "promotion-ci-result.json"

    @property
    def promotion_ci_summary_file(self) -> Path:
        """``FLEET/promotion-ci-summary.md``: written by promotion-ci."""
        return self.fleet_dir / "promotion-ci-summary.md"

    # --- streams (append) -----------------------------------------------------------------
    @property
    def reconcile_telemetry_file(self) -> Path:
        """``FTEL/reconcile.jsonl``: one row per fleet-reconcile run."""
        return self.telemetry_dir / "reconcile.jsonl"

    @property
    def policy_telemetry_file(self) -> Path:
        """``FTEL/policy.jsonl``: one row per fleet-policy run."""
        return self.telemetry_dir / "policy.jsonl"

    @property
    def policy_history_file(self) -> Path:
        """``FTEL/policy-history.jsonl``: one row per policy candidate (also read back)."""
        return self.telemetry_dir / "policy-history.jsonl"

    @property
    def policy_governance_file(self) -> Path:
        """``FTEL/policy-governance.jsonl``: governance audit events."""
        return self.telemetry_dir / "policy-governance.jsonl"

    @property
    def handoff_telemetry_file(self) -> Path:
        """``FTEL/handoff.jsonl``: handoff plan/execute rows."""
        return self.telemetry_dir / "handoff.jsonl"

    @property
    def promotion_telemetry_file(self) -> Path:
        """``FTEL/promotion.jsonl``: one row per promotion-gates run."""
        return self.telemetry_dir / "promotion.jsonl"

    # --- coordination ---------------------------------------------------------------------
    @property
    def lock_file(self) -> Path:
        """``FLEET/.lock``: serializes read-modify-write cycles on fleet artifacts."""
        return self.fleet_dir / ".lock"

    @property
    def commit_record_file(self) -> Path:
        """``FLEET/.fleet-commit.json``: the commit record of a fleet pass being applied.

        One for every command that writes under the fleet lock (fleet-reconcile,
        fleet-policy, fleet-handoff, promotion-gates, supervise): whichever takes the lock
        next finishes a record a killed holder left behind (``store._commit``).
        """
        return self.fleet_dir / ".fleet-commit.json"

    # --- per-loop pointers ----------------------------------------------------------------
    def loop(self, loop_id: str) -> LoopPaths:
        """The per-loop paths of ``loop_id`` (validated: it cannot escape the repo)."""
        return LoopPaths.for_loop(self.repo, loop_id)

    def loop_files(self, loop_id: str) -> dict[str, str]:
        """The drill-down pointers of one loop, in the contract's ``files`` key order."""
        paths = self.loop(loop_id)
        return {
            "stateFile": str(paths.state_file),
            "healthFile": str(paths.health_file),
            "cursorFile": str(paths.cursor_file),
            "reconcileTelemetryFile": str(paths.reconcile_telemetry_file),
        }
