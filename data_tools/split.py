"""Deterministic, stratified, leakage-free train/val/test split of instruction records.

    tunebot data examples/acme-demo.yaml    # prints the split sizes

Records come with cluster ids of similar questions (data_tools.dedupe); a cluster is
assigned to one split as a whole, so no test question has a near-twin in training. Clusters
are shuffled by seed inside each source file, so every file (and every language of a bilingual
FAQ) is represented in val and test.
"""

from __future__ import annotations

import random
from pathlib import Path


def _share(size: int, fraction: float) -> int:
    if fraction <= 0 or size < 3:
        return 0
    return max(1, min(size - 1, round(size * fraction)))


def split_records(
    records: list[dict], val: float, test: float, seed: int, groups: list[int] | None = None
) -> dict[str, list[dict]]:
    """Splits records into train/val/test; records of one group always land in the same split.

    A source with at least 3 records gets at least one test record when `test > 0`.

    >>> parts = split_records(records, 0.1, 0.1, 0, cluster_ids(len(records), pairs))   # doctest: +SKIP
    """
    groups = groups if groups is not None else list(range(len(records)))
    members: dict[int, list[dict]] = {}
    for record, group in zip(records, groups):
        members.setdefault(group, []).append(record)
    by_file: dict[str, list[list[dict]]] = {}
    for cluster in members.values():  # a cluster belongs to the file of its first record
        by_file.setdefault(cluster[0]["source"].rsplit(":", 1)[0], []).append(cluster)
    parts: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for name in sorted(by_file):
        clusters = by_file[name]
        random.Random(f"{seed}:{Path(name).name}").shuffle(clusters)
        size = sum(len(cluster) for cluster in clusters)
        n_test = _share(size, test)
        n_val = _share(size - n_test, val / (1 - test) if test < 1 else 0)
        room = {"test": n_test, "val": n_val}
        for cluster in clusters:
            # A cluster goes where it fits whole; one too big for test or val trains.
            target = next((name for name in ("test", "val") if len(cluster) <= room[name]), "train")
            room[target] = room.get(target, 0) - len(cluster)
            parts[target].extend(cluster)
    return parts
