"""The test doubles of contracts/mocks (compiled by Hardhat), deployed on the devnet for any
test folder."""

from __future__ import annotations

import json

from registry.chain.contract import Registry
from registry.chain.devnet import dev_account
from registry.config import PROJECT_ROOT


def deploy_mock(registry: Registry, name: str, *args: object) -> str:
    """Deploy the test double contracts/mocks/NAME.sol (compiled by Hardhat); its address."""
    path = PROJECT_ROOT / "artifacts" / "contracts" / "mocks" / f"{name}.sol" / f"{name}.json"
    art = json.loads(path.read_text())
    w3, deployer = registry.w3, dev_account(0)
    tx = (
        w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        .constructor(*args)
        .build_transaction(
            {
                "from": deployer.address,
                "nonce": w3.eth.get_transaction_count(deployer.address, "pending"),
            }
        )
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
    )
    return receipt["contractAddress"]


def mock_contract(registry: Registry, name: str, address: str):
    path = PROJECT_ROOT / "artifacts" / "contracts" / "mocks" / f"{name}.sol" / f"{name}.json"
    return registry.w3.eth.contract(address=address, abi=json.loads(path.read_text())["abi"])
