"""What every benchmark shares: results, sizes, timing, percentiles and machine details."""

from __future__ import annotations

import gc
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import orjson

ROOT = Path(__file__).resolve().parent.parent
Size = Literal["smoke", "full"]
SIZES: tuple[Size, ...] = ("smoke", "full")


@dataclass
class Result:
    """One figure: what was measured, against what, and whether it meets its goal.

    `ratio` is the figure the goal is about when the goal is a ratio (for instance worker ÷ raw
    aiokafka, or sweep at 1M ÷ sweep at 10k); otherwise figure ÷ baseline when there is one.
    `met` is None when the row has no goal (context figures and baselines).
    """

    name: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = self.figure / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pick(size: Size, smoke: Any, full: Any) -> Any:
    return smoke if size == "smoke" else full


# -- timing ------------------------------------------------------------------------------------


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as t: ...` then `t[0]` is the elapsed seconds."""
    out: list[float] = []
    started = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - started)


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of `repeat` runs of fn(), in seconds (GC stays enabled)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- machine details ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def _ram_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kafka_version() -> str:
    """The local broker's version as scripts/kafka-local reports it, else KAFKA_VERSION."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ.get("KAFKA_VERSION", "external broker (version not probed)")
    try:
        out = subprocess.run(
            [str(ROOT / "scripts" / "kafka-local"), "status"],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    found = re.search(r"Kafka (\S+)", out.stdout + out.stderr)
    return found.group(1).rstrip(",") if found else "unknown (broker not running?)"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _git(*args: str) -> str:
    command = ["git", "-C", str(ROOT), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _git_head() -> str:
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown"
    return f"{head}{' (+ local changes)' if dirty else ''}" if head else "unknown"


def machine_info() -> dict[str, str]:
    load = os.getloadavg()
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "ram": f"{_ram_bytes() / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kafka": kafka_version(),
        "packages": ", ".join(
            f"{name} {_version(name)}"
            for name in ("faust-streaming", "aiokafka", "orjson", "rocksdict")
        ),
        "kcat": _kcat_version(),
        "commit": _git_head(),
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)",
    }


def _kcat_version() -> str:
    kcat = shutil.which("kcat")
    if kcat is None:
        return "not installed"
    out = subprocess.run([kcat, "-V"], capture_output=True, text=True, check=False)
    found = re.search(r"Version (\S+)", out.stdout + out.stderr)
    return found.group(1) if found else "installed"


# -- formatting --------------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value != value:  # NaN
        return "n/a"
    magnitude = abs(value)
    if unit in ("B", "bytes") or magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.1:
        text = f"{value:.2f}"
    elif magnitude == 0:
        text = "0"
    else:
        text = f"{value:.3g}"
    return text


def met_text(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


COLUMNS = ("benchmark", "figure", "unit", "baseline", "ratio", "goal", "met?")


def table_rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        baseline = fmt(r.baseline)
        if r.baseline is not None and r.baseline_label:
            baseline = f"{baseline} ({r.baseline_label})"
        rows.append(
            (
                r.name,
                fmt(r.figure, r.unit),
                r.unit,
                baseline,
                "-" if r.ratio is None else f"{r.ratio:.3g}",
                r.goal or "-",
                met_text(r.met),
            )
        )
    return rows


def text_table(results: Sequence[Result]) -> str:
    rows = [COLUMNS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {r.name}: {r.notes}" for r in results if r.notes]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def markdown_table(results: Sequence[Result]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in table_rows(results):
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    return "\n".join(lines)


def module_command(module: str, *args: str) -> tuple[list[str], dict[str, str], Path]:
    """argv, env and cwd to run `python -m <module> args…` from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return [sys.executable, "-m", module, *args], env, ROOT


def run_module(module: str, *args: str, timeout: float) -> dict[str, Any]:
    """Run `python -m <module> args…` in a fresh process; its last stdout line, as JSON."""
    command, env, cwd = module_command(module, *args)
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=timeout, env=env, cwd=cwd
    )
    return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))
