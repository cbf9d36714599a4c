"""SIGKILL a reconcile pass at every commit point (each fsync and rename), for real.

The history: pass 1 (cold) over a realistic loop, 3 new events, pass 2 — the pass under
test —, 2 new events, pass 3. Pass 2 runs through the real CLI under
``strace -f -e inject=fsync:signal=KILL:when=K`` (then the same for every rename), for
every K the uninterrupted pass 2 reaches; passes 1 and 3 run normally. Each interrupted
history must end exactly like a history a kill may legitimately leave:

- pass 2 committed (``p1 p2 p3``, the uninterrupted history), or
- pass 2 did not commit, and pass 3 did its work (``p1 p3``).

Every pass dispatches to a webhook sink on a loopback receiver, and pass 2 is the one with
something to page (an ambiguous cancel recorded just before it: ``health_degraded``), so two
more outcomes are legitimate: pass 2 committed and the next pass dispatched its page, and
pass 2 committed and sent the page, then died before recording it (the next pass finds the
delivery in the outbox and records it without sending again).

Never anything else: no re-ingest, no double-counted pass, no extra or lost escalation, no
torn file, no page lost or sent twice. The CLI runs on the real clock, so the comparison
normalises what depends on when a pass ran (timestamps, durations, ages, digests of rows
that hold a time); counts, offsets, folds, reason codes and every row are compared as they
are.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.testing import LoopbackReceiver
from tests.crash_sweep import (
    COMMIT_CALLS,
    ISO_IN,
    STRACE,
    count_commit_calls,
    kill_at,
    nearest,
    norm,
    strace_prefix,
)
from tests.runtime_fixtures import append_events, event, make_runtime_repo

pytestmark = pytest.mark.skipif(STRACE is None, reason="strace (Debian's strace) is not installed")

CLI = Path(sys.executable).parent / "ops-manager"
LOOP = "demo-loop"
HOURS_AGO = utc_now_epoch() - 3 * 3600


def _events(names: list[str], start: int) -> list[dict[str, Any]]:
    return [
        event(name, format_ts(HOURS_AGO + start + i), iteration=1, role="implementer")
        for i, name in enumerate(names)
    ]


def _pass(
    repo: Path, trace: str, strace_args: list[str] | None = None, *, alerts: bool = True
) -> int:
    config = repo.parent / f"{repo.name}-sinks.json"
    env = {**os.environ, "OPS_MANAGER_TRACE_ID": trace, "SWEEP_WEBHOOK_URL": _url(repo)}
    cmd = [
        str(CLI),
        "reconcile",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--trace-id",
        trace,
        # the events are hours old (a dead run left active): lag thresholds past that, so
        # pass 2's page is the ambiguous cancel's, not a stale ingest every pass shares
        "--degraded-ingest-lag-seconds",
        "86400",
        "--critical-ingest-lag-seconds",
        "172800",
        "--alerts-enabled",
        "true" if alerts else "false",
        "--alert-config-file",
        str(config),
    ]
    if not config.exists():
        config.write_text(json.dumps(SINKS), encoding="utf-8")
    if strace_args is not None:
        cmd = [*strace_prefix(strace_args), *cmd]
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=60, check=False)
    return proc.returncode


SINKS = {
    "schemaVersion": "v1",
    "defaultMinSeverity": "warning",
    "sinks": {
        "sweep-webhook": {
            "enabled": True,
            "type": "webhook",
            "urlEnv": "SWEEP_WEBHOOK_URL",
            "timeoutSeconds": 5,
        }
    },
    "routing": {
        "defaultSinks": ["sweep-webhook"],
        "categorySeverity": {"health_degraded": "warning", "health_critical": "critical"},
        "routes": [],
    },
}
_RECEIVER: list[LoopbackReceiver] = []


def _url(repo: Path) -> str:
    """Each history pages its own path on the one receiver."""
    return _RECEIVER[0].url_for(f"/hooks/{repo.name}")


def _pages(repo: Path) -> list[tuple[str, str]]:
    """What the receiver accepted for ``repo``'s history: (category, dedup key), in order.

    The dedup key names the escalation's line (``...:L<n>``) and its time; the time is
    normalised like every other.
    """
    pages = []
    for r in _RECEIVER[0].accepted():
        if r.path == f"/hooks/{repo.name}":
            event = r.json()["event"]
            key = ISO_IN.sub("<time>", str(event["dedupKey"]))
            pages.append((str(event["category"]), key))
    return pages


def _before_pass_2(root: Path) -> Path:
    """A loop after pass 1, with pass 2's events appended (a dead run that stays active,
    events three hours old, an ambiguous intent on record)."""
    repo = make_runtime_repo(
        root, events=_events(["loop_start", "iteration_start", "role_start"], 0)
    ).resolve()
    assert _pass(repo, "p1") in (0, 1)
    ops = repo / ".superloop/ops-manager" / LOOP
    (ops / "intents.jsonl").write_text(
        json.dumps({"intent": "cancel", "status": "ambiguous"}) + "\n", encoding="utf-8"
    )
    append_events(repo, LOOP, _events(["role_end", "tests_start", "tests_end"], 10))
    return repo


def _after(repo: Path) -> dict[str, Any]:
    """Pass 3 (2 more events), then every artifact, normalised."""
    append_events(repo, LOOP, _events(["role_start", "role_end"], 20))
    assert _pass(repo, "p3") in (0, 1)
    ops = repo / ".superloop/ops-manager" / LOOP
    out: dict[str, Any] = {}
    for path in sorted(ops.rglob("*")):
        if not path.is_file() or path.name.endswith(".lock"):
            continue
        name = str(path.relative_to(ops))
        text = path.read_text(encoding="utf-8").replace(str(repo), "R")
        if name.endswith(".jsonl"):
            assert text.endswith("\n"), f"{name}: torn last line"
            out[name] = [norm(json.loads(line)) for line in text.splitlines()]
        else:
            assert text, f"{name}: empty"
            out[name] = norm(json.loads(text))
    out["<pages>"] = _pages(repo)
    return out


def _count(repo: Path, tmp: Path) -> dict[str, int]:
    """Run the uninterrupted pass 2 under strace and count its commit calls by kind."""
    return count_commit_calls(lambda args: _pass(repo, "p2", args), tmp / "count.log")


@pytest.fixture(autouse=True)
def _receiver() -> Iterator[None]:
    with LoopbackReceiver(name="sweep-webhook") as receiver:
        _RECEIVER.append(receiver)
        try:
            yield
        finally:
            _RECEIVER.clear()


def test_a_sigkill_at_any_commit_point_leaves_the_previous_pass_or_the_next(
    tmp_path: Path,
) -> None:
    template = _before_pass_2(tmp_path / "template")
    assert _pages(template) == [], "pass 1 has nothing to page"

    made: list[str] = []

    def fresh(name: str) -> Path:
        # same-length paths: rows record the repo path, and stream positions count its bytes
        made.append(name)
        dest = tmp_path / f"h{len(made):03d}"
        shutil.copytree(template, dest, symlinks=True)
        return dest

    counted = fresh("counted")
    counts = _count(counted, tmp_path)
    undispatched = fresh("undispatched")
    assert _pass(undispatched, "p2", alerts=False) in (0, 1)
    # the three histories a kill may legitimately leave
    histories = {
        "committed": _after(counted),  # p1 p2 p3, uninterrupted
        "committed, dispatched by the next pass": _after(undispatched),
        "not committed": _after(fresh("skipped")),  # p1 p3
    }
    assert len({json.dumps(h, sort_keys=True) for h in histories.values()}) == 3
    # and the fourth: pass 2 committed and sent the page, then died before its dispatch
    # committed; pass 3 found the delivery in the outbox (the write-ahead log of sends,
    # which names the pass that sent) and recorded it without sending again
    sent_then_killed = copy.deepcopy(histories["committed, dispatched by the next pass"])
    for row in sent_then_killed["alert-outbox.jsonl"]:
        row["traceId"] = "p2"
    histories["sent by pass 2, recorded by the next pass"] = sent_then_killed
    for name, history in histories.items():
        # the page is sent once in each: by pass 2, or by pass 3 in its place
        assert [c for c, _ in history["<pages>"]] == ["health_degraded"], (name, history)
    assert counts["fsync"] >= 1 and counts["rename"] >= 1, counts

    divergent: list[str] = []
    outcomes = dict.fromkeys(histories, 0)
    for call in COMMIT_CALLS:
        for k in range(1, counts[call] + 1):
            repo = fresh(f"{call}-{k}")
            rc = _pass(repo, "p2", kill_at(call, k))
            assert rc != 0, f"{call} #{k}: the pass was not killed"
            got = _after(repo)
            match = [name for name, history in histories.items() if got == history]
            if match:
                outcomes[match[0]] += 1
            else:
                divergent.append(f"{call} #{k}: {nearest(got, histories)}")
    total = sum(counts.values())
    print(f"\ncommit points covered: {total} ({counts}); outcomes: {outcomes}")
    assert not divergent, divergent
    assert sum(outcomes.values()) == total
