"""JSON text the way the contract prints it.

Pure (no I/O, no clock), so the reducers may use it: it lives in the model layer, and
:mod:`ops_manager._jsonfmt` re-exports it for the shell.

compact = no whitespace, ``,``/``:`` separators, trailing newline (jq ``-c``);
pretty = 2-space indent (jq default). Strings stay raw UTF-8. Key order is the dict's
insertion order, which every producer builds in contract order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

JSONObject = dict[str, Any]


# one encoder each, built once: json.dumps(**kwargs) builds a new encoder on every call
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_PRETTY = json.JSONEncoder(ensure_ascii=False, indent=2, allow_nan=False)


def dumps_compact(value: Any) -> str:
    """Serialize ``value`` compactly (no trailing newline)."""
    return _COMPACT.encode(value)


def dumps_pretty(value: Any) -> str:
    """Serialize ``value`` with a 2-space indent (no trailing newline)."""
    return _PRETTY.encode(value)


def dumps(value: Any, pretty: bool = False) -> str:
    """Serialize ``value`` compact or pretty (no trailing newline)."""
    return dumps_pretty(value) if pretty else dumps_compact(value)


def json_text_bytes(text: str) -> bytes:
    """UTF-8 bytes of JSON text made by :func:`dumps` (or a line of it).

    A runtime event may carry a lone surrogate (``"\\ud800"`` parses to one); UTF-8 cannot
    encode it, and a plain ``encode`` would fail the write. In JSON text such a character can
    only sit inside a string, where ``backslashreplace`` writes it as the JSON escape
    ``\\ud800``: the same value when read back, and nothing else changes.
    """
    return text.encode("utf-8", "backslashreplace")


def strip_nulls(obj: Mapping[str, Any]) -> JSONObject:
    """Drop top-level keys whose value is ``None`` (the contract's **[strip]**).

    Nested nulls survive, as do ``False``, ``0``, ``""``, ``[]`` and ``{}``.
    """
    return {k: v for k, v in obj.items() if v is not None}


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, which are not JSON and cannot be written back out
    # (every writer uses allow_nan=False). Reject them where the data enters.
    raise ValueError(f"invalid JSON constant {name}")


#: ``str`` -> value, strictly (NaN/Infinity rejected); the runtime's event reader binds it
decode_strict = json.JSONDecoder(parse_constant=_reject_constant).decode


def loads_json(data: bytes) -> Any:
    """Parse one JSON document from UTF-8 ``data``, strictly.

    Raises :class:`ValueError` for anything that is not JSON as the contract knows it: invalid
    UTF-8, syntax errors, ``NaN``/``Infinity``, absurd nesting (``RecursionError`` is folded
    into ``ValueError``) and integers beyond Python's digit limit.
    """
    try:
        return decode_strict(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def loads_object(text: str | bytes) -> JSONObject | None:
    """Parse ``text`` as a JSON object; ``None`` if it is not valid JSON or not an object."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def nonempty_str(value: Any) -> str | None:
    """The contract's nullable-string rule: a non-empty string, else ``None``."""
    if isinstance(value, str) and value != "":
        return value
    return None


def as_nonneg_int(value: Any) -> int | None:
    """``value`` as a non-negative integer if it is one (``2.0`` counts), else ``None``.

    Booleans are not integers here, whatever Python thinks.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def coerce_number(value: Any) -> int | float:
    """jq ``tonumber`` with failure -> 0: numbers pass, numeric strings parse, else 0."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            num = float(text)
        except ValueError:
            return 0
        if num != num or num in (float("inf"), float("-inf")):
            return 0
        return int(num) if num.is_integer() else num
    return 0


def alt(*values: Any) -> Any:
    """jq's ``a // b // ...``: the first value that is neither ``None`` nor ``False``."""
    for value in values:
        if value is not None and value is not False:
            return value
    return None
