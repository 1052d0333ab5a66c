"""Audio excerpts of 3 s: too short for Chromaprint to place (2-3 items), found and placed by
the finer "sound" segments. Real works generated and re-encoded by ffmpeg, declared into a
store as the indexer does it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from index_helpers import FULL_ABI, content, make_log
from works import cut_clip, make_audio_work, make_video_work

from registry.chain.events import DeclaredEvent
from registry.errors import SoundTooShort
from registry.index.events import EventDecoder
from registry.iscc import generate
from registry.iscc.audio import chromaprint_output, gen_audio_code
from registry.iscc.data import gen_data_sum
from registry.iscc.ffmpeg import ffmpeg_exe
from registry.metadata import canonicalize
from registry.search.similarity import SimilarityIndex, match_file
from registry.search.snippets import SnippetIndex, excerpt_features, find_snippets, rank
from registry.store.store import Store

SECONDS = 20
DECODER = EventDecoder(0, FULL_ABI)


@pytest.fixture(scope="module")
def works(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sound")
    return {
        "song": make_audio_work(folder / "song.mp3", 41, SECONDS),
        "other": make_audio_work(folder / "other.mp3", 42, SECONDS),
        "film": make_video_work(folder / "film.mp4", 43, SECONDS),
        "undeclared": make_audio_work(folder / "undeclared.mp3", 44, SECONDS),
    }


def _declare(store: Store, paths: list[Path]) -> list[int]:
    events = []
    for n, path in enumerate(paths):
        document = canonicalize(generate(path).declaration_document() or {})
        store.put_metadata(document.digest, document.canonical)
        item = content(path.read_bytes())
        event = DECODER.decode(
            make_log(
                item["raw"],
                item["digest"],
                iscc_id_body=(1_700_000_000_000_000 + n) << 12,
                metahash=document.digest,
                block_number=1,
                log_index=n,
            )
        )
        assert isinstance(event, DeclaredEvent)
        events.append(event)
    store.apply(31337, "0x" + "56" * 20, events, None, 1, (1).to_bytes(32, "big"))
    ids = {r.iscc_id: i for i, r in store.by_ids(range(1, len(paths) + 1)).items()}
    return [ids[e.iscc_id] for e in events]


def test_three_second_audio_excerpts_are_found_and_placed(
    store: Store, works: dict[str, Path], tmp_path: Path
) -> None:
    song_id, _other, film_id = _declare(store, [works["song"], works["other"], works["film"]])
    index = SnippetIndex(store)
    for n, (source, start, wanted) in enumerate(
        [("song", 3.217, song_id), ("song", 14.61, song_id), ("film", 8.05, film_id)]
    ):
        clip = cut_clip(works[source], tmp_path / f"clip-{n}.mp3", start, 3.0)
        found = find_snippets(store, index, excerpt_features(clip, generate(clip).features))
        best = rank(found)[0]
        assert best.declaration_id == wanted, (source, start, found)
        sound = next(o for o in best.overlaps if o.kind == "sound")
        assert abs(sound.offset / 1000 - start) <= 1.0
    # Chromaprint alone could not: a 3 s excerpt has too few items to match
    clip = cut_clip(works["song"], tmp_path / "chromaprint.mp3", 9.3, 3.0)
    chromaprint_only = [f for f in generate(clip).features if f.kind == "audio"]
    assert find_snippets(store, index, chromaprint_only) == []
    # an excerpt of a work nobody declared matches nothing
    foreign = cut_clip(works["undeclared"], tmp_path / "foreign.mp3", 5.5, 3.0)
    assert find_snippets(store, index, excerpt_features(foreign, generate(foreign).features)) == []


def test_the_audio_code_is_still_chromaprints(works: dict[str, Path]) -> None:
    """The sound segments travel beside the Audio-Code, which stays iscc-sdk's."""
    result = generate(works["song"])
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(works["song"]), *chromaprint_output("pipe:1")],
        capture_output=True,
        check=True,
    ).stdout
    assert result.units[1] == gen_audio_code(raw, "song.mp3").iscc
    assert {f.kind for f in result.features} == {"audio", "sound"}


def test_two_second_audio_excerpts_are_matched_by_their_sound_alone(
    store: Store, works: dict[str, Path], tmp_path: Path
) -> None:
    """2 s of sound give no Chromaprint item, so no Audio-Code and no ISCC; `match` still
    finds and places such an excerpt by its sound segments, and one of an undeclared work
    matches nothing."""
    song_id, other_id = _declare(store, [works["song"], works["other"]])
    records = store.by_ids([song_id, other_id])
    for n, (source, start, wanted) in enumerate(
        [("song", 4.43, song_id), ("other", 12.9, other_id), ("song", 16.02, song_id)]
    ):
        clip = cut_clip(works[source], tmp_path / f"short-{n}.mp3", start, 2.0)
        with pytest.raises(SoundTooShort):
            generate(clip)
        found = match_file(store, SimilarityIndex(store), clip, snippets=SnippetIndex(store))
        assert found["iscc"]["iscc"] is None and found["iscc"]["note"]
        assert found["iscc"]["datahash"] == gen_data_sum(clip).datahash
        best = found["snippets"][0]
        assert best["declaration"]["iscc_id"] == records[wanted].iscc_id, (source, start)
        (sound,) = [k for k in best["kinds"] if k["kind"] == "sound"]
        assert abs(sound["offset"] / 1000 - start) <= 1.0
    foreign = cut_clip(works["undeclared"], tmp_path / "short-foreign.mp3", 7.5, 2.0)
    found = match_file(store, SimilarityIndex(store), foreign, snippets=SnippetIndex(store))
    assert found["snippets"] == []
