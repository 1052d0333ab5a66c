"""Gas of IsccRegistry and its LicenceRegistry next to the Ethereum Attestation Service, on one
fresh Hardhat devnet.

Usage: .venv/bin/python scripts/bench_gas.py [--n 16] [--rounds 4] [--quick]

Both contracts get the same payload: a 4-unit ISCC-CODE (Meta, Text, Data, Instance: 34 bytes),
datahash, metahash and a 42-character gateway; EAS through a schema of the same four fields,
deployed by this script from the npm package @ethereum-attestation-service/eas-contracts.
Figures are receipts' `gasUsed` per declaration (batches: the transaction's gas divided by its
size; sealed batches: commitment and reveal together). A declarer's nonces take one storage slot
per four, so a "fresh" signer is one whose declaration opens a slot (its first, fifth, ...
nonce) and a "repeat" signer one whose slot exists (nonces 1-3 of the slot); EAS's delegated
nonce counter is fresh on an attester's first attestation. The two are separate rows, never
averaged. "floor" is what the design cannot avoid: the Declared event (log base, topics, data
bytes as emitted) plus the storage writes (the nonce lane: 22,100 fresh, 5,000 repeat;
`lastTimestamp`: 5,000 per transaction; a sealed commitment's slot 22,100 and Committed event
per commitment), without the 21,000 transaction base and calldata.
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
from registry.chain.artifact import LICENCES_NAME
from registry.chain.contract import Registry
from registry.chain.declaration import Declaration, Domain, SignedDeclaration, sign
from registry.chain.devnet import Devnet, dev_account, free_port
from registry.chain.licences import (
    GrantRequest,
    SignedGrant,
    grant_direct,
    licence_domain,
    prepare_termination,
    random_nonce,
    sign_grant,
    submit_grant,
    submit_termination,
    terminate_direct,
)
from registry.chain.relayer import commit, entry, reveal
from registry.chain.sealed import seal
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
# A grant's terms as an EAS schema, for the reference beside LicenceRegistry (the attester is
# the grantor, the recipient the licensee).
EAS_GRANT_SCHEMA = (
    "uint64 isccId,bytes32 parent,bytes territories,bool worldwide,uint32 uses,uint8 conditions,"
    "uint64 start,uint64 end,bool exclusive,bool sublicensable,string termsUrl,bytes32 termsHash"
)
TERMS_URL = "https://rights.example.org/terms/2025-07.pdf"  # 44 characters
SVOD_AVOD = (1 << 3) | (1 << 4)


def grant_terms(licensee: str = ZERO_ADDRESS, parent: bytes = ZERO32) -> dict:
    """The benchmark's grant: SVOD and AVOD in AT, CH, DE for 2025, exclusive, a terms URL and
    hash; public unless `licensee` is given, a sublicence of `parent` if that is given."""
    return {
        "licensee": licensee,
        "parent": parent,
        "territories": b"ATCHDE",
        "worldwide": False,
        "uses": SVOD_AVOD,
        "conditions": 0b101,
        "start": 1_735_689_600,
        "end": 1_767_225_600,
        "exclusive": True,
        "sublicensable": True,
        "termsUrl": TERMS_URL,
        "termsHash": b"\x5a" * 32,
    }


def grant_data() -> bytes:
    t = grant_terms()
    return abi_encode(
        ["uint64", "bytes32", "bytes", "bool", "uint32", "uint8", "uint64", "uint64", "bool",
         "bool", "string", "bytes32"],
        [7 << 12, t["parent"], t["territories"], t["worldwide"], t["uses"], t["conditions"],
         t["start"], t["end"], t["exclusive"], t["sublicensable"], t["termsUrl"], t["termsHash"]],
    )  # fmt: skip


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
        self.committed_log_gas = 0
        self.deadline = int(time.time()) + 86_400

    def fresh(self) -> dict[str, str]:
        self.counter += 1
        return payload(self.counter)

    def funded(self) -> LocalAccount:
        account = Account.create()
        self.w3.provider.make_request("hardhat_setBalance", [account.address, hex(10**20)])
        return account

    def signed(self, declarer: LocalAccount, nonce: int, sealed: bool = False) -> SignedDeclaration:
        p = self.fresh()
        d = Declaration.create(
            declarer.address,
            p["iscc"],
            p["datahash"],
            p["metahash"],
            GATEWAY,
            nonce=nonce,
            deadline=self.deadline,
        )
        return sign(d, domain_of(self.registry), declarer, sealed)

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

    def relayed(self, declarers: int, rounds: int) -> tuple[list[int], list[int], list[dict]]:
        """Fresh (nonce 0) and repeat (nonces 1..rounds-1) relayed singles, and their receipts."""
        fresh, repeat, receipts = [], [], []
        for _ in range(declarers):
            who = Account.create()
            for k in range(rounds):
                signed = self.signed(who, k)
                call = self.registry.contract.functions.declareFor(
                    signed.declaration.as_tuple(), signed.signature
                )
                receipt = self.registry.transact(call, self.relayer)
                (fresh if k % 4 == 0 else repeat).append(receipt["gasUsed"])
                receipts.append(receipt)
        return fresh, repeat, receipts

    def batch(self, size: int, rounds: int) -> tuple[list[float], list[float]]:
        """Per-declaration gas of `rounds` batches of `size` strangers, round k using nonce k:
        round 0 is all fresh signers, rounds 1..3 all repeat signers."""
        people = [Account.create() for _ in range(size)]
        fresh, repeat = [], []
        for k in range(rounds):
            batch = [entry(self.signed(who, k)) for who in people]
            receipt = self.registry.transact(
                self.registry.contract.functions.declareBatch(batch), self.relayer
            )
            (fresh if k % 4 == 0 else repeat).append(receipt["gasUsed"] / size)
        return fresh, repeat

    def sealed_batch(self, size: int, rounds: int) -> tuple[list[float], list[float]]:
        """Like `batch`, each round one commitment of `size` leaves and one reveal of all."""
        people = [Account.create() for _ in range(size)]
        fresh, repeat = [], []
        for k in range(rounds):
            entries = [seal(self.signed(who, k, sealed=True)) for who in people]
            commitment = commit(self.registry, entries, self.relayer)
            results, receipt = reveal(self.registry, commitment, self.relayer)
            assert all(r.receipt for r in results), [r.error for r in results if r.error]
            commit_receipt = self.w3.eth.get_transaction_receipt(commitment.tx_hash)
            self.committed_log_gas = log_gas(dict(commit_receipt))
            per_item = (commitment.gas_used + receipt["gasUsed"]) / size
            (fresh if k % 4 == 0 else repeat).append(per_item)
        return fresh, repeat

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


class Licences:
    """LicenceRegistry beside the registry of `bench`: grants and terminations, measured."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.registry = bench.registry
        self.domain = licence_domain(self.registry)

    def signed(self, key: LocalAccount, **changes: object) -> SignedGrant:
        request = GrantRequest.from_struct(
            grant_terms(**changes),  # type: ignore[arg-type]
            iscc_id=7 << 12,
            grantor=key.address,
            nonce=random_nonce(),
            deadline=self.bench.deadline,
        )
        return sign_grant(request, self.domain, key)

    def direct(self, n: int) -> list[int]:
        grantor = self.bench.funded()
        gas = []
        for _ in range(n):
            request = self.signed(grantor, licensee=Account.create().address).request
            gas.append(grant_direct(self.registry, grantor, request).gas_used)
        return gas

    def relayed(self, n: int, addressed: bool, parented: bool) -> tuple[list[int], list[str]]:
        """Signed by fresh EOAs, relayed one per transaction; the grant ids too."""
        parent = ZERO32
        if parented:
            granted = submit_grant(self.registry, self.signed(Account.create()), self.bench.relayer)
            parent = bytes.fromhex(granted.grant_id[2:])
        gas, ids = [], []
        for _ in range(n):
            licensee = Account.create().address if addressed else ZERO_ADDRESS
            signed = self.signed(Account.create(), licensee=licensee, parent=parent)
            receipt = submit_grant(self.registry, signed, self.bench.relayer)
            gas.append(receipt.gas_used)
            ids.append(receipt.grant_id)
        return gas, ids

    def batch(self, size: int, rounds: int) -> list[float]:
        """Per-grant gas of grantBatch of `size` addressed grants by strangers."""
        per_item = []
        for _ in range(rounds):
            batch = [
                self.signed(Account.create(), licensee=Account.create().address)
                for _ in range(size)
            ]
            call = self.registry.licences.functions.grantBatch(
                [(s.request.as_tuple(), s.signature) for s in batch]
            )
            receipt = self.registry.transact(call, self.bench.relayer, contract=LICENCES_NAME)
            per_item.append(receipt["gasUsed"] / size)
        return per_item

    def terminations(self, n: int) -> tuple[list[int], list[int]]:
        """terminate by the grantor itself, and terminateFor relayed with its signature."""
        direct, relayed = [], []
        grantor = self.bench.funded()
        for k in range(2 * n):
            request = self.signed(grantor, licensee=Account.create().address).request
            grant_id = grant_direct(self.registry, grantor, request).grant_id
            if k % 2 == 0:
                direct.append(terminate_direct(self.registry, grantor, grant_id).gas_used)
            else:
                signed = prepare_termination(self.registry, grantor, grant_id)
                receipt = submit_termination(self.registry, signed, self.bench.relayer)
                relayed.append(receipt.gas_used)
        return direct, relayed


class Eas:
    """EAS 1.x deployed from the npm package's artifacts, with the declaration's schema."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        w3, deployer = bench.w3, dev_account(0)
        self.schemas = self._deploy("SchemaRegistry", [])
        self.eas = self._deploy("EAS", [self.schemas.address])
        self._send(self.schemas.functions.register(EAS_SCHEMA, ZERO_ADDRESS, True), deployer)
        self.schema = keccak(EAS_SCHEMA.encode() + bytes.fromhex(ZERO_ADDRESS[2:]) + b"\x01")
        self.domain = Domain(w3.eth.chain_id, self.eas.address)
        self.encoded = self.declaration_data

    def use_grant_schema(self) -> None:
        """Attest licence grants from now on: a schema of the Grant's terms, same values."""
        self._send(
            self.schemas.functions.register(EAS_GRANT_SCHEMA, ZERO_ADDRESS, True), dev_account(0)
        )
        self.schema = keccak(EAS_GRANT_SCHEMA.encode() + bytes.fromhex(ZERO_ADDRESS[2:]) + b"\x01")
        self.encoded = grant_data

    def _deploy(self, name: str, args: list):
        art = json.loads((EAS_ARTIFACTS / f"{name}.sol" / f"{name}.json").read_text())
        factory = self.bench.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self._send(factory.constructor(*args), dev_account(0))
        return self.bench.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def _send(self, call, sender: LocalAccount) -> dict:
        return self.bench.registry.transact(call, sender)

    def declaration_data(self) -> bytes:
        p = self.bench.fresh()
        return abi_encode(
            ["bytes", "bytes32", "bytes32", "string"],
            [
                code_to_bytes(p["iscc"]),
                multihash_to_digest(p["datahash"]),
                multihash_to_digest(p["metahash"]),
                GATEWAY,
            ],
        )

    def request_data(self) -> tuple:
        return (ZERO_ADDRESS, 0, True, ZERO32, self.encoded(), 0)

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

    def attest_by_delegation(self, attesters: int, rounds: int) -> tuple[list[int], list[int]]:
        """Fresh (an attester's first: its nonce counter's slot is new) and repeat attesters."""
        fresh, repeat = [], []
        for _ in range(attesters):
            who = Account.create()
            for k in range(rounds):
                data, sig = self.delegated(who, k)
                call = self.eas.functions.attestByDelegation(
                    (self.schema, data, sig, who.address, self.bench.deadline)
                )
                (repeat if k else fresh).append(self._send(call, self.bench.relayer)["gasUsed"])
        return fresh, repeat

    def multi_by_delegation(self, size: int, rounds: int) -> tuple[list[float], list[float]]:
        people = [Account.create() for _ in range(size)]
        per_item: list[float] = []
        for k in range(rounds):
            requests = []
            for who in people:
                data, sig = self.delegated(who, k)
                requests.append((self.schema, [data], [sig], who.address, self.bench.deadline))
            receipt = self._send(
                self.eas.functions.multiAttestByDelegation(requests), self.bench.relayer
            )
            per_item.append(receipt["gasUsed"] / size)
        return per_item[:1], per_item[1:]

    def revoke(self, uids: list[bytes], sender: LocalAccount) -> list[int]:
        return [
            self._send(self.eas.functions.revoke((self.schema, (uid, 0))), sender)["gasUsed"]
            for uid in uids
        ]


def stats(gas: list[float]) -> tuple[str, str]:
    return f"{statistics.mean(gas):,.0f}", f"{max(gas):,.0f}"


# Storage writes (EIP-2929/3529 prices): a zero slot made non-zero, cold; a non-zero slot
# rewritten, cold. `lastTimestamp` is rewritten once per transaction.
FRESH_SLOT = 22_100
WARM_SLOT = 5_000
LAST_TIMESTAMP = 5_000


def log_gas(receipt: dict) -> int:
    """What the receipt's first log costs as such: 375 + 375 per topic + 8 per data byte."""
    log = receipt["logs"][0]
    return 375 + 375 * len(log["topics"]) + 8 * len(bytes(log["data"]))


def floors(declared: int, committed: int, size: int) -> dict[str, float]:
    """Per-declaration floors: the Declared event and the writes no design of these rules
    avoids (the nonce lane, lastTimestamp once per transaction; for sealed batches the
    commitment's slot and event once per commitment)."""
    base = declared + LAST_TIMESTAMP / size
    sealed = (FRESH_SLOT + committed + LAST_TIMESTAMP) / size
    return {
        "fresh": base + FRESH_SLOT,
        "repeat": base + WARM_SLOT,
        "sealed fresh": base + FRESH_SLOT + sealed,
        "sealed repeat": base + WARM_SLOT + sealed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=16, help="declarers (or actions) per scenario")
    parser.add_argument("--rounds", type=int, default=4, help="consecutive nonces per declarer")
    parser.add_argument(
        "--quick", action="store_true", help="every scenario once (checks the script works)"
    )
    args = parser.parse_args()
    # Two rounds: a fresh and a repeat nonce for every row.
    n, rounds = (4, 2) if args.quick else (args.n, args.rounds)
    with tempfile.TemporaryDirectory() as home:
        devnet = Devnet(Path(home), free_port(), PROJECT_ROOT)
        try:
            bench = Bench(Registry.open(devnet.start()))
            eas = Eas(bench)
            attester = bench.funded()
            attest_gas, uids = eas.attest(n, attester)
            eas_revoke = eas.revoke(uids, attester)
            # After other declarations: the registry's very first one also pays for the first
            # write of lastTimestamp, which is not what a declaration costs.
            actions = bench.owner_actions(n)
            direct = bench.direct(n)
            single_fresh, single_repeat, single_receipts = bench.relayed(n // rounds or 1, rounds)
            eas_single_fresh, eas_single_repeat = eas.attest_by_delegation(n // rounds or 1, rounds)
            b10_fresh, b10_repeat = bench.batch(10, rounds)
            eas10_fresh, eas10_repeat = eas.multi_by_delegation(10, rounds)
            b100_fresh, b100_repeat = bench.batch(100, rounds)
            # 100 EAS attestations exceed the 2**24 transaction gas cap.
            eas40_fresh, eas40_repeat = eas.multi_by_delegation(40, rounds)
            s100_fresh, s100_repeat = bench.sealed_batch(100, rounds)
            committed = bench.committed_log_gas
            licences = Licences(bench)
            grants = {
                "grant (direct, addressed)": licences.direct(n),
                "grantFor, public, no parent": licences.relayed(n, False, False)[0],
                "grantFor, addressed, no parent": licences.relayed(n, True, False)[0],
                "grantFor, public, with parent": licences.relayed(n, False, True)[0],
                "grantFor, addressed, with parent": licences.relayed(n, True, True)[0],
                "grantBatch of 10, addressed, per grant": licences.batch(10, rounds),
            }
            grants["terminate (direct)"], grants["terminateFor (relayed)"] = licences.terminations(
                n
            )
            eas.use_grant_schema()
            eas_grant, _ = eas.attest(n, attester)
            eas_grant_fresh, eas_grant_repeat = eas.attest_by_delegation(n // rounds or 1, rounds)
            eas_grant10, eas_grant10_more = eas.multi_by_delegation(10, rounds)
        finally:
            devnet.stop()
    declared = log_gas(single_receipts[0])
    single = floors(declared, committed, 1)
    b10 = floors(declared, committed, 10)
    b100 = floors(declared, committed, 100)
    na: list[float] | None = None
    eas40 = "multiAttestByDelegation of 40 (100 exceed the tx gas cap)"
    rows: list[tuple[str, list, str, list | None, str, float | None]] = [
        ("declare (direct)", direct, "attest", attest_gas, "", None),
        (
            "declareFor, fresh signer",
            single_fresh,
            "attestByDelegation, fresh attester",
            eas_single_fresh,
            "<= 70,000",
            single["fresh"],
        ),
        (
            "declareFor, repeat signer",
            single_repeat,
            "attestByDelegation, repeat attester",
            eas_single_repeat,
            "<= 52,000",
            single["repeat"],
        ),
        (
            "declareBatch of 10, fresh, per decl.",
            b10_fresh,
            "multiAttestByDelegation of 10, fresh",
            eas10_fresh,
            "",
            b10["fresh"],
        ),
        (
            "declareBatch of 10, repeat, per decl.",
            b10_repeat,
            "multiAttestByDelegation of 10, repeat",
            eas10_repeat,
            "",
            b10["repeat"],
        ),
        (
            "declareBatch of 100, fresh, per decl.",
            b100_fresh,
            eas40 + ", fresh",
            eas40_fresh,
            "<= 44,000",
            b100["fresh"],
        ),
        (
            "declareBatch of 100, repeat, per decl.",
            b100_repeat,
            eas40 + ", repeat",
            eas40_repeat,
            "<= 27,000",
            b100["repeat"],
        ),
        (
            "sealed batch of 100 (commit + reveal), fresh",
            s100_fresh,
            "",
            na,
            f"<= {statistics.mean(b100_fresh) + 3000:,.0f} (plain + 3k)",
            b100["sealed fresh"],
        ),
        (
            "sealed batch of 100 (commit + reveal), repeat",
            s100_repeat,
            "",
            na,
            f"<= {statistics.mean(b100_repeat) + 3000:,.0f} (plain + 3k)",
            b100["sealed repeat"],
        ),
        ("revoke (direct)", actions["revoke (direct)"], "revoke", eas_revoke, "", None),
        ("revokeFor (relayed)", actions["revoke (relayed)"], "", na, "", None),
        ("update (direct)", actions["update (direct)"], "", na, "", None),
        ("updateFor (relayed)", actions["update (relayed)"], "", na, "", None),
        ("transfer (direct)", actions["transfer (direct)"], "", na, "", None),
        ("transferFor (relayed)", actions["transfer (relayed)"], "", na, "", None),
    ]
    table = Table(
        "IsccRegistry",
        "n",
        "mean",
        "worst",
        "floor",
        "target",
        "EAS 1.9.0",
        "mean",
        "worst",
        "EAS / ours (mean)",
        title="Gas per operation, one Hardhat 3 devnet (receipts' gasUsed)",
    )
    for name, ours, eas_name, theirs, target, floor in rows:
        mean, worst = stats(ours)
        shown = f"{floor:,.0f}" if floor is not None else ""
        if theirs is None:
            table.add_row(name, str(len(ours)), mean, worst, shown, target, "", "", "", "")
            continue
        ratio = statistics.mean(theirs) / statistics.mean(ours)
        table.add_row(
            name,
            str(len(ours)),
            mean,
            worst,
            shown,
            target,
            eas_name,
            *stats(theirs),
            f"{ratio:.1f}x",
        )
    Console(width=200).print(table)
    eas_for = {
        "grant (direct, addressed)": ("attest", eas_grant),
        "grantFor, public, no parent": (
            "attestByDelegation (fresh + repeat attesters)",
            eas_grant_fresh + eas_grant_repeat,
        ),
        "grantBatch of 10, addressed, per grant": (
            "multiAttestByDelegation of 10",
            eas_grant10 + eas_grant10_more,
        ),
    }
    licence_table = Table(
        "LicenceRegistry",
        "n",
        "mean",
        "worst",
        "EAS 1.9.0, schema of the grant's terms",
        "mean",
        "worst",
        "EAS / ours (mean)",
        title="Gas per licence operation, same devnet (receipts' gasUsed)",
    )
    for name, ours in grants.items():
        eas_name, theirs = eas_for.get(name, ("", None))
        if not theirs:
            licence_table.add_row(name, str(len(ours)), *stats(ours), "", "", "", "")
            continue
        ratio = statistics.mean(theirs) / statistics.mean(ours)
        licence_table.add_row(
            name, str(len(ours)), *stats(ours), eas_name, *stats(theirs), f"{ratio:.1f}x"
        )
    Console(width=200).print(licence_table)


if __name__ == "__main__":
    main()
