"""Relaying many signed declarations: simulated per entry, batches sized below the gas cap.

`declareBatch` and `reveal` skip a failing entry with a `DeclarationFailed` event instead of
reverting, and a smart wallet's signature check gets a fixed stipend (WALLET_CHECK_GAS), so one
stranger's entry cannot sink the others. The relayer adds to that: it simulates the batch first
and drops entries that would fail (their reasons are reported, no gas is spent on them), gives
each smart-wallet entry its whole stipend of headroom above the estimate (a wallet may answer
cheaply while gas is estimated and burn its stipend when the transaction runs), and if a
transaction still reverts it simulates again and retries the rest. Results come back one per
entry, in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from registry.chain.contract import Registry, decode_revert, rejections
from registry.chain.declaration import SignedDeclaration
from registry.chain.sealed import SealedEntry, merkle_root, reveal_flags, seal
from registry.chain.submit import WALLET_CHECK_GAS, DeclarationReceipt, domain_of, receipt_of_event
from registry.errors import InvalidDeclaration

# Osaka (EIP-7825) caps one transaction at 2**24 gas; keep headroom for the estimate's error
# and for state that changes between estimating and mining.
TX_GAS_CAP = 2**24
DEFAULT_BATCH_GAS = int(TX_GAS_CAP * 0.9)
# Transactions per chunk before its remaining entries are reported as failed: each retry
# follows a revert, which only a change of state between simulation and mining causes.
MAX_ATTEMPTS = 3
# Entries per sealed commitment: 100 worst-case entries (1 kB gateways, smart wallets burning
# their stipend) still fit one reveal below the transaction gas cap.
SEALED_CHUNK = 100


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
    return (signed.declaration.as_tuple(), signed.signature)


def _batch_call(registry: Registry, batch: Sequence[SignedDeclaration]):
    return registry.contract.functions.declareBatch([entry(s) for s in batch])


def _wallets(registry: Registry, batch: Sequence[SignedDeclaration]) -> int:
    """Entries whose declarer has code: each may cost up to WALLET_CHECK_GAS more than estimated."""
    has_code = {
        a: bool(registry.w3.eth.get_code(to_checksum_address(a)))
        for a in {s.declarer for s in batch}
    }
    return sum(1 for s in batch if has_code[s.declarer])


def simulate(registry: Registry, batch: Sequence[SignedDeclaration], payer: str) -> dict[int, str]:
    """The entries of `batch` that would fail now, with the contract's reason, from one call of
    `declareBatch` (a skipped entry returns ID 0) and one `declareFor` call per failing entry."""
    if not batch:
        return {}
    with rejections("simulating the batch", registry.deployment.realm):
        ids = _batch_call(registry, batch).call({"from": to_checksum_address(payer)})
    failed = {}
    for i, isccId in enumerate(ids):
        if isccId == 0:
            failed[i] = _reason(registry, batch[i], payer)
    return failed


def _reason(registry: Registry, signed: SignedDeclaration, payer: str) -> str:
    call = registry.contract.functions.declareFor(signed.declaration.as_tuple(), signed.signature)
    try:
        with rejections("simulating an entry", registry.deployment.realm):
            call.call({"from": to_checksum_address(payer)})
    except InvalidDeclaration as exc:
        return str(exc).split("rejects it: ")[-1]
    # Alone it passes, so an earlier entry of the batch spent the same declarer's same nonce:
    # the contract's own reason in the batch.
    d = signed.declaration
    return f"NonceAlreadyUsed(declarer={d.declarer}, nonce={d.nonce})"


def plan(
    registry: Registry,
    batch: Sequence[SignedDeclaration],
    payer: str,
    gas_budget: int = DEFAULT_BATCH_GAS,
) -> list[list[SignedDeclaration]]:
    """Split `batch` into consecutive chunks whose gas limit (estimate plus wallet headroom)
    stays within `gas_budget`.

    Gas per entry varies (calldata size, a declarer's fresh nonce slot, smart-wallet checks),
    so chunks are estimated on chain and halved until they fit, rather than sized by a constant.
    """
    if not batch:
        return []
    try:
        gas = gas_limit(registry, batch, payer)
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


def gas_limit(registry: Registry, batch: Sequence[SignedDeclaration], payer: str) -> int:
    """The estimate of `declareBatch(batch)` plus a full stipend per smart-wallet entry."""
    estimate = registry.estimate_gas(_batch_call(registry, batch), payer)
    return estimate + WALLET_CHECK_GAS * _wallets(registry, batch)


def relay_batch(
    registry: Registry,
    batch: Sequence[SignedDeclaration],
    payer: LocalAccount,
    gas_budget: int = DEFAULT_BATCH_GAS,
    tags: Sequence[str] | None = None,
) -> list[BatchResult]:
    """Declare all of `batch` in as few transactions as fit; one result per entry, in order.

    Entries signed for another chain or registry, sealed ones, and entries the simulation
    rejects are reported without spending gas on them. `tags` (one per entry, e.g. job ids) go
    into the sender's journal with each transaction, so that a relayer restarted mid-flight can
    tell whose declarations it carried (`results_of_receipt`).
    """
    domain = domain_of(registry)
    results: dict[int, BatchResult] = {}
    pending: list[int] = []
    for i, signed in enumerate(batch):
        if signed.domain != domain:
            results[i] = BatchResult(signed, error="signed for another chain or registry")
        elif signed.sealed:
            results[i] = BatchResult(signed, error="sealed: commit and reveal it instead")
        else:
            pending.append(i)
    for attempt in range(MAX_ATTEMPTS):
        if not pending:
            break
        failed = simulate(registry, [batch[i] for i in pending], payer.address)
        for k, reason in failed.items():
            results[pending[k]] = BatchResult(batch[pending[k]], error=reason)
        pending = [i for k, i in enumerate(pending) if k not in failed]
        retry: list[int] = []
        position = 0
        for chunk in plan(registry, [batch[i] for i in pending], payer.address, gas_budget):
            indices = pending[position : position + len(chunk)]
            position += len(chunk)
            try:
                limit = min(gas_limit(registry, chunk, payer.address), TX_GAS_CAP)
                receipt = registry.transact(
                    _batch_call(registry, chunk),
                    payer,
                    gas_limit=limit,
                    payload=_journal(batch, indices, tags),
                )
            except InvalidDeclaration as exc:
                if attempt == MAX_ATTEMPTS - 1:
                    for i in indices:
                        results[i] = BatchResult(batch[i], error=str(exc))
                retry += indices
                continue
            for i, result in zip(indices, batch_results(registry, chunk, receipt), strict=True):
                results[i] = result
        pending = retry
    return [results[i] for i in range(len(batch))]


def _journal(
    batch: Sequence[SignedDeclaration], indices: Sequence[int], tags: Sequence[str] | None
) -> dict[str, Any]:
    """What the sender's journal keeps of a declareBatch: whose entries it carries."""
    return {
        "kind": "declare",
        "entries": [
            {"tag": tags[i] if tags is not None else None, "declarer": batch[i].declarer}
            for i in indices
        ],
    }


def batch_results(
    registry: Registry, chunk: Sequence[SignedDeclaration], receipt: dict
) -> list[BatchResult]:
    """One result per entry of a mined `declareBatch` or `reveal`, from its events."""
    outcomes = results_of_receipt(registry, len(chunk), receipt)
    return [
        BatchResult(signed, error=outcome)
        if isinstance(outcome, str)
        else BatchResult(signed, receipt=outcome)
        for signed, outcome in zip(chunk, outcomes, strict=True)
    ]


def results_of_receipt(
    registry: Registry, entries: int, receipt: dict
) -> list[DeclarationReceipt | str]:
    """One outcome per entry of a mined `declareBatch` or `reveal` of `entries` entries: its
    receipt (record handle and priority from its Declared event), or the contract's reason for
    skipping it."""
    events = registry.contract.events
    failed = {
        e["args"]["index"]: decode_revert(e["args"]["reason"], registry.deployment.realm)
        for e in events.DeclarationFailed().process_receipt(receipt, errors=DISCARD)
    }
    declared = iter(events.Declared().process_receipt(receipt, errors=DISCARD))
    outcomes: list[DeclarationReceipt | str] = []
    for i in range(entries):
        if i in failed:
            outcomes.append(failed[i])
            continue
        # Declared events appear in entry order, one per entry that did not fail.
        args = next(declared)["args"]
        outcomes.append(receipt_of_event(registry, args, receipt))
    return outcomes


# --- sealed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commitment:
    """A mined commitment: its root, its entries in leaf order, and its time."""

    root: bytes
    entries: list[SealedEntry]
    committed_at: int
    tx_hash: str
    gas_used: int


def commit(registry: Registry, entries: Sequence[SealedEntry], payer: LocalAccount) -> Commitment:
    """Put the Merkle root of `entries` on chain; returns once it is mined (its time is then
    fixed, and only then may the entries be revealed)."""
    root = merkle_root([e.leaf for e in entries])
    receipt = registry.transact(registry.contract.functions.commit(root), payer)
    events = registry.contract.events.Committed().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise InvalidDeclaration(f"expected one Committed event, the receipt has {len(events)}")
    return Commitment(
        root=root,
        entries=list(entries),
        committed_at=events[0]["args"]["committedAt"],
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        gas_used=receipt["gasUsed"],
    )


def reveal(
    registry: Registry, commitment: Commitment, payer: LocalAccount
) -> tuple[list[BatchResult], dict]:
    """Reveal a whole commitment; entries that fail a check are skipped by the contract and
    reported. A reverted transaction (state changed after the estimate) is retried: the leaves
    are fixed, so a reveal can always be sent again. Returns the results and the receipt."""
    entries = commitment.entries
    call = registry.contract.functions.reveal(
        commitment.root, [e.as_tuple() for e in entries], [], reveal_flags(len(entries))
    )
    signed = [e.signed for e in entries]
    error: InvalidDeclaration | None = None
    for _ in range(MAX_ATTEMPTS):
        try:
            estimate = registry.estimate_gas(call, payer.address)
            limit = min(estimate + WALLET_CHECK_GAS * _wallets(registry, signed), TX_GAS_CAP)
            receipt = registry.transact(call, payer, gas_limit=limit)
        except InvalidDeclaration as exc:
            error = exc
            continue
        return batch_results(registry, signed, receipt), receipt
    assert error is not None
    raise error


def relay_sealed_batch(
    registry: Registry, batch: Sequence[SignedDeclaration], payer: LocalAccount
) -> list[BatchResult]:
    """Commit and reveal sealed declarations, SEALED_CHUNK per commitment; one result per
    entry, in order. Entries that cannot be valid (another domain, not sealed, a spent nonce,
    an EOA signature by another key, a past deadline) are refused before anything is committed;
    the rest is checked again by the contract at the reveal."""
    domain = domain_of(registry)
    now = registry.w3.eth.get_block("latest")["timestamp"]
    used = registry.contract.functions.isNonceUsed
    results: dict[int, BatchResult] = {}
    pending: list[int] = []
    seen: set[tuple[str, int]] = set()
    for i, s in enumerate(batch):
        d = s.declaration
        key = (s.declarer, d.nonce)
        if s.domain != domain:
            results[i] = BatchResult(s, error="signed for another chain or registry")
        elif not s.sealed:
            results[i] = BatchResult(s, error="not signed as a sealed declaration")
        elif d.deadline <= now:
            results[i] = BatchResult(s, error=f"DeadlineExpired(deadline={d.deadline})")
        elif key in seen or used(s.declarer, d.nonce).call():
            results[i] = BatchResult(
                s, error=f"NonceAlreadyUsed(declarer={s.declarer}, nonce={d.nonce})"
            )
        elif not registry.w3.eth.get_code(s.declarer) and s.recover() != s.declarer:
            results[i] = BatchResult(s, error=f"InvalidSignature(declarer={s.declarer})")
        else:
            seen.add(key)
            pending.append(i)
    for start in range(0, len(pending), SEALED_CHUNK):
        indices = pending[start : start + SEALED_CHUNK]
        commitment = commit(registry, [seal(batch[i]) for i in indices], payer)
        outcome, _ = reveal(registry, commitment, payer)
        for i, result in zip(indices, outcome, strict=True):
            results[i] = result
    return [results[i] for i in range(len(batch))]
