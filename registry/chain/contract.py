"""Bindings to the IsccRegistry contract: artifact, connection, transactions and decoded errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    Web3Exception,
    Web3RPCError,
)

from registry.chain.artifact import artifact
from registry.chain.deployment import Deployment
from registry.chain.iscc_id import IsccId
from registry.errors import ChainUnavailable, InsufficientFunds, InvalidDeclaration

RPC_TIMEOUT_S = 30


# How nodes word a sender that cannot pay (Hardhat, anvil, Geth, Erigon, ...).
_NO_FUNDS = re.compile(r"insufficient funds|doesn't have enough funds|not enough funds", re.I)


@cache
def _error_abis() -> dict[bytes, dict[str, Any]]:
    errors = {}
    for item in artifact()["abi"]:
        if item["type"] == "error":
            types = ",".join(i["type"] for i in item["inputs"])
            errors[keccak(text=f"{item['name']}({types})")[:4]] = item
    return errors


def decode_revert(data: str | bytes | None, realm: int | None = None) -> str:
    """Turn revert data into "ErrorName(arg=value, ...)" using the contract's custom errors;
    with the deployment's realm, ISCC-IDs read as ISCC:MA... rather than their integer body."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    if not data or len(data) < 4:
        return "reverted without a reason"
    error = _error_abis().get(data[:4])
    if error is None:
        return f"reverted with unknown error 0x{data.hex()}"
    types = [i["type"] for i in error["inputs"]]
    values = abi_decode(types, data[4:])
    args = ", ".join(
        f"{i['name']}={_format_arg(i['type'], v, realm if i['name'] == 'isccId' else None)}"
        for i, v in zip(error["inputs"], values, strict=True)
    )
    return f"{error['name']}({args})"


def _format_arg(abi_type: str, value: Any, realm: int | None = None) -> str:
    if realm is not None:
        return str(IsccId(value, realm))
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def connect(rpc_url: str) -> Web3:
    """A web3 connection that fails fast with ChainUnavailable when nobody answers."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
    try:
        w3.eth.chain_id  # noqa: B018 - the cheapest call that proves the node answers
    except (requests.RequestException, Web3Exception, OSError) as exc:
        raise ChainUnavailable(
            f"no Ethereum node answers at {rpc_url} ({type(exc).__name__})"
        ) from None
    return w3


def registry_contract(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=artifact()["abi"])


@dataclass(frozen=True)
class Registry:
    """A deployed registry and the connection to reach it."""

    w3: Web3
    contract: Contract
    deployment: Deployment

    @classmethod
    def open(cls, deployment: Deployment, rpc_url: str | None = None) -> Registry:
        w3 = connect(rpc_url or deployment.rpc_url)
        chain_id = w3.eth.chain_id
        if chain_id != deployment.chain_id:
            raise ChainUnavailable(
                f"the node is on chain {chain_id}, the deployment file says {deployment.chain_id}"
            )
        address = to_checksum_address(deployment.address)
        if not w3.eth.get_code(address):
            raise ChainUnavailable(
                f"no registry contract at {address} on chain {chain_id}: was the devnet restarted? "
                "run `iscc-registry devnet start` again"
            )
        return cls(w3=w3, contract=registry_contract(w3, address), deployment=deployment)

    def estimate_gas(self, call: Any, sender: str) -> int:
        """Gas the call would use if sent now by `sender`; reverts raise InvalidDeclaration."""
        with _rejections("estimating gas", self.deployment.realm):
            return int(call.estimate_gas({"from": to_checksum_address(sender)}))

    def transact(self, call: Any, sender: LocalAccount, gas_limit: int | None = None) -> dict:
        """Sign and send a contract call from `sender`, wait for it to be mined, return the receipt.

        Reverts are decoded from the contract's custom errors into InvalidDeclaration.
        """
        with _rejections("preparing the transaction", self.deployment.realm, sender.address):
            tx = call.build_transaction(
                {
                    "from": sender.address,
                    "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
                    "chainId": self.deployment.chain_id,
                    **({"gas": gas_limit} if gas_limit else {}),
                }
            )
        signed = sender.sign_transaction(tx)
        try:
            # Nodes that skip the balance check while estimating refuse the transaction here.
            with _rejections("sending the transaction", self.deployment.realm, sender.address):
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        except TimeExhausted:
            raise ChainUnavailable(
                f"transaction 0x{signed.hash.hex()} not mined within 120 s"
            ) from None
        except (requests.RequestException, OSError) as exc:
            raise ChainUnavailable(f"RPC failed while sending the transaction: {exc}") from None
        if receipt["status"] != 1:
            raise InvalidDeclaration(f"transaction 0x{signed.hash.hex()} reverted")
        return dict(receipt)


@contextmanager
def _rejections(doing: str, realm: int, sender: str | None = None) -> Iterator[None]:
    """Map what web3 raises for a reverting call to our errors, naming the custom error, and a
    sender without ether to the one thing that helps."""
    try:
        yield
    except ContractCustomError as exc:
        raise InvalidDeclaration(
            f"the registry rejects it: {decode_revert(exc.data, realm)}"
        ) from None
    except Web3RPCError as exc:
        if sender is not None and _NO_FUNDS.search(str(exc)):
            raise InsufficientFunds(
                f"{sender} has no ether to pay for the transaction: fund it (on the devnet: "
                f"`iscc-registry devnet fund {sender}`), or leave out --direct to have a "
                "relayer pay"
            ) from None
        raise ChainUnavailable(f"the node refused {doing}: {exc.message or exc}") from None
    except ContractLogicError as exc:
        raise InvalidDeclaration(f"the registry rejects it: {exc.message or exc}") from None
    except (requests.RequestException, OSError) as exc:
        raise ChainUnavailable(f"RPC failed while {doing}: {exc}") from None
