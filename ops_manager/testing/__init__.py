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
from ops_manager.testing._contract import CHECKS, SinkContract, check_sink
from ops_manager.testing._events import (
    CONTRACT_SINK_ID,
    ENV_NAME_PATTERN,
    LOCAL_PATH_PROBE,
    ContractFailure,
    event_with_local_paths,
    make_event,
)
from ops_manager.testing._fakes import FakeSink, FakeSinkCall, install_sink
from ops_manager.testing._receiver import (
    LoopbackReceiver,
    RecordedRequest,
    Reply,
    post_request,
)

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
