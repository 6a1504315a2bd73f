"""The `escalator` command as users run it (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.helpers import ROOT

ESCALATOR = str(Path(sys.executable).parent / "escalator")
TOUR = str(ROOT / "examples" / "tour.jsonl")


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([ESCALATOR, *args], capture_output=True, input=stdin, check=False)


def test_policy_check_accepts_the_example_and_names_errors(tmp_path: Path) -> None:
    ok = run("policy", "check", str(ROOT / "examples" / "policy.yaml"))
    assert ok.returncode == 0
    assert b"version example-2026.11, 8 target rules" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\ntargets: []\ntiers: []\nsurprise: 1\n")
    failed = run("policy", "check", str(bad))
    assert failed.returncode == 2
    assert failed.stderr.decode().strip() == (
        f"error: {bad}:4: surprise: unknown key; allowed: version, calendars, warnings, "
        "targets, pauses, tiers, triggers, alerts, lateness, import, maintenance"
    )


def test_simulate_reads_stdin_and_prints_cloudevents() -> None:
    done = run("simulate", "--until", "2026-11-24T12:00:00Z", "-", stdin=Path(TOUR).read_bytes())
    assert done.returncode == 0
    docs = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert docs
    assert {d["specversion"] for d in docs} == {"1.0"}
    assert "T-100/c1/first_response/breach" in {d["id"] for d in docs}


def test_simulate_prints_the_aggregates_the_worker_would_publish() -> None:
    args = ("simulate", "--aggregates", "--until", "2026-11-24T12:00:00Z", TOUR)
    hourly = run(*args, "--aggregate-windows", "1h")
    assert hourly.returncode == 0, hourly.stderr
    docs = [orjson.loads(line) for line in hourly.stdout.splitlines()]
    assert docs
    assert {d["type"] for d in docs} == {"escalator.metrics.window"}
    assert {d["data"]["window"] for d in docs} == {"1h"}
    # The 10:00 windows close at 11:05 with the default grace; with 2 h of grace none has.
    none = run(*args, "--aggregate-windows", "1h", "--aggregate-grace", "2h")
    assert none.returncode == 0
    assert none.stdout == b""
    bad = run(*args, "--compliance-period", "quarterly")
    assert bad.returncode == 2
    assert b"--compliance-period" in bad.stderr


def test_simulate_summary_and_compare() -> None:
    summary = orjson.loads(
        run("simulate", "--summary", "--until", "2026-11-24T12:00:00Z", TOUR).stdout
    )
    assert summary["tickets"] == 3
    # Escalated functionally: T-100 (its breach escalation was retracted, but it was raised)
    # and T-102, which went L1 → L2 → L1.
    assert summary["functional_escalation_rate"] == round(2 / 3, 4)
    assert summary["bounceback_rate"] == 0.5
    # One handoff of 900 s (transfer 10:25, assigned 10:40), read from its bucket (600, 900]
    # as Prometheus' histogram_quantile does: 600 + 300 × 0.5.
    assert summary["handoff_delay_seconds"] == {"count": 1, "p50": 750.0, "p90": 870.0}
    compared = orjson.loads(
        run(
            "simulate",
            "--compare",
            str(ROOT / "examples/policy-strict.yaml"),
            "--until",
            "2026-11-24T12:00:00Z",
            TOUR,
        ).stdout
    )
    # Strict enterprise P1 (10m): the reply at 10:14 is now late for T-100.
    assert compared["breaches_gained"] == ["T-100/c1/first_response/breach"]
    assert compared["breaches_lost"] == []


def test_simulate_rejects_a_bad_until() -> None:
    done = run("simulate", "--until", "tomorrow", TOUR)
    assert done.returncode == 2
    assert b"--until" in done.stderr
