"""The store's tables (SQLAlchemy Core, portable between SQLite and PostgreSQL); their migrations
are in registry.store.migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
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
)

__all__ = [
    "HOT_CHILDREN",
    "LOOKUP_INDEXES",
    "NAMED_DOCUMENTS_KEY",
    "blocks",
    "checkpoints",
    "conflict_queue",
    "conflicts",
    "declarations",
    "deliveries",
    "events",
    "meta",
    "metadata",
    "metadata_docs",
    "notices",
    "segment_sources",
    "segments",
    "subscriptions",
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

# Key in `meta`: how many stored metadata documents some declaration names (Reads.generation).
NAMED_DOCUMENTS_KEY = "named_documents"

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
    # Contract v2: the owner's record handle (decimal uint256; NULL for v1 events, which did not
    # carry it) and a sealed declaration's commitment time in microseconds (NULL: plain).
    Column("record", Text),
    Column("committed_at", BigInteger),
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
    # No index on the values: similarity search keeps them in memory (registry.search.hamming),
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

# Notifications (registry.ledger.notify). `notices` is the service's feed of case changes: one
# row per case event, numbered by the store (the SSE feed's event ids, so a client resumes with
# Last-Event-ID). SQLite's AUTOINCREMENT keeps a number from ever coming back.
notices = Table(
    "notices",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("type", String(32), nullable=False),
    Column("case_id", String(80), nullable=False),
    Column("case_seq", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("works", Text, nullable=False),
    Column("parties", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    # A case event is announced once, however often the collector runs.
    UniqueConstraint("case_id", "case_seq", name="uq_notices_case_event"),
    sqlite_autoincrement=True,
)

# Webhook subscriptions: where to POST notices, the HMAC secret, and which notices (all filters
# that are set must match; none set: every notice). A subscription gets the notices recorded
# after it was made.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("case_id", String(80)),
    Column("work", String(32)),
    Column("kind", String(32)),
    Column("creator", String(64), nullable=False),
    Column("created", BigInteger, nullable=False),
    Index("ix_subscriptions_creator", "creator"),
)

# The outbox: one row per notice and subscription, written in the transaction that records the
# notice, so a delivery survives a restart. `next_attempt` (unix seconds) is also the lease: a
# sender moves it into the future before it posts, so two senders never post the same row at once.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column(
        "subscription_id",
        String(40),
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("notice_id", _Id, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", Float, nullable=False),
    Column("last_error", Text),
    Column("last_status", Integer),
    Column("delivered", BigInteger),
    UniqueConstraint("subscription_id", "notice_id", name="uq_deliveries_pair"),
    Index("ix_deliveries_due", "status", "next_attempt"),
)
