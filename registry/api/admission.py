"""Admission of store reads: how many a process runs at once, how many may wait, and what the
rest are told.

The hot read routes (resolve) hand their store work to worker threads. Unbounded, a flood of
them queued without limit, every answer waited behind it, and each thread beyond the store's
connection pool opened and closed a database connection of its own per request. A process
now runs a few at once, lets a bounded number wait on the event loop (a waiting request holds
no thread), and answers the rest at once, so queues stay short and their waits bounded:
503 with `Retry-After` past the process's bound, 429 with `Retry-After` past a client's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from registry.api.errors import Overloaded, RateLimited

__all__ = ["StoreReads"]

RETRY_AFTER_S = 1.0


class StoreReads:
    """At most `threads` store reads at once per process; at most `queue` admitted (running
    or waiting) in all and `per_client` per client address. Used from the event loop only,
    so the counts need no lock."""

    def __init__(self, threads: int, queue: int, per_client: int) -> None:
        self.threads = threads
        self.queue = queue
        self.per_client = per_client
        self.admitted = 0
        self.by_client: dict[str, int] = {}
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, client: str, work: Callable[[], Any]) -> Any:
        """`work()` in a worker thread, once admitted."""
        if self.admitted >= self.queue:
            raise Overloaded("this service is busy; retry in a second", RETRY_AFTER_S)
        mine = self.by_client.get(client, 0)
        if mine >= self.per_client:
            raise RateLimited(
                f"more than {self.per_client} requests of this client at once; retry in a second",
                RETRY_AFTER_S,
            )
        if self._limiter is None:  # created on the event loop that serves the app
            self._limiter = anyio.CapacityLimiter(self.threads)
        self.admitted += 1
        self.by_client[client] = mine + 1
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)
        finally:
            self.admitted -= 1
            left = self.by_client[client] - 1
            if left:
                self.by_client[client] = left
            else:
                del self.by_client[client]
