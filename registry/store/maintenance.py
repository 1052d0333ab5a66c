"""Maintenance of the store's indexes: the lookup indexes a large catch-up drops and builds again,
and fresh planner statistics after a table grew a lot."""

from __future__ import annotations

from sqlalchemy import (
    Connection,
    Index,
    delete,
    insert,
    select,
    text,
)

from registry.store import schema
from registry.store.connection import Connections
from registry.store.schema import (
    conflict_queue,
    declarations,
    events,
    meta,
    units,
)

__all__ = ["Maintenance"]


class Maintenance(Connections):
    """Index maintenance, done between batches."""

    def refresh_statistics(self) -> None:
        """Let PostgreSQL's planner see tables that just grew a lot (`ANALYZE`), so lookups of
        new rows use their indexes. SQLite's planner needs no statistics to pick them."""
        if self.engine.dialect.name != "postgresql":
            return
        tables = ", ".join(t.name for t in (declarations, units, events, conflict_queue))
        with self._write() as conn:
            conn.execute(text(f"ANALYZE {tables}"))

    def lookups_deferred(self) -> bool:
        """Whether the lookup indexes are dropped for a catch-up (see defer_lookups)."""
        with self._read() as conn:
            return _lookups_deferred(conn)

    def defer_lookups(self) -> None:
        """Drop the lookup indexes (schema.LOOKUP_INDEXES) for a catch-up on a large backlog.

        Lookups by ISCC-CODE, datahash, declarer or history scan their tables until
        restore_lookups builds the indexes again. A mark in the same transaction as the drop
        tells the next indexer to build them, should this one be killed before it does.
        """
        with self._write() as conn:
            if _lookups_deferred(conn):
                return
            for index in _lookup_indexes():
                conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
            conn.execute(insert(meta).values(key=_DEFERRED_KEY, value="1"))

    def restore_lookups(self) -> bool:
        """Build the lookup indexes a catch-up dropped, in one transaction with clearing its
        mark; returns False if none were dropped."""
        with self._write() as conn:
            if not _lookups_deferred(conn):
                return False
            for index in _lookup_indexes():
                index.create(conn, checkfirst=True)
            conn.execute(delete(meta).where(meta.c.key == _DEFERRED_KEY))
        return True


_DEFERRED_KEY = "lookup_indexes_deferred"


def _lookups_deferred(conn: Connection) -> bool:
    return conn.execute(select(meta.c.key).where(meta.c.key == _DEFERRED_KEY)).first() is not None


def _lookup_indexes() -> list[Index]:
    return [
        index
        for table in schema.metadata.tables.values()
        for index in table.indexes
        if index.name in schema.LOOKUP_INDEXES
    ]
