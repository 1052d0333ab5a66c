"""New heads over WebSocket on anvil: a declaration is indexed at the next block, not at the
next poll."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from index_helpers import content, declare_direct

from registry.chain.anvil import Anvil
from registry.chain.contract import Registry, connect
from registry.chain.deploy import deploy
from registry.chain.devnet import dev_account
from registry.index.heads import NewHeads
from registry.ledger.indexer import Indexer
from registry.store.store import Store

pytestmark = pytest.mark.chain

CLI = str(Path(sys.executable).parent / "iscc-registry")
# Longer than the whole test may take: a sync within it was woken by a new head.
POLL_S = 600.0


def test_new_heads_wake_the_follower(anvil: Anvil, sqlite_store: Store) -> None:
    w3 = connect(anvil.rpc_url)
    registry = Registry.open(
        deploy(w3, dev_account(0), 0, 0, rpc_url=anvil.rpc_url, salt=os.urandom(32)).deployment
    )
    follower = Indexer(registry, sqlite_store)
    stop, wake = threading.Event(), threading.Event()
    heads = NewHeads(anvil.rpc_url.replace("http://", "ws://"), wake, stop).start()
    thread = threading.Thread(
        target=follower.follow, args=(stop,), kwargs={"poll_interval": POLL_S, "wake": wake}
    )
    try:
        assert heads.connected.wait(30)
        thread.start()
        while sqlite_store.checkpoint(registry.deployment.chain_id, follower.contract) is None:
            time.sleep(0.1)  # the first sync, at start
        declare_direct(registry, dev_account(1), content(os.urandom(32) * 20))
        give_up = time.monotonic() + POLL_S / 4  # a guard against hanging, not a benchmark
        while sqlite_store.count() < 1:
            assert thread.is_alive() and time.monotonic() < give_up, "no head woke the follower"
            time.sleep(0.1)
        assert heads.heads >= 1
    finally:
        stop.set()
        thread.join(30)
        heads.join(30)
    assert not thread.is_alive()


def test_index_follow_with_ws_indexes_at_the_next_block(anvil: Anvil, tmp_path: Path) -> None:
    w3 = connect(anvil.rpc_url)
    registry = Registry.open(
        deploy(w3, dev_account(0), 0, 0, rpc_url=anvil.rpc_url, salt=os.urandom(32)).deployment
    )
    home = tmp_path / "home"
    registry.deployment.save(home / "deployment.json")
    ws_url = anvil.rpc_url.replace("http://", "ws://")
    follower = subprocess.Popen(
        [CLI, "index", "--follow", "--json", "--poll", str(POLL_S), "--ws", ws_url],
        env={**os.environ, "ISCC_REGISTRY_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout], daemon=True).start()
    try:
        json.loads(lines.get(timeout=120))  # the first sync, at start
        declare_direct(registry, dev_account(1), content(os.urandom(32) * 20))
        indexed = 0
        while indexed < 1:  # a sync before POLL_S is over was started by a new head
            indexed += json.loads(lines.get(timeout=POLL_S / 4))["events_new"]
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=60) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
