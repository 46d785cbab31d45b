"""Text clean-up for questions and answers: whitespace, HTML, Unicode form, boilerplate, non-answers.

    python -c "from data_tools.normalize import normalize_unicode; print(normalize_unicode('ｶﾀｶﾅ ＡＢＣ？', 'nfkc-ja'))"

Template placeholders such as `{{Order Number}}`, `{name}`, `%(name)s`, `[[URL]]` or `<<氏名>>` are
kept verbatim through every step: they are what the model must learn to reproduce.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

from data_tools.html_text import html_to_text

_SPACE_RUN = re.compile(r"[ \t\u3000\u00a0]+")
_BLANK_RUN = re.compile(r"\n{3,}")
PLACEHOLDER = re.compile(
    r"\{\{[^{}\n]{1,80}\}\}|\$?\{[A-Za-z_][\w .-]{0,40}\}|%\([A-Za-z_]\w*\)[sdif]|\[\[[^\[\]\n]{1,80}\]\]"
    r"|<<[^<>\n]{1,80}>>|｛｛[^｛｝\n]{1,80}｝｝"
)
# Full-width punctuation of Japanese prose: "nfkc-ja" keeps it as written (plain NFKC makes ？ a ?).
_JA_PUNCTUATION = "！？（）：；～"
# Numbered steps as written (①②③, ⑴, ⒈, ❶, ㉑): NFKC would
# glue their digits to the text (「1新しいアドレスを入力2確認…」).
_ENCLOSED = "".join(chr(code)
                    for first, last in ((0x2460, 0x249B), (0x2776, 0x2793), (0x3251, 0x325F), (0x32B1, 0x32BF))
                    for code in range(first, last + 1))
_KEPT = {"nfkc-ja": _JA_PUNCTUATION + _ENCLOSED}  # plain "nfkc" is exactly NFKC
_PROTECT = {form: str.maketrans({char: chr(0xF0000 + index) for index, char in enumerate(kept)})
            for form, kept in _KEPT.items()}
_RESTORE = {form: str.maketrans({chr(0xF0000 + index): char for index, char in enumerate(kept)})
            for form, kept in _KEPT.items()}
_FOLD_PUNCTUATION = [(char, unicodedata.normalize("NFKC", char)) for char in _JA_PUNCTUATION]

# Answers that answer nothing: matched whole, after case folding and trimming punctuation/space.
NON_ANSWERS = (
    r"n/?a|none|null|nil|tbd|tba|todo|to do|pending|test|xxx+|-+|\?+|\.+|see above|see below|same as above",
    r"no answer|no reply|no response|unknown|not sure|i don'?t know",
    r"(please )?(wait|hold on)( a (moment|minute|second))?( please)?|one (moment|minute|second)( please)?",
    r"let me (check|look into|see)( (it|this|that))?( for you)?|i('ll| will) (check|look into (it|this|that)|get back "
    r"to you)( shortly| soon)?",
    r"thank(s| you)( (so|very) much)?( for (contacting us|your patience|waiting|your message|your inquiry))?",
    r"you'?re welcome|is there anything else( i can help( you)? with)?|have a (nice|good|great) day",
    r"(少々|しばらく)?お待ち(ください|くださいませ|いただけますか)|確認(します|いたします|してまいります|させていただきます)",
    r"お調べ(します|いたします)|(担当者?に)?確認の上(、)?(折り返し)?ご?連絡(します|いたします)|折り返し(ご)?連絡(します|いたします)",
    r"(お問い?合わ?せ|ご連絡|ご利用)?(いただき)?(誠に)?ありがとうございま(す|した)|どういたしまして",
    r"未定|なし|特になし|不明|わかりません|分かりません|回答なし|該当なし|他にご不明な点はございますか|以上です",
)


def _trim(text: str) -> str:
    """Strips non-alphanumeric characters from both ends, as `re.sub(r"^[\\W_]+|[\\W_]+$", "", text)`
    would (re's \\w is str.isalnum() or "_"), without that regex's try at every position.

    >>> _trim("「少々お待ちください。」")
    '少々お待ちください'
    """
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def clean_text(value: Any) -> str:
    """Trims a field and tidies spaces; keeps line breaks, and one blank line between paragraphs.

    >>> clean_text("  Hello\\r\\n  world  \\n\\n\\n\\nBye")
    'Hello\\nworld\\n\\nBye'
    """
    text = "" if value is None else str(value)
    if text == text.strip() and not (  # what the tidying below would change; substring tests beat a regex
        "  " in text or "\t" in text or "\u3000" in text or "\u00a0" in text or "\r" in text
        or " \n" in text or "\n " in text or "\n\n\n" in text
    ):
        return text
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACE_RUN.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")


def normalize_unicode(text: str, form: str) -> str:
    """Applies the configured Unicode form: nfkc, nfkc-ja (NFKC keeping ！？（）：；～), nfc or none.
    nfkc-ja (the default) also keeps numbered steps as written (①②③, ⑴, ❶).

    >>> normalize_unicode("ＡＣＭＥの返品は３０日以内ですか？ｶﾀｶﾅ", "nfkc-ja")
    'ACMEの返品は30日以内ですか？カタカナ'
    """
    if form == "none" or text.isascii():
        return text
    if form.startswith("nfkc") and not _nfkc_changes(form).search(text):
        return text
    if form in _PROTECT:
        return unicodedata.normalize("NFKC", text.translate(_PROTECT[form])).translate(_RESTORE[form])
    return unicodedata.normalize(form.upper(), text)


@functools.cache
def _nfkc_changes(form: str) -> re.Pattern[str]:
    """Returns a pattern of the characters NFKC would change (or compose), so clean text skips it.

    Built once, on first use (~0.5 s): the BMP characters NFKC maps elsewhere plus combining marks
    and the kana voicing marks (NFKC composes them with the preceding letter).
    """
    kept = _KEPT.get(form, "")
    changing = [
        code for code in range(0x80, 0x10000)
        if chr(code) not in kept and not 0xD800 <= code < 0xE000
        and (unicodedata.normalize("NFKC", chr(code)) != chr(code) or unicodedata.combining(chr(code))
             or code in (0x3099, 0x309A) or 0x1100 <= code <= 0x11FF)
    ]
    ranges, start = [], changing[0]
    for previous, code in zip(changing, changing[1:] + [None]):
        if code != previous + 1:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(previous))}" if previous > start
                          else re.escape(chr(start)))
            start = code
    return re.compile(f"[{''.join(ranges)}]|[\U00010000-\U0010FFFF]")


class TextCleaner:
    """Turns a raw field into training text: whitespace, HTML, Unicode form, answer boilerplate.

    >>> TextCleaner(html=True, form="nfkc-ja", boilerplate=[r"^Best regards.*$"]).answer(
    ...     "<p>Yes&nbsp;{{Order Number}}</p>\\nBest regards, Ann")
    'Yes {{Order Number}}'
    """

    def __init__(self, html: bool, form: str, boilerplate: list[str],
                 non_answers: tuple[str, ...] | list[str] = ()) -> None:
        self.html, self.form = html, form
        self.boilerplate = [re.compile(pattern, re.MULTILINE) for pattern in boilerplate]
        self.non_answer = re.compile("|".join(f"(?:{pattern})" for pattern in non_answers),
                                     re.IGNORECASE) if non_answers else None

    def field(self, value: Any) -> str:
        """Returns the cleaned text of a question (or any field)."""
        text = clean_text(value)
        if not text:
            return text
        kept: list[str] = []
        if "{" in text or "%(" in text or "[[" in text or "<<" in text or "｛" in text:
            text = PLACEHOLDER.sub(lambda match: kept.append(match.group(0)) or chr(0x100000 + len(kept) - 1), text)
        if self.html and ("<" in text or "&" in text):
            text = clean_text(html_to_text(text))
        text = normalize_unicode(text, self.form)
        for index, placeholder in enumerate(kept):
            text = text.replace(chr(0x100000 + index), placeholder)
        return text

    def answer(self, value: Any) -> str:
        """Returns the cleaned text of an answer, with the configured boilerplate removed."""
        text = self.field(value)
        for pattern in self.boilerplate:
            text = clean_text(pattern.sub("", text))
        return text

    def is_non_answer(self, answer: str) -> bool:
        """Says whether an answer is a placeholder or stalling phrase rather than an answer.

        >>> TextCleaner(False, "none", [], NON_ANSWERS).is_non_answer("少々お待ちください。")
        True
        """
        trimmed = _trim(answer.casefold())
        return not trimmed or bool(self.non_answer and self.non_answer.fullmatch(trimmed))


def fold(text: str) -> str:
    """Returns the text up to width, case and spacing: fold("Ａ b") == fold("ab").

    That is NFKC, casefold, no whitespace; NFKC runs only when it would change something (clean
    text is in NFKC already but for the full-width ！？（）… that nfkc-ja keeps: 9 -> 2 us a text).
    """
    if not text.isascii():
        for wide, narrow in _FOLD_PUNCTUATION:
            if wide in text:
                text = text.replace(wide, narrow)
        if _nfkc_changes("nfkc-ja").search(text):
            text = unicodedata.normalize("NFKC", text)
    return "".join(text.casefold().split())
