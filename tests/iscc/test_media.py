"""Audio and video through `generate`: units, facts, progress, one decoding pass, bad input."""

from __future__ import annotations

import random
from pathlib import Path

import iscc_lib
import multibase
import pytest
from make_media import make_av, make_signature, write
from PIL import Image

from registry.errors import RegistryError
from registry.iscc import generate
from registry.iscc.codec import code_from_bytes, unit_truncate
from registry.iscc.video import gen_video_code


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "song": make_av(folder / "song.mp3", "AUDIO", "-metadata", "title=<b>My</b> Song"),
        "film": make_av(
            folder / "film.mkv",
            "VIDEO",
            "AUDIO",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libvorbis",
            "-metadata",
            "title=My Film",
        ),
        "silent": make_av(folder / "silent.mp4", "FRACTAL", "-c:v", "libx264", "-t", "2"),
        "sound-only": make_av(folder / "sound-only.mp4", "AUDIO", "-c:a", "aac"),
        "blip": make_av(folder / "blip.wav", "AUDIO", "-t", "1"),
    }


def test_audio_result(media: dict[str, Path]) -> None:
    result = generate(media["song"])
    data = result.to_dict()
    assert data["@type"] == "AudioObject" and result.mode == "audio"
    assert result.mediatype == "audio/mpeg"
    assert result.name == "<b>My</b> Song"  # iscc-sdk passes audio tags on unsanitized
    assert [iscc_lib.iscc_decode(u)[0] for u in result.units] == [
        iscc_lib.MT.META,
        iscc_lib.MT.CONTENT,
        iscc_lib.MT.DATA,
        iscc_lib.MT.INSTANCE,
    ]
    assert abs(data["duration"] - 4.0) < 0.1
    assert data["channels"] == 1 and data["sample_rate"] == 44100  # the lavfi mix is mono


def test_video_result_and_soundtrack(media: dict[str, Path]) -> None:
    film = generate(media["film"]).to_dict()
    assert film["@type"] == "VideoObject" and film["name"] == "My Film"
    assert (film["width"], film["height"], film["fps"]) == (320, 240, 25.0)
    assert film["frames"] == 20  # 4 s at 5 frames per second
    # the soundtrack came out of the same decoding pass; it is not part of the ISCC-CODE
    assert film["soundtrack"].startswith("ISCC:EI")
    assert film["soundtrack"] not in film["units"]
    silent = generate(media["silent"]).to_dict()
    assert "soundtrack" not in silent and silent["name"] == "silent"


@pytest.mark.parametrize("kind", ["song", "film"])
def test_units_at_both_lengths_and_multiformat(media: dict[str, Path], kind: str) -> None:
    result = generate(media[kind])
    assert [unit_truncate(u, 64) for u in result.units_256] == result.units
    assert all(iscc_lib.iscc_decode(u)[3] == 7 for u in result.units_256)  # length index: 256
    forms = result.to_dict()["multiformat"]
    raw = multibase.decode(forms["iscc"])
    assert raw[:2] == b"\xcc\x01" and code_from_bytes(raw[2:]) == result.iscc
    assert len(forms["units_256"]) == len(result.units_256)


def test_progress_reports_media_time(media: dict[str, Path]) -> None:
    seen: list[tuple[float, float | None]] = []
    generate(media["film"], progress=lambda done, total: seen.append((done, total)))
    assert seen, "ffmpeg reported no progress"
    assert all(total is not None and abs(total - 4.0) < 0.1 for _, total in seen)
    times = [done for done, _ in seen]
    assert times == sorted(times) and times[-1] > 3.0


def test_repeated_frames_give_the_same_code() -> None:
    rng = random.Random(7)
    frames = [[rng.randrange(3) for _ in range(380)] for _ in range(6)]
    with_repeats = frames + frames[:3] + frames
    code = gen_video_code(make_signature(with_repeats), "x")
    assert code.frames == 15 and code.unique_frames == 6
    assert code.iscc == iscc_lib.gen_video_code_v0(with_repeats, 64)["iscc"]
    assert code.iscc_256 == iscc_lib.gen_video_code_v0(with_repeats, 256)["iscc"]


def _one_line_error(path: Path, match: str) -> None:
    with pytest.raises(RegistryError, match=match) as info:
        generate(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)


def test_short_audio_is_refused(media: dict[str, Path]) -> None:
    _one_line_error(media["blip"], "audio too short .*Chromaprint needs about 3 seconds")


def test_video_without_video_stream_is_refused(media: dict[str, Path]) -> None:
    _one_line_error(media["sound-only"], "no video stream")


@pytest.mark.parametrize("name", ["noise.mp3", "noise.mp4", "noise.ogg", "noise.webm"])
def test_random_bytes_are_refused(tmp_path: Path, name: str) -> None:
    # Seeded, so a run is repeatable; once in a while the probe takes random bytes for a
    # container without the expected stream, which is refused as clearly.
    noise = random.Random(name).randbytes(20_000)
    _one_line_error(
        write(tmp_path / name, noise), "not a readable media file|cannot|no (audio|video) stream"
    )


def test_truncated_media(media: dict[str, Path], tmp_path: Path) -> None:
    # MP4 keeps its index at the end: cut it off and nothing can be decoded
    data = media["silent"].read_bytes()
    _one_line_error(write(tmp_path / "cut.mp4", data[: len(data) // 2]), "not a readable")
    # MP3 is a frame stream: a cut file still decodes up to the cut, as with iscc-sdk
    song = media["song"].read_bytes()
    result = generate(write(tmp_path / "cut.mp3", song[: len(song) * 3 // 4]))
    assert result.mode == "audio"


def test_bad_images(tmp_path: Path) -> None:
    _one_line_error(
        write(tmp_path / "photo.jpg", random.Random("photo").randbytes(5000)),
        "not a decodable image",
    )
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 MP, a few KB on disk
    _one_line_error(bomb, "decompression bomb|too large|pixels")
    _one_line_error(tmp_path / "missing.mp4", "no such file")


def test_gen_batch_goes_on_after_failures(media: dict[str, Path], tmp_path: Path) -> None:
    """`iscc-registry gen DIR MISSING --json`: every file coded, each failure one line, exit 1."""
    import json
    import subprocess
    import sys

    cli = str(Path(sys.executable).parent / "iscc-registry")
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    write(folder / "sub" / "noise.mp4", random.Random("noise").randbytes(3000))
    write(folder / "notes.txt", "words worth keeping for a while")
    (folder / "song.mp3").write_bytes(media["song"].read_bytes())
    run = subprocess.run(
        [cli, "gen", "--json", str(folder), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors)
    assert "noise.mp4" in errors[0] and "no such file" in errors[1]
    results = json.loads(run.stdout)
    assert [Path(r.get("filename") or r["file"]).name for r in results] == [
        "notes.txt",
        "song.mp3",
        "noise.mp4",
        "nope",
    ]
    assert results[1]["iscc"] == generate(media["song"]).iscc
