"""A relayer (`iscc-registry serve`) killed with transactions in flight, on anvil, and restarted:
no nonce gap, no declaration lost or made twice, and the clients' retries get their results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import iscc_lib
import pytest
from eth_account import Account
from web3 import Web3

from registry.chain.anvil import Anvil
from registry.chain.contract import Registry, connect
from registry.chain.deploy import deploy
from registry.chain.devnet import DEV_KEYS, dev_account, free_port
from registry.chain.submit import prepare

pytestmark = pytest.mark.chain

CLI = str(Path(sys.executable).parent / "iscc-registry")


def _call(url: str, body: dict | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Service:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "ISCC_REGISTRY_HOME": str(self.home),
            "ISCC_REGISTRY_RELAYER_KEY": str(self.home / "relayer.key"),
            "ISCC_REGISTRY_RELAYER_CONFIRMATIONS": "1",
        }
        self.proc = subprocess.Popen(
            [CLI, "serve", "--no-index", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.home / "serve.log").open("a"),
            text=True,
        )
        for _ in range(200):
            try:
                _call(self.url + "/health")
                return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail("serve exited: " + (self.home / "serve.log").read_text())
                time.sleep(0.1)
        pytest.fail("serve did not answer")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def service(tmp_path: Path, fresh_anvil: Anvil) -> Iterator[tuple[Service, Registry]]:
    home = tmp_path / "home"
    home.mkdir()
    w3 = connect(fresh_anvil.rpc_url)
    result = deploy(w3, dev_account(0), 0, 0, rpc_url=fresh_anvil.rpc_url, confirmations=1)
    result.deployment.save(home / "deployment.json")
    (home / "relayer.key").write_text(DEV_KEYS[1] + "\n")
    service = Service(home)
    service.start()
    yield service, Registry.open(result.deployment)
    service.kill()


def content() -> tuple[str, str]:
    data = os.urandom(64)
    data_code = iscc_lib.gen_data_code_v0(data)["iscc"]
    instance = iscc_lib.gen_instance_code_v0(data)
    iscc = iscc_lib.gen_iscc_code_v0([data_code, instance["iscc"]])["iscc"]
    return iscc, instance["datahash"]


def _declarations(registry: Registry, n: int) -> list[dict]:
    return [prepare(registry, Account.create(), *content()).to_json() for _ in range(n)]


def _pending_nonce(w3: Web3, address: str) -> int:
    return w3.eth.get_transaction_count(address, "pending")


def test_relayer_killed_mid_flight_settles_at_restart(
    service: tuple[Service, Registry], fresh_anvil: Anvil
) -> None:
    relay, registry = service
    w3 = registry.w3
    payer = dev_account(1).address
    start = w3.eth.get_transaction_count(payer)
    first, second = _declarations(registry, 3), _declarations(registry, 3)

    fresh_anvil.rpc("evm_setIntervalMining", 0)
    fresh_anvil.rpc("evm_setAutomine", False)
    for body in first:
        status, job = _call(relay.url + "/v1/relay/declarations?wait=0", body)
        assert status == 202, job
    while _pending_nonce(w3, payer) == start:  # the first batch is in the node's pool
        time.sleep(0.05)
    time.sleep(0.5)  # past the batch window: the second batch waits behind the first
    for body in second:
        assert _call(relay.url + "/v1/relay/declarations?wait=0", body)[0] == 202
    in_flight = w3.eth.get_block("pending", full_transactions=True)["transactions"]
    assert len(in_flight) == 1

    relay.kill()
    # The node forgets it too (a restart, an eviction): only the journal still knows it.
    fresh_anvil.rpc("anvil_dropTransaction", "0x" + bytes(in_flight[0]["hash"]).hex())
    assert _pending_nonce(w3, payer) == start
    fresh_anvil.rpc("evm_setIntervalMining", 1)
    relay.start()

    # The clients retry all six: the first three join the recovered jobs, the second three
    # were never sent and are sent now.
    answers = [_call(relay.url + "/v1/relay/declarations?wait=60", b) for b in first + second]
    assert [status for status, _ in answers] == [200] * 6, answers
    jobs = [job for _, job in answers]
    assert all(job["state"] == "done" for job in jobs), jobs
    # The transaction in flight at the kill carried the first declaration; its job was
    # recovered from the journal and the retry joined it.
    sent = {job["result"]["tx_hash"] for job in jobs}
    assert jobs[0]["result"]["tx_hash"] == "0x" + bytes(in_flight[0]["hash"]).hex()

    events = registry.contract.events.Declared().get_logs(
        from_block=registry.deployment.block, to_block=w3.eth.block_number
    )
    declarers = [e["args"]["declarer"] for e in events]
    assert sorted(declarers) == sorted(b["declarer"] for b in first + second)  # each once
    assert len({job["result"]["iscc_id"] for job in jobs}) == 6
    # One nonce per transaction that carried a declaration: no gap, nothing left in the pool.
    assert w3.eth.get_transaction_count(payer) == start + len(sent) == _pending_nonce(w3, payer)

    # /health answers from its last check, which may predate the last transaction's mining.
    balance = w3.eth.get_balance(payer)
    for _ in range(100):
        status, health = _call(relay.url + "/health")
        if health["relayer"]["balance_wei"] == balance:
            break
        time.sleep(0.1)
    assert health["relayer"]["address"] == payer
    assert health["relayer"]["balance_wei"] == balance > 0
    assert health["network"]["chain_id"] == registry.deployment.chain_id
