"""Schema versions of the store: how an older store is upgraded, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, select, text

from registry.errors import StoreError
from registry.store.schema import (
    HOT_CHILDREN,
    case_events,
    case_parties,
    cases,
    conflict_queue,
    conflicts,
    deliveries,
    grants,
    licence_conflicts,
    licence_queue,
    meta,
    metadata,
    metadata_docs,
    notices,
    segment_sources,
    segments,
    subscriptions,
    usage_reports,
)

__all__ = ["LICENCE_TABLES", "MIGRATIONS", "SCHEMA_VERSION", "migrate", "stored_version"]


# MIGRATIONS[v - 1] upgrades a store from version v to v + 1. A fresh store is created from
# `metadata`, which always describes the newest version, so migrations only serve old stores.
# A store may be opened with its LOOKUP_INDEXES dropped (an indexer killed while catching up):
# a migration must not assume they exist.
Migration = Callable[[Connection], None]


def _v1_ownership(conn: Connection) -> None:
    """v1 -> v2: current owner and revoked flag (v1 only knew Declared events)."""
    conn.execute(text("ALTER TABLE declarations ADD COLUMN owner VARCHAR(42) NOT NULL DEFAULT ''"))
    conn.execute(text("UPDATE declarations SET owner = declarer"))
    conn.execute(text("ALTER TABLE declarations ADD COLUMN revoked BOOLEAN NOT NULL DEFAULT FALSE"))
    conn.execute(text("CREATE INDEX ix_declarations_owner ON declarations (owner)"))


def _v2_metadata(conn: Connection) -> None:
    """v2 -> v3: metadata documents served by metahash."""
    metadata_docs.create(conn, checkfirst=True)


def _v3_unused_indexes(conn: Connection) -> None:
    """v3 -> v4: drop indexes no query uses (units by value, declarations by owner); every
    index slows the indexer's inserts."""
    conn.execute(text("DROP INDEX IF EXISTS ix_units_type_value"))
    conn.execute(text("DROP INDEX IF EXISTS ix_declarations_owner"))


def _v4_conflicts(conn: Connection) -> None:
    """v4 -> v5: conflicts between declarers; every valid declaration indexed so far is queued
    for detection."""
    for table in (conflicts, conflict_queue):
        table.create(conn, checkfirst=True)
    conn.execute(
        text(
            "INSERT INTO conflict_queue (declaration_id) SELECT id FROM declarations "
            "WHERE valid AND id NOT IN (SELECT declaration_id FROM conflict_queue)"
        )
    )


def _v5_segments(conn: Connection) -> None:
    """v5 -> v6: granular features (segments) of declarations, indexed from their documents.

    Declarations indexed before have no segments until their document is stored again or the
    store is rebuilt (`index --reset`)."""
    conn.execute(text("CREATE INDEX ix_declarations_metahash ON declarations (metahash)"))
    segments.create(conn, checkfirst=True)
    segment_sources.create(conn, checkfirst=True)


def _rebuild_sqlite_table(conn: Connection, name: str, old_indexes: tuple[str, ...] = ()) -> None:
    """SQLite cannot alter a table's constraints: rebuild it under its current definition,
    rows and ids kept. `old_indexes`: indexes of the old definition that are gone now."""
    table = metadata.tables[name]
    for index in (*old_indexes, *(i.name for i in table.indexes)):
        conn.execute(text(f'DROP INDEX IF EXISTS "{index}"'))
    conn.execute(text(f'ALTER TABLE "{name}" RENAME TO "_{name}_old"'))
    table.create(conn)
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    conn.execute(text(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM "_{name}_old"'))
    conn.execute(text(f'DROP TABLE "_{name}_old"'))


def _v6_unchecked_children(conn: Connection) -> None:
    """v6 -> v7: units and queue rows without a foreign key check (see HOT_CHILDREN)."""
    inspector = inspect(conn)
    for name in HOT_CHILDREN:
        keys = inspector.get_foreign_keys(name)
        if not keys:
            continue
        if conn.dialect.name == "postgresql":
            for key in keys:
                conn.execute(text(f'ALTER TABLE "{name}" DROP CONSTRAINT "{key["name"]}"'))
            continue
        _rebuild_sqlite_table(conn, name)


def _v7_events_by_position(conn: Connection) -> None:
    """v7 -> v8: the history's unique key is the log's block and index (see `events`), which
    also replaces the index by block."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE events DROP CONSTRAINT uq_events_position"))
        conn.execute(text("DROP INDEX IF EXISTS ix_events_block"))
        conn.execute(
            text(
                "ALTER TABLE events ADD CONSTRAINT uq_events_position "
                "UNIQUE (chain_id, contract, block_number, log_index)"
            )
        )
        return
    _rebuild_sqlite_table(conn, "events", old_indexes=("ix_events_block",))


def _v8_contract_v2(conn: Connection) -> None:
    """v8 -> v9: contract v2's Declared carries the record handle and a sealed declaration's
    commitment time. Declarations indexed from a v1 registry keep NULL in both: v1 events had
    neither (their priority is their ISCC-ID's time, as before); the store can go on with a v2
    deployment next to them."""
    conn.execute(text("ALTER TABLE declarations ADD COLUMN record TEXT"))
    conn.execute(text("ALTER TABLE declarations ADD COLUMN committed_at BIGINT"))


LICENCE_TABLES = (
    grants,
    usage_reports,
    licence_conflicts,
    licence_queue,
    cases,
    case_parties,
    case_events,
)


def _v9_licences(conn: Connection) -> None:
    """v9 -> v10: the licence ledger: grants mirrored from the LicenceRegistry's events, signed
    usage reports, licence conflicts, their queue, and cases with their history. A store
    indexed before holds no licence events: the LicenceRegistry is a new contract, whose events
    an indexer reads from its deployment block on (a deployment file without it has none)."""
    for table in LICENCE_TABLES:
        table.create(conn, checkfirst=True)


def _v10_notifications(conn: Connection) -> None:
    """v10 -> v11: webhook subscriptions, the notices of case changes and their outbox."""
    for table in (notices, subscriptions, deliveries):
        table.create(conn, checkfirst=True)


MIGRATIONS: list[Migration] = [
    _v1_ownership,
    _v2_metadata,
    _v3_unused_indexes,
    _v4_conflicts,
    _v5_segments,
    _v6_unchecked_children,
    _v7_events_by_position,
    _v8_contract_v2,
    _v9_licences,
    _v10_notifications,
]
SCHEMA_VERSION = 1 + len(MIGRATIONS)
_VERSION_KEY = "schema_version"


def stored_version(conn: Connection) -> int | None:
    """The schema version written in the store, or None for an empty database."""
    if not inspect(conn).has_table(meta.name):
        return None
    value = conn.execute(select(meta.c.value).where(meta.c.key == _VERSION_KEY)).scalar()
    return None if value is None else int(value)


def migrate(conn: Connection) -> int:
    """Create or upgrade the schema inside the caller's transaction; return the version."""
    # Read at call time so tests (and future code) can extend the list.
    latest = 1 + len(MIGRATIONS)
    version = stored_version(conn)
    if version is None:
        metadata.create_all(conn)
        conn.execute(meta.insert().values(key=_VERSION_KEY, value=str(latest)))
        return latest
    if version > latest:
        raise StoreError(
            f"the index store has schema version {version}, this registry only knows up to "
            f"{latest}: upgrade iscc-registry or point it at another database"
        )
    for current in range(version, latest):
        MIGRATIONS[current - 1](conn)
    if version != latest:
        conn.execute(meta.update().where(meta.c.key == _VERSION_KEY).values(value=str(latest)))
    return latest
