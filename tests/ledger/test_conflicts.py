"""Conflict detection and listing on SQLite and PostgreSQL, from decoded logs applied to the store:
evidence, priority, same-declarer exemption, resolution by revocation, licence disagreement,
rollback, repeats and a failure half-way through a detection batch."""

from __future__ import annotations

import random

import iscc_lib
import pytest
from eth_utils import to_checksum_address
from index_helpers import CHANGE_ABI, FULL_ABI, content, encode_log, make_log
from sqlalchemy import func, select

from registry.chain.events import ChangeEvent, DeclaredEvent
from registry.errors import InputError, InvalidCode
from registry.index.events import EventDecoder
from registry.iscc.codec import code_to_bytes
from registry.iscc.granular import FeatureSet, features_json
from registry.ledger.conflicts import (
    CONTENT,
    CONTENT_THRESHOLDS,
    DATAHASH,
    SEGMENT,
    Batch,
    ConflictDetector,
    Evidence,
    datahash_evidence,
    list_conflicts,
    requeue,
)
from registry.metadata import canonicalize
from registry.search.evidence import PART_TRUST
from registry.store.schema import conflict_queue, conflicts, declarations
from registry.store.store import Store

CHAIN = 31337
CONTRACT = "0x" + "12" * 20
ALICE = to_checksum_address("0x" + "a1" * 20)
BOB = to_checksum_address("0x" + "b0" * 20)
CAROL = to_checksum_address("0x" + "c0" * 20)
DECODER = EventDecoder(0, FULL_ABI)
TEXT = " ".join(f"word{i % 97} thing{i % 13}" for i in range(400))


def _declared(item: dict, block: int, declarer: str, log_index: int = 0, **kwargs) -> DeclaredEvent:
    body = (1_700_000_000_000_000 + block * 1000 + log_index) << 12
    log = make_log(
        item["raw"],
        kwargs.pop("datahash", item["digest"]),
        iscc_id_body=body,
        declarer=declarer,
        block_number=block,
        log_index=log_index,
        **kwargs,
    )
    event = DECODER.decode(log)
    assert isinstance(event, DeclaredEvent)
    return event


def _revoked(event: DeclaredEvent, block: int) -> ChangeEvent:
    entry = next(e for e in CHANGE_ABI if e["name"] == "Revoked")
    values = {"isccId": event.iscc_id_body, "owner": event.declarer}
    decoded = DECODER.decode(encode_log(entry, values, block_number=block))
    assert isinstance(decoded, ChangeEvent)
    return decoded


class Chain:
    """Applies blocks to a store one after the other, as the follower would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.parent: tuple[int, bytes] | None = None

    def apply(self, block: int, *events) -> None:
        block_hash = block.to_bytes(32, "big")
        self.store.apply(CHAIN, CONTRACT, list(events), self.parent, block, block_hash)
        self.parent = (block, block_hash)

    def rollback(self, to_block: int) -> None:
        self.parent = (to_block, to_block.to_bytes(32, "big"))
        self.store.rollback(CHAIN, CONTRACT, self.parent)


def _count(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _pairs(store: Store, **filters) -> list[tuple[str, str, list[str]]]:
    return [
        (c["earlier"]["iscc_id"], c["later"]["iscc_id"], [e["kind"] for e in c["evidence"]])
        for c in list_conflicts(store, **filters)
    ]


def test_copies_by_another_declarer_conflict_and_own_copies_do_not(store: Store) -> None:
    chain = Chain(store)
    original = content(b"the original work " * 40)
    first = _declared(original, 5, ALICE)
    own_again = _declared(original, 6, ALICE)
    copy = _declared(original, 7, BOB)
    unrelated = _declared(content(b"something else entirely " * 40), 7, CAROL, 1)
    chain.apply(5, first)
    chain.apply(7, own_again, copy, unrelated)  # blocks 6 and 7 in one batch
    detector = ConflictDetector(store)
    # Alice's claim is her first declaration; declaring it again is no claim of its own.
    assert detector.run() == 1
    assert _count(store, conflict_queue) == 0
    assert _pairs(store) == [(first.iscc_id, copy.iscc_id, [DATAHASH])]
    (answer,) = list_conflicts(store)
    assert answer["evidence"] == [{"kind": DATAHASH, "strength": 1.0}]
    assert answer["strength"] == 1.0
    assert (answer["earlier"]["declarer"], answer["later"]["declarer"]) == (ALICE, BOB)
    assert answer["resolved"] is False and answer["disagreements"] == []

    # Nothing queued, nothing new: running again and re-checking everything store nothing twice.
    assert detector.run() == 0
    with store.engine.begin() as conn:
        requeue(conn, range(1, 10))
    assert _count(store, conflict_queue) == 4
    assert ConflictDetector(store).run() == 0
    assert _count(store, conflicts) == 1


def test_a_sealed_declaration_ranks_by_its_commitment_time(store: Store) -> None:
    """Issue 17, finding 2: Bob copied Alice's content out of her pending reveal and got the
    earlier block position and ISCC-ID; her commitment, mined before, holds priority."""
    chain = Chain(store)
    work = content(b"sealed work " * 40)
    committed = 1_700_000_000_000_000 + 4 * 1000  # before either declaration's ISCC-ID time
    copy = _declared(work, 6, BOB)
    sealed = _declared(work, 6, ALICE, log_index=1, record=3, committed_at=committed)
    assert copy.iscc_id_body < sealed.iscc_id_body
    chain.apply(6, copy, sealed)
    assert ConflictDetector(store).run() == 1
    (answer,) = list_conflicts(store)
    assert (answer["earlier"]["declarer"], answer["later"]["declarer"]) == (ALICE, BOB)
    assert (answer["earlier"]["kind"], answer["earlier"]["committed_at"]) == ("sealed", committed)
    assert answer["earlier"]["record"] == "3"
    assert (answer["later"]["kind"], answer["later"]["committed_at"]) == ("plain", None)


def test_a_declarer_declaring_again_after_the_conflict_starts_none(store: Store) -> None:
    chain = Chain(store)
    item = content(b"declared three times " * 40)
    first, copy, again = (
        _declared(item, 5, ALICE),
        _declared(item, 6, BOB),
        _declared(item, 7, ALICE),
    )
    chain.apply(5, first)
    chain.apply(6, copy)
    detector = ConflictDetector(store)
    detector.run()
    chain.apply(7, again)
    detector.run()
    assert _pairs(store) == [(first.iscc_id, copy.iscc_id, [DATAHASH])]


def test_near_duplicate_content_unit_is_evidence_with_its_strength(store: Store) -> None:
    chain = Chain(store)
    edited = TEXT.replace("word5 ", "wordfive ", 3)
    original, near = content(TEXT.encode(), "Title"), content(edited.encode(), "Title")
    assert original["datahash"] != near["datahash"]
    first, second = _declared(original, 5, ALICE), _declared(near, 6, BOB)
    chain.apply(6, first, second)
    ConflictDetector(store).run()
    (answer,) = list_conflicts(store)
    assert (answer["earlier"]["iscc_id"], answer["later"]["iscc_id"]) == (
        first.iscc_id,
        second.iscc_id,
    )
    (evidence,) = answer["evidence"]
    units = (
        {u.unit_type: u.value for u in first.units},
        {u.unit_type: u.value for u in second.units},
    )
    distance = ((units[0]["CONTENT-TEXT"] ^ units[1]["CONTENT-TEXT"]) & ((1 << 64) - 1)).bit_count()
    assert evidence == {
        "kind": CONTENT,
        "unit_type": "CONTENT-TEXT",
        "distance": distance,
        "bits": 64,
        "strength": round(1 - distance / 64, 4),
    }


def _segments(kind: str, seed: int, count: int, step: float) -> FeatureSet:
    """Synthetic segments of a work: a random simprint every `step` ms."""
    rng = random.Random(seed)
    return FeatureSet(
        kind,
        tuple(rng.getrandbits(64) for _ in range(count)),
        tuple(round(i * step) for i in range(count)),
        (round(step),) * count,
    )


def _recoded(work: FeatureSet, first: int, count: int, seed: int, shift: int = 40) -> FeatureSet:
    """Segments first..first+count of a work, re-based to 0 and cut `shift` ms late, with four
    bits changed in each: a re-encoded excerpt (or, over all segments, a re-encoded copy)."""
    rng = random.Random(seed)
    values = []
    for value in work.simprints[first : first + count]:
        for bit in rng.sample(range(64), 4):
            value ^= 1 << bit
        values.append(value)
    base = work.offsets[first]
    offsets = tuple(o - base + shift for o in work.offsets[first : first + count])
    return FeatureSet(work.kind, tuple(values), offsets, work.sizes[first : first + count])


def _with_features(store: Store, name: str, *sets: FeatureSet) -> bytes:
    document = canonicalize({"name": name, "features": features_json(list(sets))})
    store.put_metadata(document.digest, document.canonical)
    return document.digest


PICTURE = _segments("video", 1, 300, 200)  # a minute of frames
SPEECH = _segments("audio", 2, 480, 1365 / 11.025)  # a minute of Chromaprint items


def test_a_copy_of_a_film_is_paired_with_the_film_not_the_recording_of_its_sound(
    store: Store,
) -> None:
    """Alice declared a speech recording, then a film whose soundtrack is that recording. Bob's
    low-bitrate copy of the film shares sound with both, but picture and Content-Code only with
    the film: his conflict names the film, although the recording is Alice's earlier claim."""
    chain = Chain(store)
    speech = _declared(
        content(b"speech recording " * 40),
        5,
        ALICE,
        metahash=_with_features(store, "speech", SPEECH),
    )
    film_doc = _with_features(store, "film", PICTURE, SPEECH)
    film = _declared(content(TEXT.encode(), "Film"), 6, ALICE, metahash=film_doc)
    copy_doc = _with_features(
        store, "copy", _recoded(PICTURE, 0, 300, 3), _recoded(SPEECH, 0, 480, 4)
    )
    edited = TEXT.replace("word5 ", "wordfive ", 1)
    copy = _declared(content(edited.encode(), "Film"), 7, BOB, metahash=copy_doc)
    chain.apply(5, speech)
    chain.apply(6, film)
    chain.apply(7, copy)
    ConflictDetector(store).run()
    assert _pairs(store) == [(film.iscc_id, copy.iscc_id, [CONTENT, SEGMENT])]
    (answer,) = list_conflicts(store)
    assert answer["score"] > PART_TRUST  # more than any one modality alone can say
    # Checked again one at a time (the copy's conflicts stored), the recording stays unpaired.
    for declaration_id in _row_ids(store, speech, film, copy):
        with store.engine.begin() as conn:
            requeue(conn, [declaration_id])
        ConflictDetector(store).run()
    assert _pairs(store) == [(film.iscc_id, copy.iscc_id, [CONTENT, SEGMENT])]


def test_an_excerpt_by_a_declarer_of_another_variant_still_conflicts_with_the_film(
    store: Store,
) -> None:
    """Bob declared a re-encoded variant of Alice's film, then a 5 s excerpt of it. The variant
    overlaps the excerpt but is not the same content: it does not make the excerpt a re-declaration
    of Bob's own claim, and the excerpt conflicts with Alice's film. Bob declaring the variant's
    very bytes again starts nothing new."""
    chain = Chain(store)
    film_doc = _with_features(store, "film", PICTURE, SPEECH)
    film = _declared(content(b"the film " * 50), 5, ALICE, metahash=film_doc)
    variant_doc = _with_features(store, "variant", _recoded(PICTURE, 0, 300, 5))
    variant_bytes = content(b"the variant " * 50)
    variant = _declared(variant_bytes, 6, BOB, metahash=variant_doc)
    excerpt_doc = _with_features(
        store, "excerpt", _recoded(PICTURE, 100, 25, 6), _recoded(SPEECH, 160, 40, 7)
    )
    excerpt = _declared(content(b"an excerpt " * 50), 7, BOB, metahash=excerpt_doc)
    again = _declared(variant_bytes, 8, BOB, metahash=variant_doc)
    chain.apply(5, film)
    chain.apply(6, variant)
    chain.apply(7, excerpt)
    chain.apply(8, again)
    ConflictDetector(store).run()
    assert _pairs(store) == [
        (film.iscc_id, variant.iscc_id, [SEGMENT]),
        (film.iscc_id, excerpt.iscc_id, [SEGMENT]),
    ]
    by_later = {c["later"]["iscc_id"]: c for c in list_conflicts(store)}
    (evidence,) = by_later[excerpt.iscc_id]["evidence"]
    # where the excerpt sits (its picture and sound were cut 190 ms apart: within a frame)
    assert abs(evidence["offset"] - (100 * 200 - 40)) <= 200


def _text_unit_moved(item: dict, flips: int, data: bytes) -> dict:
    """`item` (Meta and Text units) with the bits `flips` selects flipped in its Text unit's
    64 bits, and the Data and Instance units and datahash of `data`: other bytes, content
    exactly that far away."""
    meta, text, *_ = iscc_lib.iscc_decompose(item["iscc"])
    maintype, subtype, version, _length, digest = iscc_lib.iscc_decode(text)
    moved = (int.from_bytes(digest, "big") ^ flips).to_bytes(8, "big")
    other = content(data)
    meta_unit, text_unit, data_unit, instance_unit = (
        f"ISCC:{unit}"
        for unit in (
            meta,
            iscc_lib.encode_component(maintype, subtype, version, 64, moved),
            *iscc_lib.iscc_decompose(other["iscc"]),
        )
    )
    iscc = iscc_lib.gen_iscc_code_v0([meta_unit, text_unit, data_unit, instance_unit])["iscc"]
    return {**other, "iscc": iscc, "raw": code_to_bytes(iscc)}


def _text_distance(a: DeclaredEvent, b: DeclaredEvent) -> int:
    (x,), (y,) = ([u.value for u in e.units if u.unit_type == "CONTENT-TEXT"] for e in (a, b))
    return ((x ^ y) & ((1 << 64) - 1)).bit_count()


def test_content_exactly_at_the_threshold_conflicts_and_one_bit_more_does_not(
    store: Store,
) -> None:
    threshold = CONTENT_THRESHOLDS["CONTENT-TEXT"]
    original = content(TEXT.encode(), "Title")
    # The top bits for one, the bottom bits for the other: the two are far from each other.
    at = _text_unit_moved(original, ((1 << threshold) - 1) << (64 - threshold), b"at " * 50)
    beyond = _text_unit_moved(original, (1 << (threshold + 1)) - 1, b"beyond " * 50)
    first = _declared(original, 5, ALICE)
    on_the_edge, too_far = _declared(at, 6, BOB), _declared(beyond, 6, CAROL, 1)
    assert _text_distance(first, on_the_edge) == threshold
    assert _text_distance(first, too_far) == threshold + 1
    assert _text_distance(on_the_edge, too_far) > threshold
    assert len({first.datahash, on_the_edge.datahash, too_far.datahash}) == 3
    Chain(store).apply(6, first, on_the_edge, too_far)
    assert ConflictDetector(store).run() == 1
    assert _pairs(store) == [(first.iscc_id, on_the_edge.iscc_id, [CONTENT])]
    (answer,) = list_conflicts(store)
    assert answer["evidence"][0]["distance"] == threshold


def test_content_far_apart_is_no_conflict(store: Store) -> None:
    chain = Chain(store)
    other = " ".join(f"alpha{i % 89} beta{i % 7}" for i in range(400))
    chain.apply(
        6,
        _declared(content(TEXT.encode(), "Title"), 5, ALICE),
        _declared(content(other.encode(), "Title"), 6, BOB),
    )
    assert ConflictDetector(store).run() == 0


def test_revocation_resolves_and_its_rollback_reopens(store: Store) -> None:
    chain = Chain(store)
    item = content(b"revoked later " * 40)
    first, copy = _declared(item, 5, ALICE), _declared(item, 6, BOB)
    chain.apply(6, first, copy)
    detector = ConflictDetector(store)
    detector.run()
    chain.apply(8, _revoked(copy, 8))
    (answer,) = list_conflicts(store)
    assert answer["resolved"] and answer["later"]["revoked"]
    assert list_conflicts(store, status="open") == []
    assert len(list_conflicts(store, status="resolved")) == 1

    chain.rollback(6)
    (answer,) = list_conflicts(store)
    assert not answer["resolved"]
    assert list_conflicts(store, status="resolved") == []


def test_a_revoked_claim_lets_the_declarers_later_copy_conflict(store: Store) -> None:
    """Bob's second copy started no conflict while his first carried his claim; once he
    revokes the first, the second is his standing claim and conflicts with Alice's work."""
    chain = Chain(store)
    item = content(b"claimed twice by bob " * 40)
    work, copy, again = _declared(item, 5, ALICE), _declared(item, 6, BOB), _declared(item, 7, BOB)
    chain.apply(7, work, copy, again)
    detector = ConflictDetector(store)
    detector.run()
    assert _pairs(store) == [(work.iscc_id, copy.iscc_id, [DATAHASH])]
    chain.apply(8, _revoked(copy, 8))
    detector.run()
    assert [(e, later) for e, later, _kinds in _pairs(store, status="open")] == [
        (work.iscc_id, again.iscc_id)
    ]
    assert len(list_conflicts(store, status="resolved")) == 1


class Counter:
    """Wraps an evidence source and counts what it returns."""

    def __init__(self, source) -> None:
        self.source, self.count = source, 0

    def __call__(self, conn, batch: Batch) -> list[Evidence]:
        found = list(self.source(conn, batch))
        self.count += len(found)
        return found


def test_many_copies_by_one_declarer_make_evidence_linear_not_quadratic(store: Store) -> None:
    """One declarer declaring a file n times gave n * n pairs of evidence of each kind (2,000
    copies stalled detection for 90 s); now each copy carries a few per other declarer."""
    chain = Chain(store)
    item = content(TEXT.encode(), "Copied")
    copies = 300
    chain.apply(5, _declared(item, 5, ALICE))
    chain.apply(6, *(_declared(item, 6, BOB, i) for i in range(copies)))
    detector = ConflictDetector(store)
    by_hash = Counter(datahash_evidence)
    by_content = Counter(detector.sources[1])
    detector.sources[:2] = [by_hash, by_content]
    assert detector.run() == 2
    assert by_hash.count <= 4 * (copies + 1) and by_content.count <= 4 * (copies + 1)
    (answer,) = list_conflicts(store)
    assert answer["later"]["iscc_id"] == _declared(item, 6, BOB, 0).iscc_id
    assert sorted(e["kind"] for e in answer["evidence"]) == [CONTENT, DATAHASH]


def test_rollback_takes_conflicts_along_and_the_replay_finds_them_again(store: Store) -> None:
    chain = Chain(store)
    item = content(b"reorganised " * 40)
    first, copy = _declared(item, 5, ALICE), _declared(item, 7, BOB)
    chain.apply(5, first)
    chain.apply(7, copy)
    detector = ConflictDetector(store)
    detector.run()
    assert _count(store, conflicts) == 1

    chain.rollback(5)
    detector.reset()
    assert _count(store, conflicts) == 0
    # The replayed chain has another declaration by Carol in the copy's place (SQLite gives it
    # the copy's row id again) and the copy one block later.
    replaced = _declared(content(b"carol's own " * 40), 6, CAROL)
    chain.apply(6, replaced)
    chain.apply(8, _declared(item, 8, BOB))
    detector.run()
    assert [(e, kinds) for e, _later, kinds in _pairs(store)] == [(first.iscc_id, [DATAHASH])]
    assert list_conflicts(store, iscc_id=replaced.iscc_id) == []


def test_stale_index_entries_cannot_invent_conflicts(store: Store) -> None:
    """An index that still holds a rolled-back declaration's unit proposes its row id for the
    row that took it over; the check against the stored unit drops it."""
    chain = Chain(store)
    text_item = content(TEXT.encode(), "Title")
    chain.apply(5, _declared(text_item, 5, ALICE))
    chain.apply(6, _declared(content(TEXT.replace("word7 ", "seven ").encode(), "Title"), 6, BOB))
    detector = ConflictDetector(store)
    detector.run()
    assert _count(store, conflicts) == 1
    chain.rollback(5)
    other = " ".join(f"alpha{i % 89} beta{i % 7}" for i in range(400))
    chain.apply(6, _declared(content(other.encode(), "Other"), 6, BOB))
    detector.run()  # no reset: the index still has the rolled-back unit under that row id
    assert _count(store, conflicts) == 0


def test_invalid_declarations_and_other_registries_take_no_part(store: Store) -> None:
    chain = Chain(store)
    item = content(b"invalid copy " * 40)
    valid = _declared(item, 5, ALICE)
    # A datahash that does not start with the Instance-Code: the indexer marks it invalid.
    invalid = _declared(item, 6, BOB, datahash=bytes(32))
    assert not invalid.valid
    chain.apply(6, valid, invalid)
    other_registry = "0x" + "34" * 20
    copy = _declared(item, 5, CAROL, tx_hash=b"\x99" * 32)
    store.apply(CHAIN, other_registry, [copy], None, 5, (5).to_bytes(32, "big"))
    assert _count(store, conflict_queue) == 2  # the invalid one is never queued
    assert ConflictDetector(store).run() == 0


def test_failed_detection_keeps_its_batch_queued(store: Store) -> None:
    chain = Chain(store)
    item = content(b"crash in the middle " * 40)
    chain.apply(6, _declared(item, 5, ALICE), _declared(item, 6, BOB))

    def broken(conn, batch) -> list[Evidence]:
        found = datahash_evidence(conn, batch)
        assert found  # the evidence was there when the batch failed
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        ConflictDetector(store, sources=[datahash_evidence, broken]).run()
    assert (_count(store, conflicts), _count(store, conflict_queue)) == (0, 2)
    assert ConflictDetector(store).run() == 1
    assert _count(store, conflict_queue) == 0


def test_batches_smaller_than_the_queue(store: Store) -> None:
    chain = Chain(store)
    item = content(b"many copies " * 40)
    declarers = [to_checksum_address(f"0x{i:040x}") for i in range(1, 8)]
    chain.apply(5, *(_declared(item, 5, d, log_index=i) for i, d in enumerate(declarers)))
    assert ConflictDetector(store, batch=2).run() == 21  # 7 choose 2
    earliest = list_conflicts(store, declarer=declarers[0])
    assert len(earliest) == 6
    assert all(c["earlier"]["declarer"] == declarers[0] for c in earliest)
    assert len(list_conflicts(store, limit=5)) == 5
    assert len(list_conflicts(store, limit=5, offset=20)) == 1


def test_licence_and_rights_disagreement_is_derived_from_current_documents(store: Store) -> None:
    chain = Chain(store)
    item = content(b"licensed work " * 40)
    theirs = canonicalize({"name": "Work", "license": "https://a.example/cc-by", "rights": "A"})
    mine = canonicalize({"name": "Work", "license": "https://b.example/all-rights", "rights": "A"})
    store.put_metadata(theirs.digest, theirs.canonical)
    first = _declared(item, 5, ALICE, metahash=theirs.digest)
    copy = _declared(item, 6, BOB, metahash=mine.digest)
    chain.apply(6, first, copy)
    ConflictDetector(store).run()
    # Bob's document has not arrived: nothing to compare yet.
    assert list_conflicts(store)[0]["disagreements"] == []
    store.put_metadata(mine.digest, mine.canonical)
    assert list_conflicts(store)[0]["disagreements"] == [
        {
            "field": "license",
            "earlier": "https://a.example/cc-by",
            "later": "https://b.example/all-rights",
        }
    ]


def test_listing_filters_and_bad_input(store: Store) -> None:
    chain = Chain(store)
    a, b = content(b"first work " * 40), content(b"second work " * 40)
    first_a, copy_a = _declared(a, 5, ALICE), _declared(a, 6, BOB)
    first_b, copy_b = _declared(b, 5, CAROL, 1), _declared(b, 6, BOB, 1)
    chain.apply(6, first_a, first_b, copy_a, copy_b)
    ConflictDetector(store).run()
    assert [p[:2] for p in _pairs(store, iscc_id=first_a.iscc_id)] == [
        (first_a.iscc_id, copy_a.iscc_id)
    ]
    assert [p[:2] for p in _pairs(store, declarer=BOB.lower())] == [
        (first_a.iscc_id, copy_a.iscc_id),
        (first_b.iscc_id, copy_b.iscc_id),
    ]
    assert [p[:2] for p in _pairs(store, declarer=CAROL)] == [(first_b.iscc_id, copy_b.iscc_id)]
    with pytest.raises(InvalidCode):
        list_conflicts(store, declarer="0x123")
    with pytest.raises(InvalidCode):
        list_conflicts(store, iscc_id="ISCC:NOPE")
    with pytest.raises(InputError):
        list_conflicts(store, status="closed")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        list_conflicts(store, limit=0)


def _row_ids(store: Store, *events: DeclaredEvent) -> list[int]:
    with store.engine.connect() as conn:
        ids = dict(conn.execute(select(declarations.c.iscc_id, declarations.c.id)).all())
    return [ids[e.iscc_id] for e in events]


def _queued(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(conflict_queue.c.declaration_id)).scalars())


class Recorder:
    """An evidence source that finds nothing and notes the batches it was shown; at one row id
    it queues another declaration, as a late metadata document would between two batches."""

    def __init__(self, requeue_at: int | None = None, requeued: int | None = None) -> None:
        self.seen: list[tuple[list[int], int, int]] = []
        self.requeue_at, self.requeued = requeue_at, requeued

    def __call__(self, conn, batch: Batch) -> list[Evidence]:
        self.seen.append((sorted(batch.ids), batch.lo, batch.hi))
        if self.requeued is not None and self.requeue_at in batch.ids:
            requeue(conn, [self.requeued])
        return []


def test_a_sparse_queue_is_one_batch_spanning_rows_not_queued(store: Store) -> None:
    chain = Chain(store)
    a, b = content(b"an old work " * 40), content(b"another old work " * 40)
    first_a, first_b = _declared(a, 5, ALICE), _declared(b, 5, CAROL, 1)
    chain.apply(5, first_a, first_b)
    assert ConflictDetector(store).run() == 0
    # Invalid declarations (never queued) push the next row ids far away from the first ones.
    filler = content(b"filler " * 40)
    chain.apply(6, *(_declared(filler, 6, CAROL, i, datahash=bytes(32)) for i in range(3000)))
    # ISCC-IDs count 1,000 log indexes per block: the fillers' reach into block 8.
    copy_b, unrelated = _declared(b, 9, BOB), _declared(content(b"unrelated " * 40), 9, ALICE, 1)
    chain.apply(9, copy_b, unrelated)
    ids = _row_ids(store, first_a, first_b, copy_b, unrelated)
    assert ids[2] - ids[1] > 3000
    with store.engine.begin() as conn:
        requeue(conn, [ids[0]])  # an old declaration checked again
    assert _queued(store) == {ids[0], ids[2], ids[3]}

    recorder = Recorder()
    detector = ConflictDetector(store, sources=[datahash_evidence, recorder])
    assert detector.run() == 1
    assert recorder.seen == [([ids[0], ids[2], ids[3]], ids[0], ids[3])]
    assert _pairs(store) == [(first_b.iscc_id, copy_b.iscc_id, [DATAHASH])]
    assert _queued(store) == set()


def test_two_batches_and_a_row_queued_below_the_last_batch_meanwhile(store: Store) -> None:
    chain = Chain(store)
    a, b = content(b"work a " * 40), content(b"work b " * 40)
    events = [
        _declared(a, 5, ALICE),
        _declared(content(b"work c " * 40), 5, CAROL, 1),
        _declared(b, 6, CAROL),
        _declared(a, 6, BOB, 1),  # a copy of the first batch's work, found from the second
        _declared(b, 7, BOB),
    ]
    chain.apply(7, *events)
    ids = _row_ids(store, *events)
    # The second batch queues the first declaration again: it is checked before run returns.
    recorder = Recorder(requeue_at=ids[3], requeued=ids[0])
    detector = ConflictDetector(store, sources=[datahash_evidence, recorder], batch=2)
    assert detector.run() == 2
    assert recorder.seen == [
        (ids[0:2], ids[0], ids[1]),
        (ids[2:4], ids[2], ids[3]),
        (ids[4:5], ids[4], ids[4]),
        (ids[0:1], ids[0], ids[0]),
    ]
    assert _pairs(store) == [
        (events[0].iscc_id, events[3].iscc_id, [DATAHASH]),
        (events[2].iscc_id, events[4].iscc_id, [DATAHASH]),
    ]
    assert _queued(store) == set()


def test_rows_a_peer_detector_holds_are_left_to_it(pg_url: str) -> None:
    """On PostgreSQL a second detector may hold queue rows inside this one's range: their
    evidence is not stored here and their rows stay queued. (SQLite has one writer at a time.)"""
    # A detector that waited for the peer's lock instead of skipping its row fails, not hangs.
    waiting = f"{pg_url}?options=-c%20lock_timeout%3D5000"
    with Store.open(waiting) as store, store.engine.connect() as peer:
        chain = Chain(store)
        item = content(b"held by a peer " * 40)
        first = _declared(item, 5, ALICE)
        chain.apply(5, first)
        assert ConflictDetector(store).run() == 0
        events = [
            _declared(content(b"before " * 40), 6, CAROL),
            _declared(item, 6, BOB, 1),
            _declared(content(b"after " * 40), 6, CAROL, 2),
        ]
        chain.apply(6, *events)
        ids = _row_ids(store, *events)
        with peer.begin():
            held = select(conflict_queue).where(conflict_queue.c.declaration_id == ids[1])
            assert peer.execute(held.with_for_update()).first() is not None
            recorder = Recorder()
            detector = ConflictDetector(store, sources=[datahash_evidence, recorder])
            assert detector.run() == 0
            assert recorder.seen == [([ids[0], ids[2]], ids[0], ids[2])]
            assert _queued(store) == {ids[1]}
        assert detector.run() == 1
        assert _pairs(store) == [(first.iscc_id, events[1].iscc_id, [DATAHASH])]
        assert _queued(store) == set()
