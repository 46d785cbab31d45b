"""Concept tokens for retrieval: words a customer uses for the same thing map to one token.

    python -c "from tunebot.lexicon import Lexicon; print(Lexicon.builtin().concepts('メアドを変えたい', 'ja'))"

"where's my parcel" and "how can I track my order" share no content word, nor do 「メアド変えたい」
and 「登録メールアドレスを変更したい」. The lexicon (tunebot/support_lexicon.txt: groups of support
terms per language, or a file of your own in the same format) adds a token per concept found in
a text, so BM25 can match them. English terms match whole words with their plural and -ed/-ing
forms (a phrase also with one word in between: "send it
back"); Japanese terms match whole MeCab words or runs of
them (「物」 does not match inside 「荷物」, 「入れない」 matches
「入れ|ない」), after NFKC and lower-casing.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

from tunebot.text import word_edges

BUILTIN = Path(__file__).resolve().parent / "support_lexicon.txt"
_LINE = re.compile(r"^(en|ja)\s+([\w-]+)\s*:\s*(.*)$")


class LexiconError(ValueError):
    """A lexicon file line that cannot be read."""


class Lexicon:
    """Concept groups per language, compiled into one pattern per concept."""

    def __init__(self, groups: dict[str, dict[str, list[str]]]) -> None:
        self.groups = groups  # lang -> concept -> terms, as written (data.augment swaps them)
        self.patterns: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        self.terms: dict[str, list[tuple[str, list[str]]]] = {}  # Japanese: plain terms, matched on word edges
        for lang, concepts in groups.items():
            compiled, plain = [], []
            for concept, terms in concepts.items():
                folded = sorted({_fold(term) for term in terms if term.strip()}, key=len, reverse=True)
                if not folded:
                    continue
                token = f"\u00a7{lang}:{concept}"
                if lang == "ja":
                    plain.append((token, folded))
                    continue
                # a phrase allows one word in between: "send back" matches "send it back"
                body = "|".join(r"(?:\s+[a-z']+)?\s+".join(map(re.escape, term.split())) for term in folded)
                compiled.append((token, re.compile(rf"(?<![a-z0-9])(?:{body})(?:s|es|d|ed|ing)?(?![a-z0-9])")))
            self.patterns[lang], self.terms[lang] = compiled, plain

    @classmethod
    def read(cls, path: Path) -> "Lexicon":
        """Reads a lexicon file: `<lang> <concept>: term | term`, '#' comments and blank lines skipped."""
        groups: dict[str, dict[str, list[str]]] = {}
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _LINE.match(line.strip())
            if not match:
                raise LexiconError(f"{path}: line {number}: expected '<en|ja> <concept>: term | term', got {line!r}")
            lang, concept, terms = match.groups()
            groups.setdefault(lang, {}).setdefault(concept, []).extend(term.strip() for term in terms.split("|"))
        return cls(groups)

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def builtin() -> "Lexicon":
        """The bundled support lexicon (read once)."""
        return Lexicon.read(BUILTIN)

    def concepts(self, text: str, lang: str) -> list[str]:
        """The concept tokens found in a text of language `lang`, one per concept, in lexicon order."""
        folded = _fold(text)
        if lang != "ja":
            return [token for token, pattern in self.patterns.get(lang, ()) if pattern.search(folded)]
        starts, ends = word_edges(folded)
        return [token for token, terms in self.terms.get(lang, ()) if any(_on_edges(folded, term, starts, ends)
                                                                          for term in terms)]


def _on_edges(text: str, term: str, starts: set[int], ends: set[int]) -> bool:
    """Says whether `term` occurs in `text` starting and ending on word edges."""
    position = text.find(term)
    while position >= 0:
        if position in starts and position + len(term) in ends:
            return True
        position = text.find(term, position + 1)
    return False


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")


def load_lexicon(setting: str) -> Lexicon | None:
    """The lexicon of `retrieval.synonyms`: builtin, none, or a file path."""
    if setting == "none":
        return None
    if setting == "builtin":
        return Lexicon.builtin()
    path = Path(setting)
    if not path.is_file():
        raise LexiconError(f"retrieval.synonyms: {path} not found (use builtin, none or a lexicon file)")
    return Lexicon.read(path)
