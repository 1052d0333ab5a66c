"""Multi-index Hamming search returns exactly what a full scan returns."""

from __future__ import annotations

import numpy as np
import pytest

from registry.search.hamming import MERGE_TAIL_AT, HammingIndex


def _scan(keys: np.ndarray, codes: np.ndarray, query: int, radius: int) -> list[tuple[int, int]]:
    d = np.bitwise_count(codes ^ np.uint64(query))
    pairs = [(int(k), int(x)) for k, x in zip(keys, d, strict=True) if x <= radius]
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def _near(rng: np.random.Generator, code: int, flips: int) -> int:
    for bit in rng.choice(64, size=flips, replace=False):
        code ^= 1 << int(bit)
    return code


@pytest.mark.parametrize("size", [100, 20_000, MERGE_TAIL_AT + 5_000])
@pytest.mark.parametrize("radius", [0, 5, 12, 20])
def test_same_hits_as_full_scan(size: int, radius: int) -> None:
    rng = np.random.default_rng(size + radius)
    codes = rng.integers(0, 2**64, size=size, dtype=np.uint64)
    # Plant near-duplicates of a few queries at every distance up to the radius and beyond.
    queries = [int(c) for c in codes[:5]]
    planted = [_near(rng, q, d) for q in queries for d in range(0, radius + 4)]
    codes = np.concatenate((codes, np.array(planted, dtype=np.uint64)))
    keys = np.arange(len(codes), dtype=np.int64) * 3 + 7
    index = HammingIndex()
    # Add in uneven chunks so the main band tables, the tail's and a scanned tail (below
    # SCAN_BELOW) are all exercised.
    for start in range(0, len(codes), 7_001):
        index.add(keys[start : start + 7_001], codes[start : start + 7_001])
    assert len(index) == len(codes)
    probes = [*queries, int(rng.integers(0, 2**64, dtype=np.uint64))]
    for query in probes:
        hits = [(h.key, h.distance) for h in index.search(query, radius)]
        assert hits == _scan(keys, codes, query, radius)
    # Many queries at once answer the same, query by query.
    owner, key, distance = index.within_many(np.array(probes, dtype=np.uint64), radius)
    for position, query in enumerate(probes):
        mine = owner == position
        pairs = zip(key[mine].tolist(), distance[mine].tolist(), strict=True)
        hits = sorted(pairs, key=lambda p: (p[1], p[0]))
        assert hits == _scan(keys, codes, query, radius)


def test_limit_and_bad_radius() -> None:
    index = HammingIndex()
    index.add(np.array([1, 2, 3]), np.array([0b0, 0b1, 0b11], dtype=np.uint64))
    assert [h.key for h in index.search(0, 2, limit=2)] == [1, 2]
    assert index.search(0, 64)[-1].distance == 2
    with pytest.raises(ValueError):
        index.search(0, 65)
    with pytest.raises(ValueError):
        index.add(np.array([1]), np.array([1, 2], dtype=np.uint64))


def test_many_queries_at_once_equal_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.search import hamming

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 2**63, size=20_000, dtype=np.uint64)
    index = hamming.HammingIndex()
    index.add(np.arange(19_000), codes[:19_000])  # banded
    index.add(np.arange(19_000, 20_000), codes[19_000:])  # the tail, with tables of its own
    queries = codes[rng.integers(0, 20_000, size=50)] ^ np.uint64(0b1011)
    monkeypatch.setattr(hamming, "_PAIRS_AT_ONCE", 3000)  # several chunks of queries
    asked, keys, distances = index.within_many(queries, 12)
    expected = []
    for position, query in enumerate(queries):  # a full scan, query by query
        distances_all = np.bitwise_count(codes ^ query)
        expected += [
            (position, int(k), int(distances_all[k])) for k in np.flatnonzero(distances_all <= 12)
        ]
    got = list(zip(asked.tolist(), keys.tolist(), distances.tolist(), strict=True))
    assert got == expected and len(got) >= 50


def test_crowded_band_values_many_queries() -> None:
    # Real sound features crowd a few band values: runs of many codes per probe, several
    # queries probing the same runs, most candidates far. Each near code must come back for
    # the query that asked, whichever run and band found it.
    rng = np.random.default_rng(11)
    common = rng.integers(0, 1 << 16, size=6, dtype=np.uint64)
    bands = [
        common[rng.integers(0, 6, size=30_000)]
        ^ (np.uint64(1) << rng.integers(0, 16, size=30_000, dtype=np.uint64))
        for _ in range(4)
    ]
    codes = bands[0] | (bands[1] << np.uint64(16)) | (bands[2] << np.uint64(32))
    codes |= bands[3] << np.uint64(48)
    index = HammingIndex()
    index.add(np.arange(len(codes)), codes)
    queries = codes[rng.integers(0, len(codes), size=40)] ^ np.uint64(0b101 << 20)
    asked, keys, distances = index.within_many(queries, 7)
    expected = []
    for position, query in enumerate(queries):
        every = np.bitwise_count(codes ^ query)
        expected += [(position, int(k), int(every[k])) for k in np.flatnonzero(every <= 7)]
    got = list(zip(asked.tolist(), keys.tolist(), distances.tolist(), strict=True))
    assert got == expected and len(got) > 100


def test_a_narrower_band_radius_finds_what_one_intact_band_finds() -> None:
    """With band_radius 0 only each band's own value is probed: every code within 3 bits is
    found (a band is always intact), and one further away exactly when one of its four 16-bit
    bands kept all its bits."""
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 2**64, size=MERGE_TAIL_AT + 1_000, dtype=np.uint64)
    query = int(codes[0])
    planted, expected = [], set()
    for distance in range(1, 10):
        for touched in (3, 4):  # bands the differing bits fall in
            if distance < touched:
                continue
            bits = [16 * (i % touched) + int(b) for i, b in enumerate(rng.permutation(16))]
            code = query
            for bit in bits[:distance]:
                code ^= 1 << bit
            key = len(codes) + len(planted)
            planted.append(code)
            if distance <= 3 or (distance <= 7 and touched < 4):
                expected.add(key)
    index = HammingIndex()
    index.add(
        np.arange(len(codes) + len(planted)),
        np.concatenate((codes, np.array(planted, dtype=np.uint64))),
    )
    assert index._snapshot.bands is not None and not len(index._snapshot.tail_keys)
    asked = np.array([query], dtype=np.uint64)
    _queries, found, _distances = index.within_many(asked, 7, band_radius=0)
    assert set(found.tolist()) - {0} == expected
    _queries, exact, _distances = index.within_many(asked, 7)
    assert set(found.tolist()) < set(exact.tolist())  # 4-7 bits over all four bands: missed


def test_codes_added_since_the_last_merge_are_probed_not_scanned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """New codes arrive in small batches on top of many. They get band tables of their own,
    rebuilt per batch and merged into the main tables at MERGE_TAIL_AT: a lookup probes both
    tables and compares no code one by one, and answers as a full scan does. Before, the
    batches were an unsorted tail compared with every query code: a snippet lookup of 120
    codes beside 32,000 new ones took 57 ms instead of 0.4."""
    from registry.search import hamming

    rng = np.random.default_rng(8)
    codes = rng.integers(0, 2**64, size=MERGE_TAIL_AT + 1_000, dtype=np.uint64)
    index = HammingIndex()
    index.add(np.arange(MERGE_TAIL_AT), codes[:MERGE_TAIL_AT])
    for start in range(MERGE_TAIL_AT, len(codes) - 100, 100):  # the indexer's batches
        index.add(np.arange(start, start + 100), codes[start : start + 100])
    assert len(index) == len(codes) - 100 and len(index._snapshot.tail_keys) == 900
    probed, compared = [], []
    candidates = hamming._Bands.candidates

    def spy(table: hamming._Bands, *args: object) -> tuple[np.ndarray, np.ndarray]:
        probed.append(len(table.keys))
        return candidates(table, *args)  # type: ignore[arg-type]

    def tile(values: np.ndarray, times: int) -> np.ndarray:
        compared.append(len(values) * times)
        return np.tile(values, times)

    monkeypatch.setattr(hamming._Bands, "candidates", spy)
    monkeypatch.setattr(hamming.np, "tile", tile)
    queries = codes[rng.integers(0, len(codes) - 100, size=120)] ^ np.uint64(0b10010)
    asked, keys, distances = index.within_many(queries, 7)
    assert sorted(probed) == [900, MERGE_TAIL_AT] and not any(compared)
    expected = []
    for position, query in enumerate(queries):
        every = np.bitwise_count(codes[:-100] ^ query)
        expected += [(position, int(k), int(every[k])) for k in np.flatnonzero(every <= 7)]
    assert list(zip(asked.tolist(), keys.tolist(), distances.tolist(), strict=True)) == expected
    # The last batch fills the tail up: merged into the main tables, nothing left beside them.
    index.add(
        np.arange(len(codes) - 100, len(codes) + MERGE_TAIL_AT - 1_000),
        np.concatenate(
            (codes[-100:], rng.integers(0, 2**64, size=MERGE_TAIL_AT - 1_000, dtype=np.uint64))
        ),
    )
    assert index._snapshot.tail_bands is None and not len(index._snapshot.tail_keys)
    assert len(index) == len(codes) + MERGE_TAIL_AT - 1_000


def test_a_budget_leaves_the_most_crowded_band_values_out() -> None:
    """20,000 copies of one code (free to declare), met by 300 query codes equal to it (a still
    picture): every candidate is near, 6,000,000 result pairs without a bound. With a budget the
    lookup gathers at most that many candidates per band table, leaving out the most crowded
    runs first, and still finds a code whose band values are not crowded."""
    rng = np.random.default_rng(4)
    crowded = np.uint64(0x123456789ABCDEF0)
    others = rng.integers(0, 2**64, size=MERGE_TAIL_AT, dtype=np.uint64)
    index = HammingIndex()
    index.add(np.arange(MERGE_TAIL_AT), others)  # main tables
    index.add(np.arange(MERGE_TAIL_AT, MERGE_TAIL_AT + 20_000), np.full(20_000, crowded))
    queries = np.concatenate((np.full(300, crowded), others[:1] ^ np.uint64(1)))
    asked, keys, _distances = index.within_many(queries, 7, 0, budget=50_000)
    assert len(keys) <= 2 * 50_000  # two band tables, each within the budget
    assert asked[keys == 0].tolist() == [300] and keys[asked == 300].tolist() == [0]
    unbounded = index.within_many(queries[-2:], 7, 0)[1]
    assert len(unbounded) == 20_001  # without a budget: every copy, and the uncrowded code
