"""Admission of store reads: where they run, how many at once, how many may wait, and what
the rest are told.

The hot read routes (resolve) read the store. On SQLite a lookup takes a tenth of a
millisecond, less than handing it to a worker thread and back costs (two thread wake-ups,
each a chance for the operating system to run something else while the GIL is held), so
such reads run on the event loop under a time budget: a read past it stops and runs again in
a worker thread, so no read holds up the loop for long. PostgreSQL reads wait on the network
and always go to threads.

Unbounded, threaded reads queued without limit, every answer waited behind them, and each
thread beyond the store's connection pool opened and closed a database connection of its own
per request. A process now runs a few at once, lets a bounded number wait on the event loop
(a waiting request holds no thread), and answers the rest at once, so queues stay short and
their waits bounded: 503 with `Retry-After` past the process's bound, 429 with `Retry-After`
past a client's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from registry.api.errors import Overloaded, RateLimited
from registry.store.connection import ReadOverBudget

__all__ = ["StoreReads"]

RETRY_AFTER_S = 1.0


class StoreReads:
    """At most `threads` threaded store reads at once per process; at most `queue` admitted
    (running or waiting) in all and `per_client` per client address. With `inline`, the
    store's `read_budget` and a budget in seconds, a read first runs on the event loop within
    that budget, and only reads past it take a slot. Used from the event loop only, so the
    counts need no lock."""

    def __init__(
        self,
        threads: int,
        queue: int,
        per_client: int,
        inline: tuple[Callable[[float], Any], float] | None = None,
    ) -> None:
        self.threads = threads
        self.queue = queue
        self.per_client = per_client
        self.inline = inline
        self.admitted = 0
        self.by_client: dict[str, int] = {}
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, client: str, work: Callable[[], Any]) -> Any:
        """`work()`, once admitted: on the loop if it fits the inline budget, else in a worker
        thread."""
        if self.inline is not None:
            # Outside the bounds below: a read on the loop holds no slot and waits for
            # nothing, so clients that fill the slots with long reads cannot shut out short
            # ones (attacker review: four addresses held all 256).
            budget, seconds = self.inline
            try:
                with budget(seconds):
                    return work()
            except ReadOverBudget:
                pass  # a long read: it runs again where it holds up nobody
        with self._admitted(client):
            if self._limiter is None:  # created on the event loop that serves the app
                self._limiter = anyio.CapacityLimiter(self.threads)
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    @contextmanager
    def _admitted(self, client: str) -> Iterator[None]:
        if self.admitted >= self.queue:
            raise Overloaded("this service is busy; retry in a second", RETRY_AFTER_S)
        mine = self.by_client.get(client, 0)
        if mine >= self.per_client:
            raise RateLimited(
                f"more than {self.per_client} requests of this client at once; retry in a second",
                RETRY_AFTER_S,
            )
        self.admitted += 1
        self.by_client[client] = mine + 1
        try:
            yield
        finally:
            self.admitted -= 1
            left = self.by_client[client] - 1
            if left:
                self.by_client[client] = left
            else:
                del self.by_client[client]
