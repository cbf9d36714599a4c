"""Thresholds, the profile catalog and its loader (loop.md §3.4, §3.5, §3.8.1, §7.6)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager.engine.profiles import (
    PACKAGED_PROFILES_FILE,
    PROFILES_FILE_ENV,
    default_profiles_path,
    load_catalog,
    profiles_path,
    resolve_from_file,
)
from ops_manager.errors import OpsError
from ops_manager.reducers.thresholds import (
    ResolvedProfile,
    Thresholds,
    apply_precedence,
    profile_names,
    resolve_profile,
    validate_catalog,
    validate_thresholds,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

#: §3.5, exact
SPEC_CATALOG = {
    "schemaVersion": "v1",
    "defaultProfile": "balanced",
    "profiles": {
        "strict": {
            "degradedIngestLagSeconds": 120,
            "criticalIngestLagSeconds": 300,
            "degradedTransportFailureStreak": 1,
            "criticalTransportFailureStreak": 2,
            "description": "Fast detection for short-feedback loops with high signal confidence",
        },
        "balanced": {
            "degradedIngestLagSeconds": 300,
            "criticalIngestLagSeconds": 900,
            "degradedTransportFailureStreak": 2,
            "criticalTransportFailureStreak": 4,
            "description": "Default dogfood profile balancing alert timeliness and noise",
        },
        "relaxed": {
            "degradedIngestLagSeconds": 600,
            "criticalIngestLagSeconds": 1800,
            "degradedTransportFailureStreak": 3,
            "criticalTransportFailureStreak": 6,
            "description": "Noise-reduction profile for unstable environments or heavy churn",
        },
    },
}


def test_packaged_catalog_has_exactly_the_spec_values() -> None:
    assert json.loads(PACKAGED_PROFILES_FILE.read_text()) == SPEC_CATALOG


def test_config_symlink_points_at_the_packaged_catalog() -> None:
    link = REPO_ROOT / "config" / "ops-manager-threshold-profiles.v1.json"
    assert link.is_symlink()
    assert link.resolve() == PACKAGED_PROFILES_FILE.resolve()


def test_thresholds_defaults_and_key_order() -> None:
    assert Thresholds().to_json() == {
        "profile": None,
        "degradedIngestLagSeconds": 300,
        "criticalIngestLagSeconds": 900,
        "degradedHeartbeatLagSeconds": 120,
        "criticalHeartbeatLagSeconds": 300,
        "degradedTransportFailureStreak": 2,
        "criticalTransportFailureStreak": 4,
    }
    assert list(Thresholds().to_json()) == [
        "profile",
        "degradedIngestLagSeconds",
        "criticalIngestLagSeconds",
        "degradedHeartbeatLagSeconds",
        "criticalHeartbeatLagSeconds",
        "degradedTransportFailureStreak",
        "criticalTransportFailureStreak",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, None),
        ({"critical_ingest_lag_seconds": 300}, None),  # equal is fine
        (
            {"critical_ingest_lag_seconds": 1},
            "critical ingest lag threshold must be >= degraded threshold",
        ),
        (
            {"critical_heartbeat_lag_seconds": 1},
            "critical heartbeat lag threshold must be >= degraded threshold",
        ),
        (
            {"critical_transport_failure_streak": 1},
            "critical transport failure threshold must be >= degraded threshold",
        ),
        (  # ingest is checked first
            {"critical_ingest_lag_seconds": 1, "critical_transport_failure_streak": 1},
            "critical ingest lag threshold must be >= degraded threshold",
        ),
    ],
)
def test_validate_thresholds(fields: dict[str, Any], message: str | None) -> None:
    t = Thresholds(**fields)
    if message is None:
        validate_thresholds(t)
    else:
        with pytest.raises(OpsError) as exc:
            validate_thresholds(t)
        assert exc.value.message == message


@pytest.mark.parametrize(
    "catalog",
    [
        None,
        [],
        "x",
        {},
        {"schemaVersion": "v2", "profiles": {"a": {}}},
        {"schemaVersion": "v1"},
        {"schemaVersion": "v1", "profiles": {}},
        {"schemaVersion": "v1", "profiles": ["a"]},
    ],
)
def test_validate_catalog_rejects_bad_shapes(catalog: Any) -> None:
    with pytest.raises(OpsError, match=r"^threshold profiles file has invalid shape$"):
        validate_catalog(catalog, "/x.json")


def test_resolve_default_profile() -> None:
    # 7.6 #68
    resolved = resolve_profile(SPEC_CATALOG, None)
    assert resolved.name == "balanced"
    assert resolved.values["criticalTransportFailureStreak"] == 4
    assert resolve_profile(SPEC_CATALOG, "") == resolved


def test_resolve_named_profile_and_output_shape() -> None:
    resolved = resolve_profile(SPEC_CATALOG, "strict")
    out = resolved.to_json("/cfg.json")
    assert list(out) == ["schemaVersion", "sourceFile", "profile", "values", "description"]
    assert list(out["values"]) == [
        "degradedIngestLagSeconds",
        "criticalIngestLagSeconds",
        "degradedTransportFailureStreak",
        "criticalTransportFailureStreak",
    ]
    assert out["values"] == {
        "degradedIngestLagSeconds": 120,
        "criticalIngestLagSeconds": 300,
        "degradedTransportFailureStreak": 1,
        "criticalTransportFailureStreak": 2,
    }
    assert out["sourceFile"] == "/cfg.json"


def test_description_is_stripped_when_absent() -> None:
    catalog = {
        "schemaVersion": "v1",
        "profiles": {
            "p": dict.fromkeys(
                [
                    "degradedIngestLagSeconds",
                    "criticalIngestLagSeconds",
                    "degradedTransportFailureStreak",
                    "criticalTransportFailureStreak",
                ],
                1,
            )
        },
    }
    out = resolve_profile(catalog, "p").to_json("f")
    assert "description" not in out


@pytest.mark.parametrize(
    ("catalog", "name", "message"),
    [
        (
            {"schemaVersion": "v1", "profiles": {"a": {}}},
            None,
            "profile name is required and defaultProfile is missing",
        ),
        (
            {"schemaVersion": "v1", "defaultProfile": "", "profiles": {"a": {}}},
            "",
            "profile name is required and defaultProfile is missing",
        ),
        (SPEC_CATALOG, "unknown", "unknown threshold profile: unknown"),
        (
            {"schemaVersion": "v1", "defaultProfile": "ghost", "profiles": {"a": {}}},
            None,
            "unknown threshold profile: ghost",
        ),
        (
            {"schemaVersion": "v1", "profiles": {"a": {}}},
            "a",
            "threshold profile values are invalid: a",
        ),
        (
            {"schemaVersion": "v1", "profiles": {"a": "x"}},
            "a",
            "threshold profile values are invalid: a",
        ),
    ],
)
def test_resolve_errors(catalog: dict[str, Any], name: str | None, message: str) -> None:
    with pytest.raises(OpsError) as exc:
        resolve_profile(catalog, name)
    assert exc.value.message == message


GOOD = {
    "degradedIngestLagSeconds": 10,
    "criticalIngestLagSeconds": 20,
    "degradedTransportFailureStreak": 1,
    "criticalTransportFailureStreak": 2,
}


@pytest.mark.parametrize(
    ("patch", "ok"),
    [
        ({}, True),
        ({"criticalIngestLagSeconds": 10}, True),
        ({"criticalIngestLagSeconds": 20.0}, True),  # integral floats are integers
        ({"criticalIngestLagSeconds": 9}, False),
        ({"criticalTransportFailureStreak": 0}, False),
        ({"criticalIngestLagSeconds": "20"}, False),
        ({"criticalIngestLagSeconds": None}, False),
        ({"criticalIngestLagSeconds": True}, False),
        ({"degradedIngestLagSeconds": -1}, False),
        ({"criticalIngestLagSeconds": 20.5}, False),
    ],
)
def test_profile_value_validation(patch: dict[str, Any], ok: bool) -> None:
    catalog = {"schemaVersion": "v1", "profiles": {"p": {**GOOD, **patch}}}
    if ok:
        resolved = resolve_profile(catalog, "p")
        assert all(isinstance(v, int) for v in resolved.values.values())
    else:
        with pytest.raises(OpsError, match=r"^threshold profile values are invalid: p$"):
            resolve_profile(catalog, "p")


def test_profile_names_sorted() -> None:
    assert profile_names(SPEC_CATALOG) == ["balanced", "relaxed", "strict"]


NONE4: dict[str, int | None] = dict.fromkeys(GOOD, None)


@pytest.mark.parametrize(
    ("profile", "explicit", "hb", "expected"),
    [
        ("balanced", {}, (None, None), Thresholds(profile="balanced")),
        (
            "strict",  # 7.4 #47
            {},
            (None, None),
            Thresholds(
                profile="strict",
                degraded_ingest_lag_seconds=120,
                critical_ingest_lag_seconds=300,
                degraded_transport_failure_streak=1,
                critical_transport_failure_streak=2,
            ),
        ),
        (
            "strict",  # 7.4 #48: the explicit flag wins over the profile
            {**NONE4, "criticalIngestLagSeconds": 777},
            (None, None),
            Thresholds(
                profile="strict",
                degraded_ingest_lag_seconds=120,
                critical_ingest_lag_seconds=777,
                degraded_transport_failure_streak=1,
                critical_transport_failure_streak=2,
            ),
        ),
        (
            "relaxed",
            {"degraded_transport_failure_streak": 5},  # field names work too
            (1, 999999999),
            Thresholds(
                profile="relaxed",
                degraded_ingest_lag_seconds=600,
                critical_ingest_lag_seconds=1800,
                degraded_heartbeat_lag_seconds=1,
                critical_heartbeat_lag_seconds=999999999,
                degraded_transport_failure_streak=5,
                critical_transport_failure_streak=6,
            ),
        ),
    ],
)
def test_apply_precedence(
    profile: str,
    explicit: dict[str, int | None],
    hb: tuple[int | None, int | None],
    expected: Thresholds,
) -> None:
    resolved = resolve_profile(SPEC_CATALOG, profile)
    assert apply_precedence(resolved, explicit, hb[0], hb[1]) == expected


def test_apply_precedence_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown threshold"):
        apply_precedence(resolve_profile(SPEC_CATALOG, None), {"bogus": 1}, None, None)


# --- the loader (engine.profiles) -------------------------------------------------------------


def test_default_path_env_then_packaged(tmp_path: Path) -> None:
    assert default_profiles_path({}) == PACKAGED_PROFILES_FILE
    assert default_profiles_path({PROFILES_FILE_ENV: ""}) == PACKAGED_PROFILES_FILE
    assert default_profiles_path({PROFILES_FILE_ENV: "/x/y.json"}) == Path("/x/y.json")
    assert profiles_path("/flag.json", {PROFILES_FILE_ENV: "/x/y.json"}) == Path("/flag.json")
    assert profiles_path("", {PROFILES_FILE_ENV: "/x/y.json"}) == Path("/x/y.json")
    assert profiles_path(None, {}) == PACKAGED_PROFILES_FILE


def test_load_catalog_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(
        OpsError, match="^" + re.escape(f"threshold profiles file not found: {missing}") + "$"
    ):
        load_catalog(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(
        OpsError, match="^" + re.escape(f"invalid threshold profiles JSON: {bad}") + "$"
    ):
        load_catalog(bad)
    shape = tmp_path / "shape.json"
    shape.write_text('{"schemaVersion":"v1","profiles":{}}')
    with pytest.raises(OpsError, match=r"^threshold profiles file has invalid shape$"):
        load_catalog(shape)


def test_resolve_from_file() -> None:
    resolved = resolve_from_file(PACKAGED_PROFILES_FILE, "relaxed")
    assert resolved == ResolvedProfile(
        name="relaxed",
        values={
            "degradedIngestLagSeconds": 600,
            "criticalIngestLagSeconds": 1800,
            "degradedTransportFailureStreak": 3,
            "criticalTransportFailureStreak": 6,
        },
        description="Noise-reduction profile for unstable environments or heavy churn",
    )


# --- property: resolution is total (a result or a contract error, never a crash) --------------

values = (
    st.none()
    | st.booleans()
    | st.integers(-5, 50)
    | st.floats(allow_nan=False)
    | st.text(max_size=3)
)
profile = st.dictionaries(st.sampled_from([*GOOD, "description"]), values, max_size=5) | values
catalogs = st.fixed_dictionaries(
    {
        "schemaVersion": st.just("v1"),
        "profiles": st.dictionaries(st.sampled_from("abc"), profile, min_size=1),
    },
    optional={"defaultProfile": st.none() | st.sampled_from(["a", "b", "z", ""])},
)


@settings(max_examples=200, deadline=None)
@given(catalogs, st.none() | st.sampled_from(["a", "b", "c", ""]))
def test_property_resolution_is_total(catalog: dict[str, Any], name: str | None) -> None:
    validate_catalog(catalog)
    try:
        resolved = resolve_profile(catalog, name)
    except OpsError:
        return
    v = resolved.values
    assert v["criticalIngestLagSeconds"] >= v["degradedIngestLagSeconds"] >= 0
    assert v["criticalTransportFailureStreak"] >= v["degradedTransportFailureStreak"] >= 0
    t = apply_precedence(resolved, {}, None, None)
    validate_thresholds(t)
