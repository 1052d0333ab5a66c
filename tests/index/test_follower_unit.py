"""The follower against a scripted fake node: range halving, confirmations, reorgs, failures,
backoff (fast; the real-node tests are in test_follower_chain.py)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from index_helpers import content, make_log
from sqlalchemy import func, select

from registry.chain.deployment import Deployment
from registry.chain.iscc_id import IsccId
from registry.errors import ChainUnavailable
from registry.index import follower as follower_module
from registry.index import ranges as ranges_module
from registry.index.follower import SyncReport
from registry.ledger.indexer import Indexer
from registry.store.schema import conflict_queue, declarations
from registry.store.store import Store

CONTRACT = "0x" + "5a" * 20


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    """Indexer logic does not depend on the backend; the real-node tests cover both."""
    return sqlite_store


class FakeNode:
    """A raw JSON-RPC node with blocks 0..head; one Declared log in every block in `declared`.

    `fork` changes the hashes of blocks from a number on, as a reorg does.
    """

    def __init__(self, head: int, declared: list[int], limit: int | None = None) -> None:
        self.head = head
        self.limit = limit
        self.down = False
        self.forks: dict[int, int] = {}
        self.queries: list[tuple[int, int]] = []
        self.declared = declared
        self.item = content(b"fake node" * 100)

    def fork(self, from_block: int) -> None:
        """Every block from `from_block` on gets a new hash (and its log a new ISCC-ID)."""
        self.forks[from_block] = len(self.forks) + 1

    def _generation(self, n: int) -> int:
        return sum(g for start, g in self.forks.items() if n >= start)

    def block_hash(self, n: int) -> bytes:
        return (n + 0xB000 + (self._generation(n) << 20)).to_bytes(32, "big")

    def _log(self, n: int) -> dict[str, Any]:
        return make_log(
            self.item["raw"],
            self.item["digest"],
            iscc_id_body=(1_700_000_000_000_000 + n + (self._generation(n) << 16)) << 12,
            block_number=n,
            block_hash=self.block_hash(n),
            tx_hash=self.block_hash(n),
        )

    def make_request(self, method: str, params: list[Any]) -> dict[str, Any]:
        if self.down:
            raise requests.ConnectionError("connection refused")
        if method == "eth_blockNumber":
            return {"result": hex(self.head)}
        if method == "eth_getBlockByNumber":
            n = int(params[0], 16)
            if n > self.head:
                return {"result": None}
            parent = self.block_hash(n - 1) if n else bytes(32)
            return {"result": {"hash": self.block_hash(n), "parentHash": parent}}
        assert method == "eth_getLogs"
        low, high = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        self.queries.append((low, high))
        if self.limit is not None and high - low + 1 > self.limit:
            return {"error": {"code": -32005, "message": "query returned more than 10000 results"}}
        return {"result": [self._log(n) for n in self.declared if low <= n <= high]}


def fake_registry(node: FakeNode, first_block: int = 3) -> Any:
    deployment = Deployment(
        chain_id=999, address=CONTRACT, block=first_block, rpc_url="fake://", realm=0, hub_id=0
    )
    return SimpleNamespace(
        w3=SimpleNamespace(provider=node),
        contract=SimpleNamespace(address=CONTRACT),
        deployment=deployment,
    )


def test_sync_from_deployment_block_to_head(store: Store) -> None:
    node = FakeNode(head=30, declared=[2, 3, 10, 30])
    report = Indexer(fake_registry(node), store, max_range=8).sync()
    assert (report.from_block, report.to_block) == (3, 30)
    assert (report.events_seen, report.events_new) == (3, 3)  # block 2 predates the deployment
    assert store.checkpoint(999, CONTRACT) == 30
    assert all(high - low < 8 for low, high in node.queries)
    again = Indexer(fake_registry(node), store).sync()
    assert (again.from_block, again.to_block, again.events_seen) == (31, 30, 0)
    assert again.blocks == 0


def test_conflict_detection_is_timed_apart_from_indexing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = FakeNode(head=30, declared=[3, 10, 30])
    follower = Indexer(fake_registry(node), store, max_range=8)
    queued: list[int] = []
    real_run = follower.conflicts.run

    def slow_run() -> int:
        with store.engine.connect() as conn:
            queued.append(conn.execute(select(func.count()).select_from(conflict_queue)).scalar())
        time.sleep(0.2)
        return real_run()

    monkeypatch.setattr(follower.conflicts, "run", slow_run)
    report = follower.sync()
    # Detection ran once, after the last range, on everything the sync stored.
    assert queued == [3] and 0.2 <= report.detect_seconds < report.seconds
    indexing = report.seconds - report.detect_seconds
    assert report.events_per_second == pytest.approx(3 / indexing)
    assert report.to_dict()["detect_seconds"] == round(report.detect_seconds, 3)


def test_confirmations_hold_back_recent_blocks(store: Store) -> None:
    node = FakeNode(head=20, declared=[5, 18, 20])
    report = Indexer(fake_registry(node), store, confirmations=3).sync()
    assert report.to_block == 17 and report.events_new == 1
    node.head = 23
    assert Indexer(fake_registry(node), store, confirmations=3).sync().events_new == 2


def test_range_halves_when_the_node_refuses_and_grows_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = FakeNode(head=200, declared=list(range(3, 201, 7)), limit=10)
    follower = Indexer(fake_registry(node), store, max_range=64)
    progress: list[SyncReport] = []
    report = follower.sync(on_progress=progress.append)
    assert report.events_new == len(range(3, 201, 7))
    assert store.count() == report.events_new
    accepted = [(lo, hi) for lo, hi in node.queries if hi - lo + 1 <= 10]
    covered = sorted({n for lo, hi in accepted for n in range(lo, hi + 1)})
    assert covered == list(range(3, 201))
    assert progress[-1].to_block == 200 and progress[-1].events_new == report.events_new
    # Once the node accepts again, fast answers let the range grow back to max_range.
    node.limit = None
    node.head = 600
    node.queries.clear()
    follower.sync()
    assert max(hi - lo + 1 for lo, hi in node.queries) == 64


def test_dense_blocks_narrow_the_range_to_bounded_batches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ranges_module, "BATCH_LOGS", 10)
    monkeypatch.setattr(ranges_module, "FIRST_RANGE", 64)
    node = FakeNode(head=200, declared=list(range(3, 201)))  # a log in every block
    sizes: list[int] = []
    report = Indexer(fake_registry(node), store, max_range=64).sync(
        on_progress=lambda r: sizes.append(r.events_new)
    )
    assert report.events_new == 198 and store.count() == 198
    # Only ranges asked for before the first answer came (read ahead) can have 64 blocks, with
    # 64 logs too many; all later ones are narrowed.
    wide = [(lo, hi) for lo, hi in sorted(node.queries) if hi - lo + 1 > 10]
    assert wide[0] == (3, 66) and len(wide) <= ranges_module.READ_AHEAD
    assert max(b - a for a, b in itertools.pairwise([0, *sizes])) <= 64


def test_node_refusing_a_single_block_is_chain_unavailable(store: Store) -> None:
    node = FakeNode(head=10, declared=[], limit=0)  # refuses every range, even one block
    with pytest.raises(ChainUnavailable, match="single block"):
        Indexer(fake_registry(node), store).sync()


def test_rpc_failure_raises_chain_unavailable_and_keeps_progress(store: Store) -> None:
    node = FakeNode(head=50, declared=[4, 40], limit=None)
    follower = Indexer(fake_registry(node), store, max_range=10)
    calls = 0
    real = node.make_request

    def flaky(method: str, params: list[Any]) -> dict[str, Any]:
        nonlocal calls
        calls += method == "eth_getLogs"
        if method == "eth_getLogs" and calls == 3:
            raise requests.ConnectionError("reset by peer")
        return real(method, params)

    node.make_request = flaky  # type: ignore[method-assign]
    with pytest.raises(ChainUnavailable, match="eth_getLogs"):
        follower.sync()
    assert store.checkpoint(999, CONTRACT) == 22  # two ranges of 10 from block 3 were applied
    assert follower.sync().events_new == 1
    assert store.count() == 2


def test_node_errors_other_than_size_are_chain_unavailable(store: Store) -> None:
    node = FakeNode(head=10, declared=[5])
    real = node.make_request
    node.make_request = lambda m, p: (  # type: ignore[method-assign]
        {"error": {"code": -32000, "message": "header not found"}}
        if m == "eth_getLogs"
        else real(m, p)
    )
    with pytest.raises(ChainUnavailable, match="header not found"):
        Indexer(fake_registry(node), store).sync()


def _chain_ids(node: FakeNode, upto: int, first_block: int = 3) -> list[str]:
    decoded = [node._log(n) for n in node.declared if first_block <= n <= upto]
    return [str(IsccId(int.from_bytes(log["topics"][1], "big"), 0)) for log in decoded]


def _stored_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(declarations.c.iscc_id).order_by(declarations.c.block_number)
        ).scalars()
        return list(rows)


@pytest.mark.parametrize("depth", [1, 3, 10, 40])
def test_reorg_rolls_back_to_the_common_ancestor_and_replays(store: Store, depth: int) -> None:
    node = FakeNode(head=100, declared=list(range(3, 101, 2)))
    follower = Indexer(fake_registry(node), store, max_range=16)
    follower.sync()
    node.fork(101 - depth)
    node.head = 100 + (depth % 2)  # the new branch may be longer or as long
    report = follower.sync()
    removed = len([n for n in node.declared if n >= 101 - depth and n <= 100])
    assert report.events_rolled_back == removed
    assert _stored_ids(store) == _chain_ids(node, node.head)
    assert store.checkpoint_block(999, CONTRACT) == (node.head, node.block_hash(node.head))


def test_reorg_to_a_shorter_chain_is_detected_at_the_checkpoint(store: Store) -> None:
    node = FakeNode(head=60, declared=[10, 50, 55, 60])
    follower = Indexer(fake_registry(node), store)
    follower.sync()
    node.fork(52)
    node.head = 53
    report = follower.sync()
    assert report.events_rolled_back == 2 and report.to_block == 53
    assert _stored_ids(store) == _chain_ids(node, 53)


def test_reorg_while_a_range_is_read_is_caught_by_the_parent_hash(store: Store) -> None:
    node = FakeNode(head=40, declared=list(range(3, 41)))
    follower = Indexer(fake_registry(node), store, max_range=10)
    real = node.make_request
    ranges = 0

    def forking(method: str, params: list[Any]) -> dict[str, Any]:
        nonlocal ranges
        answer = real(method, params)
        if method == "eth_getLogs":
            ranges += 1
            if ranges == 2:
                node.fork(8)  # blocks 8.. change after range 3-12 was read, before it is stored
        return answer

    node.make_request = forking  # type: ignore[method-assign]
    follower.sync()
    assert _stored_ids(store) == _chain_ids(node, 40)


def test_ancestor_search_does_not_overshoot_the_oldest_record(store: Store) -> None:
    node = FakeNode(head=16, declared=list(range(5, 17)))
    follower = Indexer(fake_registry(node), store)
    follower.sync()
    node.fork(7)
    assert follower._common_ancestor(16) == (6, node.block_hash(6))
    assert follower.sync().events_rolled_back == 10
    assert _stored_ids(store) == _chain_ids(node, 16)


def test_a_node_contradicting_itself_is_chain_unavailable_not_a_loop(store: Store) -> None:
    node = FakeNode(head=20, declared=[5, 15])
    follower = Indexer(fake_registry(node), store, max_range=1)
    follower.sync()
    node.head = 25
    real = node.make_request

    def orphan_22(method: str, params: list[Any]) -> dict[str, Any]:
        answer = real(method, params)
        if method == "eth_getBlockByNumber" and params[0] == hex(22):
            answer["result"]["parentHash"] = bytes(32)  # as Hardhat's hardhat_mine blocks do
        return answer

    node.make_request = orphan_22  # type: ignore[method-assign]
    with pytest.raises(ChainUnavailable, match="does not continue its block 21"):
        follower.sync()
    assert store.checkpoint(999, CONTRACT) == 21 and store.count() == 2


def test_a_replaced_chain_is_reindexed_from_the_deployment(store: Store) -> None:
    node = FakeNode(head=30, declared=[3, 10, 20])
    follower = Indexer(fake_registry(node), store)
    follower.sync()
    node.fork(0)  # e.g. a restarted devnet: same chain id and contract, all new blocks
    report = follower.sync()
    assert report.events_rolled_back == 3 and report.from_block == 3
    assert _stored_ids(store) == _chain_ids(node, 30)


def test_common_ancestor_search_is_logarithmic(store: Store) -> None:
    node = FakeNode(head=2000, declared=list(range(3, 2001)))
    follower = Indexer(fake_registry(node), store)
    follower.sync()
    node.fork(1234)
    real = node.make_request
    headers = 0

    def counting(method: str, params: list[Any]) -> dict[str, Any]:
        nonlocal headers
        headers += method == "eth_getBlockByNumber"
        return real(method, params)

    node.make_request = counting  # type: ignore[method-assign]
    assert follower._common_ancestor(2000) == (1233, node.block_hash(1233))
    assert headers <= 2 * 11 + 2  # galloping and bisecting over 2^11 blocks


def test_follow_backs_off_while_the_node_is_down(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    node = FakeNode(head=10, declared=[5])
    node.down = True
    waits: list[float] = []
    stop = threading.Event()
    real_wait = stop.wait

    def recording_wait(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        if len(waits) == 5:
            node.down = False
        if len(waits) >= 7:
            stop.set()
        return real_wait(0)

    monkeypatch.setattr(follower_module, "MAX_BACKOFF_S", 0.4)
    stop.wait = recording_wait  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="registry.index.follower"):
        Indexer(fake_registry(node), store).follow(stop, poll_interval=0.05)
    assert waits[:5] == [0.1, 0.2, 0.4, 0.4, 0.4]  # doubling, capped
    assert waits[5:] == [0.05, 0.05]  # back to polling once the node answers
    assert "retrying" in caplog.text
    assert store.count() == 1


def test_follow_picks_up_new_blocks_until_stopped(store: Store) -> None:
    node = FakeNode(head=10, declared=[5, 12])
    stop = threading.Event()
    thread = threading.Thread(
        target=Indexer(fake_registry(node), store).follow, args=(stop, 0.01), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 5
    while store.count() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    node.head = 12
    while store.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert store.count() == 2
