"""Rows of a batch as the log reader process builds them for the writer."""

from __future__ import annotations

import json
import logging
import pickle
import random
import sqlite3
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import iscc_lib
import msgspec
import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DataObject, DrawFn
from index_helpers import (
    CHANGE_ABI,
    DECLARED_ABI,
    FULL_ABI,
    ISCC_ID_BODY,
    content,
    encode_log,
    json_rpc_form,
    make_log,
)

from registry.chain.events import EVENT_FIELDS, ChangeEvent, DeclaredEvent
from registry.index.events import EventDecoder, RawLog
from registry.index.rows import iscc_strings, rows_of_logs
from registry.iscc.codec import b32encode, code_to_bytes
from registry.store.int64 import from_signed64
from registry.store.rows import DECLARATION_COLUMNS, EVENT_COLUMNS, rows_of

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20


def _field(name: str, abi_type: str) -> dict[str, Any]:
    return {"name": name, "type": abi_type, "indexed": False}


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


def test_rows_hold_only_values_sqlite_binds_without_adapting() -> None:
    """Any other type (bytes, bool) goes through sqlite3's adapter lookup on every insert."""
    rows = rows_of(_batch())
    tuples = [*rows.events, *rows.declarations, *(u for each in rows.units for u in each)]
    kinds = {type(value) for row in tuples for value in row}
    assert kinds == {int, str, bytearray, type(None)}
    # Stored and read back, they are the bytes and integers the columns always held.
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE t (hash BLOB, valid BOOLEAN)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(r[1], r[-2]) for r in rows.declarations])
        stored = conn.execute("SELECT hash, valid FROM t").fetchall()
    assert stored == [(e.block_hash, int(e.valid)) for e in _batch()[:3]]


def test_a_repeated_log_is_kept_once_and_two_hashes_for_a_block_are_flagged() -> None:
    batch = _batch()
    assert len(rows_of([*batch, batch[0]])) == len(batch)
    other = content(b"other fork" * 30)
    fork = EventDecoder(1, abi=FULL_ABI).decode(
        make_log(other["raw"], other["digest"], log_index=9, block_hash=b"\x09" * 32)
    )
    assert fork.block_number == batch[0].block_number
    assert rows_of([*batch, fork]).forked_block == fork.block_number


# --- the log reader's path (rows_of_logs) against decode_logs + rows_of --------------------

_DECLARED_WITH_SEQ = {**DECLARED_ABI, "inputs": [*DECLARED_ABI["inputs"], _field("seq", "uint256")]}
_CHANGES = {e["name"]: e for e in CHANGE_ABI}
_SHIPPED = EventDecoder(0, FULL_ABI)
_DECODERS = [_SHIPPED, EventDecoder(1, [_DECLARED_WITH_SEQ, *CHANGE_ABI])]
_WITH_UNITS = [content(b"plain %d" % i * 60) for i in range(2)] + [
    content(b"titled text", name="Title"),
    content(b"wide" * 200, wide=True),
]
_DATA_UNIT = code_to_bytes(iscc_lib.gen_data_code_v0(b"x" * 100)["iscc"])
# (raw ISCC-CODE, the datahash it declares): valid codes, and what the contract lets through.
_CODES = [(item["raw"], item["digest"]) for item in _WITH_UNITS] + [
    (b"\x00\x01garbage", bytes(32)),  # does not decode
    (_WITH_UNITS[0]["raw"] + b"\x00", _WITH_UNITS[0]["digest"]),  # trailing byte
    (_DATA_UNIT, bytes(32)),  # a unit, not an ISCC-CODE
    (bytes.fromhex("5f00") + bytes(range(16)), bytes(32)),
    (b"", bytes(32)),
]
_PARSE_LOGS = msgspec.json.Decoder(list[RawLog]).decode


def _abi_data(*tail: bytes, heads: list[bytes]) -> bytes:
    """ABI data from its head words and tails, as eth-abi lays them out or otherwise."""
    return b"".join(heads) + b"".join(tail)


def _dynamic(value: bytes) -> bytes:
    return len(value).to_bytes(32, "big") + value + bytes(-len(value) % 32)


def _mutate(log: dict[str, Any], how: str, data: DataObject) -> None:
    """Damage a log in JSON-RPC form the way a faulty node or an odd encoder could."""
    topics = log["topics"]
    if how == "removed":
        log["removed"] = True
    elif how == "0X prefix":
        log["data"] = "0X" + log["data"][2:]
    elif how == "upper-case hex":
        log["transactionHash"] = "0x" + log["transactionHash"][2:].upper()
    elif how.startswith("no prefix: "):
        # Without "0x", or with "00" in its place: other bytes, if any.
        instead = data.draw(st.sampled_from(["", "00"]))
        where = how.removeprefix("no prefix: ")
        if where.startswith("topic"):
            if int(where[-1]) < len(topics):
                topics[int(where[-1])] = instead + topics[int(where[-1])][2:]
        else:
            log[where] = instead + log[where][2:]
    elif how == "spaced hex":
        topics[-1] = "0x" + " ".join(textwrap.wrap(topics[-1][2:], 2))
    elif how == "other topic0":
        topics[0] = "0x" + keccak(text="Other()").hex()
    elif how == "too few topics":
        topics.pop()
    elif how == "short topic":
        topics[1] = "0x" + data.draw(st.binary(max_size=8)).hex()
    elif how == "wide isccId":
        topics[1] = "0x" + data.draw(st.sampled_from([2**64, 2**256 - 1])).to_bytes(32).hex()
    elif how == "dirty address" and len(topics) > 2:
        topics[2] = "0x" + "01" * 32
    elif how == "cut data":
        log["data"] = log["data"][: data.draw(st.integers(0, len(log["data"])))]
    elif how == "trailing data":
        log["data"] += "00" * 32
    elif how == "bad hex":
        log["data"] = log["data"][:-1] + "g"
    elif how == "block number with underscore":
        log["blockNumber"] = "0x_" + log["blockNumber"][2:]
    elif how == "other block hash":
        log["blockHash"] = "0x" + "09" * 32


_MUTATIONS = [
    "removed", "0X prefix", "upper-case hex", "spaced hex", "other topic0",
    "no prefix: data", "no prefix: transactionHash", "no prefix: blockHash",
    "no prefix: topic1", "no prefix: topic2", "no prefix: topic3",
    "too few topics", "short topic", "wide isccId", "dirty address", "cut data",
    "trailing data", "bad hex", "block number with underscore", "other block hash",
]  # fmt: skip


@st.composite
def _json_logs(
    draw: DrawFn, declared_entry: dict[str, Any], damage: str | None = None
) -> list[dict[str, Any]]:
    """An eth_getLogs result: Declared logs (valid and invalid codes, any gateway, tails in
    any order, non-UTF-8 strings), change events, duplicates, logs out of order, damaged logs."""
    logs = []
    for _ in range(draw(st.integers(0, 8))):
        position = {
            "block_number": draw(st.integers(1, 3)),
            "log_index": draw(st.integers(0, 4)),
            "tx_hash": draw(st.sampled_from([None, b"\x07" * 32])),
        }
        kind = draw(st.sampled_from(["Declared"] * 4 + list(_CHANGES)))
        body = draw(st.sampled_from([ISCC_ID_BODY, 0, 2**64 - 1]))
        declarer = draw(st.sampled_from([ALICE, BOB]))
        if kind == "Declared":
            raw, digest = draw(st.sampled_from(_CODES))
            other_digest = draw(st.binary(min_size=32, max_size=32))
            values = {
                "isccId": body,
                "declarer": declarer,
                "datahash": digest if draw(st.booleans()) else other_digest,
                "isccCode": raw,
                "metahash": draw(st.sampled_from([bytes(32), b"\x05" * 32])),
                "gateway": draw(st.text(max_size=12)),
                "seq": draw(st.integers(0, 2**256 - 1)),
            }
            log = encode_log(declared_entry, values, **position)
            gateway = draw(st.one_of(st.none(), st.binary(max_size=40)))
            if gateway is not None:
                # Not UTF-8, or its tail before the code's: both decode as they are.
                heads = [(96).to_bytes(32, "big"), values["metahash"]]
                code, tail = _dynamic(raw), _dynamic(gateway)
                if draw(st.booleans()):
                    heads[0] = (96 + len(tail)).to_bytes(32, "big")
                    code, tail = tail, code
                heads.append((96 + len(code)).to_bytes(32, "big"))
                log["data"] = _abi_data(code, tail, heads=heads)
        else:
            values = {"isccId": body, "owner": declarer, "from": ALICE, "to": BOB}
            values |= {"metahash": b"\x07" * 32, "gateway": draw(st.text(max_size=5))}
            log = encode_log(_CHANGES[kind], values, **position)
        log = json_rpc_form(log)
        if damage is not None:
            _mutate(log, damage, draw(st.data()))
        elif draw(st.integers(0, 3)) == 0:
            _mutate(log, draw(st.sampled_from(_MUTATIONS)), draw(st.data()))
        logs.append(log)
        if draw(st.integers(0, 5)) == 0:
            logs.append(dict(log))  # the same log twice
    return draw(st.permutations(logs))


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _warnings() -> Iterator[list[str]]:
    handler = _Warnings()
    logger = logging.getLogger("registry.index.events")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("decoder", _DECODERS, ids=["shipped ABI", "extra field"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rows_of_logs_equals_rows_of_decode_logs(decoder: EventDecoder, data: DataObject) -> None:
    entry = DECLARED_ABI if decoder is _SHIPPED else _DECLARED_WITH_SEQ
    answer = json.dumps(data.draw(_json_logs(entry))).encode()
    with _warnings() as reference_warnings:
        reference = rows_of(decoder.decode_logs(json.loads(answer)))
    with _warnings() as warnings:
        rows = rows_of_logs(decoder, _PARSE_LOGS(answer))
    assert rows == reference
    assert warnings == reference_warnings
    assert pickle.loads(pickle.dumps(rows)) == reference


@pytest.mark.parametrize("damage", _MUTATIONS)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_each_damage_decodes_as_decode_logs_does(damage: str, data: DataObject) -> None:
    """Every damage on every log, so each check of the short cut meets its case."""
    answer = json.dumps(data.draw(_json_logs(DECLARED_ABI, damage))).encode()
    reference = rows_of(_SHIPPED.decode_logs(json.loads(answer)))
    assert rows_of_logs(_SHIPPED, _PARSE_LOGS(answer)) == reference


def test_logs_as_nodes_write_them_take_the_short_cut() -> None:
    """The comparison above must not pass because every log takes the general way."""
    item = content(b"short cut" * 30)
    logs = [json_rpc_form(make_log(item["raw"], item["digest"], log_index=i)) for i in range(3)]
    parsed = _PARSE_LOGS(json.dumps(logs).encode())
    for raw in parsed:
        short = _SHIPPED._declared_as_nodes_write_it(raw, {})
        assert short is not None
        _spec, position, args = _SHIPPED._fields(
            raw.topics, raw.data, raw.block_number, raw.block_hash, raw.transaction_hash,
            raw.log_index,
        )  # fmt: skip
        assert short == (position, tuple(args[k] for k in EVENT_FIELDS["Declared"][1:]))
    extra = EventDecoder(0, [_DECLARED_WITH_SEQ])
    assert extra._declared_as_nodes_write_it(parsed[0], {}) is None


def test_batched_base32_equals_b32encode() -> None:
    rng = random.Random(3)
    raws = [rng.randbytes(rng.randrange(0, 41)) for _ in range(300)]
    assert iscc_strings(raws) == ["ISCC:" + b32encode(raw) for raw in raws]
    same_length = [rng.randbytes(18) for _ in range(50)]
    assert iscc_strings(same_length) == ["ISCC:" + b32encode(raw) for raw in same_length]
    assert iscc_strings([]) == []
