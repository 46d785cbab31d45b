"""Finds names and addresses with a named-entity model, after the rules of pii_people.py: `data.pii_ner`.

    python -c "from data_tools.pii_ner import ner_redactor; print(ner_redactor('ginza')('担当の田中です。')[0])"

One model is registered, GiNZA (`ja_ginza`, spaCy; MIT, from PyPI: `pip install 'tunebot[ner-ja]'`).
Its Japanese NER finds the names the rules cannot see, a name without an honorific or greeting
(「株式会社アクメの田中です」「佐藤です」), and addresses without their prefecture
(「横浜市西区みなとみらい3-3-1」). What it keeps:
- a Person span with a kanji in it, 2-10 characters, that is not a company (株式会社, 有限会社, (株),
  …社, …店) → [NAME]; a katakana-only or Latin-script span is not trusted (the model calls brand
  and product names persons too; katakana names with 様/さん are the rules' job);
- a place span (City, Province, County, Postal_Address) that holds or is followed by block numbers
  (2-4-9, 1丁目2番3号) → [ADDRESS]; a place alone (「渋谷店」「ヤマト」) stays.
It reads only texts with a kanji in them, at ~100 texts/s a process on this CPU (the rules run at
~25,000 rows/s), which is why it is opt-in. There is no English model here: Presidio and spaCy's
English pipelines need model packages that PyPI does not carry, so English names stay with the
rules (greetings, titles, the export's name fields).
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Callable
from functools import cache

from tunebot.errors import TunebotError

Redactor = Callable[[str], tuple[str, Counter]]
NER_MODELS = {"ginza": ("ja_ginza", "pip install 'tunebot[ner-ja]'")}  # data.pii_ner: model package, install hint
_UNUSED_PIPES = ["parser", "morphologizer", "compound_splitter", "bunsetu_recognizer"]  # NER needs tok2vec + ner
_KANJI = re.compile("[\u4e00-\u9fff\u3005]")
_COMPANY = re.compile(r"株式会社|有限会社|合同会社|[(（]株[)）]|社$|店$|部$|課$|センター$|グループ$")
_PLACES = frozenset({"City", "Province", "County", "Postal_Address"})
_BLOCK = re.compile(
    r"[0-9０-９一二三四五六七八九十]+(?:(?:丁目|番地?|号|[-‐－−ー])[0-9０-９一二三四五六七八九十]*)+号?")
_HONORIFIC = ("様", "さん", "殿", "くん", "ちゃん")


def ner_problem(name: str) -> str | None:
    """Says why `data.pii_ner: name` cannot run here (its model package is missing), or None."""
    package, hint = NER_MODELS[name]
    if importlib.util.find_spec(package) is None:
        return f"data.pii_ner: {name} needs the {package} model package, which is not installed ({hint})"
    return None


@cache
def _pipeline(package: str) -> object:
    import spacy

    return spacy.load(package, exclude=_UNUSED_PIPES)


def ner_redactor(name: str) -> Redactor:
    """Returns a function text -> (text with the model's names and addresses replaced, counts per kind)."""
    problem = ner_problem(name)
    if problem:
        raise TunebotError(problem)
    package = NER_MODELS[name][0]

    def redact(text: str) -> tuple[str, Counter]:
        kinds: Counter = Counter()
        if not _KANJI.search(text):
            return text, kinds
        spans = [span for entity in _pipeline(package)(text).ents if (span := _span(text, entity, kinds))]
        for start, end, kind in sorted(spans, reverse=True):  # from the end: earlier offsets stay valid
            text = text[:start] + f"[{kind}]" + text[end:]
        return text, kinds

    return redact


def _span(text: str, entity: object, kinds: Counter) -> tuple[int, int, str] | None:
    """The (start, end, kind) an entity is redacted as, or None when it is kept."""
    value, start, end = entity.text, entity.start_char, entity.end_char  # type: ignore[attr-defined]
    if entity.label_ == "Person":  # type: ignore[attr-defined]
        for honorific in _HONORIFIC:
            if value.endswith(honorific):
                value, end = value[: -len(honorific)], end - len(honorific)
        if not (2 <= len(value) <= 10 and _KANJI.search(value)) or _COMPANY.search(value) or "[" in value:
            return None
        kinds["NAME"] += 1
        return start, end, "NAME"
    if entity.label_ in _PLACES and "[" not in value:  # type: ignore[attr-defined]
        inside = [block.end() for block in _BLOCK.finditer(value)]
        after = _BLOCK.match(text, end)
        if not (after or inside):
            return None
        kinds["ADDRESS"] += 1  # the span ends with its block numbers (the model may take a word after them)
        return start, after.end() if after else start + inside[-1], "ADDRESS"
    return None
