"""The match tasks: duplicate and band keys -> exact duplicates, near-duplicate candidates, leakage pairs.

    python -c "from data_tools.pairs import match_partition; print(match_partition.__doc__.splitlines()[0])"

Partition P holds every record's duplicate key and duplicate-layout band keys that hash to P, from
every shard (parts/P/*.npz), so each task sees whole buckets and nothing else: memory is one
partition, not the data. The leakage task reads the leakage layout's bands one at a time. A
candidate's signatures first give an estimate of its similarity; one more than MARGIN under the
threshold is dropped, the others are checked with their exact 3-gram Jaccard similarity (the sets
come from the shards' sets/ files, memory-mapped), except the leakage pairs the estimate is sure of
(decide rechecks any of those that could make a near-duplicate). The pairs found go to pairs/P.npz
and pairs/leakage.npz.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_tools.matching import NUM_PERM, bucket_pairs, layout_bands, pair_similarity
from data_tools.shards import PLACE_BITS
from tunebot.rundir import atomic_open

MARGIN = 0.15  # a candidate is checked exactly when its estimate is within MARGIN (3.5 sd at 0.6) of the threshold
CHECK_CHUNK = 100_000  # leakage candidates checked between two joins: a pair already joined is skipped
PARTITIONS = 8  # fixed, never the worker count: the output must not depend on how many ran


def load_npz(path: Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Returns the arrays of an .npz file (the named ones, else all)."""
    with np.load(path) as data:
        return {name: data[name] for name in (names or data.files)}


def match_partition(part: int, work: str, shards: list[int], duplicate: float) -> dict[str, int]:
    """Finds partition `part`'s exact duplicates and its candidates at least `duplicate` similar.

    A candidate whose signatures' estimate is more than MARGIN under the threshold is not similar
    (5.7 sd at 0.9; most candidates of a crowded bucket are); every other gets its exact similarity,
    which decides.
    """
    folder = Path(work)
    loaded = [load_npz(folder / "parts" / str(part) / f"{number}.npz") for number in shards]
    joined = {name: np.concatenate([item[name] for item in loaded]) for name in loaded[0]}
    candidates = _unique(bucket_pairs(joined["band"], joined["band_key"], joined["band_ordinal"]))
    store = SketchStore(folder)
    pairs = candidates[store.estimate(candidates) >= duplicate - MARGIN]
    similarity = store.similarity(pairs)
    close = similarity >= duplicate
    with atomic_open(folder / "pairs" / f"{part}.npz", binary=True) as handle:
        np.savez(handle, exact=_exact(joined["key"], joined["key_ordinal"]), pairs=pairs[close],
                 similarity=similarity[close].astype(np.float32))
    return {"candidates": len(candidates), "checked": len(pairs), "similar": int(close.sum())}


def leakage_pairs(work: str, shards: list[int], leakage: float) -> dict[str, int]:
    """Finds the pairs that join leakage clusters: questions at least `leakage` similar.

    One task, band by band (each band's keys read from every shard: 8 bytes a record); the candidates'
    signatures are read from the shards' files (memory-mapped) a chunk at a time, so memory does not
    hold every record's. The signatures' estimate decides a candidate more than MARGIN (3.5 sd) from the
    threshold; the sure pairs join first, then the rest get their exact similarity CHECK_CHUNK at a
    time. A candidate whose records are already joined (by an earlier band, a sure pair or an earlier
    chunk) is not checked: only connectivity matters here, so the clusters are the same. Families of
    templated questions cost little more than unique ones.
    """
    folder = Path(work)
    store = SketchStore(folder)
    nodes = np.concatenate([store.ordinals(number) for number in shards])
    index = np.arange(len(nodes))
    labels = index.copy()
    pairs, estimates, checked = [], [], 0
    for band in range(len(layout_bands()["leakage"])):
        key = np.concatenate([np.array(store.mapped(number, "leakage")[band]) for number in shards])
        candidates = bucket_pairs(np.zeros(len(key), dtype=np.uint8), key, index, window=1)
        candidates = candidates[labels[candidates[:, 0]] != labels[candidates[:, 1]]]
        estimate = store.estimate(nodes[candidates])
        candidates, found = candidates[estimate >= leakage - MARGIN], estimate[estimate >= leakage - MARGIN]
        sure = found >= leakage + MARGIN  # more than 3 sd above the threshold: close without a check
        pairs.append(candidates[sure])
        estimates.append(found[sure])
        labels = join_components(labels, candidates[sure])
        unsure = candidates[~sure]
        for at in range(0, len(unsure), CHECK_CHUNK):  # within 3 sd: checked exactly, unless already joined
            part = unsure[at : at + CHECK_CHUNK]
            part = part[labels[part[:, 0]] != labels[part[:, 1]]]
            exact = store.similarity(nodes[part])
            checked += len(part)
            pairs.append(part[exact >= leakage])
            estimates.append(exact[exact >= leakage])
            labels = join_components(labels, part[exact >= leakage])
    with atomic_open(folder / "pairs" / "leakage.npz", binary=True) as handle:
        np.savez(handle, exact=np.zeros((0, 2), dtype=np.int64), pairs=nodes[np.concatenate(pairs)],
                 similarity=np.concatenate(estimates).astype(np.float32))
    return {"candidates": checked, "similar": sum(map(len, pairs))}


def match_tasks() -> list[str]:
    """The match step's task names: leakage first (the longest), then the partitions."""
    return ["leakage"] + [str(part) for part in range(PARTITIONS)]


def match_task(name: str, work: str, shards: list[int], duplicate: float, leakage: float) -> dict[str, int]:
    """Runs one task of the match step: "leakage", or a partition's number."""
    return leakage_pairs(work, shards, leakage) if name == "leakage" else match_partition(int(name), work, shards,
            duplicate)


def _unique(pairs: np.ndarray) -> np.ndarray:
    """Returns the pairs once each, sorted (a pair of near-twins shares several bands)."""
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    return pairs[np.concatenate([[True], (pairs[1:] != pairs[:-1]).any(axis=1)])] if len(pairs) else pairs


def join_components(labels: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Returns component labels after joining the nodes of `edges` (indexes into `labels`)."""
    if len(edges) == 0:
        return labels
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    count = len(labels)
    ends = labels[edges]
    graph = coo_matrix((np.ones(len(ends), dtype=np.int8), (ends[:, 0], ends[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1][labels]


def _exact(key: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    """Returns (later, first) ordinals of records whose duplicate key an earlier record has."""
    order = np.lexsort((ordinal, key))
    key, ordinal = key[order], ordinal[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else np.zeros(0, dtype=np.int64)
    first = np.repeat(ordinal[starts], np.diff(np.concatenate([starts, [len(key)]])))
    later = ordinal != first
    return np.stack([ordinal[later], first[later]], axis=1)


class SketchStore:
    """The 3-gram sets of every record, read from the shards' sets/ files only where a pair needs them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ordinals: dict[int, np.ndarray] = {}

    def mapped(self, number: int, name: str) -> np.ndarray:
        """Returns one of shard `number`'s sets/ arrays memory-mapped: copy what is needed out of it and
        drop it, so the pages read leave this process's memory with the mapping."""
        return np.load(self.folder / "sets" / f"{number}.{name}.npy", mmap_mode="r")

    def ordinals(self, number: int) -> np.ndarray:
        """Returns shard `number`'s record ordinals (8 bytes a record, kept)."""
        if number not in self._ordinals:
            self._ordinals[number] = np.array(self.mapped(number, "ordinal"))
        return self._ordinals[number]

    def sets(self, ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (values, starts, lengths) of the sorted unique `ordinals`' sets, in their order."""
        values, lengths = [], []
        for number, _, local in self._by_shard(ordinals):  # sorted: the shards' parts join in order
            offsets = np.asarray(self.mapped(number, "offsets"))
            starts, sizes = offsets[local], offsets[local + 1] - offsets[local]
            index = np.repeat(starts, sizes) + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            values.append(np.asarray(self.mapped(number, "values"))[index])
            lengths.append(sizes)
        if not values:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        lengths_all = np.concatenate(lengths)
        return np.concatenate(values), np.concatenate([[0], np.cumsum(lengths_all)[:-1]]).astype(np.int64), lengths_all

    def estimate(self, pairs: np.ndarray, chunk: int = 500_000) -> np.ndarray:
        """Returns the share of equal signature values of each (a, b) ordinal pair: the MinHash estimate."""
        out = np.empty(len(pairs))
        for at in range(0, len(pairs), chunk):
            wanted, local = np.unique(pairs[at : at + chunk], return_inverse=True)
            rows, local = self.signatures(wanted), local.reshape(-1, 2)
            out[at : at + chunk] = np.count_nonzero(rows[local[:, 0]] == rows[local[:, 1]], axis=1) / NUM_PERM
        return out

    def signatures(self, ordinals: np.ndarray) -> np.ndarray:
        """Returns the signatures of the sorted unique `ordinals`, in their order."""
        rows = np.empty((len(ordinals), NUM_PERM), dtype=np.uint8)
        for number, mine, local in self._by_shard(ordinals):
            rows[mine] = self.mapped(number, "signature")[local]
        return rows

    def _by_shard(self, ordinals: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yields, per shard holding some of `ordinals`: its number, which of them it holds, and where
        they are in the shard's files."""
        shard_of = ordinals >> PLACE_BITS
        for number in np.unique(shard_of).tolist():
            mine = shard_of == number
            yield int(number), mine, np.searchsorted(self.ordinals(int(number)), ordinals[mine])

    def similarity(self, pairs: np.ndarray, chunk: int = 200_000) -> np.ndarray:
        """Returns the exact 3-gram Jaccard similarity of each (a, b) ordinal pair."""
        out = []
        for at in range(0, len(pairs), chunk):
            part = pairs[at : at + chunk]
            wanted, local = np.unique(part, return_inverse=True)
            out.append(pair_similarity(*self.sets(wanted), local.reshape(-1, 2)))
        return np.concatenate(out) if out else np.zeros(0)
