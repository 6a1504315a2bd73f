"""The processor shared by the worker and simulate: state, index, retention, dead letters."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from escalator.adapters.deadletter import Origin, original_bytes
from escalator.adapters.fact_codec import decode_fact_record
from escalator.adapters.state_codec import decode_state
from escalator.service.processor import CUSTOMERS
from escalator.service.tickets import TicketProcessor
from tests.helpers import comment, created, example_policy, ms, severity, status

ORIGIN = Origin("tickets.events", 3, 41)
DAY = 24 * 3600_000


_offsets = iter(range(100, 10_000))


def feed(processor: TicketProcessor, doc: dict, arrival: str) -> list:
    origin = Origin("tickets.events", 3, next(_offsets))  # each record at its own offset
    return processor.on_record(orjson.dumps(doc), ms(arrival), 3, origin)


def test_state_is_saved_and_indexed_per_partition() -> None:
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store)
    feed(processor, created("T-1", "2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z")
    assert decode_state(store["T-1"])[0].severity == "P1"
    assert processor.next_due(3) == ms("2026-11-24T10:11:15Z")  # the 0.75 warning
    assert processor.next_due(0) is None


def test_solved_ticket_is_deleted_after_retention() -> None:
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store, retention_ms=7 * DAY)
    feed(processor, created("T-1", "2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z")
    feed(processor, comment("T-1", "2026-11-24T10:01:00Z"), "2026-11-24T10:01:00Z")
    feed(processor, status("T-1", "2026-11-24T10:02:00Z", "solved"), "2026-11-24T10:02:00Z")
    purge_at = ms("2026-11-24T10:02:00Z") + 7 * DAY
    assert processor.next_due(3) == purge_at
    assert processor.on_tick(3, purge_at) == []
    assert "T-1" in store
    processor.on_tick(3, purge_at + 1)
    with pytest.raises(ValueError, match="format"):
        decode_state(store["T-1"])  # the state is gone: a small marker is left
    assert processor.purged == 1
    # An event for it is expired, not unknown, and says when and why its state went.
    late = feed(processor, status("T-1", "2026-12-02T10:00:00Z", "open"), "2026-12-02T10:00:00Z")
    letter = orjson.loads(late[0].value)
    assert letter["reason"] == "expired_ticket"
    assert letter["message"] == (
        "ticket.status_changed for ticket 'T-1', which was solved at 2026-11-24T10:02:00.000Z: "
        "its state was deleted at 2026-12-01T10:02:00.000Z, 1w later (ESCALATOR_RETENTION), and "
        "events for it are no longer applied"
    )
    never = feed(processor, comment("T-9", "2026-12-02T10:00:00Z"), "2026-12-02T10:00:00Z")
    assert orjson.loads(never[0].value)["reason"] == "unknown_ticket"
    # The marker is kept for one more retention, then deleted too: state stays bounded.
    assert processor.next_due(3) == purge_at + 7 * DAY
    processor.on_tick(3, purge_at + 7 * DAY + 1)
    assert "T-1" not in store
    late = feed(processor, status("T-1", "2026-12-10T10:00:00Z", "open"), "2026-12-10T10:00:00Z")
    assert orjson.loads(late[0].value)["reason"] == "unknown_ticket"


def test_an_expired_ticket_id_can_be_created_again() -> None:
    # A helpdesk that reuses ids: a new `created` starts a new ticket, as before retention.
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store, retention_ms=DAY)
    feed(processor, created("T-1", "2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z")
    feed(processor, status("T-1", "2026-11-24T10:02:00Z", "solved"), "2026-11-24T10:02:00Z")
    processor.on_tick(3, ms("2026-11-24T10:02:00Z") + DAY + 1)
    again = created("T-1", "2026-11-26T10:00:00Z", event_id="again")
    out = feed(processor, again, "2026-11-26T10:00:00Z")
    assert "deadletter" not in {e.role for e in out}
    assert decode_state(store["T-1"])[0].status == "new"


def test_reopen_before_retention_keeps_the_ticket() -> None:
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store, retention_ms=DAY)
    feed(processor, created("T-1", "2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z")
    feed(processor, status("T-1", "2026-11-24T10:02:00Z", "solved"), "2026-11-24T10:02:00Z")
    feed(processor, status("T-1", "2026-11-24T12:00:00Z", "open"), "2026-11-24T12:00:00Z")
    processor.on_tick(3, ms("2026-11-24T10:02:00Z") + DAY + 1)
    assert decode_state(store["T-1"])[0].cycle == 2


def test_dead_letter_keeps_the_original_bytes_and_origin() -> None:
    processor = TicketProcessor(example_policy(), {})
    raw = b"\xff\xfenot json"
    (letter,) = processor.on_record(raw, ms("2026-11-24T10:00:00Z"), 3, ORIGIN)
    meta, original = original_bytes(letter.value)
    assert original == raw
    assert meta["reason"] == "not_utf8"
    assert (meta["source_topic"], meta["source_partition"], meta["source_offset"]) == (
        "tickets.events",
        3,
        41,
    )


def test_oversized_record_is_dead_lettered() -> None:
    processor = TicketProcessor(example_policy(), {}, max_record_bytes=100)
    doc = created("T-1", "2026-11-24T10:00:00Z")
    doc["data"]["summary"] = "x" * 200
    (letter,) = feed(processor, doc, "2026-11-24T10:00:00Z")
    assert orjson.loads(letter.value)["reason"] == "oversized"


def test_recontact_within_the_window_is_counted() -> None:
    from escalator.service import simulate
    from tests.helpers import jsonl

    result = simulate.run(
        jsonl(
            created("T-1", "2026-11-02T10:00:00Z", customer="globex", service="checkout"),
            status("T-1", "2026-11-02T11:00:00Z", "solved"),
            created("T-2", "2026-11-05T10:00:00Z", customer="globex", service="checkout"),
            created("T-3", "2026-11-05T10:00:00Z", customer="globex", service="search"),
            created("T-4", "2026-11-05T10:00:00Z", customer="initech", service="checkout"),
            status("T-2", "2026-11-05T11:00:00Z", "solved"),
            created("T-5", "2026-11-13T10:00:00Z", customer="globex", service="checkout"),
        ),
        example_policy(),
    )
    # T-2 re-contacts T-1 (3 days); T-5 comes 8 days after T-2: outside the 7-day window.
    assert result.summary.recontacts == 1
    assert result.summary.report()["recontact_rate"] == 0.5


def test_a_record_read_again_after_a_restart_is_skipped_silently() -> None:
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store)
    doc = created("T-1", "2026-11-24T10:00:00Z")
    raw = orjson.dumps(doc)
    at = ms("2026-11-24T10:00:00Z")
    processor.on_record(raw, at, 0, Origin("tickets.events", 0, 10))
    nudge = orjson.dumps(comment("T-1", "2026-11-24T10:01:00Z"))
    processor.on_record(nudge, at, 0, Origin("tickets.events", 0, 11))
    # The worker restarts from offset 10: both records come again, both are skipped.
    assert processor.on_record(raw, at, 0, Origin("tickets.events", 0, 10)) == []
    assert processor.on_record(nudge, at, 0, Origin("tickets.events", 0, 11)) == []
    # The same event id at a later offset is a real duplicate: dead-lettered.
    (letter,) = processor.on_record(nudge, at, 0, Origin("tickets.events", 0, 12))
    assert orjson.loads(letter.value)["reason"] == "duplicate_event"


class WriteLog(dict[str, bytes]):
    """A store that records every write, as a table's changelog would."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, bytes]] = []

    def __setitem__(self, key: str, value: bytes) -> None:
        self.writes.append((key, value))
        super().__setitem__(key, value)


def test_a_replayed_record_writes_its_stored_state_again_for_the_changelog() -> None:
    # A worker killed after writing its local store but before the changelog acknowledged the
    # write restarts on that store, reads the record again and skips it as a replay. Unless
    # the replay writes the state again, the changelog never gets it and a later recovery on
    # an empty disk loses the reply (issue 11: a page for a ticket answered in time).
    store = WriteLog()
    processor = TicketProcessor(example_policy(), store)
    at = ms("2026-11-24T10:00:00Z")
    processor.on_record(orjson.dumps(created("T-1", "2026-11-24T10:00:00Z")), at, 0, ORIGIN)
    reply = orjson.dumps(comment("T-1", "2026-11-24T10:01:00Z"))
    processor.on_record(reply, at + 60_000, 0, Origin("tickets.events", 0, 11))
    stored = store["T-1"]
    store.writes.clear()
    assert processor.on_record(reply, at + 60_000, 0, Origin("tickets.events", 0, 11)) == []
    assert store.writes == [("T-1", stored)]  # the same bytes, written again


def test_a_service_stays_in_outage_until_its_last_incident_ends() -> None:
    from escalator.adapters.alerts import encode_outage
    from escalator.domain.effects import OutageChanged

    processor = TicketProcessor(example_policy(), {})
    at = ms("2026-11-24T10:00:00Z")
    for incident in ("db/1", "api/1"):  # two critical alerts of one service
        assert (
            processor.on_outage(3, encode_outage(OutageChanged("checkout", incident, True, at)))
            == []
        )
    ended = OutageChanged("checkout", "db/1", False, at + 60_000)
    assert processor.on_outage(3, encode_outage(ended)) == []  # api/1 still fires
    # A ticket of the service created now still starts above frontline (L2).
    doc = created("T-1", "2026-11-24T10:02:00Z", service="checkout", severity="P3", tier="L1")
    feed(processor, doc, "2026-11-24T10:02:00Z")
    assert decode_state(processor.store["T-1"])[0].tier == "L2"
    # The last one ends the outage: the ticket's owner hears of it, once.
    last = OutageChanged("checkout", "api/1", False, at + 300_000)
    notices = processor.on_outage(3, encode_outage(last))
    assert [orjson.loads(e.value)["type"] for e in notices if e.role == "notifications"] == [
        "notification.requested"
    ]
    assert processor.on_outage(3, encode_outage(last)) == []  # a repeated end changes nothing


def test_an_outage_record_keeps_replay_detection_of_the_states_it_advances() -> None:
    # The outage record (offset 12) fires T-1's due warning first; the state it writes must
    # carry offset 12, so that re-reading offset 11 after a restart is a quiet replay, not a
    # duplicate_event dead letter.
    from escalator.adapters.alerts import encode_outage
    from escalator.domain.effects import OutageChanged

    processor = TicketProcessor(example_policy(), {})
    at = ms("2026-11-24T10:00:00Z")
    processor.on_record(orjson.dumps(created("T-1", "2026-11-24T10:00:00Z")), at, 3, ORIGIN)
    reply = orjson.dumps(comment("T-1", "2026-11-24T10:01:00Z", role="customer", public=True))
    processor.on_record(reply, at + 60_000, 3, Origin("tickets.events", 3, 11))
    later = ms("2026-11-24T10:20:00Z")  # past the 0.75 warning and the 10:15 breach
    outage = encode_outage(OutageChanged("checkout", "fp/1", True, later))
    assert processor.on_outage(3, outage, later, 12)  # the due instants fired first
    assert decode_state(processor.store["T-1"])[1] == 12
    assert processor.on_record(reply, at + 60_000, 3, Origin("tickets.events", 3, 11)) == []


def test_the_original_created_delivered_again_after_the_purge_is_expired() -> None:
    store: dict[str, bytes] = {}
    processor = TicketProcessor(example_policy(), store, retention_ms=DAY)
    first = created("T-1", "2026-11-24T10:00:00Z", event_id="c1")
    feed(processor, first, "2026-11-24T10:00:00Z")
    feed(processor, status("T-1", "2026-11-24T10:02:00Z", "solved"), "2026-11-24T10:02:00Z")
    processor.on_tick(3, ms("2026-11-24T10:02:00Z") + DAY + 1)
    (letter,) = feed(processor, first, "2026-11-27T10:00:00Z")  # a connector replays it
    assert orjson.loads(letter.value)["reason"] == "expired_ticket"


def _facts_of(emissions: list) -> Counter:
    """The metric facts (kind, time, tier, target, value) in the repartition records, counted
    once (each fact goes to its group and, for some kinds, to its customer)."""
    seen: dict[str, tuple] = {}
    for emission in emissions:
        if emission.role != CUSTOMERS:
            continue
        decoded = decode_fact_record(emission.value)
        if not isinstance(decoded, tuple):
            continue  # a customer fact (re-contact), not a metric fact
        for f in decoded[1]:
            seen[f"{f.kind}/{f.time}/{f.target}/{f.value_ms}"] = (
                f.kind,
                f.time,
                f.tier,
                f.target,
                f.value_ms,
                f.severity,
            )
    return Counter(seen.values())


def test_facts_are_dated_alike_whether_a_deadline_fired_by_tick_or_inside_the_next_event() -> None:
    """A worker's tick lags: the breach at 10:15 (and its escalation to L2) may still be
    pending when L2's first reply arrives at 10:20, and then fires inside that event's
    decision. Its metric facts must be dated as when the tick came first, as simulate does —
    the handoff at the reply (10:20), not at the escalation (seen on the broker: a handoff
    counted in the 10 s window before its own)."""
    reply_at = ms("2026-11-24T10:20:00Z")
    runs = []
    for tick_first in (True, False):
        processor = TicketProcessor(example_policy(), {})
        out = feed(processor, created("T-1", "2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z")
        while tick_first and (due := processor.next_due(3)) is not None and due < reply_at:
            out += processor.on_tick(3, due + 1)
        assert any(e.role == "escalations" for e in out) == tick_first
        out += feed(processor, comment("T-1", reply_at), "2026-11-24T10:20:00Z")
        out += processor.take_fact_records()
        runs.append(_facts_of(out))
    with_tick, inside_event = runs
    handoffs = [f for f in inside_event if f[0] == "handoff"]
    assert handoffs == [("handoff", reply_at, "L2", "", 5 * 60_000, "P1")]
    assert inside_event == with_tick


def test_facts_keep_the_severity_of_their_step_when_a_deadline_fires_inside_a_change() -> None:
    """The breach at 10:15 counts for the severity the ticket had then (P1), also when the
    worker's tick lagged and it fires inside the 10:16 event that lowers it to P4 (seen on
    the broker: a breach counted in P4's window while simulate counted it in P1's)."""
    lowered_at = ms("2026-11-24T10:16:00Z")
    runs = []
    for tick_first in (True, False):
        processor = TicketProcessor(example_policy(), {})
        out = feed(processor, created("T-1", "2026-11-24T10:00:00Z"), "2026-11-24T10:00:00Z")
        while tick_first and (due := processor.next_due(3)) is not None and due < lowered_at:
            out += processor.on_tick(3, due + 1)
        out += feed(processor, severity("T-1", lowered_at, "P4"), "2026-11-24T10:16:00Z")
        out += processor.take_fact_records()
        runs.append(_facts_of(out))
    with_tick, inside_event = runs
    breaches = [f for f in inside_event if f[0] == "breach"]
    assert [f[5] for f in breaches] == ["P1"]
    assert inside_event == with_tick
