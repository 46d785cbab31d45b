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
    that several records give; remembers the clusters that were."""

    def __init__(self, groups: np.ndarray, answers: np.ndarray | None) -> None:
        self.by_group: dict[int, dict[int, int]] = {}
        self.left: dict[int, int] = {}
        if answers is None:
            return
        answers = np.asarray(answers)
        keys, inverse, counts = np.unique(answers, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        for group, answer in zip(groups[shared].tolist(), answers[shared].tolist()):
            given = self.by_group.setdefault(group, {})
            given[answer] = given.get(answer, 0) + 1
        self.left = {int(key): int(count) for key, count in zip(keys.tolist(), counts.tolist()) if count > 1}

    def allows(self, group: int) -> bool:
        return all(self.left[answer] > count for answer, count in self.by_group.get(group, {}).items())

    def hold_out(self, group: int) -> None:
        for answer, count in self.by_group.get(group, {}).items():
            self.left[answer] -= count


def _assign_file(clusters: list[tuple[int, int, str]], val: float, test: float, rng_seed: str,
                 keeper: _AnswerKeeper) -> dict[int, int]:
    """Assigns the (label, size, stratum) clusters of one file to splits: label -> 0/1/2."""
    rng = random.Random(rng_seed)
    size = sum(count for _, count, _ in clusters)
    n_test = _share(size, test)
    n_val = _share(size - n_test, val / (1 - test) if test < 1 else 0)
    by_stratum: dict[str, list[tuple[int, int, str]]] = {}
    for cluster in clusters:
        by_stratum.setdefault(cluster[2], []).append(cluster)
    sizes = {name: sum(count for _, count, _ in members) for name, members in sorted(by_stratum.items())}
    room = {2: _quotas(n_test, sizes, rng), 1: _quotas(n_val, sizes, rng)}
    spare = {2: n_test, 1: n_val}
    assigned: dict[int, int] = {}
    leftovers = []
    for name in sizes:
        members = by_stratum[name]
        rng.shuffle(members)
        for label, count, _ in members:
            # A cluster goes where it fits whole; one too big for test or val trains.
            held = keeper.allows(label)
            target = next((split for split in (2, 1) if held and count <= room[split][name]), 0)
            if target:
                keeper.hold_out(label)
                room[target][name] -= count
                spare[target] -= count
            else:
                leftovers.append((label, count))
            assigned[label] = target
    for label, count in leftovers:  # room a stratum could not use goes to other clusters of the file
        target = next((split for split in (2, 1) if 0 < count <= spare[split] and keeper.allows(label)), 0)
        if target:
            keeper.hold_out(label)
            spare[target] -= count
        assigned[label] = target
    return assigned


def assign_splits(
    files: list[str], strata: list[str], groups: np.ndarray | list[int], val: float, test: float, seed: int,
    answers: np.ndarray | list[int] | None = None, train_only: set[str] | frozenset[str] = frozenset(),
) -> np.ndarray:
    """Returns a split number per record (0 train, 1 val, 2 test); a group never straddles splits.

    A group belongs to the file and stratum of its first record. A file with at least 3 records
    gets at least one test record when `test > 0`. With `answers` (a key per record), an answer
    given by several records keeps one of them in train. A group with a record of a `train_only`
    file (`held_out: false`) trains whole.

    >>> assign_splits(["a.csv"] * 4, [""] * 4, [0, 0, 2, 3], 0.0, 0.25, 0).tolist()
    [0, 0, 0, 2]
    """
    groups = np.asarray(groups)
    keeper = _AnswerKeeper(groups, answers)
    labels, first, counts = np.unique(groups, return_index=True, return_counts=True)
    by_file: dict[str, list[tuple[int, int, str]]] = {}
    forced = {int(group) for group, name in zip(groups.tolist(), files) if name in train_only} if train_only else set()
    chosen: dict[int, int] = {label: 0 for label in forced}
    for label, index, count in zip(labels.tolist(), first.tolist(), counts.tolist()):
        if label not in forced:
            by_file.setdefault(files[index], []).append((label, count, strata[index]))
    for name in sorted(by_file):
        chosen.update(_assign_file(by_file[name], val, test, f"{seed}:{Path(name).name}", keeper))
    lookup = np.array([chosen[label] for label in labels.tolist()], dtype=np.int8)
    return lookup[np.searchsorted(labels, groups)]
