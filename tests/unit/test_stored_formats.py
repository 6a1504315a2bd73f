"""Every stored format, by version (docs/architecture.md, "Stored formats").

For each format: a literal record of every version this build still reads, decoded; the literal
of the current version is also what the encoder writes today, so a format changed without a new
version fails here. A new format or version adds its literal here.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from escalator.adapters import (
    alerts,
    customer_codec,
    fact_codec,
    maintenance,
    notify_codec,
    overrides,
    source_codec,
    state_codec,
    state_dictionary,
)
from escalator.adapters.deadletter import (
    Delivery,
    Origin,
    dead_letter,
    delivery_dead_letter,
    original_bytes,
    original_key,
)
from escalator.adapters.state_dictionary import STATE_DICTIONARY
from escalator.domain.aggregates import Windows, Worst
from escalator.domain.credits import Breach
from escalator.domain.customers import CustomerAttributes, CustomerTable, CustomerUpdated
from escalator.domain.effects import OutageChanged, SourceSilence
from escalator.domain.maintenance import OPEN_ENDED, AdhocWindow, MaintenanceChange
from escalator.domain.overrides import OverrideMade
from escalator.domain.pages import Page
from escalator.domain.recontact import CustomerFact, CustomerState
from escalator.domain.schedules import Override
from escalator.domain.sources import SourceState
from escalator.domain.state import ExpiredTicket, Handoff, Visit
from escalator.errors import InvalidEvent
from escalator.runtime import policy_topic
from tests.helpers import as_format_6
from tests.unit.test_state_codec import V1_RECORD as TICKET_1

# --- tickets (table "tickets"): format 3, and formats 2 and 1 still read ------------------------

TICKET_2 = (
    b'[2,3,1795001800000,41,"T-1","acme","enterprise","P1","api","down","L1",1795000000000,'
    b'"open",null,1,"enterprise-P1",1795000060000,[["next_update.1","next_update",'
    b'1795000060000,1800000,"24x7",1795000060000,0,0,false,["0.75"],1795001860000,'
    b'1795001410000,"0.75",null,null,null]],true,1,0,["L1",1795000000000],0,[],false,["L1"],'
    b'["ann"],1,0,[],["e1","e2"],null,null]'
)


TICKET_3 = (
    b'[3,3,1795001800000,41,"T-1","acme","enterprise","P1","api","down","L1",1795000000000,'
    b'"open",null,1,"enterprise-P1",1795000060000,[["next_update.1","next_update",'
    b'1795000060000,1800000,"24x7",1795000060000,0,0,false,["0.75"],1795001860000,'
    b'1795001410000,"0.75",null,null,"L1",1,false,null]],true,1,0,["L1",1795000000000],0,[],false,'
    b'["L1"],["ann"],1,0,[],["e1","e2"],null,null,[[1795000000000,"new"],[1795000030000,'
    b'"open"]],1795000060000,1795000060000,1795000045000,1,{"next_update.1":1},'
    b'"example-2026.11","zendesk",1795000050000,1795000060000]'
)


def test_ticket_formats_1_and_2_upgrade_to_3() -> None:
    old, new = state_codec.decode_state(TICKET_1), state_codec.decode_state(TICKET_2)
    assert old == new
    state, offset = new
    assert (state.ticket_id, state.handoff, offset) == ("T-1", Handoff("L1", 1_795_000_000_000), 41)
    assert state_codec.ticket_entry(TICKET_1) == state_codec.ticket_entry(TICKET_2)
    # What they lack: the timeline starts at creation in the status they were counted in; no
    # action after the pending handoff; the update period from its clock; idle since the clock.
    assert state.statuses == [(1_795_000_000_000, "open")]
    assert state.acted_at == 1_795_000_000_000 - 1
    assert (state.update_from, state.idle_from) == (1_795_000_060_000, 1_795_000_060_000)
    clock = state.clocks["next_update.1"]
    assert (clock.move, state.moves, state.breaches, state.policy) == (0, 0, {}, None)


def test_ticket_format_3() -> None:
    state, offset = state_codec.decode_state(TICKET_3)
    assert state.statuses == [(1_795_000_000_000, "new"), (1_795_000_030_000, "open")]
    assert (state.acted_at, state.update_from, state.idle_from) == (
        1_795_000_060_000,
        1_795_000_060_000,
        1_795_000_045_000,
    )
    clock = state.clocks["next_update.1"]
    assert (clock.from_tier, clock.move, state.moves) == ("L1", 1, 1)
    assert (state.breaches, state.policy) == ({"next_update.1": 1}, "example-2026.11")
    assert (state.source, state.held_from, state.held_until) == (
        "zendesk",
        1_795_000_050_000,
        1_795_000_060_000,
    )
    assert state_codec.ticket_entry(TICKET_3) == state_codec.ticket_entry(TICKET_2)
    # What it lacks defaults to nothing: no open page, no snooze. Written again, it is format 4.
    assert (state.pages, state.snoozed_until) == ([], None)
    assert (state.visits, state.last_customer_message) == ([], None)
    assert (
        as_format_6(state_codec.encode_state(state, 3, 1_795_001_800_000, offset)) == TICKET_6_OF_3
    )


# --- tickets, format 4: format 3 and the open pages and the snooze (still read) --------------

PAGES_4 = (
    b'[["T-1/c1/first_response/escalation","slack:#support-l2","team:specialists","",true],'
    b'["T-1/c1/next_update.1/warning/0.75","slack:#support-l1","team:frontline",'
    b'"next_update.1",false]]'
)
TICKET_4 = b"[4" + TICKET_3[2:-1] + b"," + PAGES_4 + b",1795003600000]"
OPEN_PAGES = [
    Page("T-1/c1/first_response/escalation", "slack:#support-l2", "team:specialists", "", True),
    Page(
        "T-1/c1/next_update.1/warning/0.75",
        "slack:#support-l1",
        "team:frontline",
        "next_update.1",
        False,
    ),
]


def test_ticket_format_4() -> None:
    state, offset = state_codec.decode_state(TICKET_4)
    assert state.pages == OPEN_PAGES
    assert state.snoozed_until == 1_795_003_600_000
    assert (state.visits, state.last_customer_message) == ([], None)
    assert state_codec.ticket_entry(TICKET_4) == state_codec.ticket_entry(TICKET_3)
    written = as_format_6(state_codec.encode_state(state, 3, 1_795_001_800_000, offset))
    assert written == b"[6" + TICKET_4[2:-1] + b",[],null,[],null,false]"


# --- tickets, format 5: format 4 and the stays at tiers and the customer's latest words -----

TICKET_6_OF_3 = b"[6" + TICKET_3[2:-1] + b",[],null,[],null,[],null,false]"
TICKET_5 = (
    b"[5"
    + TICKET_4[2:-1]
    + b',[["L1",1795000000000,"created","",["ann"]],'
    + b'["L2",1795000900000,"escalation","First response breached",[]]],"it is down again"]'
)


def test_ticket_format_5() -> None:
    state, offset = state_codec.decode_state(TICKET_5)
    assert state.pages == OPEN_PAGES
    assert state.visits == [
        Visit("L1", 1_795_000_000_000, "created", "", ("ann",)),
        Visit("L2", 1_795_000_900_000, "escalation", "First response breached"),
    ]
    assert state.last_customer_message == "it is down again"
    assert state_codec.ticket_entry(TICKET_5) == state_codec.ticket_entry(TICKET_3)
    # What it lacks defaults to nothing: no scores, no churn risk, not a VIP by data.
    assert (state.sentiments, state.churn_risk, state.vip) == ([], None, False)
    written = as_format_6(state_codec.encode_state(state, 3, 1_795_001_800_000, offset))
    assert written == b"[6" + TICKET_5[2:-1] + b",[],null,false]"


# --- tickets, format 6: format 5 and the sentiment scores, the churn risk and the VIP flag ---

TICKET_6 = b"[6" + TICKET_5[2:-1] + b",[-0.7269,-0.8316],0.85,true]"


def test_ticket_format_6() -> None:
    state, offset = state_codec.decode_state(TICKET_6)
    assert state.sentiments == [-0.7269, -0.8316]
    assert (state.churn_risk, state.vip) == (0.85, True)
    assert state.last_customer_message == "it is down again"
    assert state_codec.ticket_entry(TICKET_6) == state_codec.ticket_entry(TICKET_3)
    assert as_format_6(state_codec.encode_state(state, 3, 1_795_001_800_000, offset)) == TICKET_6


# --- tickets, format 7: format 6 compressed behind a head ------------------------------------

# TICKET_6 written by this build: the head, a NUL byte, then TICKET_6 compressed by zlib 1.2.13
# against the preset dictionary (kept as written: a later zlib may compress differently, and
# must still read these bytes).
TICKET_7 = b'[7,3,1795001800000,41,"P1","L1","api",true]\x00' + bytes.fromhex(
    "78bbab55b1609559510e82300cbd0af11b45224bf0029ec03fb28f894b5cd4698484c4d3fbba31d9d80c910f"
    "c8a02bf4b57d6d83a95e782fa33a6a99b842ed399aff04a2bdcbe448289e0ae7f363d05357cab6ee589e098d"
    "ac217e72fad2fce549c75da0f7d0ab14b616f0af65e36ebbaa4aab635e2fac25c9d9679b37b19d3cdd8f6922"
    "d3d2d5034916c944cfe4e335f1b2b9bbf350e47c0e41725531b302cd8668fe60d937b85d76d7c92096d00dd7"
    "200e9628e06fe61d7506df590ce2a511b785f549a4b4744a11d7babfa15108e384e2c606b483cbf5e84dc271"
    "11a9681dd00949ee47c9c0d603e190391cb213b4b4175263d26ba5fa4c7519a505725528ec68d630089d658e"
    "6b8db91b21b3a99985e2031d2bf60d"
)


def test_ticket_format_7_is_still_read() -> None:
    assert state_codec.decode_state(TICKET_7) == state_codec.decode_state(TICKET_6)
    assert as_format_6(TICKET_7) == TICKET_6
    # The head alone rebuilds the index and the catalog after a rebalance.
    assert state_codec.ticket_entry(TICKET_7) == state_codec.ticket_entry(TICKET_6)
    assert state_codec.index_entry(TICKET_7) == (3, 1_795_001_800_000)


# --- tickets, format 8: the head, then format 6 less the head's items, raw deflate ------------

# TICKET_6 written by this build (zlib 1.2.13), kept as written like TICKET_7.
TICKET_8 = b'[8,3,1795001800000,41,"P1","L1","api",1]\x00' + bytes.fromhex(
    "9559db0a83300cfd95e2b39b9659a63fb02fd85be9837385c9b60ea620eceb97f4a2aded90f922d5349893d3"
    "930479d4216567fd8fa0ed9e72350e7a36d7d73457aa63c34a776d8f83da566b3ee67b6bf4f2ace306d07be9"
    "150953068435a0b5dd6d5615353ed6a5c2102f39f694f94ccb254e916ec514ea2875a540624432d12ef9782d"
    "92ac9f1e3c14855843905c554caf406143347f08ec07645d0ef7252096f00da9011a6c9dfebf45d7fa0cbeb3"
    "98dab702ca1626279153ea9c02a5d5f8801e21e409f2c670d9c1e5da739e485ca4274a054a82968db50c623d"
    "210ec4e1402ee0a5bba11b7db2b27e24fd40f058c0316d7bd8c1771010349539dc6b18b98132fb9a1928be"
)


def test_ticket_format_8() -> None:
    assert state_codec.TICKET_FORMAT == 8
    assert state_codec.decode_state(TICKET_8) == state_codec.decode_state(TICKET_6)
    assert as_format_6(TICKET_8) == TICKET_6
    assert state_codec.ticket_entry(TICKET_8) == state_codec.ticket_entry(TICKET_6)
    assert state_codec.index_entry(TICKET_8) == (3, 1_795_001_800_000)
    state, offset = state_codec.decode_state(TICKET_6)
    written = state_codec.encode_state(state, 3, 1_795_001_800_000, offset)
    assert written.split(b"\x00", 1)[0] == TICKET_8.split(b"\x00", 1)[0]
    assert as_format_6(written) == TICKET_6
    # The head's items are not compressed a second time, and there is no zlib wrapper.
    body = zlib.decompressobj(-13, STATE_DICTIONARY).decompress(written.split(b"\x00", 1)[1])
    assert orjson.loads(body)[1:4] == [None, None, None]
    assert len(written) <= len(TICKET_7) - 15  # 18 bytes less for this one


def test_the_state_dictionary_never_changes() -> None:
    """Format 7 and 8 states are compressed against it byte for byte: a new dictionary is a
    new format."""
    digest = hashlib.sha256(state_dictionary.STATE_DICTIONARY).hexdigest()
    assert digest == "fde25454cb141231d989e484ef163623b3279c87da61abcd1fcb1b081e81d970"


@pytest.mark.parametrize(
    ("version", "fixture", "window_bits"), [(8, TICKET_8, -13), (7, TICKET_7, zlib.MAX_WBITS)]
)
def test_a_damaged_compressed_state_is_refused_by_name(
    version: int, fixture: bytes, window_bits: int
) -> None:
    named = f"format {version}"
    head = fixture.split(b"\x00")[0]
    for damaged in (fixture[:-5], head + b"\x00garbage", fixture + b"tail", head):
        with pytest.raises(ValueError, match=named):
            state_codec.decode_state(damaged)
    for inner in (b"[]", b"{}", b"[5]", b"[6]"):
        compressor = zlib.compressobj(6, zlib.DEFLATED, window_bits, 9, 0, STATE_DICTIONARY)
        body = compressor.compress(inner) + compressor.flush()
        with pytest.raises(ValueError, match=named):
            state_codec.decode_state(head + b"\x00" + body)


# --- incidents (table "incidents"): format 2, and format 1 still read -------------------------

INCIDENT_1 = (
    b'{"fingerprint":"fp-1","number":2,"status":"acknowledged","severity":"P1","service":"api",'
    b'"alertname":"ApiDown","summary":"API down","opened_at":1795000000000,'
    b'"acknowledged_at":1795000030000,"resolved_at":null,"level":1,"loop":0,'
    b'"next_level_at":null,"ack_deadline":null,"resolve_deadline":1795003600000,"outage":true,'
    b'"clock":1795000030000,"seen":["a1","a2"],"v":1,"p":4,"due":1795003600000,"o":17}'
)


INCIDENT_2 = (
    b'{"fingerprint":"fp-1","number":2,"status":"firing","severity":"P1","service":"api",'
    b'"alertname":"ApiDown","summary":"API down","opened_at":1795000000000,'
    b'"acknowledged_at":null,"resolved_at":null,"level":1,"loop":0,"next_level_at":null,'
    b'"ack_deadline":null,"resolve_deadline":null,"outage":false,"clock":1795000030000,'
    b'"seen":["a1","a2"],"pages":[["incident/fp-1/2026-11-17T07:06:40.000Z/level1.0",'
    b'"pagerduty:primary","oncall-level1","",false]],"acknowledged_by":null,"resolved_by":null,'
    b'"repages":0,"labels":{"alertname":"ApiDown","service":"api"},'
    b'"generator_url":"http://prometheus.example/graph","started":1795000000000,'
    b'"suppressed_until":1795007200000,"v":2,"p":4,"due":1795007200000,"o":17}'
)


def test_incident_format_1_reads_as_never_suppressed() -> None:
    state, offset = state_codec.decode_incident(INCIDENT_1)
    assert (state.fingerprint, state.status, state.outage, offset) == (
        "fp-1",
        "acknowledged",
        True,
        17,
    )
    assert (state.suppressed_until, state.suppressed) == (None, False)
    assert state_codec.index_entry(INCIDENT_1) == (4, 1_795_003_600_000)
    # Format 2 is format 1 and the open pages, who acknowledged and resolved it, the re-page
    # count and `suppressed_until`.
    assert (state.pages, state.acknowledged_by, state.resolved_by, state.repages) == (
        [],
        None,
        None,
        0,
    )
    written = orjson.loads(state_codec.encode_incident(state, 4, 1_795_003_600_000, 17))
    assert written == {
        **orjson.loads(INCIDENT_1),
        "pages": [],
        "acknowledged_by": None,
        "resolved_by": None,
        "repages": 0,
        "labels": {},
        "generator_url": None,
        "started": 1795000000000,  # its opening: format 1 kept no start of its own
        "suppressed_until": None,
        "v": 2,
    }


def test_incident_format_2() -> None:
    assert state_codec.INCIDENT_FORMAT == 2
    state, offset = state_codec.decode_incident(INCIDENT_2)
    assert (state.status, state.suppressed_until, state.suppressed, offset) == (
        "firing",
        1_795_007_200_000,
        True,
        17,
    )
    assert state.pages == [
        Page(
            "incident/fp-1/2026-11-17T07:06:40.000Z/level1.0",
            "pagerduty:primary",
            "oncall-level1",
        )
    ]
    assert state_codec.index_entry(INCIDENT_2) == (4, 1_795_007_200_000)
    assert state_codec.encode_incident(state, 4, 1_795_007_200_000, 17) == INCIDENT_2


# --- a partition's outages (table "tickets", key __outages__/<partition>): format 1 -----------

OUTAGES_1 = b'{"api":["fp-1",1795000000000]}'


OUTAGES_2 = (
    b'[2,[["api","fp-1",1795000000000],["api","fp-2",1795000060000],'
    b'["search","fp-3",1795000120000]]]'
)


def test_outages_formats_1_and_2() -> None:
    assert state_codec.OUTAGES_FORMAT == 2
    assert state_codec.decode_outages(OUTAGES_1) == {
        "api": [OutageChanged("api", "fp-1", True, 1_795_000_000_000)]
    }
    active = state_codec.decode_outages(OUTAGES_2)
    assert active == {
        "api": [
            OutageChanged("api", "fp-1", True, 1_795_000_000_000),
            OutageChanged("api", "fp-2", True, 1_795_000_060_000),
        ],
        "search": [OutageChanged("search", "fp-3", True, 1_795_000_120_000)],
    }
    assert state_codec.encode_outages(active) == OUTAGES_2


# --- customers (table "customers", keyed by customer id): format 1 ----------------------------

CUSTOMER_1 = (
    b'{"v":1,"p":6,"due":null,"customer_id":"acme","last_solved":{"api":1795000000000,'
    b'"":1795000500000},"seen":["solved/T-1/1795000000000"]}'
)


def test_customer_state_format_1() -> None:
    state = state_codec.decode_customer(CUSTOMER_1)
    assert state == CustomerState(
        "acme", {"api": 1_795_000_000_000, "": 1_795_000_500_000}, ["solved/T-1/1795000000000"]
    )
    assert state_codec.index_entry(CUSTOMER_1) == (6, None)
    assert state_codec.encode_customer(state, 6) == CUSTOMER_1


# --- windows (table "customers", keyed by group or __compliance__/customer): format 1 ----------

WINDOWS_1 = (
    b'{"v":1,"p":2,"due":1796083500000,"o":99,"key":"__compliance__/acme","open":[["month",'
    b'1793491200000,{"c":{"created":2,"target_breached":1},"t":{"first_response":'
    b'{"target_breached":1}},"h":[0,1,0,0,0,0,0,0,0,0,0],"w":["T-1","first_response","P1",'
    b'60000],"l":1,"ct":["enterprise"]}]],"closed_until":{"month":1793491200000},'
    b'"seen":["T-1/created"]}'
)


def test_window_state_format_1() -> None:
    state, offset = fact_codec.decode_windows(WINDOWS_1)
    assert isinstance(state, Windows)
    assert offset == 99
    tally = state.open["month", 1_793_491_200_000]
    assert tally.worst == Worst("T-1", "first_response", "P1", 60_000)
    assert (tally.counts["created"], tally.late, tally.customer_tiers) == (2, 1, {"enterprise"})
    assert state_codec.index_entry(WINDOWS_1) == (2, 1_796_083_500_000)
    # No evidence kept before format 2: incomplete. Written again, it is format 3.
    assert (tally.breaches, tally.unlisted, tally.complete) == ({}, 0, False)
    written = fact_codec.encode_windows(state, 2, 1_796_083_500_000, 99)
    assert written == WINDOWS_1.replace(b'"v":1', b'"v":3').replace(
        b'"ct":["enterprise"]}', b'"ct":["enterprise"],"b":[],"u":0,"x":false,"lr":[]}'
    )


# --- windows, format 2: format 1 and each tally's breaches (the credits' evidence) ----------

WINDOWS_2 = WINDOWS_1.replace(b'"v":1', b'"v":2').replace(
    b'"ct":["enterprise"]}',
    b'"ct":["enterprise"],"b":[["T-1/c1/first_response/breach","T-1","first_response","P1",'
    b'1793500000000,60000,false],["T-2/c1/resolution/breach","T-2","resolution","P1",'
    b'1793600000000,0,true]],"u":3}',
)


def test_window_state_format_2() -> None:
    state, _ = fact_codec.decode_windows(WINDOWS_2)
    tally = state.open["month", 1_793_491_200_000]
    assert list(tally.breaches.values()) == [
        Breach(
            "T-1/c1/first_response/breach",
            "T-1",
            "first_response",
            "P1",
            1793500000000,
            60000,
            False,
        ),
        Breach("T-2/c1/resolution/breach", "T-2", "resolution", "P1", 1793600000000, 0, True),
    ]
    assert (tally.unlisted, tally.complete) == (3, True)
    written = fact_codec.encode_windows(state, 2, 1_796_083_500_000, 99)
    assert written == WINDOWS_2.replace(b'"v":2', b'"v":3').replace(
        b'"u":3}', b'"u":3,"x":true,"lr":[]}'
    )


# --- windows, format 3: format 2, whether each tally's evidence is complete, late breaches -----

WINDOWS_3 = WINDOWS_2.replace(b'"v":2', b'"v":3').replace(
    b'"u":3}', b'"u":3,"x":false,"lr":["T-9/c1/resolution/breach"]}'
)


def test_window_state_format_3() -> None:
    state, _ = fact_codec.decode_windows(WINDOWS_3)
    tally = state.open["month", 1_793_491_200_000]
    assert (len(tally.breaches), tally.unlisted, tally.complete) == (2, 3, False)
    assert tally.late_refs == {"T-9/c1/resolution/breach"}
    assert fact_codec.encode_windows(state, 2, 1_796_083_500_000, 99) == WINDOWS_3


# --- records on the repartition topic (escalator.customers): format 1 of each -----------------

CUSTOMER_FACT_1 = (
    b'{"kind":"created","customer_id":"acme","service":"api","severity":"P1",'
    b'"customer_tier":"enterprise","time":1795000600000,"ticket_id":"T-2"}'
)
METRIC_FACTS_1 = (
    b'{"key":"__group__/enterprise/P1/L1","metric_facts":[["T-1/created","created",'
    b'1795000000000,"T-1","acme","enterprise","P1","L1","",0],["T-1/handoff/1","handoff",'
    b'1795000300000,"T-1","acme","enterprise","P1","L2","",300000]]}'
)


def test_customer_fact_format_1() -> None:
    fact = CustomerFact("created", "acme", "api", "P1", "enterprise", 1_795_000_600_000, "T-2")
    assert state_codec.decode_fact(CUSTOMER_FACT_1) == fact
    assert fact_codec.decode_fact_record(CUSTOMER_FACT_1) == fact
    assert state_codec.encode_fact(fact) == CUSTOMER_FACT_1


def test_metric_fact_record_format_1() -> None:
    record = fact_codec.decode_fact_record(METRIC_FACTS_1)
    assert isinstance(record, tuple)
    key, facts = record
    assert key == "__group__/enterprise/P1/L1"
    assert [(f.kind, f.tier, f.value_ms) for f in facts] == [
        ("created", "L1", 0),
        ("handoff", "L2", 300_000),
    ]
    assert [f.ref for f in facts] == ["", ""]
    written = fact_codec.encode_facts(key, facts)
    assert written == b'{"v":2,' + METRIC_FACTS_1[1:].replace(b",0]", b',0,""]').replace(
        b",300000]", b',300000,""]'
    )


# --- metric facts, format 2: format 1 ("v" absent) and each fact's ref ----------------------

METRIC_FACTS_2 = (
    b'{"v":2,"key":"__compliance__/acme","metric_facts":[["T-1/1795000900000/breach/'
    b'first_response","breach",1795000900000,"T-1","acme","enterprise","P1","L1",'
    b'"first_response",0,"T-1/c1/first_response/breach"]]}'
)


# A worker's batch for one partition of the repartition topic (service/bundles.py): its
# records as they are, in order, each with the Kafka key it would have had on its own.
METRIC_FACTS_1_AGAIN = (
    b'{"key":"__group__/enterprise/P1/L1","metric_facts":[["T-3/created","created",'
    b'1795000400000,"T-3","acme","enterprise","P1","L1","",0]]}'
)
BUNDLED = [
    (b"__group__/enterprise/P1/L1", METRIC_FACTS_1),
    (b"acme", CUSTOMER_FACT_1),
    (b"acme", METRIC_FACTS_2),
    (b"__group__/enterprise/P1/L1", METRIC_FACTS_1_AGAIN),
]
FACT_BUNDLE_1 = (
    b'{"v":1,"bundle":[["__group__/enterprise/P1/L1",'
    + METRIC_FACTS_1
    + b'],["acme",'
    + CUSTOMER_FACT_1
    + b'],["acme",'
    + METRIC_FACTS_2
    + b'],["__group__/enterprise/P1/L1",'
    + METRIC_FACTS_1_AGAIN
    + b"]]}"
)


def test_fact_bundle_format_1() -> None:
    assert fact_codec.encode_bundle(BUNDLED) == FACT_BUNDLE_1
    assert fact_codec.decode_bundle(FACT_BUNDLE_1) == BUNDLED
    # A single record is not a bundle.
    assert fact_codec.decode_bundle(METRIC_FACTS_2) is None
    assert fact_codec.decode_bundle(CUSTOMER_FACT_1) is None


def test_metric_fact_record_format_2() -> None:
    record = fact_codec.decode_fact_record(METRIC_FACTS_2)
    assert isinstance(record, tuple)
    key, (fact,) = record
    assert (fact.kind, fact.target, fact.ref) == (
        "breach",
        "first_response",
        "T-1/c1/first_response/breach",
    )
    assert fact_codec.encode_facts(key, [fact]) == METRIC_FACTS_2


# --- the outage broadcast (tickets.events, key __escalator_outage__): type escalator.outage ----

OUTAGE_BROADCAST_1 = (
    b'{"specversion":"1.0","id":"outage/fp-1/start","source":"escalator",'
    b'"type":"escalator.outage","time":"2026-11-18T11:06:40.000Z","data":{"service":"api",'
    b'"incident_id":"fp-1","active":true}}'
)


def test_outage_broadcast_format_1() -> None:
    change = alerts.decode_outage(OUTAGE_BROADCAST_1)
    assert change == OutageChanged("api", "fp-1", True, 1_795_000_000_000)
    assert alerts.encode_outage(change) == OUTAGE_BROADCAST_1


# --- the maintenance broadcast (monitoring.alerts, key __escalator_maintenance__) -------------

MAINTENANCE_STARTED_1 = (
    b'{"specversion":"1.0","id":"maintenance/mw-1/started/2026-11-18T11:06:40.000Z",'
    b'"source":"escalator","type":"escalator.maintenance","time":"2026-11-18T11:06:40.000Z",'
    b'"data":{"id":"mw-1","service":"api","started":true,"start":"2026-11-18T11:06:40.000Z",'
    b'"end":"2026-11-18T13:06:40.000Z","reason":"database upgrade"}}'
)
MAINTENANCE_OPEN_1 = (
    b'{"specversion":"1.0","id":"maintenance/mw-2/started/2026-11-18T11:06:40.000Z",'
    b'"source":"escalator","type":"escalator.maintenance","time":"2026-11-18T11:06:40.000Z",'
    b'"data":{"id":"mw-2","service":"api","started":true,"start":"2026-11-18T11:06:40.000Z",'
    b'"end":null,"reason":""}}'
)
MAINTENANCE_ENDED_1 = (
    b'{"specversion":"1.0","id":"maintenance/mw-1/ended/2026-11-18T11:16:40.000Z",'
    b'"source":"escalator","type":"escalator.maintenance","time":"2026-11-18T11:16:40.000Z",'
    b'"data":{"id":"mw-1","service":"api","started":false}}'
)
AT = 1_795_000_000_000  # 2026-11-18T11:06:40Z


def test_maintenance_broadcast_format_1() -> None:
    window = AdhocWindow("mw-1", "api", AT, AT + 7_200_000, "database upgrade")
    started = MaintenanceChange(window, True, AT)
    open_ended = MaintenanceChange(AdhocWindow("mw-2", "api", AT), True, AT)
    ended = MaintenanceChange(
        AdhocWindow("mw-1", "api", AT + 600_000, AT + 600_000), False, AT + 600_000
    )
    for change, raw in (
        (started, MAINTENANCE_STARTED_1),
        (open_ended, MAINTENANCE_OPEN_1),
        (ended, MAINTENANCE_ENDED_1),
    ):
        assert maintenance.decode_maintenance_change(raw) == change
        assert maintenance.encode_maintenance_change(change) == raw
    assert open_ended.window.end == OPEN_ENDED


# --- a partition's ad-hoc maintenance windows (table "incidents", key __maintenance__/<p>) ------

ADHOC_1 = (
    b'["maintenance/1",[["mw-1","api",1795000000000,1795007200000,"database upgrade"],'
    b'["mw-2","search",1795000600000,253402300799999,""]]]'
)


def test_adhoc_windows_format_1() -> None:
    windows = (
        AdhocWindow("mw-1", "api", AT, AT + 7_200_000, "database upgrade"),
        AdhocWindow("mw-2", "search", AT + 600_000),
    )
    assert maintenance.decode_adhoc_windows(ADHOC_1) == windows
    assert maintenance.encode_adhoc_windows(windows) == ADHOC_1


# --- the override broadcast (both input topics, key __escalator_override__) -------------------

OVERRIDE_BROADCAST_1 = (
    b'{"specversion":"1.0","id":"override/primary/ov-1/2026-11-18T10:56:40.000Z",'
    b'"source":"escalator","type":"escalator.override","time":"2026-11-18T10:56:40.000Z",'
    b'"data":{"lane":"incidents","schedule":"primary","id":"ov-1","user":"user:zoe",'
    b'"start":"2026-11-18T11:06:40.000Z","end":"2026-11-18T13:06:40.000Z"}}'
)


def test_override_broadcast_format_1() -> None:
    made = OverrideMade(Override("primary", "user:zoe", AT, AT + 7_200_000, "ov-1"), AT - 600_000)
    assert overrides.decode_override_broadcast(OVERRIDE_BROADCAST_1) == (made, "incidents")
    assert overrides.encode_override_broadcast(made, "incidents") == OVERRIDE_BROADCAST_1
    # The ticket lane's copy differs in its lane only.
    for_tickets = OVERRIDE_BROADCAST_1.replace(b'"lane":"incidents"', b'"lane":"tickets"')
    assert overrides.encode_override_broadcast(made, "tickets") == for_tickets
    assert overrides.decode_override_broadcast(for_tickets) == (made, "tickets")


# --- a partition's overrides (tables "incidents", "tickets", key __overrides__/<partition>) ---

OVERRIDES_1 = (
    b'["overrides/1",[["ov-1","primary","user:zoe",1795000000000,1795007200000],'
    b'["ev-9","support","team:db",1795000600000,1795003600000]]]'
)


def test_overrides_format_1() -> None:
    kept = (
        Override("primary", "user:zoe", AT, AT + 7_200_000, "ov-1"),
        Override("support", "team:db", AT + 600_000, AT + 3_600_000, "ev-9"),
    )
    assert overrides.decode_overrides(OVERRIDES_1) == kept
    assert overrides.encode_overrides(kept) == OVERRIDES_1
    assert state_codec.decode_expired(OVERRIDES_1) is None  # reindex tells them apart by key too


# --- a source's state (table "tickets", key __source__/<name>): format source/1 ----------------

SOURCE_1 = b'["source/1",2,1795000300000,17,"zendesk/acme",1795000000000,1795000005000,null]'
SOURCE_1_SILENT = b'["source/1",2,null,18,"zendesk/acme",1795000000000,1795000005000,1795000300000]'


def test_source_state_format_1() -> None:
    state, offset = source_codec.decode_source(SOURCE_1)
    assert (state, offset) == (
        SourceState("zendesk/acme", 1_795_000_000_000, 1_795_000_005_000, None),
        17,
    )
    assert source_codec.encode_source(state, 2, 1_795_000_300_000, 17) == SOURCE_1
    assert source_codec.source_entry(SOURCE_1) == (2, 1_795_000_300_000, state)
    silent, _ = source_codec.decode_source(SOURCE_1_SILENT)
    assert silent.silent_since == 1_795_000_300_000
    assert source_codec.encode_source(silent, 2, None, 18) == SOURCE_1_SILENT
    assert state_codec.decode_expired(SOURCE_1) is None  # reindex tells them apart by key too


# --- a partition's silent sources (table "tickets", key __silent__/<partition>): silent/1 -----

SILENT_1 = b'["silent/1",[["jira/x",1795000060000],["zendesk/acme",1795000300000]]]'


def test_silent_sources_format_1() -> None:
    silent = source_codec.decode_silent(SILENT_1)
    assert silent == {"jira/x": 1_795_000_060_000, "zendesk/acme": 1_795_000_300_000}
    assert source_codec.encode_silent(silent) == SILENT_1


# --- the silence broadcast (tickets.events, key __escalator_source__): type escalator.source ---

SILENCE_BROADCAST_1 = (
    b'{"specversion":"1.0","id":"silence/zendesk/acme/silent/2026-11-18T11:11:40.000Z",'
    b'"source":"escalator","type":"escalator.source","time":"2026-11-18T11:11:40.000Z",'
    b'"data":{"source":"zendesk/acme","silent":true,"since":"2026-11-18T11:11:40.000Z"}}'
)


def test_silence_broadcast_format_1() -> None:
    change = source_codec.decode_silence(SILENCE_BROADCAST_1)
    assert change == SourceSilence("zendesk/acme", True, 1_795_000_300_000, 1_795_000_300_000)
    assert source_codec.encode_silence(change) == SILENCE_BROADCAST_1


# --- a partition's customers (table "tickets", key __customers__/<partition>): customers/1 ---

CUSTOMERS_1 = b'["customers/1",[["c-2",null,true,1795000000000],["c-1",0.85,false,1795000300000]]]'


def test_customer_table_format_1() -> None:
    table = customer_codec.decode_customers(CUSTOMERS_1)
    assert table == CustomerTable(
        {
            "c-2": CustomerAttributes(None, True, 1_795_000_000_000),
            "c-1": CustomerAttributes(0.85, False, 1_795_000_300_000),
        }
    )
    # Written again, it is format 2: no offset and no floor yet.
    assert customer_codec.encode_customers(table) == (
        b'["customers/2",null,null,null,[["c-2",null,true,1795000000000],'
        b'["c-1",0.85,false,1795000300000]]]'
    )


# --- a partition's customers, customers/2: the last offset applied and the eviction floor ----

CUSTOMERS_2 = (
    b'["customers/2",41,1794000000000,"c-0",[["c-2",null,true,1795000000000],'
    b'["c-1",0.85,false,1795000300000]]]'
)


def test_customer_table_format_2() -> None:
    table = customer_codec.decode_customers(CUSTOMERS_2)
    assert table.offset == 41
    assert table.floor == (1_794_000_000_000, "c-0")
    assert table.entries["c-1"] == CustomerAttributes(0.85, False, 1_795_000_300_000)
    assert customer_codec.encode_customers(table) == CUSTOMERS_2


# --- the customer broadcast (tickets.events, key __escalator_customer__): escalator.customer --

CUSTOMER_BROADCAST_1 = (
    b'{"specversion":"1.0","id":"customer/crm-41","source":"escalator",'
    b'"type":"escalator.customer","time":"2026-11-18T11:11:40.000Z",'
    b'"data":{"event_id":"crm-41","customer_id":"c-1","churn_risk":0.85,"vip":null}}'
)


def test_customer_broadcast_format_1() -> None:
    update = customer_codec.decode_customer_update(CUSTOMER_BROADCAST_1)
    assert update == CustomerUpdated(
        "crm-41", "c-1", 1_795_000_300_000, 1_795_000_300_000, 0.85, None
    )
    assert customer_codec.encode_customer_update(update) == CUSTOMER_BROADCAST_1


# --- dead letters (escalator.deadletter, read back by `deadletter replay`): format 1 ----------

DEAD_LETTER_1 = (
    b'{"reason":"invalid_json","message":"not JSON","source_topic":"tickets.events",'
    b'"source_partition":1,"source_offset":42,"received_at":"2026-11-18T11:06:40.000Z",'
    b'"original":"eyJiYWQi","original_key":"VC05"}'
)


def test_dead_letter_format_1() -> None:
    doc, original = original_bytes(DEAD_LETTER_1)
    assert (original, original_key(doc)) == (b'{"bad"', b"T-9")
    assert (doc["reason"], doc["source_topic"], doc["source_offset"]) == (
        "invalid_json",
        "tickets.events",
        42,
    )
    origin = Origin(doc["source_topic"], doc["source_partition"], doc["source_offset"], b"T-9")
    rewritten = dead_letter(original, origin, doc["reason"], doc["message"], 1_795_000_000_000)
    assert rewritten == DEAD_LETTER_1


# Format 2: what the notifier writes for reason delivery_failed (format 1 plus `delivery`).
DEAD_LETTER_2 = (
    b'{"v":2,"reason":"delivery_failed","message":"webhook:ops refused: last answer 410",'
    b'"source_topic":"notifications","source_partition":2,"source_offset":7,'
    b'"received_at":"2026-11-18T11:06:40.000Z","original":"eyJpZCI6Im4xIn0=",'
    b'"original_key":"dGVhbTpvcHM=","delivery":{"destination":"webhook:ops",'
    b'"channel_type":"webhook","attempts":1,"last_status":410,"last_body":"gone"}}'
)


def test_dead_letter_format_2() -> None:
    doc, original = original_bytes(DEAD_LETTER_2)
    assert (original, original_key(doc)) == (b'{"id":"n1"}', b"team:ops")
    assert doc["delivery"]["last_status"] == 410
    origin = Origin("notifications", 2, 7, b"team:ops")
    delivery = Delivery("webhook:ops", "webhook", 1, 410, "gone")
    written = delivery_dead_letter(original, origin, doc["message"], 1_795_000_000_000, delivery)
    assert written == DEAD_LETTER_2


# --- the notifier's table `delivered`: formats delivered/1 and slack-page/1 -------------------

DELIVERED_1 = b'["delivered/1",5,1795000000000]'
SLACK_PAGE_1 = b'["slack-page/1",5,1795000000000,"C0123","1795000000.000100","*Paged*: x"]'


def test_notifier_table_formats() -> None:
    assert notify_codec.decode_stored(DELIVERED_1) == notify_codec.Stored(5, 1795000000000)
    assert notify_codec.encode_delivered(5, 1795000000000) == DELIVERED_1
    page = notify_codec.decode_stored(SLACK_PAGE_1)
    assert (page.channel_id, page.ts, page.text) == ("C0123", "1795000000.000100", "*Paged*: x")
    assert (
        notify_codec.encode_slack_page(5, 1795000000000, "C0123", "1795000000.000100", "*Paged*: x")
        == SLACK_PAGE_1
    )


# --- the applied policy (escalator.policy, compacted: kept for good): format 1 -----------------

POLICY_YAML = (
    'version: "golden-1"\n'
    "targets: [{name: all, calendar: 24x7, first_response: 1h}]\n"
    'tiers: [{name: L1, owner: "team:a"}]\n'
)
POLICY_1 = (
    b'{"version":"golden-1","source":"golden.yaml",'
    b'"applied_at":"2026-11-25T10:00:00.000000+00:00","yaml":' + orjson.dumps(POLICY_YAML) + b"}"
)


def test_policy_record_format_1() -> None:
    assert policy_topic.read_record(POLICY_1).version == "golden-1"
    _, written = policy_topic.policy_record(POLICY_YAML, "golden.yaml")
    assert list(orjson.loads(written)) == list(orjson.loads(POLICY_1))


# --- the rules themselves ---------------------------------------------------------------------


def _with(raw: bytes, **fields: Any) -> bytes:
    return orjson.dumps({**orjson.loads(raw), **fields})


# --- an expired ticket's marker (table "tickets"): format expired/1 ---------------------------

EXPIRED_1 = b'["expired/1",3,1796810520000,"T-1","solved",1795600920000,1796205720000]'


def test_expired_ticket_format_1() -> None:
    expired = ExpiredTicket("T-1", "solved", 1795600920000, 1796205720000)
    assert state_codec.decode_expired(EXPIRED_1) == expired
    assert state_codec.encode_expired(expired, 3, 1796810520000) == EXPIRED_1
    assert state_codec.index_entry(EXPIRED_1) == (3, 1796810520000)
    assert state_codec.decode_expired(TICKET_2) is None  # a ticket's state is no marker


@pytest.mark.parametrize(
    ("decode", "raw"),
    [
        (state_codec.decode_expired, EXPIRED_1.replace(b"expired/1", b"expired/2")),
        (source_codec.decode_source, SOURCE_1.replace(b"source/1", b"source/2")),
        (source_codec.decode_silent, SILENT_1.replace(b"silent/1", b"silent/2")),
        (
            source_codec.decode_silence,
            SILENCE_BROADCAST_1.replace(b"escalator.source", b"escalator.source2"),
        ),
        (state_codec.decode_outages, b"[3" + OUTAGES_2[2:]),
        (state_codec.decode_state, _with(TICKET_1, v=3)),
        (state_codec.decode_state, b"[3" + TICKET_2[2:]),
        (state_codec.decode_state, b"[7" + TICKET_6[2:]),
        (state_codec.decode_state, b"[6" + TICKET_5[2:]),
        (state_codec.decode_incident, _with(INCIDENT_2, v=3)),
        (state_codec.decode_incident, _with(INCIDENT_1, suppressed_until=None)),
        (
            maintenance.decode_maintenance_change,
            MAINTENANCE_ENDED_1.replace(b"escalator.maintenance", b"escalator.maintenance2"),
        ),
        (maintenance.decode_adhoc_windows, ADHOC_1.replace(b"maintenance/1", b"maintenance/2")),
        (
            overrides.decode_override_broadcast,
            OVERRIDE_BROADCAST_1.replace(b"escalator.override", b"escalator.override2"),
        ),
        (overrides.decode_overrides, OVERRIDES_1.replace(b"overrides/1", b"overrides/2")),
        (customer_codec.decode_customers, CUSTOMERS_2.replace(b"customers/2", b"customers/3")),
        (
            customer_codec.decode_customer_update,
            CUSTOMER_BROADCAST_1.replace(b"escalator.customer", b"escalator.customer2"),
        ),
        (state_codec.decode_customer, _with(CUSTOMER_1, v=2)),
        (fact_codec.decode_windows, _with(WINDOWS_1, v=4)),
        (state_codec.decode_fact, _with(CUSTOMER_FACT_1, v=2)),
        (fact_codec.decode_fact_record, _with(CUSTOMER_FACT_1, v=2)),
        (fact_codec.decode_fact_record, _with(METRIC_FACTS_1, v=3)),
        (fact_codec.decode_bundle, _with(FACT_BUNDLE_1, v=2)),
        (original_bytes, _with(DEAD_LETTER_1, v=3)),
        (notify_codec.decode_stored, DELIVERED_1.replace(b"delivered/1", b"delivered/2")),
        (notify_codec.decode_stored, SLACK_PAGE_1.replace(b"slack-page/1", b"slack-page/2")),
        (policy_topic.read_record, _with(POLICY_1, v=2)),
    ],
)
def test_a_newer_version_is_refused_not_misread(decode: Callable[[bytes], Any], raw: bytes) -> None:
    with pytest.raises((ValueError, InvalidEvent), match="format"):
        decode(raw)


COVERED = {
    "encode_state",
    "encode_expired",
    "encode_incident",
    "encode_outages",
    "encode_customer",
    "encode_fact",
    "encode_windows",
    "encode_facts",
    "encode_bundle",
    "encode_outage",
    "encode_source",
    "encode_silent",
    "encode_silence",
    "encode_maintenance_change",
    "encode_adhoc_windows",
    "encode_override_broadcast",
    "encode_overrides",
    "encode_delivered",
    "encode_slack_page",
}


def test_every_encoder_has_its_format_here() -> None:
    """A new encoder in the codec modules is a new stored format: add its literal above."""
    encoders = {
        name
        for module in (
            state_codec,
            fact_codec,
            alerts,
            source_codec,
            maintenance,
            overrides,
            notify_codec,
        )
        for name in vars(module)
        if name.startswith("encode_") and callable(getattr(module, name))
    }
    assert encoders == COVERED
