"""Rows of a batch as the log reader process builds them for the writer."""

from __future__ import annotations

import json
import pickle

from index_helpers import CHANGE_ABI, FULL_ABI, ISCC_ID_BODY, content, encode_log, make_log

from registry.index.events import ChangeEvent, DeclaredEvent, EventDecoder
from registry.index.rows import DECLARATION_COLUMNS, EVENT_COLUMNS, rows_of
from registry.index.schema import from_signed64

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20


def _batch() -> list:
    good = content(b"rows" * 50, name="Rows")
    logs = [
        make_log(good["raw"], good["digest"], log_index=0, metahash=b"\x05" * 32),
        make_log(good["raw"], bytes(32), log_index=1),  # datahash contradicts the code
        make_log(b"\x00\x01garbage", bytes(32), log_index=2),  # does not decode
    ]
    values = {"isccId": ISCC_ID_BODY, "owner": ALICE, "metahash": b"\x07" * 32, "gateway": "g"}
    by_name = {e["name"]: e for e in CHANGE_ABI}
    logs.append(encode_log(by_name["Updated"], values, log_index=3))
    logs.append(
        encode_log(by_name["Transferred"], {"isccId": 9, "from": ALICE, "to": BOB}, log_index=4)
    )
    logs.append(encode_log(by_name["Revoked"], {"isccId": 9, "owner": BOB}, log_index=5))
    decoder = EventDecoder(1, abi=FULL_ABI)
    return [decoder.decode(log) for log in logs]


def test_rows_carry_every_kind_of_event_across_a_process_boundary() -> None:
    batch = _batch()
    rows = rows_of(batch)
    assert pickle.loads(pickle.dumps(rows)) == rows
    assert len(rows) == len(batch) == len(rows.events)
    tail = EVENT_COLUMNS[2:]
    for e, row in zip(batch, rows.events, strict=True):
        event = dict(zip(tail, row, strict=True))
        assert (event["iscc_id"], event["name"]) == (e.iscc_id, e.name)
        assert json.loads(event["payload"]) == e.args()
    declared = [e for e in batch if isinstance(e, DeclaredEvent)]
    assert rows.changes == [e for e in batch if isinstance(e, ChangeEvent)]
    columns = DECLARATION_COLUMNS[3:]
    for e, row, units in zip(declared, rows.declarations, rows.units, strict=True):
        declaration = dict(zip(columns, row, strict=True))
        assert from_signed64(declaration["iscc_id_body"]) == e.iscc_id_body
        assert (declaration["valid"], declaration["invalid_reason"]) == (
            e.valid,
            e.invalid_reason,
        )
        assert declaration["owner"] == declaration["declarer"] == e.declarer
        assert [(u[0], u[3]) for u in units] == [(u.unit_type, u.body) for u in e.units]
    assert len(rows.units[0]) > 0 and rows.units[2] == ()
    # The zero metahash means "none": stored as NULL.
    assert [dict(zip(columns, r, strict=True))["metahash"] for r in rows.declarations] == [
        b"\x05" * 32,
        None,
        None,
    ]
    assert rows.blocks == {e.block_number: e.block_hash for e in batch}
    assert rows.forked_block is None


def test_a_repeated_log_is_kept_once_and_two_hashes_for_a_block_are_flagged() -> None:
    batch = _batch()
    assert len(rows_of([*batch, batch[0]])) == len(batch)
    other = content(b"other fork" * 30)
    fork = EventDecoder(1, abi=FULL_ABI).decode(
        make_log(other["raw"], other["digest"], log_index=9, block_hash=b"\x09" * 32)
    )
    assert fork.block_number == batch[0].block_number
    assert rows_of([*batch, fork]).forked_block == fork.block_number
