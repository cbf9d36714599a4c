"""The contract checks: one ``check_*`` function per rule a sink must follow."""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops_manager.sinks import AlertEvent, Sink, SinkConfigError, SinkRequest
from ops_manager.testing._case import (
    ContractCase,
    body_texts,
    build_case_request,
    case_secret_names,
    contract_failure,
    fresh_config,
    no_side_effects,
    sample_events,
)
from ops_manager.testing._events import (
    ENV_NAME_PATTERN,
    HEADER_NAME,
    LOCAL_PATH_PROBE,
    TYPE_NAME,
    event_with_local_paths,
    make_event,
)
from ops_manager.testing._receiver import LoopbackReceiver, post_request


def check_identity(case: ContractCase) -> None:
    """``type`` is a lowercase name, ``package`` a distribution name, pacing a number >= 0."""
    sink = case.sink
    if not isinstance(sink.type, str) or not TYPE_NAME.match(sink.type):
        raise contract_failure(
            f"sink.type must be a lowercase name like 'my_sink', got {sink.type!r}"
        )
    if not isinstance(sink.package, str) or not sink.package.strip():
        raise contract_failure(
            f"sink.package must name the distribution to install, got {sink.package!r}"
        )
    interval = sink.min_interval_seconds
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or interval < 0
    ):
        raise contract_failure(f"sink.min_interval_seconds must be a number >= 0, got {interval!r}")


def check_registration(case: ContractCase) -> None:
    """The plugin's ``opsmgr_register_sinks`` hookimpl registers this sink's type."""
    if case.plugin is None:
        return
    hook = getattr(case.plugin, "opsmgr_register_sinks", None)
    if hook is None:
        raise contract_failure("the plugin has no opsmgr_register_sinks function")
    if not hasattr(hook, "ops_manager_impl"):
        raise contract_failure(
            "opsmgr_register_sinks is not decorated with ops_manager.hookspecs.hookimpl"
        )
    registered: dict[str, Any] = {}

    def register(sink_type: str, factory: Callable[[], Sink]) -> None:
        if sink_type in registered:
            raise contract_failure(f"the plugin registers sink type {sink_type!r} twice")
        registered[sink_type] = factory

    hook(register=register)
    factory = registered.get(case.sink.type)
    if factory is None:
        raise contract_failure(
            f"the plugin does not register {case.sink.type!r} (got {sorted(registered)})"
        )
    made = factory()
    if getattr(made, "type", None) != case.sink.type:
        raise contract_failure(
            f"the factory for {case.sink.type!r} returned a sink of another type"
        )


def check_accepts_sample(case: ContractCase) -> None:
    """``validate_config`` returns ``[]`` for the sample config."""
    config, _ = fresh_config(case)
    problems = case.sink.validate_config(case.sink_id, config)
    if problems != []:
        raise contract_failure(f"validate_config rejected the sample config: {problems!r}")


def _broken_variants(case: ContractCase) -> list[tuple[dict[str, Any], str, str]]:
    """(config, field, why) variants every sink must reject."""
    config, _ = fresh_config(case)
    secret = set(case_secret_names(case))
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
            raise contract_failure(f"validate_config accepted {field} = {why}")
        joined = " | ".join(problems)
        if case.sink_id not in joined or field not in joined:
            raise contract_failure(
                f"validate_config's message for {field} = {why} must name the sink id "
                f"{case.sink_id!r} and the field {field!r}, got {problems!r}"
            )
    for invalid, fragment in case.invalid_configs:
        problems = case.sink.validate_config(case.sink_id, copy.deepcopy(dict(invalid)))
        if not problems or not any(fragment in p for p in problems):
            raise contract_failure(
                f"validate_config({dict(invalid)!r}) should report {fragment!r}: {problems!r}"
            )


def check_secret_envs(case: ContractCase) -> None:
    """``secret_envs`` lists exactly the variables the sample needs, and missing ones fail clearly.

    - every name matches ``^[A-Z_][A-Z0-9_]*$``, once, and has a value in the sample env;
    - with only those variables set, ``build_request`` succeeds;
    - without any one of them (unset, or set to ``""``) it raises ``SinkConfigError`` whose
      message names the variable.
    """
    names = case_secret_names(case)
    if not names:
        raise contract_failure(
            "secret_envs lists nothing: where does the sink's URL/key come from?"
        )
    if len(set(names)) != len(names):
        raise contract_failure(f"secret_envs lists a name twice: {names!r}")
    for name in names:
        if not ENV_NAME_PATTERN.match(name):
            raise contract_failure(
                f"secret_envs name {name!r} does not match {ENV_NAME_PATTERN.pattern}"
            )
        if not case.env.get(name):
            raise contract_failure(
                f"the sample env has no value for {name}, which secret_envs lists"
            )
    only = {name: case.env[name] for name in names}
    build_case_request(case, make_event(), env=only)
    for name in names:
        for label, env in (
            ("unset", {k: v for k, v in only.items() if k != name}),
            ("empty", {**only, name: ""}),
        ):
            try:
                build_case_request(case, make_event(), env=env)
            except SinkConfigError as exc:
                if name not in str(exc):
                    raise contract_failure(
                        f"with {name} {label}, SinkConfigError must name {name}: {exc}"
                    ) from exc
            else:
                raise contract_failure(
                    f"with {name} {label}, build_request must raise SinkConfigError"
                )


def check_deterministic(case: ContractCase) -> None:
    """Same input twice gives an identical request; no argument is mutated; no I/O."""
    for event in (make_event(), make_event(action="resolve")):
        before = copy.deepcopy(event.escalation)
        config, env = fresh_config(case)
        snapshot = (copy.deepcopy(config), dict(env))
        first = build_case_request(case, event)
        second = build_case_request(case, event)
        if (first.url, first.body) != (second.url, second.body):
            raise contract_failure(
                "build_request is not deterministic: two calls gave different bytes"
            )
        if list(first.headers.items()) != list(second.headers.items()):
            raise contract_failure(
                "build_request is not deterministic: two calls gave different headers"
            )
        if event.escalation != before:
            raise contract_failure("build_request mutated event.escalation")
        with no_side_effects(()):
            case.sink.build_request(case.sink_id, config, event, env)
        if (config, env) != snapshot:
            raise contract_failure("build_request mutated its config or env argument")


def _check_shape(case: ContractCase, event: AlertEvent, request: SinkRequest) -> None:
    what = f"({event.action}, {event.severity})"
    if not isinstance(request.url, str) or not re.match(r"^https?://[^\s/]+", request.url):
        raise contract_failure(f"{what}: the URL must be absolute http(s), got {request.url!r}")
    if not isinstance(request.body, bytes):
        raise contract_failure(f"{what}: the body must be bytes, got {type(request.body).__name__}")
    seen: dict[str, str] = {}
    for name, value in request.headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise contract_failure(f"{what}: invalid header name {name!r}")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise contract_failure(f"{what}: header {name} must be a str without line breaks")
        if name.lower() in seen:
            raise contract_failure(
                f"{what}: header {name} appears twice (as {seen[name.lower()]!r})"
            )
        seen[name.lower()] = name
    idem = next((v for k, v in request.headers.items() if k.lower() == "idempotency-key"), None)
    if idem is not None and idem != event.idempotency_key:
        raise contract_failure(
            f"{what}: Idempotency-Key must be event.idempotency_key, got {idem!r}"
        )
    if case.body_is_json:
        try:
            json.loads(request.body)
        except ValueError as exc:
            raise contract_failure(f"{what}: the body is not valid JSON ({exc})") from exc
        ctype = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        if not ctype.startswith("application/json"):
            raise contract_failure(
                f"{what}: a JSON body needs Content-Type: application/json, got {ctype!r}"
            )
    else:
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise contract_failure(f"{what}: the body is not UTF-8 text") from exc


def check_request_shape(case: ContractCase) -> None:
    """Every severity, trigger and resolve, builds a well-formed request."""
    for event in sample_events():
        _check_shape(case, event, build_case_request(case, event))


def check_trigger_and_resolve(case: ContractCase) -> None:
    """A ``resolve`` is distinguishable from the ``trigger`` of the same episode."""
    trigger = build_case_request(case, make_event())
    resolve = build_case_request(case, make_event(action="resolve"))
    if (trigger.url, trigger.body, dict(trigger.headers)) == (
        resolve.url,
        resolve.body,
        dict(resolve.headers),
    ):
        raise contract_failure("a resolve event builds the same request as its trigger")


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
        _check_shape(case, event, build_case_request(case, event))


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
        request = build_case_request(case, event_with_local_paths(action=action))
        texts = [request.url, *request.headers.values(), *body_texts(request)]
        for probe in probes:
            if any(probe in text for text in texts):
                raise contract_failure(f"({action}) the request leaks the local path {probe!r}")


def check_no_secret_leaks(case: ContractCase) -> None:
    """Secret values only where the wire format needs them.

    Allowed: the URL, the ``Authorization`` header, and the body for the env names in
    ``body_secret_envs`` (e.g. a PagerDuty routing key). Never any other header, never the
    body otherwise.
    """
    secrets = {name: case.env[name] for name in case_secret_names(case) if case.env.get(name)}
    for event in (make_event(), make_event(action="resolve")):
        request = build_case_request(case, event)
        texts = body_texts(request)
        for name, value in secrets.items():
            for header, hvalue in request.headers.items():
                if value in hvalue and header.lower() != "authorization":
                    raise contract_failure(f"the value of {name} leaks into header {header}")
            if name not in case.body_secret_envs and any(value in t for t in texts):
                raise contract_failure(
                    f"the value of {name} leaks into the body (declare it in body_secret_envs "
                    "only if the provider's wire format requires it there)"
                )


def check_destination_key(case: ContractCase) -> None:
    """``destination_key`` is a non-empty string, the same on every call."""
    config, env = fresh_config(case)
    first = case.sink.destination_key(config, env)
    second = case.sink.destination_key(copy.deepcopy(config), dict(env))
    if not isinstance(first, str) or not first:
        raise contract_failure(
            f"destination_key must be a non-empty str, got {type(first).__name__}"
        )
    if first != second:
        raise contract_failure("destination_key is not deterministic")


def check_http_roundtrip(case: ContractCase) -> None:
    """A real HTTP server receives exactly the body and headers the sink built."""
    request = build_case_request(case, make_event())
    with LoopbackReceiver() as receiver:
        status = post_request(request, url=receiver.url_for("/contract"))
        if status != 200:
            raise contract_failure(f"the loopback receiver answered {status}")
        got = receiver.wait_for(1)[0]
    if got.body != request.body:
        raise contract_failure("the server received a different body than the sink built")
    for name, value in request.headers.items():
        if got.header(name) != value:
            raise contract_failure(f"header {name} did not arrive intact")
