"""The pure helpers reducers use live in ``ops_manager.model``; the shell's modules re-export
the same objects under the names users and plugin authors know."""

from __future__ import annotations

import pickle
import subprocess
import sys

import ops_manager._jsonfmt as jsonfmt
import ops_manager._timefmt as timefmt
import ops_manager.errors as errors
import ops_manager.model._json as model_json
import ops_manager.model._time as model_time
import ops_manager.model.alert_event as model_alert_event
import ops_manager.model.errors as model_errors
import ops_manager.sinks as sinks
import ops_manager.sinks._contract as sinks_contract


def test_the_reexports_are_the_model_objects() -> None:
    for name in jsonfmt.__all__:
        assert getattr(jsonfmt, name) is getattr(model_json, name), name
    assert timefmt.format_ts is model_time.format_ts
    assert timefmt.parse_ts is model_time.parse_ts
    assert errors.OpsError is model_errors.OpsError
    assert errors.CorruptStreamError is model_errors.CorruptStreamError
    assert sinks.AlertEvent is sinks_contract.AlertEvent is model_alert_event.AlertEvent


def test_public_types_keep_the_module_users_see() -> None:
    assert errors.OpsError.__module__ == "ops_manager.errors"
    assert errors.CorruptStreamError.__module__ == "ops_manager.errors"
    assert sinks.AlertEvent.__module__ == "ops_manager.sinks"
    # pickle finds a class by its __module__: the public name must resolve to the same class
    err = pickle.loads(pickle.dumps(errors.OpsError("boom", exit_code=2)))
    assert (type(err), str(err), err.exit_code) == (errors.OpsError, "boom", 2)


def test_an_opserror_raised_in_the_model_is_caught_as_the_public_one() -> None:
    try:
        raise model_errors.OpsError("boom", exit_code=2)
    except errors.OpsError as caught:
        assert (caught.message, caught.exit_code) == ("boom", 2)


def test_the_clock_stays_outside_the_model() -> None:
    assert not hasattr(model_time, "utc_now_epoch")
    assert callable(timefmt.utc_now_epoch)


def test_the_json_time_and_error_helpers_load_without_attrs() -> None:
    """``status`` must not import attrs; these three are on its path."""
    script = (
        "import sys\n"
        "import ops_manager._jsonfmt, ops_manager._timefmt, ops_manager.errors\n"
        "print(sorted(m for m in ('attrs', 'hashlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
