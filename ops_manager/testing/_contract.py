"""The whole contract: :data:`CHECKS`, :func:`check_sink` and the :class:`SinkContract` base."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ops_manager.sinks import Sink
from ops_manager.testing._case import ContractCase
from ops_manager.testing._checks import (
    check_accepts_sample,
    check_destination_key,
    check_deterministic,
    check_http_roundtrip,
    check_identity,
    check_no_local_paths,
    check_no_secret_leaks,
    check_registration,
    check_rejects_broken,
    check_request_shape,
    check_secret_envs,
    check_sparse_and_unicode_events,
    check_trigger_and_resolve,
)

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
