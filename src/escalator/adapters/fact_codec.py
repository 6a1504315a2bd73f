"""Bytes for the aggregates path: fact records on the repartition topic and window states.

A fact record carries the facts one decision produced for one key (a group or a customer),
positionally, to keep the repartition traffic small. The worker sends a batch's fact records
as bundles, one record per destination partition holding the records as they are (see
service/bundles.py); a bundle reads as its records in order. Window states are stored like
ticket states: `p` (partition), `due` (next close), `o` (source offset of the last record
applied). All formats are versioned like every stored format (docs/architecture.md, "Stored
formats").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import orjson

from escalator.adapters.state_codec import fact_from_doc
from escalator.domain.aggregates import MetricFact, Tally, Windows, Worst
from escalator.domain.credits import Breach
from escalator.domain.recontact import CustomerFact
from escalator.errors import InvalidEvent

FACTS: Final = "metric_facts"
# Format 2 ("v": 2) adds each fact's `ref` (a breach's id: the credits' evidence); format 1
# (no version field, ten items a fact) is still read, with no ref.
FACTS_FORMAT: Final = 2
FACTS_FORMAT_1: Final = 1
# Format 3 adds whether each tally's evidence is complete ("x") and the refs of the breaches
# it counted late ("lr"); format 2 (read as complete)
# added each tally's breaches ("b") and the count left unlisted ("u"); format 1 (without them:
# no evidence, so read as incomplete) is still read.
WINDOWS_FORMAT: Final = 3
WINDOWS_FORMAT_2: Final = 2
WINDOWS_FORMAT_1: Final = 1
WINDOWS_READ: Final = (WINDOWS_FORMAT, WINDOWS_FORMAT_2, WINDOWS_FORMAT_1)
BUNDLE: Final = "bundle"
BUNDLE_FORMAT: Final = 1

# One record of the repartition topic, decoded: a customer fact (re-contact), or metric facts
# with the state key they update.
FactRecord: TypeAlias = CustomerFact | tuple[str, list[MetricFact]]


def encode_facts(key: str, facts: list[MetricFact]) -> bytes:
    """One repartition record: the facts of one decision for one state key."""
    rows = [
        [
            f.id,
            f.kind,
            f.time,
            f.ticket_id,
            f.customer_id,
            f.customer_tier,
            f.severity,
            f.tier,
            f.target,
            f.value_ms,
            f.ref,
        ]
        for f in facts
    ]
    return orjson.dumps({"v": FACTS_FORMAT, "key": key, FACTS: rows})


def encode_bundle(records: Sequence[tuple[bytes, bytes]]) -> bytes:
    """One record holding several fact records, in order, each with the Kafka key it would
    have had (`encode_facts` or `encode_fact` bytes, embedded as they are, not decoded and
    encoded again). The key routes a record's dead letter back to its own partition."""
    return orjson.dumps(
        {
            "v": BUNDLE_FORMAT,
            BUNDLE: [[key.decode(), orjson.Fragment(value)] for key, value in records],
        }
    )


def decode_bundle(raw: bytes) -> list[tuple[bytes, bytes]] | None:
    """A bundle's records as (Kafka key, record bytes), in order; None for a record that is
    not a bundle. A bundle that cannot be read at all is refused whole."""
    if not raw.startswith(b'{"v":') or b'"bundle":' not in raw[:32]:
        return None
    try:
        doc = orjson.loads(raw)
        if doc.get("v") != BUNDLE_FORMAT:
            raise ValueError(
                f"unknown fact bundle format {doc.get('v')!r} (this build reads {BUNDLE_FORMAT})"
            )
        return [(str(key).encode(), orjson.dumps(item)) for key, item in doc[BUNDLE]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent("invalid_field", f"not a fact bundle: {exc}") from exc


def decode_fact_record(raw: bytes) -> FactRecord:
    """A record of the repartition topic: a customer fact (re-contact), or metric facts with
    the state key they update."""
    try:
        doc = orjson.loads(raw)
        if isinstance(doc, dict) and FACTS in doc:
            version = doc.get("v", FACTS_FORMAT_1)
            if version not in (FACTS_FORMAT, FACTS_FORMAT_1):
                raise ValueError(
                    f"unknown fact record format {version!r} (this build reads "
                    f"{FACTS_FORMAT} and {FACTS_FORMAT_1})"
                )
            return str(doc["key"]), [MetricFact(*row) for row in doc[FACTS]]
        if not isinstance(doc, dict):
            raise TypeError(f"a fact record is an object, not {type(doc).__name__}")
        return fact_from_doc(doc)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent("invalid_field", f"not a fact record: {exc}") from exc


def encode_windows(state: Windows, partition: int, due: int | None, offset: int | None) -> bytes:
    doc = {
        "v": WINDOWS_FORMAT,
        "p": partition,
        "due": due,
        "o": offset,
        "key": state.key,
        "open": [[name, start, _tally(t)] for (name, start), t in sorted(state.open.items())],
        "closed_until": state.closed_until,
        "seen": state.seen,
    }
    return bytes(memoryview(orjson.dumps(doc)))  # right-sized: kept in memory stores


def decode_windows(raw: bytes) -> tuple[Windows, int | None]:
    doc = orjson.loads(raw)
    if doc.get("v") not in WINDOWS_READ:
        raise ValueError(
            f"unknown window state format {doc.get('v')!r} (this build reads "
            f"{', '.join(map(str, WINDOWS_READ))})"
        )
    state = Windows(
        key=doc["key"],
        open={(name, start): _untally(t) for name, start, t in doc["open"]},
        closed_until=dict(doc["closed_until"]),
        seen=list(doc["seen"]),
    )
    return state, doc.get("o")


def _tally(tally: Tally) -> dict[str, Any]:
    worst = tally.worst
    return {
        "c": tally.counts,
        "t": tally.by_target,
        "h": tally.handoff,
        "w": None
        if worst is None
        else [worst.ticket_id, worst.target, worst.severity, worst.overdue_ms],
        "l": tally.late,
        "ct": sorted(tally.customer_tiers),
        "b": [
            [b.breach_id, b.ticket_id, b.target, b.severity, b.deadline, b.overdue_ms, b.open]
            for b in tally.breaches.values()
        ],
        "u": tally.unlisted,
        "x": tally.complete,
        "lr": sorted(tally.late_refs),
    }


def _untally(doc: dict[str, Any]) -> Tally:
    worst = doc["w"]
    return Tally(
        counts=dict(doc["c"]),
        by_target={target: dict(kinds) for target, kinds in doc["t"].items()},
        handoff=list(doc["h"]),
        worst=None if worst is None else Worst(*worst),
        late=int(doc["l"]),
        customer_tiers=set(doc["ct"]),
        breaches={row[0]: Breach(*row) for row in doc.get("b", ())},
        unlisted=int(doc.get("u", 0)),
        # Format 1 kept no evidence; format 2 kept all it saw.
        complete=bool(doc.get("x", "b" in doc)),
        late_refs=set(doc.get("lr", ())),
    )
