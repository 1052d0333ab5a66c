"""Regression tests of the v2 audit findings (issue 17), each attack replayed on a real node."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from chain_helpers import deploy_mock, mock_contract, prepare_for, revert_name, sum_code
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import Web3RPCError
from web3.logs import DISCARD

from registry.chain.actions import (
    act_direct,
    act_relayed,
    actions_of,
    find_record,
    make_action,
    sign_for,
)
from registry.chain.contract import Registry, decode_revert
from registry.chain.relayer import entry, relay_batch
from registry.chain.submit import WALLET_CHECK_GAS, prepare, submit_signed
from registry.errors import InvalidDeclaration

pytestmark = pytest.mark.chain

VALID, BURN_GAS, REVERT, SHORT, REJECT = range(5)


def _content(tag: str) -> dict:
    return sum_code(f"finding {tag} ".encode() * 40)


def _fund(registry: Registry, account: LocalAccount) -> None:
    registry.w3.provider.make_request("hardhat_setBalance", [account.address, hex(10**18)])


def _send(registry: Registry, call, payer: LocalAccount, gas: int) -> dict:
    """Send with a fixed gas limit and return the receipt whether or not it reverted."""
    w3 = registry.w3
    tx = call.build_transaction(
        {
            "from": payer.address,
            "nonce": w3.eth.get_transaction_count(payer.address, "pending"),
            "gas": gas,
        }
    )
    signed = payer.sign_transaction(tx)
    # Hardhat reports a reverting transaction but mines it all the same.
    with contextlib.suppress(Web3RPCError):
        w3.eth.send_raw_transaction(signed.raw_transaction)
    return dict(w3.eth.wait_for_transaction_receipt(signed.hash))


def _set_mode(registry: Registry, wallet: str, mode: int) -> None:
    registry.transact(
        mock_contract(registry, "HostileWallet", wallet).functions.setMode(mode),
        _fund_dev(registry),
    )


def _fund_dev(registry: Registry) -> LocalAccount:
    attacker = Account.from_key(b"\x07" * 32)
    _fund(registry, attacker)
    return attacker


def _failures(registry: Registry, receipt: dict) -> dict[int, str]:
    events = registry.contract.events.DeclarationFailed().process_receipt(receipt, errors=DISCARD)
    return {e["args"]["index"]: decode_revert(e["args"]["reason"]) for e in events}


# --- finding 1: one ERC-1271 wallet sinks a whole batch -----------------------------------------


@pytest.mark.parametrize("mode", [BURN_GAS, REVERT, SHORT])
def test_hostile_wallet_first_of_21_entries_fails_alone(
    registry: Registry, payer: LocalAccount, mode: int
) -> None:
    wallet = deploy_mock(registry, "HostileWallet")
    hostile = prepare_for(registry, Account.create(), wallet, _content("wallet"), nonce=0)
    honest = [
        prepare(registry, Account.create(), **_iscc(_content(f"honest {i}")), nonce=0)
        for i in range(20)
    ]
    call = registry.contract.functions.declareBatch([entry(s) for s in [hostile, *honest]])
    # The same batch with a wallet that refuses cheaply: what the entries cost without the attack.
    _set_mode(registry, wallet, REJECT)
    baseline = registry.estimate_gas(call, payer.address)
    _set_mode(registry, wallet, mode)
    receipt = _send(registry, call, payer, gas=3_000_000)
    assert receipt["status"] == 1
    assert _failures(registry, receipt) == {0: f"InvalidSignature(declarer={wallet})"}
    declared = registry.contract.events.Declared().process_receipt(receipt, errors=DISCARD)
    assert [e["args"]["declarer"] for e in declared] == [s.declarer for s in honest]
    assert receipt["gasUsed"] <= baseline + WALLET_CHECK_GAS
    assert not registry.contract.functions.isNonceUsed(wallet, 0).call()


def _iscc(c: dict) -> dict:
    return {"iscc": c["iscc"], "datahash": c["datahash"]}


def test_wallet_switched_after_the_estimate_does_not_sink_the_relayers_batch(
    registry: Registry, payer: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wallet answers "valid" while the relayer simulates and estimates; a front-run then
    switches it to burning gas before the batch is mined."""
    wallet = deploy_mock(registry, "HostileWallet")
    hostile = prepare_for(registry, Account.create(), wallet, _content("switch"), nonce=0)
    honest = [
        prepare(registry, Account.create(), **_iscc(_content(f"h{i}")), nonce=0) for i in range(50)
    ]
    original = Registry.transact
    switched: list[bool] = []

    def front_run(self: Registry, call, sender, gas_limit=None, payload=None) -> dict:
        if call.fn_name == "declareBatch" and not switched:
            switched.append(True)
            _set_mode(self, wallet, BURN_GAS)
        return original(self, call, sender, gas_limit, payload)

    monkeypatch.setattr(Registry, "transact", front_run)
    results = relay_batch(registry, [hostile, *honest], payer)
    assert switched
    assert results[0].error == f"InvalidSignature(declarer={wallet})"
    assert all(r.receipt for r in results[1:])
    assert len({r.receipt.tx_hash for r in results[1:] if r.receipt}) == 1


def test_declare_for_a_gas_burning_wallet_costs_at_most_its_stipend(
    registry: Registry, payer: LocalAccount
) -> None:
    wallet = deploy_mock(registry, "HostileWallet")
    _set_mode(registry, wallet, BURN_GAS)
    signed = prepare_for(registry, Account.create(), wallet, _content("single"), nonce=0)
    call = registry.contract.functions.declareFor(signed.declaration.as_tuple(), signed.signature)
    receipt = _send(registry, call, payer, gas=3_000_000)
    assert receipt["status"] == 0
    assert receipt["gasUsed"] < WALLET_CHECK_GAS + 60_000
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, signed, payer)
    assert revert_name(exc) == "InvalidSignature"


def test_too_little_gas_for_the_stipend_reverts_instead_of_failing_the_entry(
    registry: Registry, payer: LocalAccount
) -> None:
    """Otherwise a relayer's gas estimate could find a limit at which the wallet's check runs
    out of gas and the entry is silently skipped."""
    wallet = deploy_mock(registry, "HostileWallet")
    signed = prepare_for(registry, Account.create(), wallet, _content("tight"), nonce=0)
    call = registry.contract.functions.declareBatch([entry(signed)])
    receipt = _send(registry, call, payer, gas=WALLET_CHECK_GAS)
    assert receipt["status"] == 0
    assert not registry.contract.functions.isNonceUsed(wallet, 0).call()
    assert registry.contract.functions.WALLET_CHECK_GAS().call() == WALLET_CHECK_GAS


# --- finding 3: the declarer is part of what is signed --------------------------------------------


def test_an_eoa_signature_cannot_declare_for_a_wallet_it_owns(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount
) -> None:
    wallet = deploy_mock(registry, "OwnedWallet", declarer.address)
    signed = prepare(registry, declarer, **_iscc(_content("one signature")), nonce=0)
    as_wallet = dataclasses.replace(
        signed, declaration=dataclasses.replace(signed.declaration, declarer=wallet)
    )
    with pytest.raises(InvalidDeclaration) as exc:
        submit_signed(registry, as_wallet, payer)
    assert revert_name(exc) == "InvalidSignature"
    assert not registry.contract.functions.isNonceUsed(wallet, 0).call()
    assert submit_signed(registry, signed, payer).declarer == declarer.address


# --- finding 4: signed owner actions are bound to the declaration's state -------------------------


@pytest.fixture
def owned(registry: Registry, declarer: LocalAccount, payer: LocalAccount):
    _fund(registry, declarer)
    return submit_signed(registry, prepare(registry, declarer, **_iscc(_content("owned"))), payer)


def test_signed_updates_cannot_be_applied_out_of_order(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, owned
) -> None:
    first = sign_for(registry, declarer, make_action("update", owned.iscc_id, gateway="v1"))
    second = sign_for(registry, declarer, make_action("update", owned.iscc_id, gateway="v2"))
    act_relayed(registry, second, payer)
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(registry, first, payer)
    assert revert_name(exc) == "StaleAction"
    assert actions_of(registry, owned.iscc_id) == 1
    updates = registry.contract.events.Updated().get_logs(from_block=owned.block_number)
    assert [u["args"]["gateway"] for u in updates] == ["v2"]


def test_a_signed_transfer_dies_when_the_declaration_comes_back(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, owned
) -> None:
    mallory, bob = Account.create(), Account.create()
    _fund(registry, bob)
    stale = sign_for(registry, declarer, make_action("transfer", owned.iscc_id, to=mallory.address))
    act_direct(registry, declarer, make_action("transfer", owned.iscc_id, to=bob.address))
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(registry, stale, payer)
    assert revert_name(exc) == "StaleAction"
    act_direct(registry, bob, make_action("transfer", owned.iscc_id, to=declarer.address))
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(registry, stale, payer)
    assert revert_name(exc) == "StaleAction"
    owner = registry.contract.functions.ownerOf(owned.iscc_id.body, declarer.address, 0).call()
    assert owner == declarer.address


# --- finding 5: the record handle travels in Declared ---------------------------------------------


def test_record_handle_comes_from_the_event_even_above_an_unused_nonce(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount
) -> None:
    _fund(registry, declarer)
    signed = prepare(registry, declarer, **_iscc(_content("nonce one")), nonce=1)
    receipt = submit_signed(registry, signed, payer)
    assert receipt.record == 1
    assert not registry.contract.functions.isNonceUsed(declarer.address, 0).call()
    assert find_record(registry, declarer.address, receipt.iscc_id) == 1
    act_direct(registry, declarer, make_action("revoke", receipt.iscc_id))
    owner = registry.contract.functions.ownerOf(receipt.iscc_id.body, declarer.address, 1).call()
    assert int(owner, 16) == 0


# --- finding 6: invalidateNonces checks its range -------------------------------------------------


def test_invalidate_nonces_refuses_a_word_whose_keys_overflow(
    registry: Registry, declarer: LocalAccount
) -> None:
    _fund(registry, declarer)
    for word in (2**250, 2**248):
        with pytest.raises(InvalidDeclaration) as exc:
            registry.transact(registry.contract.functions.invalidateNonces(word, 1), declarer)
        assert revert_name(exc) == "InvalidNonceWord"
    assert not registry.contract.functions.isNonceUsed(declarer.address, 0).call()
    registry.transact(registry.contract.functions.invalidateNonces(2**248 - 1, 1), declarer)
    assert registry.contract.functions.isNonceUsed(declarer.address, 2**256 - 256).call()
    assert not registry.contract.functions.isNonceUsed(declarer.address, 0).call()


# --- finding 7: an EOA with an EIP-7702 delegation keeps its ECDSA declarations -------------------


def test_eip7702_delegated_eoa_declares_with_its_ecdsa_signature(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount
) -> None:
    # Delegated to a wallet that vouches only for a stranger's key (an immutable, so it holds in
    # the EOA's context too): as ERC-1271 the declarer's own signature is refused, and only ECDSA
    # recovery against the declarer accepts it.
    rejecting = deploy_mock(registry, "OwnedWallet", Account.create().address)
    designator = "0xef0100" + rejecting[2:].lower()
    registry.w3.provider.make_request("hardhat_setCode", [declarer.address, designator])
    assert registry.w3.eth.get_code(declarer.address).hex().removeprefix("0x").startswith("ef0100")
    signed = prepare(registry, declarer, **_iscc(_content("7702")))
    assert submit_signed(registry, signed, payer).declarer == declarer.address
    # Its owner actions keep working as well.
    _fund(registry, declarer)
    receipt = act_relayed(
        registry,
        sign_for(
            registry, declarer, make_action("update", find_id(registry, declarer), gateway="g")
        ),
        payer,
    )
    assert receipt.action == "updated"


def find_id(registry: Registry, declarer: LocalAccount) -> int:
    logs = registry.contract.events.Declared().get_logs(
        from_block=0, argument_filters={"declarer": declarer.address}
    )
    return logs[-1]["args"]["isccId"]


# --- finding 8: the ISCC-ID's microsecond field does not wrap ------------------------------------


def test_declaring_past_the_52_bit_microsecond_field_reverts(
    registry: Registry, payer: LocalAccount
) -> None:
    c = _content("2112")
    from registry.chain.submit import declare_direct

    declare_direct(registry, payer, c["iscc"], c["datahash"])
    last = registry.contract.functions.lastTimestamp().call()
    address = registry.contract.address
    slot = next(
        i
        for i in range(16)
        if int.from_bytes(registry.w3.eth.get_storage_at(address, i), "big") == last
    )
    registry.w3.provider.make_request(
        "hardhat_setStorageAt", [address, hex(slot), "0x" + (2**52 - 1).to_bytes(32, "big").hex()]
    )
    assert registry.contract.functions.lastTimestamp().call() == 2**52 - 1
    with pytest.raises(InvalidDeclaration) as exc:
        declare_direct(registry, payer, c["iscc"], c["datahash"])
    assert revert_name(exc) == "TimestampOverflow"
