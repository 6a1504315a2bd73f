"""A real Prometheus (Debian's `prometheus`) scrapes a real worker and evaluates deploy/'s rules.

1. Warm-up, before Prometheus starts: every kind of input once, so that every series the rules
   and the dashboard read exists (tickets plain, escalated, bounced, escalated twice, breached at
   the top tier, left open; incidents acknowledged or not; dead letters).
2. Prometheus scrapes the worker every second and evaluates both rule files every second.
3. The scenario, with figures computable by hand: 22 tickets created, 8 escalated functionally
   (2 of which bounce back), 2 breach first response at the top tier (hierarchical escalation),
   1 incident acknowledged after 0.5 s and resolved after 0.9 s, 2 dead letters.
4. Every expression of the dashboard and of both rule files returns data; the recording rules
   give exactly the scenario's figures; the alerts the scenario should trip are pending.

Why the 1h ratios come out exact although rate()/increase() extrapolate: every series exists
before Prometheus' first scrape (the warm-up) and is scraped at the same instants, and no
scenario increase is large next to the series' warm-up value (at most 1.2×), so Prometheus
extrapolates every increase by the same factor — which cancels in every ratio (see
extrapolatedRate in Prometheus' promql/functions.go). The raw counter sums are checked exactly too.

Event times are set in the past (at most 4 s) and are honoured (an event's time may precede its
arrival), so handoff, MTTA and MTTR figures do not depend on how fast the test runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, ack, alert, assigned, comment, created, iso, status, transfer
from tests.integration.harness import WorkerFactory, WorkerProcess, free_port, produce
from tests.unit.test_deploy import (
    RULE_FILES,
    alerting_rules,
    as_data_query,
    dashboard_queries,
    recording_rules,
    template_queries,
)

pytestmark = pytest.mark.integration

FAST = ROOT / "tests" / "data" / "policy-fast.yaml"
BINARY = shutil.which("prometheus")
Doc = dict[str, Any]


# --- ticket and incident lifecycles (times in epoch ms; `b` is the ticket's creation) ----------


def plain(ticket: str, b: int) -> list[Doc]:
    """P4 standard ticket answered and solved at L1: never escalated."""
    return [
        created(ticket, b, severity="P4", customer_tier="standard", event_id=f"{ticket}-0"),
        comment(ticket, b + 1000, event_id=f"{ticket}-1"),
        status(ticket, b + 1500, "solved", event_id=f"{ticket}-2"),
    ]


def escalated(ticket: str, b: int, severity: str = "P4", *, bounce: bool = False) -> list[Doc]:
    """Transferred L1 → L2 (functional escalation), picked up 0.5 s later (the handoff), answered;
    with `bounce`, sent back to L1 afterwards (a bounceback); solved."""
    docs = [
        created(ticket, b, severity=severity, customer_tier="standard", event_id=f"{ticket}-0"),
        transfer(ticket, b + 300, "L2", event_id=f"{ticket}-1"),
        assigned(ticket, b + 800, "agent-l2", event_id=f"{ticket}-2"),
        comment(ticket, b + 1000, event_id=f"{ticket}-3"),
    ]
    if bounce:
        docs.append(transfer(ticket, b + 1200, "L1", event_id=f"{ticket}-4"))
    docs.append(status(ticket, b + 1500, "solved", event_id=f"{ticket}-5"))
    return docs


def repeat(ticket: str, b: int) -> list[Doc]:
    """Escalated twice (L1 → L2 → L3): a repeat escalation."""
    return [
        created(ticket, b, severity="P4", customer_tier="standard", event_id=f"{ticket}-0"),
        transfer(ticket, b + 300, "L2", event_id=f"{ticket}-1"),
        transfer(ticket, b + 600, "L3", event_id=f"{ticket}-2"),
        assigned(ticket, b + 900, "agent-l3", event_id=f"{ticket}-3"),
        comment(ticket, b + 1000, event_id=f"{ticket}-4"),
        status(ticket, b + 1500, "solved", event_id=f"{ticket}-5"),
    ]


def top_breach(ticket: str, b: int) -> list[Doc]:
    """Enterprise P1 created at L4 (the top) 4 s ago: its 3 s first-response target has already
    breached when it arrives, which re-notifies L4 (a hierarchical escalation; the ticket is not
    moved, so it does not count as escalated); answered at +3.5 s and solved."""
    return [
        created(
            ticket, b, severity="P1", customer_tier="enterprise", tier="L4", event_id=f"{ticket}-0"
        ),
        comment(ticket, b + 3500, event_id=f"{ticket}-1"),
        status(ticket, b + 3800, "solved", event_id=f"{ticket}-2"),
    ]


def warned(ticket: str, b: int) -> list[Doc]:
    """Enterprise P1 at L4 created 1 s ago: its first-response warning (at 50 % of 3 s) comes due
    0.5 s after it arrives. Answered and solved by `warned_answer` once the warning is out."""
    return [
        created(
            ticket, b, severity="P1", customer_tier="enterprise", tier="L4", event_id=f"{ticket}-0"
        )
    ]


def warned_answer(ticket: str, now: int) -> list[Doc]:
    return [
        comment(ticket, now, event_id=f"{ticket}-1"),
        status(ticket, now, "solved", event_id=f"{ticket}-2"),
    ]


def left_open(ticket: str, b: int) -> list[Doc]:
    """Answered, then pending: open for good, with every clock stopped or paused."""
    return [
        created(ticket, b, severity="P4", customer_tier="standard", event_id=f"{ticket}-0"),
        comment(ticket, b + 1000, event_id=f"{ticket}-1"),
        status(ticket, b + 1200, "pending", event_id=f"{ticket}-2"),
    ]


def incident(fingerprint: str, start: int, *, acked: bool = True) -> list[Doc]:
    """A critical (P1) alert without a service: acknowledged after 0.5 s, resolved after 0.9 s."""
    docs = [alert("firing", fingerprint, start, service=None, event_id=f"{fingerprint}-f")]
    if acked:
        docs.append(ack(fingerprint, start + 500, event_id=f"{fingerprint}-a"))
    docs.append(
        alert("resolved", fingerprint, start + 900, service=None, event_id=f"{fingerprint}-r")
    )
    return docs


def warm_up(now: int) -> tuple[list[Doc | bytes], list[Doc]]:
    """(ticket records, alert records) creating every series the rules and dashboard read."""
    b = now - 2000
    tickets: list[Doc | bytes] = []
    for n in range(10):
        tickets += plain(f"W-plain-{n}", b)
    for n in range(4):
        tickets += escalated(f"W-esc-{n}", b)
    for n in range(2):
        tickets += escalated(f"W-bounce-{n}", b, bounce=True)
    tickets += escalated("W-esc-P2", b, "P2") + escalated("W-esc-P3", b, "P3")
    tickets += repeat("W-repeat", b)
    tickets += top_breach("W-top-0", now - 4000) + top_breach("W-top-1", now - 4000)
    tickets += left_open("W-open", b) + warned("W-warned", now - 1000)
    tickets += [b"{not json", comment("W-plain-0", b + 1000, event_id="W-plain-0-1")]  # refused
    # The source of these events heartbeats once: its watermark age (named in the policy).
    tickets.append(
        {
            "specversion": "1.0",
            "id": "hb-warm",
            "source": "tests",
            "type": "source.heartbeat",
            "time": iso(b),
            "subject": "tests",
            "data": {"source": "tests", "watermark": iso(b)},
        }
    )
    alerts = incident("fp-warm", now - 1000) + incident("fp-unacked", now - 1000, acked=False)
    return tickets, alerts


def scenario(now: int) -> tuple[list[Doc | bytes], list[Doc]]:
    b = now - 2000
    tickets: list[Doc | bytes] = []
    for n in range(12):
        tickets += plain(f"S-plain-{n}", b)
    for n in range(6):
        tickets += escalated(f"S-esc-{n}", b)
    for n in range(2):
        tickets += escalated(f"S-bounce-{n}", b, bounce=True)
    tickets += top_breach("S-top-0", now - 4000) + top_breach("S-top-1", now - 4000)
    # Dead letters with the warm-up's reasons (malformed_json, duplicate_event): a reason first
    # seen here would be a new series, whose first value Prometheus cannot count as an increase.
    tickets += [b"{still not json", comment("S-plain-0", b + 1000, event_id="S-plain-0-1")]
    return tickets, incident("fp-scenario", now - 1000)


def count(docs: list[Doc | bytes], kind: str) -> int:
    return sum(1 for d in docs if isinstance(d, dict) and d["type"] == kind)


# --- the worker, Prometheus and its HTTP API ---------------------------------------------------


def series(prom: Prometheus) -> set[str]:
    """The series of every escalator counter and histogram the rules and the dashboard read."""
    exprs = [r["expr"] for r in recording_rules() + alerting_rules()]
    exprs += [expr for _, expr in dashboard_queries()]
    names = set(re.findall(r"\bescalator_\w+_(?:total|bucket|sum|count)\b", " ".join(exprs)))
    assert len(names) >= 15
    selector = f'{{job="escalator", __name__=~"{"|".join(sorted(names))}"}}'
    return {json.dumps(s["metric"], sort_keys=True) for s in prom.query(selector)}


def records_seen(worker: WorkerProcess) -> float:
    """Inbound records applied or dead-lettered so far."""
    total = 0.0
    for line in worker.metrics().splitlines():
        if line.startswith(("escalator_events_processed_total{", "escalator_deadletter_total{")):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def drive(workers: WorkerFactory, worker: WorkerProcess, docs: Any, total: int) -> None:
    tickets, alerts = docs
    bootstrap = workers.broker.bootstrap
    await produce(bootstrap, workers.topic("tickets"), tickets)
    await produce(bootstrap, workers.topic("alerts"), alerts)
    deadline = time.monotonic() + 20
    while records_seen(worker) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    assert records_seen(worker) == total, worker.log()[-3000:]


class Prometheus:
    def __init__(self, tmp_path: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(path) for path in RULE_FILES],
            "scrape_configs": [
                {"job_name": "escalator", "static_configs": [{"targets": [target]}]}
            ],
        }
        (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log_path = tmp_path / "prometheus.log"
        assert BINARY is not None
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    BINARY,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        try:
            return list(self.get("/api/v1/query", query=expr)["result"])
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{expr}: {exc.read().decode()}") from None

    def value(self, expr: str) -> float:
        (sample,) = self.query(expr)
        return float(sample["value"][1])

    def wait(self, expr: str, condition: Any, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log()}")
            try:
                if condition(self.query(expr)):
                    return
            except (OSError, AssertionError):
                pass  # not up yet
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {expr}:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def prometheus_at(tmp_path: Path) -> Iterator[Any]:
    if BINARY is None:
        pytest.fail("prometheus is not installed (run scripts/install-system-deps)", pytrace=False)
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(tmp_path, target))
        return started[-1]

    yield start
    for instance in started:
        instance.stop()


# --- the test ----------------------------------------------------------------------------------


async def test_dashboard_and_rules_on_a_real_prometheus(
    workers: WorkerFactory, prometheus_at: Any, tmp_path: Path
) -> None:
    await workers.create_topics()
    # The fast policy naming the tests' source, so its watermark age is exported by name (a
    # timeout of 1 h: it never goes silent while the test runs), and paging a schedule nobody
    # is on call in beside level 1's channel, so every incident counts an on-call gap.
    policy = tmp_path / "policy-fast-sources.yaml"
    fast = FAST.read_text()
    level1 = '- {timeout: 2s, notify: ["pagerduty:primary"]}'
    assert "lateness: {settle: 1s, max: 3s}" in fast  # extended here, not repeated
    assert level1 in fast
    policy.write_text(
        fast.replace(
            "lateness: {settle: 1s, max: 3s}",
            "lateness: {settle: 1s, max: 3s, source_timeout: 1h, sources: [tests]}",
        ).replace(level1, '- {timeout: 2s, notify: ["pagerduty:primary", "schedule:nobody"]}')
        + "schedules:\n  nobody:\n    timezone: UTC\n    layers:\n"
        + '      - {participants: ["user:later"], shift: 1d, handoff: "09:00", start: 2099-01-01}\n'
    )
    worker = workers.start("w1", ESCALATOR_POLICY=str(policy))
    worker.wait_ready()

    warm = warm_up(int(time.time() * 1000))
    warm_records = len(warm[0]) + len(warm[1])
    await drive(workers, worker, warm, warm_records)
    deadline = time.monotonic() + 10  # the warning comes due (a timer, not an event)
    while "escalator_sla_warnings_total{" not in worker.metrics():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.1)
    answer = warned_answer("W-warned", int(time.time() * 1000))
    warm[0].extend(answer)
    warm_records += len(answer)
    await drive(workers, worker, (answer, []), warm_records)
    # The breaches of tickets created past their deadline settle first (docs/time.md, rule 8).
    deadline = time.monotonic() + 15
    while "escalator_sla_breaches_total{" not in worker.metrics():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.1)

    prom = prometheus_at(f"127.0.0.1:{worker.port}")
    prom.wait(
        'count_over_time(up{job="escalator"}[1m])', lambda r: r and float(r[0]["value"][1]) >= 3
    )
    assert prom.value('up{job="escalator"}') == 1

    before = series(prom)
    run = scenario(int(time.time() * 1000))
    tickets, alerts = run
    await drive(workers, worker, run, warm_records + len(tickets) + len(alerts))
    # Prometheus has the final values, then a few more scrapes and rule evaluations.
    total = warm_records + len(tickets) + len(alerts) - 4  # 4 dead letters
    prom.wait(
        'sum(escalator_events_processed_total{job="escalator"})',
        lambda r: r and float(r[0]["value"][1]) == total,
    )
    time.sleep(4)

    # The precondition of the exact 1h ratios below: the scenario added no series.
    assert series(prom) - before == set(), "the warm-up must create every series the scenario uses"

    # Prometheus loaded and evaluates every rule without error.
    groups = prom.get("/api/v1/rules")["groups"]
    evaluated = [rule for group in groups for rule in group["rules"]]
    assert len(evaluated) == len(recording_rules()) + len(alerting_rules())
    assert [r["name"] for r in evaluated if r["health"] != "ok"] == [], evaluated

    # Every recording rule (its series and its expression), every alert's comparison, every
    # dashboard query and variable returns data.
    empty = []
    for rule in recording_rules():
        for expr in (rule["record"], rule["expr"]):
            if not prom.query(expr):
                empty.append(f"recording rule {rule['record']}: {expr}")
    # The worker's alerts: the notifier's (job escalator-notify, a process this test does not
    # run) are unit-tested by promtool in tests/deploy, and their metrics are asserted by the
    # notifier's own integration tests (test_notify_tour, test_notify_faults).
    for rule in alerting_rules():
        if 'job="escalator-notify"' in rule["expr"]:
            continue
        if not prom.query(as_data_query(rule["expr"])):
            empty.append(f"alert {rule['alert']}: {as_data_query(rule['expr'])}")
    for title, expr in dashboard_queries():
        if not prom.query(expr):
            empty.append(f"panel {title!r}: {expr}")
    assert empty == []
    for definition in template_queries():
        metric, label = definition.removeprefix("label_values(").rstrip(")").split(", ")
        values = prom.get(f"/api/v1/label/{label}/values", **{"match[]": metric})
        assert values == ["escalator"], definition

    # Exact figures: the counters Prometheus scraped ...
    created_total = count(warm[0], "ticket.created") + count(tickets, "ticket.created")
    assert prom.value("sum(escalator_tickets_created_total)") == created_total == 23 + 22
    assert prom.value("sum(escalator_bouncebacks_total)") == 4
    assert prom.value('sum(escalator_deadletter_total{reason="duplicate_event"})') == 2

    # ... and the 1h recording rules over the scenario (see the module docstring).
    applied = total - (warm_records - 2)  # events applied in the scenario (2 were refused)
    cohort = "job_target_escalated:escalator_sla_targets_ended_breached:ratio_1h"
    handoff = "escalator_handoff_delay_seconds"
    expected = {
        # 22 tickets: 8 escalated functionally (2 of which bounce back), 2 hierarchically.
        "job:escalator_bounceback_rate:ratio_1h": 2 / 8,
        'job_kind:escalator_escalation_rate:ratio_1h{kind="functional"}': 8 / 22,
        'job_kind:escalator_escalation_rate:ratio_1h{kind="hierarchical"}': 2 / 22,
        "job:escalator_escalation_rate:ratio_1h": 10 / 22,
        "job:escalator_repeat_escalation_rate:ratio_1h": 0,
        # first_response: breached by the 2 top-tier tickets of 14 not escalated, 0 of 8 escalated.
        f'{cohort}{{target="first_response",escalated="false"}}': 2 / 14,
        f'{cohort}{{target="first_response",escalated="true"}}': 0,
        'job_target:escalator_sla_breach_rate:ratio_1h{target="first_response"}': 2 / 22,
        'job_target:escalator_sla_breach_rate:ratio_1h{target="resolution"}': 0,
        # 3 targets per ticket (first response, next update, resolution): 2 of 42 vs 0 of 24.
        'job_escalated:escalator_sla_targets_ended_breached:ratio_1h{escalated="false"}': 2 / 42,
        'job_escalated:escalator_sla_targets_ended_breached:ratio_1h{escalated="true"}': 0,
        # 8 handoffs into L2 of 0.5 s, all in the first bucket (0, 60 s]: p90 = 0.9 × 60 s.
        f'job_to_tier_severity:{handoff}:p90_1h{{to_tier="L2",severity="P4"}}': 54,
        f'job_to_tier:{handoff}:p50_1h{{to_tier="L2"}}': 30,
        # 1 incident: acknowledged after 0.5 s, resolved after 0.9 s.
        'job_severity:escalator_incident_time_to_acknowledge_seconds:mean1h{severity="P1"}': 0.5,
        'job_severity:escalator_incident_time_to_resolve_seconds:mean1h{severity="P1"}': 0.9,
        "job:escalator_deadletter_ratio:ratio_1h": 2 / (applied + 2),
        'sum(escalator_open_tickets{severity="P4",tier="L1"})': 1,
        "sum(job_topic:faust_consumer_lag_messages:sum)": 0,
    }
    got = {expr: prom.value(expr) for expr in expected}
    assert got == pytest.approx(expected, rel=1e-9)

    # The alerts the scenario trips are pending (their `for:` is longer than the test), and only
    # those: bounceback 25 % (> 10 % and > 20 %), functional escalation rate 36 % (> 15 %);
    # the on-call gap fires at once (its incidents paged a schedule with nobody on call).
    active = {
        (a["labels"]["alertname"], a["labels"]["severity"], a["state"])
        for a in prom.get("/api/v1/alerts")["alerts"]
    }
    assert active == {
        ("EscalatorBouncebackRateHigh", "warning", "pending"),
        ("EscalatorBouncebackRateHigh", "critical", "pending"),
        ("EscalatorEscalationRateHigh", "warning", "pending"),
        ("EscalatorOncallGap", "warning", "firing"),
    }
