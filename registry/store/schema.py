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
    text,
)

__all__ = [
    "HOT_CHILDREN",
    "LOOKUP_INDEXES",
    "NAMED_DOCUMENTS_KEY",
    "blocks",
    "case_events",
    "case_parties",
    "cases",
    "checkpoints",
    "conflict_queue",
    "conflicts",
    "declarations",
    "deliveries",
    "events",
    "grants",
    "licence_conflicts",
    "licence_queue",
    "meta",
    "metadata",
    "metadata_docs",
    "notices",
    "segment_sources",
    "segments",
    "subscriptions",
    "units",
    "usage_reports",
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


# --- the licence ledger (schema v10) ---------------------------------------------------------

# Licence grants as the LicenceRegistry's LicenceGranted events state them, mirrored like
# declarations: scoped by the registry the indexer follows (its checkpoint's chain id and
# IsccRegistry address, which the licence contract's events share one stream with), removed by a
# rollback above their block. A grant id is keccak(grantor, nonce): unique per registry, not
# across chains (the same key and nonce on a testnet and a mainnet), hence the scoped key.
# A termination sets the terminated_* columns (the contract allows one per grant); a rollback
# below it clears them again.
grants = Table(
    "grants",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("grant_id", String(66), nullable=False),
    Column("iscc_id", String(32), nullable=False),
    Column("iscc_id_body", BigInteger, nullable=False),
    Column("grantor", _Address, nullable=False),
    # NULL: a public licence, open to everyone (the zero address on chain).
    Column("licensee", _Address),
    # The parent grant's id for a sublicence, NULL for a grant by the work's owner.
    Column("parent", String(66)),
    # ISO 3166-1 alpha-2 codes, sorted, comma-separated ("AT,DE"; "" for none): with
    # `worldwide` the exclusions.
    Column("territories", Text, nullable=False),
    Column("worldwide", Boolean, nullable=False),
    Column("uses", BigInteger, nullable=False),
    Column("conditions", Integer, nullable=False),
    # Unix seconds, half-open [starts_at, ends_at); ends_at NULL: no end.
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger),
    Column("exclusive", Boolean, nullable=False),
    Column("sublicensable", Boolean, nullable=False),
    Column("terms_url", Text, nullable=False),
    Column("terms_hash", _Hash),
    # The grantor's nonce (uint256 as decimal text): grant id = keccak(grantor, nonce).
    Column("nonce", Text, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", _Hash, nullable=False),
    Column("tx_hash", _Hash, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("block_time", BigInteger, nullable=False),
    Column("terminated_by", _Address),
    Column("terminated_block", BigInteger),
    Column("terminated_tx", _Hash),
    Column("terminated_log_index", Integer),
    Column("terminated_time", BigInteger),
    UniqueConstraint("grant_id", "chain_id", "contract", name="uq_grants_grant_id"),
    # Detection looks at the grants of related works only, and at a grant's sublicences.
    Index("ix_grants_iscc_id", "iscc_id"),
    Index("ix_grants_parent", "parent"),
    Index("ix_grants_grantor", "grantor"),
    Index("ix_grants_licensee", "licensee"),
    # A rollback deletes the grants above the ancestor and revives those terminated above it.
    Index("ix_grants_block", "chain_id", "contract", "block_number"),
    Index("ix_grants_terminated_block", "chain_id", "contract", "terminated_block"),
)

# Usage reports: EIP-712 signed notes (registry.ledger.notes) the service verified, kept with
# their signature so anyone can check them again, and the declaration the report was matched to
# (by datahash, or by the ISCC-CODE through similarity search; NULL: no declared work found).
# A reporter's nonce is single use: (reporter, nonce) is unique per registry.
usage_reports = Table(
    "usage_reports",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("reporter", _Address, nullable=False),
    Column("iscc_code", _Iscc),
    Column("iscc_code_raw", LargeBinary, nullable=False),
    Column("datahash", _Hash, nullable=False),
    Column("territory", String(2), nullable=False),
    Column("use", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=False),
    # uint256 as decimal text: SQLite's integers stop at 2**63.
    Column("nonce", Text, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("digest", _Hash, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("iscc_id", String(32)),
    # How the report was matched to `iscc_id` (JSON: by datahash, or unit distances).
    Column("match", Text),
    UniqueConstraint("reporter", "nonce", "chain_id", "contract", name="uq_usage_reports_nonce"),
    Index("ix_usage_reports_iscc_id", "iscc_id"),
    Index("ix_usage_reports_datahash", "datahash"),
)

# Licence conflicts, one row per episode: found when a rule first holds, resolved (with the
# reason) when it stops holding. `key` names the conflict independently of when it was found
# (kind and the grants or usage report involved), so re-detection after a reorg that replayed a
# grant finds the open row again instead of opening a second case; at most one open row per key.
# Grants are named by grant id, not row id: a conflict outlives a rollback of its grant until
# detection has looked again (registry.ledger.licence_conflicts).
licence_conflicts = Table(
    "licence_conflicts",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("key", String(200), nullable=False),
    Column("grant_id", String(66)),
    Column("other_grant_id", String(66)),
    Column("usage_id", _Id),
    Column("iscc_id", String(32), nullable=False),
    Column("other_iscc_id", String(32)),
    # B's Overlap (territories, uses, period) or Excess as JSON; and the evidence behind it.
    Column("overlap", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    # When the overlap's period ends (unix seconds; NULL: never): the conflict expires then.
    Column("ends_at", BigInteger),
    Column("found_block", BigInteger, nullable=False),
    Column("found_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger),
    Column("resolved_reason", Text),
    Index(
        "uq_licence_conflicts_open",
        "chain_id",
        "contract",
        "key",
        unique=True,
        sqlite_where=text("resolved_at IS NULL"),
        postgresql_where=text("resolved_at IS NULL"),
    ),
    Index("ix_licence_conflicts_grant", "grant_id"),
    Index("ix_licence_conflicts_other_grant", "other_grant_id"),
    Index("ix_licence_conflicts_usage", "usage_id"),
    Index("ix_licence_conflicts_iscc_id", "iscc_id"),
    Index("ix_licence_conflicts_other_iscc_id", "other_iscc_id"),
    Index("ix_licence_conflicts_ends", "ends_at"),
)

# What licence detection still has to look at: a grant (by grant id), a work (by ISCC-ID: its
# owner, revocation or content conflicts changed) or a usage report (by row id). Written in the
# transaction that changed it, removed in the one that stored what detection found.
licence_queue = Table(
    "licence_queue",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("contract", _Address, nullable=False),
    Column("subject", String(8), nullable=False),
    Column("ref", String(66), nullable=False),
    UniqueConstraint("chain_id", "contract", "subject", "ref", name="uq_licence_queue_ref"),
    sqlite_autoincrement=True,
)

# Cases: one per licence conflict, the parties' side of it (registry.ledger.cases). Off-chain
# state: never rolled back; a conflict that a reorg removes closes its case as withdrawn.
cases = Table(
    "cases",
    metadata,
    # 0x + keccak256 (bytes32), what a signed CaseResponse names.
    Column("id", String(66), primary_key=True),
    Column("conflict_id", _Id, ForeignKey("licence_conflicts.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("deadline", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("closed_reason", Text),
    UniqueConstraint("conflict_id", name="uq_cases_conflict"),
    # Expiry finds open cases past their deadline.
    Index("ix_cases_state_deadline", "state", "deadline"),
)

# The parties of a case (who may respond), one row each, so cases are listed by party.
case_parties = Table(
    "case_parties",
    metadata,
    Column("case_id", String(66), ForeignKey("cases.id"), nullable=False),
    Column("party", _Address, nullable=False),
    Column("role", String(32), nullable=False),
    PrimaryKeyConstraint("case_id", "party"),
    Index("ix_case_parties_party", "party"),
)

# What happened to a case, append-only: opening, each party's signed response (kept with its
# signature and EIP-712 digest; a digest is accepted once per case), expiry and automatic
# resolution (actor "registry").
case_events = Table(
    "case_events",
    metadata,
    Column("case_id", String(66), ForeignKey("cases.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(42), nullable=False),
    Column("action", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", BigInteger),
    Column("signature", LargeBinary),
    Column("digest", _Hash),
    PrimaryKeyConstraint("case_id", "seq"),
    UniqueConstraint("case_id", "digest", name="uq_case_events_digest"),
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
