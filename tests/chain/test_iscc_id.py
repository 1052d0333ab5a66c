"""ISCC-ID v1 as the registry mints it: string form, parsing, realm and HUB-ID."""

import random

import iscc_lib
import pytest

from registry.chain.iscc_id import IsccId
from registry.errors import InvalidCode

BODY = (1_763_900_000_123_456 << 12) | 42


@pytest.mark.parametrize("realm", [0, 1])
def test_round_trip_and_fields(realm: int) -> None:
    iscc_id = IsccId(BODY, realm)
    text = str(iscc_id)
    assert IsccId.parse(text) == iscc_id
    assert IsccId.parse(text.removeprefix("ISCC:").lower()) == iscc_id
    maintype, subtype, version, _, digest = iscc_lib.iscc_decode(text.removeprefix("ISCC:"))
    assert (maintype, int(subtype), version) == (iscc_lib.MT.ID, realm, iscc_lib.VS.V1)
    assert int.from_bytes(digest, "big") == BODY
    assert (iscc_id.timestamp_us, iscc_id.hub_id) == (1_763_900_000_123_456, 42)
    assert iscc_id.datetime.year == 2025


@pytest.mark.parametrize("realm", [0, 1])
def test_string_form_equals_iscc_lib(realm: int) -> None:
    rng = random.Random(realm)
    bodies = [0, 1, (1 << 64) - 1, BODY] + [rng.getrandbits(64) for _ in range(500)]
    for body in bodies:
        expected = iscc_lib.gen_iscc_id_v1(body >> 12, body & 0xFFF, realm)["iscc"]
        assert str(IsccId(body, realm)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ISCC:KUAIVHKCZSZSXFHC6D25R2B2T3GDW",  # an ISCC-CODE, not an ID
        iscc_lib.gen_meta_code_v0("x")["iscc"],
        "ISCC:MAI",
        "not an iscc",
    ],
)
def test_parse_rejects_what_is_not_an_iscc_id_v1(text: str) -> None:
    with pytest.raises(InvalidCode):
        IsccId.parse(text)
