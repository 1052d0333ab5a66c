"""Reorgs and node restarts on a real Hardhat node, on both backends: the store must end equal to
the canonical chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chain_truth import chain_declarations, store_declarations, store_tables
from eth_account.signers.local import LocalAccount
from index_helpers import content, declare_direct

from registry.chain.contract import Registry
from registry.chain.devnet import Devnet, dev_account, free_port
from registry.config import PROJECT_ROOT
from registry.index import follower as follower_module
from registry.ledger.indexer import Indexer
from registry.store.store import Store

pytestmark = pytest.mark.chain


def _declare(registry: Registry, payer: LocalAccount, tag: str, count: int) -> None:
    for i in range(count):
        declare_direct(registry, payer, content(f"{tag} {i} ".encode() * 40))


def _rpc(registry: Registry, method: str, *params: object) -> object:
    return registry.w3.provider.make_request(method, list(params))["result"]


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_reorg_leaves_the_store_equal_to_the_canonical_chain(
    registry: Registry, payer: LocalAccount, store: Store, tmp_path: Path, depth: int
) -> None:
    _declare(registry, payer, "common", 2)
    snapshot = _rpc(registry, "evm_snapshot")
    # The branch the indexer sees first: `depth` blocks, one declaration each.
    _declare(registry, payer, "old branch", depth)
    follower = Indexer(registry, store)
    follower.sync()
    contract = registry.contract.address
    assert store_declarations(store, contract) == chain_declarations(registry)
    old_head = registry.w3.eth.block_number

    # The canonical branch replaces those blocks with other transactions and grows longer.
    assert _rpc(registry, "evm_revert", snapshot) is True
    _declare(registry, payer, "new branch", depth + 1)
    assert registry.w3.eth.block_number == old_head + 1
    report = follower.sync()

    assert report.events_rolled_back == depth
    truth = chain_declarations(registry)
    assert len(truth) == 2 + depth + 1
    assert store_declarations(store, contract) == truth
    # Byte for byte what a fresh index of the canonical chain holds.
    with Store.open(f"sqlite:///{tmp_path / 'fresh.db'}") as fresh:
        Indexer(registry, fresh).sync()
        assert store_tables(store, contract) == store_tables(fresh, contract)
    assert follower.sync().events_new == 0  # and indexing again changes nothing


def test_reorg_to_a_shorter_branch_is_rolled_back(
    registry: Registry, payer: LocalAccount, store: Store
) -> None:
    _declare(registry, payer, "kept", 1)
    snapshot = _rpc(registry, "evm_snapshot")
    _declare(registry, payer, "dropped", 4)
    follower = Indexer(registry, store)
    follower.sync()
    assert _rpc(registry, "evm_revert", snapshot) is True
    _declare(registry, payer, "replacement", 1)
    report = follower.sync()
    assert report.events_rolled_back == 4
    assert report.to_block == registry.w3.eth.block_number
    assert store_declarations(store, registry.contract.address) == chain_declarations(registry)


@pytest.fixture(scope="module")
def own_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """A node of these tests' own, which they stop and start (the session's node must live)."""
    net = Devnet(tmp_path_factory.mktemp("own-devnet"), free_port(), PROJECT_ROOT)
    net.start()
    yield net
    net.stop()


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_follow_survives_stopping_and_restarting_the_node(
    own_devnet: Devnet, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted Hardhat node is a new chain at the same chain id, with the registry at the
    same address: the follower must wait out the outage, then replace what it had indexed."""
    from registry.chain.deployment import Deployment

    monkeypatch.setattr(follower_module, "MAX_BACKOFF_S", 0.5)
    registry = Registry.open(Deployment.load(own_devnet.deployment_path))
    payer = dev_account(1)
    _declare(registry, payer, "before the restart", 3)
    contract = registry.contract.address
    with Store.open(db_url) as store:
        stop = threading.Event()
        follower = Indexer(registry, store)
        thread = threading.Thread(target=follower.follow, args=(stop, 0.05), daemon=True)
        thread.start()
        try:
            before = chain_declarations(registry)
            _wait_for(lambda: store_declarations(store, contract) == before, 30, "first index")

            assert own_devnet.stop()
            time.sleep(0.5)  # the follower now meets a refused connection, and backs off
            assert thread.is_alive()
            restarted = own_devnet.start()
            assert restarted.address == registry.deployment.address
            _declare(registry, payer, "after the restart", 2)
            after = chain_declarations(registry)
            assert len(after) == 2 and not set(after) & set(before)
            _wait_for(lambda: store_declarations(store, contract) == after, 30, "re-index")
        finally:
            stop.set()
            thread.join(10)
        assert not thread.is_alive()
        assert store.checkpoint(registry.deployment.chain_id, contract) is not None
