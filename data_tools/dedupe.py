"""Near-duplicate detection on character 3-grams, vectorized with numpy so a million rows take seconds.

    python -c "from data_tools.dedupe import similar_pairs; print(similar_pairs(['返品できますか？', '返品できますか。'], 0.5))"

Character n-grams work for Japanese (no spaces) as well as English. Each text gets two sketches,
computed a batch at a time and kept in compact arrays (no per-text Python objects):
- a MinHash signature (128 multiply-shift hash functions, 16 bits kept per value) whose bands index an LSH
  table: texts sharing a band are candidate pairs;
- a bottom-k sketch (the k smallest 32-bit n-gram hashes). For texts of at most k distinct
  n-grams (questions up to ~130 characters) it *is* the n-gram set, so candidates are confirmed
  with their exact Jaccard similarity; longer texts get the standard bottom-k estimate.
Used twice by the data stage: near-identical pairs are rejected as duplicates, and looser
clusters of similar questions are kept inside one split so nothing leaks into the test set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from data_tools.normalize import fold

BINS = 128  # MinHash values per signature
BAND_ROWS = 5  # bins per LSH band: 25 bands; a 0.6-similar pair shares one with p=0.87, 0.7: 0.99
DUPLICATE_BAND_ROWS = 10  # 12 bands: a 0.9-similar pair shares one with p=0.99, a 0.5 one with p=0.01
CLUSTER_SLACK = 0.0  # leakage clusters join pairs whose estimate reaches the threshold
WINDOW = 2  # in a crowded LSH bucket each text is paired with its next WINDOW neighbours
SKETCH_K = 128  # bottom-k size: exact similarity for texts with up to k distinct 3-grams

_NON_WORD = re.compile(r"[\W_]+")
_U64 = np.uint64



def normalize_for_matching(text: str) -> str:
    """Folds width, case, spacing and punctuation away: what two near-duplicates still share.

    >>> normalize_for_matching("Ｒｅｔｕｒｎ  it？")
    'returnit'
    """
    return _NON_WORD.sub("", fold(text))


def shingles(text: str, size: int = 3) -> set[str]:
    """Returns the set of character n-grams of the normalized text (the whole text if shorter).

    >>> sorted(shingles("Ab c!", 2))
    ['ab', 'bc']
    """
    norm = normalize_for_matching(text)
    if len(norm) <= size:
        return {norm} if norm else set()
    return {norm[i : i + size] for i in range(len(norm) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Returns |a ∩ b| / |a ∪ b| (1.0 for two empty sets), the reference the sketches approximate."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a fast, well-spread 64-bit hash of each element."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def ngram_hashes(texts: list[str], normalized: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Returns (text index, 64-bit hash) of every character 3-gram of the normalized texts.

    Code points fit in 21 bits, so three of them pack into one integer without collisions before
    hashing. Texts shorter than 3 characters are padded, so every text has at least one n-gram.
    `normalized` says the texts already went through `normalize_for_matching`.
    """
    norms = texts if normalized else [normalize_for_matching(text) for text in texts]
    norms = [norm if len(norm) >= 3 else norm + "\x01" * (3 - len(norm)) for norm in norms]
    lengths = np.fromiter(map(len, norms), dtype=np.int64, count=len(norms))
    codes = np.frombuffer("".join(norms).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    owner = np.repeat(np.arange(len(norms)), lengths)
    inside = owner[:-2] == owner[2:]
    grams = (codes[:-2] << _U64(42)) | (codes[1:-1] << _U64(21)) | codes[2:]
    return owner[:-2][inside], _mix(grams[inside])


BATCH_BITS = 14  # texts per sketch batch < 2**14: the text index and 50 hash bits share one uint64
BATCH = 1 << BATCH_BITS


_PERMUTATIONS = np.random.default_rng(20261122).integers(1, 2**32, size=(2, BINS), dtype=np.uint64).astype(np.uint32) | np.uint32(1)


def sketch_batch(
    texts: list[str], k: int = SKETCH_K, signatures: bool = True, normalized: bool = False
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Returns (MinHash signatures, bottom-k values, bottom-k lengths) of at most BATCH texts.

    One sort of (text, hash) keys gives each text's distinct n-gram hashes in ascending order:
    the first k are the bottom-k sketch. The signature is classic MinHash with BINS
    multiply-shift hash functions (unbiased for short texts too, unlike one-permutation MinHash).
    """
    count = len(texts)
    owner, hashes = ngram_hashes(texts, normalized)
    keyed = np.sort((owner.astype(np.uint64) << _U64(64 - BATCH_BITS)) | (hashes >> _U64(BATCH_BITS)))
    keyed = keyed[np.concatenate([[True], keyed[1:] != keyed[:-1]])]  # one entry per distinct n-gram
    text = (keyed >> _U64(64 - BATCH_BITS)).astype(np.int64)
    first = np.searchsorted(text, np.arange(count))
    rank = np.arange(len(keyed)) - first[text]
    lengths = np.bincount(text[rank < k], minlength=count).astype(np.int32)
    bottom = ((keyed[rank < k] >> _U64(18)) & _U64(0xFFFFFFFF)).astype(np.uint32)
    if not signatures:
        return None, bottom, lengths
    return _minhash(((keyed >> _U64(18)) & _U64(0xFFFFFFFF)).astype(np.uint32), first, count), bottom, lengths


def _minhash(grams: np.ndarray, first: np.ndarray, count: int, chunk: int = 4096) -> np.ndarray:
    """Returns (count, BINS) uint16 MinHash signatures of the texts whose grams start at `first`.

    Works on about `chunk` grams at a time, laid out (BINS x grams): each hash function's values
    of a text are then contiguous, so numpy multiplies a row by one scalar and takes each text's
    minimum in one vectorized pass (4x faster than grams x BINS), in a ~2 MB temporary.
    """
    signature = np.empty((BINS, count), dtype=np.uint16)
    multiplier, offset = _PERMUTATIONS[0][:, None], _PERMUTATIONS[1][:, None]
    buffer = np.empty((BINS, chunk + 1024), dtype=np.uint32)  # reused: a fresh temporary each time cost 1.7x
    begin = 0
    while begin < count:
        end = max(int(np.searchsorted(first, first[begin] + chunk, side="right")), begin + 1)
        stop = first[end] if end < count else len(grams)
        size = stop - first[begin]  # up to chunk + the last text's grams
        values = buffer[:, :size] if size <= buffer.shape[1] else np.empty((BINS, size), dtype=np.uint32)
        np.multiply(multiplier, grams[None, first[begin] : stop], out=values)  # 32-bit multiply-add hashing, wrapping
        values += offset
        signature[:, begin:end] = np.minimum.reduceat(values, first[begin:end] - first[begin], axis=1)  # keeps the low 16 bits
        begin = end
    return np.ascontiguousarray(signature.T)


def band_keys(signatures: np.ndarray, band: int, rows_per_band: int = BAND_ROWS) -> np.ndarray:
    """Returns one LSH key per signature for band number `band` (`rows_per_band` bins hashed together)."""
    words = -(-rows_per_band // 4)  # four 16-bit bins fill one 64-bit word exactly
    packed = np.zeros((len(signatures), words * 4), dtype=np.uint16)
    packed[:, :rows_per_band] = signatures[:, band * rows_per_band : (band + 1) * rows_per_band]
    packed_words = packed.view(np.uint64)  # (texts, words): one mix per word, not per bin
    key = np.zeros(len(signatures), dtype=np.uint64)
    for word in range(words):
        key = _mix(key ^ packed_words[:, word])
    return key


def sorted_bands(signatures: np.ndarray, band_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (sorted keys, order) for each LSH band of `band_rows` bins; texts with equal band
    values end up next to each other, in index order."""
    for band in range(BINS // band_rows):
        keys = band_keys(signatures, band, band_rows)
        order = np.argsort(keys, kind="stable")
        yield keys[order], order


class SketchStore:
    """Sketches of a growing list of texts, added a batch at a time; ~0.4 KB per text.

    >>> store = SketchStore(); store.add(["Can I return it?", "Can I return it!"]); store.similar(0.9)[0]
    array([[0, 1]])
    """

    def __init__(self, k: int = SKETCH_K, searchable: bool = True) -> None:
        self.k, self.searchable = k, searchable
        self._signatures: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self.count = 0

    def add(self, texts: list[str], normalized: bool = False) -> None:
        """Sketches `texts` (already `normalize_for_matching`-ed if `normalized`); they get the next indices."""
        for at in range(0, len(texts), BATCH):
            self.add_sketched(*sketch_batch(texts[at : at + BATCH], self.k, self.searchable, normalized))

    def add_sketched(self, signatures: np.ndarray | None, values: np.ndarray, lengths: np.ndarray) -> None:
        """Appends sketches that `sketch_batch` made (here, or in a worker process)."""
        if self.searchable:
            self._signatures.append(signatures)
        self._values.append(values)
        self._lengths.append(lengths)
        self.count += len(lengths)

    def pack(self) -> None:
        """Joins the added batches into one array each (before forking: the processes then share them)."""
        for name in ("_signatures", "_values", "_lengths"):
            parts = getattr(self, name)
            if len(parts) != 1:
                setattr(self, name, [np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)])

    def candidates(
        self, threshold: float, band_rows: int = BAND_ROWS, labels: np.ndarray | None = None, margin: float = 0.15,
        window: int = WINDOW,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yields, band by band, (pairs, estimates): (i, j) pairs (i < j) that share an LSH band of
        `band_rows` bins and whose signatures agree on at least `threshold - margin` of their bins.
        With `labels`, pairs already in the same cluster are skipped (read at each band)."""
        self.pack()
        if not self.searchable or self.count < 2:
            return
        signatures = self._signatures[0]
        for keys, order in sorted_bands(signatures, band_rows):
            for left, right in _bucket_pairs(keys, order, window):
                if labels is not None:
                    apart = labels[left] != labels[right]
                    left, right = left[apart], right[apart]
                estimate = _agreement(signatures, left, right)
                agree = estimate >= threshold - margin
                yield np.stack([np.minimum(left, right)[agree], np.maximum(left, right)[agree]], axis=1), estimate[agree]

    def similar(self, threshold: float, band_rows: int = BAND_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Returns (pairs, similarities) of the pairs at least `threshold` similar, sorted, unique.

        Candidates of every band are pooled and made unique before the exact check: a near-twin
        shares several bands, and checking it once per band was most of the time at 1M rows.
        """
        codes = [pairs[:, 0] * self.count + pairs[:, 1] for pairs, _ in self.candidates(threshold, band_rows)]
        codes = np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
        pairs = np.stack([codes // self.count, codes % self.count], axis=1)
        similarity = self.similarity(pairs)
        keep = similarity >= threshold
        return pairs[keep], similarity[keep]

    def clusters(self, threshold: float, links: np.ndarray | None = None, slack: float = CLUSTER_SLACK) -> np.ndarray:
        """Returns a cluster label per text, joining texts about `threshold` similar or more (and `links`).

        A pair is joined when its MinHash estimate (unbiased, sd <= 0.045) reaches `threshold -
        slack`: the boundary errs towards joining, which only keeps more rows together, never
        lets a twin leak. Pairs already joined are not checked again, so families of templated
        questions cost little more than unique ones.
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        labels = _components([links] if links is not None and len(links) else [], self.count, coo_matrix, connected_components)
        for pairs, _ in self.candidates(threshold, BAND_ROWS, labels, margin=slack, window=1):
            if len(pairs):  # join the components the new pairs link; earlier edges live on in `labels`
                labels[:] = _components([labels[pairs]], self.count, coo_matrix, connected_components)[labels]  # in place: the search reads it
        return labels

    def similarity(self, pairs: np.ndarray, chunk: int = 25_000) -> np.ndarray:
        """Returns the Jaccard similarity of each (i, j) pair: exact for short texts, estimated for long."""
        self.pack()
        values, lengths = self._values[0], self._lengths[0]
        starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]])
        parts = [_pair_similarity(values, starts, lengths, pairs[at : at + chunk], self.k) for at in range(0, len(pairs), chunk)]
        return np.concatenate(parts) if parts else np.zeros(0)


def _components(edges: list[np.ndarray], count: int, coo_matrix: Any, connected_components: Any) -> np.ndarray:
    """Returns connected-component labels of `count` nodes joined by the edge arrays."""
    if not edges:
        return np.arange(count)
    pairs = np.concatenate(edges)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def _bucket_pairs(keys: np.ndarray, order: np.ndarray, window: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields pairs of texts in one LSH bucket: each with its next `window` neighbours, and each
    with the bucket's first text (so a crowded bucket still links its members to a common one)."""
    for step in range(1, window + 1):
        same = np.flatnonzero(keys[:-step] == keys[step:])
        yield order[same], order[same + step]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    first = np.repeat(starts, np.diff(np.concatenate([starts, [len(keys)]])))
    far = np.flatnonzero(np.arange(len(keys)) - first > window)
    yield order[first[far]], order[far]


def _agreement(signatures: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """Returns the share of equal bins of each signature pair (the MinHash similarity estimate).

    `chunk` pairs at a time keep the gathered rows in cache. (A pre-check on a quarter of the bins
    saved nothing: pairs that share an LSH band are mostly close, and ~90% passed it.)
    """
    out = np.empty(len(left))
    for at in range(0, len(left), chunk):
        a, b = left[at : at + chunk], right[at : at + chunk]
        out[at : at + chunk] = np.count_nonzero(signatures[a] == signatures[b], axis=1) / BINS
    return out


def _gather(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns the concatenated sketches of `items` and, for each value, its position in `items`."""
    sizes = lengths[items].astype(np.int64)
    slot = np.repeat(np.arange(len(items)), sizes)
    offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return values[starts[items][slot] + offsets], slot


def _pair_similarity(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pairs: np.ndarray, k: int) -> np.ndarray:
    if len(pairs) == 0:
        return np.zeros(0)
    left, left_slot = _gather(values, starts, lengths, pairs[:, 0])
    right, right_slot = _gather(values, starts, lengths, pairs[:, 1])
    slot = np.concatenate([left_slot, right_slot])
    keyed = (slot.astype(np.uint64) << _U64(32)) | np.concatenate([left, right])
    sizes = lengths[pairs].astype(np.int64)
    if (sizes >= k).any():  # a truncated sketch only speaks for values up to its largest one: compare below both limits
        limit = np.full(len(pairs), np.uint64(1) << np.uint64(32), dtype=np.uint64)
        for side, (vals, side_slot) in enumerate(((left, left_slot), (right, right_slot))):
            top = np.zeros(len(pairs), dtype=np.uint64)
            np.maximum.at(top, side_slot, vals.astype(np.uint64))
            limit = np.where(sizes[:, side] >= k, np.minimum(limit, top), limit)
        inside = (keyed & _U64(0xFFFFFFFF)) <= limit[slot]
        keyed, total = keyed[inside], np.bincount(slot[inside], minlength=len(pairs))
    else:
        total = sizes.sum(axis=1)
    keyed = np.sort(keyed, kind="stable")  # two ascending runs (left, right): timsort merges them in one pass
    both = keyed[1:][keyed[1:] == keyed[:-1]]  # a value in both sketches appears twice
    shared = np.bincount((both >> _U64(32)).astype(np.int64), minlength=len(pairs))
    union = total - shared
    return np.where(union > 0, shared / np.maximum(union, 1), 1.0)


def similar_pairs(texts: list[str], threshold: float) -> list[tuple[int, int, float]]:
    """Returns (i, j, similarity) with i < j for every pair of texts at or above `threshold`.

    >>> similar_pairs(["Can I return it?", "can i return it", "Where is my parcel?"], 0.9)
    [(0, 1, 1.0)]
    """
    store = SketchStore()
    store.add(texts)
    pairs, scores = store.similar(threshold)
    return [(int(i), int(j), round(float(score), 3)) for (i, j), score in zip(pairs, scores)]


def cluster_ids(size: int, pairs: list[tuple[int, int, float]] | np.ndarray) -> list[int]:
    """Returns a cluster id per item, joining every linked pair (union-find); ids are the smallest member.

    >>> cluster_ids(4, [(0, 2, 1.0), (2, 3, 0.9)])
    [0, 1, 0, 0]
    """
    parent = list(range(size))

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for pair in pairs:
        a, b = root(int(pair[0])), root(int(pair[1]))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [root(item) for item in range(size)]


def split_duplicates(
    pairs: np.ndarray, question_similarity: np.ndarray, answer_similarity: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Splits similar-question pairs into (duplicates, conflicts) as rows of (earlier, later, similarity).

    A duplicate has both question and answer at least `threshold` similar; a conflict has the
    same question but a different answer, which a team should resolve.
    """
    same = answer_similarity >= threshold
    both = np.minimum(question_similarity, answer_similarity)
    duplicates = np.column_stack([pairs[same], both[same]])
    conflicts = np.column_stack([pairs[~same], question_similarity[~same]])
    return duplicates, conflicts


def near_duplicates(
    questions: list[str], answers: list[str], threshold: float
) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]:
    """Returns (duplicates, conflicts) among question/answer pairs, as (earlier, later, similarity).

    >>> near_duplicates(["Can I return it?", "can i return it"], ["Yes.", "No."], 0.9)[1]
    [(0, 1, 1.0)]
    """
    question_store = SketchStore()
    question_store.add(questions)
    pairs, scores = question_store.similar(threshold, DUPLICATE_BAND_ROWS)
    answer_similarity = np.array([jaccard(shingles(answers[a]), shingles(answers[b])) for a, b in pairs.tolist()])
    found = split_duplicates(pairs, scores, answer_similarity.reshape(-1), threshold)
    return tuple([(int(a), int(b), round(float(s), 3)) for a, b, s in rows] for rows in found)  # type: ignore[return-value]
