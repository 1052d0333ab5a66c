"""The indexer: follows a registry's `Declared` logs in bounded block ranges into the store."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from web3.exceptions import Web3Exception, Web3RPCError

from registry.chain.contract import Registry
from registry.errors import ChainUnavailable, StoreError
from registry.index.events import DECLARED_TOPIC, decode_logs
from registry.index.store import Store

__all__ = ["Follower", "SyncReport"]

log = logging.getLogger(__name__)

# After this many ranges in a row answered faster than FAST_RANGE_S seconds, the range doubles
# back towards max_range; growing after every fast answer would hit a node's limit every other call.
FAST_RANGE_S = 1.0
GROW_AFTER = 3
MAX_BACKOFF_S = 60.0
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
    """What one sync did: the block range it indexed and how many events it found and stored."""

    from_block: int
    to_block: int
    events_seen: int
    events_new: int
    seconds: float

    @property
    def blocks(self) -> int:
        return max(0, self.to_block - self.from_block + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_block": self.from_block,
            "to_block": self.to_block,
            "blocks": self.blocks,
            "events_seen": self.events_seen,
            "events_new": self.events_new,
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[SyncReport], None]


class _RangeTooLarge(Exception):
    pass


def _too_large(exc: Web3RPCError) -> bool:
    text = str(exc).lower()
    if exc.rpc_response and isinstance(exc.rpc_response.get("error"), dict):
        text += " " + str(exc.rpc_response["error"].get("message", "")).lower()
    return any(phrase in text for phrase in _TOO_LARGE)


class Follower:
    """Indexes one registry deployment into a store, resuming from the store's checkpoint."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        confirmations: int = 0,
        max_range: int = 2000,
    ) -> None:
        if confirmations < 0 or max_range < 1:
            raise ValueError("confirmations must be >= 0 and max_range >= 1")
        self.registry = registry
        self.store = store
        self.confirmations = confirmations
        self.max_range = max_range
        self._range = max_range
        self._fast_streak = 0
        deployment = registry.deployment
        self.chain_id = deployment.chain_id
        self.contract = registry.contract.address

    def start_block(self) -> int:
        """The first block the next sync will read."""
        done = self.store.checkpoint(self.chain_id, self.contract)
        return self.registry.deployment.block if done is None else done + 1

    def sync(
        self, on_progress: Progress | None = None, stop: threading.Event | None = None
    ) -> SyncReport:
        """Index from the checkpoint to head - confirmations; raises ChainUnavailable on RPC
        failure (what was stored before the failure stays stored)."""
        started = time.monotonic()
        start = self.start_block()
        head = self._call(lambda: self.registry.w3.eth.block_number)
        self._check_checkpoint(head)
        target = head - self.confirmations
        seen = new = 0
        block = start
        while block <= target and not (stop and stop.is_set()):
            end = min(block + self._range - 1, target)
            try:
                raw_logs = self._get_logs(block, end)
            except _RangeTooLarge:
                if self._range == 1:
                    raise ChainUnavailable(
                        f"the node refuses eth_getLogs even for the single block {block}"
                    ) from None
                self._range = max(1, self._range // 2)
                self._fast_streak = 0
                log.info("eth_getLogs range too large, trying %d blocks", self._range)
                continue
            batch = decode_logs(raw_logs, self.registry.deployment.realm)
            end_hash = self._call(lambda n=end: bytes(self.registry.w3.eth.get_block(n)["hash"]))
            new += self.store.apply(self.chain_id, self.contract, batch, end, end_hash)
            seen += len(batch)
            block = end + 1
            if on_progress:
                on_progress(SyncReport(start, end, seen, new, time.monotonic() - started))
        return SyncReport(start, block - 1, seen, new, time.monotonic() - started)

    def _check_checkpoint(self, head: int) -> None:
        """Refuse to resume on a chain that no longer has the block we stopped at: resuming would
        silently skip the new chain's earlier blocks (a restarted devnet reuses chain id and
        contract address). Rolling back across reorgs is for a later version."""
        checkpoint = self.store.checkpoint_block(self.chain_id, self.contract)
        if checkpoint is None:
            return
        done, known = checkpoint
        actual = None
        if done <= head:
            actual = self._call(lambda: bytes(self.registry.w3.eth.get_block(done)["hash"]))
        if actual != known:
            raise StoreError(
                f"the chain no longer has block {done} as indexed (restarted devnet or reorg "
                f"deeper than the confirmations): run `iscc-registry index --reset` to re-index "
                f"{self.contract} from scratch"
            )

    def follow(
        self,
        stop: threading.Event,
        poll_interval: float = 1.0,
        on_progress: Progress | None = None,
    ) -> None:
        """Sync until `stop` is set, waiting out RPC failures with capped exponential backoff.

        Store errors are not retried: they need a human (disk full, reorg, newer schema).
        """
        backoff = poll_interval
        while not stop.is_set():
            try:
                self.sync(on_progress, stop)
            except ChainUnavailable as exc:
                backoff = min(MAX_BACKOFF_S, max(backoff * 2, poll_interval, 0.1))
                log.warning("indexer: %s; retrying in %.1f s", exc, backoff)
                stop.wait(backoff)
                continue
            backoff = poll_interval
            stop.wait(poll_interval)

    def _get_logs(self, from_block: int, to_block: int) -> list[Any]:
        query = {
            "address": self.contract,
            "fromBlock": from_block,
            "toBlock": to_block,
            "topics": [["0x" + DECLARED_TOPIC.hex()]],
        }
        started = time.monotonic()
        try:
            raw_logs = list(self.registry.w3.eth.get_logs(query))  # type: ignore[arg-type]
        except Web3RPCError as exc:
            if _too_large(exc):
                raise _RangeTooLarge from None
            raise ChainUnavailable(f"eth_getLogs {from_block}-{to_block} failed: {exc}") from None
        except requests.Timeout:
            # A node that times out on a wide range often answers a narrower one.
            raise _RangeTooLarge from None
        except (requests.RequestException, Web3Exception, OSError) as exc:
            raise ChainUnavailable(f"eth_getLogs {from_block}-{to_block} failed: {exc}") from None
        self._fast_streak = (
            self._fast_streak + 1 if time.monotonic() - started < FAST_RANGE_S else 0
        )
        if self._fast_streak >= GROW_AFTER and self._range < self.max_range:
            self._range = min(self.max_range, self._range * 2)
            self._fast_streak = 0
        return raw_logs

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (requests.RequestException, Web3Exception, OSError) as exc:
            raise ChainUnavailable(
                f"RPC node {self.registry.deployment.rpc_url} failed: {type(exc).__name__}: {exc}"
            ) from None
