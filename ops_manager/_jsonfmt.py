"""JSON text the way the contract prints it: re-exported from the model layer.

The helpers are pure, so they live in :mod:`ops_manager.model._json`, where the reducers
import them from; the shell keeps importing them from here (the same objects).
"""

from __future__ import annotations

from ops_manager.model._json import (
    JSONObject,
    alt,
    as_nonneg_int,
    coerce_number,
    decode_strict,
    dumps,
    dumps_compact,
    dumps_pretty,
    json_text_bytes,
    loads_json,
    loads_object,
    nonempty_str,
    strip_nulls,
)

__all__ = [
    "JSONObject",
    "alt",
    "as_nonneg_int",
    "coerce_number",
    "decode_strict",
    "dumps",
    "dumps_compact",
    "dumps_pretty",
    "json_text_bytes",
    "loads_json",
    "loads_object",
    "nonempty_str",
    "strip_nulls",
]
