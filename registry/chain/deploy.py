"""Deploying the registry to any EVM chain, at a deterministic address where the chain has the
standard CREATE2 deployer, and writing the deployment file and the verification material.

Generic over the contract's artifact: constructor arguments are matched to the constructor's
inputs by name (`realm_` takes `realm`, `hubId_` takes `hub_id`), so a changed constructor
fails with a clear message instead of deploying something else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from registry.chain.artifact import CONTRACT_NAME, LICENCES_NAME, artifact, verification_material
from registry.chain.deployment import Deployment
from registry.chain.networks import Network, network_for
from registry.chain.sender import FeePolicy, Sender
from registry.errors import ChainUnavailable, InputError, RegistryError

__all__ = [
    "CREATE2_DEPLOYER",
    "DEFAULT_SALT",
    "constructor_args",
    "create2_address",
    "deploy",
    "deploy_to",
    "init_code",
    "write_verification",
]

# The "deterministic deployment proxy" (github.com/Arachnid/deterministic-deployment-proxy),
# present at this address on most public chains and in anvil: it CREATE2s calldata[32:] with
# salt calldata[:32], so the address depends on salt and init code only, not on the deployer.
CREATE2_DEPLOYER = "0x4e59b44847b379578588920cA78FbF26c0B4956C"
DEFAULT_SALT = bytes(32)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def constructor_args(values: Mapping[str, Any], name: str = CONTRACT_NAME) -> list[Any]:
    """The constructor's arguments in ABI order, taken by (normalised) name from `values`."""
    constructor = next((i for i in artifact(name)["abi"] if i["type"] == "constructor"), None)
    inputs = constructor["inputs"] if constructor else []
    given = {_norm(k): v for k, v in values.items()}
    missing = [i["name"] for i in inputs if _norm(i["name"]) not in given]
    if missing:
        raise InputError(f"the {name} constructor also needs: {', '.join(missing)}")
    return [given[_norm(i["name"])] for i in inputs]


def _encoded_args(args: list[Any], name: str) -> bytes:
    constructor = next((i for i in artifact(name)["abi"] if i["type"] == "constructor"), None)
    types = [i["type"] for i in constructor["inputs"]] if constructor else []
    return abi_encode(types, args)


def init_code(args: list[Any], name: str = CONTRACT_NAME) -> bytes:
    """Creation bytecode followed by the ABI-encoded constructor arguments."""
    bytecode = bytes.fromhex(artifact(name)["bytecode"].removeprefix("0x"))
    return bytecode + _encoded_args(args, name)


def create2_address(salt: bytes, code: bytes, deployer: str = CREATE2_DEPLOYER) -> str:
    digest = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + keccak(code))
    return to_checksum_address(digest[12:])


def has_create2_deployer(w3: Web3) -> bool:
    return bool(w3.eth.get_code(CREATE2_DEPLOYER))


@dataclass(frozen=True)
class DeployResult:
    deployment: Deployment
    deterministic: bool
    constructor_args: str
    """ABI-encoded constructor arguments, hex: what an Etherscan-style verification asks for."""
    licence_constructor_args: str = ""
    """The same for the licence ledger (LicenceRegistry) deployed beside the registry."""


def deploy(
    w3: Web3,
    deployer: LocalAccount,
    realm: int,
    hub_id: int,
    *,
    rpc_url: str,
    salt: bytes = DEFAULT_SALT,
    deterministic: bool | None = None,
    confirmations: int = 0,
    policy: FeePolicy | None = None,
) -> DeployResult:
    """Deploy the registry and its licence ledger from `deployer` and describe them.

    `deterministic`: None uses the CREATE2 deployer where the chain has it; True insists on it;
    False deploys with a plain CREATE (the address then depends on the deployer's nonce).
    """
    if not 0 <= realm <= 1:
        raise InputError(f"the realm is 0 (testnets) or 1 (production), not {realm}")
    if not 0 <= hub_id < 2**12:
        raise InputError(f"the hub id is 0..4095, not {hub_id}")
    if len(salt) != 32:
        raise InputError("the salt must be 32 bytes")
    args = constructor_args({"realm": realm, "hub_id": hub_id})
    chain_id = int(w3.eth.chain_id)
    available = has_create2_deployer(w3)
    if deterministic and not available:
        raise ChainUnavailable(
            f"chain {chain_id} has no CREATE2 deployer at {CREATE2_DEPLOYER}; deploy without "
            "--deterministic"
        )
    use_create2 = available if deterministic is None else deterministic
    sender = Sender(w3, deployer, chain_id, confirmations=confirmations, policy=policy)
    address, receipt = _deploy_one(w3, sender, CONTRACT_NAME, args, salt, use_create2)
    # The licence ledger names the registry in its constructor, so at a CREATE2 address it is
    # as deterministic as the registry's.
    licence_args = constructor_args({"registry": address}, LICENCES_NAME)
    licences, _ = _deploy_one(w3, sender, LICENCES_NAME, licence_args, salt, use_create2)
    deployment = Deployment(
        chain_id=chain_id,
        address=address,
        block=int(receipt["blockNumber"]),
        rpc_url=rpc_url,
        realm=realm,
        hub_id=hub_id,
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        licences=licences,
    )
    return DeployResult(
        deployment,
        use_create2,
        "0x" + _encoded_args(args, CONTRACT_NAME).hex(),
        "0x" + _encoded_args(licence_args, LICENCES_NAME).hex(),
    )


def _deploy_one(
    w3: Web3, sender: Sender, name: str, args: list[Any], salt: bytes, use_create2: bool
) -> tuple[str, dict[str, Any]]:
    """Deploy the shipped contract `name` through `sender`; its address and receipt."""
    code = init_code(args, name)
    chain_id = sender.chain_id
    expected = None
    if use_create2:
        expected = create2_address(salt, code)
        if w3.eth.get_code(expected):
            raise InputError(
                f"a contract is already at {expected} on chain {chain_id} (the same code and salt "
                "were deployed before): reuse that deployment, or pass another --salt"
            )
        to, data = CREATE2_DEPLOYER, salt + code
    else:
        to, data = None, code
    deployer = sender.account

    def build(nonce: int) -> dict[str, Any]:
        tx: dict[str, Any] = {"data": "0x" + data.hex(), "value": 0}
        if to is not None:
            tx["to"] = to
        try:
            estimate = w3.eth.estimate_gas({"from": deployer.address, **tx})
        except Exception as exc:
            raise RegistryError(f"deployment would fail: {exc}") from None
        # Headroom: a deployment's estimate is tight and out-of-gas loses the whole fee.
        return tx | {"gas": int(estimate * 1.2)}

    receipt = sender.send(build)
    if receipt["status"] != 1:
        raise ChainUnavailable(f"deploying {name} failed: the transaction reverted")
    address = expected or receipt["contractAddress"]
    if not w3.eth.get_code(address):
        raise ChainUnavailable(f"the deployment was mined but there is no code at {address}")
    return to_checksum_address(address), receipt


def write_verification(result: DeployResult, folder: Path) -> list[Path]:
    """The standard JSON input, metadata and constructor arguments of the deployed registry,
    as Sourcify and Etherscan-style explorers take them; the licence ledger's in the
    subfolder LicenceRegistry/."""
    written = _write_material(
        folder, CONTRACT_NAME, result.deployment.address, result.deployment.chain_id,
        result.constructor_args,
    )  # fmt: skip
    if result.deployment.licences:
        written += _write_material(
            folder / LICENCES_NAME, LICENCES_NAME, result.deployment.licences,
            result.deployment.chain_id, result.licence_constructor_args,
        )  # fmt: skip
    return written


def _write_material(
    folder: Path, name: str, address: str, chain_id: int, constructor: str
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    material = verification_material(name)
    files = {
        "standard-input.json": json.dumps(material["input"], indent=1) + "\n",
        "metadata.json": material["metadata"] + "\n",
        "constructor-args.txt": constructor + "\n",
        "contract.json": json.dumps(
            {
                "address": address,
                "chain_id": chain_id,
                "contract": material["fullyQualifiedName"],
                "compiler": material["solcLongVersion"],
                "constructor_args": constructor,
            },
            indent=1,
        )
        + "\n",
    }
    written = []
    for file_name, text in files.items():
        path = folder / file_name
        path.write_text(text)
        written.append(path)
    return written


@dataclass(frozen=True)
class Deployed:
    """What `deploy_to` did: the deployment, where it is written, on which network."""

    result: DeployResult
    network: Network
    deployment_file: Path
    verification: Path
    files: list[Path]

    def to_dict(self) -> dict[str, Any]:
        deployment = self.result.deployment
        return asdict(deployment) | {
            "network": self.network.name,
            "deterministic": self.result.deterministic,
            "deployment_file": str(self.deployment_file),
            "verification": str(self.verification),
            "explorer": self.network.address_link(deployment.address),
        }


def deploy_to(
    rpc_url: str,
    deployer: LocalAccount,
    realm: int,
    hub_id: int,
    deployment_file: Path,
    *,
    salt: bytes = DEFAULT_SALT,
    deterministic: bool | None = None,
    confirmations: int | None = None,
    max_fee_cap: int,
    networks_file: Path | None = None,
    replace: bool = False,
    on_start: Callable[[Network], None] | None = None,
) -> Deployed:
    """The user's deploy: to the chain at `rpc_url`, waiting for the network's confirmations
    unless told otherwise; writes the deployment file and, beside it, verification/CHAIN-ADDRESS/.
    """
    from registry.chain.contract import connect

    if deployment_file.exists() and not replace:
        raise InputError(
            f"{deployment_file} exists: pass --force to replace it, or --out another file"
        )
    if max_fee_cap <= 0:
        raise InputError("the fee cap must be positive")
    w3 = connect(rpc_url)
    network = network_for(int(w3.eth.chain_id), networks_file)
    if on_start is not None:
        on_start(network)
    result = deploy(
        w3,
        deployer,
        realm,
        hub_id,
        rpc_url=rpc_url,
        salt=salt,
        deterministic=deterministic,
        confirmations=network.confirmations if confirmations is None else confirmations,
        policy=FeePolicy(max_fee_cap=max_fee_cap),
    )
    result.deployment.save(deployment_file)
    folder = (
        deployment_file.parent / "verification" / f"{network.chain_id}-{result.deployment.address}"
    )
    files = write_verification(result, folder)
    return Deployed(result, network, deployment_file, folder, files)
