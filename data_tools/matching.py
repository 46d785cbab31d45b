"""Question similarity for dedupe and leakage: character 3-grams, rensa MinHash bands, exact Jaccard.

    python -c "from data_tools.matching import *; v, o = gram_sets(['返品できますか', '返品できますか至急']); \
print(pair_similarity(v, o[:-1], np.diff(o), np.array([[0, 1]])))"

Character n-grams work for Japanese (no spaces) as well as English. Each question gets:
- its 3-gram set as sorted 32-bit hashes (at most SKETCH_K of them: for questions up to ~130
  characters that is the whole set, so a candidate pair's Jaccard similarity is exact);
- a rensa R-MinHash signature (128 values), cut into LSH bands for two layouts: texts that share
  a band are candidate pairs, then checked with their exact similarity.
"""

from __future__ import annotations

import re

import numpy as np

from data_tools.normalize import fold

NUM_PERM = 128
SEED = 20261202  # rensa's seed: fixed, so signatures never depend on the run
# Rows per band: 12 bands of 10 find a 0.9-similar pair with p=0.994, 32 bands of 4 a 0.6-similar one with p=0.988
# (25 of 5: p=0.87 left 11 of Bitext's 452 held-out questions with a 0.6-similar one in train; bench/leakage.py).
LAYOUTS = {"duplicate": 10, "leakage": 4}
WINDOW = 2  # in a crowded bucket each text is paired with its next WINDOW neighbours and the bucket's first text
SKETCH_K = 128
_NON_WORD = re.compile(r"[\W_]+")
_U64 = np.uint64


def normalize_for_matching(text: str) -> str:
    """Folds width, case, spacing and punctuation away: what two near-duplicates still share.

    >>> normalize_for_matching("Ｒｅｔｕｒｎ  it？")
    'returnit'
    """
    return match_text(fold(text))


def match_text(folded: str) -> str:
    """normalize_for_matching of a text already folded (`normalize.fold`)."""
    return _NON_WORD.sub("", folded)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a well-spread 64-bit hash of each element."""
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def gram_hashes(norms: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Returns (text index, 64-bit hash) of every character 3-gram of already normalized texts.

    Three 21-bit code points pack into one integer before hashing; a text shorter than 3 characters
    is padded, so every text has at least one n-gram.
    """
    norms = [norm if len(norm) >= 3 else norm + "\x01" * (3 - len(norm)) for norm in norms]
    lengths = np.fromiter(map(len, norms), dtype=np.int64, count=len(norms))
    codes = np.frombuffer("".join(norms).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    owner = np.repeat(np.arange(len(norms)), lengths)
    inside = owner[:-2] == owner[2:]
    grams = (codes[:-2] << _U64(42)) | (codes[1:-1] << _U64(21)) | codes[2:]
    return owner[:-2][inside], _mix(grams[inside])


def sketch(norms: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (bottom-k 3-gram sets as sorted uint32 values, each text's offset, LSH band keys, signatures).

    The band keys are (texts, bands of every layout) uint64: rensa's signature, SEED and NUM_PERM
    fixed, each band's values hashed to one key. The signatures keep 8 bits of each value: their
    share of equal values estimates the similarity (biased up by (1 - J) / 256: negligible).
    """
    import rensa

    if not norms:
        bands = sum(NUM_PERM // rows for rows in LAYOUTS.values())
        return (np.zeros(0, dtype=np.uint32), np.zeros(1, dtype=np.int64), np.zeros((0, bands), dtype=np.uint64),
                np.zeros((0, NUM_PERM), dtype=np.uint8))
    keyed, first, values, offsets = _sets(norms, SKETCH_K)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        (keyed & _U64(0xFFFFFFFF)), first.astype(_U64), NUM_PERM, SEED)
    signatures = np.array(matrix.to_rows(), dtype=np.uint64).reshape(len(norms), NUM_PERM)
    return values, offsets, band_keys(signatures), signatures.astype(np.uint8)


def gram_sets(norms: list[str], k: int = SKETCH_K) -> tuple[np.ndarray, np.ndarray]:
    """Returns the texts' 3-gram sets, at most `k` values each (the smallest), as (values, offsets)."""
    return _sets(norms, k)[2:]


def _sets(norms: list[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (distinct (text, gram) keys, each text's first key, bottom-k values, their offsets)."""
    owner, hashes = gram_hashes(norms)
    keyed = np.sort((owner.astype(_U64) << _U64(32)) | (hashes >> _U64(32)))
    keyed = keyed[np.concatenate([[True], keyed[1:] != keyed[:-1]])] if len(keyed) else keyed  # one per distinct gram
    text = (keyed >> _U64(32)).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(np.bincount(text, minlength=len(norms)))])  # text is sorted
    kept = np.arange(len(keyed)) - first[text] < k
    values = (keyed[kept] & _U64(0xFFFFFFFF)).astype(np.uint32)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(text[kept], minlength=len(norms)))]).astype(np.int64)
    return keyed, first, values, offsets


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """Returns one key per band of every layout: (texts, 12 + 32) uint64, a layout's bands in order."""
    keys = []
    for rows in LAYOUTS.values():
        for band in range(NUM_PERM // rows):
            key = np.full(len(signatures), band + 1, dtype=np.uint64)
            for column in range(band * rows, (band + 1) * rows):
                key = _mix(key ^ signatures[:, column])
            keys.append(key)
    return np.stack(keys, axis=1) if keys else np.zeros((0, 0), dtype=np.uint64)


def layout_bands() -> dict[str, range]:
    """Returns the columns of `band_keys` that belong to each layout."""
    bands, start = {}, 0
    for name, rows in LAYOUTS.items():
        bands[name] = range(start, start + NUM_PERM // rows)
        start += NUM_PERM // rows
    return bands


def bucket_pairs(band: np.ndarray, key: np.ndarray, ordinal: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Returns (a, b) candidate pairs, a < b, of records that share a band key (once per band).

    Each record is paired with its next `window` neighbours in the bucket (by ordinal) and with the
    bucket's first record, so a crowded bucket costs O(n), not O(n²).
    """
    order = np.argsort(key, kind="stable") if len(band) and (band == band[0]).all() and (np.diff(ordinal) > 0).all() \
        else np.lexsort((ordinal, key, band))  # one band, ordinals ascending: a stable sort by key is enough
    band, key, ordinal = band[order], key[order], ordinal[order]
    same = lambda step: (band[:-step] == band[step:]) & (key[:-step] == key[step:])  # noqa: E731
    pairs = [np.stack([ordinal[:-step][same(step)], ordinal[step:][same(step)]], axis=1)
             for step in range(1, window + 1) if len(ordinal) > step]
    if len(ordinal):
        starts = np.flatnonzero(np.concatenate([[True], (band[1:] != band[:-1]) | (key[1:] != key[:-1])]))
        first = np.repeat(starts, np.diff(np.concatenate([starts, [len(key)]])))
        far = np.flatnonzero(np.arange(len(key)) - first > window)
        pairs.append(np.stack([ordinal[first[far]], ordinal[far]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def pair_similarity(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pairs: np.ndarray,
                    k: int = SKETCH_K) -> np.ndarray:
    """Returns the 3-gram Jaccard similarity of each (i, j) pair of sets stored as sorted runs of `values`.

    Exact while both sets are whole (under SKETCH_K grams): the intersection is the product of two
    rows of a sparse 0/1 matrix (scipy, in C). A truncated (bottom-k) set only speaks for values up
    to its largest one, so those pairs are compared below the smaller limit.
    """
    if len(pairs) == 0:
        return np.zeros(0)
    from scipy.sparse import csr_matrix

    out = np.empty(len(pairs))
    whole = (lengths[pairs] < k).all(axis=1)
    if whole.any():
        used = np.unique(pairs[whole])
        sizes = lengths[used]
        local = np.searchsorted(used, pairs[whole])
        columns = values[np.repeat(starts[used], sizes) + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes,
                sizes)]
        matrix = csr_matrix((np.ones(len(columns), dtype=np.float32), columns.astype(np.int64),
                             np.concatenate([[0], np.cumsum(sizes)])), shape=(len(used), 1 << 32))
        shared = np.asarray(matrix[local[:, 0]].multiply(matrix[local[:, 1]]).sum(axis=1)).ravel()
        union = sizes[local[:, 0]] + sizes[local[:, 1]] - shared
        out[whole] = np.where(union > 0, shared / np.maximum(union, 1), 1.0)
    if not whole.all():
        out[~whole] = _bottom_k_similarity(values, starts, lengths, pairs[~whole], k)
    return out


def _bottom_k_similarity(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pairs: np.ndarray,
                         k: int) -> np.ndarray:
    """pair_similarity for pairs with a truncated set: both compared below the smaller set's largest value."""
    (left, left_slot), (right, right_slot) = (_gather(values, starts, lengths, pairs[:, side]) for side in (0, 1))
    slot = np.concatenate([left_slot, right_slot])
    keyed = (slot.view(_U64) << _U64(32)) | np.concatenate([left, right]).astype(_U64)
    sizes = lengths[pairs]
    if (sizes >= k).any():
        limit = np.full(len(pairs), _U64(1) << _U64(32), dtype=np.uint64)
        for side, (vals, side_slot) in enumerate(((left, left_slot), (right, right_slot))):
            top = np.zeros(len(pairs), dtype=np.uint64)
            np.maximum.at(top, side_slot, vals.astype(_U64))
            limit = np.where(sizes[:, side] >= k, np.minimum(limit, top), limit)
        inside = (keyed & _U64(0xFFFFFFFF)) <= limit[slot]
        keyed, total = keyed[inside], np.bincount(slot[inside], minlength=len(pairs))
    else:
        total = sizes.sum(axis=1)
    keyed = np.sort(keyed, kind="stable")  # two ascending runs (left, right): timsort merges them in one pass
    both = keyed[1:][keyed[1:] == keyed[:-1]]  # a value in both sets appears twice
    shared = np.bincount((both >> _U64(32)).astype(np.int64), minlength=len(pairs))
    union = total - shared
    return np.where(union > 0, shared / np.maximum(union, 1), 1.0)


def _gather(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, items: np.ndarray) -> tuple[np.ndarray,
        np.ndarray]:
    """Returns the concatenated sets of `items` and, for each value, its position in `items`."""
    sizes = lengths[items]
    slot = np.repeat(np.arange(len(items)), sizes)
    offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return values[starts[items][slot] + offsets], slot
