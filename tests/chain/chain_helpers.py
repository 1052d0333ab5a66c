"""Content and revert-name helpers shared by the contract tests."""

from __future__ import annotations

import iscc_lib
import pytest


def sum_code(data: bytes) -> dict:
    """ISCC-CODE (Data + Instance) and datahash of `data`, computed by iscc-lib."""
    data_code = iscc_lib.gen_data_code_v0(data)["iscc"]
    instance = iscc_lib.gen_instance_code_v0(data)
    iscc = iscc_lib.gen_iscc_code_v0([data_code, instance["iscc"]])["iscc"]
    return {"iscc": iscc, "datahash": instance["datahash"]}


def revert_name(exc: pytest.ExceptionInfo) -> str:
    """The custom error's name in an InvalidDeclaration message ("... rejects it: Name(...)")."""
    return str(exc.value).split("rejects it: ")[-1].split("(")[0]
