"""The indexer as the registry runs it: the chain follower with the ledger's conflict detection
after every sync, sharing the service's similarity index when there is one."""

from __future__ import annotations

from typing import Any

from registry.chain.contract import Registry
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
        *,
        similarity: SimilarityIndex | None = None,
        **options: Any,
    ) -> None:
        """`options` are the Follower's (confirmations, max_range, defer_lookups_after)."""
        # Shares the API's similarity index when given (one copy in memory, reset on rollback).
        self.conflicts = ConflictDetector(store, similarity)
        super().__init__(registry, store, after_sync=self.conflicts, **options)
