"""Updates, transfers and revocations sent through registry.chain on a real Hardhat node, indexed
into both backends; and a reorg that undoes some of them."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from index_helpers import content
from sqlalchemy import select

from registry.chain.actions import act_direct, act_relayed, make_action, sign_for
from registry.chain.contract import Registry
from registry.chain.iscc_id import IsccId
from registry.chain.submit import declare_direct, prepare, submit_signed
from registry.ledger.indexer import Indexer
from registry.store.schema import events
from registry.store.store import DeclarationRecord, Store

pytestmark = pytest.mark.chain


def _record(store: Store, iscc_id: str) -> DeclarationRecord:
    (record,) = store.by_iscc_id(iscc_id)
    return record


def _history(store: Store, iscc_id: str) -> list[str]:
    with store.engine.connect() as conn:
        query = (
            select(events.c.name)
            .where(events.c.iscc_id == iscc_id)
            .order_by(events.c.block_number, events.c.log_index)
        )
        return list(conn.execute(query).scalars())


@pytest.fixture
def two_declarations(
    registry: Registry, declarer: LocalAccount, payer: LocalAccount
) -> tuple[str, str]:
    """One declaration signed by `declarer` (relayed by `payer`), one sent by `payer` itself."""
    signed_item = content(b"owner actions, signed " * 40)
    direct_item = content(b"owner actions, direct " * 40)
    signed = submit_signed(
        registry,
        prepare(registry, declarer, signed_item["iscc"], signed_item["datahash"], gateway="g0"),
        payer,
    )
    direct = declare_direct(registry, payer, direct_item["iscc"], direct_item["datahash"])
    return str(signed.iscc_id), str(direct.iscc_id)


def test_update_transfer_and_revoke_reach_the_store(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    two_declarations: tuple[str, str],
    store: Store,
) -> None:
    signed_id, direct_id = two_declarations
    follower = Indexer(registry, store)
    follower.sync()
    assert _record(store, signed_id).owner == declarer.address
    assert _record(store, direct_id).owner == payer.address

    new_owner = Account.create()
    update = make_action("update", IsccId.parse(signed_id), metahash=b"\x44" * 32, gateway="g1")
    act_relayed(registry, sign_for(registry, declarer, update), payer)
    transfer = make_action("transfer", IsccId.parse(signed_id), to=new_owner.address)
    act_relayed(registry, sign_for(registry, declarer, transfer), payer)
    act_direct(registry, payer, make_action("revoke", IsccId.parse(direct_id)))
    report = follower.sync()
    assert report.events_new == 3

    signed = _record(store, signed_id)
    assert (signed.declarer, signed.owner, signed.revoked) == (
        declarer.address,
        new_owner.address,
        False,
    )
    assert (signed.metahash, signed.gateway) == (b"\x44" * 32, "g1")
    direct = _record(store, direct_id)
    assert (direct.owner, direct.revoked) == (payer.address, True)
    assert _history(store, signed_id) == ["Declared", "Updated", "Transferred"]
    assert _history(store, direct_id) == ["Declared", "Revoked"]
    assert follower.sync().events_new == 0


def test_reorg_undoes_owner_actions_and_rebuilds_the_state(
    registry: Registry,
    declarer: LocalAccount,
    payer: LocalAccount,
    two_declarations: tuple[str, str],
    store: Store,
) -> None:
    signed_id, direct_id = two_declarations
    follower = Indexer(registry, store)
    w3 = registry.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    transfer = make_action("transfer", IsccId.parse(signed_id), to=Account.create().address)
    act_relayed(registry, sign_for(registry, declarer, transfer), payer)
    act_direct(registry, payer, make_action("revoke", IsccId.parse(direct_id)))
    follower.sync()
    assert _record(store, direct_id).revoked

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    update = make_action("update", IsccId.parse(direct_id), metahash=b"\x55" * 32, gateway="g2")
    act_direct(registry, payer, update)
    w3.provider.make_request("evm_mine", [])
    w3.provider.make_request("evm_mine", [])
    report = follower.sync()
    assert report.events_rolled_back == 2

    signed = _record(store, signed_id)
    assert (signed.owner, signed.revoked, signed.gateway) == (declarer.address, False, "g0")
    direct = _record(store, direct_id)
    assert (direct.owner, direct.revoked) == (payer.address, False)
    assert (direct.metahash, direct.gateway) == (b"\x55" * 32, "g2")
    assert _history(store, signed_id) == ["Declared"]
    assert _history(store, direct_id) == ["Declared", "Updated"]
