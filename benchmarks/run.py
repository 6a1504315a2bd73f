"""Run escalator's benchmarks and print one table (issue 8; method and results: docs/benchmarks.md).

    .venv/bin/python -m benchmarks.run                       # every benchmark, full size
    .venv/bin/python -m benchmarks.run --size smoke          # tiny sizes: proves they run
    .venv/bin/python -m benchmarks.run --only core timers    # a subset
    .venv/bin/python -m benchmarks.run --json out.json --profile var/profiles

The broker benchmarks use KAFKA_BOOTSTRAP_SERVERS or the local broker of scripts/kafka-local
(started if stopped, never stopped). Each benchmark uses its own topics (`bench-<random>.…`)
and deletes them afterwards.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

import orjson

from benchmarks.common import (
    SIZES,
    Result,
    machine_info,
    markdown_table,
    text_table,
)

BENCHMARKS = (
    "core",
    "e2e",
    "lifecycle",
    "timers",
    "lag",
    "memory",
    "recovery",
    "importer",
    "notify",
)
# Which of them start workers and need the broker.
BROKER = frozenset(
    {"e2e", "lifecycle", "timers", "lag", "memory", "recovery", "importer", "notify"}
)


def run_one(name: str, size: str) -> tuple[list[Result], float, str | None]:
    """Run one benchmark module; (results, seconds, error text or None)."""
    module = importlib.import_module(f"benchmarks.{name}")
    started = time.monotonic()
    try:
        results = list(module.run(size))
    except Exception:  # noqa: BLE001 - one failing benchmark must not hide the others
        return [], time.monotonic() - started, traceback.format_exc()
    return results, time.monotonic() - started, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the e2e worker and pyinstrument the core into DIR (changes the figures)",
    )
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["ESCALATOR_BENCH_PROFILE"] = str(args.profile.resolve())
    names = args.only or list(BENCHMARKS)

    info = machine_info()
    print(f"escalator benchmarks, size {args.size}")
    for key, value in info.items():
        print(f"  {key:9} {value}")
    print(flush=True)

    results: list[Result] = []
    timings: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        found, seconds, error = run_one(name, args.size)
        timings[name] = seconds
        if error:
            errors[name] = error
            print(f"!! {name} failed after {seconds:.0f}s:\n{error}", file=sys.stderr, flush=True)
        else:
            print(f"== {name}: {seconds:.0f}s", file=sys.stderr, flush=True)
        results += found
    if args.profile:
        from benchmarks.profile import core

        args.profile.mkdir(parents=True, exist_ok=True)
        events = 3_000 if args.size == "smoke" else 50_000
        (args.profile / "core.txt").write_text(core(events))

    print(markdown_table(results) if args.markdown else text_table(results))
    print()
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)")
    if errors:
        print("FAILED: " + ", ".join(errors))
    if args.json:
        payload = {
            "size": args.size,
            "machine": info,
            "seconds": timings,
            "errors": errors,
            "results": [r.as_dict() for r in results],
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
