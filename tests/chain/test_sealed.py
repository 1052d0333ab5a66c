"""Sealed declarations on a real node: commit, reveal, and a front-runner who copies a reveal."""

from __future__ import annotations

import dataclasses

import pytest
from chain_helpers import revert_name, sum_code
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from registry.chain.contract import Registry
from registry.chain.relayer import commit, relay_sealed_batch, reveal
from registry.chain.sealed import leaf, merkle_root, priority_us, reveal_flags, seal
from registry.chain.submit import prepare, submit_signed
from registry.errors import InvalidDeclaration

pytestmark = pytest.mark.chain

GWEI = 10**9


def _content(tag: str) -> dict:
    return sum_code(f"sealed {tag} ".encode() * 40)


def test_merkle_root_equals_the_contracts_reveal_of_many_declarers(
    registry: Registry, payer: LocalAccount
) -> None:
    people = [Account.create() for _ in range(7)]  # odd: the queue wraps into hashes
    batch = [
        prepare(registry, p, **_iscc(_content(f"many {i}")), sealed=True)
        for i, p in enumerate(people)
    ]
    results = relay_sealed_batch(registry, batch, payer)
    assert all(r.receipt for r in results), [r.error for r in results]
    times = {r.receipt.committed_at for r in results if r.receipt}
    assert len(times) == 1
    (committed_at,) = times
    ids = [r.receipt.iscc_id for r in results if r.receipt]
    assert all(committed_at < i.timestamp_us for i in ids)
    assert [r.receipt.declarer for r in results if r.receipt] == [p.address for p in people]
    assert [r.receipt.record for r in results if r.receipt] == [0] * 7


def _iscc(c: dict) -> dict:
    return {"iscc": c["iscc"], "datahash": c["datahash"]}


def test_a_sealed_signature_cannot_be_submitted_plain(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount
) -> None:
    sealed = prepare(registry, declarer, **_iscc(_content("kind")), sealed=True)
    as_plain = dataclasses.replace(sealed, sealed=False)
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, as_plain, payer)
    assert revert_name(exc) == "InvalidSignature"
    with pytest.raises(InvalidDeclaration, match="committed and revealed"):
        submit_signed(registry, sealed, payer)


def test_reveal_checks_the_commitment(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount
) -> None:
    entries = [
        seal(prepare(registry, declarer, **_iscc(_content(f"c{i}")), nonce=i, sealed=True))
        for i in range(3)
    ]
    fns = registry.contract.functions
    uncommitted = merkle_root([e.leaf for e in entries])
    with pytest.raises(InvalidDeclaration) as exc:
        registry.transact(
            fns.reveal(uncommitted, [e.as_tuple() for e in entries], [], reveal_flags(3)), payer
        )
    assert revert_name(exc) == "NotCommitted"
    commitment = commit(registry, entries, payer)
    with pytest.raises(InvalidDeclaration) as exc:
        registry.transact(fns.commit(commitment.root), payer)
    assert revert_name(exc) == "AlreadyCommitted"
    # Another salt, a missing entry, or another order does not rebuild the root.
    other_salt = [dataclasses.replace(entries[0], salt=bytes(32)), *entries[1:]]
    for wrong in (other_salt, entries[:2], entries[::-1]):
        with pytest.raises(InvalidDeclaration) as exc:
            registry.transact(
                fns.reveal(
                    commitment.root, [e.as_tuple() for e in wrong], [], reveal_flags(len(wrong))
                ),
                payer,
            )
        assert revert_name(exc) == "InvalidReveal"
    results, _ = reveal(registry, commitment, payer)
    assert all(r.receipt for r in results)
    # Revealed once: the nonces are spent, a second reveal declares nothing.
    again, receipt = reveal(registry, commitment, payer)
    assert [r.error.split("(")[0] for r in again if r.error] == ["NonceAlreadyUsed"] * 3
    assert not registry.contract.events.Declared().process_receipt(receipt, errors=DISCARD)


def test_leaf_hides_the_content_behind_the_salt(registry: Registry, declarer: LocalAccount) -> None:
    signed = prepare(registry, declarer, **_iscc(_content("hidden")), sealed=True)
    a, b = seal(signed), seal(signed)
    assert a.leaf != b.leaf
    assert leaf(signed, a.salt) == a.leaf


def test_a_mempool_copy_of_a_sealed_reveal_with_a_higher_tip_gets_no_priority(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount
) -> None:
    """Issue 17, finding 2: the attacker reads the content out of the pending reveal and
    declares it plainly with a higher tip, landing ahead of the reveal in the same block."""
    w3 = registry.w3
    content = _content("front-run")
    entry = seal(prepare(registry, declarer, **_iscc(content), sealed=True))
    commitment = commit(registry, [entry], payer)
    w3.provider.make_request("evm_increaseTime", [5])
    w3.provider.make_request("evm_mine", [])
    attacker = Account.create()
    w3.provider.make_request("hardhat_setBalance", [attacker.address, hex(10**20)])
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        honest = _send(
            registry,
            registry.contract.functions.reveal(
                commitment.root, [entry.as_tuple()], [], reveal_flags(1)
            ),
            payer,
            tip=1 * GWEI,
        )
        # What the attacker sees in the mempool: the reveal's calldata, content included.
        pending = w3.eth.get_transaction(honest)
        _, args = registry.contract.decode_function_input(pending["input"])
        seen = args["entries"][0]["declaration"]
        copy = _send(
            registry,
            registry.contract.functions.declare(
                seen["isccCode"], seen["datahash"], seen["metahash"], seen["gateway"]
            ),
            attacker,
            tip=50 * GWEI,
        )
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    first, second = (w3.eth.wait_for_transaction_receipt(h) for h in (copy, honest))
    assert first["blockNumber"] == second["blockNumber"]
    assert first["transactionIndex"] < second["transactionIndex"]  # the higher tip went first
    declared = registry.contract.events.Declared()
    (theirs,) = declared.process_receipt(first, errors=DISCARD)
    (ours,) = declared.process_receipt(second, errors=DISCARD)
    assert theirs["args"]["datahash"] == ours["args"]["datahash"]
    # The copy even got the earlier ISCC-ID, but priority is the commitment's time.
    assert theirs["args"]["isccId"] < ours["args"]["isccId"]
    assert ours["args"]["committedAt"] == commitment.committed_at
    assert priority_us(ours["args"]["isccId"], ours["args"]["committedAt"]) < priority_us(
        theirs["args"]["isccId"], theirs["args"]["committedAt"]
    )


def _send(registry: Registry, call, sender: LocalAccount, tip: int) -> bytes:
    w3 = registry.w3
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    tx = call.build_transaction(
        {
            "from": sender.address,
            "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
            "gas": 500_000,
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * base + tip,
        }
    )
    return w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
