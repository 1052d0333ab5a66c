"""Live comparison with iscc-sdk 0.9.7, when an interpreter that has it is named.

Set ISCC_SDK_PYTHON to a Python with `iscc-sdk==0.9.7` installed (a separate venv: it pulls in
Tika, exiv2 and more). The test builds a corpus of text and image files, runs iscc-sdk's
`code_iscc` on each in that interpreter and compares ISCC-CODE, hashes and metadata with ours.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from make_media import make_docx, make_epub, make_pdf, pattern_image, write
from PIL import Image, ImageOps

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
            d = idk.code_iscc(f).dict()
        except idk.IsccUnsupportedMediatype:
            d = idk.code_iscc(f, fallback=True).dict()
        d.pop("thumbnail", None)
        out[f] = d
    except Exception as e:
        out[f] = {"error": repr(e)}
print(json.dumps(out))
"""

KEYS = ("iscc", "metahash", "datahash", "name", "description", "characters", "width", "height")


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
    for name, options in [
        ("img.png", {}),
        ("img.jpg", {"quality": 85}),
        ("img.gif", {}),
        ("img.webp", {}),
        ("img.tiff", {}),
        ("img.bmp", {}),
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


@pytest.mark.skipif(not SDK_PYTHON, reason="set ISCC_SDK_PYTHON to compare with iscc-sdk 0.9.7")
def test_matches_iscc_sdk(tmp_path: Path) -> None:
    files = _corpus(tmp_path)
    run = subprocess.run(
        [SDK_PYTHON, "-c", _RUNNER, *map(str, files)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    reference = json.loads(run.stdout)
    mismatches = {}
    for path in files:
        theirs = reference[str(path)]
        ours = generate(path).to_dict()
        diff = {k: (theirs.get(k), ours.get(k)) for k in KEYS if theirs.get(k) != ours.get(k)}
        if diff:
            mismatches[path.name] = diff
    assert not mismatches
