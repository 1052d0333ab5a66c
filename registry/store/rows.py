"""A batch of decoded events in the store's row layout, and the declaration columns each event
sets.

Turning events into rows (ISCC-ID strings, the history's JSON, unit integers) cost the writing
process ~15 us per event, as much as a third of SQLite's own inserts. Catching up, the log reader
process (registry.index.logreader) therefore builds the rows right after decoding, and the writer
only adds what it alone knows: the registry (chain id, contract) and the new row ids. Read
in-process, `Store.apply` builds them with the same function, so there is one layout.

Blobs in the rows are `bytearray`s and booleans are ints: CPython's sqlite3 binds exactly int,
float, str and bytearray directly but looks every other value (bytes, bool, None) up in its
adapter registry first (`__adapt__`, `__conform__`), ~0.6-1 us per value. A Declared event's
rows hold about a dozen hashes, code bytes, unit bodies and flags; as bytes and bools they cost
the writer ~9 us of its ~46 us per event in SQLite's inserts (a NULL has no other form).
psycopg's binary COPY takes both forms alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.chain.events import (
    DECLARED,
    REVOKED,
    TRANSFERRED,
    UPDATED,
    ChangeEvent,
    DeclaredEvent,
    RegistryEvent,
    unit_value,
)
from registry.chain.licence_events import GrantedEvent, LicenceEvent, TerminatedEvent
from registry.store.int64 import to_signed64

__all__ = [
    "DECLARATION_COLUMNS",
    "EVENT_COLUMNS",
    "UNIT_COLUMNS",
    "BatchRows",
    "add_declared",
    "add_event",
    "add_licence_event",
    "rows_of",
    "state_changes",
    "unit_row",
]

_ZERO_HASH = bytes(32)

# Column order of the tuples below, after what the writer puts in front of them.
EVENT_COLUMNS = (
    "chain_id", "contract",
    "block_number", "block_hash", "tx_hash", "log_index", "iscc_id", "name", "payload",
)  # fmt: skip
DECLARATION_COLUMNS = (
    "id", "chain_id", "contract",
    "block_number", "block_hash", "tx_hash", "log_index", "iscc_id", "iscc_id_body", "declarer",
    "owner", "revoked", "iscc_code", "iscc_code_raw", "datahash", "metahash", "gateway", "valid",
    "invalid_reason", "record", "committed_at",
)  # fmt: skip
UNIT_COLUMNS = ("declaration_id", "unit_type", "bits", "value", "body")


@dataclass(slots=True)
class BatchRows:
    """One range's events as row tails (columns after the registry and row id prefixes), with
    the blocks they came from and the change events the writer applies one by one."""

    events: list[tuple[Any, ...]]
    declarations: list[tuple[Any, ...]]
    # Per declaration, in the same order: (unit_type, bits, value, body) of each unit.
    units: list[tuple[tuple[Any, ...], ...]]
    changes: list[ChangeEvent]
    # Block number -> hash of every block the events came from.
    blocks: dict[int, bytes]
    # A block that appeared with two hashes (logs from two forks): the writer refuses the batch.
    forked_block: int | None = None
    # The licence ledger's events of the range, in chain order (their blocks are in `blocks`).
    licences: list[LicenceEvent] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.events) + len(self.licences)


def rows_of(batch: Sequence[RegistryEvent | LicenceEvent]) -> BatchRows:
    """The rows of a batch; a log that appears twice is kept once (a node never returns one
    twice, but a duplicate must not fail the whole batch)."""
    unique = {e.key: e for e in batch}.values()
    rows = BatchRows([], [], [], [], {})
    for e in unique:
        if isinstance(e, GrantedEvent | TerminatedEvent):
            add_licence_event(rows, e)
            continue
        add_event(rows, (e.block_number, e.block_hash, e.tx_hash, e.log_index, e.iscc_id), e)
    return rows


def add_licence_event(rows: BatchRows, e: LicenceEvent) -> None:
    """A licence ledger event, kept as it is for the writer, and the block it came from."""
    _add_block(rows, e.block_number, e.block_hash)
    rows.licences.append(e)


def add_event(rows: BatchRows, position: tuple[Any, ...], e: RegistryEvent) -> None:
    if type(e) is DeclaredEvent:
        add_declared(
            rows, position, e.payload(), e.iscc_id_body, e.declarer, e.iscc_code,
            e.iscc_code_raw, e.datahash, e.metahash, e.gateway, e.invalid_reason,
            tuple([unit_row(u.unit_type, u.body) for u in e.units]), e.record, e.committed_at,
        )  # fmt: skip
        return
    assert isinstance(e, ChangeEvent)
    rows.events.append((*_bound(position), e.name, e.payload()))
    _add_block(rows, e.block_number, e.block_hash)
    rows.changes.append(e)


def add_declared(
    rows: BatchRows,
    position: tuple[Any, ...],
    payload: str,
    body: int,
    declarer: str,
    iscc_code: str | None,
    iscc_code_raw: bytes,
    datahash: bytes,
    metahash: bytes,
    gateway: str,
    reason: str | None,
    units: tuple[tuple[Any, ...], ...],
    record: int = 0,
    committed_at: int = 0,
) -> None:
    """The rows of a Declared event at `position` (block number, block hash, tx hash, log
    index, ISCC-ID)."""
    _add_block(rows, position[0], position[1])
    position = _bound(position)
    rows.events.append((*position, DECLARED, payload))
    rows.declarations.append(
        (
            *position,
            to_signed64(body),
            declarer,
            declarer,
            0,  # revoked
            iscc_code,
            bytearray(iscc_code_raw),
            bytearray(datahash),
            None if metahash == _ZERO_HASH else bytearray(metahash),
            gateway,
            int(reason is None),  # valid
            reason,
            # uint256 as decimal text: SQLite's integers stop at 2**63.
            str(record),
            committed_at or None,
        )
    )
    rows.units.append(units)


def _bound(position: tuple[Any, ...]) -> tuple[Any, ...]:
    """A position with its block and transaction hashes as the drivers bind them fastest."""
    number, block_hash, tx_hash, log_index, iscc_id = position
    return (number, bytearray(block_hash), bytearray(tx_hash), log_index, iscc_id)


def _add_block(rows: BatchRows, number: int, block_hash: bytes) -> None:
    if rows.blocks.setdefault(number, block_hash) != block_hash:
        rows.forked_block = number


def unit_row(unit_type: str, body: bytes) -> tuple[Any, ...]:
    return (unit_type, len(body) * 8, unit_value(body), bytearray(body))


def _hash_or_none(value: str) -> bytes | None:
    digest = bytes.fromhex(value.removeprefix("0x"))
    return None if digest == _ZERO_HASH else digest


def state_changes(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The declaration columns an event (JSON-form arguments) sets.

    One definition for applying new events and for rebuilding a declaration's state from its
    history after a reorg rollback, so both always agree. `Declared` gives the initial state.
    """
    if name == DECLARED:
        return {
            "owner": args["declarer"],
            "metahash": _hash_or_none(args["metahash"]),
            "gateway": args["gateway"],
            "revoked": False,
        }
    if name == UPDATED:
        return {"metahash": _hash_or_none(args["metahash"]), "gateway": args["gateway"]}
    if name == TRANSFERRED:
        return {"owner": args["to"]}
    if name == REVOKED:
        return {"revoked": True}
    raise ValueError(f"not a registry event: {name}")
