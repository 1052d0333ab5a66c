"""Sealed declarations: a commitment that hides the content goes on chain first, the reveal later.

A leaf is keccak256(keccak256(digest || salt)), `digest` the declaration's EIP-712
`SealedDeclaration` digest and `salt` 32 random bytes, so nobody can test a guessed file against a
commitment. Many leaves are committed as one Merkle root; revealing the whole commitment needs no
proof: the contract rebuilds the root with OpenZeppelin's multiproof over all leaves (no sibling
hashes, every flag true), which `merkle_root` computes the same way. A declaration's priority is
its commitment's time, so a copy made from the reveal in the mempool is always later.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak

from registry.chain.declaration import SignedDeclaration
from registry.chain.events import priority_us

__all__ = ["SealedEntry", "leaf", "merkle_root", "priority_us", "reveal_flags", "seal"]


@dataclass(frozen=True)
class SealedEntry:
    """A signed sealed declaration with the salt that hides it."""

    signed: SignedDeclaration
    salt: bytes

    def __post_init__(self) -> None:
        if not self.signed.sealed:
            raise ValueError("a sealed entry needs a declaration signed as SealedDeclaration")
        if len(self.salt) != 32:
            raise ValueError("the salt must be 32 bytes")

    @property
    def leaf(self) -> bytes:
        return leaf(self.signed, self.salt)

    def as_tuple(self) -> tuple:
        """The entry as the contract's `reveal` takes it."""
        return (self.signed.declaration.as_tuple(), self.signed.signature, self.salt)


def seal(signed: SignedDeclaration) -> SealedEntry:
    """A fresh random salt for `signed`."""
    return SealedEntry(signed, secrets.token_bytes(32))


def leaf(signed: SignedDeclaration, salt: bytes) -> bytes:
    """The leaf the contract computes for a revealed entry."""
    digest = signed.declaration.digest(signed.domain, sealed=True)
    return keccak(keccak(digest + salt))


def _pair(a: bytes, b: bytes) -> bytes:
    # OpenZeppelin's Hashes.commutativeKeccak256: sorted pair, so proofs need no left/right bits.
    return keccak(min(a, b) + max(a, b))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root MerkleProof.processMultiProof rebuilds from all `leaves` in this order with no
    proof hashes and all flags true: leaves are consumed pairwise from a queue, then the hashes
    made from them, until one is left."""
    if not leaves:
        raise ValueError("a commitment needs at least one leaf")
    queue = list(leaves)
    position = 0
    while position < len(queue) - 1:
        queue.append(_pair(queue[position], queue[position + 1]))
        position += 2
    return queue[-1]


def reveal_flags(count: int) -> list[bool]:
    """The multiproof flags of a whole commitment's reveal."""
    return [True] * (count - 1)
