"""The :class:`ContractCase` and the helpers every contract check builds requests with."""

from __future__ import annotations

import builtins
import contextlib
import copy
import io
import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from ops_manager.sinks import SEVERITIES, AlertEvent, Sink, SinkRequest
from ops_manager.testing._events import (
    CONTRACT_SINK_ID,
    OS_ENVIRON_MARK,
    ContractFailure,
    make_event,
)

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


def contract_failure(message: str) -> ContractFailure:
    return ContractFailure(message)


def fresh_config(case: ContractCase) -> tuple[dict[str, Any], dict[str, str]]:
    return copy.deepcopy(dict(case.config)), dict(case.env)


@contextlib.contextmanager
def no_side_effects(secret_names: Iterable[str]) -> Iterator[None]:
    """Forbid file, socket and process I/O; plant decoy values in ``os.environ``."""

    def forbidden(what: str) -> Callable[..., Any]:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise ContractFailure(f"build_request must be pure, but it tried to {what}")

        return refuse

    saved_env: dict[str, str | None] = {}
    for name in secret_names:
        saved_env[name] = os.environ.get(name)
        os.environ[name] = f"{OS_ENVIRON_MARK}-{name}"
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


def build_case_request(
    case: ContractCase, event: AlertEvent, env: Mapping[str, str] | None = None
) -> SinkRequest:
    config, sample_env = fresh_config(case)
    use_env = dict(sample_env if env is None else env)
    secret_names = case_secret_names(case)
    with no_side_effects(secret_names):
        request = case.sink.build_request(case.sink_id, config, event, use_env)
    if not isinstance(request, SinkRequest):
        raise contract_failure(
            f"build_request returned {type(request).__name__}, expected SinkRequest"
        )
    text = _request_text(request)
    if OS_ENVIRON_MARK in text:
        raise contract_failure(
            "build_request read a secret from os.environ; use the `env` argument"
        )
    return request


def case_secret_names(case: ContractCase) -> list[str]:
    config, _ = fresh_config(case)
    names = case.sink.secret_envs(config)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise contract_failure(f"secret_envs must return a list of str, got {names!r}")
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


def body_texts(request: SinkRequest) -> list[str]:
    """The body as text plus, when it is JSON, every decoded string (escapes undone)."""
    raw = request.body.decode("utf-8", "replace")
    texts = [raw]
    with contextlib.suppress(ValueError):
        texts.extend(_json_strings(json.loads(request.body)))
    return texts


def sample_events() -> list[AlertEvent]:
    out = [make_event(severity=s) for s in SEVERITIES]
    out += [make_event(action="resolve", severity=s) for s in SEVERITIES]
    return out
