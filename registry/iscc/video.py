"""Video-Code: MPEG-7 frame signatures at 5 frames per second, as iscc-sdk 0.9.7 extracts them.

iscc-sdk runs ffmpeg with `-vf fps=fps=5,signature=format=binary:filename=...` on the video
stream ffmpeg picks by default, with no crop or scale, and hashes the 380-value frame vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import iscc_lib

from registry.errors import InputError
from registry.iscc.ffmpeg import filter_path
from registry.iscc.granular import FeatureSet, video_features
from registry.iscc.mp7 import read_signature

__all__ = ["VIDEO_FPS", "VIDEO_META_TAGS", "VideoCode", "gen_video_code", "signature_output"]

VIDEO_FPS = 5
"""iscc-sdk's `video_fps`: frames per second sampled for signatures."""

VIDEO_META_TAGS: dict[str, list[str]] = {
    "name": ["iscc_name", "title", "track", "show", "album"],
    "description": ["iscc_description", "description", "synopsis", "comment"],
    "meta": ["iscc_meta"],
}
"""Container tags iscc-sdk maps to Meta-Code fields (its VIDEO_META_MAP), in priority order."""


@dataclass(frozen=True)
class VideoCode:
    """Video-Code units at 64 and 256 bits and the frame counts they came from."""

    iscc: str
    iscc_256: str
    frames: int
    unique_frames: int
    features: FeatureSet
    """One segment per frame (runs of equal frames merged), for snippet matching."""


def signature_output(target: Path) -> list[str]:
    """ffmpeg output arguments writing the binary signature of the default video stream."""
    chain = f"fps=fps={VIDEO_FPS},signature=format=binary:filename={filter_path(target)}"
    return ["-an", "-sn", "-dn", "-vf", chain, "-f", "null", "-"]


def gen_video_code(signature: bytes, name: str) -> VideoCode:
    """Video-Code from the signature filter's binary output."""
    frames = read_signature(signature)
    if not frames.unique:
        raise InputError(f"no video frames could be decoded ({name})")
    return VideoCode(
        iscc=iscc_lib.gen_video_code_v0(frames.unique, 64)["iscc"],
        iscc_256=iscc_lib.gen_video_code_v0(frames.unique, 256)["iscc"],
        frames=frames.frames,
        unique_frames=len(frames.unique),
        features=video_features(frames.unique, frames.order, frames.times_ms),
    )
