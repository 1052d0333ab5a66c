"""ISCC-CODEs of many files: directory expansion, a process pool over the cores, progress events.

One failing file never stops a batch: its error is returned in its place. Workers report the
media time they have decoded through a queue, so a caller can show progress on a long film.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from registry.errors import RegistryError
from registry.iscc.generate import IsccResult, generate

__all__ = ["BatchItem", "expand_paths", "generate_many"]

_REPORT_EVERY = 0.25  # seconds between progress events a worker sends

OnProgress = Callable[[Path, float, float | None], None]
"""Told (file, media seconds decoded, total seconds or None) while a file is being decoded."""


@dataclass(frozen=True)
class BatchItem:
    """One file of a batch and its outcome: a result or the error that stopped it."""

    path: Path
    result: IsccResult | None = None
    error: str | None = None


def expand_paths(inputs: Iterable[Path]) -> list[Path]:
    """Files given, plus every regular file below given directories (sorted, recursive).

    Paths that do not exist are kept, so that they fail with a clear message in their turn.
    """
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file())
        else:
            found.append(path)
    return found


def _generate_one(path: Path, sink: queue.Queue | OnProgress | None) -> BatchItem:
    """Runs in a worker (`sink` a shared queue) or in this process (`sink` the callback)."""
    last = 0.0

    def report(done: float, total: float | None) -> None:
        nonlocal last
        now = time.monotonic()
        if sink is None or now - last < _REPORT_EVERY:
            return
        last = now
        if callable(sink):
            sink(path, done, total)
        else:
            sink.put((path, done, total))

    try:
        return BatchItem(path, result=generate(path, progress=report))
    except RegistryError as exc:
        return BatchItem(path, error=str(exc))
    except MemoryError:
        return BatchItem(path, error=f"out of memory while coding {path.name}")


def generate_many(
    paths: list[Path], jobs: int | None = None, on_progress: OnProgress | None = None
) -> Iterator[BatchItem]:
    """Outcomes in input order; files run `jobs` at a time (default: one per core)."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    if jobs == 1:
        for path in paths:
            yield _generate_one(path, on_progress)
        return
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(jobs) as pool:
        shared = manager.Queue() if on_progress else None
        futures: list[Future[BatchItem]] = [
            pool.submit(_generate_one, path, shared) for path in paths
        ]
        for path, future in zip(paths, futures, strict=True):
            while True:
                try:
                    item = future.result(timeout=0.1)
                    break
                except TimeoutError:
                    _drain(shared, on_progress)
                except Exception as exc:  # a worker that died (killed, crashed decoder)
                    item = BatchItem(path, error=f"worker failed on {path.name}: {exc}")
                    break
            _drain(shared, on_progress)
            yield item


def _drain(events: queue.Queue | None, on_progress: OnProgress | None) -> None:
    if events is None or on_progress is None:
        return
    while True:
        try:
            path, done, total = events.get_nowait()
        except queue.Empty:
            return
        on_progress(path, done, total)
