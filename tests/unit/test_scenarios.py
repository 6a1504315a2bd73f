"""Scenario files under tests/scenarios/ with hand-computed expected outputs, run through the
real `escalator simulate` command. Each `.expected` file explains its arithmetic in comments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
ESCALATOR = str(Path(sys.executable).parent / "escalator")


def expectation(path: Path) -> tuple[str, list[str], list[str]]:
    until, deadletters, lines = "", [], []
    for line in path.read_text().splitlines():
        if line.startswith("# until "):
            until = line.removeprefix("# until ")
        elif line.startswith("# deadletters: "):
            deadletters = line.removeprefix("# deadletters: ").split()
        elif line and not line.startswith("#"):
            lines.append(line)
    return until, deadletters, lines


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIOS.glob("*.jsonl")))
def test_scenario(name: str) -> None:
    until, deadletters, expected = expectation(SCENARIOS / f"{name}.expected")
    done = subprocess.run(
        [ESCALATOR, "simulate", "--until", until, str(SCENARIOS / f"{name}.jsonl")],
        capture_output=True,
        check=True,
    )
    docs = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [f"{d['time']} {d['type']} {d['id']}" for d in docs] == expected
    refused = [line.split(": ")[2] for line in done.stderr.decode().splitlines()]
    assert refused == deadletters


def test_simulate_output_is_byte_identical_across_runs() -> None:
    args = [
        ESCALATOR,
        "simulate",
        "--until",
        "2026-11-24T23:00:00Z",
        str(SCENARIOS.parent.parent / "examples" / "tour.jsonl"),
    ]
    first = subprocess.run(args, capture_output=True, check=True).stdout
    second = subprocess.run(args, capture_output=True, check=True).stdout
    assert first
    assert first == second
