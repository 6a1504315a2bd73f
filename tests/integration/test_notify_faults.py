"""`escalator notify` under faults, on the real broker (issue 18, "Done when"):

- SIGKILL mid-stream of 1,000 notifications: after a restart every one is delivered, and at
  most 100 (the in-flight bound) twice;
- a receiver answering 503 for 30 s delays only its own destination (the other one is done
  while it still fails), and gets everything afterwards, in order;
- a receiver that always fails ends in the dead-letter topic (reason `delivery_failed`, with
  its last status and body);
- a storm: 500 notifications to one Slack channel within 10 s reach it as at most 10 messages,
  every notification id in exactly one of them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from escalator.adapters.cloudevents import effect_to_dict
from escalator.domain.effects import NotificationRequested
from escalator.domain.notify import messages
from tests.integration.harness import WorkerFactory, consume
from tests.receivers import Receivers, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

SECRET = "fault-secret"


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    server = Receivers()
    await server.start()
    yield server
    await server.stop()


def notification(n: int, channel: str, recipient: str = "team:ops") -> bytes:
    effect = NotificationRequested(
        id=f"N-{n}/notify/{channel}",
        time=int(time.time() * 1000),
        ticket_id=f"T-{n}",
        escalation_id=f"N-{n}",
        channel=channel,
        recipient=recipient,
        title=f"[P3] T-{n}: escalated",
        body="context",
    )
    return orjson.dumps(effect_to_dict(effect, "v1"))


async def produce_keyed(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def webhooks_yaml(receivers: Receivers, names: dict[str, str]) -> str:
    hooks = "\n".join(
        f'  {name}: {{url: "{receivers.base}/hooks/{name}", secret_env: HOOK_SECRET{retry}}}'
        for name, retry in names.items()
    )
    return f"webhooks:\n{hooks}\n"


def delivered_ids(receivers: Receivers, prefix: str) -> list[str]:
    return [
        r.headers["Idempotency-Key"]
        for r in receivers.at(prefix)
        if "x-test-answer" not in r.headers
    ]


async def test_sigkill_mid_stream_delivers_every_notification_at_most_100_twice(
    workers: WorkerFactory, receivers: Receivers, tmp_path: Path
) -> None:
    await workers.create_topics()
    config = tmp_path / "notifier.yaml"
    config.write_text(webhooks_yaml(receivers, {f"h{i}": "" for i in range(4)}))
    receivers.delays["/hooks/"] = 0.01  # a receiver with some work to do per request
    values = [
        (f"team:{n % 16}".encode(), notification(n, f"webhook:h{n % 4}", f"team:{n % 16}"))
        for n in range(1000)
    ]
    await produce_keyed(workers.broker.bootstrap, workers.topic("notifications"), values)
    notifier = workers.start_notifier(config, HOOK_SECRET=SECRET)
    await wait_for(lambda: len(delivered_ids(receivers, "/hooks/")) >= 250, 120, "250 deliveries")
    notifier.kill()
    at_kill = len(delivered_ids(receivers, "/hooks/"))
    assert at_kill < 1000, "the notifier finished before it could be killed mid-stream"
    restarted = workers.start_notifier(config, name="n2", HOOK_SECRET=SECRET)
    restarted.wait_ready(timeout=120)
    expected = {f"N-{n}/notify/webhook:h{n % 4}" for n in range(1000)}
    await wait_for(
        lambda: set(delivered_ids(receivers, "/hooks/")) >= expected, 180, "every notification"
    )
    await asyncio.sleep(3)  # anything delivered late still counts
    counts = Counter(delivered_ids(receivers, "/hooks/"))
    assert set(counts) == expected
    twice = [nid for nid, count in counts.items() if count > 1]
    assert max(counts.values()) <= 2
    assert len(twice) <= 100, f"{len(twice)} delivered twice (killed after {at_kill})"
    print(f"killed after {at_kill} deliveries; {len(twice)} delivered twice")
    # Every body is the notification's CloudEvent, signed.
    for r in receivers.at("/hooks/")[:50]:
        assert messages.verify_signature(
            SECRET.encode(), r.body, r.headers["X-Escalator-Signature-256"]
        )
    assert restarted.health() is not None
    assert "escalator_notify_duplicates_skipped_total" in restarted.metrics()


async def test_503_for_30_s_delays_only_its_destination_and_a_dead_one_is_dead_lettered(
    workers: WorkerFactory, receivers: Receivers, tmp_path: Path
) -> None:
    await workers.create_topics()
    config = tmp_path / "notifier.yaml"
    config.write_text(
        webhooks_yaml(
            receivers,
            {
                "flaky": ", retry: {attempts: 30, initial: 1s, max: 4s}",
                "fine": "",
                "broken": ", retry: {attempts: 3, initial: 1s, max: 1s}",
            },
        )
    )
    notifier = workers.start_notifier(config, HOOK_SECRET=SECRET)
    notifier.wait_ready(timeout=120)
    receivers.fail("/hooks/flaky", 503, seconds=30.0, retry_after="1")
    receivers.fail("/hooks/broken", 500, body="the database is on fire")
    started = time.monotonic()
    values = []
    for n in range(20):
        for name in ("flaky", "fine"):
            values.append(
                (f"team:{n % 3}".encode(), notification(n, f"webhook:{name}", f"team:{n % 3}"))
            )
    values.append((b"team:0", notification(99, "webhook:broken", "team:0")))
    await produce_keyed(workers.broker.bootstrap, workers.topic("notifications"), values)

    await wait_for(
        lambda: len(delivered_ids(receivers, "/hooks/fine")) == 20, 25, "the healthy one"
    )
    fine_done = max(r.at for r in receivers.at("/hooks/fine")) - started
    assert fine_done < 30, f"the healthy destination took {fine_done:.1f}s"
    assert delivered_ids(receivers, "/hooks/flaky") == []  # still failing meanwhile

    letters = await consume(
        workers.broker.bootstrap, workers.topic("deadletter"), lambda r: len(r) >= 1, 60
    )
    (letter,) = letters
    assert letter["reason"] == "delivery_failed"
    assert letter["v"] == 2
    assert letter["delivery"]["destination"] == "webhook:broken"
    assert letter["delivery"]["attempts"] == 3
    assert letter["delivery"]["last_status"] == 500
    assert letter["delivery"]["last_body"] == "the database is on fire"
    assert letter["source_topic"] == workers.topic("notifications")

    await wait_for(lambda: len(delivered_ids(receivers, "/hooks/flaky")) == 20, 90, "recovery")
    flaky = receivers.at("/hooks/flaky")
    first_ok = min(r.at for r in flaky if "x-test-answer" not in r.headers) - started
    assert first_ok >= 30
    # Per recipient key (one partition each), the flaky destination got them in order.
    order = [int(i.split("/")[0][2:]) for i in delivered_ids(receivers, "/hooks/flaky")]
    for team in range(3):
        mine = [n for n in order if n % 3 == team]
        assert mine == sorted(mine)
    metrics = notifier.metrics()
    assert 'escalator_notify_failed_total{channel_type="webhook"} 1.0' in metrics
    assert 'escalator_notify_retries_total{channel_type="webhook"}' in metrics


async def test_a_storm_to_one_slack_channel_becomes_a_digest(
    workers: WorkerFactory, receivers: Receivers, tmp_path: Path
) -> None:
    await workers.create_topics()
    config = tmp_path / "notifier.yaml"
    config.write_text('slack:\n  channels:\n    "#noisy": {webhook_url_env: HOOK_NOISY}\n')
    notifier = workers.start_notifier(config, HOOK_NOISY=f"{receivers.base}/services/T9/B9/n")
    notifier.wait_ready(timeout=120)
    sent_from = time.monotonic()
    for batch in range(5):  # 500 in about 5 s, on every partition
        values = [
            (f"team:{n % 7}".encode(), notification(n, "slack:#noisy", f"team:{n % 7}"))
            for n in range(batch * 100, batch * 100 + 100)
        ]
        await produce_keyed(workers.broker.bootstrap, workers.topic("notifications"), values)
        await asyncio.sleep(1)
    assert time.monotonic() - sent_from < 10

    def listed() -> Counter[str]:
        texts = [r.json["text"] for r in receivers.at("/services/T9/B9/n")]
        return Counter(
            nid
            for text in texts
            for nid in (f"N-{n}/notify/slack:#noisy" for n in range(500))
            if f"`{nid}`" in text
        )

    await wait_for(lambda: len(listed()) == 500, 120, "every notification in a message")
    await asyncio.sleep(6)  # a later digest would show up by now
    posts = receivers.at("/services/T9/B9/n")
    assert len(posts) <= 10, len(posts)
    print(f"500 notifications reached the channel as {len(posts)} messages")
    assert set(listed().values()) == {1}
    assert any(":mailbox_with_mail: *" in p.json["text"] for p in posts)
    metrics = notifier.metrics()
    assert 'escalator_notify_folded_total{channel_type="slack"}' in metrics
