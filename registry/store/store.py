"""The store: declarations, their event history, metadata documents, segments and the indexer's
checkpoint in SQL, with its writes (writes.py), reads (reads.py) and index maintenance
(maintenance.py) over one connection (connection.py)."""

from __future__ import annotations

from registry.store.licences import GrantRecord, LicenceReads, UsageRecord
from registry.store.reads import DeclarationRecord, Reads
from registry.store.writes import CheckpointMoved, Writes

__all__ = ["CheckpointMoved", "DeclarationRecord", "GrantRecord", "Store", "UsageRecord"]


class Store(Writes, Reads, LicenceReads):
    """Declarations, events, grants, blocks and checkpoints behind a SQLAlchemy engine."""
