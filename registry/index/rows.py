"""Rows straight from a parsed eth_getLogs answer: the log reader's fast path to the store's row
layout (registry.store.rows), without building an event object per Declared log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import starmap

import numpy as np

from registry.chain.events import declared_payload, units_by_layout, validate_code
from registry.chain.iscc_id import IsccId
from registry.chain.licence_events import GrantedEvent, TerminatedEvent
from registry.index.events import EventDecoder, RawLog
from registry.iscc.codec import code_to_bytes
from registry.store.rows import BatchRows, add_declared, add_event, add_licence_event, unit_row

__all__ = ["iscc_strings", "rows_of_logs"]


def rows_of_logs(decoder: EventDecoder, raw_logs: Iterable[RawLog]) -> BatchRows:
    """rows_of(decoder.decode_logs(raw_logs)) of a parsed eth_getLogs answer, at a fraction of
    the cost: the log reader's path (tests/index/test_rows.py checks they are equal).

    A Declared log goes from its arguments straight to rows, and the ISCC-ID and ISCC-CODE
    strings of the whole batch are base32-encoded at once (one by one they cost ~9 us an event).
    """
    positioned = decoder.decode_positioned(raw_logs)
    # Kept once per (tx hash, log index), in the first one's place, as rows_of does.
    everything = list({(p[2], p[3]): (p, item) for p, item in positioned}.values())
    # Licence ledger events concern no single ISCC-ID position: the writer takes them as they
    # are, in chain order like the rest.
    licences = [item for _p, item in everything if isinstance(item, GrantedEvent | TerminatedEvent)]
    unique = [(p, item) for p, item in everything if len(p) == 6]
    bodies = np.array([p[4] for p, _item in unique], np.uint64).astype(">u8")
    octets = np.empty((len(unique), 10), np.uint8)
    octets[:, :2] = np.frombuffer(code_to_bytes(str(IsccId(0, decoder.realm)))[:2], np.uint8)
    octets[:, 2:] = bodies.view(np.uint8).reshape(-1, 8)
    iscc_ids = _iscc_strings_of(octets)
    # "ISCC:" + b32encode(raw) is the string of every code whose layout its header tells; the
    # few others get theirs from validate_code below.
    codes = iter(iscc_strings([item[2] for _p, item in unique if type(item) is tuple]))
    rows = BatchRows([], [], [], [], {})
    for licence in licences:
        add_licence_event(rows, licence)
    for (p, item), iscc_id in zip(unique, iscc_ids, strict=True):
        position = (p[0], p[1], p[2], p[3], iscc_id)
        if type(item) is not tuple:
            add_event(rows, position, item)
            continue
        declarer, datahash, raw, metahash, gateway, record, committed_at = item
        code = next(codes)
        checked = units_by_layout(raw, datahash)
        if checked is None:
            code, units, reason = validate_code(raw, datahash)
            unit_rows = tuple([unit_row(u.unit_type, u.body) for u in units])
        else:
            unit_rows = tuple(starmap(unit_row, checked[0]))
            reason = checked[1]
        payload = declared_payload(
            p[4], declarer, datahash, raw, metahash, gateway, record, committed_at
        )
        add_declared(
            rows, position, payload, p[4], declarer, code, raw, datahash, metahash, gateway,
            reason, unit_rows, record, committed_at,
        )  # fmt: skip
    return rows


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
