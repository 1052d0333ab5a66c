"""Indexing real declarations from a Hardhat devnet into SQLite and PostgreSQL, resolving them."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from index_helpers import content, declare_direct, declare_signed

from registry.chain.contract import Registry
from registry.chain.iscc_id import IsccId
from registry.ledger.indexer import Indexer
from registry.search.resolve import resolve
from registry.store.schema import events
from registry.store.store import Store

pytestmark = pytest.mark.chain


def _minted(registry: Registry, receipt: dict) -> str:
    """The ISCC-ID of a receipt, decoded by web3 (independently of the indexer's decoder)."""
    (log,) = registry.contract.events.Declared().process_receipt(receipt)
    return str(IsccId(log["args"]["isccId"], registry.deployment.realm))


@pytest.fixture
def declared(registry: Registry, payer: LocalAccount, declarer: LocalAccount) -> dict:
    """Five valid declarations (three direct by the payer, two signed by the declarer) and one
    whose datahash contradicts its Instance-Code."""
    items = [content(f"item {i} ".encode() * 60, name=f"Item {i}") for i in range(5)]
    receipts = [
        declare_direct(registry, payer, items[0], metahash=b"\x11" * 32, gateway="https://a.b"),
        declare_signed(registry, declarer, payer, items[1], nonce=1, gateway="ipfs://{iscc_id}"),
        declare_direct(registry, payer, items[2]),
        declare_signed(registry, declarer, payer, items[3], nonce=2),
        declare_direct(registry, payer, items[4]),
    ]
    liar = content(b"some other file" * 40)
    bad = declare_direct(registry, payer, items[0], datahash=liar["digest"])
    return {
        "items": items,
        "ids": [_minted(registry, r) for r in receipts],
        "bad_id": _minted(registry, bad),
        "receipts": [*receipts, bad],
    }


def _snapshot(store: Store, ids: list[str]) -> list[dict]:
    return [r.to_dict() for i in ids for r in store.by_iscc_id(i)]


def test_sync_indexes_direct_and_signed_declarations(
    registry: Registry, payer: LocalAccount, declarer: LocalAccount, declared: dict, store: Store
) -> None:
    report = Indexer(registry, store).sync()
    head = registry.w3.eth.block_number
    assert (report.from_block, report.to_block) == (registry.deployment.block, head)
    assert (report.events_seen, report.events_new) == (6, 6)
    assert store.checkpoint(registry.deployment.chain_id, registry.contract.address) == head
    assert store.count() == 6

    by_payer = store.by_declarer(payer.address)
    by_declarer = store.by_declarer(declarer.address)
    assert [r.iscc_id for r in by_payer] == [*declared["ids"][0:5:2], declared["bad_id"]]
    assert [r.iscc_id for r in by_declarer] == declared["ids"][1:4:2]

    first = store.by_iscc_id(declared["ids"][0])[0]
    receipt = declared["receipts"][0]
    assert first.valid and first.iscc_code == declared["items"][0]["iscc"]
    assert first.metahash == b"\x11" * 32 and first.gateway == "https://a.b"
    assert first.block_number == receipt["blockNumber"]
    assert first.tx_hash == bytes(receipt["transactionHash"])
    assert first.block_hash == bytes(receipt["blockHash"])
    assert first.contract == registry.contract.address
    assert store.by_iscc_id(declared["ids"][2])[0].metahash is None
    assert store.by_iscc_id(declared["ids"][1])[0].gateway == "ipfs://{iscc_id}"


def test_invalid_declaration_is_stored_as_invalid(
    registry: Registry, declared: dict, store: Store
) -> None:
    Indexer(registry, store).sync()
    (bad,) = store.by_iscc_id(declared["bad_id"])
    assert not bad.valid
    assert "Instance-Code" in bad.invalid_reason
    assert bad.iscc_code == declared["items"][0]["iscc"]
    # The same ISCC-CODE now has a valid and an invalid declaration, in chain order.
    records = store.by_iscc_code(declared["items"][0]["iscc"])
    assert [(r.iscc_id, r.valid) for r in records] == [
        (declared["ids"][0], True),
        (declared["bad_id"], False),
    ]


def test_syncing_twice_stores_nothing_twice(
    registry: Registry, declared: dict, store: Store
) -> None:
    Indexer(registry, store).sync()
    before = _snapshot(store, declared["ids"])
    again = Indexer(registry, store).sync()
    assert again.events_new == 0
    assert store.count() == 6
    with store.engine.connect() as conn:
        assert len(conn.execute(events.select()).all()) == 6
    assert _snapshot(store, declared["ids"]) == before


def test_tiny_ranges_give_the_same_result(
    registry: Registry, declared: dict, store: Store, tmp_path: Path
) -> None:
    Indexer(registry, store).sync()
    with Store.open(f"sqlite:///{tmp_path / 'tiny.db'}") as tiny:
        ranges: list[int] = []
        report = Indexer(registry, tiny, max_range=1).sync(
            on_progress=lambda r: ranges.append(r.to_block)
        )
        assert report.events_new == 6
        assert ranges == list(range(report.from_block, report.to_block + 1))
        all_ids = [*declared["ids"], declared["bad_id"]]
        assert _snapshot(tiny, all_ids) == _snapshot(store, all_ids)
    with Store.open(f"sqlite:///{tmp_path / 'two.db'}") as two:
        Indexer(registry, two, max_range=2).sync()
        assert _snapshot(two, all_ids) == _snapshot(store, all_ids)


def test_a_new_store_on_the_same_database_continues_from_the_checkpoint(
    registry: Registry, payer: LocalAccount, declared: dict, db_url: str
) -> None:
    with Store.open(db_url) as first:
        report = Indexer(registry, first).sync()
    more = content(b"declared later" * 50)
    receipt = declare_direct(registry, payer, more)
    with Store.open(db_url) as second:
        resumed = Indexer(registry, second).sync()
        assert resumed.from_block == report.to_block + 1
        assert (resumed.events_seen, resumed.events_new) == (1, 1)
        assert second.count() == 7
        assert second.by_iscc_id(_minted(registry, receipt))[0].iscc_code == more["iscc"]


def test_confirmations_leave_the_newest_blocks_for_later(
    registry: Registry, declared: dict, store: Store
) -> None:
    report = Indexer(registry, store, confirmations=2).sync()
    assert report.to_block == registry.w3.eth.block_number - 2
    assert store.count() == 4  # the last two declarations are in the last two blocks
    registry.w3.provider.make_request("hardhat_mine", ["0x2"])
    assert Indexer(registry, store, confirmations=2).sync().events_new == 2


def test_resolve_each_kind_of_query(
    registry: Registry, payer: LocalAccount, declarer: LocalAccount, declared: dict, store: Store
) -> None:
    Indexer(registry, store).sync()
    item, iscc_id = declared["items"][3], declared["ids"][3]
    assert IsccId.parse(iscc_id).realm == registry.deployment.realm

    by_id = resolve(store, iscc_id.lower())
    assert (by_id.kind, by_id.query) == ("iscc-id", iscc_id)
    assert [r.declarer for r in by_id.records] == [declarer.address]

    by_code = resolve(store, item["iscc"])
    assert by_code.kind == "iscc-code"
    assert [r.iscc_id for r in by_code.records] == [iscc_id]

    by_hash = resolve(store, "0x" + item["digest"].hex())
    assert (by_hash.kind, by_hash.query) == ("datahash", item["datahash"])
    assert [r.iscc_id for r in by_hash.records] == [iscc_id]

    by_declarer = resolve(store, declarer.address.lower())
    assert by_declarer.kind == "declarer"
    assert [r.iscc_id for r in by_declarer.records] == [declared["ids"][1], iscc_id]
    assert len(resolve(store, payer.address).records) == 4
