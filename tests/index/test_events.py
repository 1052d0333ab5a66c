"""Decoding and validating registry logs encoded with eth-abi, without a chain."""

from __future__ import annotations

import json
import random

import iscc_lib
import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address
from index_helpers import CHANGE_ABI, FULL_ABI, ISCC_ID_BODY, content, encode_log, make_log

from registry.chain.contract import artifact
from registry.chain.events import ChangeEvent, DeclaredEvent, _validate_by_iscc_lib, validate_code
from registry.chain.iscc_id import IsccId
from registry.errors import RegistryError
from registry.index.abi import decode_data
from registry.index.events import EventDecoder, MalformedLog, event_topic
from registry.iscc.codec import code_to_bytes
from registry.store.int64 import from_signed64, to_signed64
from registry.store.rows import state_changes

DECLARED_ENTRY = next(e for e in artifact()["abi"] if e.get("name") == "Declared")
ALICE = to_checksum_address("0x" + "a1" * 20)
BOB = to_checksum_address("0x" + "b0" * 20)


def _field(name: str, abi_type: str) -> dict:
    return {"name": name, "type": abi_type, "indexed": False}


def decode(log: dict) -> DeclaredEvent:
    event = EventDecoder(0).decode(log)
    assert isinstance(event, DeclaredEvent)
    return event


def test_topics_match_the_shipped_abi() -> None:
    (abi,) = [i for i in artifact()["abi"] if i["type"] == "event" and i["name"] == "Declared"]
    signature = "Declared(" + ",".join(i["type"] for i in abi["inputs"]) + ")"
    assert event_topic(abi) == keccak(text=signature)
    assert [i["indexed"] for i in abi["inputs"]] == [True, True, True] + [False] * 5
    decoder = EventDecoder(0)
    assert sorted(decoder.names) == [
        "Declared",
        "LicenceGranted",
        "LicenceTerminated",
        "Revoked",
        "Transferred",
        "Updated",
    ]
    assert "0x" + keccak(text=signature).hex() in decoder.topics


def test_the_agreed_interface_is_the_shipped_one() -> None:
    """The unit tests encode logs against CHANGE_ABI: it must be what the contract emits."""
    shipped = {e["name"]: e for e in artifact()["abi"] if e.get("type") == "event"}
    for entry in CHANGE_ABI:
        assert event_topic(shipped[entry["name"]]) == event_topic(entry)
        assert [(i["name"], i["indexed"]) for i in shipped[entry["name"]]["inputs"]] == [
            (i["name"], i["indexed"]) for i in entry["inputs"]
        ]


def test_valid_declaration_decodes_with_units() -> None:
    item = content(b"some text to declare " * 40, name="A Title")
    metahash = bytes(range(32))
    event = decode(make_log(item["raw"], item["digest"], metahash=metahash, log_index=3))
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
    assert decode(raw) == decode(log)


def test_wide_code_compares_128_bits_of_the_datahash() -> None:
    item = content(b"wide content" * 500, wide=True)
    assert iscc_lib.iscc_decode(item["iscc"].removeprefix("ISCC:"))[1] == iscc_lib.ST.WIDE
    assert decode(make_log(item["raw"], item["digest"])).valid
    # Bytes 8-15 are outside a 64-bit Instance-Code but inside the WIDE one.
    tampered = item["digest"][:8] + bytes(8) + item["digest"][16:]
    event = decode(make_log(item["raw"], tampered))
    assert not event.valid
    assert [u.bits for u in event.units] == [128, 128]


def test_undecodable_iscc_code_is_recorded_invalid() -> None:
    raw = bytes.fromhex("5f00") + bytes(range(16))  # passes the contract's header check
    event = decode(make_log(raw, bytes(range(1, 33))))
    assert not event.valid
    assert event.iscc_code is None and event.units == ()
    assert "does not decode" in event.invalid_reason


def test_datahash_contradicting_instance_code_is_invalid() -> None:
    item = content(b"original file" * 100)
    other = content(b"another file" * 100)
    event = decode(make_log(item["raw"], other["digest"]))
    assert not event.valid
    assert "Instance-Code" in event.invalid_reason
    assert event.iscc_code == item["iscc"]  # still decoded and searchable
    assert len(event.units) == 2


def test_trailing_bytes_and_foreign_maintypes_are_invalid() -> None:
    item = content(b"trailing" * 100)
    trailing = decode(make_log(item["raw"] + b"\x00", item["digest"]))
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
        decode(wrong_topic)
    with pytest.raises(MalformedLog):
        decode(bad_data)
    decoded = EventDecoder(0).decode_logs([bad_data, removed, wrong_topic, good])
    assert [e.block_number for e in decoded] == [5]


def test_decode_logs_returns_chain_order() -> None:
    item = content(b"order" * 100)
    logs = [
        make_log(item["raw"], item["digest"], block_number=b, log_index=i)
        for b, i in [(9, 1), (3, 0), (9, 0)]
    ]
    assert [e.key[1] for e in EventDecoder(0).decode_logs(logs)] == [0, 0, 1]
    assert [e.block_number for e in EventDecoder(0).decode_logs(logs)] == [3, 9, 9]


@pytest.mark.parametrize("gateway", ["", 'https://x.y/{iscc_id}?a="b"', "caf\u00e9 \\ \U0001f600"])
def test_payload_is_compact_json_of_the_arguments(gateway: str) -> None:
    item = content(b"compact" * 100)
    event = decode(make_log(item["raw"], item["digest"], gateway=gateway))
    assert event.payload() == json.dumps(event.args(), separators=(",", ":"))
    assert json.loads(event.payload())["gateway"] == gateway


def test_payload_is_json_of_the_arguments() -> None:
    item = content(b"payload" * 100)
    event = decode(make_log(item["raw"], item["digest"]))
    payload = json.loads(event.payload())
    assert payload["isccId"] == ISCC_ID_BODY
    assert payload["isccCode"] == "0x" + item["raw"].hex()
    assert payload["declarer"] == event.declarer


def test_updated_transferred_revoked_decode_by_the_abi() -> None:
    decoder = EventDecoder(0, FULL_ABI)
    updated, transferred, revoked = (
        decoder.decode(encode_log(entry, values, block_number=20, log_index=n))
        for n, (entry, values) in enumerate(
            zip(
                CHANGE_ABI,
                [
                    {
                        "isccId": ISCC_ID_BODY,
                        "owner": ALICE,
                        "metahash": b"\x22" * 32,
                        "gateway": "https://new.example",
                    },
                    {"isccId": ISCC_ID_BODY, "from": ALICE, "to": BOB},
                    {"isccId": ISCC_ID_BODY, "owner": BOB},
                ],
                strict=True,
            )
        )
    )
    assert all(isinstance(e, ChangeEvent) for e in (updated, transferred, revoked))
    assert [e.name for e in (updated, transferred, revoked)] == [
        "Updated",
        "Transferred",
        "Revoked",
    ]
    assert {e.iscc_id for e in (updated, transferred, revoked)} == {str(IsccId(ISCC_ID_BODY, 0))}
    assert updated.args() == {
        "isccId": ISCC_ID_BODY,
        "owner": ALICE,
        "metahash": "0x" + "22" * 32,
        "gateway": "https://new.example",
    }
    assert state_changes("Updated", updated.args()) == {
        "metahash": b"\x22" * 32,
        "gateway": "https://new.example",
    }
    assert state_changes("Transferred", transferred.args()) == {"owner": BOB}
    assert state_changes("Revoked", revoked.args()) == {"revoked": True}
    assert json.loads(transferred.payload()) == {"isccId": ISCC_ID_BODY, "from": ALICE, "to": BOB}
    assert (revoked.block_number, revoked.log_index) == (20, 2)
    # The four registry events and the licence ledger's two (granted, terminated).
    assert len(decoder.topics) == 6


def test_zero_metahash_in_an_update_clears_it() -> None:
    log = encode_log(
        CHANGE_ABI[0], {"isccId": 5, "owner": ALICE, "metahash": bytes(32), "gateway": ""}
    )
    event = EventDecoder(0, FULL_ABI).decode(log)
    assert state_changes(event.name, event.args()) == {"metahash": None, "gateway": ""}


def test_extra_trailing_fields_are_tolerated_and_kept_in_the_history() -> None:
    """The contract may append non-indexed fields (a sequence handle); decoding goes by name."""
    item = content(b"extra field" * 60)
    declared = {**DECLARED_ENTRY, "inputs": [*DECLARED_ENTRY["inputs"], _field("seq", "uint256")]}
    revoked = {**CHANGE_ABI[2], "inputs": [*CHANGE_ABI[2]["inputs"], _field("seq", "uint256")]}
    decoder = EventDecoder(0, [declared, revoked])
    values = {
        "isccId": ISCC_ID_BODY,
        "declarer": ALICE,
        "datahash": item["digest"],
        "isccCode": item["raw"],
        "metahash": bytes(32),
        "gateway": "",
        "record": 3,
        "committedAt": 0,
        "seq": 41,
    }
    event = decoder.decode(encode_log(declared, values))
    assert isinstance(event, DeclaredEvent) and event.valid
    assert event.iscc_code == item["iscc"]
    assert json.loads(event.payload())["seq"] == 41
    assert (event.record, event.committed_at) == (3, 0)
    gone = decoder.decode(encode_log(revoked, {"isccId": 9, "owner": BOB, "seq": 42}))
    assert gone.args()["seq"] == 42 and state_changes(gone.name, gone.args()) == {"revoked": True}


def test_unknown_events_are_not_followed_and_skipped() -> None:
    nonce = next(e for e in artifact()["abi"] if e.get("name") == "NoncesInvalidated")
    failure = {
        "type": "event",
        "anonymous": False,
        "name": "DeclarationFailed",
        "inputs": [_field("index", "uint256"), _field("reason", "bytes")],
    }
    decoder = EventDecoder(0, [DECLARED_ENTRY, nonce, failure])
    # The licence ledger's GrantFailed and NoncesInvalidated are not followed either.
    assert decoder.names == ["Declared", "LicenceGranted", "LicenceTerminated"]
    log = encode_log(failure, {"index": 3, "reason": b"\x01"})
    with pytest.raises(MalformedLog, match="not a followed event"):
        decoder.decode(log)
    assert decoder.decode_logs([log]) == []


def test_an_abi_without_the_fields_the_indexer_reads_is_refused() -> None:
    broken = {**CHANGE_ABI[1], "inputs": CHANGE_ABI[1]["inputs"][:2]}
    with pytest.raises(RegistryError, match="Transferred event lacks"):
        EventDecoder(0, [DECLARED_ENTRY, broken])
    with pytest.raises(RegistryError, match="no Declared event"):
        EventDecoder(0, CHANGE_ABI)


def test_out_of_range_indexed_values_are_malformed() -> None:
    item = content(b"range" * 60)
    log = make_log(item["raw"], item["digest"])
    too_big = {**log, "topics": [log["topics"][0], b"\x01" * 32, *log["topics"][2:]]}
    dirty_address = {**log, "topics": [*log["topics"][:2], b"\x01" * 32, log["topics"][3]]}
    for bad in (too_big, dirty_address):
        with pytest.raises(MalformedLog, match="out of range"):
            EventDecoder(0).decode(bad)


def test_fast_data_decoding_equals_eth_abi() -> None:
    rng = random.Random(5)
    types = ("bytes", "bytes32", "string", "uint64", "address", "bool")
    for _ in range(300):
        values = [
            rng.randbytes(rng.randrange(0, 200)),
            rng.randbytes(32),
            "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(0, 40))),
            rng.randrange(1 << 64),
            to_checksum_address(rng.randbytes(20)),
            rng.random() < 0.5,
        ]
        data = abi_encode(types, values)
        reference = list(abi_decode(types, data))
        reference[4] = to_checksum_address(reference[4])  # we keep addresses checksummed
        assert decode_data(types, data) == reference == values
        cut = data[: rng.randrange(0, len(data))]
        with pytest.raises(DecodingError):
            abi_decode(types, cut)
        with pytest.raises(MalformedLog):
            decode_data(types, cut)


def test_header_cached_validation_equals_iscc_lib_decoding() -> None:
    rng = random.Random(11)
    codes = [content(rng.randbytes(300))["raw"] for _ in range(5)]
    codes += [content(b"titled %d" % i * 40, name=f"Title {i}")["raw"] for i in range(5)]
    codes += [content(rng.randbytes(500), wide=True)["raw"] for _ in range(3)]
    # Same headers with other bodies, other lengths, and random headers.
    codes += [raw[:2] + rng.randbytes(len(raw) - 2) for raw in codes]
    codes += [raw + b"\x00" for raw in codes[:5]] + [raw[:-1] for raw in codes[:5]]
    codes += [rng.randbytes(2) + rng.randbytes(rng.choice([16, 24, 32, 40])) for _ in range(300)]
    for raw in codes:
        for datahash in (raw[-8:] + rng.randbytes(24), rng.randbytes(32)):
            assert validate_code(raw, datahash) == _validate_by_iscc_lib(raw, datahash)


def test_gateway_that_is_not_utf8_keeps_the_declaration() -> None:
    item = content(b"utf8" * 60)
    log = make_log(item["raw"], item["digest"], gateway="x")
    # Patch the one-byte string "x" in the ABI data into an invalid UTF-8 byte.
    log["data"] = log["data"][:-32] + b"\xff" + log["data"][-31:]
    event = decode(log)
    assert event.valid and event.gateway == "\ufffd"


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
