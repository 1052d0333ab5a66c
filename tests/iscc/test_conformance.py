"""ISO 24138 conformance vectors of iscc-core, run through our wrappers (not only iscc-lib)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import iscc_lib
import pytest
from make_media import make_signature

from registry.iscc.audio import gen_audio_code
from registry.iscc.codec import unit_truncate
from registry.iscc.data import gen_data_sum
from registry.iscc.meta import gen_meta_code
from registry.iscc.text import gen_text_code
from registry.iscc.video import gen_video_code

VECTORS = json.loads((Path(__file__).parent / "data" / "conformance.json").read_text("utf-8"))


def _stream(spec: str) -> bytes:
    if spec.startswith("counter:"):
        count = int(spec.removeprefix("counter:"))
        return b"".join(i.to_bytes(4, "little") for i in range(1, count + 1))
    return bytes.fromhex(spec.removeprefix("stream:"))


def _cases(section: str) -> list:
    return [pytest.param(case, id=name) for name, case in VECTORS[section].items()]


def test_iscc_lib_selftest() -> None:
    assert iscc_lib.conformance_selftest()


@pytest.mark.parametrize("case", _cases("gen_meta_code_v0"))
def test_meta_code(case: dict, tmp_path: Path) -> None:
    name, description, meta, bits = case["inputs"]
    if isinstance(meta, dict):
        meta = iscc_lib.json_to_data_url(json.dumps(meta, separators=(",", ":")))
    result = gen_meta_code(tmp_path / "unused.txt", name, description, meta, bits=bits)
    expected = case["outputs"]
    assert result.iscc == expected["iscc"]
    assert result.name == expected["name"]
    assert result.metahash == expected["metahash"]
    assert result.description == expected.get("description")
    assert result.meta == expected.get("meta")


@pytest.mark.parametrize("case", _cases("gen_text_code_v0"))
def test_text_code(case: dict) -> None:
    text, bits = case["inputs"]
    result = gen_text_code(text, bits=bits)
    assert result.iscc == case["outputs"]["iscc"]
    assert result.characters == case["outputs"]["characters"]


@pytest.mark.parametrize("case", _cases("gen_data_code_v0"))
def test_data_code_from_file(case: dict, tmp_path: Path) -> None:
    spec, bits = case["inputs"]
    path = tmp_path / "stream.bin"
    path.write_bytes(_stream(spec))
    result = gen_data_sum(path)
    assert unit_truncate(result.data_code_256, bits) == case["outputs"]["iscc"]
    if bits == 64:
        assert result.data_code == case["outputs"]["iscc"]


@pytest.mark.parametrize("case", _cases("gen_instance_code_v0"))
def test_instance_code_from_file(case: dict, tmp_path: Path) -> None:
    spec, bits = case["inputs"]
    path = tmp_path / "stream.bin"
    path.write_bytes(_stream(spec))
    result = gen_data_sum(path)
    expected = case["outputs"]
    assert result.datahash == expected["datahash"]
    assert result.filesize == expected["filesize"]
    assert unit_truncate(result.instance_code_256, bits) == expected["iscc"]
    if bits == 64:
        assert result.instance_code == expected["iscc"]


@pytest.mark.parametrize("case", _cases("gen_iscc_code_v0"))
def test_iscc_code(case: dict) -> None:
    (codes,) = case["inputs"]
    assert iscc_lib.gen_iscc_code_v0(codes)["iscc"] == case["outputs"]["iscc"]


@pytest.mark.parametrize("case", _cases("gen_audio_code_v0"))
def test_audio_code_from_fingerprint_bytes(case: dict) -> None:
    fingerprint, bits = case["inputs"]
    raw = struct.pack(f"<{len(fingerprint)}i", *fingerprint)  # as the chromaprint muxer writes
    code = gen_audio_code(raw, "vector")
    assert unit_truncate(code.iscc_256, bits) == case["outputs"]["iscc"]


@pytest.mark.parametrize("case", _cases("gen_video_code_v0"))
def test_video_code_from_signature_file(case: dict) -> None:
    frames, bits = case["inputs"]
    code = gen_video_code(make_signature(frames), "vector")
    assert unit_truncate(code.iscc_256, bits) == case["outputs"]["iscc"]
    assert code.frames == len(frames)
