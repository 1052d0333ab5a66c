"""One JSON-RPC node as the indexer talks to it: raw calls, block headers, and the answers that
mean an eth_getLogs range was too large for it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests
from web3.exceptions import Web3Exception

from registry.errors import ChainUnavailable
from registry.index.backoff import Backoff, retry_after
from registry.index.events import to_bytes, to_int

__all__ = [
    "Header",
    "Node",
    "RangeTooLarge",
    "RateLimited",
    "endpoint_of",
    "rate_limited",
    "too_large",
]

log = logging.getLogger(__name__)

# Phrases public providers use when a client asks too often (Infura, Alchemy, QuickNode, ...);
# checked before _TOO_LARGE, which "exceeded" would match too.
_RATE_LIMITED = (
    "rate limit",
    "too many requests",
    "rate exceeded",
    "request rate",
    "requests per second",
    "compute units",
    "throughput",
)
# Calls other than eth_getLogs that a provider rate-limits are retried this often in place.
RATE_LIMIT_RETRIES = 6

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


class RateLimited(RangeTooLarge):
    """The provider answered HTTP 429 (or its JSON-RPC equivalent) to eth_getLogs: back off,
    and ask for less at a time."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__(f"rate limited (retry after {retry_after} s)")
        self.retry_after = retry_after


def rate_limited(message: str, code: Any = None) -> bool:
    """Whether a node's error answer says the client asks too often."""
    if code == 429:
        return True
    text = message.lower()
    return any(phrase in text for phrase in _RATE_LIMITED)


def endpoint_of(w3: Any, fallback: str) -> str:
    """The URL a web3 connection talks to: the indexer's own HTTP reads go there as well, so
    that ISCC_REGISTRY_RPC_URL redirects every call, logs included."""
    return str(getattr(w3.provider, "endpoint_uri", None) or fallback)


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
        """One raw JSON-RPC call; transport failures and node errors become ChainUnavailable.

        A rate-limited eth_getLogs raises RateLimited (the follower backs off and shrinks the
        range); other rate-limited calls are retried here with capped, jittered backoff.
        """
        backoff = Backoff()
        for _attempt in range(RATE_LIMIT_RETRIES):
            try:
                return self._call(method, params)
            except RateLimited as exc:
                if method == "eth_getLogs":
                    raise
                delay = backoff.next(exc.retry_after)
                log.warning("%s rate-limited by %s; retrying in %.1f s", method, self.url, delay)
                time.sleep(delay)
        raise ChainUnavailable(f"{method} at {self.url}: still rate-limited, giving up for now")

    def _call(self, method: str, params: list[Any]) -> Any:
        try:
            response = self.w3.provider.make_request(method, params)
        except requests.HTTPError as exc:
            answer = exc.response
            if answer is not None and answer.status_code == 429:
                raise RateLimited(retry_after(answer.headers.get("Retry-After"))) from None
            raise ChainUnavailable(
                f"RPC node {self.url} failed on {method}: {type(exc).__name__}: {exc}"
            ) from None
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
            code = error.get("code") if isinstance(error, dict) else None
            if rate_limited(message, code):
                raise RateLimited
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
