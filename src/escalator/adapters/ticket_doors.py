"""What the ticket systems' doors (adapters/jira.py, adapters/zendesk.py) share: escalator
ticket CloudEvents made and checked exactly as `POST /events` checks them, the refusal that
names the vendor's field, and the recent-deliveries memory that answers a retry without
producing it again."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from escalator.adapters.cloudevents import MAX_TEXT, event_from_dict
from escalator.adapters.http_types import Accepted, HttpError, Ingested, json_object
from escalator.domain.ladder import iso
from escalator.errors import InvalidEvent

# How long and how many deliveries a door remembers: vendors retry within minutes (Jira over
# about 25 minutes, Zendesk within seconds to minutes); older retries still reach the worker,
# whose per-ticket memory of event ids refuses them (dead letter `duplicate_event`).
RECENT_MS: Final = 30 * 60_000
RECENT_MAX: Final = 10_000
# How long a request waits for another one producing the same event ids (the door's
# produce gives up after 30 s): past it, it produces too and the worker's memory decides.
FLIGHT_WAIT_S: Final = 35.0


def refused(field: str, message: str) -> HttpError:
    """A 400 naming the vendor's field and what to do about it."""
    return HttpError(400, "invalid_field", f"{field}: {message}")


def missing(field: str) -> HttpError:
    return HttpError(400, "missing_field", f"{field}: required")


def load_object(body: bytes) -> dict[str, Any]:
    return json_object(body)


def dig(doc: Any, path: str) -> Any:
    """`doc` at a dotted `path` (`issue.fields.priority.name`); None where anything is
    missing or not an object on the way."""
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def text(doc: Any, path: str, *, required: bool = True, limit: int | None = MAX_TEXT) -> str | None:
    """A string (or a number, as vendors send ids either way) at `path`, at most `limit`
    characters (None: any; the caller cuts it)."""
    value = dig(doc, path)
    if value is None or value == "":
        if required:
            raise missing(path)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise refused(path, f"expected a string, got {type(value).__name__}")
    found = str(value)
    if limit is not None and len(found) > limit:
        raise HttpError(400, "field_too_long", f"{path}: longer than {limit} characters")
    return found


def kind_of(doc: dict[str, Any], path: str) -> str:
    """The vendor's event type: a string, nothing else."""
    value = doc.get(path)
    if not isinstance(value, str) or not value:
        raise missing(path) if value is None else refused(path, "expected a string")
    return value


def need(doc: Any, path: str) -> str:
    """A required string at `path` (see `text`)."""
    value = text(doc, path)
    if value is None:  # text() raised already; this satisfies the type checker
        raise missing(path)
    return value


def lookup(names: Mapping[str, str], value: str, field: str, setting: str, what: str) -> str:
    """`value` through a case-insensitive name map, or a 400 saying where to map it."""
    mapped = names.get(value.casefold())
    if mapped is None:
        raise refused(field, f"unknown {what} {value[:100]!r}; map it in {setting}")
    return mapped


def ticket_event(
    event_id: str,
    source: str,
    kind: str,
    time_ms: int,
    ticket: str,
    data: dict[str, Any],
    field: str,
) -> Accepted:
    """One of escalator's ticket CloudEvents, checked as `POST /events` checks it (the worker
    checks it again, as any event). A refusal names the vendor's field it came from."""
    doc = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": kind,
        "time": iso(time_ms),
        "subject": ticket,
        "datacontenttype": "application/json",
        "data": data,
    }
    try:
        event = event_from_dict(doc)
    except InvalidEvent as exc:
        raise HttpError(400, exc.reason, f"{field}: {exc.message}") from None
    return Accepted(event.ticket_id.encode(), orjson.dumps(doc), event.id)


class RecentDeliveries:
    """The event ids a door produced lately, oldest first, at most RECENT_MAX of them for at
    most RECENT_MS: a vendor's retry of a delivery already produced is answered without
    producing it again. Per worker process (a retry that reaches another worker is refused
    by the ticket's own memory of event ids instead)."""

    def __init__(self, keep_ms: int = RECENT_MS, most: int = RECENT_MAX) -> None:
        self.keep_ms = keep_ms
        self.most = most
        self._seen: OrderedDict[str, int] = OrderedDict()
        # Ids a request is producing now → resolved (True: acknowledged) when it is done.
        self._flying: dict[str, asyncio.Future[bool]] = {}

    def _forget(self, now: int) -> None:
        while self._seen and (
            len(self._seen) > self.most or next(iter(self._seen.values())) < now - self.keep_ms
        ):
            self._seen.popitem(last=False)

    def check(self, made: Ingested, now: int) -> Ingested:
        """`made` as it is, or a duplicate with nothing to produce when every event of it
        was produced recently (answered `{"accepted": [], "duplicate": [its ids]}`)."""
        self._forget(now)
        ids = [item.event_id for item in made.events]
        if ids and all(event_id in self._seen for event_id in ids):
            return Ingested((), {"accepted": [], "duplicate": ids}, duplicate=True)
        return made

    def remember(self, events: Sequence[Accepted], now: int) -> None:
        """Called once Kafka acknowledged `events` (a failed produce is retried for real)."""
        for item in events:
            self._seen[item.event_id] = now
            self._seen.move_to_end(item.event_id)
        self._forget(now)

    async def admit(
        self, made: Ingested, now: int, wait_s: float = FLIGHT_WAIT_S
    ) -> tuple[Ingested, tuple[str, ...]]:
        """`made` checked (see `check`) once no other request is producing any of its ids,
        and the ids this request now produces (give them to `settle`). Jira sends
        `comment_created` and `jira:issue_updated` for one comment at once: the second
        waits for the first; acknowledged, it is a duplicate, failed, it produces."""
        ids = [item.event_id for item in made.events]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            waiting = [self._flying[i] for i in ids if i in self._flying]
            left = deadline - loop.time()
            if not waiting or left <= 0:
                break
            await asyncio.wait(waiting, timeout=left)
        checked = self.check(made, now)
        if checked.duplicate:
            return checked, ()
        claimed = tuple(i for i in dict.fromkeys(ids) if i not in self._flying)
        for event_id in claimed:
            self._flying[event_id] = loop.create_future()
        return checked, claimed

    def settle(
        self, claimed: Sequence[str], events: Sequence[Accepted], *, acked: bool, now: int
    ) -> None:
        """The end of a request `admit` let produce: remembered when Kafka acknowledged it,
        and the requests waiting on its ids go on."""
        if acked:
            self.remember(events, now)
        for event_id in claimed:
            future = self._flying.pop(event_id, None)
            if future is not None and not future.done():
                future.set_result(acked)
