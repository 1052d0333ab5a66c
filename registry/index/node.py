"""One JSON-RPC node as the indexer talks to it: raw calls, block headers, and the answers that
mean an eth_getLogs range was too large for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from web3.exceptions import Web3Exception

from registry.errors import ChainUnavailable
from registry.index.events import to_bytes, to_int

__all__ = ["Header", "Node", "RangeTooLarge", "too_large"]

# Phrases nodes use when a getLogs answer would be too big (Geth, Erigon, Alchemy, Infura, ...).
_TOO_LARGE = (
    "too large",
    "too many",
    "more than",
    "exceed",
    "limit",
    "range is too",
    "response size",
    "query timeout",
)


class RangeTooLarge(Exception):
    """The node would not answer eth_getLogs for this many blocks; a narrower range may do."""


@dataclass(frozen=True)
class Header:
    number: int
    hash: bytes
    parent_hash: bytes


def too_large(message: str) -> bool:
    """Whether a node's error message refuses a range for its size."""
    text = message.lower()
    return any(phrase in text for phrase in _TOO_LARGE)


class Node:
    """Raw JSON-RPC through a web3 provider (`make_request`): web3's result formatters cost more
    than the indexing itself at tens of thousands of logs per second."""

    def __init__(self, w3: Any, url: str) -> None:
        self.w3 = w3
        self.url = url

    def call(self, method: str, params: list[Any]) -> Any:
        """One raw JSON-RPC call; transport failures and node errors become ChainUnavailable."""
        try:
            response = self.w3.provider.make_request(method, params)
        except requests.Timeout as exc:
            if method == "eth_getLogs":
                # A node that times out on a wide range often answers a narrower one.
                raise RangeTooLarge from exc
            raise ChainUnavailable(f"{method} timed out at {self.url}") from None
        except (requests.RequestException, Web3Exception, OSError, ValueError) as exc:
            raise ChainUnavailable(
                f"RPC node {self.url} failed on {method}: {type(exc).__name__}: {exc}"
            ) from None
        error = response.get("error")
        if error:
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            if method == "eth_getLogs" and too_large(message):
                raise RangeTooLarge
            raise ChainUnavailable(f"{method} failed at {self.url}: {message}")
        return response.get("result")

    def block_number(self) -> int:
        return to_int(self.call("eth_blockNumber", []))

    def header(self, number: int) -> Header | None:
        """Hash and parent hash of a block, or None if the chain has no such block (yet)."""
        block = self.call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            return None
        return Header(number, to_bytes(block["hash"]), to_bytes(block["parentHash"]))
