"""The index store: declarations, their event history and the indexer's checkpoint, in SQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import is_address, to_checksum_address
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode, StoreError
from registry.index import schema
from registry.index.events import DECLARED, DeclaredEvent
from registry.index.schema import blocks, checkpoints, declarations, events, units
from registry.iscc.codec import code_from_bytes, code_to_bytes, digest_to_multihash

__all__ = ["DeclarationRecord", "Store"]

BUSY_TIMEOUT_MS = 10_000
_ZERO_HASH = bytes(32)
# Connection option that makes SQLite take the write lock at BEGIN (see _sqlite_pragmas).
_WRITE = "registry_write"


@dataclass(frozen=True)
class DeclarationRecord:
    """One declaration as the index knows it: what was declared, by whom, where on chain."""

    chain_id: int
    contract: str
    iscc_id: str
    declarer: str
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
        except SQLAlchemyError as exc:
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
            row = conn.execute(
                select(checkpoints.c.block_number, checkpoints.c.block_hash).where(
                    checkpoints.c.chain_id == chain_id,
                    checkpoints.c.contract == to_checksum_address(contract),
                )
            ).first()
        return None if row is None else (row.block_number, bytes(row.block_hash))

    def forget(self, chain_id: int, contract: str) -> int:
        """Delete everything indexed from one registry (its chain is gone, e.g. a restarted
        devnet); returns the number of declarations removed."""
        contract = to_checksum_address(contract)
        counts = {}
        with self._write() as conn:
            # Units go with their declarations (ON DELETE CASCADE).
            for table in (declarations, events, blocks, checkpoints):
                where = (table.c.chain_id == chain_id, table.c.contract == contract)
                counts[table.name] = conn.execute(delete(table).where(*where)).rowcount
        return counts["declarations"]

    def apply(
        self,
        chain_id: int,
        contract: str,
        batch: Sequence[DeclaredEvent],
        checkpoint_block: int,
        checkpoint_hash: bytes,
    ) -> int:
        """Store a range's events, declarations, units, blocks and the checkpoint atomically.

        Events already stored (same chain, tx hash and log index) are skipped, so replaying a
        range is harmless. Returns the number of new events.
        """
        contract = to_checksum_address(contract)
        with self._write() as conn:
            new = _new_events(conn, chain_id, batch)
            if new:
                _insert_events(conn, chain_id, contract, new)
            seen = {(e.block_number, e.block_hash) for e in batch}
            _record_blocks(conn, chain_id, contract, seen | {(checkpoint_block, checkpoint_hash)})
            _advance_checkpoint(conn, chain_id, contract, checkpoint_block, checkpoint_hash)
        return len(new)

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
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                query = select(declarations.c.id, *_RECORD_COLUMNS).where(
                    declarations.c.id.in_(chunk)
                )
                for row in conn.execute(query):
                    values = dict(row._mapping)
                    found[values.pop("id")] = DeclarationRecord(**values)
        return found

    def units_after(self, after_id: int, limit: int) -> list[tuple[int, int, str, int]]:
        """(unit row id, declaration row id, unit type, first 64 bits signed) of unit rows
        after `after_id`, in id order: how a similarity index loads and tops itself up."""
        query = (
            select(units.c.id, units.c.declaration_id, units.c.unit_type, units.c.value)
            .where(units.c.id > after_id)
            .order_by(units.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [tuple(row) for row in conn.execute(query)]


def _short(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def _new_events(
    conn: Connection, chain_id: int, batch: Sequence[DeclaredEvent]
) -> list[DeclaredEvent]:
    if not batch:
        return []
    # A block range instead of an IN list: bounded by the range size, served by ix_events_block.
    low = min(e.block_number for e in batch)
    high = max(e.block_number for e in batch)
    query = select(events.c.tx_hash, events.c.log_index).where(
        events.c.chain_id == chain_id, events.c.block_number.between(low, high)
    )
    stored = {(tx_hash, log_index) for tx_hash, log_index in conn.execute(query)}
    new = []
    for e in batch:
        if e.key not in stored:
            stored.add(e.key)
            new.append(e)
    return new


def _insert_events(
    conn: Connection, chain_id: int, contract: str, new: Sequence[DeclaredEvent]
) -> None:
    position = [
        {
            "chain_id": chain_id,
            "contract": contract,
            "block_number": e.block_number,
            "block_hash": e.block_hash,
            "tx_hash": e.tx_hash,
            "log_index": e.log_index,
        }
        for e in new
    ]
    conn.execute(
        insert(events),
        [
            {**pos, "name": DECLARED, "iscc_id": e.iscc_id, "payload": e.payload()}
            for pos, e in zip(position, new, strict=True)
        ],
    )
    ids = conn.execute(
        insert(declarations).returning(declarations.c.id, sort_by_parameter_order=True),
        [
            {
                **pos,
                "iscc_id": e.iscc_id,
                "iscc_id_body": schema.to_signed64(e.iscc_id_body),
                "declarer": e.declarer,
                "iscc_code": e.iscc_code,
                "iscc_code_raw": e.iscc_code_raw,
                "datahash": e.datahash,
                "metahash": None if e.metahash == _ZERO_HASH else e.metahash,
                "gateway": e.gateway,
                "valid": e.valid,
                "invalid_reason": e.invalid_reason,
            }
            for pos, e in zip(position, new, strict=True)
        ],
    ).scalars()
    unit_rows = [
        {
            "declaration_id": declaration_id,
            "unit_type": u.unit_type,
            "bits": u.bits,
            "value": u.value,
            "body": u.body,
        }
        for declaration_id, e in zip(ids, new, strict=True)
        for u in e.units
    ]
    if unit_rows:
        conn.execute(insert(units), unit_rows)


def _record_blocks(
    conn: Connection, chain_id: int, contract: str, seen: set[tuple[int, bytes]]
) -> None:
    numbers = [number for number, _ in seen]
    query = select(blocks.c.number, blocks.c.hash).where(
        blocks.c.chain_id == chain_id,
        blocks.c.contract == contract,
        blocks.c.number.between(min(numbers), max(numbers)),
    )
    stored = {number: block_hash for number, block_hash in conn.execute(query)}
    rows = []
    for number, block_hash in sorted(seen):
        known = stored.get(number)
        if known is None:
            stored[number] = block_hash
            rows.append(
                {"chain_id": chain_id, "contract": contract, "number": number, "hash": block_hash}
            )
        elif known != block_hash:
            # Reorg handling (rollback to the common ancestor) is not implemented yet: refusing
            # keeps the store consistent instead of mixing two forks.
            raise StoreError(
                f"block {number} of chain {chain_id} was indexed with hash 0x{known.hex()}, now "
                f"0x{block_hash.hex()}: the chain reorganised; re-index with more confirmations"
            )
    if rows:
        conn.execute(insert(blocks), rows)


def _advance_checkpoint(
    conn: Connection, chain_id: int, contract: str, number: int, block_hash: bytes
) -> None:
    where = (checkpoints.c.chain_id == chain_id, checkpoints.c.contract == contract)
    current = conn.execute(select(checkpoints.c.block_number).where(*where)).scalar()
    if current is None:
        conn.execute(
            insert(checkpoints).values(
                chain_id=chain_id, contract=contract, block_number=number, block_hash=block_hash
            )
        )
    elif number > current:
        conn.execute(
            update(checkpoints).where(*where).values(block_number=number, block_hash=block_hash)
        )
    # A lagging second indexer replays ranges below the checkpoint; it must not move it back.
