"""Segments in the store (from metadata documents, whichever arrives first) and snippet search,
on SQLite and PostgreSQL. Features here are synthetic: random simprints with a known layout, so
an excerpt is a slice of them with a few bits flipped, as re-encoding does."""

from __future__ import annotations

import json
import random

import pytest
from index_helpers import CHANGE_ABI, FULL_ABI, content, encode_log, make_log

from registry.chain.events import ChangeEvent, DeclaredEvent
from registry.index.events import EventDecoder
from registry.iscc.granular import FeatureSet, features_json
from registry.metadata import canonicalize
from registry.search.snippets import SnippetIndex, find_snippets, overlaps
from registry.store.schema import segments
from registry.store.store import Store

CHAIN = 31337
CONTRACT = "0x" + "34" * 20
DECODER = EventDecoder(0, FULL_ABI)


def _work(seed: int, frames: int = 300) -> FeatureSet:
    """A minute of video: a frame every 200 ms, each its own random simprint."""
    rng = random.Random(seed)
    return FeatureSet(
        "video",
        tuple(rng.getrandbits(64) for _ in range(frames)),
        tuple(200 * i for i in range(frames)),
        (200,) * frames,
    )


def _excerpt(work: FeatureSet, first: int, count: int, seed: int, flips: int = 4) -> FeatureSet:
    """Frames first..first+count of a work, re-based to 0 and shifted by 80 ms (an excerpt
    cut between two frames), with `flips` random bits changed in each simprint."""
    rng = random.Random(seed)
    values = []
    for value in work.simprints[first : first + count]:
        for bit in rng.sample(range(64), flips):
            value ^= 1 << bit
        values.append(value)
    return FeatureSet(
        "video",
        tuple(values),
        tuple(200 * i + 80 for i in range(count)),
        (200,) * count,
    )


def _document(sets: list[FeatureSet], name: str = "a film"):
    return canonicalize({"name": name, "features": features_json(sets)})


def _declared(n: int, block: int, metahash: bytes) -> DeclaredEvent:
    item = content(b"work %d" % n)
    event = DECODER.decode(
        make_log(
            item["raw"],
            item["digest"],
            iscc_id_body=(1_700_000_000_000_000 + n) << 12,
            metahash=metahash,
            block_number=block,
            log_index=n,
        )
    )
    assert isinstance(event, DeclaredEvent)
    return event


def _apply(store: Store, events: list, block: int, parent) -> tuple[int, bytes]:
    block_hash = block.to_bytes(32, "big")
    store.apply(CHAIN, CONTRACT, events, parent, block, block_hash)
    return block, block_hash


def _row_id(store: Store, event: DeclaredEvent) -> int:
    (record,) = store.by_iscc_id(event.iscc_id)
    for row_id, found in store.by_ids(range(1, 100)).items():
        if found.iscc_id == record.iscc_id:
            return row_id
    raise AssertionError("declaration not stored")


def _count(store: Store) -> int:
    with store.engine.connect() as conn:
        return len(conn.execute(segments.select()).all())


def test_document_before_or_after_the_declaration_gives_the_same_segments(store: Store) -> None:
    early, late = _document([_work(1)], "early"), _document([_work(2)], "late")
    assert store.put_metadata(early.digest, early.canonical)
    first = _declared(1, 1, early.digest)
    second = _declared(2, 1, late.digest)
    _apply(store, [first, second], 1, None)
    assert store.segment_source(_row_id(store, first)) == {"segments": 300, "problem": None}
    assert store.segment_source(_row_id(store, second)) is None  # its document is not here yet
    assert _count(store) == 300

    assert store.put_metadata(late.digest, late.canonical)
    assert not store.put_metadata(late.digest, late.canonical)  # again: nothing doubles
    assert store.segment_source(_row_id(store, second)) == {"segments": 300, "problem": None}
    assert _count(store) == 600


def test_a_malformed_document_skips_segments_but_not_the_declaration(store: Store) -> None:
    good = json.loads(_document([_work(3, 10)]).canonical)
    good["features"][0]["offsets"][5] = -1
    broken = json.dumps(good).encode()
    digest = bytes(range(32))  # a store keeps what the caller verified: here, nothing
    store.put_metadata(digest, broken)
    declared = _declared(3, 1, digest)
    _apply(store, [declared], 1, None)
    assert store.by_iscc_id(declared.iscc_id)
    source = store.segment_source(_row_id(store, declared))
    assert source is not None and source["segments"] == 0
    assert "offsets must be integers" in source["problem"]
    assert _count(store) == 0


def test_rollback_and_updates_replace_segments(store: Store) -> None:
    one, two = _document([_work(4)], "one"), _document([_work(5, 50)], "two")
    store.put_metadata(one.digest, one.canonical)
    store.put_metadata(two.digest, two.canonical)
    declared = _declared(4, 1, one.digest)
    parent = _apply(store, [declared], 1, None)
    update = DECODER.decode(
        encode_log(
            next(e for e in CHANGE_ABI if e["name"] == "Updated"),
            {
                "isccId": declared.iscc_id_body,
                "owner": declared.declarer,
                "metahash": two.digest,
                "gateway": "",
            },
            block_number=2,
        )
    )
    assert isinstance(update, ChangeEvent)
    _apply(store, [update], 2, parent)
    assert _count(store) == 50
    store.rollback(CHAIN, CONTRACT, parent)  # the update is gone: the first document again
    assert _count(store) == 300
    store.rollback(CHAIN, CONTRACT, None)  # the declaration is gone: its segments with it
    assert _count(store) == 0


def test_an_excerpt_is_found_with_its_offset_among_many_works(store: Store) -> None:
    works = [_work(seed) for seed in range(40)]
    events = []
    for n, work in enumerate(works):
        document = _document([work], f"work {n}")
        store.put_metadata(document.digest, document.canonical)
        events.append(_declared(n, 1, document.digest))
    _apply(store, events, 1, None)
    index = SnippetIndex(store)
    wanted = _row_id(store, events[17])

    found = find_snippets(store, index, [_excerpt(works[17], 123, 10, seed=1)])
    assert found[0].declaration_id == wanted
    assert found[0].kind == "video"
    assert abs(found[0].offset - 123 * 200 + 80) <= 100  # the excerpt starts 80 ms late
    assert found[0].score == 1 - 4 / 32  # four bits flipped in each simprint

    foreign = _excerpt(_work(999), 50, 10, seed=2)
    assert find_snippets(store, index, [foreign]) == []
    # Too many bits changed: no frame is near enough to vote.
    assert find_snippets(store, index, [_excerpt(works[17], 10, 10, seed=3, flips=20)]) == []


def test_overlaps_finds_the_work_another_declaration_was_cut_from(store: Store) -> None:
    film = _work(7)
    clip = FeatureSet(
        "video", film.simprints[100:150], tuple(200 * i for i in range(50)), (200,) * 50
    )
    events = []
    for n, sets in enumerate([[film], [_work(8)], [clip]]):
        document = _document(sets, f"work {n}")
        store.put_metadata(document.digest, document.canonical)
        events.append(_declared(n, 1, document.digest))
    _apply(store, events, 1, None)
    film_id, clip_id = _row_id(store, events[0]), _row_id(store, events[2])

    (overlap,) = overlaps(store, clip_id)
    assert (overlap.declaration_id, overlap.kind, overlap.offset) == (film_id, "video", 20_000)
    assert overlap.score == 1.0 and overlap.length == 10_000 and overlap.matched == 50
    # Seen from the film, the clip's work starts 20 s before the film's clip part: negative.
    (back,) = overlaps(store, film_id)
    assert (back.declaration_id, back.offset, back.score) == (clip_id, -20_000, 1.0)


def test_the_index_picks_up_segments_stored_after_it_was_built(store: Store) -> None:
    index = SnippetIndex(store)
    assert index.refresh() == 0
    document = _document([_work(9)])
    store.put_metadata(document.digest, document.canonical)
    _apply(store, [_declared(9, 1, document.digest)], 1, None)
    assert find_snippets(store, index, [_excerpt(_work(9), 0, 10, seed=4)])
    assert len(index) == 300


@pytest.mark.parametrize("kind", ["audio", "text"])
def test_other_kinds_match_only_their_own_kind(store: Store, kind: str) -> None:
    work = _work(11)
    as_kind = FeatureSet(kind, work.simprints, work.offsets, work.sizes)
    document = _document([as_kind])
    store.put_metadata(document.digest, document.canonical)
    _apply(store, [_declared(11, 1, document.digest)], 1, None)
    index = SnippetIndex(store)
    excerpt = _excerpt(work, 30, 10, seed=5, flips=0)
    assert find_snippets(store, index, [excerpt]) == []  # video query, stored as another kind
    same = FeatureSet(
        kind, excerpt.simprints, tuple(o - 80 for o in excerpt.offsets), excerpt.sizes
    )
    (found,) = find_snippets(store, index, [same])
    assert (found.kind, found.offset) == (kind, 6000)
