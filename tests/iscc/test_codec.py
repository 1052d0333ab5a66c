"""Binary <-> string forms of ISCCs."""

import base64
import random

import iscc_lib
import pytest

from registry.errors import InvalidCode
from registry.iscc.codec import b32encode, code_from_bytes, code_to_bytes


def test_b32encode_equals_the_standard_library() -> None:
    rng = random.Random(7)
    for size in range(0, 80):
        for _ in range(20):
            raw = rng.randbytes(size)
            assert b32encode(raw) == base64.b32encode(raw).decode().rstrip("=")


def test_code_round_trip() -> None:
    code = iscc_lib.gen_iscc_code_v0(
        [iscc_lib.gen_data_code_v0(b"x" * 100)["iscc"], iscc_lib.gen_instance_code_v0(b"x")["iscc"]]
    )["iscc"]
    assert code_from_bytes(code_to_bytes(code)) == code


def test_bytes_that_are_no_iscc_are_refused() -> None:
    with pytest.raises(InvalidCode):
        code_from_bytes(b"\xff\xff\x00")
