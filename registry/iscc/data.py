"""Data-Code and Instance-Code of a file, computed in one streaming pass."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import iscc_lib

from registry.errors import InputError
from registry.iscc.codec import unit_truncate

__all__ = ["DataSum", "gen_data_sum"]


@dataclass(frozen=True)
class DataSum:
    """Data-Code and Instance-Code units (256 bits) of a file, with its blake3 datahash and size."""

    data_code_256: str
    instance_code_256: str
    datahash: str
    filesize: int

    @property
    def data_code(self) -> str:
        return unit_truncate(self.data_code_256, 64)

    @property
    def instance_code(self) -> str:
        return unit_truncate(self.instance_code_256, 64)

    @property
    def units(self) -> list[str]:
        """The 64-bit units, as iscc-sdk composes them into the ISCC-CODE."""
        return [self.data_code, self.instance_code]

    @property
    def units_256(self) -> list[str]:
        return [self.data_code_256, self.instance_code_256]


def gen_data_sum(path: str | os.PathLike[str]) -> DataSum:
    """Both hashes in a single read of the file (iscc-lib's Rust reader, 4 MiB buffers).

    Same call as iscc-sdk's `code_sum`, so memory stays flat for files of any size; it runs at
    256 bits and the 64-bit units are cut from them, so the file is read only once.
    """
    try:
        result = iscc_lib.gen_sum_code_v0(os.fspath(path), bits=256, add_units=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {Path(path).name}: {exc}") from None
    data_code, instance_code = result["units"]
    return DataSum(
        data_code_256=data_code,
        instance_code_256=instance_code,
        datahash=result["datahash"],
        filesize=result["filesize"],
    )
