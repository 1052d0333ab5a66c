"""Worker threads for requests that wait on the chain node: bounded apart from everyone else's.

Sync routes and `anyio.to_thread` share one pool of 40 threads. A request that asks the node
(a relay's checks, preparing a declaration) may wait its whole RPC timeout on a node that hangs:
45 relay posts, or as many prepares, held every thread and every search, case and metadata
request waited with them (outside attacker reviews). These requests are admitted as store reads
are (`StoreReads`, without reads on the loop): at most CHAIN_THREADS threads, at most
CHAIN_QUEUE more waiting and holding none, at most CHAIN_PER_CLIENT of one client address, so
one client cannot take the queue from the others; beyond, they are refused at once (503
`overloaded`, 429 `rate-limited`) rather than answered long after their clients left.

A few requests of the shared pool ask the node in passing: a smart wallet's signature check on
a licence note, the block times of a declaration page. They stay where they are, and their
node calls take a slot (`NodeWaits`: WALLET_NODE_WAITS for wallet checks, PAGE_NODE_WAITS for
pages, apart so that page views cannot take the wallet checks' slots) or are not made: such a
request is refused (503) or shown without the node's part.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from registry.api.admission import StoreReads
from registry.api.state import client_of

__all__ = [
    "CHAIN_PER_CLIENT",
    "CHAIN_QUEUE",
    "CHAIN_THREADS",
    "PAGE_NODE_WAITS",
    "WALLET_NODE_WAITS",
    "NodeWaits",
    "chain_admission",
    "in_chain_thread",
]

CHAIN_THREADS = 8
CHAIN_QUEUE = 32
CHAIN_PER_CLIENT = 8
WALLET_NODE_WAITS = 4
PAGE_NODE_WAITS = 2


def chain_admission() -> StoreReads:
    """The admission of one app's requests that wait on the node."""
    return StoreReads(CHAIN_THREADS, CHAIN_THREADS + CHAIN_QUEUE, CHAIN_PER_CLIENT)


async def in_chain_thread(request: Request, work: Callable[[], Any]) -> Any:
    """`work` in a worker thread of the chain requests' own bound, once admitted."""
    admission: StoreReads = request.app.state.chain_admission
    return await admission.run(client_of(request), work)


class NodeWaits:
    """Slots for node calls made by requests of the shared pool: at most `slots` such calls at
    once. A call finds a slot free or is not made; it never queues for one, since a queue
    would hold the very threads that the bound is there to keep free."""

    def __init__(self, slots: int) -> None:
        self._free = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """True inside if a slot was free and is held until the block ends."""
        taken = self._free.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                self._free.release()
