"""The sentiment trigger (issue 20): the pure rule with a stub scorer and hand-set scores, the
policy keys and their errors, and VADER through `simulate` (the worker's processor)."""

from __future__ import annotations

import orjson
import pytest

from escalator.adapters.sentiment import SCORED_CHARS, vader_scorer
from escalator.config.policy_file import parse_policy
from escalator.domain import engine
from escalator.domain.sentiment import SCORES_KEPT, Sentiment, remember, sustained_below
from escalator.errors import ConfigError
from escalator.service import simulate
from tests.helpers import EXAMPLE_POLICY, comment, created, event, jsonl, ms, status
from tests.unit.test_schemas import OUTBOUND

T0 = "2026-11-24T10:00:00Z"
TRIGGERS = "triggers:\n"


def policy_with(sentiment: str):
    text = EXAMPLE_POLICY.read_text()
    assert TRIGGERS in text
    return parse_policy(text.replace(TRIGGERS, f"{TRIGGERS}  sentiment: {sentiment}\n", 1))


POLICY = policy_with("{below: -0.6, sustained: 2, notify: L4}")
# Hand-set scores: what each text "means" to the stub scorer.
SCORES = {
    "printer jam": Sentiment(0.0),
    "angry": Sentiment(-0.81, ("angry",)),
    "furious": Sentiment(-0.9, ("furious", "useless")),
    "meh": Sentiment(-0.59, ("meh",)),
    "thanks": Sentiment(0.6),
}


def stub(text: str) -> Sentiment:
    return SCORES[text]


def play(*docs, policy=POLICY):
    state = None
    effects = []
    for doc in docs:
        decision = engine.apply(state, event(doc), policy, scorer=stub)
        state = decision.state
        effects += decision.effects
    return state, [e for e in effects if type(e).__name__ == "EscalationRaised"]


def customer(ticket: str, minute: int, body: str, public: bool = True):
    return comment(
        ticket, f"2026-11-24T10:{minute:02d}:00Z", role="customer", body=body, public=public
    )


def test_sustained_below_needs_the_last_n_all_strictly_below() -> None:
    assert sustained_below([-0.7, -0.61], -0.6, 2)
    assert not sustained_below([-0.7, -0.6], -0.6, 2)  # strictly below
    assert not sustained_below([-0.9], -0.6, 2)  # not enough yet
    assert not sustained_below([-0.9, 0.2, -0.9], -0.6, 2)
    assert sustained_below([0.5, -0.9, -0.9], -0.6, 2)
    scores: list[float] = []
    for n in range(SCORES_KEPT + 3):
        remember(scores, float(n))
    assert scores == [float(n) for n in range(3, SCORES_KEPT + 3)]


def test_two_negative_customer_texts_in_a_row_bring_in_l4_once_per_cycle() -> None:
    state, raised = play(
        created("T-1", T0, summary="printer jam"),
        customer("T-1", 1, "angry"),  # one negative: not yet
        customer("T-1", 2, "furious"),  # two in a row: fires
        customer("T-1", 3, "angry"),  # still below: once per cycle
    )
    assert [(r.id, r.trigger, r.kind, r.to_tier) for r in raised] == [
        ("T-1/c1/sentiment/escalation", "sentiment", "hierarchical", "L4")
    ]
    (first,) = raised
    assert first.time == ms_at(2)
    assert first.trace["score"] == -0.9
    assert first.trace["scores"] == [-0.81, -0.9]
    assert first.trace["below"] == -0.6
    assert first.trace["words"] == ["furious", "useless"]
    assert first.reason == (
        "The customer's last 2 messages read negative (each below the threshold -0.60); "
        "L4 is brought in."
    )
    assert "0.9" not in first.reason  # the score is in the trace only
    assert state.sentiments == [0.0, -0.81, -0.9, -0.81]


def test_the_summary_counts_and_a_calmer_message_breaks_the_run() -> None:
    _, raised = play(
        created("T-1", T0, summary="angry"),
        customer("T-1", 1, "meh"),  # -0.59 is not below -0.6
        customer("T-1", 2, "angry"),
        customer("T-1", 3, "thanks"),
        customer("T-1", 4, "angry"),
    )
    assert raised == []
    _, raised = play(created("T-2", T0, summary="angry"), customer("T-2", 1, "furious"))
    assert [r.id for r in raised] == ["T-2/c1/sentiment/escalation"]


def test_an_empty_text_neither_counts_nor_breaks_a_run() -> None:
    """p5 of the review: an empty comment scored 0.0 and broke a run of negative texts."""
    state, raised = play(
        created("T-1", T0, summary="angry"),
        customer("T-1", 1, ""),
        customer("T-1", 2, "  \n\t"),
        customer("T-1", 3, "furious"),
    )
    assert [r.id for r in raised] == ["T-1/c1/sentiment/escalation"]
    assert state.sentiments == [-0.81, -0.9]


def test_only_the_first_1000_characters_are_scored() -> None:
    """p5 of the review: 4,000 characters of "bad but …" took ~190 ms to score. What lies
    beyond the bound changes nothing."""
    opening = "This is the third time the export failed. Useless. "
    assert SCORED_CHARS == 1000
    padded = opening + " " * (SCORED_CHARS - len(opening))
    assert vader_scorer(padded + "Wonderful, great, thank you!") == vader_scorer(padded)


def test_agents_and_private_customer_notes_are_not_scored() -> None:
    state, raised = play(
        created("T-1", T0, summary="printer jam"),
        comment("T-1", "2026-11-24T10:01:00Z", body="angry"),
        comment("T-1", "2026-11-24T10:02:00Z", body="furious", public=False),
        customer("T-1", 3, "angry", public=False),
        customer("T-1", 4, "furious"),
    )
    assert raised == []
    assert state.sentiments == [0.0, -0.9]


def test_a_reopened_ticket_can_fire_again_in_its_new_cycle() -> None:
    _, raised = play(
        created("T-1", T0, summary="angry"),
        customer("T-1", 1, "angry"),
        status("T-1", "2026-11-24T10:02:00Z", "solved"),
        status("T-1", "2026-11-24T10:03:00Z", "open"),
        customer("T-1", 4, "furious"),
    )
    assert [r.id for r in raised] == [
        "T-1/c1/sentiment/escalation",
        "T-1/c2/sentiment/escalation",
    ]


def test_no_trigger_or_no_scorer_scores_nothing() -> None:
    plain = parse_policy(EXAMPLE_POLICY.read_text())
    state, raised = play(
        created("T-1", T0, summary="angry"), customer("T-1", 1, "furious"), policy=plain
    )
    assert (raised, state.sentiments) == ([], [])
    decision = engine.apply(None, event(created("T-2", T0, summary="angry")), POLICY)
    assert decision.state.sentiments == []


def test_sustained_one_fires_on_the_first_negative_text() -> None:
    _, raised = play(
        created("T-1", T0, summary="angry"),
        policy=policy_with("{below: -0.8, sustained: 1, notify: L3}"),
    )
    assert [(r.id, r.to_tier) for r in raised] == [("T-1/c1/sentiment/escalation", "L3")]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("{below: -1, notify: L4}", "sentiment.below: expected a compound score above -1"),
        ("{below: high, notify: L4}", "sentiment.below: expected a compound score above -1"),
        ("{sustained: 0, notify: L4}", "sentiment.sustained: expected a whole number"),
        (f"{{sustained: {SCORES_KEPT + 1}, notify: L4}}", "from 1 to 10"),
        ("{sustained: true, notify: L4}", "sentiment.sustained: expected a whole number"),
        ("{below: -0.6}", "triggers.sentiment: missing required key 'notify'"),
        ("{notify: L9}", "'L9' is not allowed; use one of: L1, L2, L3, L4"),
        ("{notify: L4, over: 1}", "unknown key; allowed: below, sustained, notify"),
    ],
)
def test_policy_errors_name_the_key_and_the_fix(written: str, message: str) -> None:
    with pytest.raises(ConfigError, match="triggers") as caught:
        policy_with(written)
    assert message in str(caught.value)


def test_defaults_are_minus_0_6_and_two_messages() -> None:
    trigger = policy_with("{notify: L4}").sentiment
    assert trigger is not None
    assert (trigger.below, trigger.sustained, trigger.notify_tier) == (-0.6, 2, "L4")


def test_vader_scores_and_names_the_words_without_negated_ones() -> None:
    # failed -2.3 and useless -1.8 in the lexicon; ties would be broken alphabetically.
    scored = vader_scorer("This is the third time the export failed. Useless.")
    assert scored == Sentiment(-0.7269, ("failed", "useless"))
    assert vader_scorer("Not bad at all, the new version works well for us.").words == ()
    assert vader_scorer("x" * 100_000).compound == 0.0  # long text is cut, not a crash


def test_simulate_uses_vader_and_puts_score_and_words_in_the_trace_only() -> None:
    result = simulate.run(
        jsonl(
            created("T-1", T0, summary="Worst experience I have ever had with a vendor. Horrible."),
            customer("T-1", 5, "I'm sick of waiting, this is ridiculous and insulting."),
        ),
        POLICY,
    )
    docs = [orjson.loads(e.value) for e in result.emissions]
    (raised,) = [d for d in docs if d["type"] == "escalation.raised"]
    assert raised["id"] == "T-1/c1/sentiment/escalation"
    trace = raised["data"]["trace"]
    assert (trace["trigger"], trace["score"], trace["scores"]) == (
        "sentiment",
        -0.8402,
        [-0.8225, -0.8402],
    )
    # Most negative first, by the lexicon: sick -2.3, insulting -2.2, ridiculous -1.5.
    assert trace["words"] == ["sick", "insulting", "ridiculous"]
    notified = [d for d in docs if d["type"] == "notification.requested"]
    assert notified
    assert all(d["data"]["trace"]["score"] == -0.8402 for d in notified)
    for doc in docs:
        OUTBOUND.validate(doc)


def ms_at(minute: int) -> int:
    return ms(f"2026-11-24T10:{minute:02d}:00Z")
