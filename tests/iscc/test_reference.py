"""Live comparison with iscc-sdk 0.9.7, when an interpreter that has it is named.

ISCC_SDK_PYTHON names a Python with `iscc-sdk==0.9.7` (scripts/sdk_venv.sh builds one, and
scripts/test.sh sets it). The tests build corpora of text, image, audio and video files, run
iscc-sdk's `code_iscc` on each in that interpreter, at 64 and at 256 bits, and compare
ISCC-CODE, every unit, hashes and metadata with ours. Under CI a missing sdk fails the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from make_media import make_av, make_docx, make_epub, make_pdf, pattern_image, write
from PIL import Image, ImageOps
from pillow_heif import register_heif_opener

from registry.iscc import generate

SDK_PYTHON = os.environ.get("ISCC_SDK_PYTHON")

_RUNNER = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from loguru import logger
logger.remove()
import iscc_sdk as idk
out = {}
for f in sys.argv[1:]:
    try:
        try:
            d = idk.code_iscc(f, add_units=True).dict()
        except idk.IsccUnsupportedMediatype:
            d = idk.code_iscc(f, fallback=True, add_units=True).dict()
        d.pop("thumbnail", None)
        if d.get("mode"):
            wide = idk.code_iscc(f, bits=256, add_units=True, create_thumb=False).dict()
            d["units_256"] = wide["units"]
        else:  # data-only: iscc-sdk's code_sum at 256 bits
            d["units_256"] = idk.code_sum(f, bits=256, add_units=True).dict()["units"]
        out[f] = d
    except Exception as e:
        out[f] = {"error": repr(e)}
print(json.dumps(out))
"""

KEYS = (
    "iscc",
    "units",
    "units_256",
    "metahash",
    "datahash",
    "name",
    "description",
    "characters",
    "width",
    "height",
    "fps",
    "mediatype",
    "mode",
)


def _corpus(folder: Path) -> list[Path]:
    prose = "A plain paragraph of text, written for comparing extraction results. " * 5
    files = [
        write(folder / "plain-text_file.txt", prose),
        write(folder / "notes.md", "# Notes\n\n" + prose + "\n\n- one\n- two\n"),
        write(folder / "table.csv", "name,value\nalpha,1\nbeta,2\n"),
        write(folder / "latin.txt", ("caf\xe9 " + prose).encode("latin-1")),
        write(
            folder / "page.html",
            "<html><head><title>Page</title><meta name='description' content='Desc'></head>"
            f"<body><h1>Head</h1><p>{prose}</p><script>x()</script><ul><li>a</li></ul></body>"
            "</html>",
        ),
        write(folder / "report.pdf", make_pdf([[prose[:80]], ["page two"]], {"Title": "Report"})),
        write(folder / "letter.docx", make_docx(["Dear reader,", prose], "Letter", "Desc")),
        write(folder / "book.epub", make_epub(["Alpha text.", prose], "Book", "About")),
        write(folder / "data.json", '{"key": "value", "list": [1, 2]}'),
        write(folder / "data.xml", "<?xml version='1.0'?><r><a>one</a>two</r>"),
        write(folder / "blob.bin", bytes(range(256)) * 40),
    ]
    img = pattern_image((240, 160))
    register_heif_opener()  # lets Pillow write the .heic sample
    for name, options in [
        ("img.png", {}),
        ("img.jpg", {"quality": 85}),
        ("img.gif", {}),
        ("img.webp", {}),
        ("img.tiff", {}),
        ("img.bmp", {}),
        ("img.avif", {"quality": 80}),
        ("img.heic", {"quality": 80}),
    ]:
        img.save(folder / name, **options)
        files.append(folder / name)
    ImageOps.expand(img, 25, (255, 255, 255)).save(folder / "framed.png")
    img.convert("RGBA").save(folder / "rgba.png")
    img.convert("P").save(folder / "palette.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(folder / "rotated.jpg", exif=exif.tobytes())
    files += [folder / n for n in ("framed.png", "rgba.png", "palette.png", "rotated.jpg")]
    return files


def _av_corpus(folder: Path) -> list[Path]:
    """Audio in every supported container, video in every supported container (with sound),
    and re-encoded, resized and resampled variants of the same content."""
    tag = ("-metadata", "title=A Tone Title")
    return [
        make_av(folder / "tone.wav", "AUDIO"),
        make_av(folder / "tone.mp3", "AUDIO", *tag),
        make_av(folder / "tone-64k.mp3", "AUDIO", "-b:a", "64k"),
        make_av(folder / "tone-mono-22k.mp3", "AUDIO", "-ac", "1", "-ar", "22050"),
        make_av(folder / "tone.flac", "AUDIO", *tag),
        make_av(folder / "tone.ogg", "AUDIO", "-c:a", "libvorbis", *tag),
        make_av(folder / "tone.oga", "AUDIO", "-c:a", "flac", "-f", "ogg"),
        make_av(folder / "tone.opus", "AUDIO", *tag),
        make_av(folder / "tone.m4a", "AUDIO", "-c:a", "aac", *tag),
        make_av(folder / "tone.aac", "AUDIO", "-c:a", "aac", "-f", "adts"),
        make_av(
            folder / "film.mp4",
            "VIDEO",
            "AUDIO",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-metadata",
            "title=Test Film",
            "-metadata",
            "comment=About it",
        ),
        make_av(
            folder / "film-crf40.mp4",
            "VIDEO",
            "-c:v",
            "libx264",
            "-crf",
            "40",
            "-pix_fmt",
            "yuv420p",
        ),
        make_av(
            folder / "film-small.mp4",
            "VIDEO",
            "-vf",
            "scale=160:120",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ),
        make_av(
            folder / "film.mkv",
            "VIDEO",
            "AUDIO",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libvorbis",
            "-metadata",
            "title=Matroska Film",
        ),
        make_av(
            folder / "film.webm",
            "FRACTAL",
            "AUDIO",
            "-c:v",
            "libvpx-vp9",
            "-b:v",
            "200k",
            "-c:a",
            "libopus",
        ),
        make_av(folder / "film.mov", "VIDEO", "-c:v", "libx264", "-pix_fmt", "yuv420p"),
        make_av(folder / "film.avi", "FRACTAL", "AUDIO", "-c:v", "mpeg4", "-c:a", "libmp3lame"),
    ]


def _sdk_python() -> str:
    if not SDK_PYTHON:
        if os.environ.get("CI"):
            pytest.fail("ISCC_SDK_PYTHON is not set: scripts/test.sh builds the iscc-sdk venv")
        pytest.skip("set ISCC_SDK_PYTHON to compare with iscc-sdk 0.9.7")
    return SDK_PYTHON


def _compare(files: list[Path]) -> dict[str, dict]:
    run = subprocess.run(
        [_sdk_python(), "-c", _RUNNER, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    reference = json.loads(run.stdout)
    mismatches = {}
    for path in files:
        theirs = reference[str(path)]
        assert "error" not in theirs, (path.name, theirs)
        theirs.setdefault("mode", "data")  # iscc-sdk leaves `mode` out in fallback mode
        ours = generate(path).to_dict()
        diff = {k: (theirs.get(k), ours.get(k)) for k in KEYS if theirs.get(k) != ours.get(k)}
        if diff:
            mismatches[path.name] = diff
    return mismatches


def test_text_and_images_match_iscc_sdk(tmp_path: Path) -> None:
    assert not _compare(_corpus(tmp_path))


def test_audio_and_video_match_iscc_sdk(tmp_path: Path) -> None:
    files = _av_corpus(tmp_path)
    assert not _compare(files)
    # the variants are different files with near-identical content
    codes = {path.name: generate(path) for path in files}
    assert codes["tone.mp3"].datahash != codes["tone-64k.mp3"].datahash
    assert codes["film.mp4"].units[1] != codes["film.webm"].units[1]
