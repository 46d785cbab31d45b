"""LSH bands of MinHash signatures, sorted by key, computed ahead in forked processes for big stores.

    python -c "import numpy as np; from data_tools.bands import sorted_bands; print(len(list(sorted_bands(np.zeros((3, 128), np.uint16), 5))))"

Each band's keys and their sort order (~0.2 s a band at 1M texts) depend neither on each other
nor on what the caller does with the band before, so helper processes compute the next bands
while the caller checks the pairs of this one. The signatures reach the helpers through fork
(shared pages, never pickled); only each band's sorted keys and order come back.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

PARALLEL_MIN_TEXTS = 50_000  # below this a band takes milliseconds: helpers would cost more than they save
_SHARED: dict[str, np.ndarray] = {}


def _sorted_band(band: int, band_rows: int) -> tuple[np.ndarray, np.ndarray]:
    from data_tools.dedupe import band_keys

    keys = band_keys(_SHARED["signatures"], band, band_rows)
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def sorted_bands(signatures: np.ndarray, band_rows: int, processes: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (sorted keys, order) for each band of `band_rows` bins, in band order; with
    `processes` helpers (forked) computing up to `processes + 1` bands ahead, else here.
    The output is the same either way."""
    from data_tools.dedupe import BINS

    bands = range(BINS // band_rows)
    _SHARED["signatures"] = signatures
    try:
        if processes < 1 or len(signatures) < PARALLEL_MIN_TEXTS:
            for band in bands:
                yield _sorted_band(band, band_rows)
            return
        context = multiprocessing.get_context("fork")  # shares the signatures; spawn would re-run the caller
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            pending: deque[Future] = deque()
            for band in bands:
                pending.append(pool.submit(_sorted_band, band, band_rows))
                if len(pending) > processes:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        _SHARED.clear()
