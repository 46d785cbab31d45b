"""Finds people in text: customer names and street addresses, replaced by [NAME] and [ADDRESS].

    python -c "from data_tools.pii_people import *; print(redact_people('山田太郎様、千代田区丸の内1-1-1')[0])"

Rules (offline, no model), each written from how support text names people:
- a Japanese name before an honorific (様, さん, 殿, くん, ちゃん): up to 4 + 3 kanji, or katakana,
  as in 「山田太郎様」「ヤマダ様」; generic addressees are not names (お客様, 皆様, ご担当者様,
  会員様, 店長さん, ...);
- an English name after a greeting or a title ("Dear Emily Chen", "Hi Emily", "Mr. Chen",
  "Ms. Emily Chen"): one to three capitalised words;
- a Japanese street address: a prefecture, a city/ward/town/village, then the place and block
  numbers (丸の内1-1-1, 1丁目2番3号) as far as they go;
- a Western street address: a house number, one to four words, and a street type ("221B Baker
  Street", "1600 Pennsylvania Ave").
What is not found: a name without an honorific, greeting or title inside prose ("I asked Emily"),
a name written in hiragana only, and an address without its prefecture or street type. The
export's own name fields (requester, author name) are redacted by the format readers wherever
the name then appears.
"""

from __future__ import annotations

import re
from collections import Counter

_KANJI = "\u4e00-\u9fff\u3005"  # CJK ideographs and 々
_KATAKANA = "\u30a1-\u30fa\u30fc"
_GENERIC = frozenset(
    "客 お客 皆 みな 各位 担当 担当者 ご担当者 会員 ご利用者 利用者 購入者 ご購入者 店長 社長 部長 課長 係長 "
    "先生 お父 お母 お兄 お姉 奥 旦那 皆々 御中 お嬢 お子 神 仏 王 姫 様 殿 当選者 出品者 落札者 配達員 運転手".split()
)
_JA_NAME = re.compile(rf"(?<![{_KANJI}{_KATAKANA}])([{_KANJI}]{{1,4}}(?:[ 　]?[{_KANJI}]{{1,3}})?|[{_KATAKANA}]{{2,10}}"
                      rf"(?:[ 　・][{_KATAKANA}]{{2,10}})?)(?=様|さん|殿|くん|ちゃん)")
_NAME_WORD = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_EN_NAME = re.compile(rf"(?:(?<=\bDear )|(?<=\bHi )|(?<=\bHello )|(?<=\bHey )|(?<=\bThanks )|(?<=\bThank you )"
                      rf"|(?<=\bMr\. )|(?<=\bMrs\. )|(?<=\bMs\. )|(?<=\bMiss )|(?<=\bDr\. )|(?<=\bMr )|(?<=\bMs "
                      rf")|(?<=\bMrs ))"
                      rf"{_NAME_WORD}(?: {_NAME_WORD}){{0,2}}")
_PREFECTURE = (
    "北海道|東京都|(?:京都|大阪)府|(?:青森|岩手|宮城|秋田|山形|福島|茨城|栃木|群馬|埼玉|千葉|神奈川|新潟|富山|石川|"
               "福井|山梨|長野|岐阜|静岡|愛知|三重|滋賀|兵庫|奈良|和歌山|鳥取|島根|岡山|広島|山口|徳島|香川|愛媛|高知|福岡|"
               "佐賀|長崎|熊本|大分|宮崎|鹿児島|沖縄)県")
_D = "0-9０-９"
_JA_ADDRESS = re.compile(
    rf"(?:{_PREFECTURE})[{_KANJI}ぁ-んァ-ヶー]{{1,8}}?[市区町村郡]"  # prefecture + city/ward
    rf"(?:[{_KANJI}ぁ-んァ-ヶー]{{0,10}}?[市区町村])?"  # a ward of a city
    rf"[{_KANJI}ぁ-んァ-ヶー]{{0,12}}?"  # the place
    rf"[{_D}一二三四五六七八九十]+(?:(?:丁目|番地?|号|[-‐－−ー])[{_D}一二三四五六七八九十]*)*号?"  # block numbers
)  # a city alone (「東京都千代田区の店舗」) is not an address of a person: the block numbers are required
_EN_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Z]? (?:[A-Z][a-z]+ ){0,3}[A-Z][a-z]+ "
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Terrace|Parkway)\b\.?"
)
# Cheap tests, each one scan in C, that rule a text out before the rules above run (most texts hold none).
_JA_ADDRESS_HINT = re.compile("[都道府県]")
_HONORIFIC_HINT = re.compile("様|さん|殿|くん|ちゃん")
_EN_NAME_HINT = re.compile(r"(?:Dear|Hi|Hello|Hey|Thanks|Thank you|Mrs?|Ms|Miss|Dr)\.? [A-Z]")  # a literal start: fast
_EN_ADDRESS_HINT = re.compile(r"\d[A-Z]? [A-Z]")


def _ja_names(text: str, kinds: Counter) -> str:
    def name(match: re.Match[str]) -> str:
        value = match.group(1)
        if value in _GENERIC or value.lstrip("おご") in _GENERIC or value[-2:] in _GENERIC or value[-1] in "様殿":
            return value
        kinds["NAME"] += 1
        return "[NAME]"

    return _JA_NAME.sub(name, text)


_EN_GENERIC = frozenset("Customer Customers Sir Madam Team Support All Everyone There Valued Friend Friends Guest User "
                        "Member Members Folks Again".split())


def _en_names(text: str, kinds: Counter) -> str:
    def name(match: re.Match[str]) -> str:
        if match.group().split()[0] in _EN_GENERIC:
            return match.group()
        kinds["NAME"] += 1
        return "[NAME]"

    return _EN_NAME.sub(name, text)


def _counted(pattern: re.Pattern[str], kind: str, text: str, kinds: Counter) -> str:
    def replace(match: re.Match[str]) -> str:
        kinds[kind] += 1
        return f"[{kind}]"

    return pattern.sub(replace, text)


_NONE: Counter = Counter()  # shared and never changed: what most texts hold


def redact_people(text: str, names: tuple[str, ...] = ()) -> tuple[str, Counter]:
    """Returns (text with names and addresses replaced, counts per kind); `names` are known names
    (an export's requester fields), replaced wherever they occur. The counts of a text without
    any are a shared empty Counter: copy it before changing it."""
    if not (names or _JA_ADDRESS_HINT.search(text) or _HONORIFIC_HINT.search(text) or _EN_NAME_HINT.search(text)
            or _EN_ADDRESS_HINT.search(text)):  # four scans with literal starts beat one alternation (measured)
        return text, _NONE
    kinds: Counter = Counter()
    for known in sorted(names, key=len, reverse=True):  # "Emily Chen" before "Emily": no surname left behind
        if len(known) >= 2 and known in text:
            edge = r"(?<![A-Za-z0-9])" if known[0].isascii() else ""  # "Tom" is not inside "Tomorrow"
            tail = r"(?![A-Za-z0-9])" if known[-1].isascii() else ""
            text, count = re.subn(edge + re.escape(known) + tail, "[NAME]", text)
            kinds["NAME"] += count
    if _JA_ADDRESS_HINT.search(text):
        text = _counted(_JA_ADDRESS, "ADDRESS", text, kinds)
    if _HONORIFIC_HINT.search(text):
        text = _ja_names(text, kinds)
    if _EN_NAME_HINT.search(text):
        text = _en_names(text, kinds)
    if _EN_ADDRESS_HINT.search(text):
        text = _counted(_EN_ADDRESS, "ADDRESS", text, kinds)
    return text, kinds
