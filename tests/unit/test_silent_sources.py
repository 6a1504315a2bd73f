"""Silent sources (docs/time.md, "Silent sources"): heartbeats, the silent and recovered
decisions, and holding the live deadlines of a silent source's tickets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from escalator.adapters.deadletter import Origin
from escalator.domain import sources
from escalator.domain.effects import SourceRecovered, SourceSilence, SourceSilent
from escalator.domain.policy import Lateness, Policy
from escalator.domain.sources import Heartbeat, SourceState
from escalator.service import simulate
from escalator.service.processor import ESCALATIONS, SILENCE, Emission
from escalator.service.tickets import SOURCE_KEY, TicketProcessor
from tests.helpers import comment, created, example_policy, ms

MIN = 60_000
SOURCE = "tests"  # the CloudEvents source of tests.helpers' ticket events


def policy(**lateness: Any) -> Policy:
    args = {"source_timeout_ms": 5 * MIN, "hold_when_silent": frozenset({"P1"}), **lateness}
    return replace(example_policy(), lateness=Lateness(**args))


def beat(watermark: str, arrival: str | None = None, source: str = SOURCE) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hb-{watermark}",
        "source": "connector",
        "type": "source.heartbeat",
        "time": arrival or watermark,
        "data": {"source": source, "watermark": watermark},
    }


# --- validation: a bad heartbeat is dead-lettered naming its field ---------------------------


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        ({"watermark": "2026-11-24T10:00:00Z"}, "missing_field", "data.source is required"),
        (
            {"source": "", "watermark": "2026-11-24T10:00:00Z"},
            "invalid_field",
            "data.source must be a non-empty string",
        ),
        (
            {"source": 7, "watermark": "2026-11-24T10:00:00Z"},
            "invalid_field",
            "data.source must be a non-empty string",
        ),
        (
            {"source": "__x", "watermark": "2026-11-24T10:00:00Z"},
            "invalid_field",
            "data.source must not start with '__' (reserved)",
        ),
        ({"source": "zd"}, "missing_field", "data.watermark is required"),
        ({"source": "zd", "watermark": "20261124T100000Z"}, "invalid_time", "data.watermark"),
        ({"source": "zd", "watermark": 1795000000000}, "invalid_time", "data.watermark"),
        (
            {"source": "zd", "watermark": "2026-11-24T10:06:00Z"},
            "time_in_future",
            "data.watermark is 360s after its arrival",
        ),
    ],
)
def test_a_bad_heartbeat_is_dead_lettered_naming_the_field(
    data: dict[str, Any], reason: str, message: str
) -> None:
    processor = TicketProcessor(policy(), {})
    doc = {**beat("2026-11-24T10:00:00Z"), "data": data}
    (letter,) = processor.on_record(
        orjson.dumps(doc), ms("2026-11-24T10:00:00Z"), 3, Origin("tickets.events", 3, 1)
    )
    dead = orjson.loads(letter.value)
    assert dead["reason"] == reason
    assert message in dead["message"]
    assert processor.store == {}


def test_a_heartbeat_is_kept_under_its_source_and_indexed_at_watermark_plus_timeout() -> None:
    processor = TicketProcessor(policy(), {})
    out = processor.on_record(
        orjson.dumps(beat("2026-11-24T09:59:30Z", "2026-11-24T10:00:00Z")),
        ms("2026-11-24T10:00:00Z"),
        3,
        Origin("tickets.events", 3, 1),
    )
    assert out == []
    assert f"{SOURCE_KEY}{SOURCE}" in processor.store
    assert processor.next_due(3) == ms("2026-11-24T10:04:30Z")
    assert processor.source_watermarks() == {SOURCE: ms("2026-11-24T09:59:30Z")}


# --- the decisions (pure) ---------------------------------------------------------------------


def heartbeat(watermark: str, arrival: str) -> Heartbeat:
    return Heartbeat("hb", "zd", min(ms(t(watermark)), ms(t(arrival))), ms(t(arrival)))


def test_silent_once_the_clock_passes_watermark_plus_timeout_and_recovered_by_a_fresh_one() -> None:
    p = policy()
    state = sources.heartbeat(None, heartbeat("09:59:30", "10:00:00"), p).state
    assert sources.next_due(state, p) == ms("2026-11-24T10:04:30Z")
    assert sources.advance(state, p, ms("2026-11-24T10:04:30Z")).effects == []  # not passed

    went = sources.advance(state, p, ms("2026-11-24T10:04:30Z") + 1)
    at = ms("2026-11-24T10:04:30Z")
    assert went.effects == [
        SourceSilent(
            "source/zd/silent/2026-11-24T09:59:30.000Z", at, "zd", ms("2026-11-24T09:59:30Z"), 300
        ),
        SourceSilence("zd", True, at, at),
    ]
    assert went.state.silent_since == at
    assert sources.next_due(went.state, p) is None  # silent: nothing more to fire

    # Alive but stuck upstream: a heartbeat with a watermark still older than the timeout.
    stuck = sources.heartbeat(went.state, heartbeat("10:00:00", "10:06:00"), p)
    assert stuck.effects == []
    assert stuck.state.silent_since == at

    back = sources.heartbeat(stuck.state, heartbeat("10:05:50", "10:06:30"), p)
    assert back.effects == [
        SourceRecovered(
            "source/zd/recovered/2026-11-24T10:00:00.000Z",
            ms("2026-11-24T10:06:30Z"),
            "zd",
            ms("2026-11-24T10:05:50Z"),
            at,
            120,
        ),
        SourceSilence("zd", False, at, ms("2026-11-24T10:06:30Z")),
    ]
    assert back.state == SourceState(
        "zd", ms("2026-11-24T10:05:50Z"), ms("2026-11-24T10:06:30Z"), None
    )


def test_a_heartbeat_fires_the_silence_that_came_due_before_it_and_never_moves_back() -> None:
    p = policy()
    state = sources.heartbeat(None, heartbeat("10:00:00", "10:00:00"), p).state
    # Arriving at 10:20 with a watermark of 10:19: silent from 10:05 first, then recovered.
    decision = sources.heartbeat(state, heartbeat("10:19:00", "10:20:00"), p)
    assert [type(e).__name__ for e in decision.effects] == [
        "SourceSilent",
        "SourceSilence",
        "SourceRecovered",
        "SourceSilence",
    ]
    assert decision.effects[0].time == ms("2026-11-24T10:05:00Z")
    older = sources.heartbeat(decision.state, heartbeat("10:10:00", "10:21:00"), p)
    assert older.state.watermark == ms("2026-11-24T10:19:00Z")
    assert older.effects == []


def test_hold_until_lists_severities_and_ends_after_max_hold() -> None:
    p = policy(max_hold_ms=30 * MIN)
    since = ms("2026-11-24T10:05:00Z")
    assert sources.hold_until(p, "P1", since) == since + 30 * MIN
    assert sources.hold_until(p, "P2", since) is None  # not listed
    assert sources.hold_until(p, "P1", None) is None  # live
    assert sources.hold_until(policy(hold_when_silent=frozenset()), "P1", since) is None


# --- the hold, through the processor (the worker's path, broadcasts looped back) --------------


class Lane:
    """A ticket processor on partition 3 whose silence broadcasts reach it again, in order."""

    def __init__(self, p: Policy) -> None:
        self.processor = TicketProcessor(p, {})
        self.offset = 0
        self.out: list[dict[str, Any]] = []

    def _collect(self, emissions: list[Emission]) -> None:
        for emission in emissions:
            if emission.role == SILENCE:
                self._collect(self.processor.on_silence(3, emission.value))
            elif emission.role == ESCALATIONS:
                self.out.append(orjson.loads(emission.value))

    def record(self, doc: dict[str, Any], arrival: str) -> list[dict[str, Any]]:
        self.offset += 1
        origin = Origin("tickets.events", 3, self.offset)
        return self._run(
            lambda: self.processor.on_record(orjson.dumps(doc), ms(arrival), 3, origin)
        )

    def tick(self, now: str) -> list[dict[str, Any]]:
        return self._run(lambda: self.processor.on_tick(3, ms(now)))

    def _run(self, step: Any) -> list[dict[str, Any]]:
        start = len(self.out)
        self._collect(step())
        return self.out[start:]


def kinds(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["type"], d["time"]) for d in docs]


def t(clock: str) -> str:
    return f"2026-11-24T{clock}Z"


def silent_lane(**lateness: Any) -> Lane:
    """Source `tests` heartbeats at 10:00 and 10:02, then stops: silent from 10:07. T-1 (P1,
    enterprise: first response warning 10:11:15, breach 10:15) and T-2 (P2: warning 10:45,
    breach 11:00) are its tickets, created at 10:00."""
    lane = Lane(policy(**lateness))
    lane.record(beat(t("10:00:00")), t("10:00:00"))
    lane.record(created("T-1", t("10:00:00"), severity="P1"), t("10:00:00"))
    lane.record(created("T-2", t("10:00:00"), severity="P2"), t("10:00:00"))
    lane.record(beat(t("10:02:00")), t("10:02:00"))
    silent = lane.tick(t("10:07:01"))
    assert kinds(silent) == [("source.silent", "2026-11-24T10:07:00.000Z")]
    return lane


def test_a_held_p1_deadline_fires_when_the_source_recovers_dated_at_its_own_instant() -> None:
    lane = silent_lane()
    assert lane.tick(t("10:12:00")) == []  # the 10:11:15 warning waits
    assert lane.tick(t("10:16:00")) == []  # so does the 10:15 breach
    recovered = lane.record(beat(t("10:20:00")), t("10:20:00"))
    assert kinds(recovered)[:4] == [
        ("source.recovered", "2026-11-24T10:20:00.000Z"),
        ("sla.warning", "2026-11-24T10:11:15.000Z"),
        ("sla.breached", "2026-11-24T10:15:00.000Z"),
        ("escalation.raised", "2026-11-24T10:15:00.000Z"),
    ]
    assert recovered[2]["id"] == "T-1/c1/first_response/breach"


def test_a_backlog_reply_arriving_while_silent_lands_before_the_held_deadline() -> None:
    lane = silent_lane()
    assert lane.tick(t("10:16:00")) == []  # the 10:15 breach waits
    # The connector comes back: its backlog (a reply dated 10:10) arrives while the source is
    # still marked silent. It is applied first: first response was met, nothing breaches.
    reply = comment("T-1", t("10:10:00"))
    assert lane.record(reply, t("10:20:00")) == []
    later = lane.record(beat(t("10:20:00")), t("10:20:00.100"))
    later += lane.tick(t("10:21:00"))
    assert ("sla.breached", "2026-11-24T10:15:00.000Z") not in kinds(later)
    assert [d for d in later if d["type"] == "escalation.raised"] == []


def test_a_long_silence_released_brings_in_one_tier_not_the_ladder() -> None:
    # max_hold 2 h; the source recovers at 11:00. The held first-response breach (10:15)
    # escalates L1 → L2 at the recovery; L2 idles from the recovery, not from 10:15.
    lane = silent_lane(max_hold_ms=2 * 3600_000)
    assert {d["subject"] for d in lane.tick(t("10:50:00"))} == {"T-2"}  # P2 is not held
    out = lane.record(beat(t("11:00:00")), t("11:00:00"))
    moves = [
        (d["data"]["from_tier"], d["data"]["to_tier"])
        for d in out
        if d["type"] == "escalation.raised" and d["subject"] == "T-1"
    ]
    assert moves == [("L1", "L2")]


def test_a_severity_not_listed_is_not_held() -> None:
    lane = silent_lane(max_hold_ms=4 * 3600_000)
    fired = lane.tick(t("10:46:00"))
    assert ("sla.warning", "2026-11-24T10:45:00.000Z") in kinds(fired)
    assert {d["subject"] for d in fired} == {"T-2"}  # T-1 (P1) still waits


def test_max_hold_ends_the_hold() -> None:
    lane = silent_lane(max_hold_ms=20 * MIN)  # silent from 10:07: held until 10:27
    assert lane.tick(t("10:27:00")) == []  # not passed yet
    fired = lane.tick(t("10:27:01"))
    assert kinds(fired)[:3] == [
        ("sla.warning", "2026-11-24T10:11:15.000Z"),
        ("sla.breached", "2026-11-24T10:15:00.000Z"),
        ("escalation.raised", "2026-11-24T10:15:00.000Z"),
    ]
    # The recovery later finds nothing held: nothing fires twice.
    assert kinds(lane.record(beat(t("10:40:00")), t("10:40:00"))) == [
        ("source.recovered", "2026-11-24T10:40:00.000Z")
    ]


def test_a_restarted_worker_holds_again_from_the_stored_silence() -> None:
    lane = silent_lane()
    assert lane.tick(t("10:12:00")) == []
    # A new worker takes the partition over: its index and silences come from the table.
    again = Lane(lane.processor.policy)
    for key, raw in lane.processor.store.items():
        again.processor.store[key] = raw
        again.processor.reindex(key, raw, {3})
    again.offset = lane.offset
    assert again.tick(t("10:16:00")) == []
    assert kinds(again.record(beat(t("10:20:00")), t("10:20:00")))[:3] == [
        ("source.recovered", "2026-11-24T10:20:00.000Z"),
        ("sla.warning", "2026-11-24T10:11:15.000Z"),
        ("sla.breached", "2026-11-24T10:15:00.000Z"),
    ]


# --- simulate: the same decisions, the same ids ----------------------------------------------


def test_simulate_derives_the_silence_and_holds_as_the_worker_does() -> None:
    lines = [
        orjson.dumps(doc)
        for doc in (
            beat(t("10:00:00")),
            created("T-1", t("10:00:00"), severity="P1"),
            beat(t("10:02:00")),
            beat(t("10:20:00")),
        )
    ]
    result = simulate.run(lines, policy(), until=ms(t("10:20:00")))
    docs = [orjson.loads(e.value) for e in result.emissions if e.role == ESCALATIONS]
    assert kinds(docs)[:5] == [
        ("source.silent", "2026-11-24T10:07:00.000Z"),
        ("source.recovered", "2026-11-24T10:20:00.000Z"),
        ("sla.warning", "2026-11-24T10:11:15.000Z"),
        ("sla.breached", "2026-11-24T10:15:00.000Z"),
        ("escalation.raised", "2026-11-24T10:15:00.000Z"),
    ]
    assert docs[0]["id"] == f"source/{SOURCE}/silent/2026-11-24T10:02:00.000Z"
    assert docs[1]["id"] == f"source/{SOURCE}/recovered/2026-11-24T10:02:00.000Z"
    assert docs[0]["data"] == {
        "source": SOURCE,
        "watermark": "2026-11-24T10:02:00.000Z",
        "timeout_seconds": 300,
        "policy_version": docs[0]["data"]["policy_version"],
    }
    assert result.dead_letters == []
    # Without a hold the breach fires live, during the silence.
    live = simulate.run(lines, policy(hold_when_silent=frozenset()), until=ms(t("10:20:00")))
    assert [orjson.loads(e.value)["type"] for e in live.emissions if e.role == ESCALATIONS][:3] == [
        "source.silent",
        "sla.warning",
        "sla.breached",
    ]


def test_source_outputs_match_the_outbound_schema() -> None:
    from tests.unit.test_schemas import OUTBOUND

    lines = [orjson.dumps(beat(t("10:00:00"))), orjson.dumps(beat(t("10:20:00")))]
    result = simulate.run(lines, policy(), until=ms(t("10:20:00")))
    docs = [orjson.loads(e.value) for e in result.emissions]
    assert [d["type"] for d in docs] == ["source.silent", "source.recovered"]
    for doc in docs:
        OUTBOUND.validate(doc)
