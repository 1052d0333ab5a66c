"""Relaying many signed declarations: batches sized below the per-transaction gas cap.

`declareBatch` skips a failing entry with a `DeclarationFailed` event instead of reverting, so
strangers' declarations can share a transaction; this module turns that receipt back into one
result per entry, in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from registry.chain.contract import Registry, decode_revert
from registry.chain.declaration import SignedDeclaration
from registry.chain.iscc_id import IsccId
from registry.chain.submit import DeclarationReceipt, domain_of
from registry.errors import InvalidDeclaration

# Osaka (EIP-7825) caps one transaction at 2**24 gas; keep headroom for the estimate's error
# and for state that changes between estimating and mining.
TX_GAS_CAP = 2**24
DEFAULT_BATCH_GAS = int(TX_GAS_CAP * 0.9)


@dataclass(frozen=True)
class BatchResult:
    """One entry's outcome: a receipt if it was declared, else the contract's reason."""

    signed: SignedDeclaration
    receipt: DeclarationReceipt | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        if self.receipt is not None:
            return self.receipt.to_dict()
        return {"declarer": self.signed.declarer, "error": self.error}


def entry(signed: SignedDeclaration) -> tuple:
    """A batch entry as the contract's ABI takes it."""
    return (signed.declaration.as_tuple(), signed.declarer, signed.signature)


def plan(
    registry: Registry,
    batch: Sequence[SignedDeclaration],
    payer: str,
    gas_budget: int = DEFAULT_BATCH_GAS,
) -> list[list[SignedDeclaration]]:
    """Split `batch` into consecutive chunks whose estimated gas stays within `gas_budget`.

    Gas per entry varies (calldata size, a declarer's fresh nonce slot, smart-wallet checks),
    so chunks are estimated on chain and halved until they fit, rather than sized by a constant.
    """
    if not batch:
        return []
    call = registry.contract.functions.declareBatch([entry(s) for s in batch])
    try:
        gas = registry.estimate_gas(call, payer)
    except InvalidDeclaration:
        gas = gas_budget + 1  # too big for the node's own estimate limit: split
    if gas <= gas_budget:
        return [list(batch)]
    if len(batch) == 1:
        raise InvalidDeclaration(
            f"one declaration needs {gas} gas, more than the budget {gas_budget}"
        )
    half = len(batch) // 2
    return plan(registry, batch[:half], payer, gas_budget) + plan(
        registry, batch[half:], payer, gas_budget
    )


def relay_batch(
    registry: Registry,
    batch: Sequence[SignedDeclaration],
    payer: LocalAccount,
    gas_budget: int = DEFAULT_BATCH_GAS,
    tags: Sequence[str] | None = None,
) -> list[BatchResult]:
    """Declare all of `batch` in as few transactions as fit; one result per entry, in order.

    Entries signed for another chain or registry are refused here without spending gas.
    `tags` (one per entry, e.g. job ids) go into the sender's journal with each transaction,
    so that a relayer restarted mid-flight can tell whose declarations it carried
    (`results_of_receipt`).
    """
    domain = domain_of(registry)
    results: dict[int, BatchResult] = {}
    valid: list[int] = []
    for i, signed in enumerate(batch):
        if signed.domain != domain:
            results[i] = BatchResult(signed, error="signed for another chain or registry")
        else:
            valid.append(i)
    position = 0
    for chunk in plan(registry, [batch[i] for i in valid], payer.address, gas_budget):
        indices = valid[position : position + len(chunk)]
        position += len(chunk)
        call = registry.contract.functions.declareBatch([entry(s) for s in chunk])
        payload = {
            "kind": "declare",
            "entries": [
                {
                    "tag": tags[i] if tags is not None else None,
                    "declarer": batch[i].declarer,
                    "record": batch[i].declaration.nonce,
                }
                for i in indices
            ],
        }
        receipt = registry.transact(call, payer, payload=payload)
        for i, result in zip(indices, _results(registry, chunk, receipt), strict=True):
            results[i] = result
    return [results[i] for i in range(len(batch))]


def _results(
    registry: Registry, chunk: Sequence[SignedDeclaration], receipt: dict
) -> list[BatchResult]:
    outcomes = results_of_receipt(registry, [s.declaration.nonce for s in chunk], receipt)
    return [
        BatchResult(signed, error=outcome)
        if isinstance(outcome, str)
        else BatchResult(signed, receipt=outcome)
        for signed, outcome in zip(chunk, outcomes, strict=True)
    ]


def results_of_receipt(
    registry: Registry, records: Sequence[int | None], receipt: dict
) -> list[DeclarationReceipt | str]:
    """One outcome per entry of a mined `declareBatch` (whose entries had these nonces): its
    receipt, or the contract's reason for skipping it."""
    events = registry.contract.events
    failed = {
        e["args"]["index"]: decode_revert(e["args"]["reason"])
        for e in events.DeclarationFailed().process_receipt(receipt, errors=DISCARD)
    }
    declared = iter(events.Declared().process_receipt(receipt, errors=DISCARD))
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    outcomes: list[DeclarationReceipt | str] = []
    for i, record in enumerate(records):
        if i in failed:
            outcomes.append(failed[i])
            continue
        # Declared events appear in entry order, one per entry that did not fail.
        args = next(declared)["args"]
        outcomes.append(
            DeclarationReceipt(
                iscc_id=IsccId(args["isccId"], registry.deployment.realm),
                declarer=args["declarer"],
                tx_hash=tx_hash,
                block_number=receipt["blockNumber"],
                gas_used=receipt["gasUsed"],
                record=record,
            )
        )
    return outcomes
