"""Data-Code and Instance-Code of a file, computed in one streaming pass."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import iscc_lib

from registry.errors import InputError

__all__ = ["DataSum", "gen_data_sum"]


@dataclass(frozen=True)
class DataSum:
    """Data-Code and Instance-Code units of a byte stream, with its blake3 datahash and size."""

    data_code: str
    instance_code: str
    datahash: str
    filesize: int

    @property
    def units(self) -> list[str]:
        return [self.data_code, self.instance_code]


def gen_data_sum(path: str | os.PathLike[str], bits: int = 64) -> DataSum:
    """Both hashes in a single read of the file (iscc-lib's Rust reader, 4 MiB buffers).

    Same call as iscc-sdk's `code_sum`, so memory stays flat for files of any size.
    """
    try:
        result = iscc_lib.gen_sum_code_v0(os.fspath(path), bits=bits, add_units=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {Path(path).name}: {exc}") from None
    data_code, instance_code = result["units"]
    return DataSum(
        data_code=data_code,
        instance_code=instance_code,
        datahash=result["datahash"],
        filesize=result["filesize"],
    )
