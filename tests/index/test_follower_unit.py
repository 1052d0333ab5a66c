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
from registry.index.follower import Follower
from registry.index.report import SyncReport
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
    real = node.make_request
    failed = threading.Event()

    # The third range, once, by its blocks rather than as the third call: ranges are read
    # ahead on threads, so calls arrive in any order (failing "the third call" failed 1 run
    # in 6).
    def flaky(method: str, params: list[Any]) -> dict[str, Any]:
        third = method == "eth_getLogs" and int(params[0]["fromBlock"], 16) == 23
        if third and not failed.is_set():
            failed.set()
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
    """Range 3-12 is read whole on the old chain (its own re-check of block 12 included), then
    the chain forks at 8 and range 13-22 is read whole on the new one: each range is consistent
    in itself, and only the parent hash of 13 against the hash of 12 shows the fork."""
    node = FakeNode(head=40, declared=list(range(3, 41)))
    follower = Indexer(fake_registry(node), store, max_range=10)
    real = node.make_request
    forked = threading.Event()
    twelve_read = 0

    def block_of(method: str, params: list[Any]) -> int:
        return int(params[0] if method == "eth_getBlockByNumber" else params[0]["fromBlock"], 16)

    def forking(method: str, params: list[Any]) -> dict[str, Any]:
        nonlocal twelve_read
        if method != "eth_blockNumber" and block_of(method, params) > 12 and not forked.is_set():
            # The range after 3-12 is read ahead in another thread: it waits for the fork.
            assert forked.wait(60), "range 3-12 was never read to its end"
        answer = real(method, params)
        if method == "eth_getBlockByNumber" and block_of(method, params) == 12:
            twelve_read += 1
            if twelve_read == 2:  # range 3-12's check that its end did not change
                node.fork(8)
                forked.set()
        return answer

    node.make_request = forking  # type: ignore[method-assign]
    report = follower.sync()
    assert forked.is_set()
    assert report.events_rolled_back == 5  # blocks 8-12 of the old chain
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
    # A plain Follower, without the ledger's conflict detection after the sync: the fake node's
    # 1,998 declarations are one file by one declarer, which detection would pair each with
    # every other (~4M pairs, a minute and a half) only to drop them all as the declarer's own.
    follower = Follower(fake_registry(node), store)
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
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    node = FakeNode(head=10, declared=[5])
    node.down = True
    waits: list[float] = []
    stop = threading.Event()
    real_wait = stop.wait

    def recording_wait(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        if len(waits) == 12:
            node.down = False
        if len(waits) >= 14:
            stop.set()
        return real_wait(0)

    stop.wait = recording_wait  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="registry.index.follower"):
        Indexer(fake_registry(node), store).follow(stop, poll_interval=0.05)
    down = waits[:12]
    # Doubling from 0.1 s, each delay drawn from the upper half of its step, capped at a few
    # seconds: a node that is back is found within MAX_BACKOFF_S, not after a minute.
    ceilings = [min(follower_module.MAX_BACKOFF_S, 0.1 * 2**i) for i in range(12)]
    assert all(c / 2 <= w <= c for w, c in zip(down, ceilings, strict=True))
    assert max(down) <= follower_module.MAX_BACKOFF_S <= 5
    assert len(set(down[-4:])) == 4  # jittered: capped delays still differ
    assert waits[12:] == [0.05, 0.05]  # back to polling once the node answers
    assert "retrying" in caplog.text
    assert store.count() == 1


class _RecordingStop(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


def _http_429(retry_after: str | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError("429 Client Error: Too Many Requests", response=response)


def test_a_rate_limited_node_gets_smaller_ranges_less_often(store: Store) -> None:
    node = FakeNode(head=200, declared=list(range(3, 201, 7)))
    real = node.make_request
    calls = 0

    def limited(method: str, params: list[Any]) -> dict[str, Any]:
        nonlocal calls
        if method == "eth_getLogs":
            calls += 1
            if calls in (2, 3):
                raise _http_429("1")  # with the server's Retry-After
            if calls == 5:
                return {"error": {"code": -32005, "message": "daily request rate exceeded"}}
        if method == "eth_blockNumber" and calls == 0 and not getattr(limited, "told", False):
            limited.told = True  # type: ignore[attr-defined]
            raise _http_429()  # retried in place, with backoff
        return real(method, params)

    node.make_request = limited  # type: ignore[method-assign]
    follower = Indexer(fake_registry(node), store, max_range=64)
    stop = _RecordingStop()
    follower.ranges.size = 64
    report = follower.sync(stop=stop)
    assert _stored_ids(store) == _chain_ids(node, 200)
    assert report.to_block == 200
    # A wait per refusal taken (two reads run ahead, a refused one behind a refused one is
    # dropped unread), at least the server's Retry-After for a 429 that said so, all capped.
    assert 1 <= len(stop.waits) <= 3 and max(stop.waits) >= 1.0
    assert all(w <= follower_module.MAX_BACKOFF_S for w in stop.waits)
    sizes = [high - low + 1 for low, high in node.queries]
    assert sizes[0] == 64 and min(sizes) < 64  # the range shrank after the 429s


def test_rate_limited_single_block_ranges_wait_rather_than_fail(store: Store) -> None:
    node = FakeNode(head=5, declared=[4])
    real = node.make_request
    refusals = 0

    def limited(method: str, params: list[Any]) -> dict[str, Any]:
        nonlocal refusals
        if method == "eth_getLogs" and refusals < 4:
            refusals += 1
            raise _http_429()
        return real(method, params)

    node.make_request = limited  # type: ignore[method-assign]
    follower = Indexer(fake_registry(node), store, max_range=1)
    stop = _RecordingStop()
    assert follower.sync(stop=stop).events_new == 1
    assert 1 <= len(stop.waits) <= 4  # reads ahead of a refused one are dropped unread


def test_a_head_read_before_a_reorg_to_a_shorter_chain_rolls_back_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The chaos run logged "rolled back to block 125" twice, the second time with 0 events:
    the sync kept the head it read before the rollback, so it asked the shorter chain for
    blocks it no longer had, and took their absence for a second reorg."""
    node = FakeNode(head=60, declared=[10, 50, 55, 60])
    follower = Indexer(fake_registry(node), store, max_range=4)
    follower.sync()
    real = node.make_request
    heads = 0

    def switching(method: str, params: list[Any]) -> dict[str, Any]:
        nonlocal heads
        answer = real(method, params)
        if method == "eth_blockNumber":
            heads += 1
            if heads == 1:  # the node answers the old head, then switches to a shorter chain
                node.fork(52)
                node.head = 53
        return answer

    node.make_request = switching  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="registry.index.follower"):
        report = follower.sync()
    assert report.events_rolled_back == 2 and report.to_block == 53
    assert _stored_ids(store) == _chain_ids(node, 53)
    assert caplog.text.count("rolled back") == 1, caplog.text


def test_logs_are_read_from_the_node_the_connection_uses(store: Store) -> None:
    node = FakeNode(head=10, declared=[5])
    node.endpoint_uri = "http://the-configured-node:8545"  # type: ignore[attr-defined]
    follower = Indexer(fake_registry(node), store)  # the deployment file says "fake://"
    assert follower.node.url == "http://the-configured-node:8545"


def test_follow_picks_up_new_blocks_until_stopped(store: Store) -> None:
    node = FakeNode(head=10, declared=[5, 12])
    stop = threading.Event()
    thread = threading.Thread(
        target=Indexer(fake_registry(node), store).follow, args=(stop, 0.01), daemon=True
    )
    thread.start()
    # However long the follower takes; the bound only keeps a hung follower from hanging the suite.
    hang_guard = time.monotonic() + 600
    while store.count() < 1:
        assert thread.is_alive() and time.monotonic() < hang_guard
        time.sleep(0.01)
    node.head = 12
    while store.count() < 2:
        assert thread.is_alive() and time.monotonic() < hang_guard
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert store.count() == 2
