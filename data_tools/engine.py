"""Executors for the data stage's tasks: this process, a local process pool, or a Ray cluster.

    python -c "from data_tools.engine import LocalEngine; print(LocalEngine(1).map(abs, [-1, -2]))"

A task is a top-level function and its arguments; every task reads and writes files in the stage's
work folder, so an executor only runs functions and hands back their (small) results in task order.
The steps never see the executor, as datatrove keeps PipelineStep apart from LocalPipelineExecutor.
`run_tasks` makes a stage resumable: a finished task leaves a marker with its fingerprint, and a
rerun after a kill skips every task whose marker matches.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from tunebot.rundir import atomic_write_json


class Engine(Protocol):
    """Runs `fn(*args)` for every args tuple; returns the results in the same order."""

    name: str
    workers: int

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[Any]: ...


class LocalEngine:
    """Runs tasks in this process (one worker) or in a pool of fresh processes (forkserver, not fork:
    nothing of this process's state is shared, as on macOS and Python 3.14's default)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[Any]:
        """Yields each task's result in task order, as soon as it and those before it are done."""
        if self.workers <= 1 or len(tasks) <= 1:
            yield from (fn(*args) for args in tasks)
            return
        if self._pool is None:
            method = "forkserver" if sys.platform.startswith("linux") else "spawn"
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method))
        futures = [self._pool.submit(fn, *args) for args in tasks]
        try:
            yield from (future.result() for future in futures)
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        """Stops the pool's processes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class RayEngine:
    """Runs each task as a Ray task (one CPU each) on the cluster at `address` ("local" starts one here).

    Ray core tasks re-raise a task's exception here (RayTaskError), so no failure passes unseen; the
    work folder must be on a filesystem every node sees (NFS, Lustre, a mounted bucket).
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            from data_tools.readers import DataError

            raise DataError("data.engine: ray needs Ray: pip install 'tunebot[scale]'") from None
        self.workers, self._ray = workers, ray
        if not ray.is_initialized():
            local = address in (None, "local")
            ray.init(address="local" if local else address, num_cpus=workers if local else None,
                     include_dashboard=False, log_to_driver=False, runtime_env=_runtime_env())
        self.workers = int(ray.cluster_resources().get("CPU", workers))

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[Any]:
        """Yields each task's result in task order (all are submitted at once; Ray schedules them)."""
        remote = self._ray.remote(num_cpus=1)(fn)
        yield from (self._ray.get(ref) for ref in [remote.remote(*args) for args in tasks])

    def close(self) -> None:
        """Leaves the cluster running (it may be the user's); a local one stops with this process."""


def _runtime_env() -> dict[str, Any]:
    """Workers import tunebot from the same folder as this process (a checkout or site-packages)."""
    root = str(Path(__file__).resolve().parent.parent)
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}}


def make_engine(engine: str, workers: int | None, address: str | None = None) -> LocalEngine | RayEngine:
    """Returns the configured executor: `data.engine`, `data.workers` (None = the CPU count, at most 4)."""
    count = workers or min(4, os.cpu_count() or 1)
    return RayEngine(count, address) if engine == "ray" else LocalEngine(count)


def run_tasks(engine: Engine, fn: Callable[..., Any], tasks: dict[str, tuple], done: Path,
              fingerprint: str) -> dict[str, Any]:
    """Runs the named tasks whose done marker is missing or stale; returns every task's result by name.

    A task's result is stored in its marker (JSON), so a resumed stage gets the results of the tasks it
    skips. Tasks write their files atomically before returning, so a marker means the files are whole.
    """
    done.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    todo = []
    for name, args in tasks.items():
        marker = done / f"{name}.json"
        if marker.is_file():
            stored = json.loads(marker.read_text(encoding="utf-8"))
            if stored.get("fingerprint") == fingerprint:
                results[name] = stored["result"]
                continue
        todo.append(name)
    for name, result in zip(todo, engine.map(fn, [tasks[name] for name in todo])):
        atomic_write_json(done / f"{name}.json", {"fingerprint": fingerprint, "result": result})
        results[name] = result
    return {name: results[name] for name in tasks}
