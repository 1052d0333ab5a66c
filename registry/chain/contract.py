"""Bindings to the IsccRegistry contract: artifact, connection, transactions and decoded errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    Web3Exception,
    Web3RPCError,
)
from web3.providers.rpc.utils import ExceptionRetryConfiguration
from web3.types import RPCEndpoint, RPCResponse

from registry.chain.artifact import CONTRACT_NAME, LICENCES_NAME, artifact
from registry.chain.deployment import Deployment
from registry.chain.iscc_id import IsccId
from registry.chain.node_http import (
    RPC_DEADLINE_S,
    RPC_TIMEOUT_S,
    DeadlineSession,
    node_deadline,
)
from registry.chain.sender import NO_FUNDS, Sender, no_funds
from registry.errors import ChainUnavailable, InvalidDeclaration, InvalidGrant, RegistryError

CONNECT_TIMEOUT_S = 5.0
"""How long connecting to the node and its first answer may take, in all: a node that accepts
connections and never answers held every caller for RPC_TIMEOUT_S times web3's five tries
(2.5 minutes; attacker review), the service's callers waiting on one another meanwhile."""


@cache
def _error_abis(contract: str = CONTRACT_NAME) -> dict[bytes, dict[str, Any]]:
    errors = {}
    for item in artifact(contract)["abi"]:
        if item["type"] == "error":
            types = ",".join(i["type"] for i in item["inputs"])
            errors[keccak(text=f"{item['name']}({types})")[:4]] = item
    return errors


def decode_revert(
    data: str | bytes | None, realm: int | None = None, contract: str = CONTRACT_NAME
) -> str:
    """Turn revert data into "ErrorName(arg=value, ...)" using the custom errors of `contract`
    (the registry's, or LICENCES_NAME for the licence ledger's); with the deployment's realm,
    ISCC-IDs read as ISCC:MA... rather than their integer body."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    if not data or len(data) < 4:
        return "reverted without a reason"
    error = _error_abis(contract).get(data[:4])
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


def node_name(rpc_url: str) -> str:
    """A node URL as messages may show it: scheme, host and port. Hosted nodes carry their API
    key in the path or the query, some a password in the URL, and a ChainUnavailable message
    is answered to anyone (outside attacker review)."""
    try:
        parts = urlsplit(rpc_url)
        port = parts.port
    except ValueError:
        return "the configured node"
    if not parts.hostname:
        return "the configured node"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


class _DeadlineProvider(HTTPProvider):
    """web3's HTTP provider with one deadline per call, the tries web3 makes again included
    (a node that drips for nearly the deadline and then drops the connection would otherwise
    get each try's deadline anew: outside review)."""

    def __init__(self, rpc_url: str, deadline_s: float, **kwargs: Any) -> None:
        super().__init__(rpc_url, session=DeadlineSession(deadline_s), **kwargs)
        self.deadline_s = deadline_s

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with node_deadline(self.deadline_s):
            return super().make_request(method, params)

    def make_batch_request(self, batch_requests: list[tuple[RPCEndpoint, Any]]) -> Any:
        with node_deadline(self.deadline_s):
            return super().make_batch_request(batch_requests)


def connect(rpc_url: str) -> Web3:
    """A web3 connection that fails fast with ChainUnavailable when nobody answers: within
    CONNECT_TIMEOUT_S, tried once. Later calls retry a refused or dropped connection (quick to
    tell; a connection not made within CONNECT_TIMEOUT_S counts as one), never a node that
    did not answer within RPC_TIMEOUT_S: it will not on the next try either, and web3's
    default tried five times. No call, its tries included, takes longer than RPC_DEADLINE_S
    in all, however slowly the node answers."""
    probe = _DeadlineProvider(
        rpc_url,
        CONNECT_TIMEOUT_S,
        request_kwargs={"timeout": CONNECT_TIMEOUT_S},
        exception_retry_configuration=None,
    )
    try:
        Web3(probe).eth.chain_id  # noqa: B018 - the cheapest call that proves the node answers
    except (requests.RequestException, Web3Exception, OSError) as exc:
        raise ChainUnavailable(
            f"no Ethereum node answers at {node_name(rpc_url)} ({type(exc).__name__})"
        ) from None
    retries = ExceptionRetryConfiguration(
        errors=(requests.ConnectionError, requests.HTTPError), retries=3
    )
    return Web3(
        _DeadlineProvider(
            rpc_url,
            RPC_DEADLINE_S,
            request_kwargs={"timeout": (CONNECT_TIMEOUT_S, RPC_TIMEOUT_S)},
            exception_retry_configuration=retries,
        )
    )


def registry_contract(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=artifact()["abi"])


def licence_contract(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=artifact(LICENCES_NAME)["abi"])


@dataclass(frozen=True)
class Registry:
    """A deployed registry and the connection to reach it."""

    w3: Web3
    contract: Contract
    deployment: Deployment
    # One Sender per account: its nonces must not be handed out twice by two Senders.
    senders: dict[str, Sender] = field(default_factory=dict, compare=False, repr=False)
    confirmations: int | None = None
    """What the default Senders wait for; None: the built-in network table's."""
    _licences: dict[str, Contract] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def open(
        cls,
        deployment: Deployment,
        rpc_url: str | None = None,
        confirmations: int | None = None,
    ) -> Registry:
        """Connect to the deployment's node (or `rpc_url`) and check the contract is there.
        Transactions wait for `confirmations` (default: the built-in network table's)."""
        url = rpc_url or deployment.rpc_url
        w3 = connect(url)
        address = to_checksum_address(deployment.address)
        try:
            chain_id = w3.eth.chain_id
            code = w3.eth.get_code(address)
        except (requests.RequestException, Web3Exception, OSError) as exc:
            # A node that answered the probe and then did not: as unavailable as one that
            # never answered (a caller remembers that; a raw timeout it would not).
            raise ChainUnavailable(
                f"the Ethereum node at {node_name(url)} stopped answering ({type(exc).__name__})"
            ) from None
        if chain_id != deployment.chain_id:
            raise ChainUnavailable(
                f"the node is on chain {chain_id}, the deployment file says {deployment.chain_id}"
            )
        if not code:
            raise ChainUnavailable(
                f"no registry contract at {address} on chain {chain_id}: was the devnet restarted? "
                "run `iscc-registry devnet start` again"
            )
        return cls(
            w3=w3,
            contract=registry_contract(w3, address),
            deployment=deployment,
            confirmations=confirmations,
        )

    @property
    def licences(self) -> Contract:
        """The deployment's licence ledger (LicenceRegistry); ChainUnavailable if the
        deployment has none or it is not on this chain."""
        address = self.deployment.licences
        if not address:
            raise ChainUnavailable(
                "this deployment has no licence ledger (its file predates it): run "
                "`iscc-registry devnet start` again on a devnet, or deploy anew"
            )
        found = self._licences.get(address)
        if found is None:
            if not self.w3.eth.get_code(to_checksum_address(address)):
                raise ChainUnavailable(f"no licence ledger contract at {address}")
            found = self._licences.setdefault(address, licence_contract(self.w3, address))
        return found

    def estimate_gas(self, call: Any, sender: str, contract: str = CONTRACT_NAME) -> int:
        """Gas the call would use if sent now by `sender`; reverts raise InvalidDeclaration
        (InvalidGrant for a call of the licence ledger, `contract` LICENCES_NAME)."""
        with rejections("estimating gas", self.deployment.realm, contract=contract):
            return int(call.estimate_gas({"from": to_checksum_address(sender)}))

    def sender(self, account: LocalAccount) -> Sender:
        """The account's Sender; one is made with the defaults (no journal, the network's
        confirmations) unless `use_sender` installed one."""
        found = self.senders.get(account.address)
        if found is None:
            from registry.chain.networks import network_for

            confirmations = self.confirmations
            if confirmations is None:
                confirmations = network_for(self.deployment.chain_id).confirmations
            found = Sender(self.w3, account, self.deployment.chain_id, confirmations=confirmations)
            found = self.senders.setdefault(account.address, found)
        return found

    def use_sender(self, sender: Sender) -> None:
        self.senders[sender.account.address] = sender

    def transact(
        self,
        call: Any,
        sender: LocalAccount,
        gas_limit: int | None = None,
        payload: dict[str, Any] | None = None,
        contract: str = CONTRACT_NAME,
    ) -> dict:
        """Sign and send a contract call from `sender`, wait for it to be mined (and confirmed
        as the account's Sender asks), return the receipt.

        Reverts are decoded from the custom errors of `contract` (the registry, or the licence
        ledger for LICENCES_NAME) into InvalidDeclaration (InvalidGrant for the ledger).
        """
        realm = self.deployment.realm

        def build(nonce: int) -> dict[str, Any]:
            with rejections("preparing the transaction", realm, sender.address, contract):
                gas = gas_limit or int(call.estimate_gas({"from": sender.address}))
                # With gas and fees given, web3 asks the node nothing; the fees are the
                # Sender's, these are placeholders.
                return call.build_transaction(
                    {
                        "from": sender.address,
                        "nonce": nonce,
                        "chainId": self.deployment.chain_id,
                        "gas": gas,
                        "maxFeePerGas": 1,
                        "maxPriorityFeePerGas": 1,
                    }
                )

        receipt = self.sender(sender).send(build, payload)
        if receipt["status"] != 1:
            tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
            raise _REFUSALS[contract][0](f"transaction {tx_hash} reverted")
        return dict(receipt)


# Per contract: the error its refusals raise, and how messages name it.
_REFUSALS: dict[str, tuple[type[RegistryError], str]] = {
    CONTRACT_NAME: (InvalidDeclaration, "the registry"),
    LICENCES_NAME: (InvalidGrant, "the licence ledger"),
}


@contextmanager
def rejections(
    doing: str, realm: int, sender: str | None = None, contract: str = CONTRACT_NAME
) -> Iterator[None]:
    """Map what web3 raises for a reverting call of `contract` to our errors, naming the
    custom error, and a sender without ether to the one thing that helps."""
    error, who = _REFUSALS[contract]
    try:
        yield
    except ContractCustomError as exc:
        raise error(f"{who} rejects it: {decode_revert(exc.data, realm, contract)}") from None
    except Web3RPCError as exc:
        if sender is not None and NO_FUNDS.search(str(exc)):
            raise no_funds(sender) from None
        raise ChainUnavailable(f"the node refused {doing}: {exc.message or exc}") from None
    except ContractLogicError as exc:
        raise error(f"{who} rejects it: {exc.message or exc}") from None
    except (requests.RequestException, OSError) as exc:
        raise ChainUnavailable(f"RPC failed while {doing}: {exc}") from None
