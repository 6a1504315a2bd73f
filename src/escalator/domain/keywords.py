"""Risky keywords in customer text, in any script (the `keywords` trigger).

Both the policy's keywords and the text are normalised with NFKC and case folding, so
full-width `ＣＡＮＣＥＬ`, `Cancel` and `CANCEL` are `cancel`, and `Straße` is `strasse`. Then:

- a keyword is a whole word: not preceded or followed by a letter or digit — which works
  beside symbols (`#urgent`, `C++`), where a regex `\\b` does not;
- `cancel*` (a trailing `*`) also matches every word it starts: canceled, cancelled,
  cancellation;
- a keyword in a script written without spaces between words (Chinese, Japanese, Thai, Lao,
  Khmer, Myanmar) matches anywhere in the text: those scripts have no word boundaries to test.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Scripts written without spaces between words.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\U00020000-\U0002fa1f]"
)


class KeywordError(ValueError):
    """A keyword that cannot match anything; the message says why."""


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True, slots=True)
class Keyword:
    """One policy keyword, normalised: `word`, whether it is a prefix (`cancel*`)."""

    written: str
    word: str
    prefix: bool

    @classmethod
    def parse(cls, written: str) -> Keyword:
        text = normalise(written).strip()
        prefix = text.endswith("*")
        word = text.removesuffix("*").strip()
        if not word:
            raise KeywordError(f"keyword {written!r} is empty once normalised (NFKC, case)")
        return cls(written, word, prefix)

    def pattern(self) -> str:
        escaped = re.escape(self.word)
        if _UNSPACED.search(self.word):
            return escaped
        tail = r"\w*" if self.prefix else r"(?!\w)"
        return rf"(?<!\w){escaped}{tail}"


@dataclass(frozen=True, slots=True)
class Matcher:
    keywords: tuple[Keyword, ...]
    regex: re.Pattern[str]

    def find(self, text: str) -> str | None:
        """The first keyword found in `text` (in text order), as it reads there once
        normalised (`cancelled` for `cancel*`), or None."""
        found = self.regex.search(normalise(text))
        return None if found is None else found.group()


@lru_cache(maxsize=64)
def matcher(keywords: tuple[str, ...]) -> Matcher:
    """A matcher for the policy's keywords (cached: a policy has one list)."""
    parsed = tuple(Keyword.parse(k) for k in keywords)
    alternatives = "|".join(f"(?P<k{n}>{k.pattern()})" for n, k in enumerate(parsed))
    return Matcher(parsed, re.compile(alternatives))
