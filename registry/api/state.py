"""What the running service holds: settings, the store, and the deployment it indexes (if any)."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from fastapi import Request

from registry.api.relayer import RelayQueue
from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import dev_account
from registry.chain.networks import network_for
from registry.chain.sender import GWEI, FeePolicy, Journal, Sender
from registry.config import Settings
from registry.errors import ChainUnavailable, RegistryError
from registry.search.similarity import SimilarityIndex
from registry.search.snippets import SnippetIndex
from registry.store.store import Store

__all__ = ["DEVNET_CHAIN_ID", "AppState", "client_of", "state_of", "store_of"]

DEVNET_CHAIN_ID = 31337

log = logging.getLogger(__name__)

HEAD_CACHE_S = 2.0
GENERATION_CHECK_S = 0.5
LARGEST_ANSWER_SHARE = 8
"""An answer over this share of the cache's bytes is not cached: eleven answers of 24 MiB each
(a document named by declarations) emptied a 256 MiB cache of everyone else's answers, and
one over the whole limit did so on its own (attacker review)."""
CONNECT_RETRY_S = 5.0
"""After a failed connection to the node, callers get its error at once for this long: each
caller trying again in turn (the health thread, relays, /prepare) kept the others waiting a
connection timeout each (attacker review)."""


@dataclass
class AppState:
    settings: Settings
    store: Store
    deployment: Deployment | None = None
    """None when the service only answers from an existing store."""
    indexer_problem: str | None = None
    _registry: Registry | None = None
    _relay: RelayQueue | None = None
    _similarity: SimilarityIndex | None = None
    _snippets: SnippetIndex | None = None
    _answers: OrderedDict[str, tuple[Any, int]] = field(default_factory=OrderedDict)
    _answer_bytes: int = 0
    _generation: tuple[float, Any] = (0.0, None)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)
    _head: tuple[float, int | None, str | None] = (0.0, None, None)
    _balance: tuple[float, tuple[str, int | None] | None] = (0.0, None)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Connecting waits on the node (up to its RPC timeout when the node is unreachable): under
    # the lock of the indexes, every search waited with it.
    _registry_lock: threading.Lock = field(default_factory=threading.Lock)
    _registry_failed: tuple[float, str] = (-CONNECT_RETRY_S, "")

    @classmethod
    def load(cls, settings: Settings, store: Store) -> AppState:
        deployment = None
        if settings.deployment_path.exists():
            deployment = Deployment.load(settings.deployment_path)
        return cls(settings=settings, store=store, deployment=deployment)

    @property
    def contract(self) -> str | None:
        return to_checksum_address(self.deployment.address) if self.deployment else None

    def registry(self) -> Registry:
        """The contract binding, connected on first use so the API starts (and resolves from
        the store) while the node is still down."""
        if self.deployment is None:
            raise ChainUnavailable(
                f"no deployment file at {self.settings.deployment_path}: this service is read-only"
            )
        with self._registry_lock:
            if self._registry is None:
                failed_at, reason = self._registry_failed
                if time.monotonic() - failed_at < CONNECT_RETRY_S:
                    raise ChainUnavailable(reason)
                try:
                    self._registry = Registry.open(self.deployment, self.settings.rpc_url)
                except RegistryError as exc:
                    self._registry_failed = (time.monotonic(), str(exc))
                    raise
            return self._registry

    def connected_registry(self) -> Registry | None:
        """The contract binding if a caller has connected it, else None; never connects."""
        return self._registry

    def cached(self, key: str, compute: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        """A read-through cache for answers that only change when the store does, bounded in
        answers and in bytes (`size` of each answer). The store's generation is read at most
        every GENERATION_CHECK_S, so an answer may be that much older than the store; a
        changed generation drops every cached answer."""
        seen, generation = self._generation
        if time.monotonic() - seen > GENERATION_CHECK_S:
            current = self.store.generation()
            with self._cache_lock:
                if current != generation:
                    self._answers.clear()
                    self._answer_bytes = 0
                self._generation = (time.monotonic(), current)
        with self._cache_lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key][0]
            computed_at = self._generation[1]
        answer = compute()
        # By bytes too: answers carry their metadata document (up to 24 MiB), and one document
        # named by many declarations would otherwise be held once per declaration (attacker
        # review: 50,000 answers of 10 MB each).
        cost = size(answer)
        limit = self.settings.answer_cache_mb * 1024 * 1024
        with self._cache_lock:
            # Computed from an older store than the one the cache now stands for (another
            # request saw the generation move meanwhile): cached, it would have been served
            # until the store changed again (attacker review).
            current = self._generation[1] == computed_at
            if current and key not in self._answers and cost <= limit // LARGEST_ANSWER_SHARE:
                self._answers[key] = (answer, cost)
                self._answer_bytes += cost
            while self._answers and (
                len(self._answers) > self.settings.answer_cache or self._answer_bytes > limit
            ):
                _key, (_answer, dropped) = self._answers.popitem(last=False)
                self._answer_bytes -= dropped
        return answer

    def peek(self, key: str) -> Any | None:
        """The cached answer for `key` if there is one and the store's generation was checked
        recently enough; never touches the store, so the event loop may call it (None: ask
        `cached` from a thread)."""
        seen, _generation = self._generation
        if time.monotonic() - seen > GENERATION_CHECK_S:
            return None
        with self._cache_lock:
            entry = self._answers.get(key)
            if entry is None:
                return None
            self._answers.move_to_end(key)
            return entry[0]

    def similarity(self) -> SimilarityIndex:
        """The similarity index over the store, loaded on first use."""
        with self._lock:
            if self._similarity is None:
                self._similarity = SimilarityIndex(self.store)
            return self._similarity

    def snippets(self) -> SnippetIndex:
        """The snippet index over the store's segments, loaded on first use."""
        with self._lock:
            if self._snippets is None:
                self._snippets = SnippetIndex(self.store)
            return self._snippets

    def relay(self) -> RelayQueue:
        """The relay queue, started on first use; raises ChainUnavailable with the reason when
        this service cannot relay."""
        registry = self.registry()
        with self._lock:
            if self._relay is None:
                payer = self._payer(registry)
                self._relay = RelayQueue(registry, payer, self._sender(registry, payer))
                self._relay.start()
            return self._relay

    def started_relay(self) -> RelayQueue | None:
        """The relay queue if something has used it, without starting it."""
        return self._relay

    def _sender(self, registry: Registry, payer: LocalAccount) -> Sender:
        """The relayer's Sender: fees capped by the settings, the network's confirmations,
        a journal in HOME so that a restart settles what was in flight."""
        network = network_for(registry.deployment.chain_id, self.settings.networks_path)
        confirmations = self.settings.relayer_confirmations
        return Sender(
            registry.w3,
            payer,
            registry.deployment.chain_id,
            confirmations=network.confirmations if confirmations is None else confirmations,
            policy=FeePolicy(
                max_fee_cap=int(self.settings.relayer_max_fee_gwei * GWEI),
                # Replace after a few blocks' worth of waiting, not after one slow block.
                stuck_after_s=max(12.0, 4 * network.block_time),
            ),
            journal=Journal(
                self.settings.relayer_journal_path, registry.deployment.chain_id, payer.address
            ),
        )

    def relayer_balance(self) -> tuple[str, int | None] | None:
        """The relaying account and its balance in wei (None if the node cannot say); None if
        this service does not relay. Cached like the chain head."""
        if self._relay is None and (self.deployment is None or self.settings.relayer_key is None):
            return None
        seen, answer = self._balance
        if time.monotonic() - seen < HEAD_CACHE_S:
            return answer
        try:
            relay = self.relay()
            answer = (relay.payer.address, relay.sender.balance())
        except RegistryError:
            answer = (self._relay.payer.address, None) if self._relay else None
        self._balance = (time.monotonic(), answer)
        return answer

    def _payer(self, registry: Registry) -> LocalAccount:
        from registry.chain.keys import load_key_file

        if self.settings.relayer_key is not None:
            return load_key_file(
                self.settings.relayer_key, os.environ.get("ISCC_REGISTRY_KEY_PASSWORD")
            )
        if registry.deployment.chain_id == DEVNET_CHAIN_ID:
            return dev_account(1)
        raise ChainUnavailable(
            "this service does not relay: set ISCC_REGISTRY_RELAYER_KEY to a funded key file"
        )

    def close(self) -> None:
        if self._relay is not None:
            self._relay.stop()

    def chain_head(self) -> tuple[int | None, str | None]:
        """The chain head, or the reason it is unknown; cached so health checks cannot hammer
        the node."""
        seen, head, problem = self._head
        if time.monotonic() - seen < HEAD_CACHE_S:
            return head, problem
        try:
            head, problem = int(self.registry().w3.eth.block_number), None
        except RegistryError as exc:
            head, problem = None, str(exc)
        except Exception as exc:  # any RPC failure means "unknown", never a 500
            head, problem = None, f"chain node failed: {type(exc).__name__}"
        self._head = (time.monotonic(), head, problem)
        return head, problem


def client_of(request: Request) -> str:
    """The client's address: the connection's peer, or what a trusted proxy forwarded (uvicorn
    rewrites the peer only for the proxies in the `trusted_proxies` setting). An IPv6 client
    is its /64 network: one host is usually given a whole /64, and counting each of its 2^64
    addresses as a client would make every per-client limit (relay attempts, signed notes,
    subscriptions, event streams) meaningless."""
    host = request.client.host if request.client else "unknown"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return host


def state_of(request: Request) -> AppState:
    return request.app.state.registry


def store_of(request: Request) -> Store:
    return state_of(request).store
