"""Deterministic, stratified, leakage-free train/val/test split of instruction records.

    tunebot data examples/acme-demo.yaml    # prints the split sizes

Records come with group ids (clusters of similar questions, whole conversations); a group is
assigned to one split as a whole, so no test question has a near-twin in training. Each source
file gets its share of val and test, divided over its categories in proportion (largest
remainder), so every file, language and category of a FAQ is represented where sizes allow.

An answer the data gives for several questions keeps at least one of them in training: a FAQ's
other phrasings are held out to measure whether the bot answers new wordings of what it was
taught, never to hide an answer from it (the tuned model would not know it, and the `retrieval`
system could not find it). An answer given once (a support log's reply) may be held out as before.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


def _share(size: int, fraction: float) -> int:
    if fraction <= 0 or size < 3:
        return 0
    return max(1, min(size - 1, round(size * fraction)))


def _quotas(total: int, sizes: dict[str, int], rng: random.Random) -> dict[str, int]:
    """Divides `total` over strata in proportion to their sizes (largest remainder, ties by seed)."""
    whole = sum(sizes.values())
    exact = {name: total * size / whole for name, size in sizes.items()}
    quotas = {name: int(value) for name, value in exact.items()}
    order = sorted(sizes, key=lambda name: (quotas[name] - exact[name], rng.random()))
    for name in order[: total - sum(quotas.values())]:
        quotas[name] += 1
    return quotas


class _AnswerKeeper:
    """Says whether a cluster may be held out without taking the last training record of an answer
    that several records give; remembers the clusters that were. Arrays, not dicts: ~20 bytes a record."""

    def __init__(self, cluster: np.ndarray, answers: np.ndarray | None, clusters: int) -> None:
        self.starts = np.zeros(clusters + 1, dtype=np.int64)
        self.answer, self.count, self.left = (np.zeros(0, dtype=np.int64),) * 3
        if answers is None:
            return
        _, code, counts = np.unique(np.asarray(answers), return_inverse=True, return_counts=True)
        shared = counts[code] > 1
        pairs, given = np.unique(cluster[shared] * len(counts) + code[shared], return_counts=True)
        self.answer, self.count, self.left = pairs % len(counts), given, counts.astype(np.int64)
        self.starts[1:] = np.cumsum(np.bincount(pairs // len(counts), minlength=clusters))

    def allows(self, cluster: int) -> bool:
        start, end = self.starts[cluster], self.starts[cluster + 1]
        if start == end:
            return True
        if end - start == 1:
            return bool(self.left[self.answer[start]] > self.count[start])
        return bool((self.left[self.answer[start:end]] > self.count[start:end]).all())

    def hold_out(self, cluster: int) -> None:
        start, end = self.starts[cluster], self.starts[cluster + 1]
        np.subtract.at(self.left, self.answer[start:end], self.count[start:end])


def _fill(members: np.ndarray, sizes: np.ndarray, room: dict[int, int], keeper: _AnswerKeeper,
          chosen: np.ndarray) -> list[int]:
    """Places shuffled `members` whole into test (2) or val (1) while `room` lasts; returns the rest in order."""
    rest: list[int] = []
    for at, cluster in enumerate(members.tolist()):
        if room[2] <= 0 and room[1] <= 0:  # both full: every later cluster trains, or fills room left elsewhere
            return rest + members[at:].tolist()
        count = int(sizes[cluster])
        target = next((split for split in (2, 1) if count <= room[split]), 0)
        if target and keeper.allows(cluster):
            keeper.hold_out(cluster)
            room[target] -= count
            chosen[cluster] = target
        else:
            rest.append(cluster)
    return rest


def _assign_file(members: np.ndarray, sizes: np.ndarray, strata: np.ndarray, val: float, test: float,
                 rng_seed: str, keeper: _AnswerKeeper, chosen: np.ndarray) -> None:
    """Assigns one file's clusters (indexes into `sizes`, `strata`) to splits in `chosen`: 0/1/2."""
    rng = random.Random(rng_seed)
    size = int(sizes[members].sum())
    n_test = _share(size, test)
    n_val = _share(size - n_test, val / (1 - test) if test < 1 else 0)
    names = sorted(set(strata[members].tolist()))
    by_stratum = {name: members[strata[members] == name] for name in names}
    amounts = {name: int(sizes[part].sum()) for name, part in by_stratum.items()}
    room = {2: _quotas(n_test, amounts, rng), 1: _quotas(n_val, amounts, rng)}
    leftovers: list[int] = []
    for name in names:
        order = np.random.default_rng(rng.getrandbits(64)).permutation(by_stratum[name])
        leftovers += _fill(order, sizes, {2: room[2][name], 1: room[1][name]}, keeper, chosen)
    wanted = {2: n_test, 1: n_val}
    spare = {split: wanted[split] - int(sizes[members[chosen[members] == split]].sum()) for split in wanted}
    left = np.asarray(leftovers, dtype=np.int64)
    fits = left[sizes[left] <= max(spare.values())]  # room a stratum could not use goes to other clusters
    _fill(fits, sizes, spare, keeper, chosen)


def assign_split_codes(
    file_codes: np.ndarray, file_names: list[str], stratum_codes: np.ndarray, groups: np.ndarray | list[int],
    val: float, test: float, seed: int, answers: np.ndarray | list[int] | None = None,
    train_only: set[str] | frozenset[str] = frozenset(),
) -> np.ndarray:
    """Returns a split number per record (0 train, 1 val, 2 test); a group never straddles splits.

    Records come as codes, a few bytes a record: `file_codes` index `file_names`, `stratum_codes`
    number the categories. A group belongs to the file and stratum of its first record. A file with
    at least 3 records gets at least one test record when `test > 0`. With `answers` (a key per
    record), an answer given by several records keeps one of them in train. A group with a record of
    a `train_only` file (`held_out: false`) trains whole.

    >>> assign_split_codes(np.zeros(4, int), ["a.csv"], np.zeros(4, int), [0, 0, 2, 3], 0.0, 0.25, 0).tolist()
    [0, 0, 0, 2]
    """
    labels, first, cluster = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    cluster = cluster.reshape(-1)
    sizes = np.bincount(cluster, minlength=len(labels))
    keeper = _AnswerKeeper(cluster, answers, len(labels))
    chosen = np.zeros(len(labels), dtype=np.int8)
    held = np.ones(len(labels), dtype=bool)
    forced = np.flatnonzero(np.isin(np.asarray(file_names, dtype=object), list(train_only)))
    held[cluster[np.isin(file_codes, forced)]] = False
    owner, strata = np.asarray(file_codes)[first], np.asarray(stratum_codes)[first]
    for code in sorted(range(len(file_names)), key=lambda index: file_names[index]):
        members = np.flatnonzero((owner == code) & held)
        if len(members):
            _assign_file(members, sizes, strata, val, test, f"{seed}:{Path(file_names[code]).name}", keeper, chosen)
    return chosen[cluster]
