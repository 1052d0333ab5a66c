"""The indexer follows the licence ledger with the registry: one eth_getLogs over both
addresses, grants and terminations decoded into GrantedEvent / TerminatedEvent in chain order,
the same by the log reader's path and by the general decoder."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from index_helpers import content

from registry.chain.contract import Registry
from registry.chain.devnet import dev_account
from registry.chain.iscc_id import IsccId
from registry.chain.licence_events import GrantedEvent, TerminatedEvent
from registry.chain.licences import (
    ZERO_ADDRESS,
    ZERO_HASH,
    GrantRequest,
    grant_direct,
    prepare_grant,
    prepare_termination,
    submit_grant,
    submit_termination,
)
from registry.chain.submit import declare_direct
from registry.index.events import EventDecoder
from registry.index.follower import Follower
from registry.store.rows import BatchRows
from registry.store.store import Store

pytestmark = pytest.mark.chain


def _terms(**changes: object) -> dict:
    return {
        "licensee": ZERO_ADDRESS,
        "parent": ZERO_HASH,
        "territories": b"CAUS",
        "worldwide": True,
        "uses": 0b11000,
        "conditions": 0b001,
        "start": 1_735_689_600,
        "end": 0,
        "exclusive": True,
        "sublicensable": True,
        "termsUrl": "https://example.com/t",
        "termsHash": b"\x22" * 32,
    } | changes


def test_grants_and_terminations_are_decoded_in_chain_order(
    registry: Registry, payer: LocalAccount, sqlite_store: Store
) -> None:
    item = content(b"a film to licence " * 40)
    declared = declare_direct(registry, payer, item["iscc"], item["datahash"])
    grantor = dev_account(2)
    licensee = Account.create()
    request = GrantRequest.from_struct(
        _terms(licensee=licensee.address),
        iscc_id=declared.iscc_id.body,
        grantor=grantor.address,
        nonce=21,
        deadline=0,
    )
    parent = grant_direct(registry, grantor, request)
    sub_terms = _terms(
        parent=bytes.fromhex(parent.grant_id[2:]),
        territories=b"DE",
        worldwide=False,
        exclusive=False,
        sublicensable=False,
        termsHash=ZERO_HASH,
        end=1_800_000_000,
    )
    signed = prepare_grant(registry, licensee, declared.iscc_id, sub_terms)
    child = submit_grant(registry, signed, payer)
    ended = submit_termination(
        registry, prepare_termination(registry, licensee, parent.grant_id), payer
    )

    follower = Follower(registry, sqlite_store)
    head = registry.w3.eth.block_number
    # The production path: one eth_getLogs over both addresses, rows built like a log reader.
    batch, _parent, _end = follower.ranges.read(registry.deployment.block, head)
    assert isinstance(batch, BatchRows)
    assert len(batch.declarations) == 1
    licences = batch.licences
    assert [type(e) for e in licences] == [GrantedEvent, GrantedEvent, TerminatedEvent]
    # The general decoder, over web3's logs of the two contracts, agrees.
    logs = registry.w3.eth.get_logs(
        {
            "address": [registry.contract.address, registry.licences.address],
            "fromBlock": registry.deployment.block,
            "toBlock": head,
        }
    )
    decoded = EventDecoder(registry.deployment.realm).decode_logs(logs)
    assert [e for e in decoded if isinstance(e, GrantedEvent | TerminatedEvent)] == licences
    assert [type(e).__name__ for e in decoded] == [
        "DeclaredEvent", "GrantedEvent", "GrantedEvent", "TerminatedEvent",
    ]  # fmt: skip

    first, second, termination = licences
    assert isinstance(first, GrantedEvent) and isinstance(second, GrantedEvent)
    assert isinstance(termination, TerminatedEvent)
    assert first.grant_id == parent.grant_id
    assert first.iscc_id == declared.iscc_id and isinstance(first.iscc_id, IsccId)
    assert (first.grantor, first.licensee, first.parent) == (
        grantor.address,
        licensee.address,
        None,
    )
    assert (first.territories, first.worldwide) == (("CA", "US"), True)
    assert (first.uses, first.conditions, first.start, first.end) == (0b11000, 1, 1_735_689_600, 0)
    assert (first.exclusive, first.sublicensable, first.nonce) == (True, True, 21)
    assert (first.terms_url, first.terms_hash) == ("https://example.com/t", "0x" + "22" * 32)
    receipt = registry.w3.eth.get_transaction_receipt(parent.tx_hash)
    block = registry.w3.eth.get_block(receipt["blockNumber"])
    assert first.block_number == receipt["blockNumber"]
    assert first.block_hash == bytes(block["hash"]) and first.block_time == block["timestamp"]
    assert "0x" + first.tx_hash.hex() == parent.tx_hash

    assert second.grant_id == child.grant_id and second.parent == parent.grant_id
    assert (second.grantor, second.licensee) == (licensee.address, None)
    assert (second.territories, second.worldwide, second.end) == (("DE",), False, 1_800_000_000)
    assert second.terms_hash is None and second.nonce == signed.request.nonce

    assert (termination.grant_id, termination.by) == (parent.grant_id, licensee.address)
    assert termination.block_number == ended.block_number
    assert termination.key == (bytes.fromhex(ended.tx_hash[2:]), termination.log_index)

    # A sync over blocks holding licence events moves the checkpoint past them.
    report = follower.sync()
    assert report.to_block == head
    stored = sqlite_store.checkpoint_block(registry.deployment.chain_id, registry.contract.address)
    assert stored is not None and stored[0] == head
