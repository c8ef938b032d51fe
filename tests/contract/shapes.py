"""What a client of the Go original reads, checked field by field (ORIGINAL_API.md).

A *shape* maps each field the original sends to the JSON type its clients expect: ``int``,
``float`` (any JSON number: Go's float64 money and prices), ``str``, ``bool``, ``None``
(always null, as gorm's ``DeletedAt``), a nested shape (an object), or a one-item list of
a shape (an array of those). ``Optional(x)`` allows null as well. Fields the port adds are
allowed: rule 3 keeps the original's fields and lets the port add its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Optional:
    shape: Any


NUMBER = float  # a JSON number, integer or not (Go's float64)


def mismatches(value: Any, shape: Any, path: str = "$") -> list[str]:
    """Every way ``value`` differs from ``shape`` (empty when it fits)."""
    if isinstance(shape, Optional):
        return [] if value is None else mismatches(value, shape.shape, path)
    if shape is None:
        return [] if value is None else [f"{path}: expected null, got {value!r}"]
    if shape is NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if shape is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected an integer, got {value!r}"]
    if shape in (str, bool):
        ok = isinstance(value, shape)
        return [] if ok else [f"{path}: expected {shape.__name__}, got {value!r}"]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{path}: expected an array, got {type(value).__name__}"]
        return [
            m for i, item in enumerate(value) for m in mismatches(item, shape[0], f"{path}[{i}]")
        ]
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        found: list[str] = []
        for name, inner in shape.items():
            if name not in value:
                found.append(f"{path}.{name}: missing")
            else:
                found += mismatches(value[name], inner, f"{path}.{name}")
        return found
    raise TypeError(f"not a shape: {shape!r}")


def assert_shape(value: Any, shape: Any) -> None:
    problems = mismatches(value, shape)
    assert not problems, "the original's clients would break:\n  " + "\n  ".join(problems)
