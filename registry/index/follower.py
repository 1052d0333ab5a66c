"""The indexer: follows a registry's events in bounded block ranges into the store, undoing
reorganised blocks and riding out node failures."""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests
from web3 import HTTPProvider
from web3.exceptions import Web3Exception

from registry.chain.contract import RPC_TIMEOUT_S, Registry
from registry.chain.events import RegistryEvent
from registry.config import DEFER_LOOKUPS_AFTER
from registry.errors import ChainUnavailable
from registry.index.events import EventDecoder, to_bytes, to_int
from registry.index.logreader import LogReader, Logs, WorkerFailed, fetch_rows, logs_of
from registry.ledger.conflicts import ConflictDetector
from registry.search.similarity import SimilarityIndex
from registry.store.rows import BatchRows
from registry.store.store import CheckpointMoved, Store

__all__ = ["Follower", "SyncReport"]

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
MAX_BACKOFF_S = 60.0
# Conflict detection runs once the sync reaches its target, and while a long backlog is being
# caught up at most this often: it works through its durable queue in large batches, which costs
# less per declaration than after every range, and the store reaches the head sooner.
DETECT_EVERY_S = 60.0
# After a sync that stored this many events PostgreSQL's planner statistics are refreshed before
# detection queries the new rows: autovacuum analyses a table only a minute or more after it grew,
# and a planner that still believes `declarations` is empty scans it for every lookup.
ANALYZE_AFTER = 10_000
# Ranges read while the one before them is written. Two keep the node and the log reader
# processes busy at once: the node serves one range while a worker decodes the range before it,
# instead of waiting for each other (the node's share alone is ~15-20 us per log on a devnet, and
# a remote node adds its round trip).
READ_AHEAD = 2
# A reorg seen this many times in a row without anything to roll back is the node's problem.
MAX_STALLS = 3
# Phrases nodes use when a getLogs answer would be too big (Geth, Erigon, Alchemy, Infura, ...).
_TOO_LARGE = (
    "too large",
    "too many",
    "more than",
    "exceed",
    "limit",
    "range is too",
    "response size",
    "query timeout",
)


@dataclass(frozen=True)
class SyncReport:
    """What one sync did: the block range it indexed, the events it stored, the reorgs it undid."""

    from_block: int
    to_block: int
    head: int
    events_seen: int
    events_new: int
    events_rolled_back: int
    seconds: float
    # Part of `seconds` spent in conflict detection (registry.ledger.conflicts).
    detect_seconds: float = 0.0
    # Part of `seconds` spent building the lookup indexes a catch-up had deferred.
    index_seconds: float = 0.0

    @property
    def blocks(self) -> int:
        return max(0, self.to_block - self.from_block + 1)

    @property
    def lag(self) -> int:
        """Blocks between the chain head and what is indexed (confirmations included)."""
        return max(0, self.head - self.to_block)

    @property
    def events_per_second(self) -> float:
        """Events stored per second of indexing (conflict detection's time left out)."""
        indexing = self.seconds - self.detect_seconds
        return self.events_new / indexing if indexing > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_block": self.from_block,
            "to_block": self.to_block,
            "head": self.head,
            "lag": self.lag,
            "blocks": self.blocks,
            "events_seen": self.events_seen,
            "events_new": self.events_new,
            "events_rolled_back": self.events_rolled_back,
            "seconds": round(self.seconds, 3),
            "detect_seconds": round(self.detect_seconds, 3),
            "index_seconds": round(self.index_seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
        }


Progress = Callable[[SyncReport], None]
# A range's events, or their rows when the log reader process read it.
Batch = list[RegistryEvent] | BatchRows
# A range as read: its batch, the parent hash of its first block, the hash of its last block.
_Range = tuple[Batch, bytes, bytes]


class _RangeTooLarge(Exception):
    pass


class _Reorg(Exception):
    pass


@dataclass(frozen=True)
class _Header:
    number: int
    hash: bytes
    parent_hash: bytes


def _discard(reads: deque[tuple[int, Future[_Range]]]) -> None:
    """Wait for reads that will not be used (their range is read again, or not at all)."""
    while reads:
        _end, reading = reads.popleft()
        reading.exception()  # their failures do not matter either


def _too_large(message: str) -> bool:
    text = message.lower()
    return any(phrase in text for phrase in _TOO_LARGE)


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while a sync runs.

    A batch is thousands of events and rows, freed by reference counting (they form no
    cycles); a collection every 700 allocations only re-scans them and costs ~8% of
    indexing. The process's own thresholds come back afterwards.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class Follower:
    """Indexes one registry deployment into a store, resuming from the store's checkpoint.

    Talks raw JSON-RPC (`provider.make_request`): web3's result formatters cost more than the
    indexing itself at tens of thousands of logs per second.
    """

    def __init__(
        self,
        registry: Registry,
        store: Store,
        confirmations: int = 0,
        max_range: int = 2000,
        similarity: SimilarityIndex | None = None,
        defer_lookups_after: int = DEFER_LOOKUPS_AFTER,
    ) -> None:
        if confirmations < 0 or max_range < 1 or defer_lookups_after < 0:
            raise ValueError(
                "confirmations and defer_lookups_after must be >= 0 and max_range >= 1"
            )
        self.registry = registry
        self.store = store
        self.confirmations = confirmations
        self.max_range = max_range
        # 0: never defer the lookup indexes.
        self.defer_lookups_after = defer_lookups_after
        # Declarations the store held when a sync first asked (see _backlog_is_large).
        self._stored: int | None = None
        # Start small and let fast, sparse answers grow the range: a first range of max_range
        # dense blocks could hold hundreds of thousands of logs.
        self._range = min(max_range, FIRST_RANGE)
        self._fast_streak = 0
        deployment = registry.deployment
        self.chain_id = deployment.chain_id
        self.contract = registry.contract.address
        self.decoder = EventDecoder(deployment.realm)
        # Shares the API's similarity index when given (one copy in memory, reset on rollback).
        self.conflicts = ConflictDetector(store, similarity)
        # Dense ranges (catching up) are read by worker processes, one per range read ahead
        # (see registry.index.logreader); a worker that fails is dropped from `_workers`.
        self._dense = False
        self._workers: list[LogReader] = []
        # On an HTTP node the ranges read in-process take the log reader's cheaper way too, each
        # reading thread with an HTTP session of its own (made in a sync, closed at its end).
        self._http = isinstance(registry.w3.provider, HTTPProvider)
        self._sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()
        if self._http:
            self._workers = [
                LogReader(deployment.rpc_url, deployment.realm, RPC_TIMEOUT_S)
                for _ in range(READ_AHEAD)
            ]
        self._idle: queue.SimpleQueue[LogReader] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)

    @property
    def reader_pids(self) -> list[int]:
        """Process ids of the log reader processes running now (for monitoring)."""
        return [worker.pid for worker in self._workers if worker.pid is not None]

    def sync(
        self, on_progress: Progress | None = None, stop: threading.Event | None = None
    ) -> SyncReport:
        """Index from the checkpoint to head - confirmations, first undoing any reorg of what is
        indexed; raises ChainUnavailable on RPC failure (what was stored before stays)."""
        started = time.monotonic()
        head = to_int(self._rpc("eth_blockNumber", []))
        rolled_back = 0
        parent = self.store.checkpoint_block(self.chain_id, self.contract)
        if parent is not None:
            actual = self._header(parent[0]) if parent[0] <= head else None
            if actual is None or actual.hash != parent[1]:
                parent, removed = self._rollback(head)
                rolled_back += removed
        start = block = self.registry.deployment.block if parent is None else parent[0] + 1
        target = head - self.confirmations
        seen = new = stalled = analysed = 0
        detecting = 0.0
        detected = time.monotonic()
        # An indexer killed while catching up left the lookup indexes dropped: this sync builds
        # them when it reaches its target.
        deferred = self.store.lookups_deferred()
        self._stored = None
        # READ_AHEAD ranges are read (node, JSON, decoding) while the one before them is
        # written: the node, the workers and the database work at the same time. A range is
        # read before the one below it is known, so whether it continues that one (its first
        # block's parent hash) is checked when it is taken for writing.
        # The worker processes (if any were started) stop after the reader threads are done.
        with ExitStack() as running:
            for worker in self._workers:
                running.enter_context(worker)
            if target - block + 1 > self._range:
                # More than one range to read: maybe a catch-up, whose dense ranges would wait
                # for the workers' start-up. Started now, they import while the first ranges
                # are read in-process.
                self._start_workers()
            running.callback(self._close_sessions)
            running.enter_context(_rare_collections())
            reader = running.enter_context(
                ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="index-read")
            )
            ahead: deque[tuple[int, Future[_Range]]] = deque()
            asked = block  # the first block no read has been started for
            while block <= target and not (stop and stop.is_set()):
                while len(ahead) < READ_AHEAD and asked <= target:
                    last = min(asked + self._range - 1, target)
                    ahead.append((last, reader.submit(self._read_range, asked, last)))
                    asked = last + 1
                end, reading = ahead.popleft()
                try:
                    batch, parent_hash, end_hash = reading.result()
                    if parent is not None and parent_hash != parent[1]:
                        raise _Reorg
                except _RangeTooLarge:
                    _discard(ahead)
                    asked = block
                    if self._range == 1:
                        raise ChainUnavailable(
                            f"the node refuses eth_getLogs even for the single block {block}"
                        ) from None
                    self._range = max(1, self._range // 2)
                    self._fast_streak = 0
                    log.info("eth_getLogs range too large, trying %d blocks", self._range)
                    continue
                except _Reorg:
                    _discard(ahead)
                    head = to_int(self._rpc("eth_blockNumber", []))
                    target = head - self.confirmations
                    before = parent
                    parent, removed = self._rollback(head)
                    rolled_back += removed
                    deferred = False  # a rollback builds them (it reads histories by ISCC-ID)
                    stalled = stalled + 1 if parent == before else 0
                    if stalled >= MAX_STALLS:
                        # The node contradicts itself (its block `block` does not name the
                        # block it still has at `block - 1` as parent); a rollback cannot fix it.
                        raise ChainUnavailable(
                            f"the node's block {block} does not continue its block "
                            f"{block - 1}; it may be syncing or reorganising"
                        ) from None
                    start = block = asked = (
                        self.registry.deployment.block if parent is None else parent[0] + 1
                    )
                    continue
                stalled = 0
                new += self.store.apply(self.chain_id, self.contract, batch, parent, end, end_hash)
                seen += len(batch)
                blocks_read, blocks_left = end - block + 1, target - end
                if not deferred and self._backlog_is_large(len(batch), blocks_read, blocks_left):
                    self.store.defer_lookups()
                    deferred = True
                parent = (end, end_hash)
                block = end + 1
                # Detection looks up codes and hashes: with the lookup indexes deferred it waits
                # for the end of the catch-up (its queue keeps what it has to do).
                due = time.monotonic() - detected >= DETECT_EVERY_S
                if end < target and due and not deferred:
                    detecting += self._detect(new - analysed >= ANALYZE_AFTER)
                    analysed, detected = new, time.monotonic()
                if on_progress:
                    elapsed = time.monotonic() - started
                    on_progress(
                        SyncReport(start, end, head, seen, new, rolled_back, elapsed, detecting)
                    )
            # Reads still in flight (stopped early) finish before the workers stop, unused.
            _discard(ahead)
        indexing = 0.0
        if deferred:
            building = time.monotonic()
            self.store.restore_lookups()
            indexing = time.monotonic() - building
        # What this sync stored, what a crash left queued, what new evidence queued again.
        detecting += self._detect(new - analysed >= ANALYZE_AFTER)
        elapsed = time.monotonic() - started
        return SyncReport(
            start, block - 1, head, seen, new, rolled_back, elapsed, detecting, indexing
        )

    def _backlog_is_large(self, events: int, blocks: int, blocks_left: int) -> bool:
        """Whether the blocks left, as dense as the range just stored, hold enough events to
        make dropping the lookup indexes until the end of the catch-up worth it."""
        if not self.defer_lookups_after or not events:
            return False
        expected = events * blocks_left // max(1, blocks)
        if expected < self.defer_lookups_after:
            return False
        if self._stored is None:
            self._stored = self.store.count()
        return expected >= self._stored

    def _detect(self, grown: bool) -> float:
        """Run conflict detection (with fresh planner statistics if the store grew a lot);
        returns the seconds it took."""
        started = time.monotonic()
        if grown:
            self.store.refresh_statistics()
        self.conflicts.run()
        return time.monotonic() - started

    def _read_range(self, block: int, end: int) -> _Range:
        """The decoded events (or their rows) of blocks block..end, the parent hash of `block`
        and the hash of `end`.

        Raises _Reorg when the chain does not have these blocks (any more) or changed while the
        range was read.
        """
        last = self._header(end)
        if last is None:
            raise _Reorg
        first = last if end == block else self._header(block)
        if first is None:
            raise _Reorg
        batch = self._get_events(block, end)
        # `end`'s hash commits to every block below it: unchanged after the logs were read
        # means the logs came from the same chain.
        again = self._header(end)
        if again is None or again.hash != last.hash:
            raise _Reorg
        return batch, first.parent_hash, last.hash

    def _rollback(self, head: int) -> tuple[tuple[int, bytes] | None, int]:
        """Find the newest recorded block the chain still has, undo everything above it and
        return it (the new checkpoint) with the number of events removed."""
        ancestor = self._common_ancestor(head)
        removed = self.store.rollback(self.chain_id, self.contract, ancestor)
        self.conflicts.reset()
        where = "the deployment" if ancestor is None else f"block {ancestor[0]}"
        log.warning("chain reorganised: rolled back to %s, %d events undone", where, removed)
        return ancestor, removed

    def _on_chain(self, block: tuple[int, bytes], head: int) -> bool:
        header = self._header(block[0]) if block[0] <= head else None
        return header is not None and header.hash == block[1]

    def _common_ancestor(self, head: int) -> tuple[int, bytes] | None:
        """The newest recorded block that is still on the chain (None: none is), in O(log n)
        node calls.

        "Nothing is recorded at or below x, or the newest recorded block there is on the chain"
        holds for every x below the fork point and for none above it (a block's hash commits
        to all its ancestors), so galloping down from the newest record and then bisecting
        finds the fork point.
        """
        at_or_below = partial(self.store.block_at_or_below, self.chain_id, self.contract)

        def before_fork(x: int) -> bool:
            block = at_or_below(x)
            return block is None or self._on_chain(block, head)

        top = at_or_below(head)
        if top is None or self._on_chain(top, head):
            return top
        # Nothing is recorded below the deployment block.
        floor = self.registry.deployment.block - 1
        high, step = top[0], 1
        while True:
            low = max(high - step, floor)
            if low == floor or before_fork(low):
                break
            high, step = low, step * 2
        while high - low > 1:
            middle = (low + high) // 2
            if before_fork(middle):
                low = middle
            else:
                high = middle
        return at_or_below(low)

    def follow(
        self,
        stop: threading.Event,
        poll_interval: float = 1.0,
        on_progress: Progress | None = None,
    ) -> None:
        """Sync until `stop` is set, waiting out RPC failures with capped exponential backoff.

        Store errors are not retried, they need a human (disk full, newer schema), except a
        moved checkpoint: the next sync simply resumes from where the store now stands.
        """
        backoff = poll_interval
        while not stop.is_set():
            try:
                self.sync(on_progress, stop)
            except CheckpointMoved as exc:
                log.warning("indexer: %s; resuming from the stored checkpoint", exc)
                continue
            except ChainUnavailable as exc:
                backoff = min(MAX_BACKOFF_S, max(backoff * 2, poll_interval, 0.1))
                log.warning("indexer: %s; retrying in %.1f s", exc, backoff)
                stop.wait(backoff)
                continue
            backoff = poll_interval
            stop.wait(poll_interval)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        """One raw JSON-RPC call; transport failures and node errors become ChainUnavailable."""
        try:
            response = self.registry.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        except requests.Timeout as exc:
            if method == "eth_getLogs":
                # A node that times out on a wide range often answers a narrower one.
                raise _RangeTooLarge from exc
            raise ChainUnavailable(f"{method} timed out at {self._url}") from None
        except (requests.RequestException, Web3Exception, OSError, ValueError) as exc:
            raise ChainUnavailable(
                f"RPC node {self._url} failed on {method}: {type(exc).__name__}: {exc}"
            ) from None
        error = response.get("error")
        if error:
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            if method == "eth_getLogs" and _too_large(message):
                raise _RangeTooLarge
            raise ChainUnavailable(f"{method} failed at {self._url}: {message}")
        return response.get("result")

    @property
    def _url(self) -> str:
        return self.registry.deployment.rpc_url

    def _header(self, number: int) -> _Header | None:
        """Hash and parent hash of a block, or None if the chain has no such block (yet)."""
        block = self._rpc("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            return None
        return _Header(number, to_bytes(block["hash"]), to_bytes(block["parentHash"]))

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
            raw_logs = self._rpc("eth_getLogs", [query])
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
            self._range = max(1, blocks * BATCH_LOGS // count)
            self._fast_streak = 0
            return batch
        fast = elapsed < FAST_RANGE_S and count <= BATCH_LOGS // 2
        self._fast_streak = self._fast_streak + 1 if fast else 0
        if self._fast_streak >= GROW_AFTER and self._range < self.max_range:
            self._range = min(self.max_range, self._range * 2)
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
            self._workers.remove(worker)
            return None
        self._idle.put(worker)
        return self._rows(logs)

    def _read_here(self, query: dict[str, Any]) -> tuple[int, BatchRows]:
        """(log count, rows) of a range read in this process the way a worker reads it."""
        try:
            session = self._sessions.get_nowait()
        except queue.Empty:
            session = requests.Session()
        try:
            answer = fetch_rows(session, self.decoder, self._url, query, RPC_TIMEOUT_S)
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
        for worker in self._workers:
            # One that cannot start now is waiting in `_idle`: it fails again at its first read,
            # which drops it (dropping it here too would leave it there).
            with suppress(WorkerFailed):
                worker.start()

    def _rows(self, logs: Logs) -> tuple[int, BatchRows]:
        """(log count, rows) of a range as a log reader answered it; its failures raised as
        _rpc raises them."""
        if logs.timed_out:
            # As in _rpc: a node that times out on a wide range often answers a narrower one.
            raise _RangeTooLarge
        if logs.error is not None:
            if _too_large(logs.error):
                raise _RangeTooLarge
            raise ChainUnavailable(f"eth_getLogs failed at {self._url}: {logs.error}")
        if logs.rows is None:
            raise ChainUnavailable(
                f"RPC node {self._url} failed on eth_getLogs: {logs.transport_error}"
            )
        return logs.count, logs.rows
