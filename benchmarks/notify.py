"""8. `escalator notify`: deliveries per second to a local webhook receiver.

N `notification.requested` records (keyed by recipient, 12 partitions) wait on the topic; then
the real `escalator notify` process starts, with a notifier.yaml whose webhooks point at an
aiohttp receiver in this process that answers 200 at once. Measured: deliveries per second from
the first request to the last (every request signed, with its idempotency key; every delivery
recorded in the notifier's table, its changelog acknowledged by Kafka before the next offset
commit), and from the notifier's start (start-up and table recovery included).

Two shapes: all notifications to **one** webhook (one destination's queue, delivered in order
one request at a time: the per-destination ceiling) and spread over **16** webhooks (16 queues
in parallel, at most ESCALATOR_NOTIFY_MAX_IN_FLIGHT requests at once).
Not a timed test: no goal, the figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from benchmarks.common import Result, Size, pick, progress
from benchmarks.kafka import Stack


def run(size: Size) -> list[Result]:
    return asyncio.run(_run(size))


async def _run(size: Size) -> list[Result]:
    count = pick(size, 200, 20_000)
    results = []
    for destinations in (1, 16):
        progress(f"notify: {count} notifications to {destinations} webhook(s)")
        results.append(await _round(count, destinations))
    return results


def _notification(n: int, destinations: int) -> tuple[bytes, bytes]:
    recipient = f"team:{n % 64}"
    channel = f"webhook:h{n % destinations}"
    doc = {
        "specversion": "1.0",
        "id": f"bench-{n}/notify/{channel}/{recipient}",
        "source": "escalator",
        "type": "notification.requested",
        "time": "2026-11-24T10:00:00.000Z",
        "subject": f"T-{n}",
        "datacontenttype": "application/json",
        "data": {
            "ticket_id": f"T-{n}",
            "escalation_id": f"bench-{n}",
            "channel": channel,
            "recipient": recipient,
            "subject": f"[P2] T-{n}: escalated L1 → L2 (first response breached)",
            "body": "First response was due 15 minutes after creation.\n\nsummary of T-" + str(n),
            "action": "trigger",
            "notification_id": f"bench-{n}/notify/{channel}/{recipient}",
            "dedupe_key": f"bench-{n}/{channel}/{recipient}",
            "policy_version": "bench",
        },
    }
    return recipient.encode(), orjson.dumps(doc)


async def _round(count: int, destinations: int) -> Result:
    seen: set[str] = set()
    requests = [0]
    times: list[float] = []
    done = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("Idempotency-Key", "")
        requests[0] += 1
        if key not in seen:
            seen.add(key)
            times.append(time.perf_counter())
            if len(seen) >= count:
                done.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks/{name}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with Stack(f"notify{destinations}") as stack:
            await stack.create_topics()
            hooks = "\n".join(
                f'  h{i}: {{url: "http://127.0.0.1:{port}/hooks/h{i}", secret_env: HOOK_SECRET}}'
                for i in range(destinations)
            )
            config = stack.tmp / "notifier.yaml"
            config.write_text(f"webhooks:\n{hooks}\n")
            await stack.produce(
                stack.topic("notifications"),
                (_notification(n, destinations) for n in range(count)),
            )
            started = time.perf_counter()
            notifier = stack.start_worker(
                "notify",
                command="notify",
                port_variable="ESCALATOR_NOTIFY_WEB_PORT",
                ESCALATOR_NOTIFIER=str(config),
                HOOK_SECRET="bench-secret",
                ESCALATOR_LOG_LEVEL="warning",
            )
            timeout = 60 + count / 20
            try:
                await asyncio.wait_for(done.wait(), timeout)
            except TimeoutError:
                raise RuntimeError(
                    f"{len(seen)} of {count} delivered in {timeout:.0f}s:\n{notifier.log()[-2000:]}"
                ) from None
            finished = time.perf_counter()
            rss = notifier.rss()
            await asyncio.sleep(1)  # a repeat would arrive by now
    finally:
        await runner.cleanup()
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    extra: dict[str, Any] = {
        "notifications": count,
        "destinations": destinations,
        "seconds_first_to_last": round(span, 2),
        "seconds_from_start": round(finished - started, 2),
        "per_second_from_start": round(count / (finished - started), 1),
        "notifier_rss_mib": round(rss / 2**20, 1),
    }
    extra["requests"] = requests[0]
    return Result(
        name=f"notify.{'one_webhook' if destinations == 1 else f'{destinations}_webhooks'}",
        figure=(count - 1) / span if span else float("nan"),
        unit="deliveries/s",
        goal="every notification delivered, none twice",
        met=len(seen) == count and requests[0] == count,
        notes=(
            f"{count} notifications, first to last request; {extra['per_second_from_start']}/s "
            f"counting the notifier's start; RSS {extra['notifier_rss_mib']} MiB"
        ),
        extra=extra,
    )
