"""The index store's tables (SQLAlchemy Core, portable SQLite/PostgreSQL) and their migrations."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from registry.errors import StoreError

__all__ = [
    "HOT_CHILDREN",
    "LOOKUP_INDEXES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "blocks",
    "checkpoints",
    "conflict_queue",
    "conflicts",
    "declarations",
    "events",
    "meta",
    "metadata",
    "metadata_docs",
    "migrate",
    "segment_sources",
    "segments",
    "stored_version",
    "units",
]

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
_Id = BigInteger().with_variant(Integer(), "sqlite")
_Address = String(42)
_Hash = LargeBinary(32)
_Iscc = String(96)

metadata = MetaData()


def _declaration_id(primary_key: bool = False) -> Column:
    """The column tying a row to its declaration: deleted with it (reorg rollback, `forget`)."""
    return Column(
        "declaration_id",
        _Id,
        ForeignKey("declarations.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


# The indexer writes a unit row and a queue row for nearly every event it stores. A foreign key
# there costs PostgreSQL a trigger and a parent lookup per row: ~30 us of its ~80 us per event.
# Those rows are only ever written in the transaction that writes their declaration, and
# the store's `_delete_declarations` removes them with it, so they carry the reference unchecked.
HOT_CHILDREN = ("units", "conflict_queue")

# Indexes that serve only lookups (resolve, search, conflict detection, history), keyed by
# hashes, codes and addresses: every insert descends each of them to a random page. A catch-up
# on a large backlog drops them and builds them once at its end, which costs ~0.5 s per 100,000
# declarations instead of ~17 us per event (Store.defer_lookups / Store.restore_lookups). The
# indexes the indexer itself reads (by ISCC-ID, by block, by declaration) always stay.
LOOKUP_INDEXES = (
    "ix_declarations_declarer",
    "ix_declarations_iscc_code",
    "ix_declarations_datahash",
    "ix_declarations_metahash",
    "ix_events_iscc_id",
)


meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

declarations = Table(
    "declarations",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("iscc_id", String(32), nullable=False),
    Column("iscc_id_body", BigInteger, nullable=False),
    Column("declarer", _Address, nullable=False),
    # Current state, changed by Transferred / Updated / Revoked events (declarer stays as is).
    Column("owner", _Address, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("iscc_code", _Iscc),
    Column("iscc_code_raw", LargeBinary, nullable=False),
    Column("datahash", _Hash, nullable=False),
    Column("metahash", _Hash),
    Column("gateway", Text, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", _Hash, nullable=False),
    Column("tx_hash", _Hash, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("valid", Boolean, nullable=False),
    Column("invalid_reason", Text),
    # iscc_id leads so the constraint's index also serves lookups by ISCC-ID alone.
    UniqueConstraint("iscc_id", "chain_id", "contract", name="uq_declarations_iscc_id"),
    Index("ix_declarations_declarer", "declarer"),
    Index("ix_declarations_iscc_code", "iscc_code"),
    Index("ix_declarations_datahash", "datahash"),
    # Rolling back a reorg deletes everything above the common ancestor.
    Index("ix_declarations_block", "chain_id", "contract", "block_number"),
    # A metadata document that arrives after its declaration finds it by metahash.
    Index("ix_declarations_metahash", "metahash"),
)

units = Table(
    "units",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("declaration_id", _Id, nullable=False),
    Column("unit_type", String(32), nullable=False),
    Column("bits", Integer, nullable=False),
    Column("value", BigInteger, nullable=False),
    # Wide units (128 bits and more) keep their full body for exact distances later.
    Column("body", LargeBinary, nullable=False),
    # No index on the values: similarity search keeps them in memory (registry.index.hamming),
    # and each index costs every insert while the indexer catches up.
    Index("ix_units_declaration", "declaration_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("tx_hash", _Hash, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", _Hash, nullable=False),
    Column("name", String(32), nullable=False),
    Column("iscc_id", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    # A log's position: a log index is unique within its block. Led by the block number, the
    # key's B-tree grows at its right edge as the indexer appends (led by the transaction hash,
    # as before v8, every insert landed on a random page: ~8 us per event in SQLite), and it
    # serves the rollback's deletes by block number.
    UniqueConstraint(
        "chain_id", "contract", "block_number", "log_index", name="uq_events_position"
    ),
    Index("ix_events_iscc_id", "iscc_id"),
)

# Metadata documents (canonical JSON) by the metahash a declaration commits to. Not chain data:
# anyone may store a document, and it is only ever served under its own hash.
metadata_docs = Table(
    "metadata_docs",
    metadata,
    Column("metahash", _Hash, primary_key=True),
    Column("document", LargeBinary, nullable=False),
    Column("stored_at", BigInteger, nullable=False),
)

# Two declarers claiming the same or overlapping content: one row per pair and kind of evidence
# ("datahash", "content", ...), ordered by chain position. Rows go with either declaration (a
# rolled-back declaration takes its conflicts along); whether a conflict is resolved is derived
# from the declarations' current `revoked` state, never stored here.
conflicts = Table(
    "conflicts",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("earlier_id", _Id, ForeignKey("declarations.id", ondelete="CASCADE"), nullable=False),
    Column("later_id", _Id, ForeignKey("declarations.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("strength", Float, nullable=False),
    Column("detail", Text, nullable=False),
    # Leads with earlier_id, so it also serves lookups by the earlier declaration.
    UniqueConstraint("earlier_id", "later_id", "kind", name="uq_conflicts_pair_kind"),
    Index("ix_conflicts_later", "later_id"),
)

# Declarations whose conflicts still have to be looked for. The indexer adds a row in the
# transaction that stores the declaration; conflict detection removes it in the transaction that
# stores what it found, so a crash between the two loses nothing and repeats nothing.
conflict_queue = Table(
    "conflict_queue",
    metadata,
    Column("declaration_id", _Id, primary_key=True, autoincrement=False),
)

# Granular features of declarations (snippet matching), taken from the metadata document the
# declaration's metahash names: one row per segment. Rows go with their declaration (cascade), so
# a reorg rollback or a changed metahash never leaves segments of a declaration that is gone.
# SQLite's AUTOINCREMENT keeps ids of deleted rows from coming back, so an index that loads new
# rows by id (snippets.SnippetIndex) never misses one.
segments = Table(
    "segments",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    _declaration_id(),
    Column("kind", String(16), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("value", BigInteger, nullable=False),
    Index("ix_segments_declaration", "declaration_id", "kind"),
    sqlite_autoincrement=True,
)

# Per declaration with a metahash: whether its segments were indexed from its document, how
# many, or why not (document malformed). No row: the document has not arrived yet.
segment_sources = Table(
    "segment_sources",
    metadata,
    _declaration_id(primary_key=True),
    Column("metahash", _Hash, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("problem", Text),
)

blocks = Table(
    "blocks",
    metadata,
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("hash", _Hash, nullable=False),
    PrimaryKeyConstraint("chain_id", "contract", "number"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", _Hash, nullable=False),
    PrimaryKeyConstraint("chain_id", "contract"),
)


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


MIGRATIONS: list[Migration] = [
    _v1_ownership,
    _v2_metadata,
    _v3_unused_indexes,
    _v4_conflicts,
    _v5_segments,
    _v6_unchecked_children,
    _v7_events_by_position,
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
