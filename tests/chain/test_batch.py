"""declareBatch on a real Hardhat node: bad entries are skipped with a reason, the rest count."""

from __future__ import annotations

import dataclasses

import pytest
from chain_helpers import sum_code
from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.chain.contract import Registry
from registry.chain.declaration import Domain, SignedDeclaration, sign
from registry.chain.relayer import entry, plan, relay_batch
from registry.chain.submit import domain_of, prepare

pytestmark = pytest.mark.chain


def _signed(registry: Registry, who: LocalAccount, i: int, nonce: int) -> SignedDeclaration:
    c = sum_code(b"batch entry %d " % i * 40)
    return prepare(registry, who, c["iscc"], c["datahash"], gateway="https://gw/", nonce=nonce)


def test_batch_skips_bad_entries_and_declares_the_rest(
    registry: Registry, payer: LocalAccount
) -> None:
    alice, bob = Account.create(), Account.create()
    good = [_signed(registry, alice, i, nonce=i) for i in range(3)]
    replay = good[0]  # same declarer and nonce as entry 0: the second use must fail
    tampered = dataclasses.replace(
        _signed(registry, bob, 10, nonce=0),
        declaration=dataclasses.replace(good[1].declaration, nonce=0),
    )
    expired = sign(
        dataclasses.replace(_signed(registry, bob, 11, 5).declaration, deadline=1),
        domain_of(registry),
        bob,
    )
    bad_code = sign(
        dataclasses.replace(_signed(registry, bob, 12, 6).declaration, datahash=bytes(32)),
        domain_of(registry),
        bob,
    )
    foreign = sign(
        _signed(registry, bob, 13, 7).declaration, Domain(5, registry.deployment.address), bob
    )
    last = _signed(registry, bob, 14, nonce=8)
    batch = [good[0], replay, good[1], tampered, expired, good[2], bad_code, foreign, last]
    results = relay_batch(registry, batch, payer)

    errors = [r.error.split("(")[0] if r.error else None for r in results]
    assert errors == [
        None,
        "NonceAlreadyUsed",
        None,
        "InvalidSignature",
        "DeadlineExpired",
        None,
        "InvalidDatahash",
        "signed for another chain or registry",
        None,
    ]
    declared = [r.receipt for r in results if r.receipt]
    assert [d.declarer for d in declared] == [alice.address] * 3 + [bob.address]
    ids = [d.iscc_id.body for d in declared]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert len({d.tx_hash for d in declared}) == 1
    # Skipped entries consumed nothing: bob's nonces 0, 5 and 6 are still free.
    used = registry.contract.functions.isNonceUsed
    assert [used(bob.address, n).call() for n in (0, 5, 6, 8)] == [False, False, False, True]
    for d, s in zip(declared, [good[0], good[1], good[2], last], strict=True):
        lane = registry.contract.functions.recordOf(s.declarer, s.declaration.nonce).call()
        assert lane == d.iscc_id.body


def test_relayer_splits_batches_to_fit_the_gas_budget(
    registry: Registry, payer: LocalAccount
) -> None:
    signers = [Account.create() for _ in range(6)]
    batch = [_signed(registry, s, i, nonce=0) for i, s in enumerate(signers)]

    def gas(entries: list[SignedDeclaration]) -> int:
        call = registry.contract.functions.declareBatch([entry(s) for s in entries])
        return registry.estimate_gas(call, payer.address)

    budget = (gas(batch[:2]) + gas(batch[:3])) // 2  # room for two entries per transaction
    chunks = plan(registry, batch, payer.address, budget)
    assert [len(c) for c in chunks] == [1, 2, 1, 2]  # halved 6 -> 3 + 3 -> (1 + 2) + (1 + 2)
    assert [s for c in chunks for s in c] == batch
    results = relay_batch(registry, batch, payer, gas_budget=budget)
    assert all(r.receipt for r in results)
    assert len({r.receipt.tx_hash for r in results if r.receipt}) == len(chunks)
    assert all(r.receipt.gas_used <= budget for r in results if r.receipt)
    ids = [r.receipt.iscc_id.body for r in results if r.receipt]
    assert ids == sorted(ids)


def test_empty_batch_sends_nothing(registry: Registry, payer: LocalAccount) -> None:
    assert relay_batch(registry, [], payer) == []


def test_a_reverted_batch_is_simulated_again_and_retried(
    registry: Registry, payer: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State can change between the simulation and the mined transaction; here the first
    transaction runs out of gas (its limit cut below need), and the relayer simulates again and
    sends the entries once more rather than giving up on them."""
    batch = [_signed(registry, Account.create(), i, nonce=0) for i in range(3)]
    original_transact = Registry.transact
    sent: list[int] = []

    def cut_once(reg: Registry, call, sender, gas_limit=None, payload=None) -> dict:
        sent.append(gas_limit or 0)
        limit = 60_000 if len(sent) == 1 else gas_limit
        return original_transact(reg, call, sender, limit, payload)

    monkeypatch.setattr(Registry, "transact", cut_once)
    results = relay_batch(registry, batch, payer)
    assert all(r.receipt for r in results), [r.error for r in results]
    assert len(sent) == 2  # the cut transaction, then the retry
    assert len({r.receipt.tx_hash for r in results if r.receipt}) == 1
