"""The deployment file: read back as written, addresses checksummed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from registry.chain.deployment import Deployment
from registry.errors import ChainUnavailable


def test_addresses_in_a_deployment_file_are_checksummed_when_read(tmp_path: Path) -> None:
    """Outside attacker review: a deployment file written by hand in lower case made every
    relayed signature "signed for another contract"."""
    registry, ledger = "0x" + "ab" * 20, "0x" + "cd" * 20
    path = tmp_path / "deployment.json"
    path.write_text(
        json.dumps(
            {
                "chain_id": 31337,
                "address": registry,
                "block": 1,
                "rpc_url": "http://x",
                "realm": 0,
                "hub_id": 0,
                "licences": ledger,
            }
        )
    )
    loaded = Deployment.load(path)
    assert (loaded.address, loaded.licences) == (
        to_checksum_address(registry),
        to_checksum_address(ledger),
    )
    path.write_text(json.dumps({**json.loads(path.read_text()), "address": "0x12"}))
    with pytest.raises(ChainUnavailable, match="unreadable deployment file"):
        Deployment.load(path)
