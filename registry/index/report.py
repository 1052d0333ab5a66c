"""What a sync of the follower reports, and the work that may follow each sync (AfterSync)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["AfterSync", "Progress", "SyncReport"]


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


class AfterSync(Protocol):
    """Work that follows the store: run after the ranges a sync stored (at most every
    DETECT_EVERY_S seconds during a long catch-up), reset after a rollback. The ledger's
    conflict detection is one (registry.ledger.indexer)."""

    def run(self) -> None: ...

    def reset(self) -> None: ...
