"""Revoke, update and transfer on a real Hardhat node: direct and relayed, and every revert path."""

from __future__ import annotations

import dataclasses

import pytest
from chain_helpers import revert_name, sum_code
from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.chain.actions import (
    ActionReceipt,
    Revocation,
    Transfer,
    Update,
    act_direct,
    act_relayed,
    find_record,
    make_action,
    sign_action,
    sign_for,
)
from registry.chain.contract import Registry
from registry.chain.declaration import Domain
from registry.chain.devnet import deploy_registry, dev_account
from registry.chain.submit import (
    DeclarationReceipt,
    declare_direct,
    domain_of,
    prepare,
    submit_signed,
)
from registry.errors import InvalidDeclaration

pytestmark = pytest.mark.chain

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _fund(registry: Registry, account: LocalAccount) -> None:
    registry.w3.provider.make_request("hardhat_setBalance", [account.address, hex(10**18)])


def _declare_signed(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, tag: bytes
) -> DeclarationReceipt:
    c = sum_code(b"owner action content " + tag * 40)
    return submit_signed(registry, prepare(registry, declarer, c["iscc"], c["datahash"]), payer)


def _owner(registry: Registry, receipt: DeclarationReceipt) -> str:
    return registry.contract.functions.ownerOf(
        receipt.iscc_id.body, receipt.declarer, receipt.record or 0
    ).call()


def _act(
    registry: Registry, owner: LocalAccount, payer: LocalAccount, action, relayed: bool
) -> ActionReceipt:
    if relayed:
        return act_relayed(registry, sign_for(registry, owner, action), payer)
    return act_direct(registry, owner, action)


@pytest.fixture
def owned(registry: Registry, declarer: LocalAccount, payer: LocalAccount) -> DeclarationReceipt:
    """A signed declaration of `declarer`, relayed by `payer`, recorded in a nonce lane."""
    _fund(registry, declarer)
    _declare_signed(registry, declarer, payer, b"first")  # so the record is not at nonce 0
    return _declare_signed(registry, declarer, payer, b"second")


def test_find_record_returns_the_declaration_nonce(
    registry: Registry, declarer: LocalAccount, owned: DeclarationReceipt
) -> None:
    assert owned.record == 1
    assert find_record(registry, declarer.address, owned.iscc_id) == 1
    assert _owner(registry, owned) == declarer.address


@pytest.mark.parametrize("relayed", [False, True])
def test_update_emits_new_metadata_and_keeps_the_owner(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    owned: DeclarationReceipt,
    relayed: bool,
) -> None:
    action = make_action("update", owned.iscc_id, metahash=b"\x07" * 32, gateway="https://new.gw/")
    receipt = _act(registry, declarer, payer, action, relayed)
    event = registry.contract.events.Updated().process_receipt(
        registry.w3.eth.get_transaction_receipt(receipt.tx_hash)
    )[0]["args"]
    assert (event["isccId"], event["owner"], event["metahash"], event["gateway"]) == (
        owned.iscc_id.body,
        declarer.address,
        b"\x07" * 32,
        "https://new.gw/",
    )
    assert _owner(registry, owned) == declarer.address


@pytest.mark.parametrize("relayed", [False, True])
def test_revoke_ends_ownership_for_good(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    owned: DeclarationReceipt,
    relayed: bool,
) -> None:
    action = make_action("revoke", owned.iscc_id)
    receipt = _act(registry, declarer, payer, action, relayed)
    assert (receipt.action, receipt.owner) == ("revoked", declarer.address)
    assert _owner(registry, owned) == "0x" + "0" * 40
    # The lane keeps the nonce spent: the old declaration signature cannot be replayed into it.
    assert registry.contract.functions.recordOf(declarer.address, owned.record).call() == 1
    for kind in ("revoke", "update", "transfer"):
        again = make_action(kind, owned.iscc_id, to=payer.address)
        with pytest.raises(InvalidDeclaration) as exc:
            act_direct(registry, declarer, again, record=owned.record)
        assert revert_name(exc) == "NotOwner"


@pytest.mark.parametrize("relayed", [False, True])
def test_transfer_moves_every_right_to_the_new_owner(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    owned: DeclarationReceipt,
    relayed: bool,
) -> None:
    heir = Account.create()
    _fund(registry, heir)
    action = make_action("transfer", owned.iscc_id, to=heir.address)
    receipt = _act(registry, declarer, payer, action, relayed)
    assert (receipt.owner, receipt.to) == (declarer.address, heir.address)
    assert _owner(registry, owned) == heir.address
    with pytest.raises(InvalidDeclaration) as exc:
        act_direct(registry, declarer, make_action("revoke", owned.iscc_id), record=owned.record)
    assert revert_name(exc) == "NotOwner"
    # The heir holds it by ID: no record handle needed; it can pass it on and the next can revoke.
    assert find_record(registry, heir.address, owned.iscc_id) == 0
    third = Account.create()
    _fund(registry, third)
    act_relayed(
        registry,
        sign_for(registry, heir, make_action("transfer", owned.iscc_id, to=third.address)),
        payer,
    )
    act_direct(registry, third, make_action("update", owned.iscc_id, gateway="g"))
    act_direct(registry, third, make_action("revoke", owned.iscc_id))
    assert _owner(registry, owned) == "0x" + "0" * 40


def test_direct_declaration_is_owned_by_its_sender(registry: Registry, payer: LocalAccount) -> None:
    c = sum_code(b"direct and owned" * 30)
    receipt = declare_direct(registry, payer, c["iscc"], c["datahash"])
    assert _owner(registry, receipt) == payer.address
    stranger = dev_account(2)
    with pytest.raises(InvalidDeclaration) as exc:
        act_direct(registry, stranger, make_action("update", receipt.iscc_id, gateway="x"))
    assert revert_name(exc) == "NotOwner"
    act_direct(registry, payer, make_action("revoke", receipt.iscc_id))
    assert _owner(registry, receipt) == "0x" + "0" * 40


def test_a_stranger_cannot_act_even_with_its_own_record_handle(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, owned: DeclarationReceipt
) -> None:
    """The attack the lane layout must stop: pointing at one's own record to act on another ID."""
    mallory = Account.create()
    _fund(registry, mallory)
    own = _declare_signed(registry, mallory, payer, b"mallory")
    for kind in ("revoke", "update", "transfer"):
        action = make_action(kind, owned.iscc_id, to=mallory.address)
        for record in (own.record, owned.record):
            with pytest.raises(InvalidDeclaration) as exc:
                act_direct(registry, mallory, action, record=record)
            assert revert_name(exc) == "NotOwner"
    # Lane sentinels (0 unused, 1 used) are never IDs: acting on them with any handle fails.
    for body in (0, 1):
        with pytest.raises(InvalidDeclaration) as exc:
            act_direct(registry, mallory, make_action("revoke", body), record=99)
        assert revert_name(exc) == "NotOwner"
    # The owner with a wrong handle fails too, and nothing changed.
    with pytest.raises(InvalidDeclaration) as exc:
        act_direct(registry, declarer, make_action("revoke", owned.iscc_id), record=0)
    assert revert_name(exc) == "NotOwner"
    assert _owner(registry, owned) == declarer.address


def test_transfer_to_zero_address_is_refused(
    registry: Registry, declarer: LocalAccount, owned: DeclarationReceipt
) -> None:
    with pytest.raises(InvalidDeclaration) as exc:
        act_direct(registry, declarer, Transfer(owned.iscc_id.body, "0x" + "0" * 40, 0, 0))
    assert revert_name(exc) == "InvalidNewOwner"


def test_update_gateway_too_long_is_refused(
    registry: Registry, declarer: LocalAccount, owned: DeclarationReceipt
) -> None:
    with pytest.raises(InvalidDeclaration) as exc:
        act_direct(registry, declarer, make_action("update", owned.iscc_id, gateway="x" * 1025))
    assert revert_name(exc) == "GatewayTooLong"


@pytest.mark.parametrize("kind", ["revoke", "update", "transfer"])
def test_signed_action_replay_expiry_and_forgery(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    owned: DeclarationReceipt,
    kind: str,
) -> None:
    action = make_action(kind, owned.iscc_id, gateway="https://a.b/", to=payer.address)
    domain = domain_of(registry)
    expired = sign_action(dataclasses.replace(action, deadline=1), domain, declarer)
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(registry, expired, payer)
    assert revert_name(exc) == "DeadlineExpired"
    # Signed by someone else but claiming the owner's name.
    fresh = dataclasses.replace(action, deadline=2**40)
    forged = sign_action(fresh, domain, dev_account(2))
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(registry, dataclasses.replace(forged, owner=declarer.address), payer, record=1)
    assert revert_name(exc) == "InvalidSignature"
    # A signature for another action (other ID) does not authorise this one.
    signed = sign_for(registry, declarer, action)
    other_id = dataclasses.replace(signed.action, iscc_id=signed.action.iscc_id + 1)
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(registry, dataclasses.replace(signed, action=other_id), payer, record=1)
    assert revert_name(exc) == "InvalidSignature"
    act_relayed(registry, signed, payer)
    # Replayed: an update or transfer moved the action count on; a revocation ended ownership.
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(registry, signed, payer, record=1)
    assert revert_name(exc) == ("NotOwner" if kind == "revoke" else "StaleAction")


def test_signed_action_is_bound_to_chain_and_contract(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, owned: DeclarationReceipt
) -> None:
    action = make_action("revoke", owned.iscc_id, deadline=2**40)
    address = registry.deployment.address
    other_registry = deploy_registry(registry.w3, dev_account(0)).address
    for domain in (Domain(1, address), Domain(registry.deployment.chain_id, other_registry)):
        signed = sign_action(action, domain, declarer)
        # Submitted here anyway, bypassing the client's domain check.
        relabelled = dataclasses.replace(signed, domain=domain_of(registry))
        with pytest.raises(InvalidDeclaration) as exc:
            act_relayed(registry, relabelled, payer, record=owned.record)
        assert revert_name(exc) == "InvalidSignature"
    assert _owner(registry, owned) == declarer.address


def test_high_s_signature_of_an_action_is_rejected(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, owned: DeclarationReceipt
) -> None:
    signed = sign_for(registry, declarer, make_action("revoke", owned.iscc_id))
    r, s, v = (
        signed.signature[:32],
        int.from_bytes(signed.signature[32:64], "big"),
        signed.signature[64],
    )
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with pytest.raises(InvalidDeclaration) as exc:
        act_relayed(
            registry, dataclasses.replace(signed, signature=twin), payer, record=owned.record
        )
    assert revert_name(exc) == "InvalidSignature"
    act_relayed(registry, signed, payer, record=owned.record)


def test_invalidating_nonces_never_voids_a_record(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount, owned: DeclarationReceipt
) -> None:
    signed = sign_for(registry, declarer, make_action("update", owned.iscc_id, gateway="g"))
    registry.transact(
        registry.contract.functions.invalidateNonces(0, (1 << owned.record) | 0b1111), declarer
    )
    assert _owner(registry, owned) == declarer.address
    act_relayed(registry, signed, payer, record=owned.record)


def test_action_types_reject_malformed_fields() -> None:
    with pytest.raises(InvalidDeclaration):
        Update(1, b"short", "", 0, 0)
    with pytest.raises(InvalidDeclaration):
        Transfer(1, "not an address", 0, 0)
    with pytest.raises(InvalidDeclaration):
        make_action("transfer", 1)
    with pytest.raises(InvalidDeclaration):
        make_action("burn", 1)
    assert Revocation(5, 1, 2).message() == {"isccId": 5, "actions": 1, "deadline": 2}
