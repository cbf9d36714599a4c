"""``ops-manager demo`` supervises the demo fleet for a few ticks, then stops."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.service_process import service_command


def test_demo_runs_supervise_for_three_ticks_and_prints_the_metrics_url(tmp_path: Path) -> None:
    done = subprocess.run(
        [*service_command(), "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"metrics: http://127\.0\.0\.1:\d+/metrics", out)
    ticks = re.findall(r"tick (\d): 3 loops over sprite_service .* 3 ok / 0 failed", out)
    assert ticks == ["1", "2", "3"]
    assert "health: 1 critical, 2 healthy" in out
    assert "ops_manager_supervise_ticks_total 3.0" in out
    assert 'ops_manager_loops{health="critical"} 1.0' in out
    # the fleet the demo supervised, and its telemetry stream
    fleet = tmp_path / "demo" / "fleet" / ".superloop" / "ops-manager" / "fleet"
    assert (fleet / "state.json").is_file()
    assert len((fleet / "telemetry" / "supervise.jsonl").read_text().splitlines()) == 3
