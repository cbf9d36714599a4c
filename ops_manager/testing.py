"""Test kit for alert sink plugins (public API).

A sink plugin (ours or a third party's) proves it behaves with one class in its test module::

    from ops_manager.testing import SinkContract
    from my_sink import MySink
    import my_sink

    class TestMySinkContract(SinkContract):
        sink = MySink()
        plugin = my_sink                      # the module holding the @hookimpl (optional)
        sample_config = {"enabled": True, "type": "my_sink", "urlEnv": "MY_SINK_URL"}
        sample_env = {"MY_SINK_URL": "https://hooks.example.test/s3cr3t-path"}

pytest collects the inherited ``test_*`` methods (the base class's name does not start with
``Test``, so it is not collected on its own). Outside pytest, :func:`check_sink` runs the same
checks and raises :class:`ContractFailure` on the first problem.

What the contract checks (each ``check_*`` function below documents one rule):

- identity: ``type``, ``package`` and ``min_interval_seconds`` are sensible;
- the plugin's ``opsmgr_register_sinks`` hook registers this sink type (when ``plugin`` is set);
- ``validate_config`` accepts the sample and rejects broken variants with messages that name
  the sink id and the field;
- ``secret_envs`` lists exactly what the sample needs: with only those variables the request
  builds, and without any one of them (unset or empty) ``build_request`` raises
  :class:`~ops_manager.sinks.SinkConfigError` naming the variable;
- ``build_request`` is pure and deterministic: the same input twice gives identical bytes; it
  reads no file, opens no socket, starts no process, reads nothing from ``os.environ`` and
  mutates none of its arguments;
- the request is well formed for ``trigger`` and ``resolve`` (they differ) and every severity:
  an ``http(s)`` URL, ``bytes`` body (valid JSON with ``Content-Type: application/json`` unless
  ``body_is_json = False``), header values without line breaks, no duplicate header names, an
  ``Idempotency-Key`` (if the sink sets one) equal to the event's;
- no absolute local path leaks: an event whose escalation is full of ``/home/...`` paths
  (and the repo path) yields a request that contains none of them, nor the working directory;
- no secret leaks: secret values appear in the URL, in ``Authorization`` or, only where the
  wire format requires it (``body_secret_envs``), in the body; never in another header;
- an HTTP server accepts the bytes: the request is POSTed with ``requests`` to a
  :class:`LoopbackReceiver`, which must receive the same body and headers.

Fakes for core and plugin tests: :func:`make_event` (a realistic :class:`AlertEvent`),
:func:`event_with_local_paths`, :class:`FakeSink` (records its calls), :func:`install_sink`
(registers a sink in the process plugin manager for a ``with`` block) and
:class:`LoopbackReceiver` (a real HTTP server on 127.0.0.1 that records requests and answers
from a script such as ``[503, 503, 200]`` or ``Reply.retry_after(1)``).

This module imports neither pytest nor ``requests`` at import time.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import http.server
import io
import json
import math
import os
import re
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ops_manager.sinks import SEVERITIES, AlertEvent, Sink, SinkConfigError, SinkRequest

__all__ = [
    "CHECKS",
    "CONTRACT_SINK_ID",
    "ENV_NAME_PATTERN",
    "LOCAL_PATH_PROBE",
    "ContractCase",
    "ContractFailure",
    "FakeSink",
    "FakeSinkCall",
    "LoopbackReceiver",
    "RecordedRequest",
    "Reply",
    "SinkContract",
    "check_accepts_sample",
    "check_destination_key",
    "check_deterministic",
    "check_http_roundtrip",
    "check_identity",
    "check_no_local_paths",
    "check_no_secret_leaks",
    "check_registration",
    "check_rejects_broken",
    "check_request_shape",
    "check_secret_envs",
    "check_sink",
    "check_sparse_and_unicode_events",
    "check_trigger_and_resolve",
    "event_with_local_paths",
    "install_sink",
    "make_event",
    "post_request",
]

#: the pattern every env-var reference in a sink config must match (alerts.md §1.3)
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: the sink id the contract passes to ``validate_config`` / ``build_request``
CONTRACT_SINK_ID = "contract-sink"
#: the home directory of the fake machine whose paths :func:`event_with_local_paths` carries
LOCAL_PATH_PROBE = "/home/contract-probe"
_PROBE_REPO = f"{LOCAL_PATH_PROBE}/work/payments-service"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_OS_ENVIRON_MARK = "read-from-os-environ"


class ContractFailure(AssertionError):
    """A sink broke a rule of the contract; the message says which and how."""


# --------------------------------------------------------------------------- events


def make_event(**overrides: Any) -> AlertEvent:
    """A realistic :class:`AlertEvent`: loop ``demo-loop`` went critical (stale ingest).

    The escalation is what core hands a sink (absolute local paths already removed). Any
    field can be overridden, e.g. ``make_event(action="resolve")`` or
    ``make_event(severity="warning", category="health_degraded")``.
    """
    escalation: dict[str, Any] = {
        "timestamp": "2026-02-22T12:00:00Z",
        "loopId": "demo-loop",
        "traceId": "trace-contract-1",
        "category": "health_critical",
        "transport": "local",
        "ingestStatus": "success",
        "healthStatus": "critical",
        "reasonCodes": ["ingest_stale"],
        "reasons": [
            {
                "code": "ingest_stale",
                "severity": "critical",
                "metric": "ingestLagSeconds",
                "observed": "7200",
                "threshold": "3600",
            }
        ],
    }
    fields: dict[str, Any] = {
        "action": "trigger",
        "loop_id": "demo-loop",
        "category": "health_critical",
        "severity": "critical",
        "trace_id": "trace-contract-1",
        "escalation": escalation,
        "escalation_timestamp": "2026-02-22T12:00:00Z",
        "emitted_at": "2026-02-22T12:00:05Z",
        "dedup_key": "demo-loop:health_critical",
        "idempotency_key": "demo-loop:health_critical:trigger:2026-02-22T12:00:00Z",
        "run_id": "run-123",
        "reason_codes": ("ingest_stale",),
        "summary": "loop demo-loop is critical: ingest_stale",
    }
    unknown = set(overrides) - {f.name for f in attrs.fields(AlertEvent)}
    if unknown:
        raise TypeError(f"make_event() got unknown fields: {sorted(unknown)}")
    fields.update(overrides)
    if "reason_codes" in overrides:
        fields["reason_codes"] = tuple(overrides["reason_codes"])
    return AlertEvent(**fields)


def event_with_local_paths(**overrides: Any) -> AlertEvent:
    """An event whose escalation still carries absolute paths of a (fake) machine.

    Every path lives under :data:`LOCAL_PATH_PROBE`: top-level values, nested objects,
    lists and free text. A sink must not put any of them on the wire (DECISIONS Q-19).
    """
    ops = f"{_PROBE_REPO}/.superloop/ops-manager/demo-loop"
    escalation = dict(make_event().escalation)
    escalation.update(
        {
            "repoPath": _PROBE_REPO,
            "stateFile": f"{ops}/state.json",
            "cursorFile": f"{ops}/cursor.json",
            "healthFile": f"{ops}/health.json",
            "files": {"nested": [f"{ops}/telemetry/reconcile.jsonl", "relative/ok.txt"]},
            "message": f"could not read {ops}/heartbeat.json: permission denied",
        }
    )
    fields: dict[str, Any] = {"escalation": escalation}
    fields.update(overrides)
    return make_event(**fields)


# --------------------------------------------------------------------------- the contract


@attrs.frozen
class ContractCase:
    """Everything the contract checks need about one sink (see :class:`SinkContract`)."""

    sink: Sink
    config: Mapping[str, Any]
    env: Mapping[str, str]
    sink_id: str = CONTRACT_SINK_ID
    #: the module (or object) holding the plugin's ``@hookimpl opsmgr_register_sinks``
    plugin: object | None = None
    body_is_json: bool = True
    #: env var names whose values the wire format itself puts in the body
    body_secret_envs: frozenset[str] = frozenset()
    #: extra (config, expected message fragment) pairs ``validate_config`` must reject
    invalid_configs: tuple[tuple[Mapping[str, Any], str], ...] = ()


def _fail(message: str) -> ContractFailure:
    return ContractFailure(message)


def _fresh(case: ContractCase) -> tuple[dict[str, Any], dict[str, str]]:
    return copy.deepcopy(dict(case.config)), dict(case.env)


@contextlib.contextmanager
def _no_side_effects(secret_names: Iterable[str]) -> Iterator[None]:
    """Forbid file, socket and process I/O; plant decoy values in ``os.environ``."""

    def forbidden(what: str) -> Callable[..., Any]:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise ContractFailure(f"build_request must be pure, but it tried to {what}")

        return refuse

    saved_env: dict[str, str | None] = {}
    for name in secret_names:
        saved_env[name] = os.environ.get(name)
        os.environ[name] = f"{_OS_ENVIRON_MARK}-{name}"
    patches: list[tuple[Any, str, Any]] = [
        (builtins, "open", forbidden("open a file")),
        (io, "open", forbidden("open a file")),
        (socket.socket, "connect", forbidden("open a network connection")),
        (socket, "create_connection", forbidden("open a network connection")),
        (subprocess.Popen, "__init__", forbidden("start a process")),
    ]
    originals = [(target, attr, getattr(target, attr)) for target, attr, _ in patches]
    try:
        for target, attr, replacement in patches:
            setattr(target, attr, replacement)
        yield
    finally:
        for target, attr, original in originals:
            setattr(target, attr, original)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _build(
    case: ContractCase, event: AlertEvent, env: Mapping[str, str] | None = None
) -> SinkRequest:
    config, sample_env = _fresh(case)
    use_env = dict(sample_env if env is None else env)
    secret_names = _secret_names(case)
    with _no_side_effects(secret_names):
        request = case.sink.build_request(case.sink_id, config, event, use_env)
    if not isinstance(request, SinkRequest):
        raise _fail(f"build_request returned {type(request).__name__}, expected SinkRequest")
    text = _request_text(request)
    if _OS_ENVIRON_MARK in text:
        raise _fail("build_request read a secret from os.environ; use the `env` argument")
    return request


def _secret_names(case: ContractCase) -> list[str]:
    config, _ = _fresh(case)
    names = case.sink.secret_envs(config)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(f"secret_envs must return a list of str, got {names!r}")
    return names


def _request_text(request: SinkRequest) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
    return f"{request.url}\n{headers}\n{request.body.decode('utf-8', 'replace')}"


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def _body_texts(request: SinkRequest) -> list[str]:
    """The body as text plus, when it is JSON, every decoded string (escapes undone)."""
    raw = request.body.decode("utf-8", "replace")
    texts = [raw]
    with contextlib.suppress(ValueError):
        texts.extend(_json_strings(json.loads(request.body)))
    return texts


def _events() -> list[AlertEvent]:
    out = [make_event(severity=s) for s in SEVERITIES]
    out += [make_event(action="resolve", severity=s) for s in SEVERITIES]
    return out


def check_identity(case: ContractCase) -> None:
    """``type`` is a lowercase name, ``package`` a distribution name, pacing a number >= 0."""
    sink = case.sink
    if not isinstance(sink.type, str) or not _TYPE_NAME.match(sink.type):
        raise _fail(f"sink.type must be a lowercase name like 'my_sink', got {sink.type!r}")
    if not isinstance(sink.package, str) or not sink.package.strip():
        raise _fail(f"sink.package must name the distribution to install, got {sink.package!r}")
    interval = sink.min_interval_seconds
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or interval < 0
    ):
        raise _fail(f"sink.min_interval_seconds must be a number >= 0, got {interval!r}")


def check_registration(case: ContractCase) -> None:
    """The plugin's ``opsmgr_register_sinks`` hookimpl registers this sink's type."""
    if case.plugin is None:
        return
    hook = getattr(case.plugin, "opsmgr_register_sinks", None)
    if hook is None:
        raise _fail("the plugin has no opsmgr_register_sinks function")
    if not hasattr(hook, "ops_manager_impl"):
        raise _fail("opsmgr_register_sinks is not decorated with ops_manager.hookspecs.hookimpl")
    registered: dict[str, Any] = {}

    def register(sink_type: str, factory: Callable[[], Sink]) -> None:
        if sink_type in registered:
            raise _fail(f"the plugin registers sink type {sink_type!r} twice")
        registered[sink_type] = factory

    hook(register=register)
    factory = registered.get(case.sink.type)
    if factory is None:
        raise _fail(f"the plugin does not register {case.sink.type!r} (got {sorted(registered)})")
    made = factory()
    if getattr(made, "type", None) != case.sink.type:
        raise _fail(f"the factory for {case.sink.type!r} returned a sink of another type")


def check_accepts_sample(case: ContractCase) -> None:
    """``validate_config`` returns ``[]`` for the sample config."""
    config, _ = _fresh(case)
    problems = case.sink.validate_config(case.sink_id, config)
    if problems != []:
        raise _fail(f"validate_config rejected the sample config: {problems!r}")


def _broken_variants(case: ContractCase) -> list[tuple[dict[str, Any], str, str]]:
    """(config, field, why) variants every sink must reject."""
    config, _ = _fresh(case)
    secret = set(_secret_names(case))
    variants: list[tuple[dict[str, Any], str, str]] = []
    for key, value in config.items():
        if isinstance(value, str) and value in secret:
            variants.append(({**config, key: "not-an-env-name"}, key, "a lowercase env name"))
            variants.append(({**config, key: 42}, key, "a number instead of an env name"))
    for bad in (0, 121, "5", -1):
        variants.append(({**config, "timeoutSeconds": bad}, "timeoutSeconds", f"{bad!r}"))
    return variants


def check_rejects_broken(case: ContractCase) -> None:
    """Broken variants are rejected with a message naming the sink id and the field.

    Variants: each env-reference field (a config value listed by ``secret_envs``) set to a
    lowercase name and to a number; ``timeoutSeconds`` 0, 121, ``"5"``, -1; plus the case's
    own ``invalid_configs``.
    """
    for config, field, why in _broken_variants(case):
        problems = case.sink.validate_config(case.sink_id, config)
        if not problems:
            raise _fail(f"validate_config accepted {field} = {why}")
        joined = " | ".join(problems)
        if case.sink_id not in joined or field not in joined:
            raise _fail(
                f"validate_config's message for {field} = {why} must name the sink id "
                f"{case.sink_id!r} and the field {field!r}, got {problems!r}"
            )
    for invalid, fragment in case.invalid_configs:
        problems = case.sink.validate_config(case.sink_id, copy.deepcopy(dict(invalid)))
        if not problems or not any(fragment in p for p in problems):
            raise _fail(
                f"validate_config({dict(invalid)!r}) should report {fragment!r}: {problems!r}"
            )


def check_secret_envs(case: ContractCase) -> None:
    """``secret_envs`` lists exactly the variables the sample needs, and missing ones fail clearly.

    - every name matches ``^[A-Z_][A-Z0-9_]*$``, once, and has a value in the sample env;
    - with only those variables set, ``build_request`` succeeds;
    - without any one of them (unset, or set to ``""``) it raises ``SinkConfigError`` whose
      message names the variable.
    """
    names = _secret_names(case)
    if not names:
        raise _fail("secret_envs lists nothing: where does the sink's URL/key come from?")
    if len(set(names)) != len(names):
        raise _fail(f"secret_envs lists a name twice: {names!r}")
    for name in names:
        if not ENV_NAME_PATTERN.match(name):
            raise _fail(f"secret_envs name {name!r} does not match {ENV_NAME_PATTERN.pattern}")
        if not case.env.get(name):
            raise _fail(f"the sample env has no value for {name}, which secret_envs lists")
    only = {name: case.env[name] for name in names}
    _build(case, make_event(), env=only)
    for name in names:
        for label, env in (
            ("unset", {k: v for k, v in only.items() if k != name}),
            ("empty", {**only, name: ""}),
        ):
            try:
                _build(case, make_event(), env=env)
            except SinkConfigError as exc:
                if name not in str(exc):
                    raise _fail(
                        f"with {name} {label}, SinkConfigError must name {name}: {exc}"
                    ) from exc
            else:
                raise _fail(f"with {name} {label}, build_request must raise SinkConfigError")


def check_deterministic(case: ContractCase) -> None:
    """Same input twice gives an identical request; no argument is mutated; no I/O."""
    for event in (make_event(), make_event(action="resolve")):
        before = copy.deepcopy(event.escalation)
        config, env = _fresh(case)
        snapshot = (copy.deepcopy(config), dict(env))
        first = _build(case, event)
        second = _build(case, event)
        if (first.url, first.body) != (second.url, second.body):
            raise _fail("build_request is not deterministic: two calls gave different bytes")
        if list(first.headers.items()) != list(second.headers.items()):
            raise _fail("build_request is not deterministic: two calls gave different headers")
        if event.escalation != before:
            raise _fail("build_request mutated event.escalation")
        with _no_side_effects(()):
            case.sink.build_request(case.sink_id, config, event, env)
        if (config, env) != snapshot:
            raise _fail("build_request mutated its config or env argument")


def _check_shape(case: ContractCase, event: AlertEvent, request: SinkRequest) -> None:
    what = f"({event.action}, {event.severity})"
    if not isinstance(request.url, str) or not re.match(r"^https?://[^\s/]+", request.url):
        raise _fail(f"{what}: the URL must be absolute http(s), got {request.url!r}")
    if not isinstance(request.body, bytes):
        raise _fail(f"{what}: the body must be bytes, got {type(request.body).__name__}")
    seen: dict[str, str] = {}
    for name, value in request.headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise _fail(f"{what}: invalid header name {name!r}")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise _fail(f"{what}: header {name} must be a str without line breaks")
        if name.lower() in seen:
            raise _fail(f"{what}: header {name} appears twice (as {seen[name.lower()]!r})")
        seen[name.lower()] = name
    idem = next((v for k, v in request.headers.items() if k.lower() == "idempotency-key"), None)
    if idem is not None and idem != event.idempotency_key:
        raise _fail(f"{what}: Idempotency-Key must be event.idempotency_key, got {idem!r}")
    if case.body_is_json:
        try:
            json.loads(request.body)
        except ValueError as exc:
            raise _fail(f"{what}: the body is not valid JSON ({exc})") from exc
        ctype = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        if not ctype.startswith("application/json"):
            raise _fail(f"{what}: a JSON body needs Content-Type: application/json, got {ctype!r}")
    else:
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(f"{what}: the body is not UTF-8 text") from exc


def check_request_shape(case: ContractCase) -> None:
    """Every severity, trigger and resolve, builds a well-formed request."""
    for event in _events():
        _check_shape(case, event, _build(case, event))


def check_trigger_and_resolve(case: ContractCase) -> None:
    """A ``resolve`` is distinguishable from the ``trigger`` of the same episode."""
    trigger = _build(case, make_event())
    resolve = _build(case, make_event(action="resolve"))
    if (trigger.url, trigger.body, dict(trigger.headers)) == (
        resolve.url,
        resolve.body,
        dict(resolve.headers),
    ):
        raise _fail("a resolve event builds the same request as its trigger")


def check_sparse_and_unicode_events(case: ContractCase) -> None:
    """Optional fields absent (no run id, reasons, timestamp, summary) and non-ASCII text."""
    sparse = make_event(
        run_id=None, reason_codes=(), escalation={}, escalation_timestamp=None, summary=""
    )
    fancy = make_event(
        summary='naïve "quoted" <tag> & ✓ — line one\nline two\ttab',
        escalation={"note": "façade ✓ \u0000 \x7f", "n": 1.5, "big": 2**53, "ok": False},
    )
    for event in (sparse, fancy, make_event(action="resolve", run_id=None, summary="")):
        _check_shape(case, event, _build(case, event))


def check_no_local_paths(case: ContractCase) -> None:
    """No absolute path of the machine reaches the wire (DECISIONS Q-19).

    Uses :func:`event_with_local_paths`; also checks the current working directory and the
    home directory (when they have at least two components) never appear.
    """
    probes = [LOCAL_PATH_PROBE]
    for local in (os.getcwd(), str(Path.home())):
        if len(Path(local).parts) >= 3:
            probes.append(local)
    for action in ("trigger", "resolve"):
        request = _build(case, event_with_local_paths(action=action))
        texts = [request.url, *request.headers.values(), *_body_texts(request)]
        for probe in probes:
            if any(probe in text for text in texts):
                raise _fail(f"({action}) the request leaks the local path {probe!r}")


def check_no_secret_leaks(case: ContractCase) -> None:
    """Secret values only where the wire format needs them.

    Allowed: the URL, the ``Authorization`` header, and the body for the env names in
    ``body_secret_envs`` (e.g. a PagerDuty routing key). Never any other header, never the
    body otherwise.
    """
    secrets = {name: case.env[name] for name in _secret_names(case) if case.env.get(name)}
    for event in (make_event(), make_event(action="resolve")):
        request = _build(case, event)
        texts = _body_texts(request)
        for name, value in secrets.items():
            for header, hvalue in request.headers.items():
                if value in hvalue and header.lower() != "authorization":
                    raise _fail(f"the value of {name} leaks into header {header}")
            if name not in case.body_secret_envs and any(value in t for t in texts):
                raise _fail(
                    f"the value of {name} leaks into the body (declare it in body_secret_envs "
                    "only if the provider's wire format requires it there)"
                )


def check_destination_key(case: ContractCase) -> None:
    """``destination_key`` is a non-empty string, the same on every call."""
    config, env = _fresh(case)
    first = case.sink.destination_key(config, env)
    second = case.sink.destination_key(copy.deepcopy(config), dict(env))
    if not isinstance(first, str) or not first:
        raise _fail(f"destination_key must be a non-empty str, got {type(first).__name__}")
    if first != second:
        raise _fail("destination_key is not deterministic")


def check_http_roundtrip(case: ContractCase) -> None:
    """A real HTTP server receives exactly the body and headers the sink built."""
    request = _build(case, make_event())
    with LoopbackReceiver() as receiver:
        status = post_request(request, url=receiver.url_for("/contract"))
        if status != 200:
            raise _fail(f"the loopback receiver answered {status}")
        got = receiver.wait_for(1)[0]
    if got.body != request.body:
        raise _fail("the server received a different body than the sink built")
    for name, value in request.headers.items():
        if got.header(name) != value:
            raise _fail(f"header {name} did not arrive intact")


#: every contract check, in the order :func:`check_sink` runs them
CHECKS: tuple[Callable[[ContractCase], None], ...] = (
    check_identity,
    check_registration,
    check_accepts_sample,
    check_rejects_broken,
    check_secret_envs,
    check_deterministic,
    check_request_shape,
    check_trigger_and_resolve,
    check_sparse_and_unicode_events,
    check_no_local_paths,
    check_no_secret_leaks,
    check_destination_key,
    check_http_roundtrip,
)


def check_sink(
    sink: Sink,
    sample_config: Mapping[str, Any],
    sample_env: Mapping[str, str],
    **options: Any,
) -> None:
    """Run the whole contract on ``sink`` without pytest; raise :class:`ContractFailure`.

    ``options`` are the other :class:`ContractCase` fields (``plugin``, ``body_is_json``,
    ``body_secret_envs``, ``invalid_configs``, ``sink_id``).
    """
    if "body_secret_envs" in options:
        options["body_secret_envs"] = frozenset(options["body_secret_envs"])
    if "invalid_configs" in options:
        options["invalid_configs"] = tuple(options["invalid_configs"])
    case = ContractCase(sink=sink, config=sample_config, env=sample_env, **options)
    for check in CHECKS:
        check(case)


class SinkContract:
    """Base class for a sink plugin's contract tests: set the attributes, inherit the tests.

    Required: ``sink`` (an instance), ``sample_config`` (a valid, enabled config entry of
    this sink's type) and ``sample_env`` (values for every variable the config references;
    make them distinctive, e.g. ``"https://hooks.example.test/T0/B0/s3cr3t"``, so the leak
    checks mean something). Optional: ``plugin``, ``body_is_json``, ``body_secret_envs``,
    ``invalid_configs`` (see :class:`ContractCase`).
    """

    sink: Sink
    sample_config: Mapping[str, Any]
    sample_env: Mapping[str, str]
    plugin: object | None = None
    body_is_json: bool = True
    body_secret_envs: Iterable[str] = ()
    invalid_configs: Sequence[tuple[Mapping[str, Any], str]] = ()

    def contract_case(self) -> ContractCase:
        """The :class:`ContractCase` built from the class attributes."""
        return ContractCase(
            sink=self.sink,
            config=self.sample_config,
            env=self.sample_env,
            plugin=self.plugin,
            body_is_json=self.body_is_json,
            body_secret_envs=frozenset(self.body_secret_envs),
            invalid_configs=tuple(self.invalid_configs),
        )

    def test_contract_identity(self) -> None:
        """See :func:`check_identity`."""
        check_identity(self.contract_case())

    def test_contract_registration(self) -> None:
        """See :func:`check_registration`."""
        check_registration(self.contract_case())

    def test_contract_accepts_sample_config(self) -> None:
        """See :func:`check_accepts_sample`."""
        check_accepts_sample(self.contract_case())

    def test_contract_rejects_broken_configs(self) -> None:
        """See :func:`check_rejects_broken`."""
        check_rejects_broken(self.contract_case())

    def test_contract_secret_envs(self) -> None:
        """See :func:`check_secret_envs`."""
        check_secret_envs(self.contract_case())

    def test_contract_deterministic_and_pure(self) -> None:
        """See :func:`check_deterministic`."""
        check_deterministic(self.contract_case())

    def test_contract_request_shape(self) -> None:
        """See :func:`check_request_shape`."""
        check_request_shape(self.contract_case())

    def test_contract_trigger_and_resolve(self) -> None:
        """See :func:`check_trigger_and_resolve`."""
        check_trigger_and_resolve(self.contract_case())

    def test_contract_sparse_and_unicode_events(self) -> None:
        """See :func:`check_sparse_and_unicode_events`."""
        check_sparse_and_unicode_events(self.contract_case())

    def test_contract_no_local_paths(self) -> None:
        """See :func:`check_no_local_paths`."""
        check_no_local_paths(self.contract_case())

    def test_contract_no_secret_leaks(self) -> None:
        """See :func:`check_no_secret_leaks`."""
        check_no_secret_leaks(self.contract_case())

    def test_contract_destination_key(self) -> None:
        """See :func:`check_destination_key`."""
        check_destination_key(self.contract_case())

    def test_contract_http_roundtrip(self) -> None:
        """See :func:`check_http_roundtrip`."""
        check_http_roundtrip(self.contract_case())


# --------------------------------------------------------------------------- fakes


@attrs.frozen
class FakeSinkCall:
    """One ``build_request`` call seen by a :class:`FakeSink` (env values are not kept)."""

    sink_id: str
    config: Mapping[str, Any]
    event: AlertEvent


class FakeSink:
    """A minimal, contract-abiding sink for core tests; it records every ``build_request``.

    Config: ``urlEnv`` (required env-var name holding the target URL). The body is a compact
    JSON summary of the event. Set ``error`` to make ``build_request`` raise it.
    """

    def __init__(
        self,
        type: str = "fake",
        *,
        package: str = "ops-manager-fake-sink",
        min_interval_seconds: float = 0.0,
        error: Exception | None = None,
    ) -> None:
        self.type = type
        self.package = package
        self.min_interval_seconds = min_interval_seconds
        self.error = error
        self.calls: list[FakeSinkCall] = []

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        """``urlEnv`` must be an env-var name; ``timeoutSeconds`` 1..120 when present."""
        problems: list[str] = []
        url_env = config.get("urlEnv")
        if not isinstance(url_env, str) or not ENV_NAME_PATTERN.match(url_env):
            problems.append(f"sink '{sink_id}': urlEnv must be an env var name")
        timeout = config.get("timeoutSeconds")
        if (
            timeout is not None
            and timeout is not False
            and (
                isinstance(timeout, bool)
                or not isinstance(timeout, int | float)
                or not 1 <= timeout <= 120
            )
        ):
            problems.append(f"sink '{sink_id}': timeoutSeconds must be a number from 1 to 120")
        return problems

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        """The ``urlEnv`` name."""
        return [str(config["urlEnv"])]

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """The target URL."""
        return self._url(config, env)

    def _url(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        name = str(config["urlEnv"])
        url = env.get(name)
        if not url:
            raise SinkConfigError(f"fake sink url env is unset: {name}")
        return url

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        """Record the call, then build ``POST <url>`` with a JSON summary of ``event``."""
        self.calls.append(FakeSinkCall(sink_id, copy.deepcopy(dict(config)), event))
        if self.error is not None:
            raise self.error
        body = {
            "sinkId": sink_id,
            "action": event.action,
            "loopId": event.loop_id,
            "runId": event.run_id,
            "traceId": event.trace_id,
            "category": event.category,
            "severity": event.severity,
            "reasonCodes": list(event.reason_codes),
            "dedupKey": event.dedup_key,
        }
        return SinkRequest(
            url=self._url(config, env),
            body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": event.idempotency_key,
            },
        )


@contextlib.contextmanager
def install_sink(sink: Sink, *, name: str | None = None) -> Iterator[Sink]:
    """Register ``sink`` in the process plugin manager for the ``with`` block.

    Core code then finds it through :func:`ops_manager.sinks.get_sink`, exactly like an
    installed plugin. It is unregistered on exit, even on error.
    """
    from ops_manager.hookspecs import hookimpl
    from ops_manager.plugins import get_plugin_manager

    class _Plugin:
        @hookimpl
        def opsmgr_register_sinks(
            self, register: Callable[[str, Callable[[], Sink]], None]
        ) -> None:
            register(sink.type, lambda: sink)

    pm = get_plugin_manager()
    plugin = _Plugin()
    pm.register(plugin, name=name or f"testing-sink-{sink.type}-{id(plugin)}")
    try:
        yield sink
    finally:
        pm.unregister(plugin)


# --------------------------------------------------------------------------- loopback HTTP


@attrs.frozen
class Reply:
    """One scripted HTTP answer of a :class:`LoopbackReceiver`."""

    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def retry_after(cls, seconds: int | str = 1, status: int = 429) -> Reply:
        """``429 Too Many Requests`` (or ``status``) with ``Retry-After: <seconds>``."""
        return cls(status, b"rate limited", {"Retry-After": str(seconds)})

    @classmethod
    def of(cls, value: int | Reply) -> Reply:
        """``value`` as a :class:`Reply` (an int is a status with a short body)."""
        if isinstance(value, Reply):
            return value
        return cls(value, b"ok" if 200 <= value < 300 else f"status {value}".encode())


@attrs.frozen
class RecordedRequest:
    """One request a :class:`LoopbackReceiver` received, and what it answered."""

    method: str
    path: str
    #: every header as received, in order, duplicates kept
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: the status the receiver answered with
    status: int

    @property
    def accepted(self) -> bool:
        """Whether the receiver answered 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, receiver: LoopbackReceiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: requests may carry secrets."""

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        reply = self.server.receiver._record(
            self.command, self.path, tuple(self.headers.items()), body
        )
        self.close_connection = True
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _handle


class LoopbackReceiver:
    """A real HTTP server on 127.0.0.1 (random port, own thread) that records requests.

    Use it as a context manager (it always stops)::

        with LoopbackReceiver([503, Reply.retry_after(1), 200]) as rx:
            requests.post(rx.url_for("/hook"), data=b"{}")
            ...
            assert rx.accepted()[0].json() == {}

    It answers the scripted replies in order (an ``int`` is a status), then ``default``.
    :meth:`script` replaces the remaining script at any time.
    """

    def __init__(
        self,
        script: Iterable[int | Reply] = (),
        *,
        default: int | Reply = 200,
        name: str = "receiver",
    ) -> None:
        self.name = name
        self._lock = threading.Condition()
        self._script: deque[Reply] = deque(Reply.of(r) for r in script)
        self._default = Reply.of(default)
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------
    def start(self) -> LoopbackReceiver:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LoopbackReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (the receiver must be started)."""
        if self._server is None:
            raise RuntimeError(f"loopback receiver {self.name!r} is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str = "/") -> str:
        """The URL of ``path`` on this receiver."""
        return self.url + (path if path.startswith("/") else "/" + path)

    # scripting -----------------------------------------------------------------------
    def script(self, *replies: int | Reply, default: int | Reply | None = None) -> None:
        """Replace the pending script (and optionally the default reply)."""
        with self._lock:
            self._script = deque(Reply.of(r) for r in replies)
            if default is not None:
                self._default = Reply.of(default)

    def _record(
        self, method: str, path: str, headers: tuple[tuple[str, str], ...], body: bytes
    ) -> Reply:
        with self._lock:
            reply = self._script.popleft() if self._script else self._default
            self._requests.append(RecordedRequest(method, path, headers, body, reply.status))
            self._lock.notify_all()
            return reply

    # observations --------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def accepted(self) -> list[RecordedRequest]:
        """The requests answered with 2xx."""
        return [r for r in self.requests if r.accepted]

    def clear(self) -> None:
        """Forget the requests received so far (the script is kept)."""
        with self._lock:
            self._requests.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; raise ``TimeoutError`` if not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.name}: expected {count} requests, got {len(self._requests)}"
                    )
                self._lock.wait(left)
            return list(self._requests)


def post_request(request: SinkRequest, *, url: str | None = None, timeout: float = 5.0) -> int:
    """POST a :class:`SinkRequest` with ``requests`` (to ``url`` if given); return the status.

    For tests only: core owns real delivery (retries, pacing, outbox).
    """
    import requests

    response = requests.post(
        url or request.url,
        data=request.body,
        headers=dict(request.headers),
        timeout=timeout,
        allow_redirects=False,
    )
    return int(response.status_code)
