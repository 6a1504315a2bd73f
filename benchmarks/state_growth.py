"""State over months: `simulate` over generated traffic, the stored keys of every store counted
once a simulated day (issue 22, "bounded state"; the numbers are in docs/benchmarks.md).

    .venv/bin/python -m benchmarks.state_growth                 # 90 days, 2,000 tickets a day
    .venv/bin/python -m benchmarks.state_growth --days 30 --tickets 200

The traffic is what grows state without bound when nothing is ever deleted: new customers
every week (a customer seen once keeps a re-contact and a compliance state), new alert
fingerprints every day (one incident each), every ticket solved or closed within days. The run
shortens the retentions (`ESCALATOR_RETENTION` 7 days, `ESCALATOR_AGGREGATE_RETENTION` 30
days) so that 90 days show each store level off after its retention; at the defaults the
compliance keys level off the same way 435 days in.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from escalator.config.policy_file import load_policy
from escalator.config.settings import DEFAULT_POLICY
from escalator.domain.aggregates import AggregateConfig, parse_period
from escalator.service import simulate

DAY_MS = 86_400_000
MINUTE_MS = 60_000
START_MS = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)  # a Monday
CUSTOMERS_PER_WEEK = 150  # each week brings this many new customers; older ones fall silent


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event(kind: str, subject: str, at: int, event_id: str, data: dict[str, object]) -> bytes:
    doc = {
        "specversion": "1.0",
        "id": event_id,
        "source": "growth",
        "type": kind,
        "time": _iso(at),
        "subject": subject,
        "data": data,
    }
    return orjson.dumps(doc)


def traffic(days: int, tickets: int, alerts: int, seed: int = 22) -> list[bytes]:
    """`days` of JSONL events, in time order: `tickets` tickets and `alerts` alerts a day."""
    rng = random.Random(seed)
    timed: list[tuple[int, int, bytes]] = []
    n = 0
    for day in range(days):
        base = START_MS + day * DAY_MS
        for i in range(tickets):
            n += 1
            ticket = f"G-{day}-{i}"
            created = base + rng.randrange(DAY_MS)
            customer = f"cust-{day // 7}-{rng.randrange(CUSTOMERS_PER_WEEK)}"
            severity = rng.choice(("P1", "P2", "P3", "P4"))
            tier = rng.choice(("enterprise", "business", "standard"))
            steps = [
                (
                    created,
                    "ticket.created",
                    {
                        "customer_id": customer,
                        "customer_tier": tier,
                        "severity": severity,
                        "summary": "growth",
                        "service": rng.choice(("checkout", "search", "billing")),
                    },
                ),
                (
                    created + rng.randrange(5, 60) * MINUTE_MS,
                    "ticket.commented",
                    {"author_role": "agent", "public": True, "body": "on it"},
                ),
            ]
            done = steps[-1][0] + rng.randrange(30, 3 * 24 * 60) * MINUTE_MS
            steps.append((done, "ticket.status_changed", {"status": "solved"}))
            if rng.random() < 0.5:
                steps.append(
                    (
                        done + rng.randrange(60, 600) * MINUTE_MS,
                        "ticket.status_changed",
                        {"status": "closed"},
                    )
                )
            for k, (at, kind, data) in enumerate(steps):
                timed.append((at, n * 10 + k, _event(kind, ticket, at, f"{ticket}/{k}", data)))
        for j in range(alerts):
            n += 1
            fingerprint = f"fp{day}x{j}"
            started = base + rng.randrange(DAY_MS)
            labels = {"alertname": "Growth", "severity": "warning", "service": "search"}
            firing = {"labels": labels, "startsAt": _iso(started)}
            resolved = {**firing, "endsAt": _iso(started + rng.randrange(5, 120) * MINUTE_MS)}
            ended = started + rng.randrange(5, 120) * MINUTE_MS
            resolved["endsAt"] = _iso(ended)
            timed.append(
                (
                    started,
                    n * 10,
                    _event("alert.firing", fingerprint, started, f"{fingerprint}/f", firing),
                )
            )
            timed.append(
                (
                    ended,
                    n * 10 + 1,
                    _event("alert.resolved", fingerprint, ended, f"{fingerprint}/r", resolved),
                )
            )
    timed.sort()
    return [raw for _, _, raw in timed]


def kind_of(store: str, key: str) -> str:
    """What a stored key holds, as a row of the growth table."""
    if key.startswith("__"):
        return f"{store}: {key[2:].split('__', 1)[0]}"
    if store == "facts":
        return "facts: customer (re-contact)"
    return f"{store}: {'ticket' if store == 'tickets' else 'incident'}"


@dataclass(frozen=True, slots=True)
class Day:
    day: int
    keys: Mapping[str, int]  # kind → stored keys at the day's first event
    bytes: int  # every stored value's size together


def growth(
    days: int,
    tickets: int,
    alerts: int,
    retention_days: int = 7,
    aggregate_days: int = 30,
    compliance: str = "month",
) -> list[Day]:
    """Run simulate over `traffic` and count each store's keys at the start of every day."""
    policy = load_policy(DEFAULT_POLICY)
    samples: dict[int, Day] = {}

    def watch(clock: int, stores: dict[str, Mapping[str, bytes]]) -> None:
        day = (clock - START_MS) // DAY_MS
        if day in samples:
            return
        keys: Counter[str] = Counter()
        size = 0
        for store, content in stores.items():
            for key, value in content.items():
                keys[kind_of(store, key)] += 1
                size += len(value)
        samples[day] = Day(day, dict(keys), size)

    config = AggregateConfig(
        compliance=parse_period(compliance), retention_ms=aggregate_days * DAY_MS
    )
    simulate.run(
        traffic(days, tickets, alerts),
        policy,
        aggregates=config,
        retention_ms=retention_days * DAY_MS,
        watch=watch,
        keep_outputs=False,
    )
    return [samples[d] for d in sorted(samples)]


def table(days: list[Day], every: int = 10) -> Iterator[str]:
    kinds = sorted({kind for day in days for kind in day.keys})
    yield "| day | " + " | ".join(kinds) + " | bytes |"
    yield "|---:|" + "---:|" * (len(kinds) + 1)
    for day in days:
        if day.day % every == 0 or day is days[-1]:
            counts = " | ".join(f"{day.keys.get(kind, 0):,}" for kind in kinds)
            yield f"| {day.day} | {counts} | {day.bytes:,} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--tickets", type=int, default=2000, help="tickets a day")
    parser.add_argument("--alerts", type=int, default=500, help="alerts a day")
    args = parser.parse_args()
    for line in table(growth(args.days, args.tickets, args.alerts)):
        print(line)


if __name__ == "__main__":
    main()
