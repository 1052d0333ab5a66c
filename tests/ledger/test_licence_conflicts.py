"""Licence conflict detection and cases on SQLite and PostgreSQL, from decoded events applied to
the store as the follower applies them: each rule with its exact overlap, terms that only touch,
automatic resolution with its reason, rollbacks that remove and revive grants, case steps and
expiry, usage reports and their replay."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from index_helpers import CHANGE_ABI, content, encode_log
from licence_helpers import DAY, T0, granted, terminated
from pydantic import ValidationError
from sqlalchemy import func, inspect, select, text, update

# Shared with the content conflict tests: decoded Declared and change events.
from test_conflicts import CHAIN, CONTRACT, DECODER, Chain, _declared

from registry.chain.events import ChangeEvent, DeclaredEvent
from registry.chain.iscc_id import IsccId
from registry.config import Settings
from registry.defaults import CASES_PER_WORK
from registry.ledger import cases as case_steps
from registry.ledger.case_policy import CasePolicy
from registry.ledger.cases import SignedBy, get_case, list_cases
from registry.ledger.conflicts import ConflictDetector
from registry.ledger.licence_conflicts import (
    CONTAINS_EARLIER,
    EXCLUSIVE_OVERLAP,
    NOT_OWNER,
    NOT_PRIORITY,
    SUBLICENCE_EXCEEDS,
    UNLICENSED_USE,
    LicenceDetector,
    UsageReplayed,
    list_licence_conflicts,
    store_usage_report,
)
from registry.ledger.terms import Use
from registry.store import migrations
from registry.store.migrations import LICENCE_TABLES
from registry.store.schema import grants, licence_queue, meta
from registry.store.store import Store

ALICE = to_checksum_address("0x" + "a1" * 20)
BOB = to_checksum_address("0x" + "b0" * 20)
CAROL = to_checksum_address("0x" + "c0" * 20)
DAVE = to_checksum_address("0x" + "d0" * 20)
NOW = T0 + 30 * DAY
SVOD, AVOD, EXCERPT = int(Use.SVOD), int(Use.AVOD), int(Use.EXCERPT)


def _change(name: str, event: DeclaredEvent, block: int, **values: str) -> ChangeEvent:
    entry = next(e for e in CHANGE_ABI if e["name"] == name)
    decoded = DECODER.decode(
        encode_log(entry, {"isccId": event.iscc_id_body, **values}, block_number=block)
    )
    assert isinstance(decoded, ChangeEvent)
    return decoded


class Ledger:
    """Blocks applied one after the other, then both detectors, at a settable clock."""

    def __init__(self, store: Store) -> None:
        self.chain = Chain(store)
        self.store = store
        self.now = NOW
        self.content = ConflictDetector(store)
        self.licences = LicenceDetector(store, clock=lambda: self.now)

    def apply(self, block: int, *events: object) -> None:
        self.chain.apply(block, *events)

    def detect(self) -> int:
        self.content.run()
        return self.licences.run()

    def rollback(self, to_block: int) -> None:
        self.chain.rollback(to_block)
        self.content.reset()
        self.licences.reset()


def _open(store: Store, kind: str | None = None) -> list[dict]:
    return list_licence_conflicts(store, kind=kind)


def _work(seed: str, block: int, declarer: str) -> DeclaredEvent:
    return _declared(content(f"{seed} ".encode() * 60), block, declarer)


def test_exclusive_grant_overlapping_another_is_a_conflict_with_the_exact_overlap(
    store: Store,
) -> None:
    ledger = Ledger(store)
    film = _work("film", 1, ALICE)
    ledger.apply(1, film)
    exclusive = granted(
        film.iscc_id, ALICE, 2, licensee=BOB, territories=("AT", "DE", "FR"), uses=SVOD | AVOD,
        start=T0, end=T0 + 365 * DAY, exclusive=True,
    )  # fmt: skip
    # World except DE against AT, DE, FR: they meet in AT and FR only.
    other = granted(
        film.iscc_id, ALICE, 3, licensee=CAROL, worldwide=True, territories=("DE",),
        uses=AVOD | EXCERPT, start=T0 + 100 * DAY,
    )  # fmt: skip
    ledger.apply(2, exclusive)
    ledger.apply(3, other)
    ledger.detect()
    (found,) = _open(store)
    assert found["kind"] == EXCLUSIVE_OVERLAP
    assert (found["grant_id"], found["other_grant_id"]) == (other.grant_id, exclusive.grant_id)
    assert found["overlap"]["territories"] == {"worldwide": False, "codes": ["AT", "FR"]}
    assert found["overlap"]["uses"] == ["avod"] or found["overlap"]["uses"] == ["AVOD"]
    assert found["overlap"]["period"] == {"start": T0 + 100 * DAY, "end": T0 + 365 * DAY}
    assert found["ends_at"] == T0 + 365 * DAY
    case = get_case(store, found["case"]["id"], now=NOW)
    assert case["state"] == "open" and case["deadline"] == NOW + 14 * DAY
    assert {p["address"] for p in case["parties"]} == {ALICE, BOB, CAROL}


def test_touching_terms_and_a_single_excluded_country_are_no_conflict(store: Store) -> None:
    ledger = Ledger(store)
    film = _work("touching", 1, ALICE)
    ledger.apply(1, film)
    first = granted(
        film.iscc_id, ALICE, 2, licensee=BOB, territories=("DE",), uses=SVOD,
        start=T0, end=T0 + 100 * DAY, exclusive=True,
    )  # fmt: skip
    # Starts the second the first ends: half-open terms touch, they do not overlap.
    renewal = granted(
        film.iscc_id, ALICE, 3, licensee=CAROL, territories=("DE",), uses=SVOD,
        start=T0 + 100 * DAY, exclusive=True,
    )  # fmt: skip
    # The world except DE, the one country of the exclusive grant.
    elsewhere = granted(
        film.iscc_id, ALICE, 4, licensee=DAVE, worldwide=True, territories=("DE",), uses=SVOD,
    )  # fmt: skip
    # Same country and time, another use.
    other_use = granted(film.iscc_id, ALICE, 5, licensee=DAVE, territories=("DE",), uses=AVOD)
    for block, event in ((2, first), (3, renewal), (4, elsewhere), (5, other_use)):
        ledger.apply(block, event)
    ledger.detect()
    assert _open(store) == []
    # One day more on the first grant's term would have overlapped: the test can fail.
    longer = granted(
        film.iscc_id, ALICE, 6, licensee=DAVE, territories=("DE",), uses=SVOD,
        start=T0 + 99 * DAY, end=T0 + 101 * DAY,
    )  # fmt: skip
    ledger.apply(6, longer)
    ledger.detect()
    kinds = sorted((c["other_grant_id"], c["grant_id"]) for c in _open(store))
    assert kinds == sorted([(first.grant_id, longer.grant_id), (renewal.grant_id, longer.grant_id)])


def test_termination_resolves_the_conflict_and_its_case_with_the_reason(store: Store) -> None:
    ledger = Ledger(store)
    film = _work("terminated", 1, ALICE)
    exclusive = granted(film.iscc_id, ALICE, 2, licensee=BOB, exclusive=True)
    other = granted(film.iscc_id, ALICE, 3, licensee=CAROL)
    ledger.apply(1, film)
    ledger.apply(2, exclusive)
    ledger.apply(3, other)
    ledger.detect()
    (found,) = _open(store)
    ledger.apply(4, terminated(other, CAROL, 4))
    ledger.detect()
    assert _open(store) == []
    (resolved,) = list_licence_conflicts(store, status="resolved")
    assert resolved["resolved_reason"].startswith(f"terminated: grant {other.grant_id}")
    case = get_case(store, found["case"]["id"], now=NOW)
    assert case["state"] == "resolved" and case["closed_reason"].startswith("terminated")
    assert [e["action"] for e in case["events"]] == ["open", "resolve"]
    # The termination rolled back: the grant lives again, and so does a (new) conflict.
    ledger.rollback(3)
    ledger.detect()
    (again,) = _open(store)
    assert again["key"] == found["key"] and again["id"] != found["id"]


def test_grantor_not_owner_and_a_transfer_that_ratifies_it(store: Store) -> None:
    ledger = Ledger(store)
    work = _work("owned", 1, ALICE)
    ledger.apply(1, work)
    by_bob = granted(work.iscc_id, BOB, 2, licensee=CAROL, uses=SVOD)
    by_alice = granted(work.iscc_id, ALICE, 2, log_index=7, licensee=CAROL, uses=AVOD)
    unknown = granted(str(IsccId(1_700_000_000_000_000 << 12, 0)), BOB, 3)
    ledger.apply(2, by_bob, by_alice)
    ledger.apply(3, unknown)
    ledger.detect()
    found = {c["grant_id"]: c for c in _open(store, NOT_OWNER)}
    assert set(found) == {by_bob.grant_id, unknown.grant_id}
    assert found[by_bob.grant_id]["evidence"]["owner_at_grant"] == ALICE
    assert found[unknown.grant_id]["evidence"]["how"] == "not declared"
    ledger.apply(4, _change("Transferred", work, 4, **{"from": ALICE, "to": BOB}))
    ledger.detect()
    assert [c["grant_id"] for c in _open(store, NOT_OWNER)] == [unknown.grant_id]
    (resolved,) = list_licence_conflicts(store, status="resolved")
    assert resolved["resolved_reason"].startswith("transferred:")
    assert get_case(store, resolved["case"]["id"], now=NOW)["state"] == "resolved"


def test_revocation_resolves_the_conflicts_of_grants_over_the_work(store: Store) -> None:
    ledger = Ledger(store)
    work = _work("revoked", 1, ALICE)
    ledger.apply(1, work)
    ledger.apply(2, granted(work.iscc_id, BOB, 2))
    ledger.detect()
    (found,) = _open(store)
    ledger.apply(3, _change("Revoked", work, 3, owner=ALICE))
    ledger.detect()
    assert _open(store) == []
    (resolved,) = list_licence_conflicts(store, status="resolved")
    assert resolved["resolved_reason"] == f"revoked: {work.iscc_id} was revoked by its owner"
    assert get_case(store, found["case"]["id"], now=NOW)["state"] == "resolved"


def test_grantor_not_priority_for_a_copy_declared_later(store: Store) -> None:
    ledger = Ledger(store)
    item = content(b"priority " * 60)
    original = _declared(item, 1, ALICE)
    copy = _declared(item, 2, BOB)
    ledger.apply(1, original)
    ledger.apply(2, copy)
    grant = granted(copy.iscc_id, BOB, 3, licensee=CAROL)
    ledger.apply(3, grant)
    ledger.detect()
    (found,) = _open(store, NOT_PRIORITY)
    assert found["other_iscc_id"] == original.iscc_id
    assert found["evidence"]["content_conflicts"][0]["kind"] == "datahash"
    # Alice's own grant over her original is fine.
    ledger.apply(4, granted(original.iscc_id, ALICE, 4, licensee=DAVE))
    ledger.detect()
    assert [c["kind"] for c in _open(store)] == [NOT_PRIORITY]


def test_sublicence_outside_its_parent(store: Store) -> None:
    ledger = Ledger(store)
    work = _work("sub", 1, ALICE)
    ledger.apply(1, work)
    parent = granted(
        work.iscc_id, ALICE, 2, licensee=BOB, territories=("AT", "DE"), uses=SVOD,
        start=T0, end=T0 + 100 * DAY, sublicensable=True,
    )  # fmt: skip
    inside = granted(
        work.iscc_id, BOB, 3, licensee=CAROL, parent=parent.grant_id, territories=("DE",),
        uses=SVOD, start=T0 + DAY, end=T0 + 100 * DAY,
    )  # fmt: skip
    outside = granted(
        work.iscc_id, BOB, 4, licensee=DAVE, parent=parent.grant_id, territories=("DE", "FR"),
        uses=SVOD | AVOD, start=T0 + DAY, end=T0 + 200 * DAY,
    )  # fmt: skip
    stranger = granted(
        work.iscc_id, CAROL, 5, licensee=DAVE, parent=parent.grant_id, territories=("DE",),
        uses=SVOD, start=T0 + DAY, end=T0 + 50 * DAY,
    )  # fmt: skip
    for block, event in ((2, parent), (3, inside), (4, outside), (5, stranger)):
        ledger.apply(block, event)
    ledger.detect()
    found = {c["grant_id"]: c for c in _open(store, SUBLICENCE_EXCEEDS)}
    assert set(found) == {outside.grant_id, stranger.grant_id}
    excess = found[outside.grant_id]["overlap"]
    assert excess["territories"] == {"worldwide": False, "codes": ["FR"]}
    assert [u.lower() for u in excess["uses"]] == ["avod"]
    assert excess["after"] == {"start": T0 + 100 * DAY, "end": T0 + 200 * DAY}
    assert "before" not in excess
    assert found[stranger.grant_id]["evidence"]["reasons"] == [
        f"the grantor {CAROL} is not the parent's licensee {BOB}"
    ]
    # Terminating the parent early makes the sublicence inside it outlive it.
    ledger.apply(6, terminated(parent, ALICE, 6))
    ledger.now = NOW
    ledger.detect()
    assert inside.grant_id in {c["grant_id"] for c in _open(store, SUBLICENCE_EXCEEDS)}


def _usage(store: Store, reporter: str, item: dict, nonce: int, **fields) -> int:
    values = {"territory": "DE", "use": SVOD, "used_at": T0 + 10 * DAY, **fields}
    record = store_usage_report(
        store,
        chain_id=CHAIN,
        contract=CONTRACT,
        reporter=reporter,
        iscc_code_raw=item["raw"],
        datahash=item["digest"],
        nonce=nonce,
        signature=b"\x01" * 65,
        digest=keccak(f"{reporter}{nonce}".encode()),
        now=NOW,
        **values,
    )
    return record.id


def test_unlicensed_use_and_a_grant_that_licenses_it(store: Store) -> None:
    ledger = Ledger(store)
    item = content(b"used work " * 60)
    work = _declared(item, 1, ALICE)
    ledger.apply(1, work)
    ledger.apply(2, granted(work.iscc_id, ALICE, 2, licensee=BOB, territories=("AT",)))
    covered = _usage(store, BOB, item, 1, territory="AT", use=1)
    uncovered = _usage(store, BOB, item, 2, territory="DE", use=1)
    unknown = _usage(store, BOB, content(b"nothing declared " * 40), 3)
    ledger.detect()
    (found,) = _open(store, UNLICENSED_USE)
    assert found["usage_id"] == uncovered and found["iscc_id"] == work.iscc_id
    assert found["evidence"]["match"] == {"by": "datahash"}
    assert covered != unknown
    with pytest.raises(UsageReplayed):
        _usage(store, BOB, item, 2)
    ledger.apply(3, granted(work.iscc_id, ALICE, 3, licensee=None, territories=("DE",)))
    ledger.detect()
    assert _open(store, UNLICENSED_USE) == []
    (resolved,) = list_licence_conflicts(store, status="resolved")
    assert resolved["resolved_reason"].startswith("licensed:")


def _signed(party: str, tag: str) -> SignedBy:
    return SignedBy(party, NOW, b"\x02" * 65, keccak(tag.encode()))


def test_case_steps_and_illegal_ones(store: Store) -> None:
    ledger = Ledger(store)
    work = _work("cases", 1, ALICE)
    ledger.apply(1, work)
    to_dave = granted(work.iscc_id, BOB, 2, licensee=DAVE)
    to_carol = granted(work.iscc_id, BOB, 3, licensee=CAROL)
    ledger.apply(2, to_dave)
    ledger.apply(3, to_carol)
    ledger.detect()
    (first,) = [c["case"]["id"] for c in list_licence_conflicts(store, grant_id=to_dave.grant_id)]
    (second,) = [c["case"]["id"] for c in list_licence_conflicts(store, grant_id=to_carol.grant_id)]
    with pytest.raises(case_steps.NotAParty):
        case_steps.acknowledge(store, first, _signed(Account.create().address, "x"), now=NOW)
    assert case_steps.acknowledge(store, first, _signed(ALICE, "a"), "noted", now=NOW) == (
        "acknowledged"
    )
    with pytest.raises(case_steps.IllegalTransition, match="acknowledged: it cannot be disputed"):
        case_steps.dispute(store, first, _signed(BOB, "b"), now=NOW)
    with pytest.raises(case_steps.ReplayedResponse):
        case_steps.resolve(store, first, _signed(ALICE, "a"), now=NOW)
    # One side alone never closes a case: Bob, whose grant over Alice's work the case is
    # about, cannot settle it by himself; it closes once every party has signed.
    assert case_steps.resolve(store, first, _signed(BOB, "c"), "settled", now=NOW) == (
        "acknowledged"
    )
    assert case_steps.resolve(store, first, _signed(DAVE, "c2"), now=NOW) == "acknowledged"
    assert case_steps.resolve(store, first, _signed(ALICE, "c3"), "agreed", now=NOW) == "resolved"
    assert get_case(store, first, now=NOW)["closed_reason"] == "agreed"
    with pytest.raises(case_steps.IllegalTransition):
        case_steps.withdraw(store, first, _signed(BOB, "d"), now=NOW)
    assert case_steps.dispute(store, second, _signed(BOB, "e"), now=NOW) == "disputed"
    assert case_steps.withdraw(store, second, _signed(CAROL, "f"), now=NOW) == "disputed"
    assert case_steps.withdraw(store, second, _signed(ALICE, "g"), now=NOW) == "disputed"
    assert case_steps.withdraw(store, second, _signed(BOB, "h"), now=NOW) == "withdrawn"
    with pytest.raises(case_steps.CaseNotFound):
        get_case(store, "0x" + "00" * 32)
    steps = get_case(store, first, now=NOW)["events"]
    assert [(s["actor"], s["action"], s["state"]) for s in steps] == [
        ("registry", "open", "open"),
        (ALICE, "acknowledge", "acknowledged"),
        (BOB, "resolve", "acknowledged"),
        (DAVE, "resolve", "acknowledged"),
        (ALICE, "resolve", "resolved"),
    ]
    assert [c["id"] for c in list_cases(store, party=CAROL, now=NOW)] == [second]


def test_an_unanswered_case_expires_at_its_deadline(store: Store) -> None:
    ledger = Ledger(store)
    work = _work("expiry", 1, ALICE)
    ledger.apply(1, work)
    ledger.apply(2, granted(work.iscc_id, BOB, 2))
    ledger.detect()
    (found,) = _open(store)
    deadline = NOW + 14 * DAY
    assert get_case(store, found["case"]["id"], now=deadline - 1)["state"] == "open"
    # The indexer's after-sync expires it too, without a read.
    ledger.now = deadline
    ledger.detect()
    with store.engine.connect() as conn:
        state = conn.execute(text("SELECT state FROM cases")).scalar_one()
    assert state == "expired"
    with pytest.raises(case_steps.IllegalTransition):
        case_steps.acknowledge(store, found["case"]["id"], _signed(ALICE, "late"), now=deadline)


def test_rollback_removes_a_grant_and_withdraws_its_case_as_reorg(store: Store) -> None:
    ledger = Ledger(store)
    work = _work("reorg", 1, ALICE)
    ledger.apply(1, work)
    kept = granted(work.iscc_id, BOB, 2)
    ledger.apply(2, kept)
    ledger.detect()
    (found,) = _open(store)
    # The replay of the same grant keeps the conflict and its case as they were.
    ledger.rollback(1)
    ledger.apply(2, kept)
    ledger.detect()
    assert [c["id"] for c in _open(store)] == [found["id"]]
    # A branch without it: the conflict goes with the reason "reorg", its case is withdrawn.
    ledger.rollback(1)
    ledger.apply(3, granted(work.iscc_id, ALICE, 3))
    ledger.detect()
    assert _open(store) == []
    (gone,) = list_licence_conflicts(store, status="resolved")
    assert gone["resolved_reason"].startswith("reorg:")
    case = get_case(store, found["case"]["id"], now=NOW)
    assert case["state"] == "withdrawn" and case["closed_reason"].startswith("reorg")
    assert store.grant(kept.grant_id) is None


def test_a_version_9_store_gains_the_licence_tables(db_url: str) -> None:
    work = _work("v9", 1, ALICE)
    with Store.open(db_url) as store:
        Chain(store).apply(1, work)
        with store.engine.begin() as conn:
            for table in reversed(LICENCE_TABLES):
                conn.execute(text(f'DROP TABLE "{table.name}"'))
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="9"))
    with Store.open(db_url) as store:
        with store.engine.connect() as conn:
            assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION >= 10
            assert all(inspect(conn).has_table(t.name) for t in LICENCE_TABLES)
        chain = Chain(store)
        chain.parent = (1, (1).to_bytes(32, "big"))
        grant = granted(work.iscc_id, ALICE, 2)
        chain.apply(2, grant)
        assert store.grant(grant.grant_id).iscc_id == work.iscc_id
        with store.engine.connect() as conn:
            queued = conn.execute(select(func.count()).select_from(licence_queue)).scalar_one()
            assert queued == 1
            assert conn.execute(select(func.count()).select_from(grants)).scalar_one() == 1


def test_work_containing_an_earlier_work_is_its_own_kind(store: Store) -> None:
    """A segment conflict where the earlier work lies inside the granted one (negative offset)
    is work_contains_earlier; the stored content conflict is what detection reads."""
    from registry.store.schema import conflicts, declarations

    ledger = Ledger(store)
    excerpt = _work("excerpt alone", 1, ALICE)
    compilation = _work("compilation", 2, BOB)
    ledger.apply(1, excerpt)
    ledger.apply(2, compilation)
    with store.engine.begin() as conn:
        ids = dict(conn.execute(select(declarations.c.iscc_id, declarations.c.id)).all())
        conn.execute(
            conflicts.insert().values(
                earlier_id=ids[excerpt.iscc_id],
                later_id=ids[compilation.iscc_id],
                kind="segment",
                strength=0.9,
                detail='{"length": 5000, "matched": 10, "offset": -8000, "segment_kind": "video"}',
            )
        )
    ledger.apply(3, granted(compilation.iscc_id, BOB, 3))
    ledger.detect()
    (found,) = _open(store, CONTAINS_EARLIER)
    assert found["other_iscc_id"] == excerpt.iscc_id
    assert found["evidence"]["content_conflicts"][0]["offset"] == -8000


def test_forgetting_a_registry_withdraws_its_cases_as_reorg(store: Store) -> None:
    ledger = Ledger(store)
    item = content(b"forgotten " * 60)
    work = _declared(item, 1, ALICE)
    ledger.apply(1, work)
    ledger.apply(2, granted(work.iscc_id, BOB, 2))
    _usage(store, CAROL, item, 1)
    ledger.detect()
    assert {c["kind"] for c in _open(store)} == {NOT_OWNER, UNLICENSED_USE}
    store.forget(CHAIN, CONTRACT)  # the devnet restarted: its chain is gone
    ledger.detect()
    assert _open(store) == []
    gone = list_licence_conflicts(store, status="resolved")
    assert sorted(c["resolved_reason"].split(":")[0] for c in gone) == ["reorg", "reorg"]
    assert {c["case"]["state"] for c in gone} == {"withdrawn"}


def test_a_strangers_exclusive_grants_do_not_clash_with_each_other(store: Store) -> None:
    """A stranger's exclusive grants over someone else's work (directly, or as sublicences
    under one such grant) are each `grantor_not_owner`, not N*(N-1)/2 overlaps and cases;
    they still clash with the owner's grants."""
    ledger = Ledger(store)
    film = _work("film", 1, ALICE)
    ledger.apply(1, film)
    root = granted(film.iscc_id, BOB, 2, licensee=BOB, sublicensable=True)
    ledger.apply(2, root)
    own = [
        granted(film.iscc_id, BOB, 3, log_index=i, licensee=CAROL, exclusive=True)
        for i in range(20)
    ]
    subs = [
        granted(film.iscc_id, BOB, 4, log_index=i, parent=root.grant_id, exclusive=True)
        for i in range(20)
    ]
    ledger.apply(3, *own)
    ledger.apply(4, *subs)
    ledger.detect()
    assert _open(store, EXCLUSIVE_OVERLAP) == []
    assert len(_open(store, NOT_OWNER)) == 21
    # The owner's exclusive grant clashes with the owner's other grant and the stranger's.
    first = granted(film.iscc_id, ALICE, 5, licensee=DAVE, exclusive=True)
    second = granted(film.iscc_id, ALICE, 5, log_index=60, licensee=CAROL)
    ledger.apply(5, first, second)
    ledger.detect()
    clashes = _open(store, EXCLUSIVE_OVERLAP)
    # first with second and the 41 stranger's grants, second with the 20 public sublicences
    # (the 20 grants to CAROL are not exclusive against CAROL's own licence).
    assert len(clashes) == 1 + 41 + 20
    owners = {first.grant_id, second.grant_id}
    assert all(owners & {c["grant_id"], c["other_grant_id"]} for c in clashes)


def test_reading_cases_takes_no_write_lock_unless_one_is_due(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case reads are anonymous (GET /v1/cases, the case pages): they expire what is due, but
    when nothing is they must not take the store's write lock the indexer needs."""
    ledger = Ledger(store)
    work = _work("reads", 1, ALICE)
    ledger.apply(1, work)
    ledger.apply(2, granted(work.iscc_id, BOB, 2))
    ledger.detect()
    (found,) = _open(store)
    case_id = found["case"]["id"]
    writes = []
    real_write = type(store)._write

    def counted(self: Store):  # type: ignore[no-untyped-def]
        writes.append(1)
        return real_write(self)

    monkeypatch.setattr(type(store), "_write", counted)
    assert get_case(store, case_id, now=NOW)["state"] == "open"
    assert [c["id"] for c in list_cases(store, now=NOW)] == [case_id]
    assert writes == []
    # Past the deadline, a read expires the case (one write).
    assert get_case(store, case_id, now=NOW + 15 * DAY)["state"] == "expired"
    assert writes == [1]


def _cases_of(store: Store, iscc_id: str) -> list[dict]:
    return list_cases(store, iscc_id=iscc_id, limit=1000, now=NOW)


def test_fresh_keys_cannot_flood_a_works_owner_with_cases(store: Store) -> None:
    """Usage reports and grants by 30 fresh keys each are 60 conflicts, all recorded, but they
    open at most `cases_per_work` cases per kind over the work; a trusted reporter and the
    owner still get a case for every conflict, and another work has its own bound."""
    ledger = Ledger(store)
    ledger.licences = LicenceDetector(
        store, clock=lambda: ledger.now, policy=CasePolicy(trusted=frozenset({DAVE}))
    )
    item = content(b"popular work " * 60)
    work, other = _declared(item, 1, ALICE), _work("other", 2, ALICE)
    ledger.apply(1, work)
    ledger.apply(2, other)
    fresh = [Account.create().address for _ in range(30)]
    for nonce, key in enumerate(fresh):
        _usage(store, key, item, nonce)
    ledger.apply(3, *[granted(work.iscc_id, key, 3, log_index=i) for i, key in enumerate(fresh)])
    ledger.apply(4, *[granted(other.iscc_id, key, 4, log_index=i) for i, key in enumerate(fresh)])
    ledger.detect()
    limit = CASES_PER_WORK
    unlicensed, not_owner = _open(store, UNLICENSED_USE), _open(store, NOT_OWNER)
    assert len(unlicensed) == 30 and len(not_owner) == 60
    on_work = [c for c in not_owner if c["iscc_id"] == work.iscc_id]
    for found in (unlicensed, on_work):
        held = [c for c in found if c["case"] is None]
        assert len(held) == 30 - limit
        reasons = [c["evidence"]["case_held"] for c in held]
        assert all("gets its case when one of them ends" in r for r in reasons)
    assert len(_cases_of(store, work.iscc_id)) == 2 * limit
    assert len(_cases_of(store, other.iscc_id)) == limit
    # The owner's exclusive grant clashes with the 30 strangers' grants: caused by them, so
    # bounded too. Accountable parties are never crowded out: a trusted reporter, and the
    # owner's second exclusive grant against the first.
    _usage(store, DAVE, item, 1)
    ledger.apply(5, granted(work.iscc_id, ALICE, 5, licensee=BOB, exclusive=True))
    ledger.apply(6, granted(work.iscc_id, ALICE, 6, licensee=CAROL, exclusive=True))
    ledger.detect()
    assert len(_open(store, EXCLUSIVE_OVERLAP)) == 30 + 31
    assert len(_cases_of(store, work.iscc_id)) == 3 * limit + 2
    by_owner = [c for c in _open(store, EXCLUSIVE_OVERLAP) if c["case"] is not None]
    assert len(by_owner) == limit + 1
    (trusted,) = [c for c in _open(store, UNLICENSED_USE) if c["case"] and DAVE in str(c)]
    assert trusted["case"]["state"] == "open"


def test_case_policy_comes_from_the_settings() -> None:
    settings = Settings(case_response_days=3, cases_per_work=2, case_trusted_parties=[DAVE.lower()])
    policy = CasePolicy.of(settings)
    assert (policy.response_days, policy.cases_per_work, policy.trusted) == (3, 2, {DAVE})
    with pytest.raises(ValidationError, match="not an Ethereum address"):
        Settings(case_trusted_parties=["0x1234"])


def test_a_grant_id_repeated_on_another_registry_is_judged_on_its_own(store: Store) -> None:
    """keccak(grantor, nonce) is the same grant id on every registry: Bob's grant over his own
    work here licenses a use although the same id is a grant over Alice's work elsewhere."""
    ledger = Ledger(store)
    item = content(b"bob's own work " * 60)
    work = _declared(item, 1, BOB)
    ledger.apply(1, work)
    own = granted(work.iscc_id, BOB, 2, nonce=7, uses=SVOD)
    ledger.apply(2, own)
    elsewhere = to_checksum_address("0x" + "34" * 20)
    alices = _work("alice's work", 3, ALICE)
    foreign = granted(alices.iscc_id, BOB, 4, nonce=7, uses=SVOD)
    assert foreign.grant_id == own.grant_id
    three, four = (3).to_bytes(32, "big"), (4).to_bytes(32, "big")
    store.apply(CHAIN, elsewhere, [alices], None, 3, three)
    store.apply(CHAIN, elsewhere, [foreign], (3, three), 4, four)
    ledger.detect()
    _usage(store, DAVE, item, 1, territory="DE", use=SVOD)
    ledger.detect()
    (not_owner,) = _open(store, NOT_OWNER)
    assert not_owner["contract"] == elsewhere
    assert _open(store, UNLICENSED_USE) == []
    assert store.grant(own.grant_id, CHAIN, CONTRACT).iscc_id == work.iscc_id
    assert store.grant(own.grant_id, CHAIN, elsewhere).iscc_id == alices.iscc_id


# --- review (branch rev): the case flood bound and registry scoping -----------------------------


def test_review_a_copys_declarer_cannot_flood_the_original_owner_with_priority_cases(
    store: Store,
) -> None:
    """A fresh key declares a copy of Alice's work (one transaction) and grants over it 30
    times: each grant is a grantor_not_priority conflict naming Alice ("earlier owner"). The
    grantor owns the copy, so CaseGate calls every one accountable and all 30 open a case and
    notify Alice: the bound does not hold for priority conflicts."""
    ledger = Ledger(store)
    item = content(b"alice's original " * 60)
    original = _declared(item, 1, ALICE)
    ledger.apply(1, original)
    attacker = Account.create().address
    copy = _declared(item, 2, attacker)
    ledger.apply(2, copy)
    ledger.apply(3, *[granted(copy.iscc_id, attacker, 3, log_index=i, nonce=i) for i in range(30)])
    ledger.detect()
    found = _open(store, NOT_PRIORITY)
    assert len(found) == 30
    with_case = [c for c in found if c["case"] is not None]
    parties = [get_case(store, c["case"]["id"], now=NOW)["parties"] for c in with_case]
    naming_alice = [ps for ps in parties if ALICE in {p["address"] for p in ps}]
    assert len(naming_alice) <= CASES_PER_WORK


def test_review_fresh_keys_cannot_hide_an_infringers_grant_from_the_owner(store: Store) -> None:
    """An infringer first fills the bound with 10 throw-away grants from fresh keys over Alice's
    work (same block), then grants the licence that matters. Its grantor_not_owner conflict is
    recorded without a case, and stays so after the throw-away grants are terminated and their
    cases resolved: the accused chose that the owner and licensee are never notified."""
    ledger = Ledger(store)
    work = _work("hidden", 1, ALICE)
    ledger.apply(1, work)
    junk = [
        granted(work.iscc_id, Account.create().address, 2, log_index=i)
        for i in range(CASES_PER_WORK)
    ]
    real = granted(work.iscc_id, BOB, 2, log_index=50, licensee=CAROL, worldwide=True)
    ledger.apply(2, *junk, real)
    ledger.detect()
    ledger.apply(3, *[terminated(g, g.grantor, 3, log_index=i) for i, g in enumerate(junk)])
    ledger.detect()
    (infringing,) = _open(store, NOT_OWNER)
    assert infringing["grant_id"] == real.grant_id
    assert infringing["case"] is not None, infringing["evidence"].get("case_held")


def test_review_an_invalid_grant_on_another_registry_does_not_unlicense_its_namesake(
    store: Store,
) -> None:
    """Bob's grant (nonce 7) over his own work licenses Dave's use here. On another registry in
    the same store the same bytes are Alice's work, and Bob's grant with the same id over it is
    grantor_not_owner there. unlicensed_uses passes the grants of every registry over the
    related works to invalid_grants and compares bare ids, so Bob's valid grant here counts as
    invalid and Dave's licensed use becomes an unlicensed_use case."""
    ledger = Ledger(store)
    item = content(b"bob's film " * 60)
    work = _declared(item, 1, BOB)
    ledger.apply(1, work)
    own = granted(work.iscc_id, BOB, 2, nonce=7, uses=SVOD, worldwide=True, territories=())
    ledger.apply(2, own)
    elsewhere = to_checksum_address("0x" + "34" * 20)
    alices = _declared(item, 3, ALICE, log_index=1)
    foreign = granted(alices.iscc_id, BOB, 4, nonce=7, uses=SVOD, worldwide=True, territories=())
    assert foreign.grant_id == own.grant_id
    three, four = (3).to_bytes(32, "big"), (4).to_bytes(32, "big")
    store.apply(CHAIN, elsewhere, [alices], None, 3, three)
    store.apply(CHAIN, elsewhere, [foreign], (3, three), 4, four)
    ledger.detect()
    assert [c["contract"] for c in _open(store, NOT_OWNER)] == [elsewhere]
    _usage(store, DAVE, item, 1, territory="DE", use=SVOD)
    ledger.detect()
    unlicensed = _open(store, UNLICENSED_USE)
    assert unlicensed == [], [c["evidence"]["invalid_grants"] for c in unlicensed]


def test_review_a_usage_report_of_another_registry_is_not_judged_again_here(
    store: Store,
) -> None:
    """Dave's use is reported on another registry (its LicenceRegistry) where the bytes are
    Alice's work: one unlicensed_use there. A grant here over Bob's declaration of the same
    bytes makes this registry's run read the open usage reports of the related works in every
    registry (_usage_of is not scoped) and reconcile them under this registry's scope: the same
    report gets a second conflict and a second case, filed under the wrong registry."""
    ledger = Ledger(store)
    item = content(b"shared bytes " * 60)
    elsewhere = to_checksum_address("0x" + "34" * 20)
    alices = _declared(item, 1, ALICE, log_index=1)
    store.apply(CHAIN, elsewhere, [alices], None, 1, (1).to_bytes(32, "big"))
    store_usage_report(
        store, chain_id=CHAIN, contract=elsewhere, reporter=DAVE, iscc_code_raw=item["raw"],
        datahash=item["digest"], nonce=1, signature=b"\x01" * 65, digest=keccak(b"dave 1"),
        now=NOW, territory="DE", use=SVOD, used_at=T0 + 10 * DAY,
    )  # fmt: skip
    ledger.detect()
    assert [c["contract"] for c in _open(store, UNLICENSED_USE)] == [elsewhere]
    work = _declared(item, 2, BOB)
    ledger.apply(2, work)
    ledger.apply(3, granted(work.iscc_id, BOB, 3, uses=AVOD))
    ledger.detect()
    assert [c["contract"] for c in _open(store, UNLICENSED_USE)] == [elsewhere]


def test_review_a_strangers_sublicences_under_someone_elses_grant_do_not_clash_pairwise(
    store: Store,
) -> None:
    """A stranger's exclusive grants over Alice's work are N grantor_not_owner conflicts, not
    N*(N-1)/2 overlaps (exclusive_overlaps skips pairs of unauthorised lines). Hung as
    "sublicences" under Alice's licence to Bob (the stranger is not Bob; the parent is not
    even sublicensable), each one is a sublicence_exceeds conflict, but `unauthorised` looks
    only at the root's grantor (Alice), so the stranger's grants count as rightful and clash
    with each other: N*(N-1)/2 exclusive_overlap rows, findings and reconcile work from N
    transactions (quadratic in a catch-up)."""
    ledger = Ledger(store)
    film = _work("film under bob", 1, ALICE)
    ledger.apply(1, film)
    bobs = granted(film.iscc_id, ALICE, 2, licensee=BOB, territories=("AT",))
    ledger.apply(2, bobs)
    stranger, n = Account.create().address, 30
    subs = [
        granted(
            film.iscc_id,
            stranger,
            3,
            log_index=i,
            parent=bobs.grant_id,
            exclusive=True,
            licensee=Account.create().address,
            nonce=i,
        )
        for i in range(n)
    ]
    ledger.apply(3, *subs)
    ledger.detect()
    assert len(_open(store, SUBLICENCE_EXCEEDS)) == n
    overlaps = list_licence_conflicts(store, kind=EXCLUSIVE_OVERLAP, limit=10_000)
    assert len(overlaps) <= n, f"{len(overlaps)} overlaps from {n} grants"


def test_review_disputed_junk_cases_do_not_hold_the_bound_forever(store: Store) -> None:
    """Ten fresh keys report uses of Alice's work (free signed notes) and each disputes its own
    case (another free note). Disputed cases count against the bound but never expire (only
    `open` ones do), and Alice alone cannot close them (every party must sign): the bound stays
    full for good, and months later an honest platform's unlicensed use gets no case. The
    docstring's "each for its response deadline" does not hold."""
    ledger = Ledger(store)
    item = content(b"alice's song " * 60)
    work = _declared(item, 1, ALICE)
    ledger.apply(1, work)
    junk = [Account.create().address for _ in range(CASES_PER_WORK)]
    for nonce, key in enumerate(junk):
        _usage(store, key, item, nonce)
    ledger.detect()
    for case in _cases_of(store, work.iscc_id):
        reporter = next(p["address"] for p in case["parties"] if p["address"] in junk)
        case_steps.dispute(store, case["id"], _signed(reporter, case["id"]), "not me", now=NOW)
    ledger.now = NOW + 200 * DAY
    ledger.detect()
    honest_id = _usage(store, CAROL, item, 1, used_at=T0 + 190 * DAY)
    ledger.detect()
    (honest,) = [c for c in _open(store, UNLICENSED_USE) if c["usage_id"] == honest_id]
    assert honest["case"] is not None, honest["evidence"].get("case_held")


def test_review_a_works_licence_list_shows_only_its_registrys_conflicts(store: Store) -> None:
    """work_licences reads the open conflicts of the listed grants by bare grant id
    (licence_views._open_conflicts): Bob's sound grant over his own work is shown with the
    grantor_not_owner conflict of its namesake on another registry (GET /v1/works/{id}/licences,
    `license list`, the work page)."""
    from registry.ledger.licence_views import work_licences

    ledger = Ledger(store)
    work = _work("bob's own, listed", 1, BOB)
    ledger.apply(1, work)
    own = granted(work.iscc_id, BOB, 2, nonce=9, uses=SVOD)
    ledger.apply(2, own)
    elsewhere = to_checksum_address("0x" + "34" * 20)
    alices = _work("alice's, elsewhere", 3, ALICE)
    foreign = granted(alices.iscc_id, BOB, 4, nonce=9, uses=SVOD)
    three, four = (3).to_bytes(32, "big"), (4).to_bytes(32, "big")
    store.apply(CHAIN, elsewhere, [alices], None, 3, three)
    store.apply(CHAIN, elsewhere, [foreign], (3, three), 4, four)
    ledger.detect()
    assert [c["contract"] for c in _open(store, NOT_OWNER)] == [elsewhere]
    (listed,) = work_licences(store, work.iscc_id, now=NOW)
    assert listed["grant_id"] == own.grant_id
    assert listed["conflicts"] == []


def test_review_the_same_iscc_id_on_two_registries_is_two_works(store: Store) -> None:
    """An ISCC-ID is minted once per registry, not once per store: two deployments with the
    same hub id on two chains (or a redeployed contract) can mint the same one. works_of reads
    declarations and their event history by bare ISCC-ID and merges them: after Alice's
    transfer here, Bob's grant over his own declaration on the other registry is judged
    against Alice's declaration and history and becomes grantor_not_owner (CaseGate reads the
    owner the same way)."""
    ledger = Ledger(store)
    alices = _work("alice's, here", 1, ALICE)
    ledger.apply(1, alices)
    ledger.apply(2, _change("Transferred", alices, 2, **{"from": ALICE, "to": DAVE}))
    elsewhere = to_checksum_address("0x" + "34" * 20)
    bobs = _work("bob's, elsewhere", 1, BOB)
    assert bobs.iscc_id == alices.iscc_id
    one, three = (1).to_bytes(32, "big"), (3).to_bytes(32, "big")
    store.apply(CHAIN, elsewhere, [bobs], None, 1, one)
    store.apply(CHAIN, elsewhere, [granted(bobs.iscc_id, BOB, 3)], (1, one), 3, three)
    ledger.detect()
    assert _open(store, NOT_OWNER) == []
