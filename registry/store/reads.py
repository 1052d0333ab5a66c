"""Reads of the store: declarations by ISCC-ID, ISCC-CODE, datahash or declarer, histories,
metadata documents, and unit and segment values straight into numpy for the search indexes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_utils import is_address, to_checksum_address
from sqlalchemy import (
    LargeBinary,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode
from registry.iscc.codec import code_from_bytes, code_to_bytes, digest_to_multihash
from registry.store.bulk import among, chunks
from registry.store.connection import Connections, Prepared, ReadOverBudget
from registry.store.schema import (
    NAMED_DOCUMENTS_KEY,
    checkpoints,
    conflicts,
    declarations,
    events,
    meta,
    metadata_docs,
    segment_sources,
    segments,
    units,
)

__all__ = ["DeclarationRecord", "IsccIdView", "Reads"]


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
    record: str | None = None
    committed_at: int | None = None

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
            "record": self.record,
            "kind": "sealed" if self.committed_at else "plain",
            "committed_at": self.committed_at,
        }


# Metadata documents read within a read budget (on the event loop) at most: every plain
# document (MAX_DOCUMENT_BYTES); one with granular features is read in a worker thread.
INLINE_DOCUMENT_BYTES = 64 * 1024
_ANY_SIZE = 2**62

_RECORD_COLUMNS = [declarations.c[name] for name in DeclarationRecord.__dataclass_fields__]


@dataclass(frozen=True)
class IsccIdView:
    """What the store holds about one ISCC-ID, read in one transaction: its declaration
    records in chain order, its history, the current record's metadata document, and whether
    any conflict involves it (so the caller lists conflicts only when there are some)."""

    records: list[DeclarationRecord]
    history: list[dict[str, Any]]
    document: bytes | None
    in_conflict: bool


# Lookups by each indexed column, in chain order, built once: building the expression per call
# cost more than the indexed read itself.
_LOOKUPS = {
    name: select(*_RECORD_COLUMNS)
    .where(declarations.c[name] == bindparam("value"))
    .order_by(declarations.c.block_number, declarations.c.log_index)
    for name in ("iscc_id", "iscc_code", "datahash", "declarer")
}
_PAGED = {
    name: Prepared(query.limit(bindparam("limit")).offset(bindparam("offset")))
    for name, query in _LOOKUPS.items()
}
_ALL = {name: Prepared(query) for name, query in _LOOKUPS.items()}

# The statements of the ISCC-ID answer, built once: for a cold lookup, building SQLAlchemy
# expressions per call cost more than the indexed reads themselves (profiled at 200k rows).
# Each record with its metadata document and whether a conflict involves it, in one statement:
# a statement costs more than the indexed reads it runs.
_BY_ISCC_ID = Prepared(
    select(
        exists()
        .where(
            or_(
                conflicts.c.earlier_id == declarations.c.id,
                conflicts.c.later_id == declarations.c.id,
            )
        )
        .label("in_conflict"),
        # Within a read budget a large document is not read at all (an empty one stands for
        # it): reading 10 MB is a few steps of SQLite's, which its progress handler never
        # stops, and took 7 to 120 ms on the event loop (attacker review).
        select(
            case(
                (
                    func.length(metadata_docs.c.document) <= bindparam("inline_bytes"),
                    metadata_docs.c.document,
                ),
                else_=literal(b"", LargeBinary),
            )
        )
        .where(metadata_docs.c.metahash == declarations.c.metahash)
        .scalar_subquery()
        .label("document"),
        *_RECORD_COLUMNS,
    )
    .where(declarations.c.iscc_id == bindparam("iscc_id"))
    .order_by(declarations.c.block_number, declarations.c.log_index)
)
_HISTORY = Prepared(
    select(
        events.c.name,
        events.c.payload,
        events.c.block_number,
        events.c.tx_hash,
        events.c.log_index,
    )
    .where(events.c.iscc_id == bindparam("iscc_id"))
    .order_by(events.c.block_number, events.c.log_index)
)
_SEGMENTS_OF = Prepared(
    select(segments.c.start, segments.c.size, segments.c.value)
    .where(
        segments.c.declaration_id == bindparam("declaration_id"),
        segments.c.kind == bindparam("kind"),
    )
    .order_by(segments.c.start)
)


# What `generation` compares. Only documents some declaration names change answers: anyone
# may post others, and counting those let anonymous posts flush every reader's cache.
# Conflict detection commits after the batch that moved the checkpoint, so it counts too.
_CHECKPOINTS = Prepared(
    select(
        checkpoints.c.chain_id,
        checkpoints.c.contract,
        checkpoints.c.block_number,
        checkpoints.c.block_hash,
    ).order_by(checkpoints.c.chain_id, checkpoints.c.contract)
)
_NAMED_DOCUMENTS = Prepared(select(meta.c.value).where(meta.c.key == NAMED_DOCUMENTS_KEY))
_LAST_CONFLICT = Prepared(select(func.max(conflicts.c.id)))
# Every search first asks for these (its in-memory index follows the table by row id):
# compiled per call they cost 0.6 ms, a third of a typical snippet search.
_LAST_UNIT = Prepared(select(func.coalesce(func.max(units.c.id), 0)))
_LAST_SEGMENT = Prepared(select(func.coalesce(func.max(segments.c.id), 0)))


def _declarer(address: str) -> str:
    if not is_address(address):
        raise InvalidCode(f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)


def _history_entry(row: tuple[Any, ...]) -> dict[str, Any]:
    name, payload, block_number, tx_hash, log_index = row
    return {
        "event": name,
        "block_number": block_number,
        "tx_hash": "0x" + bytes(tx_hash).hex(),
        "log_index": log_index,
        "data": json.loads(payload),
    }


class Reads(Connections):
    """Every read of the store."""

    def _records(
        self, column: str, value: object, limit: int | None = None, offset: int = 0
    ) -> list[DeclarationRecord]:
        if limit is None and offset:
            raise ValueError("an offset needs a limit")
        with self._driver_read() as read:
            if limit is None:
                rows = read.all(_ALL[column], value=value)
            else:
                # The database skips and stops: a declarer with a million declarations must
                # not cost a million rows per page.
                rows = read.all(_PAGED[column], value=value, limit=limit, offset=offset)
            return [DeclarationRecord(*row) for row in rows]

    def by_iscc_id(self, iscc_id: str, limit: int | None = None) -> list[DeclarationRecord]:
        return self._records("iscc_id", str(IsccId.parse(iscc_id)), limit)

    def by_iscc_code(self, iscc_code: str, limit: int | None = None) -> list[DeclarationRecord]:
        canonical = code_from_bytes(code_to_bytes(iscc_code))
        return self._records("iscc_code", canonical, limit)

    def by_datahash(self, datahash: bytes, limit: int | None = None) -> list[DeclarationRecord]:
        return self._records("datahash", bytes(datahash), limit)

    def by_declarer(
        self, address: str, limit: int | None = None, offset: int = 0
    ) -> list[DeclarationRecord]:
        return self._records("declarer", _declarer(address), limit, offset)

    def declarer_counts(self, address: str) -> tuple[int, int]:
        """How many declarations a declarer made, and how many of them are revoked."""
        query = select(func.count(), func.coalesce(func.sum(case((declarations.c.revoked, 1))), 0))
        with self._read() as conn:
            total, revoked = conn.execute(
                query.where(declarations.c.declarer == _declarer(address))
            ).one()
        return int(total), int(revoked)

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
        with self._driver_read() as read:
            rows = read.all(_HISTORY, iscc_id=str(IsccId.parse(iscc_id)))
            return [_history_entry(row) for row in rows]

    def iscc_id_view(self, iscc_id: str) -> IsccIdView:
        """Records, history, current document and conflict flag of an ISCC-ID, consistent with
        each other (one read transaction); no records if nothing is indexed for it."""
        canonical = str(IsccId.parse(iscc_id))
        with self._driver_read() as read:
            inline = INLINE_DOCUMENT_BYTES if read.budgeted else _ANY_SIZE
            rows = read.all(_BY_ISCC_ID, iscc_id=canonical, inline_bytes=inline)
            if not rows:
                return IsccIdView(records=[], history=[], document=None, in_conflict=False)
            records = [DeclarationRecord(*row[2:]) for row in rows]
            if records[-1].metahash and rows[-1][1] == b"":  # a document too large to read here
                raise ReadOverBudget(f"a metadata document of more than {inline} bytes")
            history = [_history_entry(row) for row in read.all(_HISTORY, iscc_id=canonical)]
        # Each row starts with its conflict flag and its metadata document (_BY_ISCC_ID).
        document = rows[-1][1] if records[-1].metahash else None
        in_conflict = any(row[0] for row in rows)
        return IsccIdView(records, history, document, in_conflict)

    def generation(self) -> tuple[Any, ...]:
        """Changes whenever what the store answers may have changed: every applied range or
        rollback moves a checkpoint, every stored document a declaration names and every
        conflict counts. Readers that cache answers compare it instead of re-running their
        queries."""
        with self._driver_read() as read:
            marks = read.all(_CHECKPOINTS)
            named = read.all(_NAMED_DOCUMENTS)
            (found,) = read.all(_LAST_CONFLICT)
        return (*marks, named[0][0] if named else None, found[0])

    def get_metadata(self, digest: bytes) -> bytes | None:
        with self._read() as conn:
            return conn.execute(
                select(metadata_docs.c.document).where(metadata_docs.c.metahash == digest)
            ).scalar()

    def last_unit_id(self) -> int:
        with self._driver_read() as read:
            return int(read.all(_LAST_UNIT)[0][0])

    def last_segment_id(self) -> int:
        with self._driver_read() as read:
            return int(read.all(_LAST_SEGMENT)[0][0])

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
        # Prepared: a search reads a declaration's segments per match checked, and compiling
        # the statement per read cost more than the read.
        with self._driver_read() as read:
            rows = read.all(_SEGMENTS_OF, declaration_id=declaration_id, kind=kind)
        return np.array(rows, dtype=np.int64).reshape(-1, 3)

    def segment_kinds(self, declaration_ids: Sequence[int]) -> dict[int, set[str]]:
        """The segment kinds each of these declarations has; those with none are left out."""
        found: dict[int, set[str]] = {}
        if not declaration_ids:
            return found
        with self._read() as conn:
            for chunk in chunks(declaration_ids):
                query = (
                    select(segments.c.declaration_id, segments.c.kind)
                    .where(among(conn, segments.c.declaration_id, chunk))
                    .group_by(segments.c.declaration_id, segments.c.kind)
                )
                for declaration_id, kind in conn.execute(query):
                    found.setdefault(declaration_id, set()).add(kind)
        return found

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
