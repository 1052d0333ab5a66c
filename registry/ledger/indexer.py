"""The indexer as the registry runs it: the chain follower with the ledger's conflict detection
after every sync, sharing the service's similarity index when there is one."""

from __future__ import annotations

from typing import Any

from registry.chain.contract import Registry
from registry.index.follower import Follower
from registry.ledger.case_policy import DEFAULT_POLICY, CasePolicy
from registry.ledger.conflicts import ConflictDetector, SegmentEvidence
from registry.ledger.licence_conflicts import LicenceDetector
from registry.ledger.licence_works import WorkMatcher
from registry.search.similarity import SimilarityIndex
from registry.store.store import Store

__all__ = ["Indexer", "Ledger"]


class Ledger:
    """The after-sync work of the registry's indexer: content conflicts first (they relate the
    works licence detection reads), then licence conflicts and cases."""

    def __init__(self, conflicts: ConflictDetector, licences: LicenceDetector) -> None:
        self.conflicts = conflicts
        self.licences = licences

    def run(self) -> None:
        self.conflicts.run()
        self.licences.run()

    def reset(self) -> None:
        self.conflicts.reset()
        self.licences.reset()


class Indexer(Follower):
    """A Follower whose after-sync work is conflict detection (`conflicts`, then `licences`):
    what `index`, `serve` and the demo run."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        *,
        similarity: SimilarityIndex | None = None,
        cases: CasePolicy = DEFAULT_POLICY,
        **options: Any,
    ) -> None:
        """`options` are the Follower's (confirmations, max_range, defer_lookups_after);
        `cases` is the licence cases' deadline and flood bound (CasePolicy.of(settings))."""
        # Shares the API's similarity index when given (one copy in memory, reset on rollback).
        self.conflicts = ConflictDetector(store, similarity)
        snippets = next(s.index for s in self.conflicts.sources if isinstance(s, SegmentEvidence))
        matcher = WorkMatcher(store, self.conflicts.index, snippets)
        self.licences = LicenceDetector(store, policy=cases, matcher=matcher)
        ledger = Ledger(self.conflicts, self.licences)
        super().__init__(registry, store, after_sync=ledger, **options)
