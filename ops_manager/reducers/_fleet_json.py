"""Small JSON helpers shared by the fleet reducers (pure).

The upstream scripts lean on jq idioms (``.a.b`` on anything, ``// default``, ``unique``,
deep ``==``); these are their Python equivalents with the project's decisions applied:
``false`` is a value, not "absent" (DECISIONS rule 3), and sorting is byte order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def dig(obj: Any, *keys: str) -> Any:
    """jq ``.a.b.c`` that yields ``None`` instead of failing on a non-object."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def or_default(value: Any, fallback: Any) -> Any:
    """``value`` unless it is ``None`` (missing); ``False`` is kept (DECISIONS fleet 6.1)."""
    return fallback if value is None else value


def as_number(value: Any) -> int | float | None:
    """``value`` if it is a JSON number (booleans are not numbers), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def number_or(value: Any, fallback: int | float) -> int | float:
    """``value`` if it is a JSON number, else ``fallback``."""
    number = as_number(value)
    return fallback if number is None else number


def int_or(value: Any, fallback: int) -> int:
    """``value`` as an int if it is an integral JSON number, else ``fallback``."""
    number = as_number(value)
    if number is None or (isinstance(number, float) and not number.is_integer()):
        return fallback
    return int(number)


def bool_or(value: Any, fallback: bool) -> bool:
    """``value`` if it is a JSON boolean, else ``fallback`` (``false`` stays ``false``)."""
    return value if isinstance(value, bool) else fallback


def str_list(value: Any) -> list[str]:
    """The string entries of ``value`` if it is a list, else ``[]``."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def integral(value: int | float) -> int | float:
    """Integral floats become ints so ``1.0`` prints as ``1`` (fleet.md §0.4)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def unique_sorted(values: Iterable[str]) -> list[str]:
    """jq ``unique`` over strings: deduplicated, byte (code point) order."""
    return sorted(set(values))


def count_into(counts: dict[str, int], key: str) -> None:
    """Increment ``counts[key]``; a new key is appended (first-appearance order)."""
    counts[key] = counts.get(key, 0) + 1


def json_equal(left: Any, right: Any) -> bool:
    """Deep JSON equality: key order ignored, ``true`` never equals ``1``, ``1 == 1.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, Mapping):
        if not isinstance(right, Mapping) or left.keys() != right.keys():
            return False
        return all(json_equal(left[key], right[key]) for key in left)
    if isinstance(left, list):
        if not isinstance(right, list) or len(left) != len(right):
            return False
        return all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and bool(left == right)
