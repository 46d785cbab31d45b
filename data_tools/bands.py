"""Forked helper processes for the data stage: LSH bands computed ahead, a task run aside, wide result pipes.

    python -c "import numpy as np; from data_tools.bands import sorted_bands; print(len(list(sorted_bands(np.zeros((3, 128), np.uint16), 5))))"

Each band's keys and their sort order (~0.2 s a band at 1M texts) depend neither on each other
nor on what the caller does with the band before, so helper processes compute the next bands
while the caller checks the pairs of this one. The signatures reach the helpers through fork
(shared pages, never pickled); only each band's sorted keys and order come back.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

PARALLEL_MIN_TEXTS = 50_000  # below this a band takes milliseconds: helpers would cost more than they save
_SHARED: dict[str, Any] = {}
T = TypeVar("T")
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size for unprivileged processes


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
            widen_result_pipe(pool)
            pending: deque[Future] = deque()
            for band in bands:
                pending.append(pool.submit(_sorted_band, band, band_rows))
                if len(pending) > processes:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        _SHARED.pop("signatures", None)


def widen_result_pipe(pool: ProcessPoolExecutor, size: int = PIPE_BYTES) -> None:
    """Lets the pool's result pipe hold a whole chunk's results (Linux; elsewhere a no-op).

    A 64 KB pipe made a ~2 MB result ~30 reads, and the thread reading them waited for the GIL
    before each while this process cleaned a chunk: workers stalled on full pipes (1M rows: pass
    one 52 s -> 40 s with 1 MB). The pipe is a private attribute of the pool, hence the guard.
    """
    try:
        import fcntl

        fcntl.fcntl(pool._result_queue._reader.fileno(), fcntl.F_SETPIPE_SZ, size)  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):  # not Linux, another Python, or over pipe-max-size
        pass


def _run_shared() -> Any:
    function, args = _SHARED["task"]
    return function(*args)


@contextmanager
def aside(function: Callable[..., T], *args: Any, run_aside: bool = True) -> Iterator[Callable[[], T]]:
    """Runs `function(*args)` in a forked process while the caller works; yields a call that waits
    for its result. Arguments reach it through fork (shared pages, never pickled); only the result
    comes back. With `run_aside` False it runs here, when the result is first asked for.

    >>> with aside(sum, [1, 2], run_aside=False) as result: result()
    3
    """
    if not run_aside:
        yield lambda: function(*args)
        return
    _SHARED["task"] = (function, args)
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            widen_result_pipe(pool)
            future = pool.submit(_run_shared)  # forks now, while _SHARED holds the task
            _SHARED.pop("task")
            yield future.result
    finally:
        _SHARED.pop("task", None)
