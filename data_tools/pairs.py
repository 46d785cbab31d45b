"""The match task: one partition of duplicate and band keys -> exact duplicates and verified similar pairs.

    python -c "from data_tools.pairs import match_partition; print(match_partition.__doc__.splitlines()[0])"

Partition P holds every record's duplicate key and LSH band keys that hash to P, from every shard
(parts/P/*.npz), so each task sees whole buckets and nothing else: memory is one partition, not the
data. Candidate pairs are checked with their exact 3-gram Jaccard similarity (the sets come from
the shards' sets/ files, memory-mapped); pairs at least `floor` similar go to pairs/P.npz.
"""

from __future__ import annotations

from pathlib import Path
import numpy as np

from data_tools.matching import bucket_pairs, layout_bands, pair_similarity
from data_tools.shards import PLACE_BITS
from tunebot.rundir import atomic_open


def load_npz(path: Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Returns the arrays of an .npz file (the named ones, else all)."""
    with np.load(path) as data:
        return {name: data[name] for name in (names or data.files)}


def match_partition(part: int, work: str, shards: list[int], duplicate: float, leakage: float) -> dict[str, int]:
    """Finds partition `part`'s exact duplicates and its verified similar pairs.

    Every candidate of the duplicate layout is checked (its similarity decides a near-duplicate).
    Leakage bands only join clusters: they are taken band by band, and a candidate whose records this
    partition already joined is not checked again, so families of templated questions stay cheap.
    """
    folder = Path(work)
    loaded = [load_npz(folder / "parts" / str(part) / f"{number}.npz") for number in shards]
    joined = {name: np.concatenate([item[name] for item in loaded]) for name in loaded[0]}
    band, key, ordinal = joined["band"], joined["band_key"], joined["band_ordinal"]
    store, bands = SketchStore(folder, shards), layout_bands()
    duplicates = np.isin(band, list(bands["duplicate"]))
    pairs = [_unique(bucket_pairs(band[duplicates], key[duplicates], ordinal[duplicates]))]
    similarity = [store.similarity(pairs[0])]
    nodes = np.unique(ordinal)
    labels = _joined(np.arange(len(nodes)), np.searchsorted(nodes, pairs[0][similarity[0] >= leakage]))
    for number in bands["leakage"]:
        mine = band == number
        candidates = bucket_pairs(band[mine], key[mine], ordinal[mine], window=1)
        ends = labels[np.searchsorted(nodes, candidates)]
        candidates = candidates[ends[:, 0] != ends[:, 1]]
        found = store.similarity(candidates)
        close = found >= leakage
        pairs.append(candidates[close])
        similarity.append(found[close])
        labels = _joined(labels, np.searchsorted(nodes, candidates[close]))
    pairs_all, similarity_all = np.concatenate(pairs), np.concatenate(similarity)
    close = similarity_all >= min(duplicate, leakage)
    with atomic_open(folder / "pairs" / f"{part}.npz", binary=True) as handle:
        np.savez(handle, exact=_exact(joined["key"], joined["key_ordinal"]), pairs=pairs_all[close],
                 similarity=similarity_all[close].astype(np.float32))
    return {"candidates": len(pairs_all), "similar": int(close.sum())}


def _unique(pairs: np.ndarray) -> np.ndarray:
    """Returns the pairs once each, sorted (a pair of near-twins shares several bands)."""
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    return pairs[np.concatenate([[True], (pairs[1:] != pairs[:-1]).any(axis=1)])] if len(pairs) else pairs


def _joined(labels: np.ndarray, edges: np.ndarray) -> np.ndarray:
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

    def __init__(self, folder: Path, shards: list[int]) -> None:
        self.folder, self.shards = folder, shards
        self._meta: dict[int, dict[str, np.ndarray]] = {}

    def _shard(self, number: int) -> dict[str, np.ndarray]:
        if number not in self._meta:  # memory-mapped: only the pages a pair touches are read
            self._meta[number] = {name: np.load(self.folder / "sets" / f"{number}.{name}.npy", mmap_mode="r")
                                  for name in ("ordinal", "offsets", "values")}
        return self._meta[number]

    def sets(self, ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (values, starts, lengths) of the sorted unique `ordinals`' sets, in their order."""
        values, lengths = [], []
        shard_of = ordinals >> PLACE_BITS
        for number in np.unique(shard_of).tolist():
            meta = self._shard(int(number))
            mine = ordinals[shard_of == number]
            local = np.searchsorted(meta["ordinal"], mine)
            offsets, stored = meta["offsets"], meta["values"]
            sizes = offsets[local + 1] - offsets[local]
            index = np.repeat(offsets[local], sizes) + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            values.append(stored[index])
            lengths.append(sizes)
        if not values:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        lengths_all = np.concatenate(lengths)
        return np.concatenate(values), np.concatenate([[0], np.cumsum(lengths_all)[:-1]]).astype(np.int64), lengths_all

    def similarity(self, pairs: np.ndarray, chunk: int = 200_000) -> np.ndarray:
        """Returns the exact 3-gram Jaccard similarity of each (a, b) ordinal pair."""
        out = []
        for at in range(0, len(pairs), chunk):
            part = pairs[at : at + chunk]
            wanted, local = np.unique(part, return_inverse=True)
            out.append(pair_similarity(*self.sets(wanted), local.reshape(-1, 2)))
        return np.concatenate(out) if out else np.zeros(0)
