"""How the report writes numbers and tables, in one place so every section reads alike."""

from __future__ import annotations

from collections.abc import Iterable


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def ms(value: float) -> str:
    """A latency: one decimal under 100 ms, whole milliseconds above."""
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def cpu_ms(value: float) -> str:
    """CPU milliseconds per operation: two decimals under 1 ms, one under 100 ms."""
    if value < 1:
        return f"{value:.2f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def short_service(name: str) -> str:
    """``booking_service`` → ``booking``, for lists that name every service."""
    return name.removesuffix("_service")
