"""Units of real ISCC-CODEs, named and explained for the pages."""

from __future__ import annotations

from pathlib import Path

import iscc_lib
from pictures import picture

from registry.api.web.explain import explain_code
from registry.iscc.generate import generate


def test_text_and_image_codes_split_into_explained_units(tmp_path: Path) -> None:
    text = tmp_path / "letter.txt"
    text.write_text("A letter to the registry, declared and explained. " * 20)
    image = tmp_path / "shapes.png"
    picture(5).save(image)
    for path, content in ((text, "CONTENT-TEXT"), (image, "CONTENT-IMAGE")):
        result = generate(path)
        units = explain_code(result.iscc)
        assert [u.code for u in units] == result.units
        assert [u.unit_type for u in units] == ["META", content, "DATA", "INSTANCE"]
        assert all(u.bits == 64 and u.meaning for u in units)
        # A single unit explains as itself.
        assert explain_code(result.units[1]) == [units[1]]


def test_unknown_or_broken_codes_explain_as_nothing() -> None:
    assert explain_code("not a code") == []
    assert explain_code("") == []
    # A Semantic-Code is a valid unit this registry does not compare: still named, not hidden.
    semantic = "ISCC:" + iscc_lib.encode_component(
        iscc_lib.MT.SEMANTIC, 0, iscc_lib.VS.V0, 64, bytes(8)
    )
    [unit] = explain_code(semantic)
    assert unit.unit_type == "SEMANTIC-TEXT" and "does not compare" in unit.meaning
