"""One deadline for a whole network exchange, however slowly the other side answers.

A socket's timeout bounds each operation, never an exchange: a peer that sends a byte every few
seconds restarts the wait for ever (outside attacker reviews: a webhook receiver, a chain
node). A `Cut` names the sockets an exchange reads from and shuts them down when its deadline
passes; the blocked read returns at once, and the caller, seeing its error and the deadline
passed, reports the latter. A socket named after the deadline passed is shut down at once, so
an exchange whose connect alone outlasted the deadline goes no further.

One watchdog thread serves every Cut of the process: a timer thread per exchange added about
240 us to each call to the node (outside review; scripts/bench_node_http.py measures what one
watchdog adds, about 30 us).
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["Cut", "cut_after"]


# The longest the watchdog sleeps at once (Condition.wait refuses longer waits).
_LONGEST_WAIT_S = 3600.0


def _shut(sock: socket.socket) -> None:
    # TLS within TLS (an https:// proxy) is urllib3's SSLTransport, which has no shutdown: its
    # `socket` is the one under it. Whatever else a socket raises, the cut goes on to the next.
    with suppress(Exception):
        getattr(sock, "socket", sock).shutdown(socket.SHUT_RDWR)


class Cut:
    """The deadline of one exchange, within its `parent`'s if it has one."""

    def __init__(self, at: float, parent: Cut | None = None) -> None:
        self.at = at
        self.parent = parent
        self._sockets: list[socket.socket] = []
        self._expired = False
        self.closed = False
        self._lock = threading.Lock()

    @property
    def expired(self) -> bool:
        """Whether this deadline, or one it is within, has passed (by the clock, too: the
        watchdog may not have come round to it yet)."""
        if self._expired or time.monotonic() >= self.at:
            return True
        return self.parent is not None and self.parent.expired

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock` at this deadline and its parents' (at once if one passed)."""
        cut: Cut | None = self
        while cut is not None:
            with cut._lock:
                if cut._expired:
                    _shut(sock)
                elif not cut.closed and sock not in cut._sockets:
                    cut._sockets.append(sock)
            cut = cut.parent

    def unwatch(self, sock: socket.socket) -> None:
        """Leave `sock` alone from now on: its exchange is over, and the connection may serve
        another exchange, which this deadline must not cut."""
        cut: Cut | None = self
        while cut is not None:
            with cut._lock, suppress(ValueError):
                cut._sockets.remove(sock)
            cut = cut.parent

    def fire(self) -> None:
        """The deadline passed: shut down the sockets (under the lock, so that none is handed
        to another exchange meanwhile)."""
        with self._lock:
            if self.closed:
                return
            self._expired = True
            for sock in self._sockets:
                _shut(sock)
            self._sockets.clear()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._sockets.clear()


class _Watchdog:
    """Fires each Cut at its time; closed ones are dropped as they come up, and the heap is
    rebuilt when they are most of it."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Cut]] = []
        self._order = itertools.count()
        self._live = 0
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, cut: Cut) -> None:
        with self._wake:
            if len(self._heap) > 2 * self._live + 1024:
                self._heap = [entry for entry in self._heap if not entry[2].closed]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (cut.at, next(self._order), cut))
            self._live += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is cut:
                self._wake.notify()

    def done(self) -> None:
        with self._wake:
            self._live = max(0, self._live - 1)

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2].closed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(min(wait, _LONGEST_WAIT_S))
                    continue
                with suppress(Exception):  # the watchdog must outlive any one cut
                    heapq.heappop(self._heap)[2].fire()


_WATCHDOG = _Watchdog()


def _forked() -> None:
    """A child of fork() has no watchdog thread, and must not fire its parent's cuts: they
    would shut down the parent's sockets through the inherited descriptors."""
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


os.register_at_fork(after_in_child=_forked)


@contextmanager
def cut_after(seconds: float, parent: Cut | None = None) -> Iterator[Cut]:
    """A Cut at `seconds` from now (within `parent`) for the block; the sockets it watches are
    left alone once the block ends."""
    if math.isnan(seconds):
        raise ValueError("a deadline of NaN seconds")
    cut = Cut(time.monotonic() + seconds, parent)
    _WATCHDOG.add(cut)
    try:
        yield cut
    finally:
        cut.close()
        _WATCHDOG.done()
