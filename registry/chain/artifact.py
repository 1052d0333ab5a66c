"""The contract artifact (ABI and bytecode) shipped in the package.

Apart from registry.chain.contract so that decoding events needs no web3: the indexer's log
reader process imports only this (web3 and eth-account take ~1 s to import).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["CONTRACT_NAME", "LICENCES_NAME", "artifact", "verification_material"]

CONTRACT_NAME = "IsccRegistry"
# The companion ledger of licence grants over the registry's declarations.
LICENCES_NAME = "LicenceRegistry"


@cache
def artifact(name: str = CONTRACT_NAME) -> dict[str, Any]:
    """ABI and bytecode shipped in the package (see scripts/export_contracts.py)."""
    text = resources.files("registry.chain").joinpath("artifacts", f"{name}.json").read_text()
    return json.loads(text)


@cache
def verification_material(name: str = CONTRACT_NAME) -> dict[str, Any]:
    """Standard JSON input, metadata, compiler version and fully qualified name of the shipped
    contract (see scripts/export_contracts.py): what a block explorer needs to verify it."""
    path = resources.files("registry.chain").joinpath("artifacts", f"{name}.verify.json")
    return json.loads(path.read_text())
