"""Conflicts on a real Hardhat node, indexed by the follower into both backends: an exact copy and
a re-encoded copy declared by other keys, the original re-declared by its own key, licences that
disagree, a revocation that resolves, a reorg that removes; listed through the API and the CLI."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import iscc_lib
import pytest
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from index_helpers import content, declare_direct
from kill_helpers import RUN_AHEAD, after, cli_env, kill_cli_when
from pictures import picture
from sqlalchemy import select
from works import cut_clip, make_video_work

from registry.api import create_app
from registry.chain.actions import act_relayed, make_action, sign_for
from registry.chain.contract import Registry
from registry.chain.deployment import Deployment
from registry.chain.devnet import dev_account
from registry.chain.iscc_id import IsccId
from registry.chain.submit import prepare, submit_signed
from registry.config import Settings
from registry.iscc.generate import IsccResult, generate
from registry.ledger.conflicts import list_conflicts
from registry.ledger.indexer import Indexer
from registry.metadata import CanonicalMetadata, canonicalize
from registry.store.schema import conflict_queue, conflicts, declarations
from registry.store.store import Store

pytestmark = pytest.mark.chain

CLI = str(Path(sys.executable).parent / "iscc-registry")


def _declare(
    registry: Registry,
    key: LocalAccount,
    payer: LocalAccount,
    result: IsccResult,
    document: CanonicalMetadata | None = None,
) -> str:
    metahash = document.metahash if document else None
    signed = prepare(registry, key, result.iscc, result.datahash, metahash)
    return str(submit_signed(registry, signed, payer).iscc_id)


def _image_distance(a: IsccResult, b: IsccResult) -> int:
    """Differing bits among the first 64 of the two Image-Code units, computed from the codes."""

    def body(result: IsccResult) -> int:
        for unit in result.units:
            maintype, subtype, _version, _length, digest = iscc_lib.iscc_decode(
                unit.removeprefix("ISCC:")
            )
            if maintype == iscc_lib.MT.CONTENT and int(subtype) == 1:
                return int.from_bytes(digest[:8], "big")
        raise AssertionError(f"no Image-Code in {result.units}")

    return (body(a) ^ body(b)).bit_count()


def _summary(found: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    return {
        (c["earlier"]["iscc_id"], c["later"]["iscc_id"]): {
            e["kind"]: e["strength"] for e in c["evidence"]
        }
        for c in found
    }


@pytest.fixture
def works(tmp_path: Path) -> dict[str, IsccResult]:
    original = tmp_path / "harbour.png"
    picture(5).save(original)
    copy = tmp_path / "copy-of-harbour.png"
    shutil.copyfile(original, copy)
    reencoded = tmp_path / "harbour-small.jpg"
    picture(5).resize((240, 180)).save(reencoded, "JPEG", quality=70)
    other = tmp_path / "other.png"
    picture(40).save(other)
    return {
        name: generate(path)
        for name, path in [
            ("original", original),
            ("copy", copy),
            ("reencoded", reencoded),
            ("other", other),
        ]
    }


def test_copies_by_other_keys_conflict_and_a_revocation_resolves(
    registry: Registry,
    payer: LocalAccount,
    store: Store,
    db_url: str,
    deployment: Deployment,
    works: dict[str, IsccResult],
    tmp_path: Path,
) -> None:
    alice, bob, carol = Account.create(), Account.create(), Account.create()
    licensed = canonicalize({"name": "Harbour", "license": "https://a.example/by", "rights": "A"})
    claimed = canonicalize({"name": "Harbour", "license": "https://b.example/arr", "rights": "B"})
    for document in (licensed, claimed):
        store.put_metadata(document.digest, document.canonical)
    first = _declare(registry, alice, payer, works["original"], licensed)
    exact = _declare(registry, bob, payer, works["copy"], claimed)
    reencoded = _declare(registry, carol, payer, works["reencoded"])
    again = _declare(registry, alice, payer, works["original"])
    unrelated = _declare(registry, carol, payer, works["other"])
    follower = Indexer(registry, store)
    follower.sync()

    assert works["copy"].datahash == works["original"].datahash
    assert works["reencoded"].datahash != works["original"].datahash
    distance = _image_distance(works["original"], works["reencoded"])
    assert 0 < distance <= 10
    near = round(1 - distance / 64, 4)
    found = list_conflicts(store)
    assert _summary(found) == {
        (first, exact): {"datahash": 1.0, "content": 1.0},
        (first, reencoded): {"content": near},
        (exact, reencoded): {"content": near},
    }
    assert found[0]["disagreements"] == [
        {"field": "license", "earlier": "https://a.example/by", "later": "https://b.example/arr"},
        {"field": "rights", "earlier": "A", "later": "B"},
    ]
    content = next(e for e in found[1]["evidence"] if e["kind"] == "content")
    assert (content["unit_type"], content["distance"]) == ("CONTENT-IMAGE", distance)
    # Alice re-declaring her own picture, and Carol's unrelated one, are in no conflict.
    assert list_conflicts(store, iscc_id=again) == []
    assert list_conflicts(store, iscc_id=unrelated) == []
    assert follower.sync().events_new == 0
    assert len(list_conflicts(store)) == 3

    revoke = make_action("revoke", IsccId.parse(exact))
    act_relayed(registry, sign_for(registry, bob, revoke), payer)
    follower.sync()
    assert {
        (c["earlier"]["iscc_id"], c["later"]["iscc_id"]): c["resolved"]
        for c in list_conflicts(store)
    } == {(first, exact): True, (first, reencoded): False, (exact, reencoded): True}
    assert _summary(list_conflicts(store, status="open")) == {(first, reencoded): {"content": near}}

    # The API: globally, per declarer, per declaration and in the ISCC-ID answer.
    home = tmp_path / "home"
    deployment.save(home / "deployment.json")
    app = create_app(Settings(home=home, db_url=db_url), store=store)
    with TestClient(app) as client:
        answer = client.get("/v1/conflicts", params={"status": "open"})
        assert answer.status_code == 200
        assert _summary(answer.json()["conflicts"]) == {(first, reencoded): {"content": near}}
        by_carol = client.get("/v1/conflicts", params={"declarer": carol.address.lower()})
        assert len(by_carol.json()["conflicts"]) == 2
        by_id = client.get("/v1/conflicts", params={"iscc_id": exact}).json()["conflicts"]
        assert [c["later"]["iscc_id"] for c in by_id] == [exact, reencoded]
        resolved = client.get(f"/iscc-id/{first}").json()["conflicts"]
        assert [c["resolved"] for c in resolved] == [True, False]
        bad = client.get("/v1/conflicts", params={"declarer": "0x12"})
        assert bad.status_code == 400 and "not an Ethereum address" in bad.json()["message"]

    # The CLI, as a user runs it against the same store.
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home), "ISCC_REGISTRY_DB_URL": db_url}
    listed = subprocess.run(
        [CLI, "conflicts", first], capture_output=True, text=True, env=env, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert f"{exact} by {bob.address} conflicts with earlier {first}" in listed.stdout
    assert "license differs: 'https://a.example/by' (earlier) vs" in listed.stdout
    assert "Image-Code" in listed.stdout and "resolved" in listed.stdout
    as_json = subprocess.run(
        [CLI, "conflicts", "--status", "open", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert _summary(json.loads(as_json.stdout)) == {(first, reencoded): {"content": near}}


def test_a_reorg_removes_the_conflicts_of_undone_declarations(
    registry: Registry, payer: LocalAccount, store: Store, works: dict[str, IsccResult]
) -> None:
    alice, bob = Account.create(), Account.create()
    first = _declare(registry, alice, payer, works["original"])
    follower = Indexer(registry, store)
    follower.sync()
    w3 = registry.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    _declare(registry, bob, payer, works["copy"])
    follower.sync()
    assert len(list_conflicts(store)) == 1

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    reencoded = _declare(registry, bob, payer, works["reencoded"])
    w3.provider.make_request("evm_mine", [])
    report = follower.sync()
    assert report.events_rolled_back == 1
    assert _summary(list_conflicts(store)) == {
        (first, reencoded): {
            "content": round(1 - _image_distance(works["original"], works["reencoded"]) / 64, 4)
        }
    }


def _stored(store: Store) -> tuple[list[tuple[str, str, str]], set[str]]:
    """Every conflict row as (earlier ISCC-ID, later ISCC-ID, kind), and the queued ISCC-IDs."""
    early, late = declarations.alias("early"), declarations.alias("late")
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(early.c.iscc_id, late.c.iscc_id, conflicts.c.kind)
            .join(early, early.c.id == conflicts.c.earlier_id)
            .join(late, late.c.id == conflicts.c.later_id)
        ).all()
        queued = conn.execute(
            select(declarations.c.iscc_id).join(
                conflict_queue, conflict_queue.c.declaration_id == declarations.c.id
            )
        ).scalars()
        return [tuple(r) for r in rows], set(queued)


def test_kill_9_never_loses_or_repeats_a_conflict(
    registry: Registry, payer: LocalAccount, db_url: str, tmp_path: Path
) -> None:
    copier = dev_account(2)
    rng = random.Random(3)
    for i in range(24):
        item = content(f"kill conflicts {i} ".encode() * 30)
        declare_direct(registry, payer, item)
        if i % 3 == 0:
            declare_direct(registry, copier, item)
        mines = [
            {"jsonrpc": "2.0", "id": n, "method": "evm_mine"} for n in range(rng.randrange(4, 10))
        ]
        requests.post(registry.deployment.rpc_url, json=mines, timeout=30).raise_for_status()
    with Store.open(f"sqlite:///{tmp_path / 'reference.db'}") as reference:
        Indexer(registry, reference).sync()
        truth, _ = _stored(reference)
    assert len(truth) == 8 and len(set(truth)) == 8

    env = cli_env(registry, tmp_path, db_url)
    log = str(tmp_path / "index.log")
    later = {pair[1] for pair in truth}
    # Four runs killed while catching up, after the first copy's block (a declaration indexed,
    # its conflict queued: detection runs once a sync reaches the head); then one killed at
    # some moment after it reported reaching the head (during detection, or following). Each
    # kill waits for the indexer's own reports, never for the clock.
    first_copy = min(n for n, *_ in _declared_blocks(registry, copier.address))
    catching_up = [rng.randint(3, 10) for _ in range(4)]
    assert first_copy - registry.deployment.block + 1 <= catching_up[0]
    blocks = registry.w3.eth.block_number - registry.deployment.block + 1
    assert sum(catching_up) + len(catching_up) * RUN_AHEAD < blocks

    def at_head(reports: list[dict]) -> bool:
        return reports[-1]["lag"] == 0

    plan = [(after(count), 0.0) for count in catching_up]
    plan.append((at_head, rng.uniform(0, 0.3)))
    for run, (until, pause) in enumerate(plan):
        kill_cli_when(env, log, until, pause)
        with Store.open(db_url) as store:
            stored, queued = _stored(store)
            indexed = {r.iscc_id for r in store.by_declarer(payer.address)} | {
                r.iscc_id for r in store.by_declarer(copier.address)
            }
        # Nothing twice, nothing that is no conflict, and every conflict of a declaration that
        # is indexed and no longer queued is there.
        assert len(stored) == len(set(stored)) and set(stored) <= set(truth)
        checked = indexed - queued
        assert {c for c in truth if c[1] in checked} <= set(stored)
        if run < len(catching_up):
            # Killed with a copy indexed (its conflict queued, or found if detection was due).
            assert indexed & later

    with Store.open(db_url) as store:
        Indexer(registry, store).sync()
        stored, queued = _stored(store)
    assert sorted(stored) == sorted(truth) and queued == set()


def _declared_blocks(registry: Registry, declarer: str) -> list[tuple[int, str]]:
    """(block number, ISCC-ID) of every declaration by `declarer`, from the chain."""
    logs = registry.contract.events.Declared().get_logs(
        from_block=registry.deployment.block, argument_filters={"declarer": declarer}
    )
    realm = registry.deployment.realm
    return sorted((log["blockNumber"], str(IsccId(log["args"]["isccId"], realm))) for log in logs)


def test_an_excerpt_declared_by_another_key_is_a_segment_conflict(
    registry: Registry, payer: LocalAccount, store: Store, tmp_path: Path
) -> None:
    film = generate(make_video_work(tmp_path / "film.mp4", 71, 20))
    excerpt = generate(cut_clip(tmp_path / "film.mp4", tmp_path / "cut.mp4", 8.4, 5))
    # Bob's excerpt is another part of the film: it shares no bytes with Alice's excerpt.
    start = 2.6
    other = generate(cut_clip(tmp_path / "film.mp4", tmp_path / "other.mp4", start, 5))
    assert len({film.datahash, excerpt.datahash, other.datahash}) == 3
    documents = {}
    for name, result in (("film", film), ("excerpt", excerpt), ("other", other)):
        document = result.declaration_document()
        assert document is not None, f"{name} has granular features"
        documents[name] = canonicalize(document)
    alice, bob = Account.create(), Account.create()
    # The film's document arrives after its declaration is indexed, the excerpt's before.
    first = _declare(registry, alice, payer, film, documents["film"])
    own = _declare(registry, alice, payer, excerpt, documents["excerpt"])
    follower = Indexer(registry, store)
    follower.sync()
    assert list_conflicts(store) == []
    store.put_metadata(documents["excerpt"].digest, documents["excerpt"].canonical)
    store.put_metadata(documents["film"].digest, documents["film"].canonical)
    store.put_metadata(documents["other"].digest, documents["other"].canonical)
    copied = _declare(registry, bob, payer, other, documents["other"])
    follower.sync()

    found = list_conflicts(store)
    pairs = _summary(found)
    # Alice's own excerpt of her film is no conflict. Bob's excerpt conflicts with the work of
    # Alice's its evidence is strongest for: the film, by its segments.
    assert own not in {pair[0] for pair in pairs} | {pair[1] for pair in pairs}
    assert set(pairs) == {(first, copied)}
    assert "segment" in pairs[first, copied]
    assert pairs[first, copied]["segment"] >= 0.7
    (film_conflict,) = [c for c in found if c["earlier"]["iscc_id"] == first]
    (segment,) = [e for e in film_conflict["evidence"] if e["kind"] == "segment"]
    assert abs(segment["offset"] / 1000 - start) <= 1.0
