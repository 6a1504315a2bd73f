"""Every benchmark of issue 8 runs at smoke size through `python -m benchmarks.run`.

These prove the benchmarks still run against the current code and the real broker; they assert
nothing about speed (the figures live in docs/benchmarks.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from benchmarks import run

from tests.integration.harness import Broker

pytestmark = [pytest.mark.bench, pytest.mark.integration]


def smoke(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "results.json"
    status = run.main(["--size", "smoke", "--json", str(out), *args])
    report = orjson.loads(out.read_bytes())
    assert status == 0, report["errors"]
    return report


@pytest.fixture(autouse=True)
def _use_session_broker(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.delenv("ESCALATOR_BENCH_PROFILE", raising=False)


@pytest.mark.parametrize("name", run.BENCHMARKS)
def test_benchmark_produces_its_figures(name: str, tmp_path: Path) -> None:
    report = smoke(tmp_path, "--only", name)
    results = report["results"]
    assert results, f"{name} produced no figures"
    for result in results:
        assert result["name"].startswith(f"{name}."), result["name"]
        assert isinstance(result["figure"], int | float), result
        assert result["unit"], result
    goals = [r for r in results if r["goal"] and r["met"] is not None]
    assert goals, f"{name} compares nothing with a goal"
    assert any(not math.isnan(r["figure"]) for r in results)
