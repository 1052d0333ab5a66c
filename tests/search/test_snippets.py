"""Segments in the store (from metadata documents, whichever arrives first) and snippet search,
on SQLite and PostgreSQL. Features here are synthetic: random simprints with a known layout, so
an excerpt is a slice of them with a few bits flipped, as re-encoding does."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import numpy as np
import pytest
from index_helpers import CHANGE_ABI, FULL_ABI, content, encode_log, make_log

from registry.chain.events import ChangeEvent, DeclaredEvent
from registry.index.events import EventDecoder
from registry.iscc.granular import FeatureSet, features_json
from registry.metadata import canonicalize
from registry.search import hamming, snippets
from registry.search.snippets import (
    _CANDIDATES,
    _OTHER_PLACE_SHARE,
    _OTHER_PLACES,
    DISTINCT_PLACE_MS,
    KINDS,
    RULES,
    SAME_SCORE,
    SnippetIndex,
    _align,
    _placed,
    find_snippets,
    overlaps,
    rank,
    snippet_matches,
)
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


def _updated(declared: DeclaredEvent, metahash: bytes) -> ChangeEvent:
    """The owner's update of a declaration to another metadata document, in block 2."""
    update = DECODER.decode(
        encode_log(
            next(e for e in CHANGE_ABI if e["name"] == "Updated"),
            {
                "isccId": declared.iscc_id_body,
                "owner": declared.declarer,
                "metahash": metahash,
                "gateway": "",
            },
            block_number=2,
        )
    )
    assert isinstance(update, ChangeEvent)
    return update


def test_rollback_and_updates_replace_segments(store: Store) -> None:
    one, two = _document([_work(4)], "one"), _document([_work(5, 50)], "two")
    store.put_metadata(one.digest, one.canonical)
    store.put_metadata(two.digest, two.canonical)
    declared = _declared(4, 1, one.digest)
    parent = _apply(store, [declared], 1, None)
    _apply(store, [_updated(declared, two.digest)], 2, parent)
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


def _sound(seed: int, items: int = 480) -> FeatureSet:
    """A minute of sound: a Chromaprint item pair every 124 ms, each its own random simprint."""
    rng = random.Random(seed)
    step = 1365 / 11.025
    return FeatureSet(
        "audio",
        tuple(rng.getrandbits(64) for _ in range(items)),
        tuple(round(i * step) for i in range(items)),
        (round(2 * step),) * items,
    )


def _cut(work: FeatureSet, first: int, count: int, seed: int, flips: int) -> FeatureSet:
    """Segments first..first+count re-based to where the excerpt starts, `flips` bits changed."""
    rng = random.Random(seed)
    values = []
    for value in work.simprints[first : first + count]:
        for bit in rng.sample(range(64), flips):
            value ^= 1 << bit
        values.append(value)
    base = work.offsets[first]
    offsets = tuple(o - base for o in work.offsets[first : first + count])
    return FeatureSet(work.kind, tuple(values), offsets, work.sizes[first : first + count])


def _declare_all(store: Store, works: list[list[FeatureSet]]) -> list[int]:
    events = []
    for n, sets in enumerate(works):
        document = _document(sets, f"work {n}")
        store.put_metadata(document.digest, document.canonical)
        events.append(_declared(n, 1, document.digest))
    _apply(store, events, 1, None)
    return [_row_id(store, e) for e in events]


def test_a_work_matched_by_picture_and_sound_outranks_one_matched_by_sound(store: Store) -> None:
    """A speech recording, declared first, and a film whose soundtrack it is: an excerpt of the
    film with its sound names the film first, though its sound alone fits both (and fits a bit
    better than its re-encoded picture)."""
    picture, speech = _work(21), _sound(22)
    speech_id, film_id = _declare_all(store, [[speech], [picture, speech]])
    excerpt = [_cut(picture, 100, 25, seed=1, flips=6), _cut(speech, 161, 40, seed=2, flips=2)]
    index = SnippetIndex(store)
    answer = snippet_matches(store, index, excerpt)
    assert [m["declaration"]["iscc_id"] for m in answer] == [
        store.by_ids([film_id])[film_id].iscc_id,
        store.by_ids([speech_id])[speech_id].iscc_id,
    ]
    film, recording = answer
    assert {e["part"] for e in film["evidence"]} == {"video", "audio"}
    assert film["score"] > recording["score"] > 0
    # The Content-Code distance is one more part: a recording similar as a whole would rise.
    (ranked_speech,) = [
        r
        for r in rank(find_snippets(store, index, excerpt), {speech_id: (1, 10)})
        if r.declaration_id == speech_id
    ]
    assert ranked_speech.score > recording["score"]


def test_self_similar_frames_give_an_interval_and_the_soundtrack_places_the_excerpt(
    store: Store,
) -> None:
    """A film whose picture repeats every 5 s (a slow pan over one photograph, looped): an
    excerpt's frames fit every period equally. Alone they give an interval holding the true
    place, not one confident offset; with the film's sound the soundtrack picks the place."""
    loop = _work(31, 25)
    frames = 300
    picture = FeatureSet(
        "video",
        tuple(loop.simprints[i % 25] for i in range(frames)),
        tuple(200 * i for i in range(frames)),
        (200,) * frames,
    )
    sound = _sound(32)
    (silent_id, film_id) = _declare_all(store, [[picture], [picture, sound]])
    index = SnippetIndex(store)
    truth = 137 * 200  # 27.4 s
    frames_only = [_cut(picture, 137, 15, seed=3, flips=3)]
    found = {o.declaration_id: o for o in find_snippets(store, index, frames_only)}
    silent = found[silent_id]
    assert silent.interval is not None
    assert silent.interval[0] <= truth <= silent.interval[1]
    assert any(abs(place - truth) <= 200 for place in silent.places)
    assert len(silent.places) > 1

    step = 1365 / 11.025
    first_item = round(truth / step)
    with_sound = [*frames_only, _cut(sound, first_item, 24, seed=4, flips=2)]
    (film,) = [
        r for r in rank(find_snippets(store, index, with_sound)) if r.declaration_id == film_id
    ]
    video = next(o for o in film.overlaps if o.kind == "video")
    assert video.places == () and video.located_by == "audio"
    assert abs(video.offset - truth) <= 200


def test_an_excerpt_of_a_sound_two_works_share_names_the_earlier_declaration(
    store: Store,
) -> None:
    """A recording, and a film declared later whose soundtrack is that recording re-encoded
    (a bit changed in every fourth segment). An audio excerpt cut from the film's soundtrack
    fits the film a little better, but within SAME_SCORE: it is the same sound, and the
    recording, declared first, is named first."""
    speech = _sound(23)
    rng = random.Random(5)
    soundtrack = FeatureSet(
        "audio",
        tuple(
            v ^ (1 << rng.randrange(64)) if i % 4 == 0 else v
            for i, v in enumerate(speech.simprints)
        ),
        speech.offsets,
        speech.sizes,
    )
    speech_id, film_id = _declare_all(store, [[speech], [_work(24), soundtrack]])
    excerpt = [_cut(soundtrack, 200, 40, seed=6, flips=2)]
    found = find_snippets(store, SnippetIndex(store), excerpt)
    scores = {o.declaration_id: o.score for o in found}
    assert scores[film_id] > scores[speech_id]  # the film's copy of the sound is closer
    ranked = rank(found)
    assert ranked[0].score - ranked[1].score < SAME_SCORE
    assert [r.declaration_id for r in ranked] == [speech_id, film_id]


def test_two_features_of_one_sound_do_not_confirm_each_others_place(store: Store) -> None:
    """Repetitive music: Chromaprint's items repeat every 2 s, so an excerpt fits many places.
    The finer sound feature may settle on one of them, but it hears the same sound: it is no
    second witness, and the answer keeps every place for both."""
    loop = _sound(41, 16)  # one 2 s bar of items
    items = 480
    step = 1365 / 11.025
    audio = FeatureSet(
        "audio",
        tuple(loop.simprints[i % 16] for i in range(items)),
        tuple(round(i * step) for i in range(items)),
        (round(2 * step),) * items,
    )
    fine = _sound(42, 320)
    sound = FeatureSet("sound", fine.simprints, tuple(186 * i for i in range(320)), (186,) * 320)
    (work_id,) = _declare_all(store, [[audio, sound]])
    first_item = 200
    truth = audio.offsets[first_item]
    excerpt = [
        _cut(audio, first_item, 40, seed=7, flips=2),
        # the same stretch of sound, its segments placed from the excerpt's start
        FeatureSet(
            "sound",
            sound.simprints[134:160],
            tuple(o - truth for o in sound.offsets[134:160]),
            sound.sizes[134:160],
        ),
    ]
    (ranked,) = rank(find_snippets(store, SnippetIndex(store), excerpt))
    assert ranked.declaration_id == work_id
    by_kind = {o.kind: o for o in ranked.overlaps}
    assert by_kind["audio"].places and by_kind["sound"].places == by_kind["audio"].places
    first, last = by_kind["sound"].interval or (0, 0)
    assert first - 1000 <= truth <= last + 1000


def _loop(bar: FeatureSet, repeats: int) -> FeatureSet:
    """A bar of segments played `repeats` times, sample for sample (a loop made in an editor)."""
    step = bar.offsets[1] - bar.offsets[0]
    count = repeats * len(bar)
    return FeatureSet(
        bar.kind,
        tuple(bar.simprints[i % len(bar)] for i in range(count)),
        tuple(step * i for i in range(count)),
        (bar.sizes[0],) * count,
    )


def test_a_long_loop_lists_every_repetition_and_its_period(store: Store) -> None:
    """Three minutes of one 2 s bar: an excerpt fits all 90 repetitions equally, more places
    than are checked one by one. The answer must hold the true place among
    its candidate places (anywhere in the work, here near its end) and say how they repeat,
    never one confident offset."""
    step = 186
    rng = random.Random(51)
    bar = FeatureSet(
        "sound",
        tuple(rng.getrandbits(64) for _ in range(11)),
        tuple(step * i for i in range(11)),
        (step,) * 11,
    )
    loop = _loop(bar, 90)
    other = _loop(FeatureSet("sound", _sound(53, 11).simprints, bar.offsets, bar.sizes), 30)
    (loop_id, _other_id) = _declare_all(store, [[loop], [other]])
    first = 80 * len(bar) + 3
    truth = loop.offsets[first]
    excerpt = _cut(loop, first, 27, seed=55, flips=2)
    found = {o.declaration_id: o for o in find_snippets(store, SnippetIndex(store), [excerpt])}
    assert set(found) == {loop_id}
    placed = found[loop_id]
    assert placed.interval is not None
    assert any(abs(place - truth) <= 1000 for place in placed.places)
    # every repetition the excerpt lies wholly inside is a candidate, one place each
    assert 85 <= len(placed.places) <= 90
    assert placed.period is not None and abs(placed.period - step * len(bar)) <= step // 2
    (answer,) = snippet_matches(store, SnippetIndex(store), [excerpt])
    (kind,) = answer["kinds"]
    assert kind["place_count"] == len(placed.places)
    assert kind["places"] == list(placed.places[:100]) and kind["period"] == placed.period


def _align_one_by_one(
    query: FeatureSet, declared: np.ndarray, offset: int, tolerance: int
) -> tuple[list[int], list[int], list[int]]:
    """`_align` as it was written before it worked on all segments at once: the reference."""
    ref_start, ref_end = declared[:, 0], declared[:, 0] + declared[:, 1]
    ref_value = declared[:, 2].view(np.uint64)
    matched, shifts, nearest = [], [], []
    for position, (start, size, value) in enumerate(
        zip(query.offsets, query.sizes, query.simprints, strict=True)
    ):
        aligned = start + offset
        if not ref_start[0] <= aligned + size // 2 < ref_end[-1]:
            continue
        near = np.flatnonzero((ref_start <= aligned + tolerance) & (ref_end + tolerance >= aligned))
        if not len(near):
            nearest.append(32)
            continue
        distances = np.bitwise_count(ref_value[near] ^ np.uint64(value))
        closest = int(np.argmin(distances))
        nearest.append(min(32, int(distances[closest])))
        if distances[closest] <= RULES[query.kind].radius:
            matched.append(position)
            shifts.append(int(ref_start[near[closest]]) - start)
    return matched, shifts, nearest


def test_aligning_all_segments_at_once_gives_what_one_by_one_gives() -> None:
    """Irregular declared segments (merged still frames), near and far query segments, every
    offset and tolerance: the same matches, shifts and nearest distances."""
    rng = np.random.default_rng(5)
    for _ in range(400):
        count = int(rng.integers(1, 50))
        starts = np.cumsum(rng.integers(1, 4, count) * 200) - 200
        values = rng.integers(0, 2**63, count, dtype=np.int64)
        picked = rng.integers(0, count, int(rng.integers(1, 25)))
        noise = rng.integers(0, 2**16, len(picked)).astype(np.uint64)
        query = FeatureSet(
            "video",
            tuple(int(v) for v in values[picked].view(np.uint64) ^ noise),
            tuple(int(s) for s in np.sort(rng.integers(0, 5000, len(picked)))),
            (200,) * len(picked),
        )
        declared = np.stack([starts, rng.integers(1, 4, count) * 200, values], axis=1)
        offset, tolerance = int(rng.integers(-2000, 8000)), int(rng.integers(0, 300))
        segments = (
            np.asarray(query.offsets, dtype=np.int64),
            np.asarray(query.sizes, dtype=np.int64),
            np.asarray(query.simprints, dtype=np.uint64),
        )
        offsets = np.full(len(picked), offset, dtype=np.int64)
        matched, shifts, _over, nearest = _align(
            segments, offsets, declared, tolerance, RULES["video"].radius
        )
        assert (matched.tolist(), shifts.tolist(), nearest.tolist()) == _align_one_by_one(
            query, declared, offset, tolerance
        )


def test_tries_placed_together_as_one_by_one() -> None:
    """Several query sets, each at its own offset (some too far to match), refined and scored
    in one pass: what each gives alone."""
    rng = np.random.default_rng(9)
    work = _work(3, frames=200)
    declared = np.stack(
        [
            np.asarray(work.offsets, dtype=np.int64),
            np.asarray(work.sizes, dtype=np.int64),
            np.asarray(work.simprints, dtype=np.uint64).view(np.int64),
        ],
        axis=1,
    )
    outcomes = set()
    for _ in range(60):
        tries = []
        for _n in range(int(rng.integers(1, 7))):
            first = int(rng.integers(0, 180))
            excerpt = _excerpt(work, first, int(rng.integers(1, 20)), int(rng.integers(0, 99)))
            shift = int(rng.choice([0, 0, 90, -150, 3000]))
            tries.append((excerpt, work.offsets[first] + shift))
        placed = _placed(declared, tries)
        assert placed == [_placed(declared, [t])[0] for t in tries]
        outcomes |= {p is None for p in placed}
    assert outcomes == {True, False}


def _tally_by_sets(
    query: FeatureSet,
    asked: np.ndarray,
    owners: np.ndarray,
    starts: np.ndarray,
    exclude: int | None,
) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """The votes counted with a set per (declaration, bin), as before they were counted in
    numpy: the reference."""
    rule = RULES[query.kind]
    tally: dict[tuple[int, int], set[int]] = {}
    for position, owner, start in zip(
        asked.tolist(), owners.tolist(), starts.tolist(), strict=True
    ):
        if owner != exclude:
            slot = round((start - query.offsets[position]) / rule.bin)
            tally.setdefault((owner, slot), set()).add(position)
    scored = []
    for (owner, slot), voters in tally.items():
        near = voters | tally.get((owner, slot - 1), set()) | tally.get((owner, slot + 1), set())
        scored.append((len(near), owner, slot * rule.bin))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    timed = KINDS[query.kind] == "ms"
    share = 0.0 if timed else _OTHER_PLACE_SHARE
    apart = DISTINCT_PLACE_MS if timed else rule.bin
    best: dict[int, tuple[int, int, list[int]]] = {}
    for count, owner, offset in scored:
        if count < rule.min_matched:
            break
        if owner not in best:
            if len(best) < _CANDIDATES:
                best[owner] = (count, offset, [])
            continue
        top, first, others = best[owner]
        if (
            count >= top * share
            and len(others) < _OTHER_PLACES
            and all(abs(offset - o) > apart for o in (first, *others))
        ):
            others.append(offset)
    return [(count, owner, offset, tuple(o)) for owner, (count, offset, o) in best.items()]


@pytest.mark.parametrize("kind", ["video", "sound", "text"])
def test_votes_counted_in_numpy_as_with_sets(kind: str) -> None:
    """Several query sets at once, repeated votes, votes in neighbouring bins, negative
    offsets, an excluded declaration, more declarations than are kept: per set the same
    alignments, in the same order."""
    rng = np.random.default_rng(7)
    width = RULES[kind].bin
    index = SnippetIndex.__new__(SnippetIndex)
    for _ in range(100):
        queries = []
        for _n in range(int(rng.integers(1, 5))):
            count = int(rng.integers(1, 40))
            starts = tuple(int(s) for s in np.sort(rng.integers(0, 30 * width, count)))
            queries.append(FeatureSet(kind, (0,) * count, starts, (width,) * count))
        keys = int(rng.integers(1, 3000))
        index._owners = {kind: rng.integers(1, int(rng.integers(2, 60)), keys)}
        index._starts = {kind: rng.integers(-20 * width, 200 * width, keys)}
        exclude = int(rng.integers(1, 5)) if rng.random() < 0.5 else None
        asked, found, expected = [], [], []
        base = 0
        for query in queries:
            votes = int(rng.integers(0, 3000))
            mine, keyed = rng.integers(0, len(query), votes), rng.integers(0, keys, votes)
            owners, starts = index._owners[kind][keyed], index._starts[kind][keyed]
            expected.append(_tally_by_sets(query, mine, owners, starts, exclude))
            asked.append(mine + base)
            found.append(keyed)
            base += len(query)
        # The index answers ordered by query position.
        asked_all, found_all = np.concatenate(asked), np.concatenate(found)
        order = np.argsort(asked_all, kind="stable")
        got = index._tally(queries, asked_all[order], found_all[order], exclude)
        assert got == expected


def test_sound_segments_are_looked_up_only_when_nothing_else_found_the_excerpt(
    store: Store,
) -> None:
    """Real sound segments crowd the index, so their lookups cost the most: an excerpt whose
    picture is found does not look its sound up, one that has only sound does."""
    picture = _work(61)
    fine = _sound(62, 320)
    sound = FeatureSet("sound", fine.simprints, tuple(186 * i for i in range(320)), (186,) * 320)
    (film_id,) = _declare_all(store, [[picture, sound]])
    excerpt_sound = FeatureSet(
        "sound",
        sound.simprints[100:116],
        tuple(o - sound.offsets[100] for o in sound.offsets[100:116]),
        sound.sizes[100:116],
    )
    index = SnippetIndex(store)
    asked: list[str] = []
    looked_up = index.places_of

    def spy(queries: Sequence[FeatureSet], exclude: int | None = None) -> list:
        asked.extend(q.kind for q in queries)
        return looked_up(queries, exclude)

    index.places_of = spy  # type: ignore[method-assign]  # counts the lookups per kind
    with_picture = [_excerpt(picture, 93, 15, seed=8), excerpt_sound]
    found = find_snippets(store, index, with_picture)
    assert [(o.declaration_id, o.kind) for o in found] == [(film_id, "video")]
    assert set(asked) == {"video"}
    asked.clear()
    (heard,) = find_snippets(store, index, [excerpt_sound])
    assert (heard.declaration_id, heard.kind, heard.offset) == (film_id, "sound", 18600)
    assert set(asked) == {"sound"}


def test_sound_is_looked_up_on_every_grid_and_scored_on_the_best_of_the_most_voted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An excerpt's sound comes on eight grids, all looked up in one pass. Lookups that probe
    each band's own value only miss some near segments, so the grid that fits the work best
    need not get the most votes: the four most voted are checked, and the score is the best
    one's. Here grids 0-2 are 2 bits off the work in every segment, grid 7 lies on the work's
    own grid with two segments fewer, and the rest are too far to vote."""
    monkeypatch.setattr(hamming, "SCAN_BELOW", 1)  # band tables, as at scale, not a scan
    fine = _sound(63, 320)
    sound = FeatureSet("sound", fine.simprints, tuple(186 * i for i in range(320)), (186,) * 320)
    (work_id,) = _declare_all(store, [[sound]])
    rng = random.Random(9)
    grids = []
    for grid in range(8):
        flips, length = (0, 14) if grid == 7 else (2 if grid < 3 else 12, 16)
        values = []
        for value in sound.simprints[100 : 100 + length]:
            for bit in rng.sample(range(64), flips):
                value ^= 1 << bit
            values.append(value)
        offsets = tuple(186 * i for i in range(length))
        grids.append(FeatureSet("sound", tuple(values), offsets, sound.sizes[:length]))
    index = SnippetIndex(store)
    asked: list[int] = []
    looked_up = index.places_of

    def spy(queries: Sequence[FeatureSet], exclude: int | None = None) -> list:
        asked.append(len(queries))
        return looked_up(queries, exclude)

    index.places_of = spy  # type: ignore[method-assign]  # counts the grids looked up
    (heard,) = find_snippets(store, index, grids)
    assert asked == [8]
    assert (heard.declaration_id, heard.offset, heard.score) == (work_id, 18600, 1.0)


def test_one_code_declared_and_uploaded_over_and_over_costs_a_lookup_its_budget_only(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A declarer may fill a document with one simprint repeated, and an upload may repeat one
    too (a still picture): every repeated query frame is near every declared copy, so without a
    bound a lookup's candidates grow with their product (20,000 copies met by a 2-minute
    upload: tens of GB). Within LOOKUP_BUDGET the most crowded band values are left out, and
    the frames of a real work in the same upload still vote for it."""
    monkeypatch.setattr(hamming, "SCAN_BELOW", 1)  # band tables, as at scale, not a scan
    monkeypatch.setattr(snippets, "LOOKUP_BUDGET", 3_000)
    still = 0x0123_4567_89AB_CDEF
    copies = FeatureSet("video", (still,) * 3_000, tuple(range(0, 600_000, 200)), (200,) * 3_000)
    film = _work(40)
    _copies_id, film_id = _declare_all(store, [[copies], [film]])
    cut = _excerpt(film, 100, 15, seed=3)
    upload = FeatureSet(
        "video",
        cut.simprints + (still,) * 200,
        cut.offsets + tuple(range(3_000, 43_000, 200)),
        cut.sizes + (200,) * 200,
    )
    index = SnippetIndex(store)
    gathered: list[int] = []
    within_many = hamming.HammingIndex.within_many

    def spy(self: hamming.HammingIndex, *args: object) -> tuple[np.ndarray, ...]:
        found = within_many(self, *args)  # type: ignore[arg-type]
        gathered.append(len(found[0]))
        return found

    monkeypatch.setattr(hamming.HammingIndex, "within_many", spy)
    index.refresh()
    (voted,) = index.places_of([upload])
    assert gathered and max(gathered) <= 3_000
    assert film_id in {owner for _votes, owner, _offset, _others in voted}


def test_an_excerpt_of_sound_alone_names_the_recording_before_the_film_reusing_it(
    store: Store,
) -> None:
    """A recording, and a film declared later whose soundtrack is that recording re-encoded
    (two bits changed in every second segment). An excerpt of the sound alone fits the film's
    copy better, by more than SAME_SCORE, but the film has a picture the excerpt lacks: the
    recording, which is all the excerpt is, comes first, and the answer says what the film has
    beyond it. An excerpt of the film with its picture still names the film first."""
    speech = _sound(25)
    rng = random.Random(10)
    soundtrack = FeatureSet(
        "audio",
        tuple(
            v ^ (1 << rng.randrange(32)) ^ (1 << rng.randrange(32, 64)) if i % 2 else v
            for i, v in enumerate(speech.simprints)
        ),
        speech.offsets,
        speech.sizes,
    )
    picture = _work(26)
    speech_id, film_id = _declare_all(store, [[speech], [picture, soundtrack]])
    index = SnippetIndex(store)
    heard = [_cut(soundtrack, 200, 40, seed=11, flips=2)]
    found = find_snippets(store, index, heard)
    assert [r.declaration_id for r in rank(found)] == [film_id, speech_id]  # sound alone
    answer = snippet_matches(store, index, heard)
    by_id = {m["declaration"]["iscc_id"]: m for m in answer}
    records = store.by_ids([speech_id, film_id])
    assert [m["declaration"]["iscc_id"] for m in answer] == [
        records[speech_id].iscc_id,
        records[film_id].iscc_id,
    ]
    assert by_id[records[film_id].iscc_id]["absent"] == ["video"]
    assert by_id[records[speech_id].iscc_id]["absent"] == []
    seen = [_cut(picture, 124, 25, seed=12, flips=6), *heard]  # frame 124: item 200
    (first, second) = snippet_matches(store, index, seen)
    assert first["declaration"]["iscc_id"] == records[film_id].iscc_id
    assert first["absent"] == second["absent"] == []


def test_the_kinds_a_declaration_has_follow_an_update_of_its_document(store: Store) -> None:
    """Matches are ranked by the modalities a declared work has (`absent`), kept per
    declaration by the index: a film's document replaced by one of its sound alone makes the
    index read them again, so an excerpt of that sound no longer counts the picture."""
    picture, sound = _work(71), _sound(72)
    film, recording = _document([picture, sound], "film"), _document([sound], "recording")
    store.put_metadata(film.digest, film.canonical)
    store.put_metadata(recording.digest, recording.canonical)
    declared = _declared(7, 1, film.digest)
    parent = _apply(store, [declared], 1, None)
    work_id = _row_id(store, declared)
    index = SnippetIndex(store)
    heard = [_cut(sound, 100, 40, seed=13, flips=2)]
    (before,) = snippet_matches(store, index, heard)
    assert before["absent"] == ["video"]
    _apply(store, [_updated(declared, recording.digest)], 2, parent)
    (after,) = snippet_matches(store, index, heard)
    assert after["absent"] == []
    assert after["score"] > before["score"]
    assert index.kinds_of([work_id]) == {work_id: frozenset({"audio"})}
