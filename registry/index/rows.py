"""A batch of decoded events in the store's row layout.

Turning events into rows (ISCC-ID strings, the history's JSON, unit integers) cost the writing
process ~15 us per event, as much as a third of SQLite's own inserts. Catching up, the log reader
process (registry.index.logreader) therefore builds the rows right after decoding, and the writer
only adds what it alone knows: the registry (chain id, contract) and the new row ids. Read
in-process, `Store.apply` builds them with the same function, so there is one layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from registry.index.events import ChangeEvent, DeclaredEvent, RegistryEvent
from registry.index.schema import to_signed64

__all__ = ["DECLARATION_COLUMNS", "EVENT_COLUMNS", "UNIT_COLUMNS", "BatchRows", "rows_of"]

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
    "invalid_reason",
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

    def __len__(self) -> int:
        return len(self.events)


def rows_of(batch: Sequence[RegistryEvent]) -> BatchRows:
    """The rows of a batch; a log that appears twice is kept once (a node never returns one
    twice, but a duplicate must not fail the whole batch)."""
    unique = {e.key: e for e in batch}.values()
    rows = BatchRows([], [], [], [], {})
    blocks = rows.blocks
    for e in unique:
        iscc_id = e.iscc_id
        position = (e.block_number, e.block_hash, e.tx_hash, e.log_index, iscc_id)
        rows.events.append((*position, e.name, e.payload()))
        if blocks.setdefault(e.block_number, e.block_hash) != e.block_hash:
            rows.forked_block = e.block_number
        if type(e) is not DeclaredEvent:
            assert isinstance(e, ChangeEvent)
            rows.changes.append(e)
            continue
        rows.declarations.append(
            (
                *position,
                to_signed64(e.iscc_id_body),
                e.declarer,
                e.declarer,
                False,
                e.iscc_code,
                e.iscc_code_raw,
                e.datahash,
                None if e.metahash == _ZERO_HASH else e.metahash,
                e.gateway,
                e.invalid_reason is None,
                e.invalid_reason,
            )
        )
        rows.units.append(tuple([(u.unit_type, len(u.body) * 8, u.value, u.body) for u in e.units]))
    return rows
