"""The indexer on anvil (a block a second): 2 confirmations and a reorg, ISCC_REGISTRY_RPC_URL
for every call, and `index --follow` started before its node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chain_truth import chain_declarations, store_declarations
from eth_account.signers.local import LocalAccount
from index_helpers import content, declare_direct

from registry.chain.anvil import Anvil
from registry.chain.contract import Registry, connect
from registry.chain.deploy import constructor_args, create2_address, deploy, init_code
from registry.chain.deployment import Deployment
from registry.chain.devnet import dev_account, free_port
from registry.config import PROJECT_ROOT
from registry.ledger.indexer import Indexer
from registry.store.store import Store

pytestmark = pytest.mark.chain

CLI = str(Path(sys.executable).parent / "iscc-registry")


def _declare(registry: Registry, payer: LocalAccount, tag: str, count: int) -> None:
    for i in range(count):
        declare_direct(registry, payer, content(f"{tag} {i} {os.urandom(4).hex()} ".encode() * 40))


def _wait_for_block(registry: Registry, number: int) -> None:
    while registry.w3.eth.block_number < number:
        time.sleep(0.1)


def _fresh_registry(node: Anvil) -> Registry:
    w3 = connect(node.rpc_url)
    result = deploy(w3, dev_account(0), 0, 0, rpc_url=node.rpc_url, salt=os.urandom(32))
    return Registry.open(result.deployment)


def test_two_confirmations_and_a_reorg_leave_the_store_equal_to_the_chain(
    fresh_anvil: Anvil, store: Store
) -> None:
    registry = _fresh_registry(fresh_anvil)
    payer = dev_account(1)
    follower = Indexer(registry, store, confirmations=2)
    contract = registry.contract.address

    _declare(registry, payer, "common", 2)
    snapshot = fresh_anvil.rpc("evm_snapshot")
    _declare(registry, payer, "old branch", 3)
    old_last = registry.w3.eth.block_number
    _wait_for_block(registry, old_last + 2)
    report = follower.sync()
    assert report.to_block == report.head - 2 >= old_last  # two blocks held back, no more
    assert store_declarations(store, contract) == chain_declarations(registry, report.to_block)
    assert store.count() == 5

    # The old branch is replaced by another one (anvil's evm_revert, as a reorg does).
    assert fresh_anvil.rpc("evm_revert", snapshot) is True
    registry = Registry.open(registry.deployment)  # a fresh nonce count for the payer
    follower.registry = registry
    _declare(registry, payer, "new branch", 4)
    _wait_for_block(registry, registry.w3.eth.block_number + 2)
    report = follower.sync()
    assert report.events_rolled_back == 3
    truth = chain_declarations(registry, report.to_block)
    assert len(truth) == 2 + 4
    assert store_declarations(store, contract) == truth


def _index(home: Path, *args: str, rpc_url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home)}
    if rpc_url:
        env["ISCC_REGISTRY_RPC_URL"] = rpc_url
    return subprocess.run(
        [CLI, "index", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_rpc_url_setting_redirects_every_call_logs_included(
    anvil: Anvil, tmp_path: Path
) -> None:
    registry = _fresh_registry(anvil)
    _declare(registry, dev_account(1), "redirected", 3)
    home = tmp_path / "home"
    dead = f"http://127.0.0.1:{free_port()}"  # the deployment file names a node that is gone
    Deployment(**{**registry.deployment.__dict__, "rpc_url": dead}).save(home / "deployment.json")
    done = _index(home, "--json", rpc_url=anvil.rpc_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["events_new"] == 3
    with Store.open(f"sqlite:///{home / 'registry.db'}") as store:
        assert store_declarations(store, registry.contract.address) == chain_declarations(
            registry, json.loads(done.stdout.splitlines()[-1])["to_block"]
        )


def test_index_follow_started_before_its_node_waits_for_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    rpc_url = f"http://127.0.0.1:{port}"
    salt = os.urandom(32)
    # Deterministic deployment: the address is known before the node even runs.
    address = create2_address(salt, init_code(constructor_args({"realm": 0, "hub_id": 0})))
    Deployment(chain_id=31337, address=address, block=0, rpc_url=rpc_url, realm=0, hub_id=0).save(
        home / "deployment.json"
    )
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home)}
    follower = subprocess.Popen(
        [CLI, "index", "--follow", "--json", "--poll", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    node = Anvil(PROJECT_ROOT, port, tmp_path / "anvil.log")
    try:
        assert follower.stderr is not None and follower.stdout is not None
        waits = [follower.stderr.readline() for _ in range(3)]
        assert all("waiting for the node" in line for line in waits), waits
        assert follower.poll() is None  # still there, not exited with 1
        delays = [float(line.rsplit("retrying in ", 1)[1].split()[0]) for line in waits]
        assert max(delays) <= 5.0

        node.start()
        w3 = connect(rpc_url)
        result = deploy(w3, dev_account(0), 0, 0, rpc_url=rpc_url, salt=salt)
        assert result.deployment.address == address
        registry = Registry.open(result.deployment)
        _declare(registry, dev_account(1), "late node", 2)
        indexed = 0
        while indexed < 2:
            line = follower.stdout.readline()
            assert line, follower.stderr.read()
            indexed += json.loads(line)["events_new"]
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=60) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        node.stop()
