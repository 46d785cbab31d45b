"""The data stage's fast paths give what the plain versions they replaced give, on random text."""

from __future__ import annotations

import json
import random

import re

import pytest

from data_tools.jsonio import dumps_line, loads
from data_tools.normalize import _trim, clean_text
from tunebot import text

GOLDEN_BANDS = "d04c5c11b0083b1e"  # rensa 0.5.0 (ALGORITHM_VERSION 2), NUM_PERM 128, SEED 20261202, LAYOUTS 10 + 4

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


def test_lsh_bands_find_the_pairs_a_brute_force_search_finds() -> None:
    """rensa's signatures, cut into the stage's bands, give (nearly) every text with an earlier 0.9-similar
    one such a partner (what dedupe needs), and join (nearly) every 0.6-similar pair into one cluster."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from data_tools.matching import bucket_pairs, layout_bands, normalize_for_matching, pair_similarity, sketch

    rng = random.Random(8)
    base = _random_texts(150, 60, seed=8)
    texts = base + ["".join(char if rng.random() > rate else "ー" for char in value) for value, rate in
                    zip(base, [0.02, 0.08, 0.15] * 50)]
    values, offsets, bands, _ = sketch([normalize_for_matching(text) for text in texts])
    lengths = np.diff(offsets)
    every = np.array([(a, b) for a in range(len(texts)) for b in range(a + 1, len(texts))])
    truth = pair_similarity(values, offsets[:-1], lengths, every)
    for layout, threshold, least in (("duplicate", 0.9, 0.97), ("leakage", 0.6, 0.85)):
        columns = list(layout_bands()[layout])
        band = np.repeat(np.array(columns, dtype=np.uint8)[None, :], len(texts), axis=0)
        ordinal = np.repeat(np.arange(len(texts))[:, None], len(columns), axis=1)
        found = bucket_pairs(band.ravel(), bands[:, columns].ravel(), ordinal.ravel())
        found = found[pair_similarity(values, offsets[:-1], lengths, found) >= threshold]
        wanted = every[truth >= threshold]
        if layout == "duplicate":
            hit = len(set(wanted[:, 1].tolist()) & set(found[:, 1].tolist()))
            wanted = np.unique(wanted[:, 1])
        else:
            graph = coo_matrix((np.ones(len(found)), (found[:, 0], found[:, 1])), shape=(len(texts), len(texts)))
            labels = connected_components(graph, directed=False)[1]
            hit = int((labels[wanted[:, 0]] == labels[wanted[:, 1]]).sum())
        assert len(wanted) > 20 and hit >= least * len(wanted), (layout, hit, len(wanted))


def test_the_signature_estimate_never_rules_out_a_similar_pair() -> None:
    """The match tasks skip the exact check of a candidate whose signatures' estimate is more than MARGIN
    under the threshold: on texts at every similarity, no pair at 0.9 (or 0.6) or above is that far under,
    and nearly every dissimilar pair is."""
    import numpy as np

    from data_tools.matching import normalize_for_matching, pair_similarity, sketch
    from data_tools.pairs import MARGIN

    rng = random.Random(9)
    letters = "abcdefghijklmnopqrstuvwxyzあいうえおかきくけこさしすせそ返品配送注文"
    base = ["".join(rng.choice(letters) for _ in range(rng.randint(30, 90))) for _ in range(60)]
    texts = base + ["".join(char if rng.random() > rate else rng.choice(letters) for char in value)
                    for value in base for rate in (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12)]
    values, offsets, _, signatures = sketch([normalize_for_matching(text) for text in texts])
    every = np.array([(a, b) for a in range(len(texts)) for b in range(a + 1, len(texts))])
    truth = pair_similarity(values, offsets[:-1], np.diff(offsets), every)
    estimate = (signatures[every[:, 0]] == signatures[every[:, 1]]).mean(axis=1)
    for threshold in (0.9, 0.6):
        close = truth >= threshold
        near = close & (truth < threshold + 0.05)
        assert near.sum() > 50 and (estimate[close] >= threshold - MARGIN).all(), threshold
    assert (estimate[truth < 0.5] < 0.9 - MARGIN).mean() > 0.99


def test_rensa_signatures_do_not_change() -> None:
    """The band keys of a fixed text are pinned: a rensa release that changes its sketches shows here."""
    import hashlib

    from data_tools.matching import normalize_for_matching, sketch

    _, _, bands, _ = sketch([normalize_for_matching(text) for text in ("返品できますか？", "Can I return it?", "a")])
    assert hashlib.sha256(bands.tobytes()).hexdigest()[:16] == GOLDEN_BANDS


def test_pair_similarity_matches_a_plain_bottom_k_comparison() -> None:
    """Exact Jaccard for sets holding every n-gram; for truncated ones (long texts), the bottom-k
    estimate: values up to the smaller of the truncated sets' largest, shared / union."""
    import numpy as np

    from data_tools.matching import SKETCH_K, gram_hashes, normalize_for_matching, pair_similarity, sketch

    rng = random.Random(6)
    base = _random_texts(400, 300, seed=6)
    texts = [normalize_for_matching(text) for text in
             base + ["".join(char if rng.random() > 0.05 else "x" for char in value) for value in base]]
    values, offsets, _, _ = sketch(texts)
    pairs = np.array([(i, i + 400) for i in range(400)] + [(rng.randrange(800), rng.randrange(800))
                                                           for _ in range(400)])
    got = pair_similarity(values, offsets[:-1], np.diff(offsets), pairs)
    owner, hashes = gram_hashes(texts)
    sets = [sorted(set((hashes[owner == number] >> np.uint64(32)).tolist())) for number in range(len(texts))]
    k = SKETCH_K
    truncated = 0
    for (a, b), value in zip(pairs.tolist(), got.tolist()):
        limit = min([sketch[k - 1] for sketch in (sets[a], sets[b]) if len(sketch) >= k], default=2**32)
        truncated += limit < 2**32
        left, right = ({v for v in sketch[:k] if v <= limit} for sketch in (sets[a], sets[b]))
        union = len(left | right)
        assert value == (len(left & right) / union if union else 1.0), (a, b)
    assert 20 < truncated < len(pairs)  # both kinds were compared
