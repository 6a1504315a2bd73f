"""Stored states ⇄ bytes for the tables and their changelogs (orjson, never pickle).

Every format has a version (docs/architecture.md, "Stored formats"): a change to a format bumps
its version and keeps reading the previous one. tests/unit/test_stored_formats.py holds a
literal record of every version this build reads.
"""

from __future__ import annotations

import operator
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from escalator.adapters.state_dictionary import STATE_DICTIONARY
from escalator.domain.effects import OutageChanged
from escalator.domain.incidents import IncidentState
from escalator.domain.pages import Page
from escalator.domain.recontact import CustomerFact, CustomerState
from escalator.domain.sla import Clock
from escalator.domain.state import DONE_STATUSES, ExpiredTicket, Handoff, TicketState, Visit

# Tickets: format 8 is a small JSON head `[8, partition, due, offset, severity, tier, service,
# still open (1 or 0)]`, a NUL byte (JSON never holds one raw), then format 6's positional
# array (less what the head holds) compressed as a raw deflate stream against a preset dictionary
# (adapters/state_dictionary.py): 1.1 kB states are kept in under 300 bytes (issue 21: memory
# per open ticket), and the head alone rebuilds the deadline index and the open-ticket catalog
# after a rebalance. Format 7 (the same head, then the whole array as a zlib stream against the
# same dictionary) is still read, as are formats 6 (the array,
# uncompressed), 5 (the same array before the customer's sentiment scores, churn risk and VIP
# flag were kept), 4 (before the stays at tiers and the customer's latest words were kept), 3
# (before open pages and the snooze), 2 (before the status timeline, agent action, period
# starts and clock moves) and 1 (a dict, "v": 1) are still read.
TICKET_FORMAT: Final = 8
TICKET_FORMAT_7: Final = 7
TICKET_FORMAT_6: Final = 6
TICKET_FORMAT_5: Final = 5
TICKET_FORMAT_4: Final = 4
TICKET_FORMAT_3: Final = 3
TICKET_FORMAT_2: Final = 2
TICKET_FORMAT_1: Final = 1
# A dict with "v". Format 2 added the open pages (as [cause, channel, recipient, about, acked]),
# who acknowledged and resolved it, the re-page count and `suppressed_until` (maintenance
# windows); format 1 (without them: no page kept, never suppressed) is still read.
INCIDENT_FORMAT: Final = 2
INCIDENT_FORMAT_1: Final = 1
CUSTOMER_FORMAT: Final = 1  # a dict with "v"
# Outages: format 2 is a JSON array led by 2; format 1, {service: [incident id, time]} (one
# incident per service, no version field), is still read.
OUTAGES_FORMAT: Final = 2
# Without a version field (the next format must add one, so 1 = "none"):
FACT_FORMAT: Final = 1  # a customer fact on the repartition topic; the next adds "v"
# An expired ticket's marker, in the tickets table under the ticket's key: a positional array
# like format 2 (partition and due at the same places) led by this tag instead of a number.
EXPIRED_FORMAT: Final = "expired/1"

# orjson >= 3.12 returns dumps() results in an over-allocated buffer that is never shrunk
# (a 1.2 kB state held 8 kB): whatever is kept in a store is copied to its exact size first.
# Joining with an empty bytes copies (a lone item would be returned as is); measured 55 ns
# per 1 kB, against 160 ns for bytes(memoryview(...)).
_EMPTY: Final = b""


def _sized(raw: bytes) -> bytes:
    return _EMPTY.join((raw, _EMPTY))


# Format 3 is [3, partition, due, offset, *TicketState fields in this order], the clocks as
# arrays of _CLOCK_FIELDS and the handoff as [tier, since] or null. Both tuples must list the
# dataclasses' fields in declaration order (a test checks it): a change needs a new format.
_CLOCK_FIELDS: Final = (
    "key",
    "target",
    "started_at",
    "budget_ms",
    "calendar_name",
    "since",
    "elapsed_ms",
    "paused_ms",
    "paused",
    "warned",
    "deadline",
    "warn_at",
    "warn_label",
    "breach_id",
    "escalation_id",
    "from_tier",
    "move",
    "imported",
    "met_at",
)
_TICKET_FIELDS: Final = (
    "ticket_id",
    "customer_id",
    "customer_tier",
    "severity",
    "service",
    "summary",
    "tier",
    "created_at",
    "status",
    "group",
    "cycle",
    "rule",
    "processed_until",
    "clocks",
    "first_response_done",
    "update_seq",
    "inactivity_seq",
    "handoff",
    "escalations",
    "escalated_kinds",
    "bounced",
    "tiers_visited",
    "assignees",
    "comments",
    "reopens",
    "fired",
    "seen",
    "solved_at",
    "closed_at",
    "statuses",
    "acted_at",
    "update_from",
    "idle_from",
    "moves",
    "breaches",
    "policy",
    "source",
    "held_from",
    "held_until",
    "pages",
    "snoozed_until",
    "visits",
    "last_customer_message",
    "sentiments",
    "churn_risk",
    "vip",
)
# Format 2 held the first fields of each (format 1 the same, as dicts).
_CLOCK_FIELDS_2: Final = _CLOCK_FIELDS[:-3]
# Format 3: before pages, snoozed_until, visits and last_customer_message.
# Format 5: before the sentiment scores and the customer's churn risk and VIP flag.
_TICKET_FIELDS_5: Final = _TICKET_FIELDS[:-3]
_TICKET_FIELDS_4: Final = _TICKET_FIELDS[:-5]  # format 4: before visits and the excerpt
_TICKET_FIELDS_3: Final = _TICKET_FIELDS[:-7]
_TICKET_FIELDS_2: Final = _TICKET_FIELDS[:-17]
# Attributes renamed since format 1 was written: attribute → its key in a format-1 record.
_V1_KEYS: Final = {"processed_until": "clock"}
_HEAD: Final = 4  # version, partition, due, offset
_CLOCKS: Final = _HEAD + _TICKET_FIELDS.index("clocks")
_HANDOFF: Final = _HEAD + _TICKET_FIELDS.index("handoff")
_PAGES: Final = _HEAD + _TICKET_FIELDS.index("pages")
_VISITS: Final = _HEAD + _TICKET_FIELDS.index("visits")
_SEVERITY: Final = _HEAD + _TICKET_FIELDS.index("severity")
_TIER: Final = _HEAD + _TICKET_FIELDS.index("tier")
_SERVICE: Final = _HEAD + _TICKET_FIELDS.index("service")
_STATUS: Final = _HEAD + _TICKET_FIELDS.index("status")
_ROW_LENGTH: Final = _HEAD + len(_TICKET_FIELDS)
_ROW_LENGTH_5: Final = _HEAD + len(_TICKET_FIELDS_5)
_ROW_LENGTH_4: Final = _HEAD + len(_TICKET_FIELDS_4)
_ROW_LENGTH_3: Final = _HEAD + len(_TICKET_FIELDS_3)
_ROW_LENGTH_2: Final = _HEAD + len(_TICKET_FIELDS_2)
_ticket_values: Final = operator.attrgetter(*_TICKET_FIELDS)
_clock_values: Final = operator.attrgetter(*_CLOCK_FIELDS)
# A page (tickets and incidents) as [cause, channel, recipient, about, acked].
_page_values: Final = operator.attrgetter("cause", "channel", "recipient", "about", "acked")
# A stay at a tier as [tier, since, how, reason, [handled by]].
_visit_values: Final = operator.attrgetter("tier", "since", "how", "reason", "handled_by")


# Formats 7 and 8 compress with zlib level 6 (level 1 stored 20 % more for 30 % less time),
# the dictionary set once and the primed compressor copied per state (setting a 6 kB
# dictionary costs more than compressing a state). An 8 kB window holds the dictionary and a
# state, and a small hash table (memLevel 4) makes the copy cheap: 36 against 51 µs per state.
# Format 8 writes a raw deflate stream (negative window bits: no zlib header, dictionary id
# or checksum, 10 bytes; Kafka's record CRC and RocksDB's block checksums guard the bytes) of
# the format-6 array without what the head already holds (partition, due, offset, severity,
# tier, service: nulls there), 22 bytes less per state than format 7 (docs/benchmarks.md).
_COMPRESSION_LEVEL: Final = 6
_WINDOW_BITS: Final = 13
_MEMORY_LEVEL: Final = 4
_COMPRESSOR: Final = zlib.compressobj(
    _COMPRESSION_LEVEL,
    zlib.DEFLATED,
    -_WINDOW_BITS,
    _MEMORY_LEVEL,
    zlib.Z_DEFAULT_STRATEGY,
    STATE_DICTIONARY,
)
_HEAD_7: Final = b"[7,"
_HEAD_8: Final = b"[8,"
_HEADS: Final = (_HEAD_8, _HEAD_7)  # states whose head alone rebuilds the index
_SEPARATOR: Final = b"\x00"
# The row's items the head holds (format 8 leaves them null in the compressed array).
_FROM_HEAD: Final = ((1, 1), (2, 2), (3, 3), (4, _SEVERITY), (5, _TIER), (6, _SERVICE))


def encode_state(
    state: TicketState, partition: int = -1, due: int | None = None, offset: int | None = None
) -> bytes:
    """Serialise a ticket's state (format 8: a head, then the format-6 array compressed).

    The Kafka partition and next due instant ride along in the head so a worker can rebuild
    its deadline index after a rebalance without running the engine (see `index_entry`).
    """
    head = orjson.dumps(
        [
            TICKET_FORMAT,
            partition,
            due,
            offset,
            state.severity,
            state.tier,
            state.service,
            int(state.status not in DONE_STATUSES),  # 1 or 0: format 7 wrote true or false
        ]
    )
    compressor = _COMPRESSOR.copy()
    row = _encode_row(state)
    return _EMPTY.join((head, _SEPARATOR, compressor.compress(row), compressor.flush()))


def _encode_row(state: TicketState) -> bytes:
    """Format 6's positional array, without what format 8's head holds (nulls there)."""
    row: list[Any] = [TICKET_FORMAT_6, None, None, None, *_ticket_values(state)]
    row[_SEVERITY] = row[_TIER] = row[_SERVICE] = None
    row[_CLOCKS] = [_clock_values(c) for c in state.clocks.values()]
    handoff = state.handoff
    row[_HANDOFF] = (handoff.tier, handoff.since) if handoff else None
    row[_PAGES] = [_page_values(page) for page in state.pages]
    row[_VISITS] = [_visit_values(visit) for visit in state.visits]
    return orjson.dumps(row)


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """A format 7 or 8 state's head and compressed body."""
    at = _separator(raw)
    return raw[:at], raw[at + 1 :]


def _head(raw: bytes) -> bytes:
    """A format 7 or 8 state's head alone (no copy of the body: a rebuild reads only heads)."""
    return raw[: _separator(raw)]


def _separator(raw: bytes) -> int:
    at = raw.find(_SEPARATOR)
    if at < 0:
        raise ValueError(f"a format {raw[1:2].decode()} ticket state without its separator")
    return at


def _inflate(body: bytes, version: int) -> bytes:
    """Format 8's raw deflate stream or format 7's zlib stream, against the dictionary."""
    bits = -_WINDOW_BITS if version == TICKET_FORMAT else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(bits, STATE_DICTIONARY)
    data = decompressor.decompress(body)
    if not decompressor.eof:
        raise ValueError(f"a format {version} ticket state is cut short")
    if decompressor.unused_data:
        raise ValueError(f"a format {version} ticket state has bytes after its compressed array")
    return data


def _compressed_row(raw: bytes) -> list[Any]:
    """The format-6 array of a format 7 or 8 state (format 8's filled in from its head)."""
    version = TICKET_FORMAT if raw.startswith(_HEAD_8) else TICKET_FORMAT_7
    head, body = _split(raw)
    try:
        row = orjson.loads(_inflate(body, version))
    except zlib.error as exc:
        raise ValueError(f"a format {version} ticket state does not decompress: {exc}") from exc
    if type(row) is not list or len(row) != _ROW_LENGTH or row[0] != TICKET_FORMAT_6:
        raise ValueError(f"a format {version} ticket state does not hold a format 6 array")
    if version == TICKET_FORMAT:
        held = orjson.loads(head)
        for at_head, at_row in _FROM_HEAD:
            row[at_row] = held[at_head]
    return row


def decode_state(raw: bytes) -> tuple[TicketState, int | None]:
    """Inverse of `encode_state`: the state and the source offset that last wrote it.

    Reads formats 8 and 7 (format 6 compressed), format 6, formats 5, 4, 3 and 2 and the dicts of
    format 1 (`_upgrade` fills in what 2 and 1 lack; formats 5, 4 and 3 lack only what defaults
    to nothing: no sentiment scores, no churn risk, not a VIP by data, and for 4 no stays
    recorded, no customer excerpt, and for 3 no open pages, no snooze).
    """
    row = _compressed_row(raw) if raw.startswith(_HEADS) else orjson.loads(raw)
    if type(row) is not list:
        return _decode_state_v1(row)
    if row[0] == TICKET_FORMAT_2 and len(row) == _ROW_LENGTH_2:
        return _decode_rows(row, len(_CLOCK_FIELDS_2), upgrade=True)
    if row[0] == TICKET_FORMAT_3 and len(row) == _ROW_LENGTH_3:
        return _decode_rows(row, len(_CLOCK_FIELDS), upgrade=False)
    if row[0] == TICKET_FORMAT_4 and len(row) == _ROW_LENGTH_4:
        row[_PAGES] = [Page(*values) for values in row[_PAGES]]
        return _decode_rows(row, len(_CLOCK_FIELDS), upgrade=False)
    current = row[0] == TICKET_FORMAT_6 and len(row) == _ROW_LENGTH
    if not current and not (row[0] == TICKET_FORMAT_5 and len(row) == _ROW_LENGTH_5):
        raise ValueError(
            f"unknown ticket state format {row[0]!r} with {len(row)} items "
            f"(this build reads {TICKET_FORMAT}, 6 with {_ROW_LENGTH}, 5 with {_ROW_LENGTH_5}, "
            f"4 with {_ROW_LENGTH_4}, 3 with {_ROW_LENGTH_3}, 2 with {_ROW_LENGTH_2}, and 1)"
        )
    row[_PAGES] = [Page(*values) for values in row[_PAGES]]
    row[_VISITS] = [
        Visit(tier, since, how, reason, tuple(handled_by))
        for tier, since, how, reason, handled_by in row[_VISITS]
    ]
    return _decode_rows(row, len(_CLOCK_FIELDS), upgrade=False)


def _decode_rows(
    row: list[Any], clock_fields: int, upgrade: bool
) -> tuple[TicketState, int | None]:
    clocks: dict[str, Clock] = {}
    for values in row[_CLOCKS]:
        if len(values) != clock_fields:
            raise ValueError(f"a clock has {len(values)} items, expected {clock_fields}")
        clocks[values[0]] = Clock(*values)
    row[_CLOCKS] = clocks
    handoff = row[_HANDOFF]
    row[_HANDOFF] = Handoff(handoff[0], handoff[1]) if handoff else None
    state = TicketState(*row[_HEAD:])
    if upgrade:
        _upgrade(state)
    else:
        state.statuses = [(at, status) for at, status in state.statuses]
    return state, row[3]


def _upgrade(state: TicketState) -> None:
    """What a state written before format 3 lacks, from what it kept. Its clocks' counts stay
    their anchor (a late event cannot reach before them, as when they were written); the
    timeline starts at creation with the status they were counted in; a move without a recorded
    number is never undone; no action is assumed before a pending handoff, and every
    earlier time counts as covered."""
    state.statuses = [(_cycle_start(state), state.status)]
    if state.handoff is None:
        state.acted_at = state.processed_until
    else:
        state.acted_at = state.handoff.since - 1
    updates = [c.started_at for c in state.clocks.values() if c.target == "next_update"]
    state.update_from = updates[0] if updates else None
    idle = [c.started_at for c in state.clocks.values() if c.target == "inactivity"]
    state.idle_from = idle[0] if idle else state.processed_until
    state.moves = len(state.tiers_visited) - 1
    state.breaches = {c.key: 1 for c in state.clocks.values() if c.breached}
    state.policy = None  # re-matched by the policy in force at its first event or firing


def _cycle_start(state: TicketState) -> int:
    """Where an upgraded ticket's cycle began, as far as it tells: creation for the first; for
    a later one the earliest start of a clock of the cycle (the reopen started them), or else
    the processing clock."""
    if state.cycle == 1:
        return state.created_at
    started = [c.started_at for c in state.clocks.values() if c.target != "first_response"]
    return min(started) if started else state.processed_until


def _decode_state_v1(doc: Any) -> tuple[TicketState, int | None]:
    if type(doc) is not dict:
        raise ValueError(f"unknown ticket state format (this build reads {TICKET_FORMAT} and 1)")
    version = doc.pop("v", None)
    doc.pop("p", None)
    doc.pop("due", None)
    offset = doc.pop("o", None)
    if version != TICKET_FORMAT_1:
        raise ValueError(
            f"unknown ticket state format {version!r} (this build reads {TICKET_FORMAT} and 1)"
        )
    clocks = [Clock(**dict(zip(_CLOCK_FIELDS_2, row, strict=True))) for row in doc.pop("clocks")]
    handoff = doc.pop("handoff")
    for attribute, key in _V1_KEYS.items():
        doc[attribute] = doc.pop(key)
    state = TicketState(**doc)
    state.clocks = {c.key: c for c in clocks}
    state.handoff = Handoff(tier=handoff[0], since=handoff[1]) if handoff else None
    _upgrade(state)
    return state, offset


def encode_expired(expired: ExpiredTicket, partition: int, due: int | None) -> bytes:
    row = [EXPIRED_FORMAT, partition, due, expired.ticket_id, expired.status]
    return _sized(orjson.dumps([*row, expired.done_at, expired.purged_at]))


EXPIRED_HEAD: Final = b'["expired/'  # how an expired ticket's marker begins


def decode_expired(raw: bytes) -> ExpiredTicket | None:
    """The marker of an expired ticket, or None when `raw` is a ticket's state."""
    if not raw.startswith(EXPIRED_HEAD):
        return None
    row = orjson.loads(raw)
    if row[0] != EXPIRED_FORMAT:
        raise ValueError(f"unknown expired ticket format {row[0]!r} (this build reads 1)")
    return ExpiredTicket(*row[3:])


def index_entry(raw: bytes) -> tuple[int, int | None]:
    """(partition, next due instant) of a stored state (ticket, incident or customer)."""
    doc = orjson.loads(_head(raw) if raw.startswith(_HEADS) else raw)
    if type(doc) is list:
        return int(doc[1]), doc[2]
    return int(doc["p"]), doc["due"]


def ticket_entry(raw: bytes) -> tuple[int, int | None, str, str, str | None, bool]:
    """(partition, next due, severity, tier, service, still open) of a stored ticket, parsed
    once: a rebuild after a rebalance reads every stored ticket (formats 7 and 8: the head)."""
    if raw.startswith(_HEADS):
        at = raw.find(_SEPARATOR)  # inline `_head`: this runs for every ticket of a rebuild
        head = orjson.loads(raw[:at] if at >= 0 else _head(raw))
        return int(head[1]), head[2], head[4], head[5], head[6], bool(head[7])
    doc = orjson.loads(raw)
    if type(doc) is list:
        is_open = doc[_STATUS] not in ("solved", "closed")
        return int(doc[1]), doc[2], doc[_SEVERITY], doc[_TIER], doc[_SERVICE], is_open
    is_open = doc["status"] not in ("solved", "closed")
    return int(doc["p"]), doc["due"], doc["severity"], doc["tier"], doc.get("service"), is_open


_INCIDENT_FIELDS: Final = tuple(IncidentState.__dataclass_fields__)


def encode_incident(
    state: IncidentState, partition: int, due: int | None, offset: int | None = None
) -> bytes:
    doc: dict[str, Any] = {name: getattr(state, name) for name in _INCIDENT_FIELDS}
    doc["pages"] = [_page_values(page) for page in state.pages]
    doc.update(v=INCIDENT_FORMAT, p=partition, due=due, o=offset)
    return _sized(orjson.dumps(doc))


def decode_incident(raw: bytes) -> tuple[IncidentState, int | None]:
    doc = orjson.loads(raw)
    version = doc.pop("v", None)
    if version not in (INCIDENT_FORMAT, INCIDENT_FORMAT_1):
        raise ValueError(
            f"unknown incident state format {version!r} "
            f"(this build reads {INCIDENT_FORMAT} and {INCIDENT_FORMAT_1})"
        )
    if version == INCIDENT_FORMAT_1 and "suppressed_until" in doc:
        raise ValueError("incident state format 1 with a field of format 2 (suppressed_until)")
    doc.pop("p", None)
    doc.pop("due", None)
    offset = doc.pop("o", None)
    doc["pages"] = [Page(*values) for values in doc.get("pages", ())]
    # Written before the occurrence's start was kept: its opening is that start.
    doc.setdefault("started", doc["opened_at"])
    return IncidentState(**doc), offset


def encode_outages(active: Mapping[str, Sequence[OutageChanged]]) -> bytes:
    """One partition's services in outage, each with every incident that keeps it there:
    format 2, `[2, [[service, incident id, started], ...]]`."""
    rows = [
        [service, o.incident_id, o.time]
        for service, incidents in sorted(active.items())
        for o in incidents
    ]
    return _sized(orjson.dumps([OUTAGES_FORMAT, rows]))


def decode_outages(raw: bytes) -> dict[str, list[OutageChanged]]:
    """Format 2, or format 1 (`{service: [incident id, started]}`, one incident a service)."""
    doc = orjson.loads(raw)
    if type(doc) is dict:
        return {
            service: [OutageChanged(service, incident_id, True, time)]
            for service, (incident_id, time) in doc.items()
        }
    if type(doc) is not list or doc[0] != OUTAGES_FORMAT:
        raise ValueError(f"unknown outages state format (this build reads {OUTAGES_FORMAT} and 1)")
    active: dict[str, list[OutageChanged]] = {}
    for service, incident_id, time in doc[1]:
        active.setdefault(service, []).append(OutageChanged(service, incident_id, True, time))
    return active


def encode_fact(fact: CustomerFact) -> bytes:
    """A customer fact on the repartition topic (keyed by customer id).

    The dict is built by hand: `dataclasses.asdict` deep-copies field by field (2 % of the core
    processor's time); the bytes are the same (a test compares them).
    """
    doc = {
        "kind": fact.kind,
        "customer_id": fact.customer_id,
        "service": fact.service,
        "severity": fact.severity,
        "customer_tier": fact.customer_tier,
        "time": fact.time,
        "ticket_id": fact.ticket_id,
    }
    return orjson.dumps(doc)


def decode_fact(raw: bytes) -> CustomerFact:
    return fact_from_doc(orjson.loads(raw))


def fact_from_doc(doc: dict[str, Any]) -> CustomerFact:
    """A decoded customer fact record; a version field, which format 1 lacks, is refused."""
    if "v" in doc:
        raise ValueError(
            f"unknown customer fact format {doc['v']!r} (this build reads {FACT_FORMAT})"
        )
    return CustomerFact(**doc)


def encode_customer(state: CustomerState, partition: int, due: int | None = None) -> bytes:
    doc = {
        "v": CUSTOMER_FORMAT,
        "p": partition,
        "due": due,  # when its newest solve leaves the re-contact window (then it goes)
        "customer_id": state.customer_id,
        "last_solved": state.last_solved,
        "seen": state.seen,
    }
    return _sized(orjson.dumps(doc))


def decode_customer(raw: bytes) -> CustomerState:
    doc = orjson.loads(raw)
    if doc.get("v") != CUSTOMER_FORMAT:
        raise ValueError(
            f"unknown customer state format {doc.get('v')!r} (this build reads {CUSTOMER_FORMAT})"
        )
    return CustomerState(doc["customer_id"], dict(doc["last_solved"]), list(doc["seen"]))
