"""The package's shape: short functions everywhere (the layer contract runs in scripts/test)."""

from __future__ import annotations

import ast
from pathlib import Path

import truefoundry_tracing

PACKAGE = Path(truefoundry_tracing.__file__).parent
LONGEST = 80


def test_every_function_is_shorter_than_80_lines() -> None:
    long: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length >= LONGEST:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length})")
    assert not long, "functions of 80 lines or more: " + ", ".join(long)


def test_the_layer_contract_names_every_module_of_the_package() -> None:
    """A new module must be placed in a layer of pyproject.toml, or the contract ignores it."""
    import tomllib

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layered = {name.strip() for layer in contracts[0]["layers"] for name in layer.split(":")}
    modules = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert modules == layered
