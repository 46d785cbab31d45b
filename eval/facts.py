"""Key facts of an answer: amounts, numbers with units, dates, times, contacts, codes and quoted UI labels.

    python -c "from eval.facts import extract_facts; print(sorted(extract_facts('送料は５５０円、5,500円以上で無料')))"

`key_facts` (recall of the reference's facts) and `unsupported_facts` (facts given nowhere)
compare answers by these, so "30日以内" and "within 30 days" hold the same fact, and so do
１４日 / 14日 (width), 5,500 / 5500 (thousands separators) and 1〜2か月 / 1-2 months / 1 to 2 months
(ranges). Each fact is a normalised string: "30 day", "550 JPY", "1-2 month", "14:00", "03-31",
"mail:support@acme.example", "tel:0120000000", "url:acme.example/help", "label:coupon code",
"code:T0000000000000". A bare number without a unit is not a fact (too many are incidental:
"step 1"), unless it has three digits or more.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# unit words (lower case, after NFKC) -> canonical unit; longest alternatives are tried first
UNITS: dict[str, str] = {
    "business days": "bday", "business day": "bday", "working days": "bday", "working day": "bday", "営業日": "bday",
    "days": "day", "day": "day", "日間": "day", "日": "day",
    "hours": "hour", "hour": "hour", "hrs": "hour", "hr": "hour", "時間": "hour",
    "minutes": "min", "minute": "min", "mins": "min", "min": "min", "分間": "min", "分": "min",
    "seconds": "sec", "second": "sec", "秒": "sec",
    "weeks": "week", "week": "week", "週間": "week",
    "months": "month", "month": "month", "か月": "month", "ヶ月": "month", "カ月": "month", "ケ月": "month",
    "ヵ月": "month", "箇月": "month", "ヶ月間": "month", "か月間": "month",
    "years": "year", "year": "year", "年間": "year", "年": "year",
    "yen": "JPY", "円": "JPY", "jpy": "JPY", "dollars": "USD", "dollar": "USD", "usd": "USD", "euros": "EUR",
    "euro": "EUR", "eur": "EUR",
    "percent": "%", "%": "%", "パーセント": "%",
    "points": "point", "point": "point", "pts": "point", "pt": "point", "ポイント": "point",
    "times": "times", "回": "times", "items": "item", "item": "item", "点": "item", "個": "item",
    "kg": "kg", "g": "g", "cm": "cm", "mm": "mm", "m": "m", "km": "km", "gb": "GB", "mb": "MB", "tb": "TB",
    "ml": "ml", "l": "l", "歳": "age", "years old": "age", "名": "person", "people": "person", "persons": "person",
}
CURRENCY_SIGNS = {"¥": "JPY", "￥": "JPY", "$": "USD", "€": "EUR", "£": "GBP"}
NUMBER_WORDS = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
NUMBER_WORDS.update({"fifteen": "15", "twenty": "20", "thirty": "30", "sixty": "60", "ninety": "90"})
MONTHS = {name: index for index, names in enumerate(
    ("jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
     "sep sept september", "oct october", "nov november", "dec december"), 1) for name in names.split()}

_DASHES = str.maketrans({"〜": "-", "~": "-", "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-", "～": "-"})
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"
_UNIT = "|".join(sorted((re.escape(unit) for unit in UNITS), key=len, reverse=True))
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>「」『』()（）、。\"']+", re.IGNORECASE)
# Japanese has no spaces, so boundaries are "no latin letter or digit", never \b or \w.
_PHONE = re.compile(r"(?<![0-9a-z.])(?:\+\d{1,3}[ -]?)?\(?0?\d{1,4}\)?[ -]\d{1,4}[ -]\d{3,4}(?![0-9a-z])")
_LABEL = re.compile(r"「([^「」]{1,60})」|『([^『』]{1,60})』|\"([^\"]{1,60})\"|“([^”]{1,60})”")
_CODE = re.compile(r"(?<![0-9a-z-])(?=[0-9a-z-]*\d)(?=[0-9a-z-]*[a-z])[a-z0-9]+(?:-[a-z0-9]+)*(?![0-9a-z-])")
_DATE_YMD = re.compile(r"(?<!\d)(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?!\d)")
_DATE_MD_JA = re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})日")
_DATE_MD_SLASH = re.compile(r"(?<![\d/])(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])(?![\d/])")
_DATE_MD_EN = re.compile(r"\b(" + "|".join(MONTHS) + r")\.? (\d{1,2})(?:st|nd|rd|th)?\b")
_TIME = re.compile(
    r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])\s*(a\.?m\.?|p\.?m\.?)?|(?<!\d)(\d{1,2})時(?!間)(?:(\d{1,2})分|半)?"
                   r"|(?<!\d)(\d{1,2})\s*(a\.?m\.?|p\.?m\.?)(?![a-z])")
_CURRENCY = re.compile(r"([¥￥$€£])\s?(" + _NUMBER + r")")
_QUANTITY = re.compile(r"(?<![0-9a-z.,])(" + _NUMBER + r")(?:\s?(?:-|to|から)\s?(" + _NUMBER + r"))?[\s-]?(" + _UNIT
                       + r")(?![a-z])")
_BARE = re.compile(r"(?<![0-9a-z.,])\d{3,}(?:,\d{3})*(?![0-9a-z])")
_WORD_NUMBER = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")(?=[ -](?:" + _UNIT + r")\b)")


def normalize(text: str) -> str:
    """Width, case, range dashes and thousands separators made uniform; spans keep their places.

    >>> normalize('１４日〜２０日、5,500円')
    '14日-20日、5500円'
    """
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    return _WORD_NUMBER.sub(lambda match: NUMBER_WORDS[match.group(1)], text)


def _number(text: str) -> str:
    value = text.replace(",", "")
    return value.rstrip("0").rstrip(".") if "." in value else value.lstrip("0") or "0"


def _time(hour: str, minute: str | None, meridiem: str | None) -> str:
    value = int(hour)
    if meridiem and meridiem.startswith("p") and value < 12:
        value += 12
    if meridiem and meridiem.startswith("a") and value == 12:
        value = 0
    return f"{value}:{minute or '00'}"


class _Scanner:
    """Takes facts out of a normalised text one kind at a time, blanking what each kind used."""

    def __init__(self, text: str) -> None:
        self.text, self.facts = text, set()

    def take(self, pattern: re.Pattern[str], make: Callable[[re.Match[str]], str | None]) -> None:
        def replace(match: re.Match[str]) -> str:
            fact = make(match)
            if fact:
                self.facts.add(fact)
            return " " * len(match.group(0))

        self.text = pattern.sub(replace, self.text)


def _quantity(match: re.Match[str]) -> str:
    low, high, unit = match.group(1), match.group(2), UNITS[match.group(3)]
    return f"{_number(low)}-{_number(high)} {unit}" if high else f"{_number(low)} {unit}"


def _label(match: re.Match[str]) -> str:
    inner = next(group for group in match.groups() if group is not None)
    return "label:" + re.sub(r"\s+", " ", inner).strip(" .。?？!！")


def _phone(match: re.Match[str]) -> str | None:
    digits = re.sub(r"\D", "", match.group(0))
    return f"tel:{digits}" if 9 <= len(digits) <= 15 else None


def extract_facts(text: str) -> set[str]:
    """Returns the normalised key facts stated in a text.

    >>> sorted(extract_facts('Shipping is ¥550, free from ¥5,500; refunds take 1–2 months.'))
    ['1-2 month', '550 JPY', '5500 JPY']
    >>> sorted(extract_facts('送料は550円、5,500円以上で無料。返金は1〜2か月です。'))
    ['1-2 month', '550 JPY', '5500 JPY']
    """
    scan = _Scanner(normalize(text))
    scan.take(_EMAIL, lambda m: "mail:" + m.group(0))
    scan.take(_URL, lambda m: "url:" + re.sub(r"^(?:https?://)?(?:www\.)?", "", m.group(0)).rstrip("/.,"))
    scan.take(_LABEL, _label)
    scan.take(_DATE_YMD, lambda m: f"{int(m.group(1))}-{int(m.group(2)):02d}-{int(m.group(3)):02d}")
    scan.take(_DATE_MD_JA, lambda m: f"{int(m.group(1)):02d}-{int(m.group(2)):02d}")
    scan.take(_DATE_MD_SLASH, lambda m: f"{int(m.group(1)):02d}-{int(m.group(2)):02d}")
    scan.take(_DATE_MD_EN, lambda m: f"{MONTHS[m.group(1)]:02d}-{int(m.group(2)):02d}")
    scan.take(_PHONE, _phone)
    scan.take(_CURRENCY, lambda m: f"{_number(m.group(2))} {CURRENCY_SIGNS[m.group(1)]}")
    scan.take(_TIME, _time_fact)
    scan.take(_QUANTITY, _quantity)
    scan.take(_CODE, lambda m: "code:" + m.group(0) if len(m.group(0)) >= 5 else None)
    scan.take(_BARE, lambda m: _number(m.group(0)))
    return scan.facts


def _time_fact(match: re.Match[str]) -> str:
    if match.group(1):
        return _time(match.group(1), match.group(2), match.group(3))
    if match.group(4):
        minute = match.group(5) or ("30" if match.group(0).endswith("半") else None)
        return _time(match.group(4), f"{int(minute):02d}" if minute else None, None)
    return _time(match.group(6), None, match.group(7))


def stated(fact: str, facts: set[str], normalized: str) -> bool:
    """Says whether a text states a fact: among its facts, or for a UI label, its words anywhere in it.

    A label counts quoted or not ("tap Apply" states 「Apply」); `normalized` is normalize(text).
    """
    return fact in facts or (fact.startswith("label:") and fact[6:] in normalized)


def missing_facts(wanted: set[str], text: str) -> set[str]:
    """The facts of `wanted` that `text` does not state.

    >>> sorted(missing_facts({'550 JPY', 'label:apply'}, 'Tap apply; it costs 550 yen.'))
    []
    """
    facts, normalized = extract_facts(text), normalize(text)
    return {fact for fact in wanted if not stated(fact, facts, normalized)}


def unsupported_facts(text: str, sources: list[str]) -> list[str]:
    """The facts of `text` that no source states (labels: whose words no source holds), sorted."""
    given, normalized = set(), []
    for source in sources:
        given |= extract_facts(source)
        normalized.append(normalize(source))
    return sorted(fact for fact in extract_facts(text)
                  if not any(stated(fact, given, words) for words in normalized))
