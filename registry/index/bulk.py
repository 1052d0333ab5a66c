"""Bulk writes for the indexer: many rows per round trip, COPY on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text

__all__ = ["insert_rows", "reserve_ids"]


def reserve_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """`count` new primary keys of `table`, taken before the insert so child rows (units) can
    name their parent without an INSERT ... RETURNING round trip per batch."""
    if count == 0:
        return []
    if conn.dialect.name == "postgresql":
        sequence = f"{table.name}_{table.c.id.name}_seq"
        query = text("SELECT nextval(:seq) FROM generate_series(1, :n)")
        return list(conn.execute(query, {"seq": sequence, "n": count}).scalars())
    # SQLite: the store writes inside BEGIN IMMEDIATE, so nobody else can take these ids.
    top = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(top + 1, top + 1 + count))


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys, in the current transaction."""
    if not rows:
        return
    columns = list(rows[0])
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    if conn.dialect.name != "postgresql":
        # The driver's executemany with plain tuples: SQLAlchemy's per-row parameter
        # processing costs more than SQLite's insert itself at this volume.
        statement = insert(table).compile(dialect=conn.dialect, column_keys=columns)
        order = statement.positiontup or []
        cursor.executemany(str(statement), [tuple(row[c] for c in order) for row in rows])
        return
    quoted = ", ".join(f'"{c}"' for c in columns)
    # COPY is several times faster than multi-row INSERT on PostgreSQL; psycopg 3 adapts the
    # Python values (bytes to bytea, bool, int, str, None to NULL) row by row.
    with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
