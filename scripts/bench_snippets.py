"""Snippet matching benchmark: find the declared work (and the offset in it) of short excerpts.

Generates long works (video with sound, audio, text; seeded, distinct), declares their metadata
documents with granular features into a store (SQLite) together with synthetic distractor
declarations up to --declared works in all, then cuts excerpts at random offsets, re-encodes them
smaller (video: 160 px wide, 150 kbit/s; audio: MP3 64 kbit/s; text: re-wrapped lines) and asks
`match` which declaration they come from. Excerpts of works never declared count the false
matches. Prints top-1 accuracy and offset errors per media kind and excerpt length, and the query
latency of the snippet search next to the search as it was before issue 21
(scripts/search_before.py, same store and excerpts, timed in the same run) and a brute-force
scan of every declared segment (exact by construction, no index).

Distractors are synthetic: documents of 30 s of video and audio segments with random simprints,
and 30 s of "sound" segments of a seeded melody synthesized without encoding (works.py
`melody_sound`: real sound features, so chance matches of the finer sound feature are met at
scale), declared through the store like real ones (real works this many would take hours to
generate). Their sound takes ~10 minutes on 2 cores the first time; --cache keeps the store.

    .venv/bin/python scripts/bench_snippets.py            # about 10 minutes on 2 cores
    .venv/bin/python scripts/bench_snippets.py --declared 2000 --clips 2   # a quick run
    .venv/bin/python scripts/bench_snippets.py --quick     # does it still run? (tests do this)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from search_before import find_before  # noqa: E402
from works import (  # noqa: E402
    cut_clip,
    make_audio_work,
    make_loop_work,
    make_text_work,
    make_video_work,
    make_zoom_work,
    melody_sound,
)

from registry.chain.events import DeclaredEvent  # noqa: E402
from registry.iscc import generate  # noqa: E402
from registry.iscc.codec import code_to_bytes  # noqa: E402
from registry.iscc.granular import KINDS, FeatureSet, features_json  # noqa: E402
from registry.metadata import canonicalize  # noqa: E402
from registry.search.evidence import segment_weight  # noqa: E402
from registry.search.snippets import (  # noqa: E402
    Overlap,
    SnippetIndex,
    absent_modalities,
    file_features,
    find_snippets,
    rank,
)
from registry.store.store import Store  # noqa: E402

CHAIN_ID = 31337
CONTRACT = "0x" + "ab" * 20
LENGTHS = {"video": (2, 3, 5), "audio": (2, 3, 5), "text": (1000, 2000, 4000)}
UNITS = {"video": "s", "audio": "s", "text": "chars"}
BATCH = 500
DISTRACTOR_SECONDS = 30.0


@dataclass
class Work:
    kind: str
    seed: int
    path: Path
    text: str = ""
    declaration_id: int | None = None
    category: str = ""
    """What the excerpts are counted as: the kind, or a harder case (see CATEGORIES)."""
    excerpted: bool = True
    """False for a recording declared only as the soundtrack another film reuses."""

    def __post_init__(self) -> None:
        self.category = self.category or self.kind


CATEGORIES = {
    "video": "video excerpts with sound, of films with their own sound",
    "reuse-film": "video excerpts with sound, of films whose soundtrack is a declared recording",
    "zoom": "video excerpts with sound, of films of slow zooms and pans over still pictures",
    "audio": "audio excerpts of music",
    "reuse-sound": "audio excerpts of a recording that a declared film reuses as soundtrack",
    "loop": "audio excerpts of repetitive music (one 2 s bar over and over)",
    "text": "text excerpts",
}


@dataclass
class Outcome:
    kind: str
    length: float
    declared: bool
    found: bool
    offset_error: float | None
    search_s: float
    scan_s: float
    top: str = ""
    """The best match found: kind, score, segments matched."""
    category: str = ""
    by_part: dict[str, bool] | None = None
    """Strict top-1 when ranking by one part only: "best part" (the highest single segment
    score, the ranking before evidence was combined), "video", "audio", "text"."""
    interval: bool = False
    """The offset was reported as an interval of equally good places."""
    near_place: bool = False
    """The offset, or one of the reported places, lies within the tolerance of the truth
    (stricter than an interval that holds it)."""
    baseline_s: float = 0.0
    """The search as it was before issue 21 (scripts/search_before.py), same excerpt."""


def _event(i: int, iscc: str, metahash: bytes, block: int) -> DeclaredEvent:
    raw = code_to_bytes(iscc)
    return DeclaredEvent(
        block_number=block,
        block_hash=block.to_bytes(32, "big"),
        tx_hash=i.to_bytes(32, "big"),
        log_index=i,  # unique within every block
        iscc_id_body=(1_700_000_000_000_000 + i) << 12,
        realm=0,
        declarer="0x" + "11" * 20,
        datahash=i.to_bytes(32, "big"),
        iscc_code_raw=raw,
        metahash=metahash,
        gateway="",
        iscc_code=iscc,
        units=(),
        invalid_reason=None,
    )


def _make_works(folder: Path, counts: dict[str, int], seconds: float, seed: int) -> list[Work]:
    works = []
    for kind, count in counts.items():
        for n in range(count):
            work_seed = seed * 1000 + len(works)
            if kind == "video":
                path = folder / f"video-{work_seed}.mp4"
                if not path.exists():
                    make_video_work(path, work_seed, seconds)
                works.append(Work(kind, work_seed, path))
            elif kind == "audio":
                path = folder / f"audio-{work_seed}.mp3"
                if not path.exists():
                    make_audio_work(path, work_seed, seconds)
                works.append(Work(kind, work_seed, path))
            elif kind == "zoom":
                path = folder / f"zoom-{work_seed}.mp4"
                if not path.exists():
                    make_zoom_work(path, work_seed, seconds)
                works.append(Work("video", work_seed, path, category="zoom"))
            elif kind == "loop":
                path = folder / f"loop-{work_seed}.mp3"
                if not path.exists():
                    make_loop_work(path, work_seed, seconds)
                works.append(Work("audio", work_seed, path, category="loop"))
            elif kind == "reuse":
                # A recording (speech, music) and a film that reuses it as its soundtrack,
                # declared in that order; excerpts of both are asked.
                recording = folder / f"recording-{work_seed}.mp3"
                film = folder / f"reuse-{work_seed}.mp4"
                if not recording.exists():
                    make_audio_work(recording, work_seed + 500_000, seconds)
                if not film.exists():
                    make_video_work(film, work_seed, seconds, soundtrack=recording)
                works.append(Work("audio", work_seed, recording, category="reuse-sound"))
                works.append(Work("video", work_seed, film, category="reuse-film"))
            else:
                text = make_text_work(work_seed, int(seconds * 60))
                path = folder / f"text-{work_seed}.txt"
                path.write_text(text)
                works.append(Work(kind, work_seed, path, text))
            print(f"\r  made {kind} work {n + 1}/{count}", end="", flush=True)
        print()
    return works


def _distractor_sound(number: int) -> FeatureSet:
    return melody_sound(10_000_000 + number, DISTRACTOR_SECONDS)


def _declare(
    store: Store, works: list[Work], distractors: int, rng: random.Random, sound: bool
) -> None:
    """Real works first (so their row ids are known), then the synthetic distractors."""
    checkpoint = None
    events = []
    for i, work in enumerate(works):
        result = generate(work.path)
        document = result.declaration_document()
        assert document is not None
        canonical = canonicalize(document)
        store.put_metadata(canonical.digest, canonical.canonical)
        events.append(_event(i, result.iscc, canonical.digest, 1))
    store.apply(CHAIN_ID, CONTRACT, events, checkpoint, 1, (1).to_bytes(32, "big"))
    checkpoint = (1, (1).to_bytes(32, "big"))
    by_iscc = {e.iscc_id: w for e, w in zip(events, works, strict=True)}
    for record_id, record in store.by_ids(list(range(1, len(works) + 1))).items():
        by_iscc[record.iscc_id].declaration_id = record_id
    started = time.perf_counter()
    template = generate(works[0].path).iscc
    block = 2
    pool = ProcessPoolExecutor(max(1, min(4, os.cpu_count() or 1))) if sound else None
    for start in range(0, distractors, BATCH):
        batch = []
        numbers = range(start, min(distractors, start + BATCH))
        sounds = list(pool.map(_distractor_sound, numbers, chunksize=25)) if pool else []
        for i in numbers:
            sets = [
                FeatureSet(
                    kind,
                    tuple(rng.getrandbits(64) for _ in range(n)),
                    tuple(round(k * step) for k in range(n)),
                    tuple([round(size)] * n),
                )
                for kind, n, step, size in (("video", 150, 200, 200), ("audio", 240, 123.8, 248))
            ]
            if sounds:
                sets.append(sounds[i - start])
            canonical = canonicalize({"name": f"distractor {i}", "features": features_json(sets)})
            store.put_metadata(canonical.digest, canonical.canonical)
            batch.append(_event(len(works) + i, template, canonical.digest, block))
        block_hash = block.to_bytes(32, "big")
        store.apply(CHAIN_ID, CONTRACT, batch, checkpoint, block, block_hash)
        checkpoint = (block, block_hash)
        block += 1
        done = min(distractors, start + BATCH)
        rate = done / (time.perf_counter() - started)
        print(f"\r  declared {done:,}/{distractors:,} distractors ({rate:,.0f}/s)", end="")
    if pool:
        pool.shutdown()
    print()


def _excerpt(work: Work, folder: Path, length: float, rng: random.Random, n: int) -> Path:
    if work.kind == "text":
        size = int(length)
        start = rng.randrange(0, len(work.text) - size)
        wrapped = textwrap.fill(work.text[start : start + size], 60)
        path = folder / f"clip-{work.seed}-{n}.txt"
        path.write_text(wrapped)
        # Offsets count characters with whitespace runs as one space (granular.text_features).
        spaced_start = len(" ".join((work.text[:start] + "x").split())) - 1
        path.with_suffix(".start").write_text(str(spaced_start))
        return path
    start = rng.uniform(0, _duration(work) - length - 0.5)
    suffix = ".mp4" if work.kind == "video" else ".mp3"
    path = folder / f"clip-{work.seed}-{n}{suffix}"
    cut_clip(work.path, path, start, length)
    path.with_suffix(".start").write_text(str(start))
    return path


def _duration(work: Work) -> float:
    import av

    with av.open(str(work.path)) as container:
        return float(container.duration or 0) / 1_000_000


def _truth(clip: Path) -> float:
    """Where the excerpt was cut: seconds, or characters (the generated text is clean already)."""
    return float(clip.with_suffix(".start").read_text())


class _Scan:
    """The reference: every declared segment compared with every query segment (numpy)."""

    def __init__(self, store: Store) -> None:
        rows = store.segment_values(sorted(KINDS), 0, store.last_segment_id())
        self.by_kind = {
            kind: (rows[rows[:, 0] == k][:, 1], rows[rows[:, 0] == k][:, 4].view(np.uint64))
            for k, kind in enumerate(sorted(KINDS))
        }

    def run(self, features: tuple[FeatureSet, ...]) -> int:
        hits = 0
        for query in features:
            _owners, values = self.by_kind.get(query.kind, (np.empty(0), np.empty(0, np.uint64)))
            for value in query.simprints:
                hits += int((np.bitwise_count(values ^ np.uint64(value)) <= 10).sum())
        return hits


def _top(ranked: list, kinds: set[str] | None = None) -> int | None:
    """The first declaration of a ranking, or of a ranking by only some kinds' evidence."""
    if kinds is None:
        return ranked[0].declaration_id if ranked else None
    best = None
    for entry in ranked:
        weights = [segment_weight(o.kind, o.score) for o in entry.overlaps if o.kind in kinds]
        if weights and (best is None or max(weights) > best[0]):
            best = (max(weights), entry.declaration_id)
    return best[1] if best else None


def _place_ok(overlap: Overlap, truth: float, unit: int, tolerance: float) -> tuple[bool, bool]:
    """(offset within tolerance or an interval holding the true place, reported an interval)"""
    if overlap.interval is not None:
        first, last = (v / unit for v in overlap.interval)
        return first - tolerance <= truth <= last + tolerance, True
    return abs(overlap.offset / unit - truth) <= tolerance, False


def _timed_before(store: Store, index: SnippetIndex, features: list[FeatureSet]) -> float:
    started = time.perf_counter()
    find_before(store, index, features)
    return time.perf_counter() - started


def _query(
    store: Store,
    index: SnippetIndex,
    scan: _Scan,
    work: Work,
    clip: Path,
    length: float,
    declared: bool,
) -> Outcome:
    # As `match` does it: an audio excerpt too short for Chromaprint (no ISCC) is looked up by
    # its sound segments alone.
    _result, features = file_features(clip)
    # The search as it was before issue 21, on the same store, excerpt and load (it skips
    # the sound segments it did not know); every other excerpt it goes first, so neither
    # search always finds the store's pages already read by the other.
    before_first = int(clip.stem.rsplit("-", 1)[-1]) % 2 == 1
    baseline_s = _timed_before(store, index, features) if before_first else 0.0
    started = time.perf_counter()
    found = find_snippets(store, index, features)
    ranked = rank(found, absent=absent_modalities(index, features, found))
    search_s = time.perf_counter() - started
    if not before_first:
        baseline_s = _timed_before(store, index, features)
    started = time.perf_counter()
    scan.run(features)
    scan_s = time.perf_counter() - started
    unit = 1000 if work.kind != "text" else 1
    top = ranked[0] if ranked else None
    best = ""
    if top is not None:
        best = f"score {top.score} " + ", ".join(
            f"{o.kind} {o.score} matched {o.matched}" for o in top.overlaps
        )
    outcome = Outcome(work.kind, length, declared, top is not None, None, search_s, scan_s, best)
    outcome.category = work.category
    outcome.baseline_s = baseline_s
    if not declared:
        return outcome
    wanted = work.declaration_id
    outcome.found = top is not None and top.declaration_id == wanted
    outcome.by_part = {
        "best part": bool(found) and found[0].declaration_id == wanted,
        "video": _top(ranked, {"video"}) == wanted,
        "audio": _top(ranked, {"audio", "sound"}) == wanted,
        "text": _top(ranked, {"text"}) == wanted,
    }
    if outcome.found and top is not None:
        # The place of the excerpt's own kind (a video excerpt's picture), else any kind's.
        own = {"video": ("video",), "audio": ("audio", "sound"), "text": ("text",)}[work.kind]
        overlap = next((o for o in top.overlaps if o.kind in own), top.overlaps[0])
        tolerance = 1.0 if work.kind != "text" else 50.0
        ok, outcome.interval = _place_ok(overlap, _truth(clip), unit, tolerance)
        outcome.near_place = any(
            abs(p / unit - _truth(clip)) <= tolerance for p in overlap.places or (overlap.offset,)
        )
        if overlap.interval is None:
            outcome.offset_error = abs(overlap.offset / unit - _truth(clip))
        else:
            outcome.offset_error = 0.0 if ok else float("inf")
    return outcome


def _table(outcomes: list[Outcome]) -> None:
    print(
        f"\n{'category':12} {'length':>8} {'clips':>5} {'top-1':>7} {'best part':>9} "
        f"{'picture':>8} {'sound':>6} {'place ok':>9} {'interval':>8} {'near':>7} {'max err':>8}"
    )
    keys = sorted({(o.category, o.length) for o in outcomes if o.declared})
    order = list(CATEGORIES)
    keys.sort(key=lambda k: (order.index(k[0]), k[1]))
    for category, nominal in keys:
        picked = [
            o for o in outcomes if o.declared and (o.category, o.length) == (category, nominal)
        ]
        n = len(picked)
        top1 = sum(o.found for o in picked) / n
        parts = {
            name: sum(bool(o.by_part and o.by_part[name]) for o in picked) / n
            for name in ("best part", "video", "audio")
        }
        places = [o for o in picked if o.offset_error is not None]
        tolerance = 1.0 if picked[0].kind != "text" else 50.0
        close = sum(o.offset_error <= tolerance for o in places) / n
        intervals = sum(o.interval for o in picked)
        near = sum(o.near_place for o in picked) / n
        finite = [o.offset_error for o in places if o.offset_error != float("inf")]
        worst = max(finite) if finite else float("nan")
        unit = UNITS[picked[0].kind]
        print(
            f"{category:12} {f'{nominal:g} {unit}':>8} {n:5} {top1:7.1%} "
            f"{parts['best part']:9.1%} {parts['video']:8.1%} {parts['audio']:6.1%} "
            f"{close:9.1%} {intervals:8} {near:7.1%} {worst:8.2f}"
        )
    print("\ncategories:")
    for name, meaning in CATEGORIES.items():
        print(f"  {name:12} {meaning}")
    print(
        "top-1: strict, by the combined evidence (docs/matching.md); best part: by the highest "
        "single segment score (the ranking before); picture / sound: by that part alone.\n"
        "place ok: offset within 1 s (50 characters), or an interval of equally good places "
        "that holds the true one (counted under interval); near: the offset or one of the "
        "reported places within 1 s."
    )
    foreign = [o for o in outcomes if not o.declared]
    if foreign:
        false = sum(o.found for o in foreign)
        per_kind = ", ".join(
            f"{kind} {sum(o.found for o in foreign if o.kind == kind)}/"
            f"{sum(o.kind == kind for o in foreign)}"
            for kind in sorted({o.kind for o in foreign})
        )
        print(
            f"\nexcerpts of undeclared works: {len(foreign)}, false matches: {false} "
            f"({false / len(foreign):.1%}; {per_kind})"
        )
        for o in foreign:
            if o.found:
                print(f"  false match: {o.kind} excerpt of {o.length:g} {UNITS[o.kind]}: {o.top}")
    for category in CATEGORIES:
        picked = [o for o in outcomes if o.declared and o.category == category]
        if picked:
            top1 = sum(o.found for o in picked) / len(picked)
            print(f"  all lengths, {category}: strict top-1 {top1:.1%} of {len(picked)}")
    timed = [o for o in outcomes if o.declared and o.kind != "text"]
    if timed:
        close = sum(o.offset_error is not None and o.offset_error <= 1.0 for o in timed)
        near = sum(o.near_place for o in timed)
        print(
            f"  place ok over all video and audio excerpts: {close}/{len(timed)} = "
            f"{close / len(timed):.1%}; near a reported place: {near / len(timed):.1%}"
        )
        for length in LENGTHS["audio"]:
            short = [o for o in timed if o.kind == "audio" and o.length == length]
            if short:
                found = sum(o.found for o in short)
                print(f"  audio excerpts of {length} s: strict top-1 {found}/{len(short)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--declared", type=int, default=10_000, help="declared works in all")
    parser.add_argument("--video", type=int, default=8, help="real video works declared")
    parser.add_argument("--audio", type=int, default=6, help="real audio works declared")
    parser.add_argument("--text", type=int, default=6, help="real text works declared")
    parser.add_argument(
        "--reuse", type=int, default=3, help="recordings declared with a film reusing each"
    )
    parser.add_argument("--zoom", type=int, default=2, help="slow zoom films declared")
    parser.add_argument("--loop", type=int, default=2, help="repetitive music works declared")
    parser.add_argument("--undeclared", type=int, default=3, help="works per kind not declared")
    parser.add_argument("--seconds", type=float, default=60, help="length of each real work")
    parser.add_argument("--clips", type=int, default=4, help="excerpts per work and length")
    parser.add_argument(
        "--foreign-clips",
        type=int,
        help="excerpts per undeclared work and length (default: --clips); more of them measure "
        "the false match rate more finely",
    )
    parser.add_argument("--cache", type=Path, help="keep generated works here between runs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-distractor-sound",
        dest="distractor_sound",
        action="store_false",
        help="distractors without sound segments (only random video and audio ones)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run that checks the script works end to end (its figures mean nothing)",
    )
    args = parser.parse_args()
    if args.quick:
        # One work of each kind (and one undeclared), just long enough for the longest excerpt.
        args.declared, args.clips, args.undeclared = min(args.declared, 100), 1, 1
        args.foreign_clips = 1
        args.video = args.audio = args.text = args.reuse = args.zoom = args.loop = 1
        args.seconds = min(args.seconds, 12)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-snippets-") as tmp:
        folder = args.cache or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print("generating works")
        counts = {
            "video": args.video,
            "audio": args.audio,
            "text": args.text,
            "reuse": args.reuse,
            "zoom": args.zoom,
            "loop": args.loop,
        }
        declared = _make_works(folder, counts, args.seconds, args.seed)
        foreign_counts = dict.fromkeys(("video", "audio", "text"), args.undeclared)
        foreign = _make_works(folder, foreign_counts, args.seconds, args.seed + 500)
        # With --cache the declared store is kept too, and reused when it has the same works.
        sound = "-sound" if args.distractor_sound else ""
        database = folder / f"bench-{args.declared}-{len(declared)}-{args.seed}{sound}.db"
        reuse = args.cache is not None and database.exists()
        store = Store.open(f"sqlite:///{database}")
        if reuse:
            print(f"reusing the declared store {database}")
            for row_id, work in enumerate(declared, start=1):
                work.declaration_id = row_id
        else:
            print("declaring")
            distractors = max(0, args.declared - len(declared))
            _declare(store, declared, distractors, rng, args.distractor_sound)
        started = time.perf_counter()
        index = SnippetIndex(store)
        loaded = index.refresh()
        load_s = time.perf_counter() - started
        print(
            f"snippet index: {loaded:,} segments of {store.count():,} declarations loaded in "
            f"{load_s:.1f} s"
        )
        scan = _Scan(store)
        outcomes: list[Outcome] = []
        clips_dir = Path(tmp, "clips")
        clips_dir.mkdir()
        jobs = [(w, True) for w in declared] + [(w, False) for w in foreign]
        foreign_clips = args.clips if args.foreign_clips is None else args.foreign_clips
        total = sum(len(LENGTHS[w.kind]) * (args.clips if d else foreign_clips) for w, d in jobs)
        n = 0
        for work, is_declared in jobs:
            for length in LENGTHS[work.kind]:
                for _ in range(args.clips if is_declared else foreign_clips):
                    n += 1
                    clip = _excerpt(work, clips_dir, length, rng, n)
                    outcome = _query(store, index, scan, work, clip, length, is_declared)
                    outcomes.append(outcome)
                    print(f"\r  queried {n}/{total} excerpts", end="", flush=True)
        print()
        _table(outcomes)
        searches = sorted(o.search_s for o in outcomes)
        scans = sorted(o.scan_s for o in outcomes)
        baselines = sorted(o.baseline_s for o in outcomes)
        print(
            f"\nquery latency over {store.count():,} declared works, {loaded:,} segments "
            f"(feature extraction of the excerpt not included):"
        )
        for name, values in (
            ("snippet index (ours)", searches),
            ("before issue 21 (reference)", baselines),
            ("full scan (reference)", scans),
        ):
            print(
                f"  {name:27} median {statistics.median(values) * 1000:7.1f} ms   "
                f"p95 {values[int(len(values) * 0.95)] * 1000:7.1f} ms"
            )
        ratio = statistics.median(searches) / statistics.median(baselines)
        print(f"  median ratio, ours to before issue 21: {ratio:.2f}x")
        for kind in sorted(LENGTHS):
            ours = sorted(o.search_s for o in outcomes if o.kind == kind)
            before = sorted(o.baseline_s for o in outcomes if o.kind == kind)
            reference = sorted(o.scan_s for o in outcomes if o.kind == kind)
            if ours:
                print(
                    f"  {kind:6} median {statistics.median(ours) * 1000:7.1f} ms ours, "
                    f"{statistics.median(before) * 1000:7.1f} ms before, "
                    f"{statistics.median(reference) * 1000:7.1f} ms full scan"
                )
        if os.environ.get("BENCH_JSON"):
            print(json.dumps([o.__dict__ for o in outcomes]))
        store.close()


if __name__ == "__main__":
    main()
