"""The relay queue: verified signed declarations and owner actions, sent in batches by one key.

One worker thread sends every transaction through the account's Sender (registry.chain.sender),
which owns its nonces. Requests wait for their own outcome; identical resubmissions share one
job, so a client that retries after a timeout never declares twice (the contract's nonce would
refuse it anyway). With a journal, a relayer killed mid-flight finds the transactions it had
sent at restart: their jobs exist again from the start, so a client that resubmits joins them,
and they finish when the transactions are confirmed (or are reported lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from registry.api.errors import GrantConflict, RelayConflict, StaleAction
from registry.chain.actions import SignedAction, act_relayed, actions_of, signable
from registry.chain.contract import Registry
from registry.chain.declaration import SignedDeclaration
from registry.chain.licences import (
    SignedGrant,
    SignedTermination,
    grant_outcomes,
    licence_domain,
    relay_grants,
    submit_termination,
)
from registry.chain.relayer import relay_batch, results_of_receipt
from registry.chain.sender import Sender, Sent
from registry.chain.submit import domain_of
from registry.chain.wallets import wallet_accepts
from registry.errors import InvalidDeclaration, InvalidGrant, RegistryError

__all__ = [
    "Job",
    "RelayQueue",
    "action_key",
    "declaration_key",
    "grant_key",
    "termination_key",
]

log = logging.getLogger(__name__)

JobState = Literal["pending", "done", "failed"]
MAX_BATCH = 100
# How long the worker waits for more entries before sending a batch: latency for one request
# against fewer, fuller transactions under load.
BATCH_WINDOW_S = 0.2
MAX_JOBS = 100_000


@dataclass(eq=False)
class Job:
    key: str
    kind: str
    submitter: str
    payload: SignedDeclaration | SignedAction | SignedGrant | SignedTermination | None
    """None for a job recovered from the journal: it is only awaited, never sent again."""
    state: JobState = "pending"
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    done: threading.Event = field(default_factory=threading.Event)
    settle: Callable[[int], None] | None = None
    """Told the gas this job really cost once mined (the relay policy's budgets)."""
    _wakers: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(
        self, result: dict[str, Any] | None = None, error: str | None = None, gas: int | None = None
    ) -> None:
        with self._lock:
            self.result, self.error = result, error
            self.state = "failed" if error else "done"
            self.done.set()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()
        if gas is not None and self.settle is not None:
            try:
                self.settle(gas)
            except Exception:  # bookkeeping must never fail the worker
                log.exception("settling a relay job's gas failed")

    async def wait(self, timeout: float) -> None:
        """Wait up to `timeout` s for the outcome on the event loop, holding no thread: a
        waiting client costs a future, not one of the server's worker threads."""
        if timeout <= 0 or self.done.is_set():
            return
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake() -> None:
            # The relayer's thread finishes jobs; the future belongs to the loop's thread. A
            # loop that already closed (server shutting down) has nobody left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: woken.done() or woken.set_result(None))

        with self._lock:
            if self.done.is_set():
                return
            self._wakers.append(wake)
        try:
            await asyncio.wait_for(woken, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._wakers.remove(wake)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.key,
            "kind": self.kind,
            "state": self.state,
            "submitter": self.submitter,
            "result": self.result,
            "error": self.error,
        }


def declaration_key(signed: SignedDeclaration) -> str:
    """Job id of a signed declaration: equal for byte-identical resubmissions only."""
    struct_hash = signed.declaration.signable(signed.domain).body
    return "0x" + keccak(struct_hash + signed.signature).hex()


def action_key(signed: SignedAction) -> str:
    struct_hash = signable(signed.action, signed.domain).body
    return "0x" + keccak(struct_hash + signed.signature).hex()


def grant_key(signed: SignedGrant) -> str:
    struct_hash = signed.request.signable(signed.domain).body
    return "0x" + keccak(struct_hash + signed.signature).hex()


def termination_key(signed: SignedTermination) -> str:
    struct_hash = signed.termination.signable(signed.domain).body
    return "0x" + keccak(struct_hash + signed.signature).hex()


class RelayQueue:
    """Checks signed requests up front, then batches and sends them from `payer`."""

    def __init__(
        self, registry: Registry, payer: LocalAccount, sender: Sender | None = None
    ) -> None:
        self.registry = registry
        self.payer = payer
        self.domain = domain_of(registry)
        # A deployment file from before the licence ledger relays no grants.
        self.licence_domain = licence_domain(registry) if registry.deployment.licences else None
        if sender is not None:
            registry.use_sender(sender)
        self.sender = registry.sender(payer)
        self._queue: queue.Queue[Job] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        # Queued grants by grant id: a sublicence may name a parent that is not mined yet.
        self._grant_jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relayer", daemon=True)
        self._recovering = self._jobs_in_journal()

    def _jobs_in_journal(self) -> list[tuple[Sent, list[Job]]]:
        """Jobs whose transactions a previous run sent and did not see settled."""
        if self.sender.journal is None:
            return []
        found = []
        for attempts in self.sender.journal.open().values():
            payload = attempts[-1].payload or {}
            jobs = []
            for entry in payload.get("entries", []):
                if entry.get("tag"):
                    submitter = (
                        entry.get("declarer") or entry.get("owner") or entry.get("grantor") or ""
                    )
                    job = Job(entry["tag"], payload.get("kind", "declare"), submitter, None)
                    self._jobs[job.key] = job
                    jobs.append(job)
            found.append((attempts[-1], jobs))
        return found

    def pending(self) -> int:
        return sum(1 for j in self._jobs.values() if j.state == "pending")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def job(self, key: str) -> Job | None:
        return self._jobs.get(key)

    # --- intake ---------------------------------------------------------------------------

    def check_declaration(self, signed: SignedDeclaration) -> Job:
        """A job for a signed declaration after the checks the chain would make (blocking: it
        asks the node); the known job if the same declaration was submitted before. Nothing is
        queued: `enqueue` does that, once the caller has charged its limits."""
        key = declaration_key(signed)
        if (known := self._jobs.get(key)) is not None:
            return known
        self._check_domain(signed.domain)
        d = signed.declaration
        self._check_deadline(d.deadline)
        if signed.sealed:
            raise InvalidDeclaration(
                "this relay takes plain declarations; a sealed one is committed and revealed "
                "(iscc-registry declare --sealed)"
            )
        self._check_signer(signed.declarer, signed.recover)
        if self.registry.contract.functions.isNonceUsed(signed.declarer, d.nonce).call():
            raise RelayConflict(
                f"nonce {d.nonce} of {signed.declarer} is already used: declared before, or "
                "invalidated"
            )
        return Job(key, "declare", signed.declarer, signed)

    def check_action(self, signed: SignedAction) -> Job:
        """Like `check_declaration`, for an owner's signed revoke/update/transfer."""
        key = action_key(signed)
        if (known := self._jobs.get(key)) is not None:
            return known
        self._check_domain(signed.domain)
        self._check_deadline(signed.action.deadline)
        self._check_signer(signed.owner, signed.recover)
        current = actions_of(self.registry, signed.action.iscc_id)
        if current != signed.action.actions:
            raise StaleAction(
                f"the action was signed for action count {signed.action.actions} of the "
                f"declaration, which is at {current} now: sign it again"
            )
        return Job(key, signed.kind, signed.owner, signed)

    def check_grant(self, signed: SignedGrant) -> Job:
        """Like `check_declaration`, for a grantor's signed licence grant: domain, deadline,
        signature (a smart wallet's asked on chain), nonce, and a parent that exists or is
        queued here ahead of it."""
        key = grant_key(signed)
        if (known := self._jobs.get(key)) is not None:
            return known
        domain = self._licences_domain()
        if signed.domain != domain:
            raise InvalidGrant(
                f"signed for chain {signed.domain.chain_id} ledger "
                f"{signed.domain.verifying_contract}, but this relay serves chain "
                f"{domain.chain_id} ledger {domain.verifying_contract}"
            )
        request = signed.request
        self._check_deadline(request.deadline, InvalidGrant)
        self._check_licence_signer(
            request.grantor, request.digest(domain), signed.signature, signed.recover
        )
        ledger = self.registry.licences.functions
        if ledger.isNonceUsed(request.grantor, request.nonce).call():
            raise GrantConflict(
                f"nonce {request.nonce} of {request.grantor} is already used: granted before, "
                "or invalidated"
            )
        parent = request.parent
        if any(parent) and not self._parent_known(parent):
            raise InvalidGrant(f"the parent grant 0x{parent.hex()} is not on the ledger")
        return Job(key, "grant", request.grantor, signed)

    def check_termination(self, signed: SignedTermination) -> Job:
        """A job for a signed termination: domain, deadline, a live grant whose grantor or
        licensee `by` is, and `by`'s signature."""
        key = termination_key(signed)
        if (known := self._jobs.get(key)) is not None:
            return known
        domain = self._licences_domain()
        if signed.domain != domain:
            raise InvalidGrant(
                f"signed for chain {signed.domain.chain_id} ledger "
                f"{signed.domain.verifying_contract}, not the one this relay serves"
            )
        t = signed.termination
        self._check_deadline(t.deadline, InvalidGrant)
        self._check_licence_signer(t.by, t.digest(domain), signed.signature, signed.recover)
        ledger = self.registry.licences.functions
        grantor = ledger.grantorOf(t.grant_id).call()
        if int(grantor, 16) == 0:
            raise InvalidGrant(f"no grant 0x{t.grant_id.hex()} on the ledger")
        if ledger.isTerminated(t.grant_id).call():
            raise GrantConflict(f"grant 0x{t.grant_id.hex()} is terminated already")
        if t.by not in (grantor, ledger.licenseeOf(t.grant_id).call()):
            raise InvalidGrant(
                f"{t.by} is neither the grantor nor the licensee of grant 0x{t.grant_id.hex()}"
            )
        return Job(key, "terminate", t.by, signed)

    def _licences_domain(self) -> Any:
        if self.licence_domain is None:
            raise InvalidGrant("this service's deployment has no licence ledger")
        return self.licence_domain

    def _parent_known(self, parent: bytes) -> bool:
        """On the ledger, or granted by a job this relay has queued (a sublicence may be sent
        right after its parent, before the parent is mined; the batch keeps their order)."""
        if int(self.registry.licences.functions.grantorOf(parent).call(), 16):
            return True
        queued = self._grant_jobs.get("0x" + parent.hex())
        return queued is not None and queued.state != "failed"

    def _check_licence_signer(
        self, account: str, digest: bytes, signature: bytes, recover: Any
    ) -> None:
        """The signer's consent, checked before anything is charged to it. An EOA's by
        recovery; a smart wallet's by asking the wallet (ERC-1271) in an eth_call with the
        contract's stipend, so a stranger cannot spend a wallet's budget with a made-up
        signature (a wallet that answers yes here and no on chain costs its own budget)."""
        accepts = wallet_accepts(
            self.registry.w3, account, digest, signature, caller=self.registry.licences.address
        )
        if accepts is None:
            signer = recover()
            if signer != account:
                raise InvalidGrant(f"the signature is by {signer}, not by {account}")
        elif not accepts:
            raise InvalidGrant(f"the wallet {account} does not accept the signature (ERC-1271)")

    def submit_declaration(self, signed: SignedDeclaration) -> tuple[Job, bool]:
        """Check and queue a signed declaration; returns the job and whether it is new (False:
        the same declaration was submitted before)."""
        return self.enqueue(self.check_declaration(signed))

    def submit_action(self, signed: SignedAction) -> tuple[Job, bool]:
        return self.enqueue(self.check_action(signed))

    def enqueue(self, job: Job) -> tuple[Job, bool]:
        """Queue a checked job, unless an equal one is known (then that one, False)."""
        with self._lock:
            if (known := self._jobs.get(job.key)) is not None:
                return known, False
            if len(self._jobs) >= MAX_JOBS:
                self._forget_finished()
            self._jobs[job.key] = job
            if isinstance(job.payload, SignedGrant):
                self._grant_jobs[job.payload.request.grant_id] = job
        self._queue.put(job)
        return job, True

    def _forget_finished(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state != "pending"]
        for key in finished[: len(finished) // 2 + 1]:
            job = self._jobs.pop(key)
            if isinstance(job.payload, SignedGrant):
                self._grant_jobs.pop(job.payload.request.grant_id, None)

    def _check_domain(self, domain: Any) -> None:
        if domain != self.domain:
            raise InvalidDeclaration(
                f"signed for chain {domain.chain_id} contract {domain.verifying_contract}, but "
                f"this relay serves chain {self.domain.chain_id} contract "
                f"{self.domain.verifying_contract}"
            )

    def _check_deadline(
        self, deadline: int, error: type[RegistryError] = InvalidDeclaration
    ) -> None:
        now = self.registry.w3.eth.get_block("latest")["timestamp"]
        if deadline <= now:
            raise error(f"the signature's deadline {deadline} has passed")

    def _check_signer(self, account: str, recover: Any) -> None:
        # A smart wallet's (ERC-1271) signature can only be judged by the wallet, on chain.
        if self.registry.w3.eth.get_code(account):
            return
        signer = recover()
        if signer != account:
            raise InvalidDeclaration(f"the signature is by {signer}, not by {account}")

    # --- worker ---------------------------------------------------------------------------

    def _recover(self) -> None:
        if not self._recovering:
            return
        jobs_of = {sent.nonce: jobs for sent, jobs in self._recovering}
        try:
            settled = self.sender.recover()
        except Exception as exc:  # the node is down: the jobs say so, the journal keeps them
            log.exception("recovering the relayer's transactions failed")
            for jobs in jobs_of.values():
                for job in jobs:
                    job.finish(error=f"relay restarted and could not settle it: {exc}")
            return
        for attempts, receipt, error in settled:
            jobs = jobs_of.get(attempts[-1].nonce, [])
            payload = attempts[-1].payload or {}
            if error is not None or receipt is None:
                for job in jobs:
                    job.finish(error=f"lost: {error}; submit it again")
            elif receipt["status"] != 1:
                for job in jobs:
                    job.finish(
                        error=f"transaction 0x{bytes(receipt['transactionHash']).hex()} reverted"
                    )
            elif (kind := payload.get("kind")) in ("grant", "declare"):
                entries = payload["entries"]
                read = grant_outcomes if kind == "grant" else results_of_receipt
                outcomes = read(self.registry, len(entries), receipt)
                by_tag = {j.key: j for j in jobs}
                for entry, outcome in zip(entries, outcomes, strict=True):
                    if (job := by_tag.get(entry.get("tag"))) is None:
                        continue
                    if isinstance(outcome, str):
                        job.finish(error=outcome)
                    else:
                        job.finish(result=outcome.to_dict())
            else:
                tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
                for job in jobs:
                    job.finish(
                        result={
                            "action": job.kind,
                            "tx_hash": tx_hash,
                            "block_number": receipt["blockNumber"],
                            "gas_used": receipt["gasUsed"],
                        }
                    )
        self._recovering = []

    def _run(self) -> None:
        self._recover()
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + BATCH_WINDOW_S
            while len(batch) < MAX_BATCH and (left := deadline - time.monotonic()) > 0:
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            self._send(batch)
        while True:  # on shutdown nobody is left waiting silently
            try:
                self._queue.get_nowait().finish(error="relay shut down before sending")
            except queue.Empty:
                break

    def _send(self, batch: list[Job]) -> None:
        declarations = [j for j in batch if j.kind == "declare"]
        grants = [j for j in batch if j.kind == "grant"]
        terminations = [j for j in batch if j.kind == "terminate"]
        actions = [j for j in batch if j.kind not in ("declare", "grant", "terminate")]
        if grants:
            self._send_grants(grants)
        if declarations:
            try:
                results = relay_batch(
                    self.registry,
                    [j.payload for j in declarations],  # type: ignore[misc]
                    self.payer,
                    tags=[j.key for j in declarations],
                )
            except RegistryError as exc:
                for job in declarations:
                    job.finish(error=str(exc))
            except Exception as exc:  # the worker must survive whatever the node does
                log.exception("relaying a batch failed")
                for job in declarations:
                    job.finish(error=f"relay failed: {type(exc).__name__}")
            else:
                # A batch's receipt tells the gas of the whole transaction: each declaration
                # in it is charged an equal share.
                per_tx: dict[str, int] = {}
                for result in results:
                    if result.receipt is not None:
                        per_tx[result.receipt.tx_hash] = per_tx.get(result.receipt.tx_hash, 0) + 1
                for job, result in zip(declarations, results, strict=True):
                    if result.receipt is not None:
                        share = result.receipt.gas_used // per_tx[result.receipt.tx_hash]
                        job.finish(result=result.receipt.to_dict(), gas=share)
                    else:
                        job.finish(error=result.error)
        self._send_each(actions, act_relayed, "an owner action")
        # After the grants of the same batch: a termination may name one of them.
        self._send_each(terminations, submit_termination, "a termination")

    def _send_each(self, jobs: list[Job], submit: Callable[..., Any], what: str) -> None:
        """One transaction per job (owner actions, terminations): a refusal finishes its job
        with the reason, anything else with a generic error, and the next job goes on."""
        for job in jobs:
            try:
                done = submit(self.registry, job.payload, self.payer, tag=job.key)
            except RegistryError as exc:
                job.finish(error=str(exc))
            except Exception as exc:
                log.exception("relaying %s failed", what)
                job.finish(error=f"relay failed: {type(exc).__name__}")
            else:
                job.finish(result=done.to_dict(), gas=done.gas_used)

    def _send_grants(self, grants: list[Job]) -> None:
        """Grants of many grantors in grantBatch transactions; each entry's own outcome."""
        try:
            results = relay_grants(
                self.registry,
                [j.payload for j in grants],  # type: ignore[misc]
                self.payer,
                tags=[j.key for j in grants],
            )
        except RegistryError as exc:
            for job in grants:
                job.finish(error=str(exc))
            return
        except Exception as exc:  # the worker must survive whatever the node does
            log.exception("relaying grants failed")
            for job in grants:
                job.finish(error=f"relay failed: {type(exc).__name__}")
            return
        per_tx: dict[str, int] = {}
        for result in results:
            if result.receipt is not None:
                per_tx[result.receipt.tx_hash] = per_tx.get(result.receipt.tx_hash, 0) + 1
        for job, result in zip(grants, results, strict=True):
            if result.receipt is not None:
                share = result.receipt.gas_used // per_tx[result.receipt.tx_hash]
                job.finish(result=result.receipt.to_dict(), gas=share)
            else:
                job.finish(error=result.error)
