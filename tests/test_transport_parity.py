"""THE PARITY TEST: ``local`` and ``sprite_service`` must see the same loop the same way.

Two identical copies of one runtime repo are driven through the same script of runtime
changes. Copy A is reconciled/controlled with the ``local`` transport, copy B through a REAL
``ops-manager sprite-service`` process serving B (the upstream test layout: the service's
repo is the caller's checkout). After every pass everything the manager wrote must be equal,
apart from:

- transport fields (``transport``, ``transport.mode``, ``command``, ``commandOutput``,
  ``execution.output``, ``execution.replayed``);
- timestamps / durations (each side reads its own clock), and lags computed from them,
  which may differ by the second boundary the two passes straddle (compared within 3 s);
- the repo path (A vs B) and the cursor's ``position`` (local keeps a byte offset and a
  fingerprint; over HTTP there is only a line offset);
- on a FAILED pass, the failure code and message: the same event is ``events_unavailable``
  locally and ``service_request_failed`` over HTTP (the HTTP transport only knows that the
  service refused the request; §7.4 item 45 has the same split for ``snapshot_unavailable``).
  Health status, reason codes and reasons are still equal.

Passes: baseline, appended events, a stale heartbeat, ``--max-events`` paging, a torn (still
being written) final line, divergence, truncation without and with ``--from-start``, then
cancel / approve / reject through both transports against the stub Superloop CLI.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_manager.cli import main
from tests.runtime_fixtures import (
    append_events,
    append_raw,
    event,
    events_path,
    make_runtime_repo,
    pending_approval,
    realistic_run_events,
    runtime_heartbeat,
    ts,
    write_pretty,
)
from tests.service_process import ServiceProcess, stub_calls, stub_superloop_env

LOOP = "demo-loop"
BIG = "999999999"
#: the same retry settings on both sides (local records them too)
COMMON = ("--retry-attempts", "2", "--retry-backoff-seconds", "0")
TIME_KEYS = frozenset(
    {
        "timestamp",
        "updatedAt",
        "generatedAt",
        "emittedAt",
        "startedAt",
        "observedAt",
        "lastSuccessAt",
        "lastFailureAt",
        "sequenceUpdatedAt",
        "durationSeconds",
        "completedAt",
        # health.posture.since: the terminal event's time, which the stub runtime writes at
        # call time in each repo (a second apart when the clock ticks between them)
        "since",
    }
)
LAG_KEYS = frozenset({"ingestLagSeconds", "heartbeatLagSeconds"})
TRANSPORT_VALUES = frozenset({"local", "sprite_service"})
#: fields that legitimately name or describe the transport
TRANSPORT_KEYS = frozenset({"command", "commandOutput", "output", "replayed", "position"})


class Normalized:
    """A JSON value with volatile parts replaced; lags collected for a tolerant compare."""

    def __init__(self, value: Any, repo: Path, volatile: frozenset[str] = frozenset()) -> None:
        self.lags: list[int] = []
        self.repo = str(repo)
        self.volatile = TIME_KEYS | TRANSPORT_KEYS | volatile
        self.value = self._walk(value, None)

    def _walk(self, value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            metric = value.get("metric")
            for k, v in value.items():
                if k in self.volatile:
                    continue
                if k in LAG_KEYS and isinstance(v, int):
                    self.lags.append(v)
                    out[k] = "<lag>"
                elif k == "observed" and metric in LAG_KEYS and isinstance(v, str):
                    self.lags.append(int(v))
                    out[k] = "<lag>"
                else:
                    out[k] = self._walk(v, k)
            return out
        if isinstance(value, list):
            return [self._walk(v, key) for v in value]
        if isinstance(value, str):
            if key in ("transport", "mode") and value in TRANSPORT_VALUES:
                return "<transport>"
            return value.replace(self.repo, "<repo>")
        return value


def assert_same(
    local: Any,
    remote: Any,
    repo_a: Path,
    repo_b: Path,
    what: str,
    volatile: frozenset[str] = frozenset(),
) -> None:
    a = Normalized(local, repo_a, volatile)
    b = Normalized(remote, repo_b, volatile)
    assert a.value == b.value, what
    assert len(a.lags) == len(b.lags), what
    for x, y in zip(a.lags, b.lags, strict=True):
        assert abs(x - y) <= 3, (what, a.lags, b.lags)


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Pair:
    """Copy A (local) and copy B (served by a real sprite-service process)."""

    def __init__(self, a: Path, b: Path, service: ServiceProcess, token: str) -> None:
        self.a = a
        self.b = b
        self.service = service
        self.token = token

    def both(self, fn: Any) -> None:
        """Apply the same runtime change to both copies."""
        fn(self.a)
        fn(self.b)

    def _run(
        self, capsys: pytest.CaptureFixture[str], command: str, remote: bool, *args: str
    ) -> tuple[int, Any, str]:
        repo = self.b if remote else self.a
        argv = [command, "--repo", str(repo), "--loop", LOOP, *args]
        if remote:
            argv += [
                "--transport",
                "sprite_service",
                "--service-base-url",
                self.service.url,
                "--service-token",
                self.token,
            ]
        capsys.readouterr()
        rc = main(argv)
        out, err = capsys.readouterr()
        return rc, json.loads(out) if out.strip() else None, err

    def reconcile(
        self,
        capsys: pytest.CaptureFixture[str],
        *args: str,
        expect_ok: bool = True,
        volatile: frozenset[str] = frozenset(),
    ) -> tuple[Any, Any]:
        """One pass on each side; compare every artifact the pass wrote.

        ``volatile``: more keys to ignore (runtime-written times that differ between the
        copies, e.g. after the stub runtime stamped events with the wall clock).
        """
        before_a = len(jsonl(ops(self.a) / "escalations.jsonl"))
        before_b = len(jsonl(ops(self.b) / "escalations.jsonl"))
        rc_a, out_a, err_a = self._run(capsys, "reconcile", False, *COMMON, *args)
        rc_b, out_b, err_b = self._run(capsys, "reconcile", True, *COMMON, *args)
        assert (rc_a == 0, rc_b == 0) == (expect_ok, expect_ok), (err_a, err_b)
        if expect_ok:
            assert_same(out_a, out_b, self.a, self.b, "stdout (merged state)", volatile)
        else:
            self._same_failure(out_a, out_b)
        for name in (
            "health.json",
            "heartbeat.json",
            "sequence-state.json",
            "cursor.json",
            "state.json",
            "telemetry/transport-health.json",
        ):
            left = read_json(ops(self.a) / name)
            right = read_json(ops(self.b) / name)
            if name == "health.json" and not expect_ok:
                self._same_failure(left, right)
                continue
            if name == "state.json" and not expect_ok:
                self._same_failure(left.pop("health"), right.pop("health"))
            if name == "telemetry/transport-health.json" and not expect_ok:
                left = {k: v for k, v in left.items() if k != "lastFailureCode"}
                right = {k: v for k, v in right.items() if k != "lastFailureCode"}
            assert_same(left, right, self.a, self.b, name, volatile)
        for name in ("telemetry/sequence.jsonl", "telemetry/heartbeat.jsonl"):
            left_rows = jsonl(ops(self.a) / name)
            right_rows = jsonl(ops(self.b) / name)
            assert len(left_rows) == len(right_rows), name
            if left_rows:
                assert_same(left_rows[-1], right_rows[-1], self.a, self.b, name, volatile)
        row_a = jsonl(ops(self.a) / "telemetry/reconcile.jsonl")[-1]
        row_b = jsonl(ops(self.b) / "telemetry/reconcile.jsonl")[-1]
        if not expect_ok:
            for row in (row_a, row_b):
                row.pop("failureCode")
                row.pop("failureMessage")
        assert_same(row_a, row_b, self.a, self.b, "reconcile.jsonl row", volatile)
        new_a = jsonl(ops(self.a) / "escalations.jsonl")[before_a:]
        new_b = jsonl(ops(self.b) / "escalations.jsonl")[before_b:]
        if not expect_ok:
            for row in (*new_a, *new_b):
                row.pop("failureCode", None)
        assert_same(new_a, new_b, self.a, self.b, "escalations appended by the pass", volatile)
        return out_a, out_b

    def _same_failure(self, left: dict[str, Any], right: dict[str, Any]) -> None:
        """Failed passes: equal health apart from the transport's own failure code."""
        assert left["transport"]["failureCode"] == "events_unavailable"
        assert right["transport"]["failureCode"] == "service_request_failed"
        for side in (left, right):
            side["transport"] = {
                k: v
                for k, v in side["transport"].items()
                if k not in ("failureCode", "lastFailureCode")
            }
        assert_same(left, right, self.a, self.b, "health of a failed pass")

    def control(
        self, capsys: pytest.CaptureFixture[str], *args: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One intent on each side; compare the three records (the outer ones for B)."""
        rc_a, entry_a, err_a = self._run(capsys, "control", False, *COMMON, *args)
        rc_b, entry_b, err_b = self._run(capsys, "control", True, *COMMON, *args)
        assert rc_a == rc_b, (err_a, err_b)
        assert_same(entry_a, entry_b, self.a, self.b, "control stdout")
        for name in (
            "intents.jsonl",
            "telemetry/control.jsonl",
            "telemetry/control-invocations.jsonl",
        ):
            last_a = jsonl(ops(self.a) / name)[-1]
            last_b = jsonl(ops(self.b) / name)[-1]
            assert last_b["transport"] == "sprite_service"
            assert_same(last_a, last_b, self.a, self.b, name)
        return entry_a, entry_b


@pytest.fixture
def token() -> str:
    # hex: a token starting with '-' would be read as a flag by `--service-token <t>`
    return secrets.token_hex(24)


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stub Superloop CLI for BOTH sides: in our env (local) and the service's env."""
    env = stub_superloop_env(
        tmp_path / "bin", tmp_path / "calls-local.jsonl", "complete_on_approve"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OPS_MANAGER_TRACE_ID", raising=False)
    monkeypatch.delenv("OPS_MANAGER_SERVICE_TOKEN", raising=False)
    return {**env, "STUB_SUPERLOOP_LOG": str(tmp_path / "calls-service.jsonl")}


@pytest.fixture
def pair(tmp_path: Path, token: str, stub: dict[str, str]) -> Iterator[Pair]:
    def build(root: Path) -> Path:
        return make_runtime_repo(
            root,
            events=realistic_run_events(iterations=1, outcome="died", run_id="run-123"),
            heartbeat=runtime_heartbeat(),
        ).resolve()

    a = build(tmp_path / "a")
    b = build(tmp_path / "b")
    with ServiceProcess(b, token=token, env=stub).running() as service:
        yield Pair(a, b, service, token)


def quiet(*extra: str) -> tuple[str, ...]:
    """Ingest thresholds no lag reaches (lags are still compared, within 3 s)."""
    return ("--degraded-ingest-lag-seconds", BIG, "--critical-ingest-lag-seconds", BIG, *extra)


def test_reconcile_parity_across_passes(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    # 1. baseline (default thresholds: the fixture's events and heartbeat are months old)
    local, remote = pair.reconcile(capsys, "--trace-id", "parity-1")
    assert local["health"]["status"] == "critical"
    assert local["health"]["reasonCodes"] == remote["health"]["reasonCodes"]
    assert local["cursor"]["eventLineOffset"] == remote["cursor"]["eventLineOffset"] > 0

    # 2. appended events
    def grow(repo: Path) -> None:
        append_events(
            repo,
            LOOP,
            [
                event("role_end", ts(40), role="implementer"),
                event("role_start", ts(41), role="tester"),
                event("role_end", ts(42), role="tester"),
            ],
        )

    pair.both(grow)
    pair.reconcile(capsys, *quiet("--trace-id", "parity-2"))

    # 3. stale heartbeat (items 55, 57)
    pair.both(
        lambda r: write_pretty(
            r / ".superloop/loops" / LOOP / "heartbeat.v1.json",
            runtime_heartbeat("2020-01-01T00:00:00Z"),
        )
    )
    local, _ = pair.reconcile(
        capsys,
        *quiet(
            "--degraded-heartbeat-lag-seconds", "1", "--critical-heartbeat-lag-seconds", BIG,
            "--trace-id", "parity-3",
        ),
    )  # fmt: skip
    assert local["health"]["reasonCodes"] == ["runtime_heartbeat_stale"]
    hb_a = read_json(ops(pair.a) / "heartbeat.json")
    hb_b = read_json(ops(pair.b) / "heartbeat.json")
    assert (
        (hb_a["freshnessStatus"], hb_a["reasonCode"])
        == (
            hb_b["freshnessStatus"],
            hb_b["reasonCode"],
        )
        == ("degraded", "runtime_heartbeat_stale")
    )
    pair.both(
        lambda r: write_pretty(
            r / ".superloop/loops" / LOOP / "heartbeat.v1.json",
            runtime_heartbeat(ts(0, "2030-01-01T00:00:00Z")),
        )
    )

    # 4. --max-events: two of five, then the rest
    pair.both(
        lambda r: append_events(
            r,
            LOOP,
            [event("tests_start", ts(50 + i), data={"mode": "on_promise"}) for i in range(5)],
        )
    )
    before = read_json(ops(pair.a) / "cursor.json")["eventLineOffset"]
    pair.reconcile(capsys, *quiet("--max-events", "2", "--trace-id", "parity-4"))
    assert read_json(ops(pair.b) / "cursor.json")["eventLineOffset"] == before + 2
    pair.reconcile(capsys, *quiet("--trace-id", "parity-5"))
    assert read_json(ops(pair.b) / "cursor.json")["eventLineOffset"] == before + 5

    # 5. a torn final line (a write in progress) is left alone by both, then picked up
    torn = json.dumps(event("tests_end", ts(60), data={"status": "ok"}), separators=(",", ":"))
    pair.both(lambda r: append_raw(r, LOOP, torn[:25].encode()))
    pair.reconcile(capsys, *quiet("--trace-id", "parity-6"))
    assert read_json(ops(pair.b) / "cursor.json")["eventLineOffset"] == before + 5
    pair.both(lambda r: append_raw(r, LOOP, (torn[25:] + "\n").encode()))
    pair.reconcile(capsys, *quiet("--trace-id", "parity-7"))
    assert read_json(ops(pair.b) / "cursor.json")["eventLineOffset"] == before + 6

    # 6. divergence: the runtime says inactive while active-phase events keep coming
    def inactive(repo: Path) -> None:
        state = read_json(repo / ".superloop/state.json")
        write_pretty(repo / ".superloop/state.json", {**state, "active": False})
        append_events(repo, LOOP, [event("role_end", ts(70), role="reviewer")])

    pair.both(inactive)
    local, _ = pair.reconcile(capsys, *quiet("--trace-id", "parity-8"))
    assert local["divergence"]["any"] is True
    assert jsonl(ops(pair.b) / "escalations.jsonl")[-2]["category"] == "divergence_detected"


def test_truncation_parity(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    pair.reconcile(capsys, *quiet("--trace-id", "trunc-0"))

    def truncate(repo: Path) -> None:
        path = events_path(repo, LOOP)
        first = path.read_bytes().split(b"\n", 1)[0] + b"\n"
        path.write_bytes(first)

    pair.both(truncate)
    # without --from-start both refuse to read a log that shrank under the cursor
    pair.reconcile(capsys, *quiet("--trace-id", "trunc-1"), expect_ok=False)
    row_a = jsonl(ops(pair.a) / "telemetry/reconcile.jsonl")[-1]
    row_b = jsonl(ops(pair.b) / "telemetry/reconcile.jsonl")[-1]
    assert "truncated" in row_a["failureMessage"]
    assert "exceeds available events (1)" in row_b["failureMessage"]
    health = read_json(ops(pair.b) / "health.json")
    assert health["reasonCodes"] == read_json(ops(pair.a) / "health.json")["reasonCodes"]
    assert "transport_unreachable" in health["reasonCodes"]
    # the explicit replay recovers both the same way (items 58-64 semantics, Q-12)
    local, _ = pair.reconcile(capsys, *quiet("--from-start", "--trace-id", "trunc-2"))
    assert local["cursor"] == {"eventLineOffset": 1, "eventLineCount": 1}
    seq_a = read_json(ops(pair.a) / "sequence-state.json")
    seq_b = read_json(ops(pair.b) / "sequence-state.json")
    assert (seq_a["status"], seq_a["driftActive"], sorted(seq_a["violations"])) == (
        seq_b["status"],
        seq_b["driftActive"],
        sorted(seq_b["violations"]),
    )
    # and a normal pass afterwards
    pair.both(lambda r: append_events(r, LOOP, [event("iteration_start", ts(90))]))
    pair.reconcile(capsys, *quiet("--trace-id", "trunc-3"))


def test_control_parity_cancel_approve_reject(
    pair: Pair, stub: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    approval_file = Path(".superloop/loops") / LOOP / "approval.json"

    # reject a pending approval
    pair.both(lambda r: write_pretty(r / approval_file, pending_approval()))
    local, remote = pair.control(
        capsys, "--intent", "reject", "--by", "ops-user", "--note", "not yet",
        "--trace-id", "ctl-1", "--idempotency-key", "reject-1",
    )  # fmt: skip
    assert local["status"] == remote["status"] == "confirmed"
    assert local["confirm"]["reason"] == "rejection_observed"
    assert read_json(pair.b / approval_file)["status"] == "rejected"

    # approve a new pending approval (the stub completes the run)
    pair.both(lambda r: write_pretty(r / approval_file, pending_approval()))
    local, remote = pair.control(
        capsys, "--intent", "approve", "--by", "ops-user", "--note", "Looks good",
        "--trace-id", "ctl-2", "--idempotency-key", "approve-1",
    )  # fmt: skip
    assert local["status"] == remote["status"] == "confirmed"
    assert local["confirm"]["reason"] == "completion_observed"

    # cancel
    local, remote = pair.control(
        capsys, "--intent", "cancel", "--by", "ops-user", "--trace-id", "ctl-3",
        "--idempotency-key", "cancel-1",
    )  # fmt: skip
    assert local["status"] == remote["status"] == "confirmed"

    # --no-confirm (item 92)
    local, remote = pair.control(
        capsys, "--intent", "cancel", "--by", "ops-user", "--no-confirm", "--trace-id", "ctl-4",
        "--idempotency-key", "cancel-2",
    )  # fmt: skip
    assert local["status"] == remote["status"] == "executed_unconfirmed"

    # a repeated key: both sides replay instead of executing again
    local, remote = pair.control(
        capsys, "--intent", "cancel", "--by", "ops-user", "--trace-id", "ctl-5",
        "--idempotency-key", "cancel-1",
    )  # fmt: skip
    inv_a = jsonl(ops(pair.a) / "telemetry/control-invocations.jsonl")[-1]
    inv_b = jsonl(ops(pair.b) / "telemetry/control-invocations.jsonl")[-1]
    assert inv_a["execution"]["replayed"] is inv_b["execution"]["replayed"] is True
    local_calls = stub_calls(Path(stub["STUB_SUPERLOOP_LOG"]).with_name("calls-local.jsonl"))
    service_calls = stub_calls(Path(stub["STUB_SUPERLOOP_LOG"]))
    assert (
        [c[0] for c in local_calls]
        == [c[0] for c in service_calls]
        == [
            "approve",
            "approve",
            "cancel",
            "cancel",
        ]
    )

    # the control outcome reaches health the same way on the next reconcile (the stub stamped
    # its events and decisions with the wall clock, which may differ by a second per side;
    # so may the reconcile row's inputs.lastEvent.sha256, the digest of such an event line)
    pair.reconcile(
        capsys,
        *quiet("--trace-id", "ctl-6"),
        volatile=frozenset({"lastEventAt", "at", "ended_at", "updated_at", "decided_at", "sha256"}),
    )
