"""Near-duplicate detection with MinHash/LSH (datasketch) on character n-grams, so it works for
Japanese (no spaces) as well as English; candidates are confirmed with the exact Jaccard.

    python -c "from data_tools.dedupe import similar_pairs; print(similar_pairs(['返品できますか？', '返品できますか。'], 0.5))"

Used twice by the data stage: near-identical pairs are rejected as duplicates, and looser
clusters of similar questions are kept inside one split so nothing leaks into the test set.
"""

from __future__ import annotations

import re
import unicodedata


def normalize_for_matching(text: str) -> str:
    """Folds width, case, spacing and punctuation away: what two near-duplicates still share."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", "", folded)


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
    """Returns |a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def similar_pairs(texts: list[str], threshold: float, size: int = 3, num_perm: int = 128) -> list[tuple[int, int, float]]:
    """Returns (i, j, jaccard) with i < j for every pair of texts at or above `threshold`.

    LSH proposes candidates in near-linear time; each is confirmed with the exact Jaccard of
    the shingle sets, so the result has no false positives (rare misses are LSH's price).
    """
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(text, size) for text in texts]
    hashes = MinHash.bulk(([s.encode("utf-8") for s in shingle_set] for shingle_set in sets), num_perm=num_perm)
    lsh = MinHashLSH(threshold=max(0.05, threshold - 0.1), num_perm=num_perm)  # a little looser, then verify
    pairs: list[tuple[int, int, float]] = []
    for index, minhash in enumerate(hashes):
        for other in lsh.query(minhash):
            score = jaccard(sets[index], sets[other])
            if score >= threshold:
                pairs.append((other, index, score))
        lsh.insert(index, minhash)
    return sorted(pairs)


def cluster_ids(size: int, pairs: list[tuple[int, int, float]]) -> list[int]:
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

    for left, right, _ in pairs:
        a, b = root(left), root(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [root(item) for item in range(size)]


def near_duplicates(
    questions: list[str], answers: list[str], threshold: float, pairs: list[tuple[int, int, float]] | None = None
) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]:
    """Returns (duplicates, conflicts) among question/answer pairs, as (earlier, later, similarity).

    A duplicate has both question and answer at least `threshold` similar; a conflict has the
    same question (at least `threshold`) but a different answer, which a team should resolve.
    `pairs` are similar question pairs already found (at this threshold or a lower one).
    """
    duplicates, conflicts = [], []
    found = similar_pairs(questions, threshold) if pairs is None else pairs
    for first, second, question_similarity in (pair for pair in found if pair[2] >= threshold):
        answer_similarity = jaccard(shingles(answers[first]), shingles(answers[second]))
        if answer_similarity >= threshold:
            duplicates.append((first, second, round(min(question_similarity, answer_similarity), 3)))
        else:
            conflicts.append((first, second, round(question_similarity, 3)))
    return duplicates, conflicts
