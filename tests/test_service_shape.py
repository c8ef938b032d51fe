"""Five rooms, one shape: every service has the same core files, and reaches what it
shares through one typed resources object (issue 18)."""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import is_dataclass
from pathlib import Path

import pytest

from devstack.config import ROOT, SERVICES

CORE_FILES = (
    "app.py",
    "api/deps.py",
    "models.py",
    "schemas.py",
    "errors.py",
    "metrics.py",
    "consumers.py",
    "settings.py",
    "resources.py",
    "migrations/env.py",
)


def _built_in_lifecycles(path: Path) -> set[int]:
    """Lines of the lifecycles that build an app's pieces (``*_lifecycle``): they read
    ``app.state`` before the resources object exists, and so may."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.endswith(
            "lifecycle"
        ):
            lines |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_core_files(service: str) -> None:
    missing = [name for name in CORE_FILES if not (ROOT / service / name).exists()]
    assert not missing, f"{service} lacks {missing}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_shares_its_pieces_through_one_typed_resources_object(
    service: str,
) -> None:
    module = importlib.import_module(f"{service}.resources")
    resources_class = next(
        value
        for name, value in vars(module).items()
        if name.endswith("Resources") and isinstance(value, type)
    )
    assert is_dataclass(resources_class)
    assert callable(module.resources_of)
    # routes, consumers and loops ask resources_of, not app.state, for what it holds
    held = {field for field in resources_class.__dataclass_fields__}
    bare = re.compile(r"\bapp\.state\.(" + "|".join(sorted(held)) + r")\b")
    for path in sorted((ROOT / service).rglob("*.py")):
        if "tests" in path.parts or "migrations" in path.parts or path.name == "resources.py":
            continue
        building = _built_in_lifecycles(path)
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            assert number in building or not bare.search(line), (
                f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            )
