"""The alert sink config on disk (``alerts.md`` §1-§2): find it, read it, check it, resolve.

The shell of the resolver: it reads the file and the environment, asks the installed sink
plugins to check their own fields (``Sink.validate_config``), and hands everything else to
the pure :mod:`ops_manager.reducers.alerts`. Errors are :class:`OpsError` with the
contract's fragments (§2.2), followed by a colon and the details:

- ``alert sink config file not found: <path>``
- ``invalid alert sink config JSON: <path>`` (also an empty file, DECISIONS Q-25)
- ``alert sink config has invalid top-level shape``
- ``alert sink config sink definitions are invalid`` (including a configured sink type
  whose plugin is not installed: the message names the package to install)
- ``alert sink config routing is invalid``
- ``enabled sink secret env var(s) are unset: <NAME> ...``

Secrets are read from the environment only to test presence here; their values never
appear in an output or an error.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager.engine._alert_quiet import ALERT_SINKS_FILE_ENV as ALERT_SINKS_FILE_ENV
from ops_manager.engine._alert_quiet import PACKAGED_ALERT_SINKS_FILE as PACKAGED_ALERT_SINKS_FILE
from ops_manager.engine._alert_quiet import config_path as config_path
from ops_manager.engine._schema_memo import known_valid, remember_alert_config_ok, remember_valid
from ops_manager.errors import OpsError
from ops_manager.model.validation import ALERT_SINKS_SCHEMA
from ops_manager.reducers.alerts import (
    CONTRACT_SINK_TYPES,
    ERR_ROUTING,
    ERR_SEVERITY,
    ERR_SINKS,
    ERR_TOP_LEVEL,
    AlertConfig,
    SinkDef,
    build_config,
    env_status,
    explain_route,
    is_severity,
    list_sinks_text,
    missing_enabled_secrets,
    resolve_route,
    route_json,
    sink_missing_secrets,
    summary_json,
)
from ops_manager.reducers.alerts.config_problems import (
    config_errors,
    routing_problems,
    sink_problems,
    top_level_problems,
)
from ops_manager.sinks import Sink, SinkConfigError, available_sinks, get_sink


@attrs.frozen
class LoadedConfig:
    """A validated config plus the installed sink plugins it was checked with."""

    config: AlertConfig
    #: sink type → installed sink plugin
    plugins: Mapping[str, Sink]

    def plugin_for(self, sink: SinkDef) -> Sink | None:
        """The plugin that builds requests for ``sink`` (``None`` if not installed)."""
        return self.plugins.get(sink.type)


@functools.cache
def _packaged_bytes() -> bytes:
    return PACKAGED_ALERT_SINKS_FILE.read_bytes()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _fail(fragment: str, problems: list[str]) -> OpsError:
    unique = list(dict.fromkeys(problems))
    return OpsError(f"{fragment}: {'; '.join(unique)}" if unique else fragment)


def _prefixed(sink_id: str, problem: str) -> str:
    return problem if f"'{sink_id}'" in problem else f"sink '{sink_id}': {problem}"


#: (file identity, registered plugins) -> the outcome of loading it; see load_alert_config
_LOADED: dict[tuple[object, ...], LoadedConfig | OpsError] = {}


def load_alert_config(path: str, *, installed: Mapping[str, Sink] | None = None) -> LoadedConfig:
    """Read and check the config at ``path`` (steps 4-8 of §2.2, in that order).

    ``installed`` (sink type → plugin) defaults to every sink plugin registered with the
    plugin manager. A disabled sink of one of the contract's three types may lack its
    plugin (it can never send); an enabled one, or any other type, may not.

    With the default ``installed``, the outcome is remembered for the process, keyed by the
    file's path and bytes and the registered plugins: a reconcile pass checks the config for
    its health and then dispatches with it, and ``supervise`` loads it for every loop of
    every tick; each of those re-validated the same bytes. Other bytes, or another plugin
    set, are loaded afresh (reading a few KB is cheap; validating them is not).
    """
    if installed is not None:
        return _load_alert_config(path, installed)
    from ops_manager.plugins import get_plugin_manager

    try:
        data = Path(path).read_bytes()
    except OSError:
        return _load_alert_config(path, None)  # reports "not found" exactly as before
    pm = get_plugin_manager()
    key = (os.path.abspath(path), data, tuple(id(p) for p in pm.get_plugins()))
    outcome = _LOADED.get(key)
    if outcome is None:
        try:
            outcome = _load_alert_config(path, None)
        except OpsError as exc:
            outcome = exc
        else:
            if _installed_plugins_only(pm):
                # a later process may trust this outcome without loading (engine._alert_quiet)
                remember_alert_config_ok(path, data)
        if len(_LOADED) > 64:
            _LOADED.clear()
        _LOADED[key] = outcome
    if isinstance(outcome, OpsError):
        raise OpsError(outcome.message, outcome.exit_code)
    return outcome


def _installed_plugins_only(pm: Any) -> bool:
    # the memo's key names the installed plugins (entry points); an outcome reached with a
    # plugin registered in process is not one another process can reach
    from ops_manager.plugins import BUILTIN_PLUGINS, plugin_distribution

    return all(
        pm.get_name(p) in BUILTIN_PLUGINS or plugin_distribution(p) is not None
        for p in pm.get_plugins()
    )


def _load_alert_config(path: str, installed: Mapping[str, Sink] | None) -> LoadedConfig:
    file = Path(path)
    if not file.is_file():
        raise OpsError(f"alert sink config file not found: {path}")
    try:
        data = file.read_bytes()
    except OSError:
        raise OpsError(f"alert sink config file not found: {path}") from None
    if not data.strip():
        raise OpsError(f"invalid alert sink config JSON: {path}")
    try:
        cfg = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"invalid alert sink config JSON: {path}") from None

    # the packaged default (all sinks disabled) is checked against the schema by the test
    # suite, and a config that passed once is remembered (engine._schema_memo), so a pass
    # imports jsonschema only for a config it has not seen pass
    if data == _packaged_bytes() or known_valid(ALERT_SINKS_SCHEMA, cfg):
        errors = []
    else:
        errors = config_errors(cfg)
        if not errors:
            remember_valid(ALERT_SINKS_SCHEMA, cfg)
    problems = top_level_problems(cfg, errors)
    if problems:
        raise _fail(ERR_TOP_LEVEL, problems)

    plugins = dict(available_sinks() if installed is None else installed)
    problems = []
    plugin_envs: dict[str, list[str]] = {}
    for sink_id, sink in cfg["sinks"].items():
        common, typed = sink_problems(sink_id, errors)
        if common:
            problems.extend(common)
            continue
        problems.extend(typed)
        kind = sink["type"]
        plugin = plugins.get(kind)
        if plugin is None and (sink["enabled"] or kind not in CONTRACT_SINK_TYPES):
            try:
                plugin = get_sink(kind)
            except SinkConfigError as exc:
                problems.append(f"sink '{sink_id}': {exc}")
                continue
            plugins[kind] = plugin
        if plugin is None:
            continue
        own = [_prefixed(sink_id, p) for p in plugin.validate_config(sink_id, sink)]
        problems.extend(own)
        if not own:
            plugin_envs[sink_id] = list(plugin.secret_envs(sink))
    if problems:
        raise _fail(ERR_SINKS, problems)

    problems = routing_problems(cfg, errors)
    if problems:
        raise _fail(ERR_ROUTING, problems)
    return LoadedConfig(config=build_config(cfg, path, plugin_envs), plugins=plugins)


def env_presence(config: AlertConfig, environ: Mapping[str, str] | None = None) -> dict[str, bool]:
    """Which declared secret env vars are set and non-empty (values are not kept)."""
    env = os.environ if environ is None else environ
    return {name: bool(env.get(name)) for name in config.declared_envs()}


def check_env(config: AlertConfig, present: Mapping[str, bool]) -> None:
    """The resolver's fail-closed check (§2.3): every ENABLED sink's secrets must be set."""
    missing = missing_enabled_secrets(config, present)
    if missing:
        raise OpsError("enabled sink secret env var(s) are unset: " + " ".join(missing))


@attrs.frozen
class ResolverRequest:
    """The ``alert-sink-config`` inputs (empty strings already mean "not given")."""

    config_file: str | None = None
    category: str | None = None
    severity: str | None = None
    list_sinks: bool = False
    env_check: bool = True


@attrs.frozen
class ResolverOutput:
    """Either ``text`` (``--list-sinks``) or a JSON ``document`` to print."""

    text: str | None = None
    document: dict[str, Any] | None = None


def resolve_sink_config(
    request: ResolverRequest, environ: Mapping[str, str] | None = None
) -> ResolverOutput:
    """The resolver (§2.2 steps 1-10): list the sinks, summarize, or resolve a category."""
    if request.list_sinks and request.category:
        raise OpsError("--list-sinks cannot be combined with --category")
    if request.severity and not request.category:
        raise OpsError("--severity requires --category")
    if request.severity and not is_severity(request.severity):
        raise OpsError(ERR_SEVERITY)
    path = config_path(request.config_file, environ)
    config = load_alert_config(path).config
    present = env_presence(config, environ)
    if request.env_check:
        check_env(config, present)
    if request.list_sinks:
        return ResolverOutput(text=list_sinks_text(config))
    envs = env_status(config, present)
    if request.category:
        route = resolve_route(config, request.category, request.severity or None)
        return ResolverOutput(document=route_json(config, route, envs, request.env_check))
    return ResolverOutput(document=summary_json(config, envs, request.env_check))


@attrs.frozen
class RouteCase:
    """One routing case: a category, an optional severity, optional expectations."""

    category: str
    severity: str | None = None
    #: sinks that must receive it (compared as a set); ``None`` = no expectation
    expect_sinks: tuple[str, ...] | None = None
    #: the expected ``reasonCode`` (``"none"`` or JSON ``null`` = dispatch); ``None`` = any
    expect_reason: str | None = None
    has_expect_reason: bool = False
    line: int | None = None


def load_route_cases(path: str) -> list[RouteCase]:
    """Read a cases file: one JSON object per line (``category``, ``severity``,
    ``expectSinks``, ``expectReason``); blank lines and lines starting with ``#`` are
    skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise OpsError(f"routing cases file not found: {path}") from None
    except (OSError, UnicodeDecodeError):
        raise OpsError(f"routing cases file is not readable UTF-8 text: {path}") from None
    cases: list[RouteCase] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {number} of {path}"
        try:
            obj = json.loads(line)
        except ValueError:
            raise OpsError(f"invalid routing case JSON at {where}") from None
        if not isinstance(obj, dict):
            raise OpsError(f"invalid routing case at {where}: not a JSON object")
        category = obj.get("category")
        if not isinstance(category, str) or not category:
            raise OpsError(f"invalid routing case at {where}: category must be a non-empty string")
        severity = obj.get("severity")
        if severity is not None and not isinstance(severity, str):
            raise OpsError(f"invalid routing case at {where}: severity must be a string")
        expect = obj.get("expectSinks")
        if expect is not None and not (
            isinstance(expect, list) and all(isinstance(s, str) for s in expect)
        ):
            raise OpsError(f"invalid routing case at {where}: expectSinks must be strings")
        reason = obj.get("expectReason")
        if reason is not None and not isinstance(reason, str):
            raise OpsError(f"invalid routing case at {where}: expectReason must be a string")
        cases.append(
            RouteCase(
                category=category,
                severity=severity or None,
                expect_sinks=tuple(expect) if expect is not None else None,
                expect_reason=None if reason in (None, "none") else reason,
                has_expect_reason="expectReason" in obj,
                line=number,
            )
        )
    return cases


def route_test(
    config: AlertConfig,
    cases: list[RouteCase],
    *,
    present: Mapping[str, bool] | None = None,
) -> list[dict[str, Any]]:
    """Explain every case (nothing is sent); a case with expectations gets ``pass``.

    ``present`` (env var → set?) makes sinks lacking a secret not receive; ``None``
    ignores secrets (routing only).
    """
    missing = sink_missing_secrets(config, present) if present is not None else None
    out: list[dict[str, Any]] = []
    for case in cases:
        result = explain_route(config, case.category, case.severity, missing)
        if case.line is not None:
            result = {"line": case.line, **result}
        checks: list[bool] = []
        if case.expect_sinks is not None:
            result["expectSinks"] = list(case.expect_sinks)
            checks.append(set(case.expect_sinks) == set(result["receivingSinks"]))
        if case.has_expect_reason:
            result["expectReason"] = case.expect_reason
            checks.append(case.expect_reason == result["reasonCode"])
        if checks:
            result["pass"] = all(checks)
        out.append(result)
    return out


__all__ = [
    "ALERT_SINKS_FILE_ENV",
    "PACKAGED_ALERT_SINKS_FILE",
    "LoadedConfig",
    "ResolverOutput",
    "ResolverRequest",
    "RouteCase",
    "check_env",
    "config_path",
    "env_presence",
    "load_alert_config",
    "load_route_cases",
    "resolve_sink_config",
    "route_test",
]
