"""Many declarations on a Hardhat devnet, fast: for the indexer's benchmark and load tests.

web3's transaction path manages ~80 transactions per second; this sends `declare` calls from the
node's unlocked accounts as JSON-RPC batches with automine off and mines them many per block,
which is what dense ranges on a busy chain look like to an indexer. Devnet only: it relies on
Hardhat's unlocked accounts and its `evm_setAutomine` / `evm_mine` methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import iscc_lib
import requests
from eth_abi import encode as abi_encode
from eth_utils import keccak

from registry.chain.deployment import Deployment
from registry.errors import ChainUnavailable
from registry.iscc.codec import code_to_bytes

__all__ = ["declare_many"]

_SELECTOR = keccak(text="declare(bytes,bytes32,bytes32,string)")[:4]
TX_PER_BATCH = 500
ACCOUNTS = 10


def _rpc_batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    answers = requests.post(url, json=body, timeout=600).json()
    errors = [a["error"] for a in answers if "error" in a]
    if errors:
        raise ChainUnavailable(f"the devnet refused: {errors[0]}")
    return [a["result"] for a in sorted(answers, key=lambda a: a["id"])]


def _declare_call(deployment: Deployment, sender: str, seed: int) -> tuple[str, list[Any]]:
    # Distinct small "files": a Data+Instance ISCC-CODE of 64 bytes derived from the seed.
    data = seed.to_bytes(8, "big") * 8
    instance = iscc_lib.gen_instance_code_v0(data)
    iscc = iscc_lib.gen_iscc_code_v0([iscc_lib.gen_data_code_v0(data)["iscc"], instance["iscc"]])
    args = abi_encode(
        ["bytes", "bytes32", "bytes32", "string"],
        [code_to_bytes(iscc["iscc"]), bytes.fromhex(instance["datahash"][4:]), bytes(32), ""],
    )
    tx = {
        "from": sender,
        "to": deployment.address,
        "data": "0x" + (_SELECTOR + args).hex(),
        "gas": hex(200_000),
    }
    return "eth_sendTransaction", [tx]


def declare_many(
    url: str,
    deployment: Deployment,
    count: int,
    first_seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Declare `count` distinct contents (seeds first_seed, first_seed + 1, ...), ~500 per block."""
    accounts = _rpc_batch(url, [("eth_accounts", [])])[0][:ACCOUNTS]
    _rpc_batch(url, [("evm_setAutomine", [False])])
    try:
        sent = 0
        while sent < count:
            seeds = range(first_seed + sent, first_seed + min(count, sent + TX_PER_BATCH))
            calls = [_declare_call(deployment, accounts[s % len(accounts)], s) for s in seeds]
            _rpc_batch(url, calls)
            sent += len(calls)
            # Mine until the batch is in blocks (a block holds what its gas limit allows).
            while _rpc_batch(url, [("eth_getBlockByNumber", ["pending", False])])[0][
                "transactions"
            ]:
                _rpc_batch(url, [("evm_mine", [])])
            if on_progress:
                on_progress(sent)
    finally:
        _rpc_batch(url, [("evm_setAutomine", [True])])
