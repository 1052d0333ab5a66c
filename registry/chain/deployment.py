"""The deployment file: where a registry contract lives and how to reach it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from eth_utils import to_checksum_address

from registry.errors import ChainUnavailable


@dataclass(frozen=True)
class Deployment:
    """One registry contract on one chain, as written by `devnet start` or a deploy, with the
    licence ledger beside it (`licences`: its address; empty in a deployment file written
    before the ledger existed, which then has no licences)."""

    chain_id: int
    address: str
    block: int
    rpc_url: str
    realm: int
    hub_id: int
    tx_hash: str = ""
    licences: str = ""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        if not path.exists():
            raise ChainUnavailable(
                f"no deployment file at {path}: start a devnet (`iscc-registry devnet start`) "
                "or set ISCC_REGISTRY_DEPLOYMENT_FILE"
            )
        try:
            deployment = cls(**json.loads(path.read_text()))
            # Checksummed, as every address the code compares with: a file written by hand in
            # lower case made every relayed signature "signed for another contract" (outside
            # attacker review).
            licences = deployment.licences and to_checksum_address(deployment.licences)
            return replace(
                deployment, address=to_checksum_address(deployment.address), licences=licences
            )
        except (ValueError, TypeError) as exc:
            raise ChainUnavailable(f"unreadable deployment file {path}: {exc}") from None
