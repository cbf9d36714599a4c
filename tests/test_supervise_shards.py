"""``supervise --shard K/N``: three real supervisors split one fleet; a killed one is seen."""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

from ops_manager.engine.supervise_shards import owner
from ops_manager.store import FleetPaths
from tests.fleet_fixtures import make_fleet_repo
from tests.service_process import service_command
from tests.supervise_process import SuperviseProcess

LOOPS = [f"loop-{i:02d}" for i in range(12)]


def _fleet_status(repo: Path) -> dict[str, object]:
    done = subprocess.run(
        [*service_command(), "fleet-status", "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_rendezvous_owner_is_stable_and_moves_few_loops_when_n_grows() -> None:
    ids = [f"loop-{i}" for i in range(2000)]
    three = [owner(i, 3) for i in ids]
    assert three == [owner(i, 3) for i in ids]
    assert all(600 < three.count(k) < 740 for k in range(3))
    moved = sum(1 for i, k in zip(ids, three, strict=True) if owner(i, 4) != k)
    # only the loops the new shard takes move (about 1/4), never a reshuffle
    assert 400 < moved < 600
    assert all(owner(i, 4) == 3 for i, k in zip(ids, three, strict=True) if owner(i, 4) != k)


def test_three_shards_are_disjoint_and_complete_and_a_dead_one_is_reported(
    tmp_path: Path,
) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", LOOPS)
    shards_dir = FleetPaths.for_repo(repo).fleet_dir / "shards"
    with ExitStack() as stack:
        sups = [
            stack.enter_context(
                SuperviseProcess(repo, args=["--interval", "1", "--shard", f"{k}/3"]).running()
            )
            for k in range(3)
        ]
        for sup in sups:
            sup.wait_for(lambda ticks: len(ticks) >= 1)
        owned: list[set[str]] = []
        for k in range(3):
            state = json.loads((shards_dir / f"{k}-of-3.state.json").read_text())
            owned.append({r["loopId"] for r in state["results"]})
            assert owned[k] == {i for i in LOOPS if owner(i, 3) == k}
        assert set().union(*owned) == set(LOOPS)
        assert sum(len(o) for o in owned) == len(LOOPS)
        # no shard writes the fleet's own state.json
        assert not FleetPaths.for_repo(repo).state_file.exists()

        status = _fleet_status(repo)
        shards = status["shards"]
        assert isinstance(shards, dict)
        assert (shards["liveShardCount"], shards["unreconciledLoops"]) == (3, [])
        fleet = status["fleet"]
        assert isinstance(fleet, dict) and fleet["loopCount"] == len(LOOPS)

        sups[1].kill()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shards = _fleet_status(repo)["shards"]
            assert isinstance(shards, dict)
            if shards["liveShardCount"] == 2:
                break
            time.sleep(0.5)
        assert shards["liveShardCount"] == 2
        assert shards["unreconciledLoops"] == sorted(owned[1])
        dead = [s for s in shards["shards"] if not s["live"]]
        assert [s["shard"] for s in dead] == ["1/3"]


def test_a_second_supervisor_of_the_same_shard_is_refused(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", LOOPS[:3])
    with SuperviseProcess(repo, args=["--interval", "5", "--shard", "0/2"]).running() as sup:
        sup.wait_for(lambda ticks: len(ticks) >= 1)
        other = SuperviseProcess(repo, args=["--once", "--shard", "1/2"])
        with other.running():
            assert other.wait(timeout=60) == 0  # another shard is fine
        same = subprocess.run(
            [*service_command(), "supervise", "--repo", str(repo), "--shard", "0/2", "--once"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert same.returncode == 1
        assert same.stderr.startswith("error: another supervisor is already running")
