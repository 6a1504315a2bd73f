"""Negative sentiment in customer text (the `sentiment` trigger).

The score comes from a `Scorer` the caller passes in (adapters/sentiment.py wraps VADER): the
engine never loads a lexicon, it only reads what the scorer says. The worker and `simulate`
build the same scorer, so the same text gets the same score and the same escalation id.

The decision is pure: a ticket keeps the scores of its latest customer texts (`SCORES_KEPT`)
and the trigger fires when the last `sustained` of them are all below `below`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

# Scores a ticket keeps: the most a policy's `sustained` may ask for (config/policy_file.py).
SCORES_KEPT: Final = 10
# Words kept in a trace: the most negative few, enough to show why.
WORDS_KEPT: Final = 5


@dataclass(frozen=True, slots=True)
class Sentiment:
    """A text's compound score (-1 most negative … +1 most positive, rounded to 4 places so
    every build agrees) and the words that pulled it down, most negative first."""

    compound: float
    words: tuple[str, ...] = ()


Scorer = Callable[[str], Sentiment]


def remember(scores: list[float], score: float) -> None:
    """Keep `score` as the latest, dropping the oldest beyond `SCORES_KEPT`."""
    scores.append(score)
    del scores[:-SCORES_KEPT]


def sustained_below(scores: Sequence[float], below: float, sustained: int) -> bool:
    """Whether the last `sustained` scores are all strictly below `below`."""
    if len(scores) < sustained:
        return False
    return all(score < below for score in scores[-sustained:])
