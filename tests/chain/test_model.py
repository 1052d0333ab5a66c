"""Property test (issue 17): random sequences of plain and sealed declarations, replays, revokes,
updates, transfers (direct and signed, some signatures stale) and nonce invalidations by several
accounts, run on the real node next to a Python model of the registry's rules. After every step
the outcome (accepted, or the contract's error) and the state (owners, action counts, nonces)
equal the model's."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from chain_helpers import sum_code
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.logs import DISCARD

from registry.chain.actions import SignedAction, act_direct, act_relayed, make_action, sign_for
from registry.chain.contract import Registry, decode_revert
from registry.chain.declaration import SignedDeclaration
from registry.chain.devnet import deploy_registry, dev_account
from registry.chain.relayer import commit, entry, reveal
from registry.chain.sealed import seal
from registry.chain.submit import declare_direct, prepare
from registry.errors import InvalidDeclaration

pytestmark = pytest.mark.chain

USED = 1
ZERO = "0x" + "0" * 40
ACCOUNTS = 3
NONCES = 6  # a small nonce space, so reuse and invalidation collide often


@dataclass
class Record:
    """One minted declaration as the model sees it."""

    iscc_id: int
    declarer: str
    record: int
    owner: str | None  # None: revoked
    by_id: bool  # held through _states (direct or transferred), else through the lane
    actions: int = 0


@dataclass
class Model:
    """The registry's rules, in Python."""

    lanes: dict[tuple[str, int], int] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)

    def lane(self, account: str, nonce: int) -> int:
        return self.lanes.get((account, nonce), 0)

    def declare(self, declarer: str, nonce: int) -> str | None:
        if self.lane(declarer, nonce):
            return "NonceAlreadyUsed"
        return None

    def act(self, kind: str, r: Record, account: str, signed_at: int | None) -> str | None:
        """The error the contract raises for `account` acting on `r`, or None."""
        if signed_at is not None and signed_at != r.actions:
            return "StaleAction"
        if r.owner != account:
            return "NotOwner"
        return None

    def apply(self, kind: str, r: Record, to: str | None) -> None:
        """An accepted action: an update counts; a revocation or transfer also ends the old
        holding (a lane becomes USED, owner bits are replaced); a transfer counts too."""
        if kind == "update":
            r.actions += 1
            return
        if not r.by_id:
            self.lanes[(r.declarer, r.record)] = USED
        r.by_id = True
        if kind == "revoke":
            r.owner = None
        else:
            r.owner = to
            r.actions += 1

    def invalidate(self, account: str, nonce: int) -> None:
        if not self.lane(account, nonce):
            self.lanes[(account, nonce)] = USED


steps = st.lists(
    st.one_of(
        st.tuples(st.just("declare"), st.integers(0, ACCOUNTS - 1), st.integers(0, NONCES - 1)),
        st.tuples(st.just("sealed"), st.integers(0, ACCOUNTS - 1), st.integers(0, NONCES - 1)),
        st.tuples(st.just("direct"), st.integers(0, ACCOUNTS - 1)),
        st.tuples(st.just("replay"), st.integers(0, 20)),
        st.tuples(
            st.sampled_from(["revoke", "update", "transfer"]),
            st.integers(0, ACCOUNTS - 1),  # who acts
            st.integers(0, 20),  # which declaration
            st.sampled_from(["direct", "signed", "stale"]),
            st.integers(0, ACCOUNTS - 1),  # transfer target
        ),
        st.tuples(st.just("invalidate"), st.integers(0, ACCOUNTS - 1), st.integers(0, NONCES - 1)),
    ),
    min_size=1,
    max_size=14,
)


class Run:
    def __init__(self, registry: Registry, keys: list[LocalAccount]) -> None:
        self.registry, self.keys = registry, keys
        self.payer = dev_account(1)
        self.model = Model()
        self.signed: list[SignedDeclaration] = []
        # Signatures of owner actions made earlier, to be submitted later (maybe stale).
        self.stash: dict[tuple[str, int, int], tuple[SignedAction, int]] = {}
        self.counter = 0

    def content(self) -> dict:
        self.counter += 1
        return sum_code(b"model %d " % self.counter * 30)

    def declared(self, receipt: dict) -> list[dict]:
        return [
            e["args"]
            for e in self.registry.contract.events.Declared().process_receipt(
                receipt, errors=DISCARD
            )
        ]

    def failed(self, receipt: dict) -> list[str]:
        return [
            decode_revert(e["args"]["reason"]).split("(")[0]
            for e in self.registry.contract.events.DeclarationFailed().process_receipt(
                receipt, errors=DISCARD
            )
        ]

    def signed_declaration(self, who: int, nonce: int, sealed: bool) -> None:
        key = self.keys[who]
        c = self.content()
        s = prepare(self.registry, key, c["iscc"], c["datahash"], nonce=nonce, sealed=sealed)
        expected = self.model.declare(key.address, nonce)
        if sealed:
            _, receipt = reveal(
                self.registry, commit(self.registry, [seal(s)], self.payer), self.payer
            )
        else:
            receipt = self.registry.transact(
                self.registry.contract.functions.declareBatch([entry(s)]), self.payer
            )
        self.check_declaration(receipt, expected, key.address, nonce)
        self.signed.append(s)

    def check_declaration(self, receipt: dict, expected: str | None, who: str, nonce: int):
        declared, failed = self.declared(receipt), self.failed(receipt)
        if expected is None:
            assert failed == [] and len(declared) == 1
            args = declared[0]
            assert (args["declarer"], args["record"]) == (who, nonce)
            self.model.lanes[(who, nonce)] = args["isccId"]
            self.model.records.append(Record(args["isccId"], who, nonce, who, by_id=False))
        else:
            assert failed == [expected] and declared == []

    def replay(self, index: int) -> None:
        if not self.signed:
            return
        s = self.signed[index % len(self.signed)]
        d = s.declaration
        expected = self.model.declare(d.declarer, d.nonce)
        assert expected == "NonceAlreadyUsed"  # every kept signature was submitted once
        if s.sealed:
            _, receipt = reveal(
                self.registry, commit(self.registry, [seal(s)], self.payer), self.payer
            )
        else:
            receipt = self.registry.transact(
                self.registry.contract.functions.declareBatch([entry(s)]), self.payer
            )
        self.check_declaration(receipt, expected, d.declarer, d.nonce)

    def direct(self, who: int) -> None:
        key = self.keys[who]
        c = self.content()
        receipt = declare_direct(self.registry, key, c["iscc"], c["datahash"])
        self.model.records.append(
            Record(receipt.iscc_id.body, key.address, 0, key.address, by_id=True)
        )

    def act(self, kind: str, who: int, index: int, mode: str, target: int) -> None:
        if not self.model.records:
            return
        r = self.model.records[index % len(self.model.records)]
        key = self.keys[who]
        to = self.keys[target].address
        action = make_action(kind, r.iscc_id, gateway=f"g{self.counter}", to=to)
        record = r.record if r.declarer == key.address else 0
        stash_key = (kind, who, r.iscc_id)
        signed_at: int | None = None
        try:
            if mode == "direct":
                expected = self.model.act(kind, r, key.address, None)
                act_direct(self.registry, key, action, record)
            else:
                if mode == "stale" and stash_key in self.stash:
                    signed, signed_at = self.stash.pop(stash_key)
                else:
                    signed = sign_for(self.registry, key, action)
                    signed_at = signed.action.actions
                    if mode == "stale":  # keep it for later, submit nothing now
                        self.stash[stash_key] = (signed, signed_at)
                        return
                expected = self.model.act(kind, r, key.address, signed_at)
                act_relayed(self.registry, signed, self.payer, record)
        except InvalidDeclaration as exc:
            assert expected is not None, f"rejected: {exc}"
            assert str(exc).split("rejects it: ")[-1].split("(")[0] == expected
            return
        assert expected is None, f"accepted, the model says {expected}"
        self.model.apply(kind, r, to)

    def invalidate(self, who: int, nonce: int) -> None:
        key = self.keys[who]
        self.registry.transact(
            self.registry.contract.functions.invalidateNonces(0, 1 << nonce), key
        )
        self.model.invalidate(key.address, nonce)

    def check_state(self) -> None:
        f = self.registry.contract.functions
        for r in self.model.records:
            owner = f.ownerOf(r.iscc_id, r.declarer, r.record).call()
            assert owner == (r.owner or ZERO), r
            assert f.actionsOf(r.iscc_id).call() == r.actions, r
        for key in self.keys:
            for nonce in range(NONCES):
                assert f.recordOf(key.address, nonce).call() == self.model.lane(key.address, nonce)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
def test_contract_state_equals_the_model(registry: Registry, sequence: list[tuple]) -> None:
    fresh = Registry.open(deploy_registry(registry.w3, dev_account(0)))
    keys = [Account.create() for _ in range(ACCOUNTS)]
    for key in keys:
        fresh.w3.provider.make_request("hardhat_setBalance", [key.address, hex(10**20)])
    run = Run(fresh, keys)
    for step in sequence:
        kind = step[0]
        if kind in ("declare", "sealed"):
            run.signed_declaration(step[1], step[2], sealed=kind == "sealed")
        elif kind == "direct":
            run.direct(step[1])
        elif kind == "replay":
            run.replay(step[1])
        elif kind == "invalidate":
            run.invalidate(step[1], step[2])
        else:
            run.act(*step)
        run.check_state()
