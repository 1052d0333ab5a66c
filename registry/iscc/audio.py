"""Audio-Code: Chromaprint fingerprint of the whole file, as iscc-sdk 0.9.7 gets it from fpcalc.

fpcalc (which iscc-sdk runs as `fpcalc -raw -signed -length 0`) decodes the first audio stream,
resamples to 11025 Hz mono s16 with fixed swresample settings and runs Chromaprint's default
algorithm (index 1, "TEST2") over all of it. ffmpeg's chromaprint muxer with the same resampler
options yields the same integers, so one ffmpeg run gives the fingerprint.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import iscc_lib
import numpy as np

from registry.errors import SoundTooShort
from registry.iscc.granular import FeatureSet, audio_features

__all__ = ["AUDIO_META_TAGS", "AudioCode", "chromaprint_output", "gen_audio_code"]

_RESAMPLE = (
    "aresample=11025:ochl=mono:osf=s16:filter_size=16:phase_shift=8:linear_interp=1:cutoff=0.8"
)

AUDIO_META_TAGS: dict[str, list[str]] = {
    "name": ["iscc:name", "iscc_name", "title"],
    "description": ["iscc:description", "iscc_description"],
    "meta": ["iscc:meta", "iscc_meta"],
}
"""Tags iscc-sdk reads (via TagLib's unified names) for the Meta-Code, in priority order."""


@dataclass(frozen=True)
class AudioCode:
    """Audio-Code units at 64 and 256 bits and the fingerprint length they came from."""

    iscc: str
    iscc_256: str
    fingerprint_size: int
    features: FeatureSet
    """One segment per Chromaprint item, for snippet matching."""


def chromaprint_output(target: Path, skip_samples: int = 0) -> list[str]:
    """ffmpeg output arguments writing the raw fingerprint (uint32 LE) of the best audio stream;
    `skip_samples` (at 11025 Hz) drops the start, which moves Chromaprint's frame grid."""
    chain = _RESAMPLE + (f",atrim=start_sample={skip_samples}" if skip_samples else "")
    return [
        "-vn",
        "-sn",
        "-dn",
        "-af",
        chain,
        "-f",
        "chromaprint",
        "-fp_format",
        "raw",
        "-algorithm",
        "1",
        str(target),
    ]


def gen_audio_code(raw: bytes, name: str) -> AudioCode:
    """Audio-Code from the muxer's raw output; signed int32 as fpcalc `-signed` prints them."""
    if len(raw) < 4:
        raise SoundTooShort(
            f"audio too short for an Audio-Code: Chromaprint needs about 3 seconds ({name})"
        )
    fingerprint = list(struct.unpack(f"<{len(raw) // 4}i", raw[: len(raw) // 4 * 4]))
    return AudioCode(
        iscc=iscc_lib.gen_audio_code_v0(fingerprint, 64)["iscc"],
        iscc_256=iscc_lib.gen_audio_code_v0(fingerprint, 256)["iscc"],
        fingerprint_size=len(fingerprint),
        features=audio_features(np.frombuffer(raw, "<u4", len(raw) // 4)),
    )
