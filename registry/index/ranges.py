"""Reading the registry's logs one block range at a time: the range size adapts to the node's
answers, dense ranges go to log reader processes, and a range is only returned if the chain
did not change while it was read."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

from registry.chain.events import RegistryEvent
from registry.chain.node_http import RPC_DEADLINE_S, RPC_TIMEOUT_S, DeadlineSession
from registry.errors import ChainUnavailable
from registry.index.events import EventDecoder
from registry.index.logreader import LogReader, Logs, WorkerFailed, fetch_rows, logs_of
from registry.index.node import Node, RangeTooLarge, RateLimited, rate_limited, too_large
from registry.store.rows import BatchRows

__all__ = ["Batch", "Range", "RangeReader", "Reorg"]

log = logging.getLogger(__name__)

# After this many ranges in a row answered faster than FAST_RANGE_S seconds, the range doubles
# back towards max_range; growing after every fast answer would hit a node's limit every other call.
FAST_RANGE_S = 1.0
GROW_AFTER = 3
FIRST_RANGE = 10
# Logs per range the follower aims at: enough to amortise a transaction, few enough that memory
# stays flat (a decoded Declared event and its rows take a few kB until the batch commits).
BATCH_LOGS = 5000
# A range with this many logs means catching up: the next ones are read by the worker process.
DENSE_LOGS = BATCH_LOGS // 2
# Ranges read while the one before them is written. Two keep the node and the log reader
# processes busy at once: the node serves one range while a worker decodes the range before it,
# instead of waiting for each other (the node's share alone is ~15-20 us per log on a devnet, and
# a remote node adds its round trip).
READ_AHEAD = 2

# A range's events, or their rows when a log reader (or the in-process fast path) read it.
Batch = list[RegistryEvent] | BatchRows
# A range as read: its batch, the parent hash of its first block, the hash of its last block.
Range = tuple[Batch, bytes, bytes]


class Reorg(Exception):
    """The chain does not have the range's blocks (any more), or changed while it was read."""


class RangeReader:
    """Reads block ranges of one contract's logs, sized to the node and the logs' density.

    On an HTTP node the ranges read in-process take the log reader's cheaper way too, each
    reading thread with an HTTP session of its own (made in a sync, closed at its end), and
    READ_AHEAD worker processes (see registry.index.logreader) take the dense ranges of a
    catch-up; a worker that fails is dropped from `workers`.
    """

    def __init__(
        self,
        node: Node,
        contract: str | list[str],
        decoder: EventDecoder,
        max_range: int,
        http: bool,
    ) -> None:
        self.node = node
        # One address, or the registry and its licence ledger: one eth_getLogs for both keeps
        # their events one stream in (block, log index) order.
        self.contract = contract
        self.decoder = decoder
        self.max_range = max_range
        # Start small and let fast, sparse answers grow the range: a first range of max_range
        # dense blocks could hold hundreds of thousands of logs.
        self.size = min(max_range, FIRST_RANGE)
        self._fast_streak = 0
        self._dense = False
        self._http = http
        self._sessions: queue.SimpleQueue[DeadlineSession] = queue.SimpleQueue()
        self.workers: list[LogReader] = []
        if http:
            self.workers = [
                LogReader(node.url, decoder.realm, RPC_TIMEOUT_S) for _ in range(READ_AHEAD)
            ]
        self._idle: queue.SimpleQueue[LogReader] = queue.SimpleQueue()
        for worker in self.workers:
            self._idle.put(worker)

    @contextmanager
    def running(self, ranges_ahead: int) -> Iterator[None]:
        """A sync's reading: with more than one range ahead (maybe a catch-up, whose dense
        ranges would wait for the workers' start-up) the workers start now and import while
        the first ranges are read in-process; they stop, and the sessions close, at its end."""
        with ExitStack() as running:
            for worker in self.workers:
                running.enter_context(worker)
            if ranges_ahead > self.size:
                self._start_workers()
            running.callback(self._close_sessions)
            yield

    def shrink(self) -> None:
        """Halve the range after the node refused it for its size."""
        self.size = max(1, self.size // 2)
        self._fast_streak = 0

    def read(self, block: int, end: int) -> Range:
        """The decoded events (or their rows) of blocks block..end, the parent hash of `block`
        and the hash of `end`; raises Reorg when the chain does not have these blocks (any more)
        or changed while the range was read."""
        last = self.node.header(end)
        if last is None:
            raise Reorg
        first = last if end == block else self.node.header(block)
        if first is None:
            raise Reorg
        batch = self._get_events(block, end)
        # `end`'s hash commits to every block below it: unchanged after the logs were read
        # means the logs came from the same chain.
        again = self.node.header(end)
        if again is None or again.hash != last.hash:
            raise Reorg
        return batch, first.parent_hash, last.hash

    def _get_events(self, from_block: int, to_block: int) -> Batch:
        query = {
            "address": self.contract,
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
            "topics": [self.decoder.topics],
        }
        started = time.monotonic()
        batch: Batch
        read = self._read_in_worker(query) if self._dense else None
        if read is None and self._http:
            read = self._read_here(query)
        if read is None:
            raw_logs = self.node.call("eth_getLogs", [query])
            elapsed = time.monotonic() - started
            count, batch = len(raw_logs), self.decoder.decode_logs(raw_logs)
        else:
            elapsed = time.monotonic() - started
            count, batch = read
        self._dense = count >= DENSE_LOGS
        blocks = to_block - from_block + 1
        if count > BATCH_LOGS and blocks > 1:
            # Dense blocks (batched declarations): narrow the range to about BATCH_LOGS logs,
            # so a batch, and the memory it takes, stays the same size however dense.
            self.size = max(1, blocks * BATCH_LOGS // count)
            self._fast_streak = 0
            return batch
        fast = elapsed < FAST_RANGE_S and count <= BATCH_LOGS // 2
        self._fast_streak = self._fast_streak + 1 if fast else 0
        if self._fast_streak >= GROW_AFTER and self.size < self.max_range:
            self.size = min(self.max_range, self.size * 2)
            self._fast_streak = 0
        return batch

    def _read_in_worker(self, query: dict[str, Any]) -> tuple[int, BatchRows] | None:
        """(log count, rows) of a range read by a worker process; None if there is none (not
        an HTTP node, or they failed), and the range is read in-process instead."""
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            return None
        try:
            logs = worker.read(query)
        except WorkerFailed as exc:
            log.warning("a log reader process failed (%s); it is not used again", exc)
            self.workers.remove(worker)
            return None
        self._idle.put(worker)
        return self._rows(logs)

    def _read_here(self, query: dict[str, Any]) -> tuple[int, BatchRows]:
        """(log count, rows) of a range read in this process the way a worker reads it."""
        try:
            session = self._sessions.get_nowait()
        except queue.Empty:
            session = DeadlineSession(RPC_DEADLINE_S)
        try:
            answer = fetch_rows(session, self.decoder, self.node.url, query, RPC_TIMEOUT_S)
        finally:
            self._sessions.put(session)
        return self._rows(logs_of(answer))

    def _close_sessions(self) -> None:
        while True:
            try:
                self._sessions.get_nowait().close()
            except queue.Empty:
                return

    def _start_workers(self) -> None:
        for worker in self.workers:
            # One that cannot start now is waiting in `_idle`: it fails again at its first read,
            # which drops it (dropping it here too would leave it there).
            with suppress(WorkerFailed):
                worker.start()

    def _rows(self, logs: Logs) -> tuple[int, BatchRows]:
        """(log count, rows) of a range as a log reader answered it; its failures raised as
        Node.call raises them."""
        if logs.timed_out:
            # As in Node.call: a node that times out on a wide range often answers a narrower one.
            raise RangeTooLarge
        if logs.rate_limited:
            raise RateLimited(logs.retry_after)
        if logs.error is not None:
            if rate_limited(logs.error):
                raise RateLimited
            if too_large(logs.error):
                raise RangeTooLarge
            raise ChainUnavailable(f"eth_getLogs failed at {self.node.url}: {logs.error}")
        if logs.rows is None:
            raise ChainUnavailable(
                f"RPC node {self.node.url} failed on eth_getLogs: {logs.transport_error}"
            )
        return logs.count, logs.rows
