"""Worker threads for requests that wait on the chain node: bounded apart from everyone else's.

Sync routes and `anyio.to_thread` share one pool of 40 threads. A request that asks the node
(a relay's checks, preparing a declaration) may wait its whole RPC timeout on a node that hangs:
45 relay posts, or as many prepares, held every thread and every search, case and metadata
request waited with them (outside attacker reviews). These requests hold at most CHAIN_THREADS
threads; at most CHAIN_QUEUE more wait for one, holding none, and beyond that they are refused
at once (503 `overloaded`) rather than answered long after their clients left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi import Request

from registry.api.errors import Overloaded

__all__ = ["CHAIN_QUEUE", "CHAIN_THREADS", "in_chain_thread"]

CHAIN_THREADS = 8
CHAIN_QUEUE = 32

T = TypeVar("T")


async def in_chain_thread(request: Request, work: Callable[[], T]) -> T:
    """`work` in a worker thread of the chain requests' own bound."""
    limiter = getattr(request.app.state, "chain_threads", None)
    if limiter is None:  # made on the event loop that serves the app
        limiter = request.app.state.chain_threads = anyio.CapacityLimiter(CHAIN_THREADS)
    if limiter.statistics().tasks_waiting >= CHAIN_QUEUE:
        raise Overloaded("too many requests are waiting for the chain node; retry shortly", 1.0)
    return await anyio.to_thread.run_sync(work, limiter=limiter)
