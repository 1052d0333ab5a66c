"""Worker threads for requests that wait on the chain node: bounded apart from everyone else's.

Sync routes and `anyio.to_thread` share one pool of 40 threads. A request that asks the node
(a relay's checks, preparing a declaration) may wait its whole RPC timeout on a node that hangs:
45 relay posts, or as many prepares, held every thread and every search, case and metadata
request waited with them (outside attacker reviews). These requests are admitted as store reads
are (`StoreReads`, without reads on the loop): at most CHAIN_THREADS threads, at most
CHAIN_QUEUE more waiting and holding none, at most CHAIN_PER_CLIENT of one client address, so
one client cannot take the queue from the others; beyond, they are refused at once (503
`overloaded`, 429 `rate-limited`) rather than answered long after their clients left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from registry.api.admission import StoreReads
from registry.api.state import client_of

__all__ = ["CHAIN_PER_CLIENT", "CHAIN_QUEUE", "CHAIN_THREADS", "chain_admission", "in_chain_thread"]

CHAIN_THREADS = 8
CHAIN_QUEUE = 32
CHAIN_PER_CLIENT = 8


def chain_admission() -> StoreReads:
    """The admission of one app's requests that wait on the node."""
    return StoreReads(CHAIN_THREADS, CHAIN_THREADS + CHAIN_QUEUE, CHAIN_PER_CLIENT)


async def in_chain_thread(request: Request, work: Callable[[], Any]) -> Any:
    """`work` in a worker thread of the chain requests' own bound, once admitted."""
    admission: StoreReads = request.app.state.chain_admission
    return await admission.run(client_of(request), work)
