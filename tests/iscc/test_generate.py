"""The `generate` entry point: result shape, data-only files, input errors, bundled samples."""

from __future__ import annotations

import gzip
import json
import os
import random
import sys
from pathlib import Path

import iscc_lib
import pytest
from make_media import write
from PIL import Image

from registry.errors import InputError, UnsupportedMedia
from registry.iscc import IsccResult, detect, generate
from registry.iscc.mediatype import mediatype_from_data, mediatype_guess, mediatype_to_mode
from registry.samples import sample_files
from registry.samples.build import DATASET_CSV, sunrise_image


def test_result_shape(tmp_path: Path) -> None:
    path = write(tmp_path / "my-first_note.txt", "Some words worth keeping around for a while.")
    result = generate(path)
    assert isinstance(result, IsccResult)
    assert result.iscc == iscc_lib.gen_iscc_code_v0(result.units)["iscc"]
    assert result.iscc.startswith("ISCC:") and all(u.startswith("ISCC:") for u in result.units)
    assert result.name == "my first note"  # iscc-sdk's file name rule
    assert result.filesize == path.stat().st_size == result.to_dict()["filesize"]
    assert len(result.datahash_bytes) == 32 and result.datahash.startswith("1e20")
    assert result.metahash is not None and len(result.metahash_bytes) == 32
    assert result.metahash == iscc_lib.gen_meta_code_v0("my first note")["metahash"]
    with pytest.raises(AttributeError):
        result.iscc = "x"  # type: ignore[misc]
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["@type"] == "TextDigitalDocument"
    assert {
        "iscc",
        "name",
        "mode",
        "filename",
        "mediatype",
        "characters",
        "metahash",
        "datahash",
        "units",
    } <= set(data)


def test_data_only_file(tmp_path: Path) -> None:
    blob = random.Random("blob").randbytes(300_000)
    path = write(tmp_path / "blob.bin", blob)
    result = generate(path)
    assert result.mode == "data"
    assert result.mediatype == "application/octet-stream"
    assert len(result.units) == 2 and result.metahash is None and result.name is None
    assert result.metahash_bytes == bytes(32)
    assert result.units == iscc_lib.gen_sum_code_v0(path, add_units=True)["units"]
    assert result.units[0] == iscc_lib.gen_data_code_v0(blob)["iscc"]
    assert result.datahash == iscc_lib.gen_instance_code_v0(blob)["datahash"]
    assert "@type" not in result.to_dict()


@pytest.mark.parametrize("name", ["empty.txt", "empty.png", "empty.mp3", "empty.bin"])
def test_empty_file_gets_data_and_instance_codes(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b"")
    result = generate(path)
    assert result.mode == "data" and result.filesize == 0 and result.metahash is None
    assert result.units == iscc_lib.gen_sum_code_v0(str(path), add_units=True)["units"]
    assert detect(path).mode == "data"


def test_input_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="no such file"):
        generate(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="is a directory"):
        generate(tmp_path)
    locked = write(tmp_path / "locked.txt", "secret words")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: simulate the refusal instead

            def refuse(*args: object, **kwargs: object) -> None:
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(
                sys.modules["registry.iscc.generate"], "open", refuse, raising=False
            )
        with pytest.raises(InputError, match=r"permission denied: .*locked.txt"):
            generate(locked)
    finally:
        locked.chmod(0o600)


def test_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    cases = [
        tmp_path / "missing.png",
        write(tmp_path / "junk.jpg", b"\x12\x34" * 500),
        write(tmp_path / "tune.flac", b"fLaC" + bytes(100)),
    ]
    for path in cases:
        with pytest.raises((InputError, UnsupportedMedia)) as info:
            generate(path)
        message = str(info.value)
        assert "\n" not in message and path.name in message


@pytest.mark.parametrize(
    ("head", "name", "expected", "mode"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "x.png", "image/png", "image"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "noext", "image/png", "image"),
        (b"\xff\xd8\xff\xe0" + bytes(20), "photo.jpeg", "image/jpeg", "image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "x.webp", "image/webp", "image"),
        (b"%PDF-1.7\n", "doc", "application/pdf", "text"),
        (b"hello", "notes.md", "text/markdown", "text"),
        (b"a,b\n1,2\n", "t.csv", "text/csv", "text"),
        (b"<!DOCTYPE html><html>", "page", "text/html", "text"),
        (
            b"<?xml version='1.0'?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            "x",
            "image/svg+xml",
            "image",
        ),
        (b"\x1f\x8b\x08\x00", "x.csv.gz", "application/x-gzip", "data"),
        (b"ID3\x04\x00", "x.bin", "audio/mpeg", "audio"),
        (b"\x00\x00\x00\x18ftypisom", "x.bin", "video/mp4", "video"),
        (b"random", "x.bin", "application/octet-stream", "data"),
        (b"random", "noext", "application/octet-stream", "data"),
    ],
)
def test_mediatype(head: bytes, name: str, expected: str, mode: str) -> None:
    assert mediatype_guess(head, name) == expected
    assert mediatype_to_mode(expected) == mode


def test_sniffing_is_not_fooled_by_short_signatures() -> None:
    assert mediatype_from_data(b"BMW cars are fast") is None
    assert mediatype_from_data(b"\xff\xfb\x90\x00") is None  # bare MPEG sync: the name decides


def test_detect(tmp_path: Path) -> None:
    kind = detect(
        write(tmp_path / "x.docx", b"PK\x03\x04" + b"[Content_Types].xml word/" + bytes(30))
    )
    assert kind.mode == "text" and kind.mediatype.endswith("wordprocessingml.document")


# Reference results of iscc-sdk 0.9.7 (`code_iscc`, default options; `fallback=True` for the
# gzip file, which iscc-sdk otherwise refuses) for the bundled samples.
SDK_REFERENCE = {
    "manifesto.txt": {
        "iscc": "ISCC:KACWMDQPM24T5IBT5KOG67TOGVXY4J57JWASWQ7KY7CR2B4HXLQW3JA",
        "name": "manifesto",
        "characters": 989,
        "metahash": "1e202b2d30c356b2f1105a5b62a3da7ddc8179a3baf21868a144c7c67786570e19bc",
        "datahash": "1e20c51d0787bae16da4b47bf7a0e6fef8623e8ceb38381e075bdd9c5bf3d099ba7f",
        "mediatype": "text/plain",
    },
    "sunrise.png": {
        "iscc": "ISCC:KEC2UO3MRBPLN7FERTYXFDGZMKTNHTH67EPOQSMG6N4FGNAJCQTUJXA",
        "name": "sunrise",
        "width": 160,
        "height": 120,
        "metahash": "1e20e7a8e26ff26593a833c536b47811dda7ee5ea7b2407d2bc2dd5dae4ac68945e4",
        "datahash": "1e2078533409142744dcf1857eb1f5647f99fed199bf416be89ca6942eab32b2f025",
        "mediatype": "image/png",
    },
    "dataset.csv.gz": {
        "iscc": "ISCC:KUAHQPOFUVZTKDR25ZNXJJN5C3PXI",
        "datahash": "1e20ee5b74a5bd16df744575dec8034106d22ad0c16cf18f31058209c4818ae83279",
        "mediatype": "application/x-gzip",
    },
}


def test_samples_match_iscc_sdk() -> None:
    paths = sample_files()
    assert [p.name for p in paths] == list(SDK_REFERENCE)
    assert sum(p.stat().st_size for p in paths) < 200_000
    for path in paths:
        data = generate(path).to_dict()
        for key, value in SDK_REFERENCE[path.name].items():
            assert data[key] == value, (path.name, key)


def test_samples_are_reproducible() -> None:
    folder = sample_files()[0].parent
    with Image.open(folder / "sunrise.png") as bundled:
        assert bundled.convert("RGB").tobytes() == sunrise_image().tobytes()
    assert gzip.decompress((folder / "dataset.csv.gz").read_bytes()).decode() == DATASET_CSV
