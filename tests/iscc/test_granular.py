"""Granular features: how they are computed from frame signatures, Chromaprint items and text,
how they are written into and read back from metadata documents, and what is refused."""

from __future__ import annotations

import base64
import json
import random
import textwrap
from pathlib import Path

import iscc_lib
import numpy as np
import pytest
from make_media import make_signature, write
from works import make_text_work

from registry.errors import InputError
from registry.iscc import generate, granular
from registry.iscc.granular import (
    AUDIO_ITEM_MS,
    FeatureSet,
    audio_features,
    decode_simprints,
    encode_simprints,
    features_json,
    parse_features,
    text_features,
)
from registry.iscc.video import gen_video_code
from registry.metadata import MAX_DOCUMENT_BYTES, canonicalize


def test_simprints_are_unpadded_base64url_of_8_bytes() -> None:
    values = [random.Random(1).getrandbits(64) for _ in range(500)] + [0, 2**64 - 1]
    texts = encode_simprints(values)
    reference = [
        base64.urlsafe_b64encode(v.to_bytes(8, "big")).rstrip(b"=").decode() for v in values
    ]
    assert texts == reference
    assert decode_simprints(texts) == tuple(values)
    for bad in (["AAAAAAAAAAB"], ["AAAAAAAAAA"], ["AAAAAAAAAA+"], [17], ["AAAAAAAAAAé"]):
        with pytest.raises(ValueError):
            decode_simprints(bad)


def test_video_segments_follow_frames_and_merge_still_pictures() -> None:
    rng = random.Random(2)
    moving = [[rng.randrange(3) for _ in range(380)] for _ in range(3)]
    still = [rng.randrange(3) for _ in range(380)]
    frames = [moving[0], still, still, still, moving[1], moving[2]]
    code = gen_video_code(make_signature(frames), "v.mp4")
    features = code.features
    assert features.kind == "video"
    assert features.offsets == (0, 200, 800, 1000)
    assert features.sizes == (200, 600, 200, 200)
    expected = int.from_bytes(iscc_lib.soft_hash_video_v0([still], 64), "big")
    assert features.simprints[1] == expected
    # The Video-Code itself is still computed from the distinct frames only.
    distinct = [moving[0], still, moving[1], moving[2]]
    assert code.iscc == iscc_lib.gen_video_code_v0(distinct, 64)["iscc"]


def test_audio_segments_pair_each_item_with_the_next() -> None:
    items = np.array([1, 2, 3, 3, 3, 3, 9], dtype=np.uint32)
    features = audio_features(items)
    assert features.simprints[:2] == ((1 << 32) | 2, (2 << 32) | 3)
    # (3, 3) three times in a row is one segment spanning all of them.
    assert features.simprints[2] == (3 << 32) | 3
    assert features.offsets[2] == round(2 * AUDIO_ITEM_MS)
    assert features.sizes[2] == round(6 * AUDIO_ITEM_MS) - round(2 * AUDIO_ITEM_MS)
    assert len(features) == 4
    assert len(audio_features(np.array([5], dtype=np.uint32))) == 0


def test_text_chunks_of_an_excerpt_recur_at_one_offset_whatever_the_line_breaks() -> None:
    text = make_text_work(5, 3000)
    work = text_features(text)
    assert sum(work.sizes) <= len(text) and len(work) > 20
    start = 4321
    excerpt = text[start : start + 3000]
    rewrapped = textwrap.fill(excerpt, 50)
    clip = text_features(rewrapped)
    declared = dict(zip(work.simprints, work.offsets, strict=True))
    shifts = {
        declared[v] - o for v, o in zip(clip.simprints, clip.offsets, strict=True) if v in declared
    }
    spaced_start = len(" ".join((text[:start] + "x").split())) - 1
    assert len(shifts) == 1 and abs(shifts.pop() - spaced_start) <= 1


def test_features_round_trip_through_a_document() -> None:
    sets = [
        FeatureSet("video", (1, 2**64 - 1), (0, 200), (200, 400)),
        FeatureSet("text", (7,), (0,), (300,)),
        FeatureSet("audio", (), (), ()),
    ]
    document = {"name": "x", "features": features_json(sets)}
    assert [s["kind"] for s in document["features"]] == ["video", "text"]  # empty sets left out
    canonical = canonicalize(document)
    assert parse_features(canonical.document) == sets[:2]
    assert parse_features({"name": "no features"}) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: f.update(kind="smell"), "unknown feature kind"),
        (lambda f: f.update(unit="s"), "unit"),
        (lambda f: f["offsets"].pop(), "one length"),
        (lambda f: f["simprints"].__setitem__(0, "short"), "base64url"),
        (lambda f: f["offsets"].__setitem__(0, 10**6), "must not decrease"),
        (lambda f: f["sizes"].__setitem__(0, 1.5), "sizes must be integers"),
        (lambda f: f["offsets"].__setitem__(0, True), "offsets must be integers"),
    ],
)
def test_malformed_features_are_refused_with_the_reason(change, reason: str) -> None:
    feature = FeatureSet("video", (1, 2), (0, 200), (200, 200)).to_json()
    change(feature)
    with pytest.raises(InputError, match=reason):
        canonicalize({"name": "x", "features": [feature]})


def test_feature_documents_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    many = FeatureSet("video", tuple(range(5000)), tuple(range(5000)), (1,) * 5000)
    big = {"name": "x", "features": features_json([many])}
    assert len(json.dumps(big)) > MAX_DOCUMENT_BYTES
    canonicalize(big)  # features may exceed the plain limit
    with pytest.raises(InputError, match="bytes; the limit is"):
        canonicalize({"name": "x" * MAX_DOCUMENT_BYTES})
    with pytest.raises(InputError, match="besides its features"):
        canonicalize({"name": "x" * MAX_DOCUMENT_BYTES, "features": []})
    monkeypatch.setattr(granular, "MAX_SEGMENTS", 4999)
    with pytest.raises(InputError, match="5000 feature segments"):
        canonicalize(big)
    with pytest.raises(InputError, match="more than one set"):
        canonicalize({"features": features_json([many, many])})


def test_a_text_file_declares_a_document_with_its_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "story.txt", make_text_work(6, 1500))
    result = generate(path)
    document = result.declaration_document()
    assert document is not None and document["name"] == "story"
    (text_set,) = parse_features(document)
    assert text_set == result.features[0] and text_set.kind == "text" and len(text_set) > 5
    # Small metahash documents stay what iscc-lib computes for a Meta-Code's `meta`.
    small = {"name": "x", "b": [1, 2.0]}
    meta = iscc_lib.gen_meta_code_v0("x", meta=json.dumps(small))
    assert canonicalize(small).metahash == meta["metahash"]
