"""The follower against a scripted fake node: range halving, confirmations, failures, backoff."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from index_helpers import content, make_log
from web3.exceptions import Web3RPCError

from registry.chain.deployment import Deployment
from registry.errors import ChainUnavailable
from registry.index import follower as follower_module
from registry.index.follower import Follower, SyncReport
from registry.index.store import Store

CONTRACT = "0x" + "5a" * 20


class FakeEth:
    """Blocks 0..head; one Declared log in every block listed in `declared`."""

    def __init__(self, head: int, declared: list[int], limit: int | None = None) -> None:
        self.head = head
        self.limit = limit
        self.down = False
        self.queries: list[tuple[int, int]] = []
        item = content(b"fake node" * 100)
        self.logs = [
            make_log(
                item["raw"],
                item["digest"],
                iscc_id_body=(1_700_000_000_000_000 + n) << 12,
                block_number=n,
                block_hash=self.block_hash(n),
            )
            for n in declared
        ]

    @staticmethod
    def block_hash(n: int) -> bytes:
        return (n + 0xB000).to_bytes(32, "big")

    def _check(self) -> None:
        if self.down:
            raise requests.ConnectionError("connection refused")

    @property
    def block_number(self) -> int:
        self._check()
        return self.head

    def get_logs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        self._check()
        low, high = query["fromBlock"], query["toBlock"]
        self.queries.append((low, high))
        if self.limit and high - low + 1 > self.limit:
            raise Web3RPCError("query returned more than 10000 results")
        return [log for log in self.logs if low <= log["blockNumber"] <= high]

    def get_block(self, n: int) -> dict[str, Any]:
        self._check()
        return {"hash": self.block_hash(n), "number": n}


def fake_registry(eth: FakeEth, first_block: int = 3) -> Any:
    deployment = Deployment(
        chain_id=999, address=CONTRACT, block=first_block, rpc_url="fake://", realm=0, hub_id=0
    )
    return SimpleNamespace(
        w3=SimpleNamespace(eth=eth),
        contract=SimpleNamespace(address=CONTRACT),
        deployment=deployment,
    )


def test_sync_from_deployment_block_to_head(store: Store) -> None:
    eth = FakeEth(head=30, declared=[2, 3, 10, 30])
    report = Follower(fake_registry(eth), store, max_range=8).sync()
    assert (report.from_block, report.to_block) == (3, 30)
    assert (report.events_seen, report.events_new) == (3, 3)  # block 2 predates the deployment
    assert store.checkpoint(999, CONTRACT) == 30
    assert all(high - low < 8 for low, high in eth.queries)
    again = Follower(fake_registry(eth), store).sync()
    assert (again.from_block, again.to_block, again.events_seen) == (31, 30, 0)
    assert again.blocks == 0


def test_confirmations_hold_back_recent_blocks(store: Store) -> None:
    eth = FakeEth(head=20, declared=[5, 18, 20])
    report = Follower(fake_registry(eth), store, confirmations=3).sync()
    assert report.to_block == 17 and report.events_new == 1
    eth.head = 23
    assert Follower(fake_registry(eth), store, confirmations=3).sync().events_new == 2


def test_range_halves_when_the_node_refuses_and_grows_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    eth = FakeEth(head=200, declared=list(range(3, 201, 7)), limit=10)
    follower = Follower(fake_registry(eth), store, max_range=64)
    progress: list[SyncReport] = []
    report = follower.sync(on_progress=progress.append)
    assert report.events_new == len(range(3, 201, 7))
    assert store.count() == report.events_new
    accepted = [(lo, hi) for lo, hi in eth.queries if hi - lo + 1 <= 10]
    covered = sorted({n for lo, hi in accepted for n in range(lo, hi + 1)})
    assert covered == list(range(3, 201))
    assert progress[-1].to_block == 200 and progress[-1].events_new == report.events_new
    # Once the node accepts again, fast answers let the range grow back to max_range.
    eth.limit = None
    eth.head = 400
    eth.queries.clear()
    follower.sync()
    assert max(hi - lo + 1 for lo, hi in eth.queries) == 64


def test_node_refusing_a_single_block_is_chain_unavailable(store: Store) -> None:
    eth = FakeEth(head=10, declared=[])
    eth.get_logs = lambda q: (_ for _ in ()).throw(Web3RPCError("block range too large"))
    with pytest.raises(ChainUnavailable, match="single block"):
        Follower(fake_registry(eth), store).sync()


def test_rpc_failure_raises_chain_unavailable_and_keeps_progress(store: Store) -> None:
    eth = FakeEth(head=50, declared=[4, 40], limit=None)
    follower = Follower(fake_registry(eth), store, max_range=10)
    calls = 0
    real_get_logs = eth.get_logs

    def flaky(query: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise requests.ConnectionError("reset by peer")
        return real_get_logs(query)

    eth.get_logs = flaky
    with pytest.raises(ChainUnavailable, match="eth_getLogs"):
        follower.sync()
    assert store.checkpoint(999, CONTRACT) == 22  # two ranges of 10 from block 3 were applied
    assert follower.sync().events_new == 1
    assert store.count() == 2


def test_follow_backs_off_while_the_node_is_down(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    eth = FakeEth(head=10, declared=[5])
    eth.down = True
    waits: list[float] = []
    stop = threading.Event()
    real_wait = stop.wait

    def recording_wait(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        if len(waits) == 5:
            eth.down = False
        if len(waits) >= 7:
            stop.set()
        return real_wait(0)

    monkeypatch.setattr(follower_module, "MAX_BACKOFF_S", 0.4)
    stop.wait = recording_wait  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="registry.index.follower"):
        Follower(fake_registry(eth), store).follow(stop, poll_interval=0.05)
    assert waits[:5] == [0.1, 0.2, 0.4, 0.4, 0.4]  # doubling, capped
    assert waits[5:] == [0.05, 0.05]  # back to polling once the node answers
    assert "retrying" in caplog.text
    assert store.count() == 1


def test_follow_picks_up_new_blocks_until_stopped(store: Store) -> None:
    eth = FakeEth(head=10, declared=[5, 12])
    stop = threading.Event()
    thread = threading.Thread(
        target=Follower(fake_registry(eth), store).follow, args=(stop, 0.01), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 5
    while store.count() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    eth.head = 12
    while store.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert store.count() == 2
