"""The core stays pure: imports point domain ← config ← adapters ← service ← runtime.

Also: the core reads no clock (time comes in as record timestamps, docs/time.md) and uses
absolute imports only (a relative import would slip past the layer check).
"""

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
    # VADER: the sentiment scorer (adapters/sentiment.py), injected into the engine.
    "adapters": {"orjson", "vaderSentiment"},
    "service": {"orjson"},
}
FORBIDDEN_STDLIB_IN_CORE = {"asyncio", "time", "socket", "threading"}
# Clock reads, by the module path they resolve to; forbidden in the layers below.
CLOCK_READS = {
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.monotonic_ns",
    "time.perf_counter",
    "time.perf_counter_ns",
}
CLOCKLESS_LAYERS = ("domain", "config", "service")
ABSOLUTE_IMPORT_LAYERS = ("domain", "config", "adapters", "service")


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


def imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name → the module path it stands for (`dt` → `datetime.datetime`)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def clock_reads(source: str, filename: str = "<test>") -> list[tuple[int, str]]:
    """Every use (call or reference) of a clock-reading function, resolved through imports."""
    tree = ast.parse(source, filename)
    bound = imported_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name | ast.Attribute):
            continue
        name = dotted(node)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        if head not in bound:
            continue
        resolved = bound[head] + ("." + rest if rest else "")
        if resolved in CLOCK_READS:
            found.append((node.lineno, resolved))
    return found


def relative_imports(source: str, filename: str = "<test>") -> list[int]:
    tree = ast.parse(source, filename)
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]


@pytest.mark.parametrize("layer", CLOCKLESS_LAYERS)
def test_core_reads_no_clock(layer: str) -> None:
    """Decisions take time from records (an explicit `now`), never from the machine."""
    for path in layer_files(layer):
        found = clock_reads(path.read_text(), str(path))
        assert not found, f"{path.relative_to(PACKAGE)} reads the clock: {found}"


@pytest.mark.parametrize("layer", ABSOLUTE_IMPORT_LAYERS)
def test_core_uses_absolute_imports(layer: str) -> None:
    for path in layer_files(layer):
        lines = relative_imports(path.read_text(), str(path))
        assert not lines, f"{path.relative_to(PACKAGE)}:{lines}: relative import"


@pytest.mark.parametrize(
    "source",
    [
        "import time\nt = time.time()",
        "import time as t\nx = t.monotonic()",
        "from time import perf_counter\nx = perf_counter()",
        "from time import monotonic as m\nclock = m",
        "import datetime\nx = datetime.datetime.now()",
        "from datetime import datetime\nx = datetime.utcnow()",
        "from datetime import datetime as dt, UTC\nx = dt.now(UTC)",
        "from datetime import date\nx = date.today()",
    ],
)
def test_clock_reads_are_found_however_imported(source: str) -> None:
    assert clock_reads(source)


def test_clock_check_ignores_look_alikes() -> None:
    source = (
        "from datetime import UTC, datetime\n"
        "now = 5\n"
        "x = datetime.fromtimestamp(now / 1000, UTC)\n"
        "y = state.time + event.now\n"
    )
    assert clock_reads(source) == []
    assert relative_imports("from . import engine\nfrom .state import X\n") == [1, 2]
