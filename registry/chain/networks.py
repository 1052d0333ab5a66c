"""Known EVM networks: name, explorer links, how many confirmations to wait, typical block time.

The built-in table covers the chains a registry is likely to be deployed on; users add or
override entries in a TOML file (ISCC_REGISTRY_NETWORKS_FILE, default HOME/networks.toml):

    [[network]]
    chain_id = 123456
    name = "Our rollup"
    explorer = "https://explorer.example.org"
    confirmations = 10
    block_time = 2.0

`explorer` is a base URL with Etherscan-style paths (/tx/HASH, /address/ADDRESS, /block/N);
`tx_url`, `address_url` and `block_url` override single templates ({hash}, {address}, {block}).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from registry.config import Settings
from registry.errors import InputError

__all__ = ["BUILTIN", "Network", "index_confirmations", "load_networks", "network_for"]

# An unknown chain gets this many confirmations: enough for a public L1 or a rollup's unsafe
# head, a few seconds to a few minutes of waiting.
UNKNOWN_CONFIRMATIONS = 12


@dataclass(frozen=True)
class Network:
    """One chain as the registry presents it and waits on it."""

    chain_id: int
    name: str
    confirmations: int
    block_time: float
    """Typical seconds between blocks; 0 for a devnet that mines on demand."""
    tx_url: str = ""
    address_url: str = ""
    block_url: str = ""
    known: bool = True
    """False for a chain that is in no table: its values are guesses."""

    def tx_link(self, tx_hash: str) -> str | None:
        return self.tx_url.format(hash=tx_hash) if self.tx_url else None

    def address_link(self, address: str) -> str | None:
        return self.address_url.format(address=address) if self.address_url else None

    def block_link(self, block: int) -> str | None:
        return self.block_url.format(block=block) if self.block_url else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "name": self.name,
            "confirmations": self.confirmations,
            "block_time": self.block_time,
            "tx_url": self.tx_url or None,
            "address_url": self.address_url or None,
            "block_url": self.block_url or None,
            "known": self.known,
        }


def _explorer(
    chain_id: int, name: str, explorer: str, confirmations: int, block_time: float
) -> Network:
    base = explorer.rstrip("/")
    return Network(
        chain_id=chain_id,
        name=name,
        confirmations=confirmations,
        block_time=block_time,
        tx_url=f"{base}/tx/{{hash}}" if base else "",
        address_url=f"{base}/address/{{address}}" if base else "",
        block_url=f"{base}/block/{{block}}" if base else "",
    )


# Confirmations: Ethereum's and its testnets' blocks are final after two epochs (64 blocks), but
# reorgs deeper than a few blocks have not happened since the merge; rollups reorg only their
# unsafe head, before the batch reaches L1, which takes more of their (shorter) blocks.
BUILTIN: tuple[Network, ...] = (
    _explorer(1, "Ethereum", "https://etherscan.io", 12, 12.0),
    _explorer(11155111, "Sepolia testnet", "https://sepolia.etherscan.io", 6, 12.0),
    _explorer(17000, "Holesky testnet", "https://holesky.etherscan.io", 6, 12.0),
    _explorer(10, "OP Mainnet", "https://optimistic.etherscan.io", 30, 2.0),
    _explorer(11155420, "OP Sepolia testnet", "https://sepolia-optimism.etherscan.io", 10, 2.0),
    _explorer(8453, "Base", "https://basescan.org", 30, 2.0),
    _explorer(84532, "Base Sepolia testnet", "https://sepolia.basescan.org", 10, 2.0),
    _explorer(42161, "Arbitrum One", "https://arbiscan.io", 60, 0.25),
    _explorer(421614, "Arbitrum Sepolia testnet", "https://sepolia.arbiscan.io", 20, 0.25),
    _explorer(137, "Polygon PoS", "https://polygonscan.com", 32, 2.0),
    _explorer(80002, "Polygon Amoy testnet", "https://amoy.polygonscan.com", 16, 2.0),
    _explorer(100, "Gnosis", "https://gnosisscan.io", 12, 5.0),
    _explorer(10200, "Gnosis Chiado testnet", "https://gnosis-chiado.blockscout.com", 6, 5.0),
    # Hardhat's default chain (anvil's too): blocks on demand, nothing to wait for, no explorer.
    Network(31337, "Hardhat devnet", confirmations=0, block_time=0.0),
)

_FIELDS = {
    "chain_id",
    "name",
    "explorer",
    "confirmations",
    "block_time",
    "tx_url",
    "address_url",
    "block_url",
}


def _user_network(entry: Mapping[str, Any], builtin: Network | None, where: Path) -> Network:
    unknown = set(entry) - _FIELDS
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} in a network")
    try:
        chain_id = int(entry["chain_id"])
        base = builtin or Network(
            chain_id,
            str(entry["name"]),
            confirmations=UNKNOWN_CONFIRMATIONS,
            block_time=float(entry.get("block_time", 12.0)),
        )
        if "explorer" in entry:
            base = replace(
                _explorer(chain_id, base.name, str(entry["explorer"]), 0, 0.0),
                confirmations=base.confirmations,
                block_time=base.block_time,
            )
        changes: dict[str, Any] = {}
        for key in ("name", "tx_url", "address_url", "block_url"):
            if key in entry:
                changes[key] = str(entry[key])
        if "confirmations" in entry:
            changes["confirmations"] = int(entry["confirmations"])
        if "block_time" in entry:
            changes["block_time"] = float(entry["block_time"])
    except KeyError as exc:
        raise InputError(f"{where}: a network needs {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: bad network entry {dict(entry)}: {exc}") from None
    network = replace(base, **changes, known=True)
    if network.confirmations < 0 or network.block_time < 0:
        raise InputError(f"{where}: confirmations and block_time must not be negative")
    return network


def load_networks(path: Path | None = None) -> dict[int, Network]:
    """The built-in table, with the entries of the TOML file at `path` (if it exists) on top."""
    table = {n.chain_id: n for n in BUILTIN}
    if path is None or not path.exists():
        return table
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read networks file {path}: {exc}") from None
    entries: Iterable[Any] = data.get("network", [])
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected [[network]] tables")
    for entry in entries:
        if not isinstance(entry, dict):
            raise InputError(f"{path}: expected [[network]] tables")
        network = _user_network(entry, table.get(_chain_id(entry, path)), path)
        table[network.chain_id] = network
    return table


def _chain_id(entry: Mapping[str, Any], where: Path) -> int:
    try:
        return int(entry["chain_id"])
    except KeyError:
        raise InputError(f"{where}: a network needs chain_id") from None
    except (TypeError, ValueError):
        raise InputError(f"{where}: chain_id must be a number, not {entry['chain_id']!r}") from None


def network_for(chain_id: int, path: Path | None = None) -> Network:
    """The chain's entry, or a conservative guess for a chain no table knows."""
    found = load_networks(path).get(chain_id)
    if found is not None:
        return found
    return Network(
        chain_id,
        f"chain {chain_id}",
        confirmations=UNKNOWN_CONFIRMATIONS,
        block_time=12.0,
        known=False,
    )


def index_confirmations(settings: Settings, chain_id: int) -> int:
    """The indexer's confirmations: ISCC_REGISTRY_CONFIRMATIONS, else the network's."""
    if settings.confirmations is not None:
        return settings.confirmations
    return network_for(chain_id, settings.networks_path).confirmations
