"""The core stays pure: imports point domain ← config ← adapters ← service ← runtime."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "escalator"

# What each layer may import from escalator itself.
ALLOWED = {
    "domain": {"escalator.domain", "escalator.errors"},
    "config": {"escalator.domain", "escalator.errors", "escalator.config"},
    "adapters": {"escalator.domain", "escalator.errors", "escalator.adapters"},
    "service": {"escalator.domain", "escalator.errors", "escalator.adapters", "escalator.service"},
}
# Third-party modules each layer may use; the domain gets the standard library only.
THIRD_PARTY = {
    "domain": set(),
    "config": {"ruamel", "holidays"},
    "adapters": {"orjson"},
    "service": {"orjson"},
}
FORBIDDEN_STDLIB_IN_CORE = {"asyncio", "time", "socket", "threading"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_inward(layer: str) -> None:
    files = layer_files(layer)
    assert files, f"no modules found in {layer}"
    for path in files:
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "escalator":
                assert any(name == a or name.startswith(a + ".") for a in ALLOWED[layer]), (
                    f"{path.relative_to(PACKAGE)} imports {name}"
                )
            elif top == "__future__" or top in sys.stdlib_module_names:
                if layer in ("domain", "service"):
                    assert top not in FORBIDDEN_STDLIB_IN_CORE, (
                        f"{path.relative_to(PACKAGE)} imports {name}: the core reads no clock "
                        "and does no I/O"
                    )
            else:
                assert top in THIRD_PARTY[layer], f"{path.relative_to(PACKAGE)} imports {name}"


def test_only_the_runtime_imports_faust() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "runtime" in path.parts:
            continue
        tops = {n.split(".")[0] for n in imports_of(path)}
        assert not tops & {"faust", "aiokafka", "mode"}, f"{path.relative_to(PACKAGE)}"
