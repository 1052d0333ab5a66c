"""Index test helpers: ISCC-CODEs of test bytes, ABI-encoded registry logs, declaring on chain."""

from __future__ import annotations

from typing import Any

import iscc_lib
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount

from registry.chain.contract import Registry, artifact
from registry.chain.declaration import Declaration, Domain, sign
from registry.index.events import event_topic
from registry.iscc.codec import code_to_bytes, multihash_to_digest

ISCC_ID_BODY = (1_700_000_000_000_000 << 12) | 7


def content(data: bytes, name: str | None = None, wide: bool = False) -> dict[str, Any]:
    """ISCC-CODE (Data + Instance, plus Meta and Text units when `name` is given) of `data`."""
    bits = 128 if wide else 64
    data_code = iscc_lib.gen_data_code_v0(data, bits=bits)["iscc"]
    instance = iscc_lib.gen_instance_code_v0(data, bits=bits)
    codes = [data_code, instance["iscc"]]
    if name is not None:
        codes = [
            iscc_lib.gen_meta_code_v0(name)["iscc"],
            iscc_lib.gen_text_code_v0(data.decode())["iscc"],
            *codes,
        ]
    iscc = iscc_lib.gen_iscc_code_v0(codes, wide=wide)["iscc"]
    return {
        "iscc": iscc,
        "raw": code_to_bytes(iscc),
        "datahash": instance["datahash"],
        "digest": multihash_to_digest(instance["datahash"]),
    }


def _event_entry(name: str, *inputs: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "type": "event",
        "anonymous": False,
        "name": name,
        "inputs": [{"name": n, "type": t, "indexed": i} for n, t, i in inputs],
    }


# The interface agreed with the contract for the events after Declared (the contract in this
# checkout emits only Declared): fast unit tests encode logs against it.
CHANGE_ABI = [
    _event_entry(
        "Updated",
        ("isccId", "uint64", True),
        ("owner", "address", True),
        ("metahash", "bytes32", False),
        ("gateway", "string", False),
    ),
    _event_entry(
        "Transferred",
        ("isccId", "uint64", True),
        ("from", "address", True),
        ("to", "address", True),
    ),
    _event_entry("Revoked", ("isccId", "uint64", True), ("owner", "address", True)),
]
DECLARED_ABI = next(e for e in artifact()["abi"] if e.get("name") == "Declared")
FULL_ABI = [DECLARED_ABI, *CHANGE_ABI]


def _topic(abi_type: str, value: Any) -> bytes:
    if abi_type == "address":
        return bytes.fromhex(value.removeprefix("0x")).rjust(32, b"\0")
    return abi_encode([abi_type], [value])


def encode_log(
    entry: dict[str, Any],
    values: dict[str, Any],
    *,
    block_number: int = 10,
    block_hash: bytes | None = None,
    tx_hash: bytes | None = None,
    log_index: int = 0,
) -> dict[str, Any]:
    """A log of the ABI event `entry` as web3's get_logs returns it, encoded with eth-abi."""
    indexed = [i for i in entry["inputs"] if i["indexed"]]
    data = [i for i in entry["inputs"] if not i["indexed"]]
    return {
        "address": "0x" + "00" * 20,
        "topics": [
            event_topic(entry),
            *(_topic(i["type"], values[i["name"]]) for i in indexed),
        ],
        "data": abi_encode([i["type"] for i in data], [values[i["name"]] for i in data]),
        "blockNumber": block_number,
        "blockHash": block_hash or block_number.to_bytes(32, "big"),
        "transactionHash": tx_hash or (block_number * 1000 + log_index).to_bytes(32, "big"),
        "logIndex": log_index,
        "removed": False,
    }


def make_log(
    iscc_code_raw: bytes,
    datahash: bytes,
    *,
    iscc_id_body: int = ISCC_ID_BODY,
    declarer: str = "0x" + "ab" * 20,
    metahash: bytes = bytes(32),
    gateway: str = "https://example.com/{iscc_id}",
    **position: Any,
) -> dict[str, Any]:
    """A `Declared` log as web3's get_logs returns it (bytes and ints), built from the ABI."""
    values = {
        "isccId": iscc_id_body,
        "declarer": declarer,
        "datahash": datahash,
        "isccCode": iscc_code_raw,
        "metahash": metahash,
        "gateway": gateway,
    }
    return encode_log(DECLARED_ABI, values, **position)


def json_rpc_form(log: dict[str, Any]) -> dict[str, Any]:
    """A web3-style log (bytes, ints) as a node's JSON answer carries it (0x hex)."""

    def hexed(value: Any) -> Any:
        if isinstance(value, bytes):
            return "0x" + value.hex()
        if isinstance(value, int) and not isinstance(value, bool):
            return hex(value)
        if isinstance(value, list):
            return [hexed(v) for v in value]
        return value

    return {key: hexed(value) for key, value in log.items()}


def declare_direct(
    registry: Registry,
    sender: LocalAccount,
    item: dict[str, Any],
    metahash: bytes = bytes(32),
    gateway: str = "",
    datahash: bytes | None = None,
) -> dict:
    """`declare` from the sender itself; `datahash` overrides the content's (for invalid ones)."""
    call = registry.contract.functions.declare(
        item["raw"], datahash or item["digest"], metahash, gateway
    )
    return registry.transact(call, sender)


def declare_signed(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    item: dict[str, Any],
    nonce: int,
    gateway: str = "",
) -> dict:
    """`declareFor`: the declarer signs offline, the payer submits."""
    dep = registry.deployment
    # The chain's clock, not ours: tests that mine many blocks run it hours ahead.
    now = registry.w3.eth.get_block("latest")["timestamp"]
    declaration = Declaration.create(
        item["iscc"], item["datahash"], None, gateway, nonce=nonce, deadline=now + 3600
    )
    signed = sign(declaration, Domain(dep.chain_id, dep.address), declarer)
    call = registry.contract.functions.declareFor(
        declaration.as_tuple(), declarer.address, signed.signature
    )
    return registry.transact(call, payer)
