"""JSON Schema validation against the schemas users read (``schema/*.json``).

The schemas ship as package data (``ops_manager/data/``, kept equal to ``schema/`` by
``tests/test_contract_schema.py``) so an installed wheel validates exactly what the repository
documents. jsonschema is heavy to import, so it is imported on the first validation only, and
each validator is built once per process: a pass that validates nothing never pays for it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import attrs

#: the packaged schema file names, by the document they describe
FLEET_REGISTRY_SCHEMA = "ops-manager-fleet.registry.schema.json"
ALERT_SINKS_SCHEMA = "ops-manager-alert-sinks.config.schema.json"


@attrs.frozen
class SchemaError:
    """One jsonschema failure, reduced to what an error table keys on.

    ``path`` is the instance path (ints for array indexes; for a ``required`` failure the
    missing property is appended, so the path names the absent field); ``validator`` is the
    failing keyword (an ``additionalProperties`` failure is one error per extra key, with the key
    appended to the path); ``conditional`` is true when the failure comes from an ``if``/``then``
    rule (callers that restate such a rule with the contract's wording skip those).
    """

    path: tuple[str | int, ...]
    validator: str
    instance: Any
    conditional: bool
    #: the (sub)schema holding the failing keyword (bounds for a message, for instance)
    schema: Any = None


def load_schema(name: str) -> dict[str, Any]:
    """The packaged schema ``name`` (one of the ``*_SCHEMA`` constants), parsed."""
    from importlib import resources  # only when a schema is needed (~2 ms at start-up)

    text = resources.files("ops_manager.data").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator(name: str) -> Any:
    # imported here, not at module level: it costs tens of milliseconds (see the docstring)
    from jsonschema.validators import validator_for

    schema = load_schema(name)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(name: str, doc: object) -> Iterator[SchemaError]:
    """Every failure of ``doc`` against the packaged schema ``name``. Never raises on ``doc``."""
    seen_required: set[tuple[Any, ...]] = set()
    for error in _validator(name).iter_errors(doc):
        path = tuple(error.absolute_path)
        conditional = "then" in error.absolute_schema_path
        names: list[Any] = [None]
        if error.validator == "required":
            # jsonschema yields one error per missing property without naming it as data:
            # expand the first error of a ``required`` keyword into all its missing names
            key = (path, tuple(error.absolute_schema_path))
            if key in seen_required:
                continue
            seen_required.add(key)
            names = [k for k in error.validator_value if k not in error.instance]
        elif error.validator == "additionalProperties" and error.validator_value is False:
            known = error.schema.get("properties", {})
            names = [k for k in error.instance if k not in known]
        for name_ in names:
            yield SchemaError(
                path=path if name_ is None else (*path, name_),
                validator=str(error.validator),
                instance=error.instance,
                conditional=conditional,
                schema=error.schema,
            )
