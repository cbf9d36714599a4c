"""CPU of whole ``ops-manager`` processes against their floors, measured in the same run.

Issue 14's three figures, as CPU seconds (user+sys) of child processes, the steadier figure
on a shared machine, with bytecode cached as in an installed deployment:

- cold ``reconcile`` of N events (default 100k) / an orjson parse of each line of the same
  file (when orjson is importable; the stdlib ``json.loads`` loop is printed too);
- ``reconcile`` of +10 events at that history / ``python -c pass``;
- ``status`` on the reconciled loop / ``python -c pass``.

Medians of several samples. Wall-clock is never asserted anywhere; this prints figures.

    .venv/bin/python bench/ratios.py            # 100k events, ~1 min
    .venv/bin/python bench/ratios.py --events 20000 --samples 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reconcile as B

BIN = Path(sys.executable).parent
CLI = BIN / "ops-manager"


def main() -> int:
    """Print the figures and ratios; exit 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="history size (default 100k)")
    ap.add_argument("--samples", type=int, default=9, help="samples per figure (default 9)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ops-ratios-"))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pyc")
    env["OPS_MANAGER_TRACE_ID"] = "bench"

    def cpu(cmd: list[str]) -> float:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"failed: {cmd}")
        return usage.ru_utime + usage.ru_stime

    def median(f: Callable[[], float], n: int = args.samples) -> float:
        f()  # warm: bytecode, page cache
        return statistics.median(f() for _ in range(n))

    try:
        template = work / "template"
        template.mkdir()
        repo, stream = B.make_repo(template, args.events)
        events = B.events_file(repo)
        py = str(BIN / "python")
        floor = median(lambda: cpu([py, "-c", "pass"]))
        parse = "for line in open({!r}, 'rb'): {}.loads(line)"
        stdlib = median(
            lambda: cpu([py, "-c", f"import json\n{parse.format(str(events), 'json')}"]), 3
        )
        has_orjson = subprocess.run([py, "-c", "import orjson"], env=env).returncode == 0
        orjson = (
            median(
                lambda: cpu([py, "-c", f"import orjson\n{parse.format(str(events), 'orjson')}"]), 5
            )
            if has_orjson
            else None
        )

        def cold() -> float:
            target = work / "cold"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(template, target)
            return cpu([str(CLI), "reconcile", "--repo", str(target), "--loop", B.LOOP])

        cold_cpu = median(cold, 5)
        hist = work / "hist"
        shutil.copytree(template, hist)
        cpu([str(CLI), "reconcile", "--repo", str(hist), "--loop", B.LOOP])

        def incremental() -> float:
            with open(B.events_file(hist), "ab") as handle:
                handle.write(stream.next_lines(10))
            B.refresh_runtime_files(hist, stream)
            return cpu([str(CLI), "reconcile", "--repo", str(hist), "--loop", B.LOOP])

        inc_cpu = median(incremental)
        status_cpu = median(
            lambda: cpu([str(CLI), "status", "--repo", str(hist), "--loop", B.LOOP])
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = f"{args.events // 1000}k" if args.events >= 1000 else str(args.events)
    rows = [("python -c pass", floor, "(floor)"), (f"stdlib json parse {n}", stdlib, "")]
    if orjson is not None:
        rows.append((f"orjson parse {n}", orjson, "(floor)"))
        rows.append((f"cold reconcile {n}", cold_cpu, f"{cold_cpu / orjson:.2f}x orjson (<= 2x)"))
    else:
        note = f"{cold_cpu / stdlib:.2f}x stdlib json (orjson not installed)"
        rows.append((f"cold reconcile {n}", cold_cpu, note))
    rows.append((f"+10 events @ {n}", inc_cpu, f"{inc_cpu / floor:.2f}x pass (<= 3x)"))
    rows.append(("status", status_cpu, f"{status_cpu / floor:.2f}x pass (<= 3x)"))
    for name, seconds, note in rows:
        print(f"{name:<26}{seconds * 1000:8.1f} ms  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
