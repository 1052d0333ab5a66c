"""HTTP to the chain node with a deadline for each whole request.

requests bounds every read from the socket (RPC_TIMEOUT_S), never a request's total, and so
does urllib3 (its `Timeout.total` bounds the connect plus each read). A node that sends a byte
every few seconds, in its headers or its body, held the caller for as long as it kept dripping
(outside attacker review): a chain thread of the service, the health check, the indexer. Here
each request is cut at its deadline (`registry.deadline`) and fails with requests.ReadTimeout.
The sockets to cut are those the request reads from, which its connections name as they
start waiting for an answer.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from registry.deadline import cut_after

__all__ = ["RPC_DEADLINE_S", "RPC_TIMEOUT_S", "DeadlineSession", "node_deadline"]

RPC_TIMEOUT_S = 30
"""How long one read from the node's socket may wait."""
RPC_DEADLINE_S = 4 * RPC_TIMEOUT_S
"""How long one RPC request may take in all, its answer read whole."""

# The deadline this thread's requests run under: the sockets they read from, and whether it
# passed; None outside one.
_reading = threading.local()


@contextmanager
def node_deadline(seconds: float) -> Iterator[threading.Event]:
    """Every request that this thread makes through a DeadlineSession in the block is cut
    when the block has run `seconds`, answers being read included (a `stream=True` answer
    read after the request returned); the event yielded tells whether it was. A deadline
    within another is the outer one."""
    outer = getattr(_reading, "deadline", None)
    if outer is not None:
        yield outer[1]
        return
    sockets: list[socket.socket] = []
    try:
        # A socket that finished before the cut is back in urllib3's pool, which sees it
        # dropped and connects anew.
        with cut_after(seconds, lambda: sockets) as expired:
            _reading.deadline = (sockets, expired)
            yield expired
    finally:
        _reading.deadline = None


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_reading, "deadline", None)
    if deadline is not None and sock is not None:
        deadline[0].append(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self.sock)  # before the status line is read: headers can drip too
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


class DeadlineSession(requests.Session):
    """A requests session whose every request, answer read whole, ends within `deadline_s`
    or fails with requests.ReadTimeout. A `stream=True` answer is read after the request
    returned: read it inside `node_deadline`."""

    def __init__(self, deadline_s: float) -> None:
        super().__init__()
        self.deadline_s = deadline_s
        # One session serves every thread of a process (web3 would make one per thread), so
        # its pool keeps as many connections as the service has threads waiting on the node.
        adapter = _WatchedAdapter(pool_maxsize=32)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with node_deadline(self.deadline_s) as expired:
            try:
                response = super().send(request, **kwargs)
            except (requests.RequestException, OSError) as exc:
                if expired.is_set():
                    raise requests.ReadTimeout(
                        f"no whole answer within the deadline ({type(exc).__name__})"
                    ) from None
                raise
            # An answer read until the connection closed looks whole when the timer cut it.
            if expired.is_set():
                raise requests.ReadTimeout("no whole answer within the deadline")
            return response
