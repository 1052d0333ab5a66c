"""Decoding and validating `Declared` logs crafted from bytes, without a chain."""

from __future__ import annotations

import json

import iscc_lib
import pytest
from eth_utils import keccak, to_checksum_address
from index_helpers import ISCC_ID_BODY, content, make_log

from registry.chain.contract import artifact
from registry.chain.iscc_id import IsccId
from registry.index.events import (
    DECLARED_TOPIC,
    MalformedLog,
    decode_declared,
    decode_logs,
    validate_code,
)
from registry.index.schema import from_signed64, to_signed64
from registry.iscc.codec import code_to_bytes


def test_topic_matches_the_shipped_abi() -> None:
    (abi,) = [i for i in artifact()["abi"] if i["type"] == "event" and i["name"] == "Declared"]
    signature = "Declared(" + ",".join(i["type"] for i in abi["inputs"]) + ")"
    assert keccak(text=signature) == DECLARED_TOPIC
    assert [i["indexed"] for i in abi["inputs"]] == [True, True, True, False, False, False]


def test_valid_declaration_decodes_with_units() -> None:
    item = content(b"some text to declare " * 40, name="A Title")
    metahash = bytes(range(32))
    event = decode_declared(
        make_log(item["raw"], item["digest"], metahash=metahash, log_index=3), realm=0
    )
    assert event.valid and event.invalid_reason is None
    assert event.iscc_code == item["iscc"]
    assert event.iscc_id == str(IsccId(ISCC_ID_BODY, 0))
    assert event.iscc_id.startswith("ISCC:MAI")
    assert event.declarer == to_checksum_address("0x" + "ab" * 20)
    assert (event.datahash, event.metahash) == (item["digest"], metahash)
    assert event.gateway == "https://example.com/{iscc_id}"
    assert (event.block_number, event.log_index) == (10, 3)
    assert [u.unit_type for u in event.units] == ["META", "CONTENT-TEXT", "DATA", "INSTANCE"]
    for unit, code in zip(event.units, iscc_lib.iscc_decompose(item["iscc"]), strict=True):
        body = iscc_lib.iscc_decode(code)[4]
        assert unit.body == body and unit.bits == 64
        assert from_signed64(unit.value) == int.from_bytes(body, "big")


def test_raw_json_rpc_log_decodes_like_web3_log() -> None:
    item = content(b"json rpc" * 100)
    log = make_log(item["raw"], item["digest"], block_number=77, log_index=2)
    raw = {
        **log,
        "topics": ["0x" + t.hex() for t in log["topics"]],
        "data": "0x" + log["data"].hex(),
        "blockNumber": hex(77),
        "blockHash": "0x" + log["blockHash"].hex(),
        "transactionHash": "0x" + log["transactionHash"].hex(),
        "logIndex": "0x2",
    }
    assert decode_declared(raw, 0) == decode_declared(log, 0)


def test_wide_code_compares_128_bits_of_the_datahash() -> None:
    item = content(b"wide content" * 500, wide=True)
    assert iscc_lib.iscc_decode(item["iscc"].removeprefix("ISCC:"))[1] == iscc_lib.ST.WIDE
    assert decode_declared(make_log(item["raw"], item["digest"]), 0).valid
    # Bytes 8-15 are outside a 64-bit Instance-Code but inside the WIDE one.
    tampered = item["digest"][:8] + bytes(8) + item["digest"][16:]
    event = decode_declared(make_log(item["raw"], tampered), 0)
    assert not event.valid
    assert [u.bits for u in event.units] == [128, 128]


def test_undecodable_iscc_code_is_recorded_invalid() -> None:
    raw = bytes.fromhex("5f00") + bytes(range(16))  # passes the contract's header check
    event = decode_declared(make_log(raw, bytes(range(1, 33))), 0)
    assert not event.valid
    assert event.iscc_code is None and event.units == ()
    assert "does not decode" in event.invalid_reason


def test_datahash_contradicting_instance_code_is_invalid() -> None:
    item = content(b"original file" * 100)
    other = content(b"another file" * 100)
    event = decode_declared(make_log(item["raw"], other["digest"]), 0)
    assert not event.valid
    assert "Instance-Code" in event.invalid_reason
    assert event.iscc_code == item["iscc"]  # still decoded and searchable
    assert len(event.units) == 2


def test_trailing_bytes_and_foreign_maintypes_are_invalid() -> None:
    item = content(b"trailing" * 100)
    trailing = decode_declared(make_log(item["raw"] + b"\x00", item["digest"]), 0)
    assert not trailing.valid and "units cover 16" in trailing.invalid_reason
    data_unit = code_to_bytes(iscc_lib.gen_data_code_v0(b"x" * 100)["iscc"])
    code, units, reason = validate_code(data_unit, item["digest"])
    assert code is not None and units == ()
    assert reason == "MainType is DATA, not ISCC"


def test_malformed_logs_are_skipped_not_raised() -> None:
    item = content(b"good" * 100)
    good = make_log(item["raw"], item["digest"], block_number=5)
    wrong_topic = {**make_log(item["raw"], item["digest"]), "topics": [keccak(text="Other()")]}
    bad_data = {**make_log(item["raw"], item["digest"], log_index=1), "data": b"\x01\x02"}
    removed = {**make_log(item["raw"], item["digest"], log_index=2), "removed": True}
    with pytest.raises(MalformedLog):
        decode_declared(wrong_topic, 0)
    with pytest.raises(MalformedLog):
        decode_declared(bad_data, 0)
    decoded = decode_logs([bad_data, removed, wrong_topic, good], 0)
    assert [e.block_number for e in decoded] == [5]


def test_decode_logs_returns_chain_order() -> None:
    item = content(b"order" * 100)
    logs = [
        make_log(item["raw"], item["digest"], block_number=b, log_index=i)
        for b, i in [(9, 1), (3, 0), (9, 0)]
    ]
    assert [e.key[1] for e in decode_logs(logs, 0)] == [0, 0, 1]
    assert [e.block_number for e in decode_logs(logs, 0)] == [3, 9, 9]


def test_payload_is_json_of_the_arguments() -> None:
    item = content(b"payload" * 100)
    event = decode_declared(make_log(item["raw"], item["digest"]), 0)
    payload = json.loads(event.payload())
    assert payload["isccId"] == ISCC_ID_BODY
    assert payload["isccCode"] == "0x" + item["raw"].hex()
    assert payload["declarer"] == event.declarer


@pytest.mark.parametrize(
    ("unsigned", "signed"),
    [(0, 0), (1, 1), (2**63 - 1, 2**63 - 1), (2**63, -(2**63)), (2**64 - 1, -1)],
)
def test_signed64_round_trip(unsigned: int, signed: int) -> None:
    assert to_signed64(unsigned) == signed
    assert from_signed64(signed) == unsigned


def test_signed64_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        to_signed64(2**64)
    with pytest.raises(ValueError):
        to_signed64(-1)
    with pytest.raises(ValueError):
        from_signed64(2**63)
