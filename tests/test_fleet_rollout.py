"""Rollout reducer: the exact cohort hash (§3.7), scope/canary, manual pause, auto-pause (§3.8)."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager.reducers.fleet_rollout import (
    AMBIGUOUS_SPIKE,
    CANARY_EXCLUDED,
    DEFAULT_SALT,
    FAILURE_SPIKE,
    PAUSED_AUTO,
    PAUSED_MANUAL,
    SCOPE_EXCLUDED,
    AutoPauseSettings,
    RolloutSettings,
    autopause_metrics,
    canary_selected,
    cohort_bucket,
    cohort_hash,
    evaluate_auto_pause,
    evaluate_pause,
    evaluate_rollout,
    idle_pause_json,
    select_cohort,
)

# --- the exact hash -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loop_id", "salt", "bucket"),
    [
        # fleet.md §3.7 test vectors
        ("loop-red", DEFAULT_SALT, 76),
        ("loop-blue", DEFAULT_SALT, 45),
        ("loop-a", DEFAULT_SALT, 36),
        ("loop-b", DEFAULT_SALT, 85),
        ("loop-1", "cohort-seed-v1", 55),
        ("loop-2", "cohort-seed-v1", 15),
        ("loop-3", "cohort-seed-v1", 75),
        # non-ASCII: code points, not UTF-8 bytes
        ("lööp", "x", 91),
    ],
)
def test_cohort_bucket_reproduces_spec_vectors(loop_id: str, salt: str, bucket: int) -> None:
    assert cohort_bucket(loop_id, salt) == bucket


def test_default_salt_and_appendix_buckets() -> None:
    # Appendix A.2: loop-red bucket 76, loop-blue 45 with the default salt
    assert DEFAULT_SALT == "fleet-autonomous-rollout-v1"
    assert cohort_bucket("loop-red") == 76
    assert cohort_bucket("loop-blue") == 45


def _utf8_byte_bucket(seed: str) -> int:
    """The upstream bats helper: the same hash over UTF-8 bytes (§6.14)."""
    value = 17
    for byte in seed.encode("utf-8"):
        value = (value * 31 + byte) % 1000003
    return value % 100


def test_hash_is_over_code_points_not_bytes() -> None:
    assert cohort_hash("lööp|x") % 100 == 91
    assert _utf8_byte_bucket("lööp|x") != 91
    # ASCII ids agree with the byte helper the upstream tests used
    assert _utf8_byte_bucket("loop-2|cohort-seed-v1") == cohort_bucket("loop-2", "cohort-seed-v1")


@given(st.text(max_size=40), st.text(max_size=20))
def test_bucket_deterministic_and_in_range(loop_id: str, salt: str) -> None:
    first = cohort_bucket(loop_id, salt)
    assert 0 <= first <= 99
    assert cohort_bucket(loop_id, salt) == first
    assert select_cohort(loop_id, RolloutSettings(salt=salt)) == select_cohort(
        loop_id, RolloutSettings(salt=salt)
    )


_ID_ALPHABET = string.ascii_lowercase + string.digits + "-_."


@settings(max_examples=12, deadline=None)
@given(
    canary=st.integers(min_value=0, max_value=100),
    salt=st.sampled_from([DEFAULT_SALT, "cohort-seed-v1", "s", "rollout-2027"]),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_cohort_share_converges_to_canary_percent(canary: int, salt: str, seed: int) -> None:
    rng = random.Random(seed)
    ids = {
        "".join(rng.choice(_ID_ALPHABET) for _ in range(rng.randint(4, 24))) for _ in range(5000)
    }
    rollout = RolloutSettings(canary_percent=canary, salt=salt)
    share = sum(select_cohort(loop_id, rollout).in_cohort for loop_id in ids) / len(ids)
    assert abs(share - canary / 100) <= 0.04


# --- canary and scope decision table -------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "percent", "selected"),
    [
        (0, 0, False),  # 0 selects nothing, even bucket 0
        (99, 100, True),  # 100 selects everything
        (99, 150, True),
        (0, -5, False),
        (39, 40, True),  # bucket < percent
        (40, 40, False),
        (41, 40, False),
    ],
)
def test_canary_selected_table(bucket: int, percent: int, selected: bool) -> None:
    assert canary_selected(bucket, percent) is selected


@pytest.mark.parametrize(
    ("loop_id", "scope", "canary", "in_scope", "canary_sel", "reasons"),
    [
        ("loop-2", ("loop-1", "loop-2"), 50, True, True, []),  # bucket 15 < 50
        ("loop-1", ("loop-1", "loop-2"), 50, True, False, [CANARY_EXCLUDED]),  # bucket 55
        # out of scope: scope reason only, never the canary reason
        ("loop-3", ("loop-1", "loop-2"), 50, False, False, [SCOPE_EXCLUDED]),
        ("loop-3", (), 100, True, True, []),  # empty scope = every loop
        ("loop-3", (), 0, True, False, [CANARY_EXCLUDED]),
    ],
)
def test_scope_and_canary_reasons(
    loop_id: str,
    scope: tuple[str, ...],
    canary: int,
    in_scope: bool,
    canary_sel: bool,
    reasons: list[str],
) -> None:
    rollout = RolloutSettings(canary_percent=canary, scope_loop_ids=scope, salt="cohort-seed-v1")
    selection = select_cohort(loop_id, rollout)
    assert selection.in_scope is in_scope
    assert selection.canary_selected is canary_sel
    assert selection.in_cohort is (in_scope and canary_sel)
    assert selection.reasons == reasons


def test_settings_from_normalised_controls() -> None:
    controls = {
        "rollout": {
            "canaryPercent": 40,
            "scope": {"loopIds": ["loop-a"]},
            "selector": {"salt": "s1"},
            "pause": {"manual": True},
            "autoPause": {
                "enabled": False,
                "lookbackExecutions": 3,
                "minSampleSize": 2,
                "ambiguityRateThreshold": 0.25,
                "failureRateThreshold": 1,
            },
        }
    }
    rollout = RolloutSettings.from_controls(controls)
    assert rollout == RolloutSettings(
        canary_percent=40,
        scope_loop_ids=("loop-a",),
        salt="s1",
        manual_pause=True,
        auto_pause=AutoPauseSettings(False, 3, 2, 0.25, 1),
    )
    assert RolloutSettings.from_controls({}) == RolloutSettings()
    assert RolloutSettings.from_controls(None).auto_pause.enabled is True


# --- auto-pause ---------------------------------------------------------------------------------


def _execute(ts: str, mode: str = "autonomous", **execution: int) -> dict[str, object]:
    return {
        "timestamp": ts,
        "category": "fleet_handoff_execute",
        "execution": {"mode": mode, **execution},
    }


def test_autopause_ambiguity_example_from_spec() -> None:
    rows = [
        _execute("2026-01-01T00:00:01Z", requestedIntentCount=2, executedCount=1, ambiguousCount=1),
        _execute("2026-01-01T00:00:02Z", requestedIntentCount=2, executedCount=1, ambiguousCount=1),
    ]
    settings_ = AutoPauseSettings(True, 3, 2, 0.4, 0.8)
    decision = evaluate_auto_pause(rows, settings_)
    assert decision.active
    assert decision.reasons == (AMBIGUOUS_SPIKE,)
    # Appendix A.2 (auto-pause candidate), byte for byte
    assert decision.to_json() == {
        "enabled": True,
        "active": True,
        "reasons": ["autonomous_autopause_ambiguous_spike"],
        "lookbackExecutions": 3,
        "minSampleSize": 2,
        "ambiguityRateThreshold": 0.4,
        "failureRateThreshold": 0.8,
        "metrics": {
            "windowExecutionCount": 2,
            "attemptedCount": 4,
            "executedCount": 2,
            "ambiguousCount": 2,
            "failedCount": 0,
            "ambiguityRate": 0.5,
            "failureRate": 0,
        },
    }


def test_autopause_failure_example_rate_prints_as_integer() -> None:
    rows = [
        _execute("2026-01-01T00:00:01Z", requestedIntentCount=1, failedCount=1),
        _execute("2026-01-01T00:00:02Z", requestedIntentCount=1, failedCount=1),
    ]
    decision = evaluate_auto_pause(rows, AutoPauseSettings(True, 3, 2, 0.9, 0.5))
    assert decision.reasons == (FAILURE_SPIKE,)
    metrics = decision.to_json()["metrics"]
    assert metrics["attemptedCount"] == 2
    assert metrics["failureRate"] == 1 and isinstance(metrics["failureRate"], int)


@pytest.mark.parametrize(
    ("settings_", "rows", "reasons"),
    [
        # disabled (DECISIONS fleet 6.1): metrics computed, no trigger
        (AutoPauseSettings(False, 5, 1, 0.1, 0.1), [(2, 0, 2, 0)], ()),
        # below min sample: attempted 2 < 3
        (AutoPauseSettings(True, 5, 3, 0.1, 0.1), [(2, 0, 2, 0)], ()),
        # exactly at min sample and threshold (inclusive >=)
        (AutoPauseSettings(True, 5, 4, 0.5, 0.5), [(4, 0, 2, 2)], (AMBIGUOUS_SPIKE, FAILURE_SPIKE)),
        # just under the threshold
        (AutoPauseSettings(True, 5, 1, 0.5, 0.5), [(4, 2, 1, 1)], ()),
        # no executions at all: rates 0, never triggers
        (AutoPauseSettings(True, 5, 1, 0, 0), [], ()),
    ],
)
def test_autopause_trigger_table(
    settings_: AutoPauseSettings,
    rows: list[tuple[int, int, int, int]],
    reasons: tuple[str, ...],
) -> None:
    handoff = [
        _execute(
            f"2026-01-01T00:00:{i:02d}Z",
            executedIntentCount=a,
            executedCount=e,
            ambiguousCount=m,
            failedCount=f,
        )
        for i, (a, e, m, f) in enumerate(rows)
    ]
    decision = evaluate_auto_pause(handoff, settings_)
    assert decision.reasons == reasons
    assert decision.active is bool(reasons)
    if rows:
        assert decision.metrics.attempted_count == sum(r[0] for r in rows)


def test_autopause_window_is_last_l_by_timestamp_and_filters_rows() -> None:
    rows: list[dict[str, object]] = [
        _execute("2026-01-01T00:00:09Z", requestedIntentCount=1, failedCount=1),  # newest
        _execute("2026-01-01T00:00:01Z", requestedIntentCount=5, executedCount=5),  # oldest
        _execute("2026-01-01T00:00:05Z", requestedIntentCount=1, failedCount=1),
        _execute("2026-01-01T00:00:07Z", "manual", requestedIntentCount=9, failedCount=9),
        {"timestamp": "2026-01-01T00:00:08Z", "category": "fleet_handoff_plan"},
    ]
    metrics = autopause_metrics(rows, 2)
    assert metrics.window_execution_count == 2
    assert metrics.attempted_count == 2 and metrics.failed_count == 2
    assert metrics.failure_rate == 1


def test_autopause_prefers_executed_intent_count_and_keeps_zero() -> None:
    rows = [_execute("t", executedIntentCount=0, requestedIntentCount=4, failedCount=0)]
    assert autopause_metrics(rows, 5).attempted_count == 0
    rows = [_execute("t", requestedIntentCount=4)]
    assert autopause_metrics(rows, 5).attempted_count == 4


# --- pause --------------------------------------------------------------------------------------


def test_manual_pause_reasons_and_idle_block() -> None:
    rollout = RolloutSettings(manual_pause=True)
    pause = evaluate_pause(rollout, [])
    assert pause.active and pause.reasons == [PAUSED_MANUAL]
    assert pause.gating_reasons == [PAUSED_MANUAL]
    decision = evaluate_rollout("loop-red", rollout, pause)
    assert decision.reasons == [PAUSED_MANUAL]
    # zero candidates: reported as not active even with manual pause on (fleet.md §6.5)
    idle = idle_pause_json(rollout)
    assert idle["active"] is False and idle["manual"] is True and idle["reasons"] == []
    assert idle["auto"]["metrics"]["windowExecutionCount"] == 0


def test_auto_pause_adds_paused_auto_and_trigger_reasons() -> None:
    rows = [_execute("t", requestedIntentCount=3, ambiguousCount=3)]
    rollout = RolloutSettings(auto_pause=AutoPauseSettings(True, 5, 3, 0.4, 0.4))
    pause = evaluate_pause(rollout, rows)
    assert pause.reasons == [PAUSED_AUTO]
    assert evaluate_rollout("loop-red", rollout, pause).reasons == [AMBIGUOUS_SPIKE, PAUSED_AUTO]
    assert pause.to_json()["auto"]["active"] is True
