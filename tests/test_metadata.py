"""Metadata canonicalisation: the metahash is iscc-lib's, independent of key order and spacing."""

from __future__ import annotations

import json

import blake3
import iscc_lib
import pytest

from registry.errors import InputError
from registry.metadata import MAX_DOCUMENT_BYTES, canonicalize


def test_metahash_is_blake3_of_canonical_json_and_matches_iscc_lib() -> None:
    doc = {"name": "Sunrise", "license": "https://example.com/cc-by", "z": [1, 2.5], "é": "ü"}
    result = canonicalize(doc)
    assert (
        result.canonical
        == json.dumps(dict(sorted(doc.items())), ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert result.metahash == "1e20" + blake3.blake3(result.canonical).hexdigest()
    reference = iscc_lib.gen_meta_code_v0("Sunrise", meta=json.dumps(doc))["metahash"]
    assert result.metahash == reference
    assert result.fields.license == "https://example.com/cc-by"
    shuffled = json.loads(json.dumps(dict(reversed(list(doc.items())))))
    assert canonicalize(shuffled).metahash == result.metahash


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "JSON object"),
        ({"name": 5}, "'name'"),
        ({"x": float("nan")}, "not plain JSON"),
        ({"x": "a" * (MAX_DOCUMENT_BYTES + 1)}, "limit"),
    ],
)
def test_bad_documents_are_refused(doc: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        canonicalize(doc)
