"""Forked processes for the data stage: a task run aside while this process works, and result
pipes wide enough that a chunk's results arrive in one read.

    python -c "from data_tools.forks import aside; print(aside.__doc__.splitlines()[0])"

Fork, not spawn: the big arrays a task reads (MinHash signatures) are shared pages, never
pickled, and spawn would re-run an unguarded calling script.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

PARALLEL_MIN_TEXTS = 50_000  # fewer records: the duplicate and cluster searches take well under a second
_SHARED: dict[str, Any] = {}
T = TypeVar("T")
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size for unprivileged processes


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
