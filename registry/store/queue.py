"""Declarations waiting for conflict detection (table `conflict_queue`).

Apart from registry.ledger.conflicts so the store's own writes (segments indexed from a late
metadata document) can queue declarations without importing the detector.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from registry.store.bulk import among, chunks
from registry.store.schema import conflict_queue, declarations

__all__ = ["requeue"]


def requeue(conn: Connection, declaration_ids: Iterable[int]) -> None:
    """Queue declarations to be checked again, inside the caller's transaction: for evidence
    that arrives after the declaration (e.g. granular segments from a late metadata document).
    Finding a conflict twice stores it once."""
    for chunk in chunks(sorted(set(declaration_ids))):
        queued = set(
            conn.execute(
                select(conflict_queue.c.declaration_id).where(
                    among(conn, conflict_queue.c.declaration_id, chunk)
                )
            ).scalars()
        )
        valid = conn.execute(
            select(declarations.c.id).where(
                among(conn, declarations.c.id, chunk), declarations.c.valid
            )
        ).scalars()
        rows = [{"declaration_id": i} for i in valid if i not in queued]
        if rows:
            conn.execute(conflict_queue.insert(), rows)
