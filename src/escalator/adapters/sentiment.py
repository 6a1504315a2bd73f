"""VADER as the sentiment trigger's scorer (domain/sentiment.py).

VADER (`vaderSentiment` on PyPI, pinned) is a lexicon- and rule-based analyser tuned to short,
informal English; its lexicon ships inside the package and is read from disk once, on first
use — nothing is downloaded, ever. The worker and `simulate` both use `vader_scorer`, so the
same text gets the same score wherever it is decided.

The score is VADER's `compound` (-1 … +1), rounded to 4 places so a stored score reads back as
it was decided. The words that drove it are the text's words with a negative valence in the
lexicon that no negation ("not", "never", "n't" …) precedes within three words, most negative
first: an explanation for the trace, not a second score.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from vaderSentiment.vaderSentiment import (
    SentimentIntensityAnalyzer,
    SentiText,
    negated,
)

from escalator.domain.sentiment import WORDS_KEPT, Sentiment

# Longer customer text is cut before scoring. VADER's cost grows faster than the text (its
# "but" and negation rules look back over the words: 4,000 characters of "bad but …" took
# ~190 ms, 1,000 take ~12 ms), and a partition applies records one at a time; the first 1,000
# characters — a long e-mail's opening paragraphs — say how the customer feels.
SCORED_CHARS = 1000


@cache
def _analyser() -> Any:
    """Loaded once per process: reading the lexicon takes ~100 ms."""
    return SentimentIntensityAnalyzer()


def vader_scorer(text: str) -> Sentiment:
    """The compound score of `text` and the words that pulled it down."""
    text = text[:SCORED_CHARS]
    analyser = _analyser()
    compound = round(float(analyser.polarity_scores(text)["compound"]), 4)
    return Sentiment(compound, _negative_words(analyser.lexicon, text))


def _negative_words(lexicon: dict[str, float], text: str) -> tuple[str, ...]:
    # Tokenised again (VADER keeps its tokens inside `polarity_scores`): linear, cheap next to
    # the scoring itself.
    tokens = [token.lower() for token in SentiText(text).words_and_emoticons]
    found: dict[str, float] = {}
    for index, token in enumerate(tokens):
        valence = lexicon.get(token, 0.0)
        if valence >= 0 or negated(tokens[max(0, index - 3) : index]):
            continue
        found[token] = min(valence, found.get(token, 0.0))
    ranked = sorted(found, key=lambda word: (found[word], word))
    return tuple(ranked[:WORDS_KEPT])
