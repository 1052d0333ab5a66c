"""Content and revert-name helpers shared by the contract tests (the test doubles of
contracts/mocks are deployed by tests/mocks.py, re-exported here)."""

from __future__ import annotations

import iscc_lib
import pytest
from eth_account.signers.local import LocalAccount
from mocks import deploy_mock, mock_contract

from registry.chain.contract import Registry
from registry.chain.declaration import Declaration, SignedDeclaration, sign
from registry.chain.submit import default_deadline, domain_of, next_nonce


def sum_code(data: bytes) -> dict:
    """ISCC-CODE (Data + Instance) and datahash of `data`, computed by iscc-lib."""
    data_code = iscc_lib.gen_data_code_v0(data)["iscc"]
    instance = iscc_lib.gen_instance_code_v0(data)
    iscc = iscc_lib.gen_iscc_code_v0([data_code, instance["iscc"]])["iscc"]
    return {"iscc": iscc, "datahash": instance["datahash"]}


def revert_name(exc: pytest.ExceptionInfo) -> str:
    """The custom error's name in an InvalidDeclaration message ("... rejects it: Name(...)")."""
    return str(exc.value).split("rejects it: ")[-1].split("(")[0]


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


__all__ = ["deploy_mock", "mock_contract", "prepare_for", "revert_name", "sum_code"]
