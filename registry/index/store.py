"""The index store: declarations, their event history and the indexer's checkpoint, in SQL."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from eth_utils import is_address, to_checksum_address
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Index,
    String,
    case,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode, StoreError
from registry.index import schema
from registry.index.bulk import among, chunks, insert_rows, reserve_ids
from registry.index.events import (
    DECLARED,
    UPDATED,
    ChangeEvent,
    RegistryEvent,
    state_changes,
)
from registry.index.rows import (
    DECLARATION_COLUMNS,
    EVENT_COLUMNS,
    UNIT_COLUMNS,
    BatchRows,
    rows_of,
)
from registry.index.schema import (
    blocks,
    checkpoints,
    conflict_queue,
    conflicts,
    declarations,
    events,
    meta,
    metadata_docs,
    segment_sources,
    segments,
    units,
)
from registry.index.segments import index_segments
from registry.iscc.codec import code_from_bytes, code_to_bytes, digest_to_multihash

__all__ = ["CheckpointMoved", "DeclarationRecord", "Store"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
# Connection option that makes SQLite take the write lock at BEGIN (see _sqlite_pragmas).
_WRITE = "registry_write"


class CheckpointMoved(StoreError):
    """The checkpoint is not where a batch expected it: another writer or a rollback moved it."""


@dataclass(frozen=True)
class DeclarationRecord:
    """One declaration as the index knows it: what was declared, by whom, where on chain."""

    chain_id: int
    contract: str
    iscc_id: str
    declarer: str
    owner: str
    revoked: bool
    iscc_code: str | None
    iscc_code_raw: bytes
    datahash: bytes
    metahash: bytes | None
    gateway: str
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    valid: bool
    invalid_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: ISCC strings, hashes as multihash hex ("1e20..."), chain data as 0x."""
        return {
            "iscc_id": self.iscc_id,
            "iscc_code": self.iscc_code,
            "iscc_code_raw": "0x" + self.iscc_code_raw.hex(),
            "datahash": digest_to_multihash(self.datahash),
            "metahash": digest_to_multihash(self.metahash) if self.metahash else None,
            "declarer": self.declarer,
            "owner": self.owner,
            "revoked": self.revoked,
            "gateway": self.gateway,
            "valid": self.valid,
            "invalid_reason": self.invalid_reason,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "block_number": self.block_number,
            "block_hash": "0x" + self.block_hash.hex(),
            "tx_hash": "0x" + self.tx_hash.hex(),
            "log_index": self.log_index,
        }


_RECORD_COLUMNS = [declarations.c[name] for name in DeclarationRecord.__dataclass_fields__]


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN and cannot take the write lock
        # up front; switching it off lets _on_begin emit the right BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL survives a killed process; only power loss may drop the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MB of page cache (the default is 2 MB): batches insert into seven indexes with
        # random keys (hashes, codes), which otherwise re-read index pages from disk.
        cursor.execute("PRAGMA cache_size=-64000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction that started as a reader cannot wait for the lock in WAL mode
        # (SQLITE_BUSY_SNAPSHOT), so writers lock at BEGIN and busy_timeout applies.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Store:
    """Declarations, events, blocks and checkpoints behind a SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (and create or upgrade) the store at a SQLAlchemy URL, e.g. sqlite:///x.db."""
        try:
            parsed = make_url(url)
            if parsed.drivername in ("postgresql", "postgres"):
                # SQLAlchemy's default PostgreSQL driver is psycopg2; this package ships psycopg 3.
                parsed = parsed.set(drivername="postgresql+psycopg")
            options: dict[str, Any] = {}
            sqlite = parsed.get_backend_name() == "sqlite"
            if sqlite:
                if parsed.database in (None, "", ":memory:"):
                    # Every connection to :memory: would otherwise get its own empty database.
                    options["poolclass"] = StaticPool
                else:
                    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, **options)
        except (ArgumentError, NoSuchModuleError, ImportError, OSError) as exc:
            raise StoreError(f"cannot open the index store {url!r}: {exc}") from None
        if sqlite:
            _sqlite_pragmas(engine)
        store = cls(engine)
        try:
            with store._write() as conn:
                if not sqlite:
                    # Two processes opening a fresh PostgreSQL store must not both create it.
                    conn.execute(text("SELECT pg_advisory_xact_lock(24138)"))
                schema.migrate(conn)
        except StoreError:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; database failures become StoreError."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    yield conn
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            # Bulk COPY talks to the driver directly, so its errors arrive unwrapped.
            raise StoreError(f"index store write failed: {_short(exc)}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"index store read failed: {_short(exc)}") from exc

    def checkpoint(self, chain_id: int, contract: str) -> int | None:
        """The last block fully indexed for this registry, or None if it was never indexed."""
        block = self.checkpoint_block(chain_id, contract)
        return None if block is None else block[0]

    def checkpoint_block(self, chain_id: int, contract: str) -> tuple[int, bytes] | None:
        """Number and hash of the checkpoint block (the hash shows whether the chain still has
        it), or None if this registry was never indexed."""
        with self._read() as conn:
            return _checkpoint(conn, chain_id, to_checksum_address(contract))

    def forget(self, chain_id: int, contract: str) -> int:
        """Delete everything indexed from one registry (its chain is gone, e.g. a restarted
        devnet); returns the number of declarations removed."""
        contract = to_checksum_address(contract)
        counts = {}
        with self._write() as conn:
            counts[declarations.name] = _delete_declarations(
                conn, declarations.c.chain_id == chain_id, declarations.c.contract == contract
            )
            for table in (events, blocks, checkpoints):
                where = (table.c.chain_id == chain_id, table.c.contract == contract)
                counts[table.name] = conn.execute(delete(table).where(*where)).rowcount
        return counts["declarations"]

    def apply(
        self,
        chain_id: int,
        contract: str,
        batch: Sequence[RegistryEvent] | BatchRows,
        parent: tuple[int, bytes] | None,
        checkpoint_block: int,
        checkpoint_hash: bytes,
    ) -> int:
        """Store a range's events (or their rows, built by the log reader process) and their
        effect on declarations, the blocks seen and the new checkpoint in one transaction;
        returns the number of events stored.

        `parent` is the checkpoint the range continues from (its first block's parent). If the
        store's checkpoint is not that any more, another indexer or a rollback moved it and the
        batch is refused, so a range is never applied twice or on top of another fork.
        """
        contract = to_checksum_address(contract)
        rows = batch if isinstance(batch, BatchRows) else rows_of(batch)
        with self._write() as conn:
            current = _checkpoint(conn, chain_id, contract, lock=True)
            if current != parent:
                raise CheckpointMoved(
                    f"the checkpoint of {contract} on chain {chain_id} is {_describe(current)}, "
                    f"not {_describe(parent)}: another indexer is writing, or a rollback ran"
                )
            _insert_rows(conn, chain_id, contract, rows)
            for e in rows.changes:
                _apply_change(conn, chain_id, contract, e)
            updated = {e.iscc_id for e in rows.changes if e.name == UPDATED}
            _reindex_segments(conn, chain_id, contract, updated)
            _record_blocks(conn, chain_id, contract, rows, checkpoint_block, checkpoint_hash)
            _set_checkpoint(conn, chain_id, contract, (checkpoint_block, checkpoint_hash))
        return len(rows)

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

    def block_at_or_below(
        self, chain_id: int, contract: str, number: int
    ) -> tuple[int, bytes] | None:
        """The newest recorded block (number, hash) at or below `number`: the follower probes
        these against the chain to find the common ancestor after a reorg."""
        query = (
            select(blocks.c.number, blocks.c.hash)
            .where(
                blocks.c.chain_id == chain_id,
                blocks.c.contract == to_checksum_address(contract),
                blocks.c.number <= number,
            )
            .order_by(blocks.c.number.desc())
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row.number, bytes(row.hash))

    def rollback(
        self,
        chain_id: int,
        contract: str,
        ancestor: tuple[int, bytes] | None,
    ) -> int:
        """Undo everything indexed above the common ancestor (None: everything) in one
        transaction, rebuilding the state of older declarations that later events had changed
        from their remaining history; returns the number of events removed."""
        contract = to_checksum_address(contract)
        above = -1 if ancestor is None else ancestor[0]
        # Rebuilding the state of a changed declaration reads its history by ISCC-ID.
        self.restore_lookups()
        scope = (events.c.chain_id == chain_id, events.c.contract == contract)
        with self._write() as conn:
            touched = conn.execute(
                select(events.c.iscc_id)
                .distinct()
                .where(*scope, events.c.block_number > above, events.c.name != DECLARED)
            ).scalars()
            touched = list(touched)
            removed = conn.execute(
                delete(events).where(*scope, events.c.block_number > above)
            ).rowcount
            _delete_declarations(
                conn,
                declarations.c.chain_id == chain_id,
                declarations.c.contract == contract,
                declarations.c.block_number > above,
            )
            conn.execute(
                delete(blocks).where(
                    blocks.c.chain_id == chain_id,
                    blocks.c.contract == contract,
                    blocks.c.number > above,
                )
            )
            for iscc_id in touched:
                _rebuild_state(conn, chain_id, contract, iscc_id)
            # A rolled-back Updated event may have changed the metahash back.
            _reindex_segments(conn, chain_id, contract, set(touched))
            _set_checkpoint(conn, chain_id, contract, ancestor)
        return removed

    def _records(self, where: ColumnElement[bool]) -> list[DeclarationRecord]:
        query = (
            select(*_RECORD_COLUMNS)
            .where(where)
            .order_by(declarations.c.block_number, declarations.c.log_index)
        )
        with self._read() as conn:
            return [DeclarationRecord(**row._mapping) for row in conn.execute(query)]

    def by_iscc_id(self, iscc_id: str) -> list[DeclarationRecord]:
        return self._records(declarations.c.iscc_id == str(IsccId.parse(iscc_id)))

    def by_iscc_code(self, iscc_code: str) -> list[DeclarationRecord]:
        canonical = code_from_bytes(code_to_bytes(iscc_code))
        return self._records(declarations.c.iscc_code == canonical)

    def by_datahash(self, datahash: bytes) -> list[DeclarationRecord]:
        return self._records(declarations.c.datahash == bytes(datahash))

    def by_declarer(self, address: str) -> list[DeclarationRecord]:
        if not is_address(address):
            raise InvalidCode(f"not an Ethereum address: {address!r}")
        return self._records(declarations.c.declarer == to_checksum_address(address))

    def count(self) -> int:
        """Number of declarations in the store, valid or not."""
        with self._read() as conn:
            return conn.execute(select(func.count()).select_from(declarations)).scalar_one()

    def by_ids(self, ids: Sequence[int]) -> dict[int, DeclarationRecord]:
        """Records by store row id (as similarity search proposes them); missing ids are
        simply absent (rolled back since)."""
        found: dict[int, DeclarationRecord] = {}
        with self._read() as conn:
            for chunk in chunks(ids):
                query = select(declarations.c.id, *_RECORD_COLUMNS).where(
                    among(conn, declarations.c.id, chunk)
                )
                for row in conn.execute(query):
                    values = dict(row._mapping)
                    row_id = values.pop("id")
                    found[row_id] = DeclarationRecord(**values)
        return found

    def history(self, iscc_id: str) -> list[dict[str, Any]]:
        """Every event about an ISCC-ID in chain order: declared, updated, transferred, revoked."""
        canonical = str(IsccId.parse(iscc_id))
        query = (
            select(
                events.c.name,
                events.c.payload,
                events.c.block_number,
                events.c.tx_hash,
                events.c.log_index,
            )
            .where(events.c.iscc_id == canonical)
            .order_by(events.c.block_number, events.c.log_index)
        )
        with self._read() as conn:
            return [
                {
                    "event": row.name,
                    "block_number": row.block_number,
                    "tx_hash": "0x" + bytes(row.tx_hash).hex(),
                    "log_index": row.log_index,
                    "data": json.loads(row.payload),
                }
                for row in conn.execute(query)
            ]

    def generation(self) -> tuple[Any, ...]:
        """Changes whenever what the store answers may have changed: every applied range or
        rollback moves a checkpoint, every stored document or conflict adds a row. Readers that
        cache answers compare it instead of re-running their queries."""
        with self._read() as conn:
            marks = conn.execute(
                select(
                    checkpoints.c.chain_id,
                    checkpoints.c.contract,
                    checkpoints.c.block_number,
                    checkpoints.c.block_hash,
                ).order_by(checkpoints.c.chain_id, checkpoints.c.contract)
            ).all()
            # Only documents some declaration names change answers; anyone may post others,
            # and counting those let anonymous posts flush every reader's cache.
            named = conn.execute(select(meta.c.value).where(meta.c.key == _NAMED_DOCS_KEY)).scalar()
            # Conflict detection commits after the batch that moved the checkpoint.
            found = conn.execute(select(func.max(conflicts.c.id))).scalar()
        return (*(tuple(m) for m in marks), named, found)

    def put_metadata(self, digest: bytes, document: bytes) -> bool:
        """Store a canonical metadata document under its blake3 digest (the caller verified
        the hash); returns False if it was already there. Declarations already indexed with
        this metahash get their segments from it now (a declaration indexed later gets them
        when it is applied)."""
        with self._write() as conn:
            known = conn.execute(
                select(metadata_docs.c.metahash).where(metadata_docs.c.metahash == digest)
            ).first()
            if not known:
                conn.execute(
                    insert(metadata_docs).values(
                        metahash=digest, document=document, stored_at=int(time.time())
                    )
                )
                named = select(declarations.c.id).where(declarations.c.metahash == digest)
                if conn.execute(named.limit(1)).first() is not None:
                    _count_named_document(conn)
            # Also when it was known: declarations indexed before this store had segments
            # (schema v4) get them when their document is posted again.
            source = segment_sources.c.declaration_id
            waiting = conn.execute(
                select(declarations.c.id)
                .outerjoin(segment_sources, source == declarations.c.id)
                .where(declarations.c.metahash == digest, source.is_(None))
            ).scalars()
            index_segments(conn, [(declaration_id, digest) for declaration_id in waiting])
            return not known

    def get_metadata(self, digest: bytes) -> bytes | None:
        with self._read() as conn:
            return conn.execute(
                select(metadata_docs.c.document).where(metadata_docs.c.metahash == digest)
            ).scalar()

    def last_unit_id(self) -> int:
        with self._read() as conn:
            return conn.execute(select(func.coalesce(func.max(units.c.id), 0))).scalar_one()

    def last_segment_id(self) -> int:
        with self._read() as conn:
            return conn.execute(select(func.coalesce(func.max(segments.c.id), 0))).scalar_one()

    def segment_values(self, kinds: Sequence[str], after_id: int, up_to_id: int) -> np.ndarray:
        """(position of the kind in `kinds`, declaration row id, start, size, simprint signed) of
        the segment rows with ids in (after_id, up_to_id], as an int64 array of shape (n, 5)."""
        kind = case({k: i for i, k in enumerate(kinds)}, value=segments.c.kind)
        query = select(
            kind, segments.c.declaration_id, segments.c.start, segments.c.size, segments.c.value
        ).where(segments.c.id > after_id, segments.c.id <= up_to_id, segments.c.kind.in_(kinds))
        return self._driver_rows(query, 5)

    def segments_of(self, declaration_id: int, kind: str) -> np.ndarray:
        """(start, size, simprint signed) of one declaration's segments of a kind, by start."""
        query = (
            select(segments.c.start, segments.c.size, segments.c.value)
            .where(segments.c.declaration_id == declaration_id, segments.c.kind == kind)
            .order_by(segments.c.start)
        )
        return self._driver_rows(query, 3)

    def segment_source(self, declaration_id: int) -> dict[str, Any] | None:
        """Whether a declaration's segments were indexed from its document: their number, or
        the problem that kept them out; None while its document has not been stored."""
        query = select(segment_sources.c.segments, segment_sources.c.problem).where(
            segment_sources.c.declaration_id == declaration_id
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else {"segments": row.segments, "problem": row.problem}

    def _driver_rows(self, query: Any, width: int) -> np.ndarray:
        with self._read() as conn:
            compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            # Straight from the driver into numpy: a million-row start-up load spends most of
            # its time in SQLAlchemy's per-row result processing otherwise.
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(str(compiled))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        return np.array(rows, dtype=np.int64).reshape(-1, width)

    def unit_values(self, unit_types: Sequence[str], after_id: int, up_to_id: int) -> np.ndarray:
        """(position of the unit type in `unit_types`, declaration row id, first 64 bits signed)
        of the unit rows of those types with ids in (after_id, up_to_id], as an int64 array of
        shape (n, 3): how a similarity index loads and tops itself up."""
        kind = case({t: i for i, t in enumerate(unit_types)}, value=units.c.unit_type)
        query = select(kind, units.c.declaration_id, units.c.value).where(
            units.c.id > after_id, units.c.id <= up_to_id, units.c.unit_type.in_(unit_types)
        )
        return self._driver_rows(query, 3)


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def _describe(block: tuple[int, bytes] | None) -> str:
    return "unset" if block is None else f"block {block[0]} (0x{block[1].hex()[:12]}...)"


_DEFERRED_KEY = "lookup_indexes_deferred"
# How many stored metadata documents a declaration names (Store.generation).
_NAMED_DOCS_KEY = "named_documents"


def _lookups_deferred(conn: Connection) -> bool:
    return conn.execute(select(meta.c.key).where(meta.c.key == _DEFERRED_KEY)).first() is not None


def _lookup_indexes() -> list[Index]:
    return [
        index
        for table in schema.metadata.tables.values()
        for index in table.indexes
        if index.name in schema.LOOKUP_INDEXES
    ]


def _checkpoint(
    conn: Connection, chain_id: int, contract: str, lock: bool = False
) -> tuple[int, bytes] | None:
    query = select(checkpoints.c.block_number, checkpoints.c.block_hash).where(
        checkpoints.c.chain_id == chain_id, checkpoints.c.contract == contract
    )
    if lock:
        # A second PostgreSQL writer waits here until this batch commits (SQLite writers hold
        # the database lock from BEGIN IMMEDIATE already; SQLAlchemy omits the clause there).
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else (row.block_number, bytes(row.block_hash))


def _set_checkpoint(
    conn: Connection, chain_id: int, contract: str, block: tuple[int, bytes] | None
) -> None:
    where = (checkpoints.c.chain_id == chain_id, checkpoints.c.contract == contract)
    conn.execute(delete(checkpoints).where(*where))
    if block is not None:
        conn.execute(
            insert(checkpoints).values(
                chain_id=chain_id, contract=contract, block_number=block[0], block_hash=block[1]
            )
        )


def _delete_declarations(conn: Connection, *where: ColumnElement[bool]) -> int:
    """Delete declarations and everything hanging off them; returns how many.

    Segments and conflicts follow by ON DELETE CASCADE; units and queue rows carry no foreign
    key (schema.HOT_CHILDREN), so they are deleted here first.
    """
    doomed = select(declarations.c.id).where(*where)
    for table in (units, conflict_queue):
        conn.execute(delete(table).where(table.c.declaration_id.in_(doomed)))
    return conn.execute(delete(declarations).where(*where)).rowcount


def _apply_change(conn: Connection, chain_id: int, contract: str, e: ChangeEvent) -> None:
    where = (
        declarations.c.iscc_id == e.iscc_id,
        declarations.c.chain_id == chain_id,
        declarations.c.contract == contract,
    )
    done = conn.execute(
        update(declarations).where(*where).values(**state_changes(e.name, e.args()))
    )
    if not done.rowcount:
        # Kept in the history all the same: the store may have been started after the
        # declaration, and the chain, not the store, decides what exists.
        log.warning("%s event for %s, which this store has no declaration of", e.name, e.iscc_id)


def _reindex_segments(conn: Connection, chain_id: int, contract: str, iscc_ids: set[str]) -> None:
    """Segments of these declarations again from the documents their metahashes now name."""
    if not iscc_ids:
        return
    rows = conn.execute(
        select(declarations.c.id, declarations.c.metahash).where(
            declarations.c.chain_id == chain_id,
            declarations.c.contract == contract,
            declarations.c.iscc_id.in_(sorted(iscc_ids)),
        )
    ).all()
    index_segments(conn, [(row.id, row.metahash) for row in rows])


def _rebuild_state(conn: Connection, chain_id: int, contract: str, iscc_id: str) -> None:
    history = conn.execute(
        select(events.c.name, events.c.payload)
        .where(
            events.c.iscc_id == iscc_id,
            events.c.chain_id == chain_id,
            events.c.contract == contract,
        )
        .order_by(events.c.block_number, events.c.log_index)
    ).all()
    if not history or history[0].name != DECLARED:
        return
    state: dict[str, Any] = {}
    for name, payload in history:
        state.update(state_changes(name, json.loads(payload)))
    conn.execute(
        update(declarations)
        .where(
            declarations.c.iscc_id == iscc_id,
            declarations.c.chain_id == chain_id,
            declarations.c.contract == contract,
        )
        .values(**state)
    )


# Positions in a declaration row tail (registry.index.rows) the writer reads: the tail starts
# after id, chain_id and contract.
_METAHASH = DECLARATION_COLUMNS.index("metahash") - 3
_VALID = DECLARATION_COLUMNS.index("valid") - 3


def _insert_rows(conn: Connection, chain_id: int, contract: str, rows: BatchRows) -> None:
    """History rows for every event, declaration and unit rows for each Declared event."""
    registry = (chain_id, contract)
    insert_rows(conn, events, EVENT_COLUMNS, [(*registry, *tail) for tail in rows.events])
    ids = reserve_ids(conn, declarations, len(rows.declarations))
    insert_rows(
        conn,
        declarations,
        DECLARATION_COLUMNS,
        [(i, *registry, *tail) for i, tail in zip(ids, rows.declarations, strict=True)],
    )
    insert_rows(
        conn,
        units,
        UNIT_COLUMNS,
        [(i, *unit) for i, each in zip(ids, rows.units, strict=True) for unit in each],
    )
    # Conflict detection runs after the batch (registry.index.conflicts); queued here, in the
    # batch's transaction, so no declaration is ever left unchecked.
    insert_rows(
        conn,
        conflict_queue,
        ("declaration_id",),
        [(i,) for i, tail in zip(ids, rows.declarations, strict=True) if tail[_VALID]],
    )
    index_segments(
        conn,
        [
            (i, tail[_METAHASH])
            for i, tail in zip(ids, rows.declarations, strict=True)
            if tail[_METAHASH] is not None
        ],
        fresh=True,
    )


def _record_blocks(
    conn: Connection,
    chain_id: int,
    contract: str,
    rows: BatchRows,
    checkpoint_block: int,
    checkpoint_hash: bytes,
) -> None:
    seen = dict(rows.blocks)
    forked = rows.forked_block
    if seen.setdefault(checkpoint_block, checkpoint_hash) != checkpoint_hash:
        forked = checkpoint_block
    if forked is not None:
        raise StoreError(
            f"block {forked} appears with two hashes in one batch: logs from two forks of the "
            "chain; the batch is refused"
        )
    conn.execute(
        insert(blocks),
        [
            {"chain_id": chain_id, "contract": contract, "number": number, "hash": block_hash}
            for number, block_hash in sorted(seen.items())
        ],
    )


def _count_named_document(conn: Connection) -> None:
    """One more stored document that a declaration names: a mark in `meta` that `generation`
    reads (an UPDATE of one row; the first one inserts it, once, whichever writer wins)."""
    bump = (
        update(meta)
        .where(meta.c.key == _NAMED_DOCS_KEY)
        .values(value=cast(cast(meta.c.value, BigInteger) + 1, String))
    )
    if conn.execute(bump).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(meta).values(key=_NAMED_DOCS_KEY, value="1"))
    except IntegrityError:
        conn.execute(bump)
