"""Language detection, Japanese-aware word tokens and answer normalization for the metrics.

    python -c "from tunebot.text import tokenize_words; print(tokenize_words('返品できます。', 'ja'))"

Metrics and retrieval need words, and Japanese has no spaces: it is segmented with MeCab
(fugashi + unidic-lite). Where MeCab cannot load, Japanese falls back to single characters
(latin and digit runs inside it stay whole), which keeps scores meaningful but not comparable
with MeCab-based ones: `ja_tokenizer_name()` says which one is in use, and scores record it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

# A line is Japanese when at least this share of its letters is Japanese script. Kana and kanji
# carry about a word's worth of meaning in 1-2 characters against ~5 letters per English word,
# so a Japanese sentence with a URL or a product name stays "ja" and an English sentence quoting
# one Japanese word stays "en".
JA_LETTER_SHARE = 0.2

_JA_RANGES = (
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # hiragana, katakana (incl. ー)
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x20000, 0x2FA1F),  # CJK extensions B-F and compatibility supplement
)

# Numbers keep their decimal point ("2.5"); words keep inner apostrophes ("wasn't").
_EN_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:'[^\W_]+)*")
# A number with its inner separators (5.00, 10:00, 2026/3/31, 1-2) is one token of its own, apart
# from a unit after it ("15kg" -> 15, kg; a code led by latin letters, "abc123", stays whole);
# thousands separators go (5,500 -> 5500), others stay, so 500 != 5.00 and 15 != 1.5.
_NUMBER = re.compile(r"(?<![a-z0-9])\d+(?:[.,:/-]\d+)*")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Character fallback for Japanese: latin/digit runs stay whole, every other letter is a token.
_CHAR_FALLBACK = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*|[^\W_]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_SPACES = re.compile(r"\s+")
_LETTERS = re.compile(r"[^\W\d_]+")  # runs: counting them (not single letters) makes 6x fewer objects


def _letter_class(ranges: tuple[tuple[int, int], ...]) -> re.Pattern[str]:
    """Returns a pattern of runs of the letters (str.isalpha) inside the ranges, built once."""
    parts, start, previous = [], None, None
    codes = [code for low, high in ranges if high < 0x10000 for code in range(low, high + 1) if chr(code).isalpha()]
    for code in codes + [-1]:
        if start is not None and code != previous + 1:
            parts.append(f"{chr(start)}-{chr(previous)}")
            start = None
        if start is None:
            start = code
        previous = code
    wide = "".join(f"{chr(low)}-{chr(high)}" for low, high in ranges if high >= 0x10000)
    return re.compile("[" + "".join(parts) + wide + "]+")


_JA_LETTERS = _letter_class(_JA_RANGES)


def is_japanese_char(char: str) -> bool:
    """Says whether one character is kana or a CJK ideograph: is_japanese_char('返') -> True."""
    code = ord(char)
    return any(low <= code <= high for low, high in _JA_RANGES)


def detect_lang(text: str) -> str:
    """Returns "ja" when Japanese script makes up a meaningful share of the letters, else "en".

    detect_lang('返品できますか？') -> 'ja'; detect_lang('Can I return it?') -> 'en'.
    Text without letters (digits, punctuation, empty) counts as "en".
    """
    # Regex scans run in C: a per-character Python loop made this the data stage's bottleneck.
    if text.isascii():
        return "en"
    japanese = len(text) - len(_JA_LETTERS.sub("", text))  # the characters its runs cover (no list of runs)
    if japanese >= JA_LETTER_SHARE * len(text):
        return "ja"  # letters <= characters, so the share of letters is at least this
    letters = len(text) - len(_LETTERS.sub("", text))
    return "ja" if letters and japanese / letters >= JA_LETTER_SHARE else "en"


def line_langs(references: list[str], langs: list[str] | None = None, lang: str = "auto") -> list[str]:
    """Returns one language per line: `langs` checked, else `lang` for all, else detected.

    line_langs(['返品できます。', 'Yes.']) -> ['ja', 'en']; line_langs(['Yes.'], lang='ja') -> ['ja'].
    Detection reads the reference, not the prediction: an untuned model may answer a Japanese
    question in broken English, and it must still be scored as Japanese.
    """
    if langs is None:
        if lang == "auto":
            return [detect_lang(reference) for reference in references]
        return [_check_lang(lang)] * len(references)
    if len(langs) != len(references):
        raise ValueError(f"got {len(langs)} languages for {len(references)} lines")
    return [_check_lang(line_lang) for line_lang in langs]


@functools.lru_cache(maxsize=1)
def _mecab_tagger() -> Any:
    """Loads fugashi's MeCab tagger with unidic-lite once; None where either is missing."""
    try:
        import fugashi
        import unidic_lite

        # Naming the dictionary avoids picking up a full `unidic` package that was installed
        # but never downloaded, or a system mecabrc pointing elsewhere.
        return fugashi.Tagger(f'-d "{unidic_lite.DICDIR}" -r /dev/null')
    except (ImportError, RuntimeError):
        return None


def mecab_available() -> bool:
    """Says whether Japanese is segmented with MeCab (True) or falls back to characters."""
    return _mecab_tagger() is not None


def ja_tokenizer_name() -> str:
    """Names the Japanese word tokenizer in use, for recording next to scores."""
    return "mecab-unidic" if mecab_available() else "char"


def word_tokenizer_name(lang: str) -> str:
    """Names the word tokenizer `tokenize_words` uses for `lang`: 'mecab-unidic', 'char' or 'words'."""
    return ja_tokenizer_name() if _check_lang(lang) == "ja" else "words"


def _check_lang(lang: str) -> str:
    if lang not in ("ja", "en"):
        raise ValueError(f"unsupported language {lang!r}: expected 'ja' or 'en'")
    return lang


def _is_punctuation_or_symbol(token: str) -> bool:
    return all(unicodedata.category(char)[0] in "PSZ" for char in token)


def tokenize_words(text: str, lang: str) -> list[str]:
    """Splits text into lower-cased word tokens for ROUGE and token F1, punctuation dropped.

    tokenize_words("It wasn't me.", 'en') -> ['it', "wasn't", 'me'];
    tokenize_words('返品は３０日以内。', 'ja') -> ['返品', 'は', '30', '日', '以内'].
    lang is "ja", "en" or "auto" (detected from the text).
    """
    if lang == "auto":
        lang = detect_lang(text)
    _check_lang(lang)
    # NFKC folds full-width latin/digits and half-width katakana, so 'ＡＢＣ１２３' == 'abc123'.
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    tokens, position = [], 0
    for number in _NUMBER.finditer(text):
        tokens += _word_tokens(text[position:number.start()], lang)
        value = number.group()
        tokens.append(value.replace(",", "") if _THOUSANDS.fullmatch(value) else value)
        position = number.end()
    return tokens + _word_tokens(text[position:], lang)


def _word_tokens(text: str, lang: str) -> list[str]:
    if not text.strip():
        return []
    if lang == "en":
        return _EN_WORD.findall(text)
    tagger = _mecab_tagger()
    if tagger is None:
        return _CHAR_FALLBACK.findall(text)
    surfaces = (word.surface for word in tagger(text))
    return [token for token in surfaces if token and not _is_punctuation_or_symbol(token)]


def normalize_answer(text: str) -> str:
    """Normalizes an answer for exact match: NFKC, lower case, no punctuation, tidy spaces.

    normalize_answer('Ｙｅｓ,  we can!') -> 'yes we can'
    normalize_answer('はい、 できます。') -> 'はいできます'

    Spaces next to Japanese characters are removed (Japanese is written without them); spaces
    between latin words become one. Like SQuAD, punctuation is deleted, not turned into a space.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(char for char in text if unicodedata.category(char)[0] not in "PS")
    words = _SPACES.split(text.strip())
    if not words or words == [""]:
        return ""
    joined = words[0]
    for word in words[1:]:
        japanese_boundary = is_japanese_char(joined[-1]) or is_japanese_char(word[0])
        joined += word if japanese_boundary else " " + word
    return joined


def word_edges(text: str) -> tuple[set[int], set[int]]:
    """Where MeCab's words start and end in a Japanese text (character offsets); every offset without MeCab.

    word_edges('荷物です') -> ({0, 2}, {2, 4}): a term may match 「荷物」 but not the 「物」 inside it.
    """
    tagger = _mecab_tagger()
    if tagger is None:
        return set(range(len(text) + 1)), set(range(len(text) + 1))
    starts, ends, position = set(), set(), 0
    for word in tagger(text):
        found = text.find(word.surface, position)
        if found < 0 or not word.surface:
            continue
        starts.add(found)
        ends.add(found + len(word.surface))
        position = found + len(word.surface)
    return starts, ends


# Parts of speech (UniDic pos1) that carry grammar, not topic: left out of retrieval tokens.
_JA_FUNCTION_POS = {"助詞", "助動詞", "補助記号", "記号", "空白", "接頭辞", "接尾辞"}
# Light verbs that follow almost any noun (する, ある, いる, なる, できる) and say nothing about it.
_JA_LIGHT_LEMMAS = {"為る", "有る", "居る", "成る", "出来る"}
# What the English stopwords drop, in Japanese: question words (どこ, なに, いつ, どう, どちら, だれ,
# なぜ) and the request forms of "please" (ください, いただく). Concept terms still see the text.
_JA_STOP_LEMMAS = {"何処", "何", "何時", "如何", "どう", "何方", "誰", "何故", "下さる", "頂く"}
_EN_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being am do does did "
    "i me my we our you your it its this that these those can could would should will shall may might must "
    "have has had please there here what which who whom how when where why".split()
)


def retrieval_tokens(text: str, lang: str) -> list[str]:
    """Content-word tokens for search: Japanese lemmas without particles/auxiliaries, English words
    without stopwords (lower-cased, NFKC). Falls back to tokenize_words where MeCab is missing.

    retrieval_tokens('商品を返品したいのですが', 'ja') -> ['商品', '返品'];
    retrieval_tokens('How can I return it?', 'en') -> ['return'].
    """
    if lang == "auto":
        lang = detect_lang(text)
    if _check_lang(lang) == "en":
        return [word for word in tokenize_words(text, "en") if word not in _EN_STOPWORDS]
    tagger = _mecab_tagger()
    if tagger is None:
        return tokenize_words(text, "ja")
    text = unicodedata.normalize("NFKC", text).lower()
    tokens = []
    for word in tagger(text):
        lemma = getattr(word.feature, "lemma", None) or word.surface
        if (word.feature.pos1 in _JA_FUNCTION_POS or lemma in _JA_LIGHT_LEMMAS or lemma in _JA_STOP_LEMMAS
                or _is_punctuation_or_symbol(word.surface)):
            continue
        tokens.append(lemma.split("-")[0].lower())  # UniDic lemmas may carry a gloss: "パスワード-password"
    return tokens
