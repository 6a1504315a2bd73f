"""Pages go to whoever is on call (issue 16 §3): `schedule:<name>` owners, backups and on-call
levels resolve at the page's instant, overrides first; nobody on call goes up the ladder at
once with an `oncall.gap` for each schedule found empty."""

from __future__ import annotations

from typing import Any

import orjson

from escalator.config.policy_file import parse_policy
from escalator.domain import ladder
from escalator.domain.schedules import Override
from escalator.domain.state import TicketState
from escalator.service import simulate
from tests.helpers import alert, created, jsonl, ms
from tests.unit.test_schemas import OUTBOUND

# day: alice then bob, daily at 09:00 UTC from Monday 2026-11-23; night: nobody before 2027
# (a rotation that has not started: a gap). L2's owner is the day schedule, its backup the
# night one; L3 is a plain team.
POLICY_TEXT = """
version: "oncall-1"
schedules:
  day:
    timezone: UTC
    layers:
      - {participants: ["user:alice", "user:bob"], shift: 1d, handoff: "09:00", start: 2026-11-23}
  night:
    timezone: UTC
    layers:
      - {participants: ["user:nora"], shift: 1d, handoff: "09:00", start: 2027-01-01}
targets:
  - {name: all, calendar: 24x7, first_response: 15m, next_update: 30m, resolution: 4h}
tiers:
  - {name: L1, owner: "team:frontline", channels: ["slack:#l1"]}
  - {name: L2, owner: "schedule:day", backup: "schedule:night", channels: ["slack:#l2"]}
  - {name: L3, owner: "schedule:night", channels: ["pagerduty:l3"]}
  - {name: L4, owner: "team:directors", channels: ["email:directors@example.com"]}
alerts:
  oncall:
    repeat: 0
    levels:
      - {timeout: 5m, notify: ["schedule:night"]}
      - {timeout: 5m, notify: ["schedule:day", "slack:#incidents"]}
      - {timeout: 5m, notify: []}
      - {timeout: 5m, notify: ["pagerduty:directors"]}
"""
POLICY = parse_policy(POLICY_TEXT)
T0 = "2026-11-24T10:00:00Z"  # Tuesday: bob's day (alice had Monday)


def run(*docs: dict[str, Any], until: str) -> list[dict]:
    sim = simulate.run(jsonl(*docs), POLICY, ms(until))
    return [orjson.loads(e.value) for e in sim.emissions]


def of_type(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["type"] == kind]


def test_a_ticket_escalation_pages_whoever_is_on_call_in_the_owners_schedule() -> None:
    docs = run(created("T-1", T0), until="2026-11-24T10:16:00Z")
    pages = of_type(docs, "notification.requested")
    escalation = [p["data"] for p in pages if "/escalation/" in p["id"]]
    assert [(p["channel"], p["recipient"]) for p in escalation] == [("slack:#l2", "user:bob")]
    assert not of_type(docs, "oncall.gap")


def test_a_tier_with_nobody_on_call_pages_the_tier_above_at_once() -> None:
    """L3's owner is the night schedule (nobody yet): the first-response breach at L2 climbing
    to L3 finds nobody there and pages L4 at once, with an oncall.gap naming the schedule."""
    docs = run(
        created("T-1", T0, tier="L2"),
        until="2026-11-24T10:16:00Z",
    )
    (gap,) = of_type(docs, "oncall.gap")
    assert (gap["data"]["schedule"], gap["data"]["tier"], gap["time"]) == (
        "night",
        "L3",
        "2026-11-24T10:15:00.000Z",
    )
    assert gap["id"] == "T-1/c1/first_response/escalation/gap/L3/night"
    escalation = [
        p["data"] for p in of_type(docs, "notification.requested") if "/escalation/" in p["id"]
    ]
    assert [(p["channel"], p["recipient"]) for p in escalation] == [
        ("email:directors@example.com", "team:directors")
    ]


def test_a_gap_at_level_1_pages_level_2_at_once() -> None:
    docs = run(alert("firing", "fp1", T0), until="2026-11-24T10:01:00Z")
    incident = "fp1/2026-11-24T10:00:00.000Z"
    (gap,) = of_type(docs, "oncall.gap")
    assert gap["data"] == {
        "schedule": "night",
        "cause_id": f"incident/{incident}/level1.0",
        "ticket_id": None,
        "incident_id": incident,
        "tier": None,
        "level": 1,
        "policy_version": "oncall-1",
    }
    (raised,) = of_type(docs, "escalation.raised")
    assert (raised["data"]["trigger"], raised["data"]["to_level"], raised["time"]) == (
        "oncall_gap",
        2,
        "2026-11-24T10:00:00.000Z",
    )
    pages = [
        (p["data"]["channel"], p["data"]["recipient"])
        for p in of_type(docs, "notification.requested")
    ]
    assert pages == [("slack:#incidents", "user:bob")]  # level 2: day schedule on its channel


def test_an_empty_level_is_a_gap_too() -> None:
    """Level 2 lets its 5 minutes pass; level 3 notifies nobody: level 4 at once."""
    docs = run(alert("firing", "fp1", T0), until="2026-11-24T10:06:00Z")
    gaps = [(g["data"]["schedule"], g["data"]["level"]) for g in of_type(docs, "oncall.gap")]
    assert gaps == [("night", 1), (None, 3)]
    raised = [
        (r["data"]["trigger"], r["data"]["to_level"], r["time"][11:19])
        for r in of_type(docs, "escalation.raised")
    ]
    assert raised == [
        ("oncall_gap", 2, "10:00:00"),
        ("ack_timeout", 3, "10:05:00"),
        ("oncall_gap", 4, "10:05:00"),
    ]


def test_an_override_wins_over_the_rotation_while_it_lasts() -> None:
    """As a partition that knows the override decides (the broadcast is tested with it)."""
    state = TicketState("T-1", "c-1", "enterprise", "P1", None, "", "L2", ms(T0))
    cover = Override("day", "user:carol", ms("2026-11-24T09:30:00Z"), ms("2026-11-24T12:00:00Z"))

    def paged(at: str) -> list[str]:
        sent = ladder.notify(POLICY, state, "L2", "cause", ms(at), "s", "b", overrides=(cover,))
        return [n.recipient for n in sent if n.type == "notification.requested"]

    assert paged("2026-11-24T10:00:00Z") == ["user:carol"]
    assert paged("2026-11-24T12:00:00Z") == ["user:bob"]  # ended: the rotation is back


def test_the_backup_stands_in_for_an_owner_schedule_with_nobody() -> None:
    policy = parse_policy(
        POLICY_TEXT.replace(
            '{name: L3, owner: "schedule:night",',
            '{name: L3, owner: "schedule:night", backup: "user:l3-lead",',
        )
    )
    state = TicketState("T-1", "c-1", "enterprise", "P1", None, "", "L2", ms(T0))
    sent = ladder.notify(policy, state, "L3", "cause", ms(T0), "s", "b")
    assert [(n.type, getattr(n, "recipient", None)) for n in sent] == [
        ("oncall.gap", None),
        ("notification.requested", "user:l3-lead"),
    ]


def test_every_output_of_gaps_and_schedule_pages_matches_the_outbound_schema() -> None:
    docs = run(
        alert("firing", "fp1", T0),
        created("T-1", T0, tier="L2"),
        until="2026-11-24T10:30:00Z",
    )
    assert {"oncall.gap", "notification.requested", "escalation.raised"} <= {
        d["type"] for d in docs
    }
    for doc in docs:
        OUTBOUND.validate(doc)


EMPTY_LADDER = POLICY_TEXT.replace(
    """    repeat: 0
    levels:
      - {timeout: 5m, notify: ["schedule:night"]}
      - {timeout: 5m, notify: ["schedule:day", "slack:#incidents"]}
      - {timeout: 5m, notify: []}
      - {timeout: 5m, notify: ["pagerduty:directors"]}""",
    "    repeat: 10\n    levels:\n"
    + '      - {timeout: 5m, notify: ["schedule:night", "schedule:night"]}\n' * 60,
)


def test_a_ladder_with_nobody_anywhere_climbs_one_loop_then_waits_for_its_timeout() -> None:
    """Found in review: the climb recursed (60 empty levels overflowed the stack) and used
    every repeat at the same instant. Now one loop at once, then the last level's timeout."""
    policy = parse_policy(EMPTY_LADDER)
    sim = simulate.run(jsonl(alert("firing", "fp1", T0)), policy, ms("2026-11-24T10:06:00Z"))
    docs = [orjson.loads(e.value) for e in sim.emissions]
    gaps = of_type(docs, "oncall.gap")
    at_once = [g for g in gaps if g["time"] == "2026-11-24T10:00:00.000Z"]
    assert len(at_once) == 60  # one per level (the schedule named twice counts once)
    assert len({g["id"] for g in gaps}) == len(gaps)
    later = [g for g in gaps if g not in at_once]
    # The second loop began after level 60's 5 minutes, and climbed once more.
    assert {g["time"] for g in later} == {"2026-11-24T10:05:00.000Z"}
    assert [g["data"]["cause_id"].rsplit("/", 1)[1] for g in later] == [
        f"level{n}.1" for n in range(1, 61)
    ]
    assert sim.dead_letters == []


def test_owner_and_backup_in_one_empty_schedule_make_one_gap() -> None:
    policy = parse_policy(
        POLICY_TEXT.replace(
            '{name: L3, owner: "schedule:night",',
            '{name: L3, owner: "schedule:night", backup: "schedule:night",',
        )
    )
    state = TicketState("T-1", "c-1", "enterprise", "P1", None, "", "L2", ms(T0))
    sent = ladder.notify(policy, state, "L3", "cause", ms(T0), "s", "b", with_backup=True)
    assert [n.id for n in sent if n.type == "oncall.gap"] == ["cause/gap/L3/night"]
