"""A batch of decoded events in the store's row layout.

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import starmap
from typing import Any

import numpy as np

from registry.chain.iscc_id import IsccId
from registry.index.events import (
    DECLARED,
    ChangeEvent,
    DeclaredEvent,
    EventDecoder,
    RawLog,
    RegistryEvent,
    declared_payload,
    unit_value,
    units_by_layout,
    validate_code,
)
from registry.index.int64 import to_signed64
from registry.iscc.codec import code_to_bytes

__all__ = [
    "DECLARATION_COLUMNS",
    "EVENT_COLUMNS",
    "UNIT_COLUMNS",
    "BatchRows",
    "iscc_strings",
    "rows_of",
    "rows_of_logs",
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
    for e in unique:
        _add_event(rows, (e.block_number, e.block_hash, e.tx_hash, e.log_index, e.iscc_id), e)
    return rows


def rows_of_logs(decoder: EventDecoder, raw_logs: Iterable[RawLog]) -> BatchRows:
    """rows_of(decoder.decode_logs(raw_logs)) of a parsed eth_getLogs answer, at a fraction of
    the cost: the log reader's path (tests/index/test_rows.py checks they are equal).

    A Declared log goes from its arguments straight to rows, and the ISCC-ID and ISCC-CODE
    strings of the whole batch are base32-encoded at once (one by one they cost ~9 us an event).
    """
    positioned = decoder.decode_positioned(raw_logs)
    # Kept once per (tx hash, log index), in the first one's place, as rows_of does.
    unique = list({(p[2], p[3]): (p, item) for p, item in positioned}.values())
    bodies = np.array([p[4] for p, _item in unique], np.uint64).astype(">u8")
    octets = np.empty((len(unique), 10), np.uint8)
    octets[:, :2] = np.frombuffer(code_to_bytes(str(IsccId(0, decoder.realm)))[:2], np.uint8)
    octets[:, 2:] = bodies.view(np.uint8).reshape(-1, 8)
    iscc_ids = _iscc_strings_of(octets)
    # "ISCC:" + b32encode(raw) is the string of every code whose layout its header tells; the
    # few others get theirs from validate_code below.
    codes = iter(iscc_strings([item[2] for _p, item in unique if type(item) is tuple]))
    rows = BatchRows([], [], [], [], {})
    for (p, item), iscc_id in zip(unique, iscc_ids, strict=True):
        position = (p[0], p[1], p[2], p[3], iscc_id)
        if type(item) is not tuple:
            _add_event(rows, position, item)
            continue
        declarer, datahash, raw, metahash, gateway = item
        code = next(codes)
        checked = units_by_layout(raw, datahash)
        if checked is None:
            code, units, reason = validate_code(raw, datahash)
            unit_rows = tuple([_unit_row(u.unit_type, u.body) for u in units])
        else:
            unit_rows = tuple(starmap(_unit_row, checked[0]))
            reason = checked[1]
        payload = declared_payload(p[4], declarer, datahash, raw, metahash, gateway)
        _add_declared(
            rows, position, payload, p[4], declarer, code, raw, datahash, metahash, gateway,
            reason, unit_rows,
        )  # fmt: skip
    return rows


def _add_event(rows: BatchRows, position: tuple[Any, ...], e: RegistryEvent) -> None:
    if type(e) is DeclaredEvent:
        _add_declared(
            rows, position, e.payload(), e.iscc_id_body, e.declarer, e.iscc_code,
            e.iscc_code_raw, e.datahash, e.metahash, e.gateway, e.invalid_reason,
            tuple([_unit_row(u.unit_type, u.body) for u in e.units]),
        )  # fmt: skip
        return
    assert isinstance(e, ChangeEvent)
    rows.events.append((*_bound(position), e.name, e.payload()))
    _add_block(rows, e.block_number, e.block_hash)
    rows.changes.append(e)


def _add_declared(
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


def _unit_row(unit_type: str, body: bytes) -> tuple[Any, ...]:
    return (unit_type, len(body) * 8, unit_value(body), bytearray(body))


_BASE32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", np.uint8).astype(np.uint32)
_PREFIX = np.frombuffer(b"ISCC:", np.uint8).astype(np.uint32)
# Bit offsets of the eight 5-bit groups in a 40-bit word, most significant first.
_GROUP_SHIFTS = np.arange(35, -1, -5, dtype=np.uint64)


def iscc_strings(raws: Sequence[bytes]) -> list[str]:
    """ "ISCC:" + codec.b32encode(raw) of each raw ISCC, all at once.

    numpy encodes a batch at ~0.2 us an ISCC where b32encode costs ~2 us; the codes are
    grouped by length so each group is one (count, length) array. tests/index/test_rows.py
    checks it against b32encode.
    """
    by_length: dict[int, list[int]] = {}
    for i, raw in enumerate(raws):
        by_length.setdefault(len(raw), []).append(i)
    strings = [""] * len(raws)
    for length, indices in by_length.items():
        group = b"".join([raws[i] for i in indices])
        octets = np.frombuffer(group, np.uint8).reshape(len(indices), length)
        if len(by_length) == 1:
            return _iscc_strings_of(octets)
        for i, text in zip(indices, _iscc_strings_of(octets), strict=True):
            strings[i] = text
    return strings


def _iscc_strings_of(octets: np.ndarray) -> list[str]:
    """iscc_strings of the rows of a (count, length) uint8 array."""
    count, length = octets.shape
    if not count or not length:  # nothing numpy could reshape
        return ["ISCC:"] * count
    words = np.zeros((count, -(-length // 5) * 5), np.uint64)
    words[:, :length] = octets
    words = words.reshape(count, -1, 5)
    # Each 5 bytes are one 40-bit word: eight base32 characters.
    value = words[..., 0] << 32 | words[..., 1] << 24 | words[..., 2] << 16 | words[..., 3] << 8
    value |= words[..., 4]
    groups = (value[..., None] >> _GROUP_SHIFTS & 31).reshape(count, -1)
    chars = (length * 8 + 4) // 5  # RFC 4648 without padding
    text = np.empty((count, len(_PREFIX) + chars), np.uint32)
    text[:, : len(_PREFIX)] = _PREFIX
    text[:, len(_PREFIX) :] = _BASE32[groups[:, :chars]]
    # Rows of UCS-4 code points are numpy str_ values: tolist() makes the Python strings.
    return text.view(np.dtype((np.str_, text.shape[1]))).ravel().tolist()
