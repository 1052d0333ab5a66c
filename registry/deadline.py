"""One deadline for a whole network exchange, however slowly the other side answers.

A socket's timeout bounds each operation, never an exchange: a peer that sends a byte every few
seconds restarts the wait for ever (outside attacker reviews: a webhook receiver, a chain
node). A timer shuts the exchange's sockets down at the deadline, the blocked read returns at
once, and the caller, seeing its error and the deadline passed, reports the latter.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress

__all__ = ["cut_after"]


@contextmanager
def cut_after(
    seconds: float, sockets: Callable[[], Iterable[socket.socket | None]]
) -> Iterator[threading.Event]:
    """Shut down the sockets `sockets()` names if the block runs longer than `seconds`; the
    event yielded tells whether that happened."""
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        for sock in sockets():
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
