"""Sending transactions on a real chain: EIP-1559 fees with a cap, one nonce manager per account,
stuck transactions replaced with a fee bump, receipts awaited to N confirmations and re-checked
when a reorg takes them away.

A `Sender` owns one account's nonces in this process. With a journal (a SQLite file) every signed
transaction is written down before it is broadcast, so a process killed mid-flight finds its
transactions again at restart (`recover`): it rebroadcasts what the node forgot, awaits what is
pending, and never leaves a nonce gap behind. web3's middleware offers neither replacement nor a
persistent nonce, hence this module.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3Exception, Web3RPCError

from registry.errors import ChainUnavailable, InsufficientFunds, TransactionLost

__all__ = ["NO_FUNDS", "FeePolicy", "Journal", "Sender", "Sent", "no_funds"]

log = logging.getLogger(__name__)

GWEI = 10**9
# Nodes (geth, reth, anvil) refuse a replacement unless both fees rise by at least 10 %.
MIN_BUMP = 0.10
# How nodes word a sender that cannot pay (Hardhat, anvil, Geth, Erigon, ...).
NO_FUNDS = re.compile(r"insufficient funds|doesn't have enough funds|not enough funds", re.I)
# A transaction the node does not have is offered again at most this often (it may refuse it
# until the base fee comes down).
REBROADCAST_EVERY_S = 2.0


@dataclass(frozen=True)
class FeePolicy:
    """How much the sender offers per gas, and when it gives a transaction up as stuck."""

    max_fee_cap: int = 200 * GWEI
    """Never offer more than this per gas (base fee plus tip), bumps included."""
    priority_fee: int | None = None
    """Tip per gas; None: what the node suggests (eth_maxPriorityFeePerGas), at most the cap."""
    base_fee_multiplier: int = 2
    """maxFeePerGas = multiplier * base fee + tip: room for the base fee to rise while waiting."""
    bump: float = 0.125
    """Fraction by which a replacement raises both fees (at least the nodes' 10 %)."""
    stuck_after_s: float = 30.0
    """A transaction not mined after this long is replaced with higher fees."""
    timeout_s: float = 600.0
    """Give up waiting (ChainUnavailable) after this long; the journal still holds it."""


@dataclass(frozen=True)
class Sent:
    """One signed transaction as broadcast: replacements share the nonce, not the hash."""

    nonce: int
    tx_hash: str
    raw: bytes
    max_fee: int
    tip: int
    payload: dict[str, Any] | None


def no_funds(address: str) -> InsufficientFunds:
    """The error for a sender without ether, saying what helps."""
    return InsufficientFunds(
        f"{address} has no ether to pay for the transaction: fund it (on the devnet: "
        f"`iscc-registry devnet fund {address}`), or leave out --direct to have a relayer pay"
    )


class _Refused(ChainUnavailable):
    """The node answered that it will not take the transaction (funds, fees, size, nonce)."""

    def __init__(self, message: str, nonce_taken: bool = False) -> None:
        super().__init__(message)
        self.nonce_taken = nonce_taken


class Journal:
    """Signed transactions of one account, written before broadcast; survives a kill -9."""

    def __init__(self, path: Path, chain_id: int, address: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sent (chain_id INTEGER, address TEXT, nonce INTEGER,"
            " tx_hash TEXT PRIMARY KEY, raw BLOB, max_fee TEXT, tip TEXT, payload TEXT,"
            " state TEXT NOT NULL DEFAULT 'open')"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS sent_open ON sent (chain_id, address, state)")
        self._key = (chain_id, address)
        self._lock = threading.Lock()

    def record(self, sent: Sent) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                (
                    *self._key,
                    sent.nonce,
                    sent.tx_hash,
                    sent.raw,
                    str(sent.max_fee),
                    str(sent.tip),
                    json.dumps(sent.payload) if sent.payload is not None else None,
                ),
            )

    def close_nonce(self, nonce: int, state: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sent SET state = ? WHERE chain_id = ? AND address = ? AND nonce = ?",
                (state, *self._key, nonce),
            )

    def open(self) -> dict[int, list[Sent]]:
        """Every transaction of a nonce not yet settled, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT nonce, tx_hash, raw, max_fee, tip, payload FROM sent WHERE chain_id = ?"
                " AND address = ? AND state = 'open' ORDER BY nonce, rowid",
                self._key,
            ).fetchall()
        found: dict[int, list[Sent]] = {}
        for nonce, tx_hash, raw, max_fee, tip, payload in rows:
            found.setdefault(nonce, []).append(
                Sent(
                    nonce,
                    tx_hash,
                    bytes(raw),
                    int(max_fee),
                    int(tip),
                    json.loads(payload) if payload else None,
                )
            )
        return found

    def highest_open_nonce(self) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT max(nonce) FROM sent WHERE chain_id = ? AND address = ? AND state = 'open'",
                self._key,
            ).fetchone()
        return row[0]

    def close(self) -> None:
        self._db.close()


class Sender:
    """Sends one account's transactions; safe to call from many threads at once."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        chain_id: int,
        confirmations: int = 0,
        policy: FeePolicy | None = None,
        journal: Journal | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.policy = policy or FeePolicy()
        self.journal = journal
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._next: int | None = None
        self._released: list[int] = []
        self._orphans: dict[int, list[Sent]] = {}
        self._inflight: set[int] = set()
        self._legacy_chain = False  # set by _fees from the pending block
        self.replacements = 0
        self.rebroadcasts = 0
        self.reorged = 0
        """Receipts that a reorg took away while they were awaited."""
        self.unconfirmed_seen = 0
        """Receipts seen mined but not yet confirmed (a new one after each reorg)."""

    # --- nonces ---------------------------------------------------------------------------

    def _allocate(self) -> int:
        with self._lock:
            if self._released:
                nonce = heapq.heappop(self._released)
            else:
                if not self._inflight:
                    # Nothing of ours is pending: the chain's count is the truth, whatever
                    # happened since (a reorg that dropped our transactions, another process
                    # with this key).
                    self._next = self._first_free_nonce()
                assert self._next is not None
                nonce = self._next
                self._next += 1
            self._inflight.add(nonce)
            return nonce

    def _first_free_nonce(self) -> int:
        address = self.account.address
        pending = self._rpc(lambda: self.w3.eth.get_transaction_count(address, "pending"))
        journaled = self.journal.highest_open_nonce() if self.journal else None
        # The node may have forgotten what we sent (restart, eviction); the journal has not, and
        # `recover` rebroadcasts those, so new transactions go after them.
        return max(int(pending), journaled + 1 if journaled is not None else 0)

    def _release(self, nonce: int) -> None:
        """A nonce taken but never broadcast goes back, or it would leave a gap that blocks every
        later transaction of the account."""
        with self._lock:
            self._inflight.discard(nonce)
            if self._next == nonce + 1:
                self._next = nonce
            else:
                heapq.heappush(self._released, nonce)

    # --- fees -----------------------------------------------------------------------------

    def _fees(self) -> tuple[int, int]:
        cap = self.policy.max_fee_cap
        block = self._rpc(lambda: self.w3.eth.get_block("pending"))
        base = block.get("baseFeePerGas")
        self._legacy_chain = base is None
        if base is None:  # a chain without EIP-1559: one price, tip and max alike
            price = min(cap, int(self._rpc(lambda: self.w3.eth.gas_price)))
            return price, price
        tip = self.policy.priority_fee
        if tip is None:
            tip = int(self._rpc(lambda: self.w3.eth.max_priority_fee))
        tip = min(tip, cap)
        return min(cap, self.policy.base_fee_multiplier * int(base) + tip), tip

    def _bumped(self, last: Sent) -> tuple[int, int] | None:
        """Fees for a replacement of `last`, or None when the cap leaves no room for one."""
        factor = 1 + max(self.policy.bump, MIN_BUMP)
        max_fee, tip = self._fees()
        tip = max(tip, math.ceil(last.tip * factor))
        max_fee = max(max_fee, math.ceil(last.max_fee * factor), tip)
        if max_fee > self.policy.max_fee_cap:
            if last.max_fee >= self.policy.max_fee_cap:
                return None
            max_fee = self.policy.max_fee_cap
            tip = min(tip, max_fee)
            if max_fee < math.ceil(last.max_fee * (1 + MIN_BUMP)):
                return None
        return max_fee, tip

    # --- sending --------------------------------------------------------------------------

    def send(
        self,
        build: Callable[[int], dict[str, Any]],
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send the transaction that `build(nonce)` returns (to, data, gas, ...), await its
        receipt to the confirmations asked for and return it (status 0 included).

        `build` may raise (a revert found while estimating gas); the nonce is then released.
        `payload` is kept in the journal with the transaction, for whoever recovers it.
        """
        self._resend_orphans()
        for _ in range(3):
            nonce = self._allocate()
            try:
                tx = build(nonce)
                max_fee, tip = self._fees()
                sent = self._sign(tx, nonce, max_fee, tip, payload)
            except BaseException:
                self._release(nonce)
                raise
            if self.journal:
                self.journal.record(sent)
            try:
                self._broadcast(sent, fresh=True)
                break
            except _Refused as exc:
                # The node will never mine it: the nonce is free again, unless another sender
                # of this account used it, in which case we count from the chain's again.
                if self.journal:
                    self.journal.close_nonce(nonce, "refused")
                if not exc.nonce_taken:
                    self._release(nonce)
                    if NO_FUNDS.search(str(exc)):
                        raise no_funds(self.account.address) from None
                    raise
                log.warning("nonce %d of %s used elsewhere: recounting", nonce, sent.tx_hash)
                with self._lock:
                    self._inflight.discard(nonce)
                    self._next = self._first_free_nonce()
        else:
            raise ChainUnavailable(f"{self.account.address}'s nonces keep being taken elsewhere")
        try:
            receipt = self.wait([sent])
            with self._lock:
                self._inflight.discard(nonce)
            return receipt
        except TransactionLost:
            with self._lock:
                self._inflight.discard(nonce)
            raise
        except ChainUnavailable:
            # Perhaps on its way, perhaps not: later transactions must not wait behind a gap,
            # so the next send rebroadcasts it if the node does not have it.
            with self._lock:
                self._orphans.setdefault(nonce, [sent])
            raise

    def _resend_orphans(self) -> None:
        with self._lock:
            orphans = list(self._orphans.items())
        for nonce, attempts in orphans:
            try:
                if self._mined(attempts) is None and not self._nonce_used(nonce):
                    if not self._known(attempts[-1]):
                        self._rebroadcast(attempts)
                    continue  # in the pool again: whoever waits for it sees it mined
            except ChainUnavailable:
                return
            with self._lock:
                self._orphans.pop(nonce, None)
                self._inflight.discard(nonce)

    def _sign(
        self, tx: dict[str, Any], nonce: int, max_fee: int, tip: int, payload: dict | None
    ) -> Sent:
        fields = {key: tx[key] for key in ("to", "data", "value", "gas") if tx.get(key) is not None}
        fields.update(nonce=nonce, chainId=self.chain_id)
        if self._legacy_chain:
            fields["gasPrice"] = max_fee
        else:
            fields.update(maxFeePerGas=max_fee, maxPriorityFeePerGas=tip, type=2)
        signed = self.account.sign_transaction(fields)
        kept = (payload or {}) | {"tx": _unsigned(fields)}
        tx_hash = "0x" + bytes(signed.hash).hex()
        return Sent(nonce, tx_hash, bytes(signed.raw_transaction), max_fee, tip, kept)

    def _broadcast(self, sent: Sent, fresh: bool = False) -> None:
        """Hand the signed transaction to the node. `fresh`: never sent before, so "nonce too
        low" means another transaction took the nonce, not that this one was mined."""
        try:
            self.w3.eth.send_raw_transaction(sent.raw)
        except Web3RPCError as exc:
            message = str(exc).lower()
            # The node has it already (a rebroadcast after a restart): the wait loop goes on.
            if "already known" in message or "already imported" in message:
                return
            # Hardhat's automine answers a transaction it mined but that reverted (or ran out of
            # gas) with an error naming it: the wait loop reads its receipt like any other.
            data = exc.rpc_response.get("error", {}).get("data") if exc.rpc_response else None
            if isinstance(data, dict) and data.get("txHash"):
                return
            if "nonce too low" in message or "nonce is too low" in message:
                if not fresh:
                    return  # mined already (ours or not): the wait loop tells which
                raise _Refused(str(exc), nonce_taken=True) from None
            raise _Refused(f"the node refused transaction {sent.tx_hash}: {exc}") from None
        except (requests.RequestException, OSError) as exc:
            raise ChainUnavailable(f"RPC failed while sending {sent.tx_hash}: {exc}") from None

    def wait(self, attempts: list[Sent]) -> dict[str, Any]:
        """Await one nonce's transaction (any of its replacements) to the confirmations asked
        for; replace it when stuck, rebroadcast it when the node forgot it or a reorg undid it.
        """
        attempts = list(attempts)
        nonce = attempts[-1].nonce
        started = last_sent = time.monotonic()
        seen: dict[str, Any] | None = None
        resent = 0.0
        while True:
            receipt = self._mined(attempts)
            if receipt is not None:
                if self._confirmed(receipt):
                    if self.journal:
                        self.journal.close_nonce(nonce, "mined")
                    return receipt
                if seen is None or seen["blockHash"] != receipt["blockHash"]:
                    self.unconfirmed_seen += 1
                seen = receipt
                if not self._in_canonical_chain(receipt):
                    time.sleep(self.poll_s)  # the node is switching chains; ask again
                    continue
            elif seen is not None:
                # Mined, then taken away by a reorg: it is back in the pool, or it is rebroadcast
                # below, or its nonce went to another transaction and it is reported lost.
                log.warning(
                    "a reorg removed block %d with %s: waiting for it again",
                    seen["blockNumber"],
                    attempts[-1].tx_hash,
                )
                self.reorged += 1
                seen = None
                last_sent = time.monotonic()
                time.sleep(self.poll_s)
                continue
            elif self._nonce_used(nonce):
                # Used, yet none of ours is mined: look once more (the receipt may have landed
                # between the two calls) before calling it lost.
                receipt = self._mined(attempts)
                if receipt is None:
                    if self.journal:
                        self.journal.close_nonce(nonce, "lost")
                    raise TransactionLost(
                        f"nonce {nonce} of {self.account.address} was used by another "
                        f"transaction; {attempts[-1].tx_hash} will never be mined"
                    )
                continue
            elif time.monotonic() - last_sent >= self.policy.stuck_after_s:
                attempts.append(self._replace(attempts[-1]))
                last_sent = time.monotonic()
            elif time.monotonic() - resent >= REBROADCAST_EVERY_S and not self._known(attempts[-1]):
                # Dropped from the pool (anvil drops what the base fee outgrew; geth evicts under
                # pressure), or put back by a reorg that the node did not re-queue.
                self._rebroadcast(attempts)
                resent = time.monotonic()
            if time.monotonic() - started > self.policy.timeout_s:
                raise ChainUnavailable(
                    f"transaction {attempts[-1].tx_hash} (nonce {nonce}) not confirmed within "
                    f"{self.policy.timeout_s:.0f} s"
                )
            time.sleep(self.poll_s)

    def _rebroadcast(self, attempts: list[Sent]) -> None:
        """Send the newest attempt the node takes again (a replacement it refused is skipped)."""
        for sent in reversed(attempts):
            log.warning("transaction %s gone from the node: rebroadcast", sent.tx_hash)
            self.rebroadcasts += 1
            try:
                self._broadcast(sent)
                return
            except _Refused as exc:
                log.warning("rebroadcasting %s refused: %s", sent.tx_hash, exc)

    def _replace(self, last: Sent) -> Sent:
        fees = self._bumped(last)
        if fees is None:
            log.warning(
                "transaction %s stuck at the fee cap %d wei; waiting", last.tx_hash, last.max_fee
            )
            return last
        tx = dict((last.payload or {}).get("tx") or {})
        sent = self._sign(tx, last.nonce, *fees, _without_tx(last.payload))
        if self.journal:
            self.journal.record(sent)
        try:
            self._broadcast(sent)
        except _Refused as exc:
            log.warning("replacing %s failed: %s", last.tx_hash, exc)
            return last
        self.replacements += 1
        log.warning(
            "transaction %s stuck: replaced by %s (max fee %d -> %d wei)",
            last.tx_hash,
            sent.tx_hash,
            last.max_fee,
            sent.max_fee,
        )
        return sent

    def _mined(self, attempts: list[Sent]) -> dict[str, Any] | None:
        for sent in reversed(attempts):
            try:
                receipt = self._rpc(lambda s=sent: self.w3.eth.get_transaction_receipt(s.tx_hash))
            except TransactionNotFound:
                continue
            if receipt is not None and receipt.get("blockNumber") is not None:
                return dict(receipt)
        return None

    def _confirmed(self, receipt: dict[str, Any]) -> bool:
        """Buried under enough blocks, and still in the canonical chain (a reorg may have taken
        its block since it was mined)."""
        head = int(self._rpc(lambda: self.w3.eth.block_number))
        if head - receipt["blockNumber"] < self.confirmations:
            return False
        return self._in_canonical_chain(receipt)

    def _in_canonical_chain(self, receipt: dict[str, Any]) -> bool:
        try:
            block = self._rpc(lambda: self.w3.eth.get_block(receipt["blockNumber"]))
        except BlockNotFound:
            return False
        return HexBytes(block["hash"]) == HexBytes(receipt["blockHash"])

    def _nonce_used(self, nonce: int) -> bool:
        mined = self._rpc(lambda: self.w3.eth.get_transaction_count(self.account.address, "latest"))
        return int(mined) > nonce

    def _known(self, sent: Sent) -> bool:
        try:
            self._rpc(lambda: self.w3.eth.get_transaction(sent.tx_hash))
        except TransactionNotFound:
            return False
        return True

    # --- restart --------------------------------------------------------------------------

    def recover(self) -> list[tuple[list[Sent], dict[str, Any] | None, str | None]]:
        """Settle what a previous run left in flight: for every open nonce, its receipt (or
        None) and an error if it was lost. Call before sending anything new."""
        if not self.journal:
            return []
        settled = []
        for attempts in self.journal.open().values():
            # A replacement may not have reached the node before the kill; the last one did
            # if any did, so that is the one to rebroadcast.
            if not self._mined(attempts) and not self._known(attempts[-1]):
                self._rebroadcast(attempts)
            try:
                settled.append((attempts, self.wait(attempts), None))
            except TransactionLost as exc:
                settled.append((attempts, None, str(exc)))
        return settled

    def balance(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.get_balance(self.account.address)))

    def _rpc(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (TransactionNotFound, BlockNotFound):
            raise
        except (requests.RequestException, OSError, Web3Exception) as exc:
            raise ChainUnavailable(f"RPC failed: {type(exc).__name__}: {exc}") from None


def _unsigned(fields: dict[str, Any]) -> dict[str, Any]:
    """What a replacement needs to rebuild the transaction, JSON-safe."""
    tx = {k: fields[k] for k in ("to", "value", "gas") if k in fields}
    if "data" in fields:
        data = fields["data"]
        tx["data"] = data if isinstance(data, str) else "0x" + bytes(data).hex()
    return tx


def _without_tx(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    rest = {k: v for k, v in payload.items() if k != "tx"}
    return rest or None
