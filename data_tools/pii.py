"""Finds personal data in text and replaces it with typed placeholders ([EMAIL], [PHONE], ...).

    python -c "from data_tools.pii import PiiScrubber; print(PiiScrubber().redact('mail me: taro@example.co.jp'))"

Covers e-mail addresses, phone numbers (Japanese formats such as 03-1234-5678, 090-1234-5678,
+81 ..., and international ones), Japanese postal codes (〒123-4567), credit-card numbers (only
when the Luhn check passes), Japanese My Number (only when its check digit is right), IPv4/IPv6
addresses and user-configured patterns. Digits and hyphens may be full-width, as they often are
in Japanese text. Values on an allow-list (the company's own public contact details) are kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from data_tools.pii_ner import ner_redactor
from data_tools.pii_people import redact_people

_D = "[0-9０-９]"  # a digit, half- or full-width
_H = "[-‐－―−ー]"  # a hyphen as typed in Japanese text
_SEP = f"(?:{_H}|[ 　])"

# A digit group must not continue a longer number ("4111 1111 1111" inside a 16-digit card).
_NOT_AFTER_NUMBER = f"(?<![0-9０-９])(?<![0-9０-９]{_SEP})"
_NOT_BEFORE_NUMBER = f"(?!{_SEP}?[0-9０-９])"

_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")

# IPv6 in every form of RFC 4291 / 5952: full, compressed (::), and with an IPv4 tail.
_X = "[0-9A-Fa-f]{1,4}"
_V4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_IPV6 = "|".join((  # the forms with an IPv4 tail first: "::ffff:192.0.2.1" is one address, not "::ffff:192"
    f"(?:{_X}:){{6}}{_V4}", f"::(?:ffff(?::0{{1,4}})?:)?{_V4}", f"(?:{_X}:){{1,5}}:{_V4}",
    f"(?:{_X}:){{7}}{_X}", f"(?:{_X}:){{1,7}}:(?!:)",
    *(f"(?:{_X}:){{1,{6 - n}}}(?::{_X}){{1,{n + 1}}}" for n in range(6)),
    f":(?::{_X}){{1,7}}",
))  # "::" alone (the unspecified address) is no one's
# Words that say a number is no one's personal data: a tracking or serial number, an order code, a version.
_KEEP_CONTEXT = re.compile(  # a whole word ("ver", not the end of "however"; "v", not of "Server")
    r"(?<![A-Za-z])(?:伝票番号|追跡番号|お問い?合わせ番号|問い?合わせ番号|配送番号|製造番号|シリアル(?:番号|ナンバー)?|型番|品番|注文番号|"
    r"受付番号|バージョン|tracking(?: number| no\.?| #| id)?|serial(?: number| no\.?)?|s/n|sn|order(?: number| no\.?| "
    r"id| #)?|"
    r"ticket(?: number| no\.?| #)?|version|ver\.?|build|v)[\s:：#＃.-]{0,3}$", re.IGNORECASE)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text.translate(_FULL_WIDTH))


def luhn_valid(number: str) -> bool:
    """Tells whether a card number passes the Luhn check: luhn_valid('4111 1111 1111 1111') -> True."""
    digits = [int(d) for d in _digits(number)]
    # Card numbers never start with 0 (the issuer's industry digit); "0000..." passes Luhn trivially.
    if not 13 <= len(digits) <= 19 or digits[0] == 0 or len(set(digits)) == 1:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def my_number_valid(number: str) -> bool:
    """Tells whether 12 digits form a valid My Number (individual number) check digit.

    The check digit is 11 - (sum of P_n * Q_n mod 11), or 0 when that remainder is 0 or 1, with
    P_n the n-th digit from the right of the first 11 and Q_n = n + 1 (n <= 6) or n - 5.
    >>> my_number_valid("123456789018")
    True
    """
    digits = _digits(number)
    if len(digits) != 12:
        return False
    body = [int(d) for d in digits[:11]]
    total = sum(p * (n + 1 if n <= 6 else n - 5) for n, p in enumerate(reversed(body), start=1))
    remainder = total % 11
    expected = 0 if remainder <= 1 else 11 - remainder
    return expected == int(digits[11])


def _ipv4_valid(text: str) -> bool:
    return all(int(part) <= 255 for part in text.split("."))


@dataclass(frozen=True)
class PiiRule:
    """One kind of personal data: its placeholder, its pattern and an optional validity check."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None


# Order matters: longer digit runs (cards, My Number) are claimed before phone patterns see them.
BUILTIN_RULES: tuple[PiiRule, ...] = (
    PiiRule("EMAIL",
            re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")),
    PiiRule("CARD", re.compile(rf"(?<![A-Za-z]){_NOT_AFTER_NUMBER}{_D}(?:{_SEP}?{_D}){{12,18}}{_NOT_BEFORE_NUMBER}"),
            luhn_valid),
    PiiRule(
        "MY_NUMBER",
        re.compile(rf"{_NOT_AFTER_NUMBER}{_D}{{4}}{_SEP}?{_D}{{4}}{_SEP}?{_D}{{4}}{_NOT_BEFORE_NUMBER}"),
        my_number_valid,
    ),
    PiiRule("POSTAL_CODE", re.compile(rf"〒\s*{_D}{{3}}{_H}?{_D}{{4}}")),
    PiiRule("IP", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), _ipv4_valid),
    PiiRule("IP", re.compile(rf"(?<![0-9A-Za-z:.])(?:{_IPV6})(?:%[0-9A-Za-z]+)?(?![0-9A-Za-z:]|\.\d)")),
    PiiRule(
        "PHONE",
        re.compile(
            # +81 90-1234-5678
            rf"(?:\+|＋){_D}{{1,3}}{_SEP}?\(?{_D}{{1,4}}\)?(?:{_SEP}?{_D}{{2,4}}){{2,3}}(?![0-9０-９])"
            rf"|(?<![0-9０-９]){_D}{{2,5}}{_H}{_D}{{1,4}}{_H}{_D}{{3,4}}(?![0-9０-９])"  # 03-1234-5678
            rf"|[(（]{_D}{{2,5}}[)）]{_SEP}?{_D}{{1,4}}{_H}{_D}{{3,4}}(?![0-9０-９])"  # (03) 1234-5678, （03）1234-5678
            # 03(1234)5678, 045（123）4567
            rf"|(?<![0-9０-９]){_D}{{2,5}}[(（]{_D}{{1,4}}[)）]{_D}{{3,4}}(?![0-9０-９])"
            rf"|(?<![0-9０-９])0{_D}{{9,10}}(?![0-9０-９])"  # 09012345678
        ),
    ),
)


@dataclass
class PiiScrubber:
    """Redacts personal data; counts what it found per kind.

    >>> PiiScrubber().redact("電話: 090-1234-5678 / taro@example.jp")
    '電話: [PHONE] / [EMAIL]'
    """

    custom: dict[str, str] = field(default_factory=dict)
    allow: Iterable[str] = ()
    names: tuple[str, ...] = ()  # known customer names (an export's requester fields): redacted wherever they occur
    ner: str = "off"  # data.pii_ner: a model of data_tools/pii_ner.py that runs after the rules, or off
    found: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        extra = tuple(PiiRule(kind.upper(), re.compile(pattern)) for kind, pattern in self.custom.items())
        self.custom_rules, self.rules = extra, BUILTIN_RULES
        self.allowed = frozenset(self.allow)
        self._combined: dict[tuple[int, ...], re.Pattern[str]] = {}
        self._ner = None if self.ner == "off" else ner_redactor(self.ner)

    def scan(self, text: str) -> Counter:
        """Returns how many of each kind `text` holds, without changing it or the running counts."""
        _, kinds = self._replace(text)
        return Counter(kinds)

    def redact(self, text: str) -> str:
        """Returns `text` with every finding replaced by its placeholder, and adds to `found`."""
        redacted, kinds = self._replace(text)
        self.found.update(kinds)
        return redacted

    def redact_and_count(self, text: str, names: tuple[str, ...] = ()) -> tuple[str, Counter]:
        """Returns (redacted text, kinds found) in one pass, leaving `found` alone; `names` are
        people this text's export names (its requester), redacted wherever they occur."""
        return self._replace(text, names)

    def _replace(self, text: str, names: tuple[str, ...] = ()) -> tuple[str, Counter]:
        # names and addresses first (data_tools/pii_people.py)
        text, people = redact_people(text, self.names + names if names else self.names)
        if self._ner is not None:
            text, named = self._ner(text)
            people = people + named if named else people
        if not self.custom_rules and not _ANY_HINT.search(text):
            return text, people if people else _NOTHING  # shared and never changed: most texts hold no personal data
        kinds: Counter = Counter(people)
        if self.custom_rules:  # user patterns run first, one by one (they may use backreferences)
            text = _apply(self.custom_rules, text, self.allowed, kinds)
        if "@" in text:
            text = _redact_emails(text, self.allowed, kinds)
        possible = _possible_rules(text)
        if not possible:
            return text, kinds
        pattern = self._combined.get(possible)
        if pattern is None:  # one scan for every kind the text can hold: rule i is group g{i}
            # The lookahead lets the scan skip, in C, every position no kind can start at (kana, spaces...).
            body = "|".join(f"(?P<g{i}>{self.rules[i].pattern.pattern})" for i in possible)
            starts = "0-9０-９+＋(（〒" + ("A-Fa-f:" if IPV6_RULE in possible else "")
            pattern = re.compile(f"(?=[{starts}])(?:{body})")
            self._combined[possible] = pattern
        return pattern.sub(lambda match: self._substitute(match, kinds), text), kinds

    def _substitute(self, match: re.Match[str], kinds: Counter) -> str:
        index = int(match.lastgroup[1:])  # type: ignore[index]
        rule, value = self.rules[index], match.group(0)
        if value in self.allowed or _KEEP_CONTEXT.search(match.string, max(0, match.start() - 24), match.start()):
            return value
        if rule.check and not rule.check(value):
            return _apply(self.rules[index + 1 :], value, self.allowed, kinds)  # a failed card may be a phone
        kinds[rule.kind] += 1
        return f"[{rule.kind}]"



IPV6_RULE = 5
_NOTHING: Counter = Counter()
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_DOMAIN = re.compile(r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")


def _redact_emails(text: str, allowed: frozenset[str], kinds: Counter) -> str:
    """Replaces e-mail addresses, looking only around each @ (a scan from every letter is slow)."""
    pieces, done = [], 0
    for at in (match.start() for match in re.finditer("@", text)):
        start = at
        while start > max(done, at - 64) and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        domain = _DOMAIN.match(text, at + 1)
        if start == at or not domain:
            continue
        value = text[start : domain.end()]
        if value in allowed:
            continue
        pieces.append(text[done:start] + "[EMAIL]")
        done = domain.end()
        kinds["EMAIL"] += 1
    return "".join(pieces) + text[done:] if pieces else text


def _possible_rules(text: str) -> tuple[int, ...]:
    """Returns the built-in rules whose shortest match could occur in `text` (cheap tests first).

    Scanning with every pattern at every position is the data stage's cost; most texts can be
    ruled out by their digit count or a missing @, 〒, dot or colon.
    """
    digits = sum(map(text.count, "0123456789"))
    if digits < 13 and not text.isascii():  # 13 decides every test below
        digits += sum(map(text.count, "０１２３４５６７８９"))
    if digits < 4:
        return (5,) if "::" in text or text.count(":") >= 7 else ()  # only IPv6 needs no decimal digits
    return tuple(
        index for index, needed in (
            # 0, EMAIL: found around each @ by _redact_emails
            (1, digits >= 13),  # CARD
            (2, digits >= 12),  # MY_NUMBER
            (3, digits >= 7 and "〒" in text),  # POSTAL_CODE
            (4, text.count(".") >= 3 and _IPV4_HINT.search(text)),  # IPv4 (3 dots: any prose of 3 sentences)
            (5, "::" in text or text.count(":") >= 7),  # IPv6
            (6, digits >= 6 and _PHONE_HINT.search(text)),  # PHONE (6 digits: any text with a date and a price)
        ) if needed
    )


# What every match of a rule contains; most texts with enough digits and dots have none of it.
_IPV4_PART = r"\d\.\d"
# +8, 03-, 03(, (03, 0901234…
_PHONE_PART = r"[+＋][0-9０-９]|[0-9０-９]{2}[-‐－―−ー(（]|[(（][0-9０-９]{2}|0[0-9０-９]{9}"
_IPV4_HINT, _PHONE_HINT = re.compile(_IPV4_PART), re.compile(_PHONE_PART)
_D = "0-9０-９"
_ANY_HINT = re.compile(  # a text without any of these holds no built-in kind: one scan in C decides most texts
    f"[@〒+＋(（:\\d](?:(?<=[@〒])|(?<=\\d)\\.\\d|(?<=[+＋])[{_D}]|(?<=[{_D}])[{_D}][-‐－―−ー(（]|(?<=[(（])[{_D}]{{2}}"
    f"|(?<=0)[{_D}]{{9}}|(?<=[{_D}])(?:{_SEP}?[{_D}]){{11}}|(?<=:)[0-9A-Fa-f]{{1,4}}:|(?<=:):)"
)  # e-mail, postal code, IPv4 (1.2), phone (+8, 03-, (03, 0901234…), 12+ digits (card, My Number), IPv6 (:1:). It
# starts with one character class, so the scanner skips in C to the characters a match can start at; each branch
# then checks that character (look-behind) and what follows: the same matches as these parts after a look-ahead.


def _apply(rules: Iterable[PiiRule], text: str, allowed: frozenset[str], kinds: Counter) -> str:
    """Applies rules one after another (the slow, general path)."""
    for rule in rules:
        def substitute(match: re.Match[str], rule: PiiRule = rule) -> str:
            value = match.group(0)
            if value in allowed or (rule.check and not rule.check(value)):
                return value
            kinds[rule.kind] += 1
            return f"[{rule.kind}]"

        text = rule.pattern.sub(substitute, text)
    return text
