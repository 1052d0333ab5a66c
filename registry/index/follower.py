"""The indexer: follows a registry's events in bounded block ranges into the store, undoing
reorganised blocks and riding out node failures."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from functools import partial

from web3 import HTTPProvider, Web3

from registry.chain.contract import Registry
from registry.defaults import DEFER_LOOKUPS_AFTER
from registry.errors import ChainUnavailable
from registry.index.backoff import MAX_DELAY_S, Backoff
from registry.index.events import EventDecoder
from registry.index.node import Node, RangeTooLarge, RateLimited, endpoint_of
from registry.index.ranges import READ_AHEAD, Range, RangeReader, Reorg
from registry.index.reorg import common_ancestor
from registry.index.report import AfterSync, Progress, SyncReport
from registry.index.waiting import pause
from registry.store.store import CheckpointMoved, Store

__all__ = ["Follower"]

log = logging.getLogger(__name__)

# A node that is back is found within this many seconds (ISCC_REGISTRY_RPC_URL's node, or the
# provider that rate-limited us); jittered, so many indexers do not retry in step.
MAX_BACKOFF_S = MAX_DELAY_S
# Conflict detection runs once the sync reaches its target, and while a long backlog is being
# caught up at most this often: it works through its durable queue in large batches, which costs
# less per declaration than after every range, and the store reaches the head sooner.
DETECT_EVERY_S = 60.0
# After a sync that stored this many events PostgreSQL's planner statistics are refreshed before
# detection queries the new rows: autovacuum analyses a table only a minute or more after it grew,
# and a planner that still believes `declarations` is empty scans it for every lookup.
ANALYZE_AFTER = 10_000
# A reorg seen this many times in a row without anything to roll back is the node's problem.
MAX_STALLS = 3


def _discard(reads: deque[tuple[int, Future[Range]]]) -> None:
    """Wait for reads that will not be used (their range is read again, or not at all)."""
    while reads:
        _end, reading = reads.popleft()
        reading.exception()  # their failures do not matter either


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
    """Indexes one registry deployment into a store, resuming from the store's checkpoint:
    plans the ranges of a sync, writes each with its checkpoint, and undoes reorganised blocks.

    Reading the ranges is RangeReader's (registry.index.ranges); what runs after the store
    moved (conflict detection) is given as `after_sync`, so following the chain knows nothing
    of the ledger above it.
    """

    def __init__(
        self,
        registry: Registry,
        store: Store,
        confirmations: int = 0,
        max_range: int = 2000,
        after_sync: AfterSync | None = None,
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
        deployment = registry.deployment
        self.chain_id = deployment.chain_id
        self.contract = registry.contract.address
        self.decoder = EventDecoder(deployment.realm)
        self.after_sync = after_sync
        # Every call, eth_getLogs by the log readers included, goes where the connection goes
        # (ISCC_REGISTRY_RPC_URL if set), never to a second node named in the deployment file.
        self.node = Node(registry.w3, endpoint_of(registry.w3, deployment.rpc_url))
        self._throttle = Backoff(cap=MAX_BACKOFF_S)
        # The licence ledger's logs come with the registry's; the store keys both by the
        # registry's address (one checkpoint, one rollback).
        followed: list[str] = [self.contract]
        if deployment.licences:
            followed.append(Web3.to_checksum_address(deployment.licences))
        self.ranges = RangeReader(
            self.node,
            followed if len(followed) > 1 else self.contract,
            self.decoder,
            max_range,
            http=isinstance(registry.w3.provider, HTTPProvider),
        )

    @property
    def reader_pids(self) -> list[int]:
        """Process ids of the log reader processes running now (for monitoring)."""
        return [worker.pid for worker in self.ranges.workers if worker.pid is not None]

    def sync(
        self, on_progress: Progress | None = None, stop: threading.Event | None = None
    ) -> SyncReport:
        """Index from the checkpoint to head - confirmations, first undoing any reorg of what is
        indexed; raises ChainUnavailable on RPC failure (what was stored before stays)."""
        started = time.monotonic()
        head = self.node.block_number()
        rolled_back = 0
        parent = self.store.checkpoint_block(self.chain_id, self.contract)
        if parent is not None:
            actual = self.node.header(parent[0]) if parent[0] <= head else None
            if actual is None or actual.hash != parent[1]:
                parent, removed = self._rollback(head, parent)
                rolled_back += removed
                # The head read above may belong to the chain just left (a shorter one replaced
                # it while we looked): reading up to it would find its blocks missing and "roll
                # back" to the same block a second time.
                head = self.node.block_number()
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
            running.enter_context(self.ranges.running(target - block + 1))
            running.enter_context(_rare_collections())
            reader = running.enter_context(
                ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="index-read")
            )
            ahead: deque[tuple[int, Future[Range]]] = deque()
            asked = block  # the first block no read has been started for
            while block <= target and not (stop and stop.is_set()):
                while len(ahead) < READ_AHEAD and asked <= target:
                    last = min(asked + self.ranges.size - 1, target)
                    ahead.append((last, reader.submit(self.ranges.read, asked, last)))
                    asked = last + 1
                end, reading = ahead.popleft()
                try:
                    batch, parent_hash, end_hash = reading.result()
                    if parent is not None and parent_hash != parent[1]:
                        raise Reorg
                except RangeTooLarge as exc:
                    _discard(ahead)
                    asked = block
                    if isinstance(exc, RateLimited):
                        # A public provider's 429: ask for less, and less often, for a while.
                        delay = self._throttle.next(exc.retry_after)
                        log.warning(
                            "rate-limited by %s; %d blocks per eth_getLogs, waiting %.1f s",
                            self.node.url,
                            max(1, self.ranges.size // 2),
                            delay,
                        )
                        if stop is not None:
                            stop.wait(delay)
                        else:
                            time.sleep(delay)
                        self.ranges.shrink()
                        continue
                    if self.ranges.size == 1:
                        raise ChainUnavailable(
                            f"the node refuses eth_getLogs even for the single block {block}"
                        ) from None
                    self.ranges.shrink()
                    log.info("eth_getLogs range too large, trying %d blocks", self.ranges.size)
                    continue
                except Reorg:
                    _discard(ahead)
                    head = self.node.block_number()
                    target = head - self.confirmations
                    before = parent
                    parent, removed = self._rollback(head, before)
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
                self._throttle.reset()
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
        """Run the after-sync work (with fresh planner statistics if the store grew a lot);
        returns the seconds it took."""
        if self.after_sync is None:
            return 0.0
        started = time.monotonic()
        if grown:
            self.store.refresh_statistics()
        self.after_sync.run()
        return time.monotonic() - started

    def _rollback(
        self, head: int, before: tuple[int, bytes] | None
    ) -> tuple[tuple[int, bytes] | None, int]:
        """Find the newest recorded block the chain still has, undo everything above it and
        return it (the new checkpoint) with the number of events removed. `before` is the
        checkpoint until now: a chain that only lacks blocks above it (its head moved back
        while a range was read) changes nothing and is not reported as a reorg."""
        ancestor = self._common_ancestor(head)
        removed = self.store.rollback(self.chain_id, self.contract, ancestor)
        if ancestor == before and not removed:
            log.info("chain head moved back to %d; reading up to it", head)
            return ancestor, removed
        if self.after_sync is not None:
            self.after_sync.reset()
        where = "the deployment" if ancestor is None else f"block {ancestor[0]}"
        log.warning("chain reorganised: rolled back to %s, %d events undone", where, removed)
        return ancestor, removed

    def _common_ancestor(self, head: int) -> tuple[int, bytes] | None:
        return common_ancestor(
            partial(self.store.block_at_or_below, self.chain_id, self.contract),
            self.node,
            head,
            floor=self.registry.deployment.block - 1,
        )

    def follow(
        self,
        stop: threading.Event,
        poll_interval: float = 1.0,
        on_progress: Progress | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        """Sync until `stop` is set, waiting out RPC failures with capped, jittered backoff.

        Between syncs it waits `poll_interval`, or less when `wake` is set (registry.index.heads
        sets it when the node announces a block). Store errors are not retried, they need a
        human (disk full, newer schema), except a moved checkpoint: the next sync simply resumes
        from where the store now stands.
        """
        first = min(max(poll_interval, 0.1), MAX_BACKOFF_S)
        backoff = Backoff(first=first, cap=MAX_BACKOFF_S)
        while not stop.is_set():
            try:
                self.sync(on_progress, stop)
            except CheckpointMoved as exc:
                log.warning("indexer: %s; resuming from the stored checkpoint", exc)
                continue
            except ChainUnavailable as exc:
                delay = backoff.next()
                log.warning("indexer: %s; retrying in %.1f s", exc, delay)
                stop.wait(delay)
                continue
            backoff.reset()
            pause(stop, wake, poll_interval)
