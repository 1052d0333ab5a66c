"""The registry on anvil: a block a second and an EIP-1559 fee market, like a real chain.

Deployment through the CLI (deterministic on anvil, which has the CREATE2 deployer; plain on
Hardhat, which has not), declarations direct, relayed and batched awaited to 2 confirmations,
stuck and dropped transactions replaced, and a sender killed mid-flight and restarted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chain_helpers import sum_code
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from registry.chain.anvil import Anvil
from registry.chain.artifact import LICENCES_NAME
from registry.chain.contract import Registry, connect
from registry.chain.deploy import constructor_args, create2_address, deploy, init_code
from registry.chain.deployment import Deployment
from registry.chain.devnet import DEV_KEYS, Devnet, dev_account
from registry.chain.relayer import relay_batch
from registry.chain.sender import GWEI, FeePolicy, Journal, Sender
from registry.chain.submit import declare_direct, prepare, submit_signed
from registry.errors import ChainUnavailable


def _content() -> tuple[str, str]:
    c = sum_code(os.urandom(64))
    return c["iscc"], c["datahash"]


CLI = [str(Path(sys.executable).parent / "iscc-registry")]


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home)}
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def key_file(home: Path, index: int) -> Path:
    path = home / f"deployer{index}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEV_KEYS[index] + "\n")
    return path


def test_cli_deploys_at_the_create2_address_on_anvil(anvil: Anvil, tmp_path: Path) -> None:
    home = tmp_path / "home"
    salt = "0x" + os.urandom(32).hex()  # the session's anvil may hold earlier deployments
    done = run_cli(
        home, "deploy", "--rpc", anvil.rpc_url, "--key", str(key_file(home, 2)),
        "--realm", "1", "--hub-id", "7", "--salt", salt, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    expected = create2_address(
        bytes.fromhex(salt[2:]), init_code(constructor_args({"realm": 1, "hub_id": 7}))
    )
    assert answer["address"] == expected and answer["deterministic"] is True
    deployment = Deployment.load(home / "deployment.json")
    assert (deployment.address, deployment.realm, deployment.hub_id) == (expected, 1, 7)
    registry = Registry.open(deployment)
    assert registry.contract.functions.realm().call() == 1
    # The licence ledger beside it, at the CREATE2 address its code (naming the registry) gives.
    licences = create2_address(
        bytes.fromhex(salt[2:]),
        init_code(constructor_args({"registry": expected}, LICENCES_NAME), LICENCES_NAME),
    )
    assert deployment.licences == answer["licences"] == licences
    assert registry.licences.functions.registry().call() == expected
    folder = Path(answer["verification"])
    material = json.loads((folder / "contract.json").read_text())
    assert material["address"] == expected
    assert (folder / "standard-input.json").exists() and (folder / "metadata.json").exists()
    ledger = json.loads((folder / "LicenceRegistry" / "contract.json").read_text())
    assert ledger["address"] == licences and ledger["contract"].endswith(":LicenceRegistry")
    # The same code and salt again: refused in one line, nothing overwritten.
    again = run_cli(
        home, "deploy", "--rpc", anvil.rpc_url, "--key", str(key_file(home, 2)),
        "--realm", "1", "--hub-id", "7", "--salt", salt, "--out", str(tmp_path / "b.json"),
    )  # fmt: skip
    assert again.returncode == 1
    assert "already at " + expected in again.stderr and "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) <= 2


def test_cli_deploys_with_plain_create_where_there_is_no_create2_deployer(
    devnet: Devnet, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    done = run_cli(
        home, "deploy", "--rpc", devnet.rpc_url, "--key", str(key_file(home, 2)), "--json"
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["deterministic"] is False
    assert (
        Registry.open(Deployment.load(home / "deployment.json")).deployment.address
        == (answer["address"])
    )
    refused = run_cli(
        home, "deploy", "--rpc", devnet.rpc_url, "--key", str(key_file(home, 2)),
        "--deterministic", "--out", str(tmp_path / "other.json"),
    )  # fmt: skip
    assert refused.returncode == 1 and "no CREATE2 deployer" in refused.stderr


@pytest.fixture
def anvil_registry(anvil: Anvil) -> Registry:
    w3 = connect(anvil.rpc_url)
    result = deploy(
        w3, dev_account(0), 0, 0, rpc_url=anvil.rpc_url, salt=os.urandom(32), confirmations=1
    )
    return Registry.open(result.deployment)


def _confirmed_sender(registry: Registry, account: LocalAccount, **policy: float) -> Sender:
    sender = Sender(
        registry.w3,
        account,
        registry.deployment.chain_id,
        confirmations=2,
        policy=FeePolicy(max_fee_cap=500 * GWEI, **policy),  # type: ignore[arg-type]
    )
    registry.use_sender(sender)
    return sender


def _funded(w3: Web3) -> LocalAccount:
    account = Account.create()
    tx = {"to": account.address, "value": 10**18, "from": dev_account(0).address}
    Sender(w3, dev_account(0), w3.eth.chain_id).send(lambda _nonce: tx | {"gas": 21000})
    return account


def test_declare_direct_relayed_and_batched_with_two_confirmations(
    anvil_registry: Registry,
) -> None:
    registry = anvil_registry
    w3 = registry.w3
    declarer, payer = _funded(w3), dev_account(1)
    _confirmed_sender(registry, declarer)
    _confirmed_sender(registry, payer)

    direct = declare_direct(registry, declarer, *_content())
    relayed = submit_signed(registry, prepare(registry, Account.create(), *_content()), payer)
    signers = [Account.create() for _ in range(5)]
    batch = [prepare(registry, s, *_content()) for s in signers]
    results = relay_batch(registry, batch, payer)

    receipts = [direct, relayed, *(r.receipt for r in results)]
    assert all(r is not None for r in receipts)
    assert [r.receipt.declarer for r in results if r.receipt] == [s.address for s in signers]
    head = w3.eth.block_number
    for receipt in receipts:
        assert receipt is not None
        assert head - receipt.block_number >= 2  # awaited to 2 confirmations
        tx = w3.eth.get_transaction(receipt.tx_hash)
        assert tx["type"] == 2 and tx["maxFeePerGas"] <= 500 * GWEI  # EIP-1559, under the cap
    events = registry.contract.events.Declared().get_logs(
        from_block=registry.deployment.block, to_block=head
    )
    assert sorted(e["args"]["isccId"] for e in events) == sorted(
        r.iscc_id.body for r in receipts if r is not None
    )


def _pause_mining(node: Anvil) -> None:
    node.rpc("evm_setIntervalMining", 0)
    node.rpc("evm_setAutomine", False)


def _resume_mining(node: Anvil) -> None:
    node.rpc("evm_setIntervalMining", 1)


def _transfer(to: str) -> dict:
    return {"to": to, "value": 1, "gas": 21000}


def _send_in_background(sender: Sender, tx: dict) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def send() -> None:
        try:
            outcome["receipt"] = sender.send(lambda _nonce: tx)
        except Exception as exc:  # reported to the test, which fails on it
            outcome["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    return thread, outcome


def _wait_in_pool(w3: Web3, address: str, nonce: int) -> None:
    while w3.eth.get_transaction_count(address, "pending") == nonce:
        time.sleep(0.05)


def test_a_stuck_transaction_is_replaced_with_higher_fees(fresh_anvil: Anvil) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    account = dev_account(1)
    sender = Sender(
        w3,
        account,
        w3.eth.chain_id,
        confirmations=1,
        policy=FeePolicy(max_fee_cap=500 * GWEI, stuck_after_s=2, timeout_s=90),
    )
    nonce = w3.eth.get_transaction_count(account.address)
    _pause_mining(fresh_anvil)
    thread, outcome = _send_in_background(sender, _transfer(dev_account(2).address))
    _wait_in_pool(w3, account.address, nonce)
    first = w3.eth.get_block("pending", full_transactions=True)["transactions"][0]
    # Demand spikes: the base fee jumps 100-fold, above what the transaction offers, and
    # takes many empty blocks to come down again.
    fresh_anvil.rpc("anvil_setNextBlockBaseFeePerGas", hex(100 * GWEI))
    _resume_mining(fresh_anvil)
    thread.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    receipt = outcome["receipt"]
    mined = w3.eth.get_transaction(receipt["transactionHash"])
    assert receipt["status"] == 1 and sender.replacements >= 1
    assert first["maxFeePerGas"] < 100 * GWEI < mined["maxFeePerGas"] <= 500 * GWEI
    assert mined["hash"] != first["hash"] and mined["nonce"] == nonce
    assert w3.eth.get_transaction_count(account.address) == nonce + 1


def test_a_dropped_transaction_is_sent_again(fresh_anvil: Anvil) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    account = dev_account(1)
    sender = Sender(w3, account, w3.eth.chain_id, confirmations=1, policy=FeePolicy(timeout_s=60))
    nonce = w3.eth.get_transaction_count(account.address)
    _pause_mining(fresh_anvil)
    thread, outcome = _send_in_background(sender, _transfer(dev_account(2).address))
    _wait_in_pool(w3, account.address, nonce)
    tx = w3.eth.get_block("pending", full_transactions=True)["transactions"][0]
    fresh_anvil.rpc("anvil_dropTransaction", "0x" + bytes(tx["hash"]).hex())
    assert w3.eth.get_transaction_count(account.address, "pending") == nonce
    _resume_mining(fresh_anvil)
    thread.join(timeout=90)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["receipt"]["status"] == 1 and sender.rebroadcasts >= 1
    assert w3.eth.get_transaction_count(account.address) == nonce + 1


def test_a_receipt_taken_by_a_reorg_is_awaited_again(fresh_anvil: Anvil) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    account = dev_account(1)
    sender = Sender(w3, account, w3.eth.chain_id, confirmations=3, policy=FeePolicy(timeout_s=90))
    nonce = w3.eth.get_transaction_count(account.address)
    _pause_mining(fresh_anvil)
    before = fresh_anvil.rpc("evm_snapshot")
    thread, outcome = _send_in_background(sender, _transfer(dev_account(2).address))
    _wait_in_pool(w3, account.address, nonce)
    fresh_anvil.rpc("evm_mine")
    while sender.unconfirmed_seen == 0:  # mined, awaiting its 3 confirmations
        time.sleep(0.05)
    first = w3.eth.get_transaction_receipt(w3.eth.get_block("latest")["transactions"][0])
    assert fresh_anvil.rpc("evm_revert", before) is True  # the block is gone again
    _resume_mining(fresh_anvil)
    thread.join(timeout=90)
    assert "error" not in outcome, outcome.get("error")
    receipt = outcome["receipt"]
    assert sender.reorged >= 1
    assert receipt["transactionHash"] == first["transactionHash"]
    assert w3.eth.get_block(receipt["blockNumber"])["hash"] == receipt["blockHash"]
    assert receipt["blockHash"] != first["blockHash"]
    assert w3.eth.get_transaction_count(account.address) == nonce + 1
    assert w3.eth.block_number - receipt["blockNumber"] >= 3


def test_concurrent_sends_share_one_nonce_sequence(anvil: Anvil) -> None:
    w3 = connect(anvil.rpc_url)
    account = Account.create()
    Sender(w3, dev_account(0), w3.eth.chain_id).send(
        lambda _n: {"to": account.address, "value": 10**18, "gas": 21000}
    )
    sender = Sender(w3, account, w3.eth.chain_id, confirmations=1)
    results: list[dict] = []
    errors: list[Exception] = []

    def send() -> None:
        try:
            results.append(sender.send(lambda _n: _transfer(dev_account(2).address)))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    nonces = sorted(w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in results)
    assert nonces == list(range(8))
    assert w3.eth.get_transaction_count(account.address) == 8


def test_fees_never_exceed_the_cap(fresh_anvil: Anvil, tmp_path: Path) -> None:
    w3 = connect(fresh_anvil.rpc_url)
    account = dev_account(1)
    cap = 5 * GWEI
    journal = Journal(tmp_path / "journal.db", w3.eth.chain_id, account.address)
    sender = Sender(
        w3,
        account,
        w3.eth.chain_id,
        policy=FeePolicy(max_fee_cap=cap, stuck_after_s=1, timeout_s=6),
        journal=journal,
    )
    nonce = w3.eth.get_transaction_count(account.address)
    _pause_mining(fresh_anvil)
    thread, outcome = _send_in_background(sender, _transfer(dev_account(2).address))
    _wait_in_pool(w3, account.address, nonce)
    fresh_anvil.rpc("anvil_setNextBlockBaseFeePerGas", hex(100 * GWEI))
    _resume_mining(fresh_anvil)
    thread.join(timeout=60)
    # It waits at the cap rather than paying more, and says so when its patience runs out.
    assert isinstance(outcome.get("error"), ChainUnavailable), outcome
    assert "not confirmed within" in str(outcome["error"])
    # Every signed attempt, replacements included (anvil drops the ones the base fee outgrew,
    # so the journal is where they all are), stayed at or below the cap.
    attempts = journal.open()[nonce]
    assert len(attempts) >= 2  # a replacement was signed (the node refused it too)
    assert all(a.max_fee <= cap and a.tip <= a.max_fee for a in attempts)
    assert attempts[-1].max_fee == cap
    assert w3.eth.get_transaction_count(account.address) == nonce


def test_cli_declare_waits_for_the_confirmations_of_networks_toml(
    anvil_registry: Registry, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    anvil_registry.deployment.save(home / "deployment.json")
    (home / "networks.toml").write_text(
        '[[network]]\nchain_id = 31337\nname = "Anvil"\nconfirmations = 2\n'
    )
    assert run_cli(home, "keys", "new", "dora").returncode == 0
    work = tmp_path / "work.txt"
    work.write_text("Declared on a chain that wants two confirmations. " * 20)
    done = run_cli(home, "declare", str(work), "--key", "dora", "--json")
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout)
    assert anvil_registry.w3.eth.block_number - receipt["block_number"] >= 2
