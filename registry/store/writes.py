"""Writes to the store: a range's rows with their checkpoint in one transaction, rollbacks to a
common ancestor, forgetting a registry, and metadata documents."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    cast,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from registry.chain.events import DECLARED, REVOKED, UPDATED, ChangeEvent, RegistryEvent
from registry.errors import StoreError
from registry.store.bulk import insert_rows, reserve_ids
from registry.store.maintenance import Maintenance
from registry.store.queue import requeue
from registry.store.rows import (
    DECLARATION_COLUMNS,
    EVENT_COLUMNS,
    UNIT_COLUMNS,
    BatchRows,
    rows_of,
    state_changes,
)
from registry.store.schema import (
    NAMED_DOCUMENTS_KEY,
    blocks,
    checkpoints,
    conflict_queue,
    declarations,
    events,
    meta,
    metadata_docs,
    segment_sources,
    units,
)
from registry.store.segments import index_segments

__all__ = ["CheckpointMoved", "Writes"]


log = logging.getLogger(__name__)


class CheckpointMoved(StoreError):
    """The checkpoint is not where a batch expected it: another writer or a rollback moved it."""


class Writes(Maintenance):
    """Every write of the store; each one transaction."""

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


def _count_named_document(conn: Connection) -> None:
    """One more stored document that a declaration names: a mark in `meta` that `generation`
    reads (an UPDATE of one row; the first one inserts it, once, whichever writer wins)."""
    bump = (
        update(meta)
        .where(meta.c.key == NAMED_DOCUMENTS_KEY)
        .values(value=cast(cast(meta.c.value, BigInteger) + 1, String))
    )
    if conn.execute(bump).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(meta).values(key=NAMED_DOCUMENTS_KEY, value="1"))
    except IntegrityError:
        conn.execute(bump)


def _describe(block: tuple[int, bytes] | None) -> str:
    return "unset" if block is None else f"block {block[0]} (0x{block[1].hex()[:12]}...)"


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
    if done.rowcount and e.name == REVOKED:
        # While it stood, this declaration carried its declarer's claim to these bytes and the
        # declarer's later copies started no conflict of their own: they are checked again.
        gone = select(declarations.c.declarer, declarations.c.datahash).where(*where).subquery()
        copies = select(declarations.c.id).where(
            declarations.c.declarer == gone.c.declarer,
            declarations.c.datahash == gone.c.datahash,
            ~declarations.c.revoked,
        )
        requeue(conn, conn.execute(copies).scalars().all())
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


# Positions in a declaration row tail (registry.store.rows) the writer reads: the tail starts
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
    # Conflict detection runs after the batch (registry.ledger.conflicts); queued here, in the
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
