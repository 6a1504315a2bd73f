"""Profiles behind the figures: pyinstrument on the core, py-spy on a worker process.

    python -m benchmarks.profile core [EVENTS]     # pyinstrument tree + top functions (self time)
    python -m benchmarks.profile summary FILE      # summarise a py-spy --format raw file

`benchmarks.run --profile DIR` also records the e2e worker with py-spy (DIR/worker.txt) and
the core processor with pyinstrument (DIR/core.txt). Neither tool is a dependency of
escalator: `pip install pyinstrument py-spy` into the venv to use them.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import workload


def profile_dir() -> Path | None:
    value = os.environ.get("ESCALATOR_BENCH_PROFILE")
    return Path(value) if value else None


def core(events: int = 50_000) -> str:
    """Run the core stream through TicketProcessor.on_record under pyinstrument; return the
    report."""
    from pyinstrument import Profiler

    from escalator.service.tickets import TicketProcessor

    policy = workload.default_policy()
    stream = workload.stream(events, policy=policy)
    raws = workload.records(stream)
    processor = TicketProcessor(policy, {})
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for raw, arrival, partition, origin in raws:
        processor.on_record(raw, arrival, partition, origin)
    session = profiler.stop()
    tree = profiler.output_text(unicode=True, color=False, show_all=False)
    totals: collections.defaultdict[str, float] = collections.defaultdict(float)

    def name(frame: Any) -> str:
        return f"{frame.function} ({Path(frame.file_path or '?').name}:{frame.line_no})"

    areas: collections.defaultdict[str, float] = collections.defaultdict(float)

    def account(files: list[str], seconds: float) -> None:
        for file in reversed(files):
            for area, needles in CORE_AREAS:
                if any(n in file for n in needles):
                    areas[area] += seconds
                    return
        areas["other"] += seconds

    def walk(frame: Any, parent: Any, files: list[str]) -> None:
        files = [*files, frame.file_path or ""]
        if frame.is_synthetic_leaf and parent is not None:
            totals[name(parent)] += frame.time  # "[self]": time spent in the parent itself
            account(files[:-1], frame.time)
        elif not frame.children and not frame.is_synthetic:
            totals[name(frame)] += frame.time
            account(files, frame.time)
        for child in frame.children:
            walk(child, frame, files)

    root = session.root_frame(trim_stem=False)
    if root is not None:
        walk(root, None, [])
    duration = session.duration or 1.0
    top = "\n".join(
        f"{seconds / duration:6.1%}  {where}" for where, seconds in _largest(totals)[:25]
    )
    by_area = "\n".join(f"{seconds / duration:6.1%}  {area}" for area, seconds in _largest(areas))
    return (
        f"core processor, {len(raws)} events, {duration:.2f}s\n\n{tree}\n"
        f"time by area (self time of each sample, charged to its innermost escalator module):\n"
        f"{by_area}\n\ntop functions by self time:\n{top}\n"
    )


def _largest(seconds: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(seconds.items(), key=lambda item: item[1], reverse=True)


def record_worker(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Start py-spy on a worker for `seconds` (raw collapsed stacks to `out`), if installed."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return None
    command = [pyspy, "record", "-p", str(pid), "-r", "200", "-d", str(int(seconds))]
    command += ["--format", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


CORE_AREAS = (
    ("deadline index", ("deadlines.py",)),
    ("calendars (business hours, holidays)", ("calendar.py", "holiday", "policy_file.py")),
    ("state codec (orjson ⇄ TicketState, facts)", ("state_codec.py",)),
    ("CloudEvent decode/encode", ("cloudevents.py",)),
    ("open-ticket catalog", ("catalog.py",)),
    ("engine rules", ("/domain/",)),
    ("processor glue", ("processor.py",)),
)

GROUPS = (
    ("deadline index (DeadlineIndex.set/count)", ("deadlines.py",)),
    ("engine (domain)", ("/domain/",)),
    ("state codec (orjson ⇄ TicketState)", ("state_codec.py",)),
    ("CloudEvent decode/encode", ("cloudevents.py",)),
    ("table store (Faust table + RocksDB)", ("faust/stores", "faust/tables", "rocksdict")),
    ("Faust stream/agent machinery", ("faust/streams", "faust/agents", "faust/transport")),
    ("producer (Faust topic.send, aiokafka)", ("faust/topics", "aiokafka/producer")),
    ("consumer (aiokafka fetch)", ("aiokafka/consumer",)),
    ("mode/asyncio event loop", ("asyncio/", "mode/")),
    ("metrics (prometheus_client)", ("prometheus_client", "metrics.py")),
)


def summarise(path: Path, top: int = 25) -> str:
    """Self-time and inclusive shares from a py-spy raw (collapsed stacks) file."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for label, needles in GROUPS:
            if any(any(n in frame for n in needles) for frame in frames):
                inclusive[label] += count
        if any("processor.py" in frame for frame in frames):
            inclusive["TicketProcessor.on_record/on_tick (all of escalator's own work)"] += count
    if not total:
        return f"{path}: no samples"
    lines = [f"{total} samples", "", "inclusive share (a sample can count in several groups):"]
    lines += [f"{c / total:6.1%}  {label}" for label, c in inclusive.most_common()]
    lines += ["", "top frames by self time:"]
    lines += [f"{c / total:6.1%}  {frame}" for frame, c in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "core"
    if what == "core":
        events = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
        print(core(events))
    elif what == "summary":
        print(summarise(Path(sys.argv[2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
