"""The indexer as the registry runs it: the chain follower with the ledger's conflict detection
after every sync, sharing the service's similarity index when there is one."""

from __future__ import annotations

from registry.chain.contract import Registry
from registry.config import DEFER_LOOKUPS_AFTER
from registry.index.follower import Follower
from registry.ledger.conflicts import ConflictDetector
from registry.search.similarity import SimilarityIndex
from registry.store.store import Store

__all__ = ["Indexer"]


class Indexer(Follower):
    """A Follower whose after-sync work is conflict detection (`conflicts`): what `index`,
    `serve` and the demo run."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        confirmations: int = 0,
        max_range: int = 2000,
        similarity: SimilarityIndex | None = None,
        defer_lookups_after: int = DEFER_LOOKUPS_AFTER,
    ) -> None:
        # Shares the API's similarity index when given (one copy in memory, reset on rollback).
        self.conflicts = ConflictDetector(store, similarity)
        super().__init__(
            registry,
            store,
            confirmations,
            max_range,
            after_sync=self.conflicts,
            defer_lookups_after=defer_lookups_after,
        )
