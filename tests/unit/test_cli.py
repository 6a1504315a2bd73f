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
        "targets, pauses, tiers, triggers, alerts, lateness, import, context, schedules, "
        "maintenance, sources, credits"
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


SCHEDULED = """version: s
targets:
  - {name: all, calendar: 24x7, resolution: 4h}
tiers:
  - {name: L1, owner: "schedule:primary"}
schedules:
  primary:
    timezone: America/New_York
    layers:
      - participants: ["user:alice", "user:bob", "user:carol"]
        shift: 1w
        handoff: "09:00"
        start: 2026-03-02
  backup:
    timezone: UTC
    layers:
      - {participants: ["user:zoe"], shift: 1d, handoff: "00:00", start: 2026-01-01}
"""


def test_schedule_show_prints_the_shifts_in_utc_and_local_time(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(SCHEDULED)
    span = ("--from", "2026-03-01T00:00:00Z", "--to", "2026-03-17T00:00:00Z")
    done = run("schedule", "show", "primary", *span, "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    # Monday 09:00 in New York on both sides of 2026-03-08: 14:00Z (EST), then 13:00Z (EDT).
    assert done.stdout.decode().splitlines() == [
        "start (UTC)           end (UTC)             start (America/New_York)   "
        "end (America/New_York)     on call",
        "2026-03-01T00:00:00Z  2026-03-02T14:00:00Z  2026-02-28T19:00:00-05:00  "
        "2026-03-02T09:00:00-05:00  (nobody)",
        "2026-03-02T14:00:00Z  2026-03-09T13:00:00Z  2026-03-02T09:00:00-05:00  "
        "2026-03-09T09:00:00-04:00  user:alice",
        "2026-03-09T13:00:00Z  2026-03-16T13:00:00Z  2026-03-09T09:00:00-04:00  "
        "2026-03-16T09:00:00-04:00  user:bob",
        "2026-03-16T13:00:00Z  2026-03-17T00:00:00Z  2026-03-16T09:00:00-04:00  "
        "2026-03-16T20:00:00-04:00  user:carol",
    ]


def test_schedule_show_names_the_known_schedules_and_bad_ranges(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(SCHEDULED)
    span = ("--from", "2026-03-01T00:00:00Z", "--to", "2026-03-17T00:00:00Z")
    unknown = run("schedule", "show", "primry", *span, "--policy", str(policy))
    assert unknown.returncode == 2
    assert unknown.stderr.decode().splitlines()[-1] == (
        f"error: schedule 'primry' is not defined in {policy}; known: primary, backup"
    )
    backwards = ("--from", "2026-03-17T00:00:00Z", "--to", "2026-03-01T00:00:00Z")
    refused = run("schedule", "show", "primary", *backwards, "--policy", str(policy))
    assert refused.returncode == 2
    assert b"Invalid value for --to: must be after --from" in refused.stderr
    no_offset = run("schedule", "show", "primary", "--from", "2026-03-01", "--to", "2026-03-17")
    assert no_offset.returncode == 2
    assert b"--from '2026-03-01' is not an RFC 3339 date-time" in no_offset.stderr
    bare = tmp_path / "bare.yaml"
    bare.write_text(SCHEDULED.split("schedules:")[0].replace("schedule:primary", "team:l1"))
    none = run("schedule", "show", "primary", *span, "--policy", str(bare))
    assert none.returncode == 2
    assert none.stderr.decode().splitlines()[-1] == (
        f"error: schedule 'primary' is not defined in {bare}; it defines no schedules"
    )


def test_schedule_show_prints_what_docs_policy_md_shows(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    section = doc.split("## On-call schedules")[1]
    example = section.split("```yaml\n")[1].split("```")[0]
    command = section.split("`escalator schedule show ")[1].split("`")[0].split()
    shown = "start (UTC)" + section.split("```\nstart (UTC)")[1].split("```")[0]
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: doc\ntargets: [{name: all, calendar: 24x7, resolution: 4h}]\n"
        'tiers: [{name: L1, owner: "schedule:support"}]\n' + example
    )
    done = run("schedule", "show", *command, "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == shown
