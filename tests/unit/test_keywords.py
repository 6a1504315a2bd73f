"""Risky keywords in any script (issue 14): NFKC + case folding, boundaries that work beside
symbols, substring matching for unspaced scripts, and `*` prefixes."""

from __future__ import annotations

import orjson
import pytest

from escalator.config.policy_file import parse_policy
from escalator.domain.keywords import matcher
from escalator.errors import ConfigError
from escalator.service import simulate
from tests.helpers import EXAMPLE_POLICY, comment, created, jsonl

WORDS = (
    "cancel*",
    "lawsuit",
    "#urgent",
    "C++",
    "Straße",
    "解約",
    "キャンセル",
    "ยกเลิก",
    "remboursement",
)

CASES = [
    # (text, the keyword as found in the normalised text, or None)
    ("We will cancel our contract", "cancel"),
    ("We canceled yesterday", "canceled"),
    ("the CANCELLATION is final", "cancellation"),
    ("ＣＡＮＣＥＬ now", "cancel"),  # full-width Latin
    ("Cancelled!!!", "cancelled"),
    ("uncancellable order", None),  # `cancel*` is a prefix, not an infix
    ("a LAWSUIT is coming", "lawsuit"),
    ("lawsuits are expensive", None),  # whole word: lawsuit, not lawsuits
    ("this is #urgent!", "#urgent"),
    ("#URGENT", "#urgent"),
    ("urgent but no hash", None),
    ("our C++ build fails", "c++"),
    ("C++11 compile error", None),  # followed by a digit: another word
    ("in C, not C+", None),
    ("Straße gesperrt", "strasse"),  # case folding: ß → ss
    ("STRASSE gesperrt", "strasse"),
    ("契約を解約したいです", "解約"),  # Japanese, no spaces: substring
    ("我们要解約", "解約"),  # in Chinese text
    ("キャンセルをお願いします", "キャンセル"),  # Katakana
    ("ｷｬﾝｾﾙ", "キャンセル"),  # half-width Katakana, NFKC
    ("ฉันต้องการยกเลิกบริการ", "ยกเลิก"),  # Thai, no spaces
    ("demande de remboursement", "remboursement"),
    ("REMBOURSEMENT immédiat", "remboursement"),
    ("remboursements multiples", None),
    ("all good, thanks", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "found"), CASES)
def test_keyword_table(text: str, found: str | None) -> None:
    assert matcher(WORDS).find(text) == found


@pytest.mark.parametrize("word", ["   ", "*", " * ", "\u3000"])  # \u3000: ideographic space
def test_policy_check_refuses_a_keyword_that_normalises_to_nothing(word: str) -> None:
    text = EXAMPLE_POLICY.read_text()
    start = text.index("keywords: {words: [")
    policy = (
        text[:start]
        + f'keywords: {{words: ["{word}"], notify: L4}}'
        + text[text.index("\n", start) :]
    )
    with pytest.raises(ConfigError, match="is empty once normalised"):
        parse_policy(policy, "policy.yaml")


def test_the_summary_of_a_new_ticket_is_scanned_too() -> None:
    policy = parse_policy(EXAMPLE_POLICY.read_text(), "policy.yaml")
    at = "2026-11-24T10:00:00Z"
    result = simulate.run(
        jsonl(
            created("T-1", at, summary="We will take legal action"),
            created("T-2", at, summary="printer jam"),
            comment("T-2", "2026-11-24T10:01:00Z", role="customer", body="ＬＡＷＳＵＩＴ"),
        ),
        policy,
    )
    reasons = {
        d["subject"]: d["data"]["reason"]
        for d in (orjson.loads(e.value) for e in result.emissions)
        if d["type"] == "escalation.raised" and d["data"]["trigger"] == "keyword"
    }
    assert reasons["T-1"].startswith("The new ticket's summary mentions 'legal'")
    assert reasons["T-2"].startswith("A customer comment mentions 'lawsuit'")
