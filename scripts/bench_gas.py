"""Gas of IsccRegistry next to the Ethereum Attestation Service, on one fresh Hardhat devnet.

Usage: .venv/bin/python scripts/bench_gas.py [--n 16] [--rounds 4] [--quick]

Both contracts get the same payload: a 4-unit ISCC-CODE (Meta, Text, Data, Instance: 34 bytes),
datahash, metahash and a 42-character gateway; EAS through a schema of the same four fields,
deployed by this script from the npm package @ethereum-attestation-service/eas-contracts.
Figures are receipts' `gasUsed` per declaration (batches: the transaction's gas divided by its
size). A declarer's nonces take one storage slot per four, so "mean" runs each declarer through
consecutive nonces (the steady state of a client that picks the lowest free nonce) and "worst" is
the declaration that opens a fresh slot (a declarer's first, fifth, ...). Relayed owner actions
spend a nonce the same way. `--quick` runs every scenario once at tiny sizes (batches of 2 and
3): it checks that the script works, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import iscc_lib
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from rich.console import Console
from rich.table import Table
from web3 import Web3

from registry.chain.actions import act_direct, act_relayed, make_action, sign_for
from registry.chain.contract import Registry
from registry.chain.declaration import Declaration, Domain, SignedDeclaration, sign
from registry.chain.devnet import Devnet, dev_account, free_port
from registry.chain.relayer import entry
from registry.chain.submit import declare_direct, domain_of, submit_signed
from registry.config import PROJECT_ROOT
from registry.iscc.codec import code_to_bytes, multihash_to_digest

GATEWAY = "https://gateway.example.org/iscc/{iscc_id}"  # 42 characters
EAS_ARTIFACTS = (
    PROJECT_ROOT / "node_modules/@ethereum-attestation-service/eas-contracts/artifacts/contracts"
)
EAS_SCHEMA = "bytes isccCode,bytes32 datahash,bytes32 metahash,string gateway"
EAS_ATTEST_TYPES = {
    "Attest": [
        {"name": "attester", "type": "address"},
        {"name": "schema", "type": "bytes32"},
        {"name": "recipient", "type": "address"},
        {"name": "expirationTime", "type": "uint64"},
        {"name": "revocable", "type": "bool"},
        {"name": "refUID", "type": "bytes32"},
        {"name": "data", "type": "bytes"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ]
}
ZERO32 = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20


def payload(i: int) -> dict[str, str]:
    data = f"benchmark content {i} ".encode() * 200
    instance = iscc_lib.gen_instance_code_v0(data)
    meta = iscc_lib.gen_meta_code_v0(f"Work {i}")
    units = [
        meta["iscc"],
        iscc_lib.gen_text_code_v0(data.decode())["iscc"],
        iscc_lib.gen_data_code_v0(data)["iscc"],
        instance["iscc"],
    ]
    return {
        "iscc": iscc_lib.gen_iscc_code_v0(units)["iscc"],
        "datahash": instance["datahash"],
        "metahash": meta["metahash"],
    }


class Bench:
    """Both contracts on one devnet, a relayer, and a counter for fresh payloads and keys."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.w3: Web3 = registry.w3
        self.relayer = dev_account(1)
        self.counter = 0
        self.deadline = int(time.time()) + 86_400

    def fresh(self) -> dict[str, str]:
        self.counter += 1
        return payload(self.counter)

    def funded(self) -> LocalAccount:
        account = Account.create()
        self.w3.provider.make_request("hardhat_setBalance", [account.address, hex(10**20)])
        return account

    def signed(self, declarer: LocalAccount, nonce: int) -> SignedDeclaration:
        p = self.fresh()
        d = Declaration.create(
            p["iscc"], p["datahash"], p["metahash"], GATEWAY, nonce=nonce, deadline=self.deadline
        )
        return sign(d, domain_of(self.registry), declarer)

    # --- IsccRegistry ---------------------------------------------------------------------------

    def direct(self, n: int) -> list[int]:
        sender = self.funded()
        gas = []
        for _ in range(n):
            p = self.fresh()
            r = declare_direct(
                self.registry, sender, p["iscc"], p["datahash"], p["metahash"], GATEWAY
            )
            gas.append(r.gas_used)
        return gas

    def relayed(self, declarers: int, rounds: int) -> list[int]:
        gas = []
        for _ in range(declarers):
            who = Account.create()
            gas += [
                submit_signed(self.registry, self.signed(who, k), self.relayer).gas_used
                for k in range(rounds)
            ]
        return gas

    def batch(self, size: int, rounds: int) -> list[float]:
        """Per-declaration gas of `rounds` batches of `size` strangers, round k using nonce k."""
        people = [Account.create() for _ in range(size)]
        per_item = []
        for k in range(rounds):
            batch = [entry(self.signed(who, k)) for who in people]
            receipt = self.registry.transact(
                self.registry.contract.functions.declareBatch(batch), self.relayer
            )
            per_item.append(receipt["gasUsed"] / size)
        return per_item

    def owner_actions(self, n: int) -> dict[str, list[int]]:
        """Each action on its own fresh declaration, directly and relayed."""
        gas: dict[str, list[int]] = {}
        for relayed in (False, True):
            owner = self.funded()
            records = [
                submit_signed(self.registry, self.signed(owner, k), self.relayer)
                for k in range(3 * n)
            ]
            heir = Account.create().address
            for i, kind in enumerate(("update", "transfer", "revoke")):
                label = f"{kind} ({'relayed' if relayed else 'direct'})"
                gas[label] = []
                for r in records[i * n : (i + 1) * n]:
                    action = make_action(
                        kind, r.iscc_id, metahash=b"\x01" * 32, gateway=GATEWAY, to=heir
                    )
                    if relayed:
                        signed = sign_for(self.registry, owner, action)
                        result = act_relayed(self.registry, signed, self.relayer, r.record)
                    else:
                        result = act_direct(self.registry, owner, action, r.record)
                    gas[label].append(result.gas_used)
        return gas


class Eas:
    """EAS 1.x deployed from the npm package's artifacts, with the declaration's schema."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        w3, deployer = bench.w3, dev_account(0)
        schemas = self._deploy("SchemaRegistry", [])
        self.eas = self._deploy("EAS", [schemas.address])
        self._send(schemas.functions.register(EAS_SCHEMA, ZERO_ADDRESS, True), deployer)
        self.schema = keccak(EAS_SCHEMA.encode() + bytes.fromhex(ZERO_ADDRESS[2:]) + b"\x01")
        self.domain = Domain(w3.eth.chain_id, self.eas.address)

    def _deploy(self, name: str, args: list):
        art = json.loads((EAS_ARTIFACTS / f"{name}.sol" / f"{name}.json").read_text())
        factory = self.bench.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self._send(factory.constructor(*args), dev_account(0))
        return self.bench.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def _send(self, call, sender: LocalAccount) -> dict:
        return self.bench.registry.transact(call, sender)

    def request_data(self) -> tuple:
        p = self.bench.fresh()
        data = abi_encode(
            ["bytes", "bytes32", "bytes32", "string"],
            [
                code_to_bytes(p["iscc"]),
                multihash_to_digest(p["datahash"]),
                multihash_to_digest(p["metahash"]),
                GATEWAY,
            ],
        )
        return (ZERO_ADDRESS, 0, True, ZERO32, data, 0)

    def delegated(self, attester: LocalAccount, nonce: int) -> tuple[tuple, tuple]:
        data = self.request_data()
        message = {
            "attester": attester.address,
            "schema": self.schema,
            "recipient": data[0],
            "expirationTime": data[1],
            "revocable": data[2],
            "refUID": data[3],
            "data": data[4],
            "value": data[5],
            "nonce": nonce,
            "deadline": self.bench.deadline,
        }
        domain = {"name": "EAS", "version": "1.4.0"} | {
            k: v for k, v in self.domain.as_dict().items() if k in ("chainId", "verifyingContract")
        }
        sig = attester.sign_typed_data(domain, EAS_ATTEST_TYPES, message)
        return data, (sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"))

    def attest(self, n: int, sender: LocalAccount) -> tuple[list[int], list[bytes]]:
        gas, uids = [], []
        for _ in range(n):
            receipt = self._send(
                self.eas.functions.attest((self.schema, self.request_data())), sender
            )
            gas.append(receipt["gasUsed"])
            uids.append(bytes(receipt["logs"][0]["data"])[:32])
        return gas, uids

    def attest_by_delegation(self, attesters: int, rounds: int) -> list[int]:
        gas = []
        for _ in range(attesters):
            who = Account.create()
            for k in range(rounds):
                data, sig = self.delegated(who, k)
                call = self.eas.functions.attestByDelegation(
                    (self.schema, data, sig, who.address, self.bench.deadline)
                )
                gas.append(self._send(call, self.bench.relayer)["gasUsed"])
        return gas

    def multi_by_delegation(self, size: int, rounds: int) -> list[float]:
        people = [Account.create() for _ in range(size)]
        per_item = []
        for k in range(rounds):
            requests = []
            for who in people:
                data, sig = self.delegated(who, k)
                requests.append((self.schema, [data], [sig], who.address, self.bench.deadline))
            receipt = self._send(
                self.eas.functions.multiAttestByDelegation(requests), self.bench.relayer
            )
            per_item.append(receipt["gasUsed"] / size)
        return per_item

    def revoke(self, uids: list[bytes], sender: LocalAccount) -> list[int]:
        return [
            self._send(self.eas.functions.revoke((self.schema, (uid, 0))), sender)["gasUsed"]
            for uid in uids
        ]


def stats(gas: list[float]) -> tuple[str, str]:
    return f"{statistics.mean(gas):,.0f}", f"{max(gas):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=16, help="declarers (or actions) per scenario")
    parser.add_argument("--rounds", type=int, default=4, help="consecutive nonces per declarer")
    parser.add_argument(
        "--quick", action="store_true", help="every scenario once at tiny sizes (checks the script)"
    )
    args = parser.parse_args()
    n, rounds = args.n, args.rounds
    # Batch sizes: ours and EAS's (100 EAS attestations exceed the 2**24 transaction gas cap).
    small, large, eas_large = 10, 100, 40
    if args.quick:
        n, rounds, small, large, eas_large = 2, 1, 2, 3, 3
    with tempfile.TemporaryDirectory() as home:
        devnet = Devnet(Path(home), free_port(), PROJECT_ROOT)
        try:
            bench = Bench(Registry.open(devnet.start()))
            eas = Eas(bench)
            attester = bench.funded()
            attest_gas, uids = eas.attest(n, attester)
            actions = bench.owner_actions(n)
            na: list[float] | None = None
            rows = [
                ("declare (direct)", bench.direct(n), "attest", attest_gas),
                (
                    "declareFor (relayed single)",
                    bench.relayed(n // rounds or 1, rounds),
                    "attestByDelegation",
                    eas.attest_by_delegation(n // rounds or 1, rounds),
                ),
                (
                    f"declareBatch of {small}, per declaration",
                    bench.batch(small, rounds),
                    f"multiAttestByDelegation of {small}",
                    eas.multi_by_delegation(small, rounds),
                ),
                (
                    f"declareBatch of {large}, per declaration",
                    bench.batch(large, rounds),
                    f"multiAttestByDelegation of {eas_large}"
                    + (f" ({large} exceed the tx gas cap)" if eas_large < large else ""),
                    eas.multi_by_delegation(eas_large, rounds),
                ),
                (
                    "revoke (direct)",
                    actions["revoke (direct)"],
                    "revoke",
                    eas.revoke(uids, attester),
                ),
                ("revokeFor (relayed)", actions["revoke (relayed)"], "", na),
                ("update (direct)", actions["update (direct)"], "", na),
                ("updateFor (relayed)", actions["update (relayed)"], "", na),
                ("transfer (direct)", actions["transfer (direct)"], "", na),
                ("transferFor (relayed)", actions["transfer (relayed)"], "", na),
            ]
        finally:
            devnet.stop()
    table = Table(
        "IsccRegistry",
        "n",
        "mean",
        "worst",
        "EAS 1.9.0",
        "mean",
        "worst",
        "EAS / ours (mean)",
        title="Gas per operation, one Hardhat 3 devnet (receipts' gasUsed)",
    )
    for name, ours, eas_name, theirs in rows:
        mean, worst = stats(ours)
        if theirs is None:
            table.add_row(name, str(len(ours)), mean, worst, "(none)", "", "", "")
            continue
        ratio = statistics.mean(theirs) / statistics.mean(ours)
        table.add_row(name, str(len(ours)), mean, worst, eas_name, *stats(theirs), f"{ratio:.1f}x")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
