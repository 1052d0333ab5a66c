"""A local Hardhat devnet: start the node, deploy the registry, report status, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError

from registry.chain.artifact import CONTRACT_NAME, LICENCES_NAME
from registry.chain.contract import artifact, connect, decode_revert
from registry.chain.deployment import Deployment
from registry.errors import ChainUnavailable, RegistryError

# Hardhat's well-known development accounts (mnemonic "test test ... junk"): public knowledge,
# funded only on local devnets. Account 0 deploys and pays for relayed declarations.
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
)
DEVNET_HUB_ID = 0
TEST_REALM = 0
START_TIMEOUT_S = 90.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dev_account(index: int = 0) -> LocalAccount:
    return Account.from_key(DEV_KEYS[index])


def fund(w3: Web3, address: str, wei: int) -> int:
    """Set an account's balance on a local devnet (Hardhat or anvil); returns the balance."""
    account = Web3.to_checksum_address(address)
    for method in ("hardhat_setBalance", "anvil_setBalance"):
        answer = w3.provider.make_request(method, [account, hex(wei)])  # type: ignore[arg-type]
        if "error" not in answer:
            return int(w3.eth.get_balance(account))
    raise ChainUnavailable("this node cannot set balances: funding works on a local devnet only")


def deploy_registry(
    w3: Web3, deployer: LocalAccount, realm: int = TEST_REALM, hub_id: int = DEVNET_HUB_ID
) -> Deployment:
    """Deploy a fresh IsccRegistry and its LicenceRegistry and describe them; tests deploy
    several to check domains."""
    receipt, tx_hash = _deploy(w3, deployer, CONTRACT_NAME, realm, hub_id)
    address = receipt["contractAddress"]
    licences, _ = _deploy(w3, deployer, LICENCES_NAME, address)
    return Deployment(
        chain_id=w3.eth.chain_id,
        address=address,
        block=receipt["blockNumber"],
        rpc_url=w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        realm=realm,
        hub_id=hub_id,
        tx_hash=tx_hash,
        licences=licences["contractAddress"],
    )


def _deploy(w3: Web3, deployer: LocalAccount, name: str, *args: object) -> tuple[dict, str]:
    """Deploy the shipped contract `name`; its receipt and transaction hash."""
    art = artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    try:
        tx = factory.constructor(*args).build_transaction(
            {
                "from": deployer.address,
                "nonce": w3.eth.get_transaction_count(deployer.address, "pending"),
                "chainId": w3.eth.chain_id,
            }
        )
    except ContractCustomError as exc:
        raise RegistryError(f"deployment rejected: {decode_revert(exc.data)}") from None
    tx_hash = w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise ChainUnavailable(f"deploying {name} failed")
    return dict(receipt), "0x" + bytes(tx_hash).hex()


@dataclass(frozen=True)
class DevnetStatus:
    running: bool
    pid: int | None
    rpc_url: str
    block: int | None
    deployment: Deployment | None


class Devnet:
    """A Hardhat node on 127.0.0.1 whose files (pid, log, deployment) live under `home`."""

    def __init__(
        self, home: Path, port: int, hardhat_dir: Path, deployment_path: Path | None = None
    ):
        self.home = home
        self.port = port
        self.hardhat_dir = hardhat_dir
        self.deployment_path = deployment_path or home / "deployment.json"
        self.dir = home / "devnet"
        self.pid_file = self.dir / "node.pid"
        self.log_file = self.dir / "node.log"

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _node_command(self) -> list[str]:
        bin_dir = self.hardhat_dir / "node_modules" / ".bin"
        node, hardhat = bin_dir / "node", bin_dir / "hardhat"
        if not hardhat.exists() or not node.exists():
            raise ChainUnavailable(
                f"Hardhat is not installed in {self.hardhat_dir}: run scripts/setup.sh first"
            )
        # Hardhat 3 needs Node >= 22; the npm package `node` provides it next to Hardhat.
        return [
            str(node),
            str(hardhat),
            "node",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def _rpc_ready(self) -> bool:
        try:
            r = requests.post(
                self.rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=2,
            )
            return r.ok and "result" in r.json()
        except (requests.RequestException, ValueError):
            return False

    def start(self) -> Deployment:
        """Start the node if needed and deploy the registry and its licence ledger if absent;
        return the deployment."""
        if self._pid() is None:
            if self._rpc_ready():
                raise ChainUnavailable(
                    f"port {self.port} is taken by another node; stop it or choose another port"
                )
            self._spawn()
        w3 = connect(self.rpc_url)
        if self.deployment_path.exists():
            deployment = Deployment.load(self.deployment_path)
            if (
                deployment.rpc_url == self.rpc_url
                and deployment.chain_id == w3.eth.chain_id
                and w3.eth.get_code(Web3.to_checksum_address(deployment.address))
            ):
                if deployment.licences and w3.eth.get_code(
                    Web3.to_checksum_address(deployment.licences)
                ):
                    return deployment
                # A deployment from before the licence ledger: the registry stays, its ledger
                # joins it.
                licences, _ = _deploy(w3, dev_account(0), LICENCES_NAME, deployment.address)
                deployment = replace(deployment, licences=licences["contractAddress"])
                deployment.save(self.deployment_path)
                return deployment
        deployment = deploy_registry(w3, dev_account(0))
        deployment.save(self.deployment_path)
        return deployment

    def _spawn(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        command = self._node_command()
        with self.log_file.open("ab") as log:
            # A new session keeps the node alive after the CLI exits and lets stop() end the
            # whole process group.
            process = subprocess.Popen(
                command,
                cwd=self.hardhat_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                tail = self.log_file.read_text(errors="replace")[-600:].strip()
                raise ChainUnavailable(f"the Hardhat node exited at start: {tail}")
            if self._rpc_ready():
                return
            time.sleep(0.2)
        self.stop()
        raise ChainUnavailable(f"the Hardhat node did not answer within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> bool:
        """Stop the node; True if one was running. A stopped devnet loses its chain."""
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            if self._pid() is None:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        # The chain lived in the node's memory: a deployment file pointing at it is now stale.
        self.deployment_path.unlink(missing_ok=True)
        return True

    def status(self) -> DevnetStatus:
        pid = self._pid()
        block = None
        deployment = None
        if pid is not None and self._rpc_ready():
            block = connect(self.rpc_url).eth.block_number
            if self.deployment_path.exists():
                deployment = Deployment.load(self.deployment_path)
        return DevnetStatus(pid is not None, pid, self.rpc_url, block, deployment)
