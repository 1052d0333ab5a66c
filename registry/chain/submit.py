"""Putting declarations on chain: directly from the declarer, or signed and relayed by a payer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from registry.chain.contract import Registry
from registry.chain.declaration import Declaration, Domain, SignedDeclaration, sign
from registry.chain.iscc_id import IsccId
from registry.errors import InvalidDeclaration

DEFAULT_VALIDITY_S = 3600
# The contract's fixed gas stipend for a smart wallet's isValidSignature (WALLET_CHECK_GAS).
WALLET_CHECK_GAS = 100_000
_NONCES_PER_WORD = 256


@dataclass(frozen=True)
class DeclarationReceipt:
    """What the chain answered: the minted ISCC-ID and where the declaration is recorded."""

    iscc_id: IsccId
    declarer: str
    tx_hash: str
    block_number: int
    gas_used: int
    # The handle its owner passes to revoke, update, transfer, from the Declared event: the
    # nonce of a signed declaration, 0 for a direct one (whose handle the contract ignores).
    record: int = 0
    # Microsecond time of a sealed declaration's commitment (its priority), None if plain.
    committed_at: int | None = None

    def to_dict(self) -> dict:
        return {
            "iscc_id": str(self.iscc_id),
            "declarer": self.declarer,
            "record": self.record,
            "kind": "sealed" if self.committed_at else "plain",
            **({"committed_at": self.committed_at} if self.committed_at else {}),
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "gas_used": self.gas_used,
        }


def domain_of(registry: Registry) -> Domain:
    return Domain(registry.deployment.chain_id, registry.deployment.address)


def next_nonce(registry: Registry, declarer: str, start: int = 0) -> int:
    """Lowest unused nonce from `start` on: low nonces share bitmap words, which saves gas."""
    word = start // _NONCES_PER_WORD
    bitmap = registry.contract.functions.nonceBitmap
    address = to_checksum_address(declarer)
    while True:
        bits = bitmap(address, word).call()
        first = start % _NONCES_PER_WORD if word == start // _NONCES_PER_WORD else 0
        for bit in range(first, _NONCES_PER_WORD):
            if not bits >> bit & 1:
                return word * _NONCES_PER_WORD + bit
        word += 1


def default_deadline(registry: Registry, validity_s: int = DEFAULT_VALIDITY_S) -> int:
    """Deadline from the chain's clock, not ours: devnets and real chains drift from local time."""
    latest = registry.w3.eth.get_block("latest")["timestamp"]
    return max(int(latest), int(time.time())) + validity_s


def prepare(
    registry: Registry,
    declarer: LocalAccount,
    iscc: str,
    datahash: str,
    metahash: str | None = None,
    gateway: str = "",
    validity_s: int = DEFAULT_VALIDITY_S,
    nonce: int | None = None,
    sealed: bool = False,
) -> SignedDeclaration:
    """Build and sign a declaration for this registry, by default with the lowest free nonce
    (pass `nonce` when signing several before any is submitted); `sealed` signs it for a
    commitment and reveal (registry.chain.sealed) instead of a plain submission."""
    declaration = Declaration.create(
        declarer.address,
        iscc,
        datahash,
        metahash,
        gateway,
        nonce=next_nonce(registry, declarer.address) if nonce is None else nonce,
        deadline=default_deadline(registry, validity_s),
    )
    return sign(declaration, domain_of(registry), declarer, sealed)


def check_domain(registry: Registry, signed: SignedDeclaration) -> None:
    """Refuse, without spending gas, a declaration signed for another chain or registry."""
    if signed.domain != domain_of(registry):
        raise InvalidDeclaration(
            f"the declaration was signed for chain {signed.domain.chain_id} contract "
            f"{signed.domain.verifying_contract}, not for this registry "
            f"(chain {registry.deployment.chain_id} contract {registry.deployment.address})"
        )


def submit_signed(
    registry: Registry, signed: SignedDeclaration, payer: LocalAccount
) -> DeclarationReceipt:
    """Relay a signed plain declaration: `payer` pays the gas, the named declarer declares.

    The gas limit leaves room for a smart wallet's full signature-check stipend, so a wallet
    that turns expensive after the estimate cannot make the transaction run out of gas."""
    check_domain(registry, signed)
    if signed.sealed:
        raise InvalidDeclaration(
            "a sealed declaration is committed and revealed (declare --sealed), not submitted"
        )
    call = registry.contract.functions.declareFor(signed.declaration.as_tuple(), signed.signature)
    limit = None
    if registry.w3.eth.get_code(to_checksum_address(signed.declarer)):
        limit = registry.estimate_gas(call, payer.address) + WALLET_CHECK_GAS
    return declaration_receipt(registry, registry.transact(call, payer, gas_limit=limit))


def declare_direct(
    registry: Registry,
    declarer: LocalAccount,
    iscc: str,
    datahash: str,
    metahash: str | None = None,
    gateway: str = "",
) -> DeclarationReceipt:
    """Declare from the declarer's own account, which pays the gas; no signature, no nonce."""
    d = Declaration.create(declarer.address, iscc, datahash, metahash, gateway, nonce=0, deadline=0)
    call = registry.contract.functions.declare(d.iscc_code, d.datahash, d.metahash, d.gateway)
    return declaration_receipt(registry, registry.transact(call, declarer))


def receipt_of_event(registry: Registry, args: dict, receipt: dict) -> DeclarationReceipt:
    """A DeclarationReceipt from a Declared event's arguments: ID, record handle, priority."""
    return DeclarationReceipt(
        iscc_id=IsccId(body=args["isccId"], realm=registry.deployment.realm),
        declarer=args["declarer"],
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        block_number=receipt["blockNumber"],
        gas_used=receipt["gasUsed"],
        record=args["record"],
        committed_at=args["committedAt"] or None,
    )


def declaration_receipt(registry: Registry, receipt: dict) -> DeclarationReceipt:
    events = registry.contract.events.Declared().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise InvalidDeclaration(f"expected one Declared event, the receipt has {len(events)}")
    return receipt_of_event(registry, events[0]["args"], receipt)
