"""Content and revert-name helpers shared by the contract tests."""

from __future__ import annotations

import json

import iscc_lib
import pytest
from eth_account.signers.local import LocalAccount

from registry.chain.contract import Registry
from registry.chain.declaration import Declaration, SignedDeclaration, sign
from registry.chain.devnet import dev_account
from registry.chain.submit import default_deadline, domain_of, next_nonce
from registry.config import PROJECT_ROOT


def sum_code(data: bytes) -> dict:
    """ISCC-CODE (Data + Instance) and datahash of `data`, computed by iscc-lib."""
    data_code = iscc_lib.gen_data_code_v0(data)["iscc"]
    instance = iscc_lib.gen_instance_code_v0(data)
    iscc = iscc_lib.gen_iscc_code_v0([data_code, instance["iscc"]])["iscc"]
    return {"iscc": iscc, "datahash": instance["datahash"]}


def revert_name(exc: pytest.ExceptionInfo) -> str:
    """The custom error's name in an InvalidDeclaration message ("... rejects it: Name(...)")."""
    return str(exc.value).split("rejects it: ")[-1].split("(")[0]


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


def prepare_for(
    registry: Registry,
    key: LocalAccount,
    declarer: str,
    content: dict,
    nonce: int | None = None,
    sealed: bool = False,
) -> SignedDeclaration:
    """A declaration naming `declarer` (a smart wallet, say), signed by `key`."""
    d = Declaration.create(
        declarer,
        content["iscc"],
        content["datahash"],
        nonce=next_nonce(registry, declarer) if nonce is None else nonce,
        deadline=default_deadline(registry),
    )
    return sign(d, domain_of(registry), key, sealed)
