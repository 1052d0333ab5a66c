"""Catching up on dense blocks (hundreds of declarations each) on a real Hardhat node: the
follower hands the ranges to its worker process (registry.index.logreader) and the store ends
up equal to the chain, on both backends, also when the worker dies half-way."""

from __future__ import annotations

from typing import Any

import pytest
from chain_truth import chain_declarations, store_declarations, store_events
from sqlalchemy import func, select

from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import Devnet, deploy_registry, dev_account
from registry.chain.loadgen import declare_many
from registry.index import logreader as logreader_module
from registry.index import ranges as ranges_module
from registry.index.logreader import LogReader, Logs
from registry.ledger.indexer import Indexer
from registry.store.schema import conflict_queue
from registry.store.store import Store

pytestmark = pytest.mark.chain

# ~500 declarations per block. With ranges cut to ~1,000 logs, the first ranges (2 blocks each,
# asked for before any answer) are read in-process and show the blocks are dense; the rest go
# to the workers.
DECLARATIONS = 4000


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges_module, "FIRST_RANGE", 2)
    monkeypatch.setattr(ranges_module, "BATCH_LOGS", 1000)
    monkeypatch.setattr(ranges_module, "DENSE_LOGS", 500)


@pytest.fixture(scope="module")
def dense(devnet: Devnet) -> tuple[Registry, list[Any]]:
    registry = Registry.open(Deployment.load(devnet.deployment_path))
    deployment = deploy_registry(registry.w3, dev_account(0))
    declare_many(devnet.rpc_url, deployment, DECLARATIONS)
    registry = Registry.open(deployment)
    return registry, chain_declarations(registry)


def _watch_workers(follower: Indexer, kill_after: int | None = None) -> list[int]:
    """Log counts of the ranges the worker processes read, in order; kills each worker's
    process after `kill_after` ranges of its own."""
    counts: list[int] = []
    assert len(follower.ranges.workers) == ranges_module.READ_AHEAD, "an HTTP node gets workers"
    for worker in follower.ranges.workers:
        _watch(worker, counts, kill_after)
    return counts


def _watch(worker: LogReader, counts: list[int], kill_after: int | None) -> None:
    read = worker.read
    own: list[int] = []

    def watched(query: dict[str, Any]) -> Logs:
        answer = read(query)
        counts.append(answer.count)
        own.append(answer.count)
        if len(own) == kill_after and worker._process is not None:
            worker._process.kill()
        return answer

    worker.read = watched  # type: ignore[method-assign]


def test_dense_ranges_go_through_the_worker(dense: tuple[Registry, list[Any]], db_url: str) -> None:
    registry, truth = dense
    assert len(truth) == DECLARATIONS
    with Store.open(db_url) as store:
        follower = Indexer(registry, store)
        by_worker = _watch_workers(follower)
        report = follower.sync()
        assert report.events_new == DECLARATIONS
        # The ranges asked for before the first answer showed dense blocks are read in-process.
        in_process = DECLARATIONS - sum(by_worker)
        assert len(by_worker) >= 2 and in_process <= 1000 * ranges_module.READ_AHEAD
        contract = registry.contract.address
        assert store_declarations(store, contract) == truth
        assert len(set(store_events(store, contract))) == DECLARATIONS
        assert Indexer(registry, store).sync().events_new == 0


def test_a_dying_worker_hands_back_to_the_follower(
    dense: tuple[Registry, list[Any]], sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, truth = dense
    # Ranges of one dense block each, so ranges are left for the workers after their first
    # answers whatever the chain's first blocks hold (the licence ledger's deployment moved
    # them by a block, and with two-block ranges the workers' first answers ended the chain).
    monkeypatch.setattr(ranges_module, "BATCH_LOGS", 500)
    monkeypatch.setattr(ranges_module, "DENSE_LOGS", 250)
    follower = Indexer(registry, sqlite_store)
    by_worker = _watch_workers(follower, kill_after=1)
    report = follower.sync()
    # Each worker answered once and died; one asked again failed and was dropped, and the
    # follower read that range itself.
    assert len(by_worker) == ranges_module.READ_AHEAD
    assert len(follower.ranges.workers) < ranges_module.READ_AHEAD
    assert report.events_new == DECLARATIONS
    assert store_declarations(sqlite_store, registry.contract.address) == truth


def test_workers_that_cannot_start_leave_the_reading_to_the_follower(
    dense: tuple[Registry, list[Any]], sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, truth = dense

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(logreader_module.subprocess, "Popen", refuse)
    follower = Indexer(registry, sqlite_store)
    assert follower.sync().events_new == DECLARATIONS
    assert follower.ranges.workers == []
    assert store_declarations(sqlite_store, registry.contract.address) == truth


def test_a_large_backlog_defers_the_lookup_indexes_until_its_end(
    dense: tuple[Registry, list[Any]], db_url: str
) -> None:
    registry, truth = dense
    with Store.open(db_url) as store:
        deferred: list[bool] = []
        # The whole backlog is 4,000 events: above 1,000 it defers, above 5,000 it does not.
        for threshold, expected in ((5000, False), (1000, True)):
            store.forget(registry.deployment.chain_id, registry.contract.address)
            deferred.clear()
            follower = Indexer(registry, store, defer_lookups_after=threshold)
            report = follower.sync(lambda _: deferred.append(store.lookups_deferred()))
            assert report.events_new == DECLARATIONS
            assert any(deferred) is expected and (report.index_seconds > 0) is expected
            assert not store.lookups_deferred()
            assert store_declarations(store, registry.contract.address) == truth
        # Conflict detection waited for the indexes and then worked through the whole queue.
        assert deferred[-1] and report.detect_seconds > 0
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(conflict_queue)).scalar() == 0


def test_the_workers_start_with_a_sync_that_has_ranges_ahead(
    dense: tuple[Registry, list[Any]], sqlite_store: Store
) -> None:
    registry, _truth = dense
    follower = Indexer(registry, sqlite_store)
    running: list[list[int]] = []
    follower.sync(lambda _: running.append(follower.reader_pids))
    # The first range was read in-process (not yet known to be dense) while both workers
    # started, and they stopped with the sync.
    assert len(running[0]) == ranges_module.READ_AHEAD
    assert follower.reader_pids == []
    # One new block, for an indexer that has not seen dense blocks: nothing ahead that a
    # worker could read.
    registry.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    running.clear()
    restarted = Indexer(registry, sqlite_store)
    assert restarted.sync(lambda _: running.append(restarted.reader_pids)).blocks == 1
    assert running == [[]]
