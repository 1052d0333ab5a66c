"""HTTP to the chain node with a deadline for each whole request.

requests bounds every read from the socket (RPC_TIMEOUT_S), never a request's total, and so
does urllib3 (its `Timeout.total` bounds the connect plus each read). A node that sends a byte
every few seconds, in its headers or its body, held the caller for as long as it kept dripping
(outside attacker review): a chain thread of the service, the health check, the indexer. Here
each request is cut at its deadline (`registry.deadline`) and fails with requests.ReadTimeout.

The sockets to cut are the ones the request uses: its connections name theirs as soon as they
are made (before a TLS handshake) and as they start waiting for an answer, and leave the
deadline when urllib3 takes them back into its pool. Name resolution is not bounded: no socket
to cut exists yet, and the resolver is the operator's own.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from registry.deadline import Cut, cut_after

__all__ = ["RPC_DEADLINE_S", "RPC_TIMEOUT_S", "DeadlineSession", "node_deadline"]

RPC_TIMEOUT_S = 30
"""How long one read from the node's socket may wait."""
RPC_DEADLINE_S = 4 * RPC_TIMEOUT_S
"""How long one RPC request may take in all, its answer read whole."""

# The innermost deadline this thread's requests run under (None outside one).
_reading = threading.local()


@contextmanager
def node_deadline(seconds: float) -> Iterator[Cut]:
    """Every request this thread makes through a DeadlineSession in the block is cut when the
    block has run `seconds`, or when a deadline it is within passes; answers being read are
    cut too (a `stream=True` answer is read after the request returned). The Cut yielded
    says whether that happened (`expired`)."""
    parent: Cut | None = getattr(_reading, "cut", None)
    if parent is not None and parent.at <= time.monotonic() + seconds:
        # It cannot end first (a web3 call's tries, then each try's session): the deadline
        # already running serves, rather than a second one watching the same sockets.
        yield parent
        return
    with cut_after(seconds, parent) as cut:
        _reading.cut = cut
        try:
            yield cut
        finally:
            _reading.cut = parent


class _Watched:
    """What the connections of a DeadlineSession add: they name their socket to the thread's
    deadline as soon as it is made and as they wait for an answer (a kept-alive connection
    was made by an earlier request), and remember the deadline, so that the socket leaves it
    when urllib3 takes the connection back, whichever thread gives it back."""

    sock: Any
    watched_by: Cut | None = None
    _handshake: socket.socket | None = None

    def _watch(self, sock: Any) -> None:
        cut: Cut | None = getattr(_reading, "cut", None)
        if cut is not None and sock is not None:
            if self.watched_by is not None and self.watched_by is not cut:
                self.unwatch()
            cut.watch(sock)
            self.watched_by = cut

    def unwatch(self) -> None:
        if self.watched_by is not None and self.sock is not None:
            self.watched_by.unwatch(self.sock)
        self.watched_by = None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        # TLS takes the socket over (its descriptor moves to the TLS socket) before the
        # handshake, which a node may hold: a duplicate of it is cut meanwhile, as shutting
        # it down ends the connection for both.
        self._handshake = sock.dup()
        self._watch(self._handshake)
        return sock

    def connect(self) -> None:
        try:
            super().connect()  # type: ignore[misc]
        finally:
            handshake, self._handshake = self._handshake, None
            if handshake is not None:
                if self.watched_by is not None:
                    self.watched_by.unwatch(handshake)
                handshake.close()
        self._watch(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        self._watch(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _Released:
    """A connection urllib3 takes back leaves the deadline of the request that used it."""

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.unwatch()
        super()._put_conn(conn)  # type: ignore[misc]


class _WatchedHTTPPool(_Released, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(_Released, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through an HTTP(S) proxy (HTTPS_PROXY in the environment is enough) the requests go
        # by the proxy manager's pools; a SOCKS proxy's connections are its own, unwatched.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = _POOLS
        return manager


class DeadlineSession(requests.Session):
    """A requests session whose every request, answer read whole, ends within `deadline_s`
    (or the thread's `node_deadline`, if that ends first) or fails with requests.ReadTimeout.
    A `stream=True` answer is read after the request returned: read it inside
    `node_deadline`."""

    def __init__(self, deadline_s: float) -> None:
        super().__init__()
        self.deadline_s = deadline_s
        # One session serves every thread of a process (web3 would make one per thread), so
        # its pool keeps as many connections as the service has threads waiting on the node.
        adapter = _WatchedAdapter(pool_maxsize=32)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with node_deadline(self.deadline_s) as cut:
            try:
                response = super().send(request, **kwargs)
            except (requests.RequestException, OSError) as exc:
                if cut.expired:
                    raise requests.ReadTimeout(
                        f"no whole answer within the deadline ({type(exc).__name__})"
                    ) from None
                raise
            # An answer read until the connection closed looks whole when the timer cut it.
            if cut.expired:
                raise requests.ReadTimeout("no whole answer within the deadline")
            return response
