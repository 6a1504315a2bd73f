"""One definition per rate: `simulate --summary`, the published aggregates and Prometheus'
recording rules compute the same figures from one generated stream.

The stream (tests/scenario_gen.py, on tests/data/policy-fast.yaml: breaches, escalations,
bouncebacks, handoffs and late replies that retract breaches) goes

- through `escalator simulate --summary` (the command, as users run it);
- through `escalator simulate --aggregates`: the rates are recomputed from the published
  counts summed over every hourly window (and, per target, over the compliance records);
- through the processor `simulate` uses with the worker's `Metrics` on a fresh registry: its
  exported counters become promtool input series (each reaching its final value within one
  hour, so `increase(...[1h])` is exact), and promtool evaluates the recording rules of
  deploy/prometheus/rules/escalator-recording.yml on them.

All must agree (the summary rounds to 4 decimals, quantiles are compared to the millisecond).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from escalator.config.policy_file import load_policy
from escalator.domain.facts import quantile
from escalator.metrics import Metrics
from escalator.service import simulate
from tests.helpers import ROOT, iso, ms
from tests.scenario_gen import generate
from tests.unit.test_deploy import run_tool

pytestmark = pytest.mark.tools

ESCALATOR = str(Path(sys.executable).parent / "escalator")
POLICY = ROOT / "tests" / "data" / "policy-fast.yaml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "escalator-recording.yml"
START = ms("2026-11-24T10:00:00Z")
UNTIL = "2026-12-01T00:10:00Z"  # every hourly, daily and monthly window has closed
JOB = 'job="escalator"'


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rates") / "stream.jsonl"
    timed = generate(400, START, seed=3, span_ms=3_600_000)
    path.write_bytes(b"\n".join(orjson.dumps({**doc, "arrivaltime": iso(at)}) for at, doc in timed))
    return path


def escalator(*args: str | Path) -> bytes:
    done = subprocess.run(
        [ESCALATOR, "simulate", "--policy", str(POLICY), "--until", UNTIL, *map(str, args)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"dead-letter" not in done.stderr
    return done.stdout


def from_aggregates(stream: Path) -> dict[str, Any]:
    """The figures from the published records: counts summed, then divided."""
    records = [
        orjson.loads(line)["data"] for line in escalator("--aggregates", stream).splitlines()
    ]
    hours = [r for r in records if r.get("window") == "1h"]
    customers = [r for r in records if "compliance" in r]
    assert hours
    assert customers
    total: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for record in hours:
        total.update({k: v for k, v in record.items() if type(v) is int})
        buckets.update(record["handoff_buckets"])
    assert min(total.values()) >= 0
    per_target: dict[str, Counter[str]] = {}
    for record in customers:
        for target, counts in record["by_target"].items():
            per_target.setdefault(target, Counter()).update(counts)
    ordered = [buckets[b] for b in sorted(buckets, key=lambda b: float(b))]
    return {
        "tickets": total["tickets_created"],
        "escalation_rate": total["tickets_escalated"] / total["tickets_created"],
        "bounceback_rate": total["tickets_bounced"] / total["tickets_escalated_functionally"],
        "breach_rate": total["breaches"] / total["targets_due"],
        "breach_rate_by_target": {
            target: c["breaches"] / c["due"] for target, c in sorted(per_target.items())
        },
        "handoffs": total["handoffs"],
        "p50": quantile(0.5, ordered),
        "p90": quantile(0.9, ordered),
    }


def exported_series(stream: Path) -> list[dict[str, str]]:
    """The worker's metrics after the same stream, as promtool input series that rise from 0
    to their final value within the hour before the evaluation."""
    registry = CollectorRegistry()
    lines = stream.read_bytes().splitlines()
    simulate.run(lines, load_policy(POLICY), ms(UNTIL), recorder=Metrics(registry))
    series = []
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.endswith(("_total", "_bucket")):
                continue
            labels = {"job": "escalator", "instance": "sim", **sample.labels}
            selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
            value = int(sample.value)
            assert value == sample.value
            series.append({"series": f"{sample.name}{{{selector}}}", "values": f"0 {value}x59"})
    return series


def check(expr: str, value: float, labels: str | None = None) -> dict[str, Any]:
    """A promtool expectation at the end of the hour (labels: the recorded series' own)."""
    labels = f"{expr}{{{JOB}}}" if labels is None else labels
    return {"expr": expr, "eval_time": "60m", "exp_samples": [{"labels": labels, "value": value}]}


def test_summary_aggregates_and_recording_rules_agree(stream: Path, tmp_path: Path) -> None:
    summary = orjson.loads(escalator("--summary", stream))
    published = from_aggregates(stream)

    # The stream exercises what the definitions are about.
    assert summary["tickets"] == published["tickets"] == 400
    assert 0 < published["breach_rate"] < 1
    assert 0 < published["bounceback_rate"] < 1
    assert summary["handoff_delay_seconds"]["count"] == published["handoffs"] > 0
    retractions = escalator(stream).count(b'"type":"sla.breach_retracted"')
    assert retractions > 0

    # simulate --summary and the aggregates.
    for name in ("escalation_rate", "bounceback_rate"):
        assert summary[name] == round(published[name], 4), name
    targets = published["breach_rate_by_target"]
    assert set(summary["breach_rate"]) == set(targets)
    for target, rate in targets.items():
        assert summary["breach_rate"][target] == round(rate, 4), target
    for q in ("p50", "p90"):
        assert summary["handoff_delay_seconds"][q] == round(published[q], 3), q

    # The recording rules, evaluated by promtool on the exported counters: exact ratios.
    checks = [
        check("job:escalator_escalation_rate:ratio_1h", published["escalation_rate"]),
        check("job:escalator_bounceback_rate:ratio_1h", published["bounceback_rate"]),
        check("job:escalator_sla_breach_rate:ratio_1h", published["breach_rate"]),
        {
            "expr": "job_target:escalator_sla_breach_rate:ratio_1h",
            "eval_time": "60m",
            "exp_samples": [
                {
                    "labels": "job_target:escalator_sla_breach_rate:ratio_1h"
                    f'{{{JOB},target="{target}"}}',
                    "value": rate,
                }
                for target, rate in targets.items()
            ],
        },
    ]
    for q, name in ((0.5, "p50"), (0.9, "p90")):
        expr = (
            f"round(1000 * histogram_quantile({q}, sum by (job, le) "
            "(rate(escalator_handoff_delay_seconds_bucket[1h]))))"
        )
        checks.append(check(expr, round(published[name] * 1000), f"{{{JOB}}}"))
    test_file = tmp_path / "rates.yml"
    test_file.write_text(
        json.dumps(  # JSON is YAML
            {
                "rule_files": [str(RULES)],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": exported_series(stream),
                        "promql_expr_test": checks,
                    }
                ],
            }
        )
    )
    assert "SUCCESS" in run_tool("promtool", "test", "rules", test_file)
