"""Licence conflicts and cases on a real Hardhat node, indexed by the registry's indexer into both
backends: every conflict rule from grants sent to the LicenceRegistry (with its exact overlap),
terms that only touch, world-minus-exclusions against one country, an exclusive grant on a film
against an open grant on an excerpt of it, each case step, automatic resolution by termination,
revocation and transfer, expiry, and reorgs that remove a grant or revive a terminated one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from index_helpers import content, declare_direct
from licence_helpers import DAY, T0, grant_on_chain, terminate_on_chain
from works import cut_clip, make_video_work

from registry.chain.contract import Registry
from registry.chain.devnet import fund
from registry.chain.iscc_id import IsccId
from registry.chain.submit import declaration_receipt, prepare, submit_signed
from registry.errors import InvalidNote
from registry.iscc.generate import generate
from registry.ledger import cases as case_steps
from registry.ledger.cases import SignedBy, get_case, respond
from registry.ledger.indexer import Indexer
from registry.ledger.licence_conflicts import (
    EXCLUSIVE_OVERLAP,
    NOT_OWNER,
    NOT_PRIORITY,
    SUBLICENCE_EXCEEDS,
    UNLICENSED_USE,
    UsageReplayed,
    list_licence_conflicts,
    report_usage,
)
from registry.ledger.notes import CaseResponse, NotesDomain, SignedNote, UsageReport, sign
from registry.ledger.terms import Use
from registry.metadata import canonicalize
from registry.store.store import Store

pytestmark = pytest.mark.chain

SVOD, AVOD = int(Use.SVOD), int(Use.AVOD)


@pytest.fixture
def keys(registry: Registry) -> dict[str, LocalAccount]:
    """Fresh keys, funded on the devnet: they send their own transactions (they pay gas)."""
    found = {name: Account.create() for name in ("alice", "bob", "carol", "dave")}
    for key in found.values():
        fund(registry.w3, key.address, 10**21)
    return found


def _declare(registry: Registry, sender: LocalAccount, item: dict[str, Any]) -> tuple[str, int]:
    """Declare directly; returns the ISCC-ID and the record handle."""
    receipt = declare_direct(registry, sender, item)
    declared = declaration_receipt(registry, receipt)
    return str(declared.iscc_id), declared.record


def _indexer(registry: Registry, store: Store, now: int) -> Indexer:
    indexer = Indexer(registry, store)
    indexer.licences.clock = lambda: now
    return indexer


def _conflicts(store: Store, status: str = "open") -> dict[tuple[str, str | None], dict]:
    return {(c["kind"], c["grant_id"]): c for c in list_licence_conflicts(store, status=status)}


def test_every_rule_on_the_devnet_with_its_overlap(
    registry: Registry, store: Store, keys: dict[str, LocalAccount]
) -> None:
    alice, bob, carol, dave = keys["alice"], keys["bob"], keys["carol"], keys["dave"]
    item = content(b"licensed on chain " * 50)
    work, _ = _declare(registry, alice, item)
    copy, _ = _declare(registry, bob, item)  # the same bytes, later: a content conflict
    year = T0 + 365 * DAY
    exclusive = grant_on_chain(
        registry, alice, work, licensee=carol.address, territories=("AT", "DE"), uses=SVOD,
        end=year, exclusive=True,
    )  # fmt: skip
    # Touching: starts when the exclusive term ends. Elsewhere: the world except AT and DE.
    grant_on_chain(registry, alice, work, licensee=dave.address, territories=("DE",),
                   uses=SVOD, start=year)  # fmt: skip
    grant_on_chain(registry, alice, work, licensee=dave.address, worldwide=True,
                   territories=("AT", "DE"), uses=SVOD)  # fmt: skip
    # Bob's public grant over his copy meets Carol's exclusivity in DE.
    on_copy = grant_on_chain(
        registry, bob, copy, territories=("DE", "FR"), uses=SVOD | AVOD, start=T0 + 30 * DAY
    )
    # Bob licenses Alice's work: not his.
    not_his = grant_on_chain(registry, bob, work, licensee=dave.address, territories=("FR",))
    # Carol's exclusive grant is not sublicensable.
    sub = grant_on_chain(
        registry, carol, work, licensee=dave.address, parent=exclusive, territories=("DE",),
        uses=SVOD, end=year,
    )  # fmt: skip
    Indexer(registry, store).sync()

    found = _conflicts(store)
    assert set(found) == {
        (EXCLUSIVE_OVERLAP, on_copy),
        (NOT_PRIORITY, on_copy),
        (NOT_OWNER, not_his),
        (SUBLICENCE_EXCEEDS, sub),
    }
    clash = found[EXCLUSIVE_OVERLAP, on_copy]
    assert clash["other_grant_id"] == exclusive
    assert (clash["iscc_id"], clash["other_iscc_id"]) == (copy, work)
    assert clash["overlap"]["territories"] == {"worldwide": False, "codes": ["DE"]}
    assert [u.lower() for u in clash["overlap"]["uses"]] == ["svod"]
    assert clash["overlap"]["period"] == {"start": T0 + 30 * DAY, "end": year}
    assert clash["evidence"]["relation"]["kind"] == "datahash"
    assert found[NOT_PRIORITY, on_copy]["other_iscc_id"] == work
    assert found[NOT_OWNER, not_his]["evidence"]["owner_at_grant"] == alice.address
    assert found[SUBLICENCE_EXCEEDS, sub]["evidence"]["reasons"] == [
        "the parent grant may not be sublicensed"
    ]
    # A usage by Dave in FR: the only grant that names FR there is Bob's, over Alice's work,
    # which he had no right to give.
    deployment = registry.deployment
    domain = NotesDomain(deployment.chain_id, deployment.licences)
    usage = UsageReport.create(
        dave.address, item["iscc"], item["datahash"], "FR", "theatrical", T0 + 40 * DAY, 1
    )
    signed = sign(usage, domain, dave)
    report = report_usage(store, deployment, signed)
    with pytest.raises(UsageReplayed):
        report_usage(store, deployment, signed)
    Indexer(registry, store).sync()
    (unlicensed,) = list_licence_conflicts(store, kind=UNLICENSED_USE)
    assert unlicensed["usage_id"] == report.id and unlicensed["iscc_id"] == work
    assert not_his in unlicensed["evidence"]["invalid_grants"]


def test_an_exclusive_grant_on_a_film_meets_an_open_grant_on_an_excerpt(
    registry: Registry, payer: LocalAccount, store: Store, tmp_path: Path,
    keys: dict[str, LocalAccount],
) -> None:  # fmt: skip
    alice, bob = keys["alice"], keys["bob"]
    film = generate(make_video_work(tmp_path / "film.mp4", 71, 20))
    excerpt = generate(cut_clip(tmp_path / "film.mp4", tmp_path / "cut.mp4", 8.4, 5))
    ids = {}
    for name, result, key in (("film", film, alice), ("excerpt", excerpt, bob)):
        document = canonicalize(result.declaration_document())
        store.put_metadata(document.digest, document.canonical)
        signed = prepare(registry, key, result.iscc, result.datahash, document.metahash)
        ids[name] = str(submit_signed(registry, signed, payer).iscc_id)
    on_film = grant_on_chain(
        registry, alice, ids["film"], licensee=keys["carol"].address, worldwide=True,
        territories=("US",), uses=SVOD, exclusive=True,
    )  # fmt: skip
    on_excerpt = grant_on_chain(
        registry, bob, ids["excerpt"], territories=("FR", "US"), uses=SVOD | AVOD
    )
    Indexer(registry, store).sync()
    found = _conflicts(store)
    clash = found[EXCLUSIVE_OVERLAP, on_excerpt]
    assert clash["other_grant_id"] == on_film
    # World except US against FR and US: FR, for SVOD only, from the start of both.
    assert clash["overlap"]["territories"] == {"worldwide": False, "codes": ["FR"]}
    assert [u.lower() for u in clash["overlap"]["uses"]] == ["svod"]
    relation = clash["evidence"]["relation"]
    assert relation["kind"] == "segment" and relation["offset"] >= 0
    assert (NOT_PRIORITY, on_excerpt) in found


def test_the_same_declarers_trailer_is_related_to_the_film_by_search(
    registry: Registry, payer: LocalAccount, store: Store, tmp_path: Path,
    keys: dict[str, LocalAccount],
) -> None:  # fmt: skip
    """Alice declares a film and a trailer cut from it: no content conflict (one declarer),
    yet her open grant on the trailer meets the exclusive grant on the film."""
    alice = keys["alice"]
    film = generate(make_video_work(tmp_path / "film.mp4", 72, 20))
    trailer = generate(cut_clip(tmp_path / "film.mp4", tmp_path / "trailer.mp4", 4.2, 5))
    ids = {}
    for name, result in (("film", film), ("trailer", trailer)):
        document = canonicalize(result.declaration_document())
        store.put_metadata(document.digest, document.canonical)
        signed = prepare(registry, alice, result.iscc, result.datahash, document.metahash)
        ids[name] = str(submit_signed(registry, signed, payer).iscc_id)
    on_film = grant_on_chain(
        registry, alice, ids["film"], licensee=keys["carol"].address, territories=("DE",),
        uses=SVOD, exclusive=True,
    )  # fmt: skip
    on_trailer = grant_on_chain(
        registry, alice, ids["trailer"], territories=("AT", "DE"), uses=SVOD | AVOD
    )
    Indexer(registry, store).sync()
    found = _conflicts(store)
    assert set(found) == {(EXCLUSIVE_OVERLAP, on_trailer)}
    clash = found[EXCLUSIVE_OVERLAP, on_trailer]
    assert clash["other_grant_id"] == on_film
    assert clash["overlap"]["territories"] == {"worldwide": False, "codes": ["DE"]}
    relation = clash["evidence"]["relation"]
    assert (relation["kind"], relation["source"]) == ("segment", "search")
    assert abs(relation["offset"] / 1000 - 4.2) <= 1.0


def _signed(party: LocalAccount, tag: str, now: int) -> SignedBy:
    return SignedBy(party.address, now, b"\x03" * 65, keccak(tag.encode()))


def test_case_steps_and_automatic_resolution_by_termination_revocation_and_transfer(
    registry: Registry, store: Store, keys: dict[str, LocalAccount]
) -> None:
    alice, bob, carol, dave = keys["alice"], keys["bob"], keys["carol"], keys["dave"]
    now = T0 + 10 * DAY
    works = {}
    for name in ("terminated", "revoked", "transferred", "answered"):
        works[name] = _declare(registry, alice, content(f"case {name} ".encode() * 50))
    grants = {
        name: grant_on_chain(registry, bob, works[name][0], licensee=carol.address)
        for name in works
    }
    indexer = _indexer(registry, store, now)
    indexer.sync()
    cases = {
        name: list_licence_conflicts(store, grant_id=grants[name])[0]["case"]["id"]
        for name in works
    }
    assert {get_case(store, c, now=now)["state"] for c in cases.values()} == {"open"}

    # A party answers with signed notes: acknowledged, then resolved; a replayed note, a
    # stranger's, one signed for another registry and steps out of order are refused.
    answered = cases["answered"]
    domain = NotesDomain(registry.deployment.chain_id, registry.deployment.licences)

    def note(key: LocalAccount, action: str, text: str = "") -> SignedNote:
        return sign(CaseResponse.create(key.address, answered, action, text, now), domain, key)

    acknowledged = note(alice, "acknowledge", "we will sort it out")
    assert respond(store, acknowledged, domain, now=now) == "acknowledged"
    with pytest.raises(case_steps.ReplayedResponse):
        respond(store, acknowledged, domain, now=now)
    with pytest.raises(case_steps.IllegalTransition):
        respond(store, note(bob, "dispute"), domain, now=now)
    with pytest.raises(case_steps.NotAParty):
        respond(store, note(dave, "resolve"), domain, now=now)
    elsewhere = NotesDomain(registry.deployment.chain_id, registry.deployment.address)
    foreign = sign(CaseResponse.create(bob.address, answered, "resolve", "", now), elsewhere, bob)
    with pytest.raises(InvalidNote):
        respond(store, foreign, domain, now=now)
    forged = SignedNote(note(bob, "resolve").note, note(dave, "resolve").signature, domain)
    with pytest.raises(InvalidNote):
        respond(store, forged, domain, now=now)
    # Bob's grant is what the case is about: his "resolved" alone leaves it open to the others.
    assert respond(store, note(bob, "resolve", "settled"), domain, now=now) == "acknowledged"
    assert respond(store, note(carol, "resolve"), domain, now=now) == "acknowledged"
    assert respond(store, note(alice, "resolve", "settled"), domain, now=now) == "resolved"

    # The licensee gives the licence up; Alice revokes one work and hands another to Bob.
    terminate_on_chain(registry, carol, grants["terminated"])
    iscc_id, record = works["revoked"]
    registry.transact(registry.contract.functions.revoke(IsccId.parse(iscc_id).body, record), alice)
    iscc_id, record = works["transferred"]
    registry.transact(
        registry.contract.functions.transfer(IsccId.parse(iscc_id).body, record, bob.address),
        alice,
    )
    indexer.sync()
    reasons = {}
    for name in ("terminated", "revoked", "transferred"):
        case = get_case(store, cases[name], now=now)
        assert case["state"] == "resolved"
        assert [e["actor"] for e in case["events"]] == ["registry", "registry"]
        reasons[name] = case["closed_reason"].split(":")[0]
    assert reasons == {
        "terminated": "terminated",
        "revoked": "revoked",
        "transferred": "transferred",
    }
    # The case a party resolved stays as the party left it.
    assert get_case(store, answered, now=now)["state"] == "resolved"
    assert [e["actor"] for e in get_case(store, answered, now=now)["events"]] == [
        "registry",
        alice.address,
        bob.address,
        carol.address,
        alice.address,
    ]


def test_an_unanswered_case_expires_and_a_disputed_one_is_withdrawn(
    registry: Registry, store: Store, keys: dict[str, LocalAccount]
) -> None:
    alice, bob = keys["alice"], keys["bob"]
    now = T0 + 10 * DAY
    first, _ = _declare(registry, alice, content(b"expiring case " * 50))
    second, _ = _declare(registry, alice, content(b"disputed case " * 50))
    silent = grant_on_chain(registry, bob, first)
    argued = grant_on_chain(registry, bob, second)
    indexer = _indexer(registry, store, now)
    indexer.sync()
    silent_case = list_licence_conflicts(store, grant_id=silent)[0]["case"]["id"]
    argued_case = list_licence_conflicts(store, grant_id=argued)[0]["case"]["id"]
    assert case_steps.dispute(store, argued_case, _signed(bob, "mine", now), now=now) == (
        "disputed"
    )
    later = now + 14 * DAY
    indexer.licences.clock = lambda: later
    indexer.sync()  # the after-sync expires what is due, with nothing new on chain
    expired = get_case(store, silent_case, now=later)
    assert expired["state"] == "expired" and expired["events"][-1]["actor"] == "registry"
    # A disputed case had an answer: it does not expire; it is withdrawn once both sides sign.
    assert get_case(store, argued_case, now=later)["state"] == "disputed"
    assert case_steps.withdraw(store, argued_case, _signed(alice, "drop", later), now=later) == (
        "disputed"
    )
    assert case_steps.withdraw(store, argued_case, _signed(bob, "drop too", later), now=later) == (
        "withdrawn"
    )


def _rpc(registry: Registry, method: str, *params: object) -> object:
    return registry.w3.provider.make_request(method, list(params))["result"]


def test_reorgs_remove_a_grant_and_revive_a_terminated_one(
    registry: Registry, store: Store, keys: dict[str, LocalAccount]
) -> None:
    alice, bob, carol = keys["alice"], keys["bob"], keys["carol"]
    work, _ = _declare(registry, alice, content(b"reorganised licences " * 40))
    exclusive = grant_on_chain(registry, alice, work, licensee=carol.address, exclusive=True)
    indexer = Indexer(registry, store)
    indexer.sync()
    snapshot = _rpc(registry, "evm_snapshot")
    # The first branch: Bob's grant over Alice's work, and Carol gives hers up.
    by_bob = grant_on_chain(registry, bob, work, licensee=bob.address)
    terminate_on_chain(registry, carol, exclusive)
    indexer.sync()
    assert set(_conflicts(store)) == {(NOT_OWNER, by_bob)}
    assert store.grant(exclusive).terminated
    case_id = list_licence_conflicts(store, grant_id=by_bob)[0]["case"]["id"]

    # The canonical branch has neither: Bob's grant goes, Carol's grant lives again.
    assert _rpc(registry, "evm_revert", snapshot) is True
    for _ in range(4):
        _rpc(registry, "evm_mine")
    report = indexer.sync()
    assert report.events_rolled_back == 2
    assert store.grant(by_bob) is None
    assert not store.grant(exclusive).terminated
    assert _conflicts(store) == {}
    case = get_case(store, case_id)
    assert case["state"] == "withdrawn" and case["closed_reason"].startswith("reorg")
    # Replayed on the canonical chain, Bob's grant (same id: grantor and nonce) clashes anew.
    assert grant_on_chain(registry, bob, work, licensee=bob.address) != by_bob
    indexer.sync()
    assert {k for k, _g in _conflicts(store)} == {NOT_OWNER, EXCLUSIVE_OVERLAP}
