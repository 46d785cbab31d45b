"""The data stage's fast paths give what the plain versions they replaced give, on random text."""

from __future__ import annotations

import json
import random
import re

import pytest

from data_tools.jsonio import dumps_line, loads
from data_tools.normalize import _trim, clean_text
from tunebot import text

# Spaces of every kind, line breaks, kana, kanji, full-width and odd letters: where the fast
# paths and the regexes could disagree.
ALPHABET = list("ab Z1_.,!？。、\t\n\r\u3000\u00a0\x0b\x0c\x1c\x85\u2028\u2003あア漢ｱＡéß한Ж𠀋")


def _random_texts(count: int, longest: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest))) for _ in range(count)]


def _regex_clean_text(value: str) -> str:
    """clean_text as it was: a regex decided whether the text needs tidying."""
    if not re.search(r"^\s|\s$|[ \t\u3000\u00a0]{2}|[\t\u3000\u00a0\r]| \n|\n |\n\n\n", value):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t\u3000\u00a0]+", " ", line).strip() for line in value.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _letter_count_lang(value: str) -> str:
    """detect_lang as it was: single letters counted."""
    if value.isascii():
        return "en"
    japanese = len(re.findall(text._JA_LETTERS.pattern[:-1], value))
    if japanese >= text.JA_LETTER_SHARE * len(value):
        return "ja"
    letters = len(re.findall(r"[^\W\d_]", value))
    return "ja" if letters and japanese / letters >= text.JA_LETTER_SHARE else "en"


def test_clean_text_tidies_exactly_what_the_regex_did() -> None:
    for value in _random_texts(20_000, 10, seed=1):
        assert clean_text(value) == _regex_clean_text(value), repr(value)


def test_trim_strips_what_the_regex_stripped() -> None:
    for value in _random_texts(20_000, 8, seed=2):
        assert _trim(value) == re.sub(r"^[\s\W_]+|[\s\W_]+$", "", value), repr(value)


def test_language_from_letter_runs_matches_single_letter_counts() -> None:
    for value in _random_texts(20_000, 30, seed=3):
        assert text.detect_lang(value) == _letter_count_lang(value), repr(value)


def test_json_lines_round_trip_and_fall_back_where_orjson_refuses() -> None:
    record = {"id": "faq-1", "prompt": [{"role": "user", "content": "返品できますか？\n"}], "n": 2**70}
    line = dumps_line(record)  # 2**70 is over orjson's 64 bits: the json fallback writes it
    assert line.endswith(b"\n") and loads(line) == record
    lone = json.loads('"a\\ud800b"')  # a lone surrogate, as json reads "\ud800"
    assert loads(dumps_line({"q": lone})) == {"q": lone}
    assert loads(b'{"x": NaN}')["x"] != loads(b'{"x": NaN}')["x"]  # NaN, as json reads it
    assert dumps_line({"q": "返品"}) == '{"q":"返品"}\n'.encode()  # UTF-8, not \\u escapes


def test_a_broken_line_raises_json_s_error() -> None:
    with pytest.raises(json.JSONDecodeError, match="Unterminated string"):
        loads('{"question": "broken')


# What personal data is made of: digits of both widths, every separator the rules accept, and the
# characters the hints key on (dots, colons, plus, brackets, 〒, @, hex letters).
PII_ALPHABET = list("0123456789０１２３４５６７８９0000111-‐－―−ー 　.:+＋()〒@abcfAF漢あx")


def test_pii_hints_never_hide_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap pre-scans (_ANY_HINT, and the IPv4 and phone hints) only skip texts the rules
    cannot match: the scrubber gives the same text and counts with every pre-scan matching all."""
    from data_tools import pii

    rng = random.Random(4)
    texts = ["".join(rng.choice(PII_ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(20_000)]
    texts += ["tel 03-1234-5678", "+81 90 1234 5678", "(03) 1234-5678", "09012345678", "〒123-4567", "10.0.0.1",
              "4111 1111 1111 1111", "1234 5678 9018", "fe80:0:0:0:0:0:0:1", "a@b.jp", "１２３４５６７８９０１８"]
    fast = [pii.PiiScrubber().redact_and_count(value) for value in texts]
    everything = re.compile("")
    for name in ("_ANY_HINT", "_IPV4_HINT", "_PHONE_HINT"):
        monkeypatch.setattr(pii, name, everything)
    slow = [pii.PiiScrubber().redact_and_count(value) for value in texts]
    assert sum(bool(found) for _, found in slow) > 300  # the random texts do hold findings
    for value, got, wanted in zip(texts, fast, slow):
        assert got == wanted, repr(value)


def test_minhash_signature_is_the_minimum_of_each_hash_function() -> None:
    """The (BINS x grams) layout gives, per text and hash function, min((a * g + b) mod 2**32) mod 2**16."""
    import numpy as np

    from data_tools import dedupe

    rng = random.Random(7)
    long = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz漢字かなカナ") for _ in range(9000))  # past the reused buffer
    texts = _random_texts(3000, 200, seed=5) + [long, long[::-1]]
    signatures, _, _ = dedupe.sketch_batch(texts)
    owner, hashes = dedupe.ngram_hashes(texts)
    multiplier, offset = (part.astype(np.uint64) for part in dedupe._PERMUTATIONS)
    assert (owner == len(texts) - 1).sum() > 6000
    for number in [*range(0, len(texts), 97), len(texts) - 2, len(texts) - 1]:
        grams = np.unique(hashes[owner == number] >> np.uint64(32))  # the 32 bits sketch_batch hashes further
        values = (grams[:, None] * multiplier + offset) & np.uint64(0xFFFFFFFF)
        assert (signatures[number] == (values.min(axis=0) & np.uint64(0xFFFF)).astype(np.uint16)).all(), number


def test_pair_similarity_matches_a_plain_bottom_k_comparison() -> None:
    """Exact Jaccard for sketches holding every n-gram; for truncated ones (long texts), the bottom-k
    estimate: values up to the smaller of the truncated sketches' largest, shared / union."""
    import numpy as np

    from data_tools import dedupe

    rng = random.Random(6)
    base = _random_texts(400, 300, seed=6)
    texts = base + ["".join(char if rng.random() > 0.05 else "x" for char in value) for value in base]
    store = dedupe.SketchStore()
    store.add(texts)
    pairs = np.array([(i, i + 400) for i in range(400)] + [(rng.randrange(800), rng.randrange(800)) for _ in range(400)])
    got = store.similarity(pairs, chunk=150)
    owner, hashes = dedupe.ngram_hashes(texts)
    sets = [sorted(set((hashes[owner == number] >> np.uint64(32)).tolist())) for number in range(len(texts))]
    k = dedupe.SKETCH_K
    truncated = 0
    for (a, b), value in zip(pairs.tolist(), got.tolist()):
        limit = min([sketch[k - 1] for sketch in (sets[a], sets[b]) if len(sketch) >= k], default=2**32)
        truncated += limit < 2**32
        left, right = ({v for v in sketch[:k] if v <= limit} for sketch in (sets[a], sets[b]))
        union = len(left | right)
        assert value == (len(left & right) / union if union else 1.0), (a, b)
    assert 20 < truncated < len(pairs)  # both kinds were compared
