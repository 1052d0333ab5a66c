"""Asking a smart-contract wallet whether it accepts a signature (ERC-1271), off chain.

The contracts give a wallet's isValidSignature a fixed stipend (WALLET_CHECK_GAS); the service
asks with the same stipend in an eth_call, so a wallet that answers here answers the same on
chain, and a hostile one cannot make the question cost more than that.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode

from registry.chain.licences import WALLET_CHECK_GAS

__all__ = ["ERC1271_MAGIC", "wallet_accepts"]

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
"""isValidSignature(bytes32,bytes)'s selector: its selector is also the answer meaning yes."""


def wallet_accepts(
    w3: Any, account: str, digest: bytes, signature: bytes, caller: str | None = None
) -> bool | None:
    """None when `account` has no code (a key, not a wallet); else whether the wallet accepts
    `signature` over `digest`. As WalletSignatures.sol takes it: only a 32-byte word that is
    the magic value padded with zeros is a yes; a revert, running out of the stipend, a short
    answer or any other word (a fallback echoing its calldata, say) is a no. `caller` is the
    contract that would ask on chain (a wallet may answer by its asker)."""
    if not w3.eth.get_code(account):
        return None
    data = ERC1271_MAGIC + abi_encode(["bytes32", "bytes"], [digest, signature])
    # An eth_call's gas pays the transaction's base cost and calldata too: on top of them the
    # wallet gets the contracts' stipend, as its call from the contract would.
    intrinsic = 21_000 + 16 * len(data)
    call: dict[str, Any] = {
        "to": account,
        "data": "0x" + data.hex(),
        "gas": WALLET_CHECK_GAS + intrinsic,
    }
    if caller is not None:
        call["from"] = caller
    try:
        answer = bytes(w3.eth.call(call))
    except Exception:  # a revert, out of gas, a node that refuses: no valid answer
        return False
    return answer[:32] == ERC1271_MAGIC.ljust(32, b"\x00")
