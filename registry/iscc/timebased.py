"""Audio- and Video-Codes of a file from a single ffmpeg decoding pass, with its facts and tags.

A video file is decoded once for both its frame signatures and, if it has sound, the
Chromaprint fingerprint of its soundtrack (reported as a fact; iscc-sdk's ISCC-CODE of a
video holds only the Video-Code).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError
from registry.iscc.audio import AUDIO_META_TAGS, chromaprint_output, gen_audio_code
from registry.iscc.ffmpeg import Progress, run_ffmpeg
from registry.iscc.granular import FeatureSet, audio_features
from registry.iscc.meta import fields_from_tags
from registry.iscc.probe import probe
from registry.iscc.sound import pcm_output, sound_features, sound_grids
from registry.iscc.video import VIDEO_META_TAGS, gen_video_code, signature_output

__all__ = ["TimedContent", "gen_timed_content", "shifted_audio_features"]

QUERY_SHIFTS = (341, 682, 1024)
"""Samples (of 11025 per second) dropped for the extra fingerprints of an excerpt: a quarter,
half and three quarters of Chromaprint's 1365-sample hop."""
MAX_SHIFTED_SECONDS = 120.0


@dataclass(frozen=True)
class TimedContent:
    """Content-Code units of an audio or video file, its facts and its embedded metadata."""

    unit: str
    unit_256: str
    facts: dict[str, Any] = field(default_factory=dict)
    embedded: dict[str, str] = field(default_factory=dict)
    features: tuple[FeatureSet, ...] = ()
    """Granular features: video segments (video files) and audio segments (any sound)."""


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def gen_timed_content(path: Path, mode: str, progress: Progress | None = None) -> TimedContent:
    """Audio-Code (mode "audio") or Video-Code (mode "video") of a file."""
    info = probe(path)
    want_video = mode == "video"
    if want_video and not info.has_video:
        raise InputError(f"no video stream in {path.name}")
    if not want_video and not info.has_audio:
        raise InputError(f"no audio stream in {path.name}")
    with tempfile.TemporaryDirectory(prefix="iscc-") as tmp:
        signature_file, fingerprint_file = Path(tmp, "video.sig"), Path(tmp, "audio.fp")
        pcm_file = Path(tmp, "sound.pcm")
        outputs = signature_output(signature_file) if want_video else []
        if info.has_audio:
            outputs += chromaprint_output(fingerprint_file) + pcm_output(str(pcm_file))
        run_ffmpeg(path, outputs, progress, info.duration)
        signature, fingerprint = _read(signature_file), _read(fingerprint_file)
        sound = sound_features(_read(pcm_file))
    facts = info.facts()
    if want_video:
        video = gen_video_code(signature, path.name)
        facts["frames"] = video.frames
        features = [video.features]
        # A clip of two seconds has too little sound for Chromaprint: it has no soundtrack code
        # and no audio segments, and is still a video.
        if len(fingerprint) >= 4:
            soundtrack = gen_audio_code(fingerprint, path.name)
            facts["soundtrack"] = soundtrack.iscc
            features.append(soundtrack.features)
        features.append(sound)
        embedded = fields_from_tags(info.format_tags, VIDEO_META_TAGS)
        return TimedContent(video.iscc, video.iscc_256, facts, embedded, tuple(features))
    audio = gen_audio_code(fingerprint, path.name)
    embedded = fields_from_tags(info.audio_tags, AUDIO_META_TAGS)
    return TimedContent(audio.iscc, audio.iscc_256, facts, embedded, (audio.features, sound))


def shifted_audio_features(path: Path) -> list[FeatureSet]:
    """Audio segments of an excerpt with Chromaprint's frame grid moved by a quarter, a half and
    three quarters of a hop, and its "sound" segments on every query grid (`sound_grids`); one
    more decoding pass, for excerpts up to two minutes.

    An excerpt cut between two of the declared work's Chromaprint frames gets items that differ
    from the work's in many bits; one of these grids lies within an eighth of a hop of the
    work's, so its items stay close. Offsets count from the excerpt's start, like the others."""
    info = probe(path)
    if not info.has_audio or (info.duration or 0) > MAX_SHIFTED_SECONDS:
        return []
    with tempfile.TemporaryDirectory(prefix="iscc-") as tmp:
        targets = [Path(tmp, f"shift-{skip}.fp") for skip in QUERY_SHIFTS]
        outputs = pcm_output(str(Path(tmp, "sound.pcm")))
        for skip, target in zip(QUERY_SHIFTS, targets, strict=True):
            outputs += chromaprint_output(target, skip)
        run_ffmpeg(path, outputs)
        raws = [_read(target) for target in targets]
        found = sound_grids(_read(Path(tmp, "sound.pcm")))
    for skip, raw in zip(QUERY_SHIFTS, raws, strict=True):
        shifted = audio_features(np.frombuffer(raw, "<u4", len(raw) // 4))
        shift_ms = round(skip / 11025 * 1000)
        offsets = tuple(o + shift_ms for o in shifted.offsets)
        if len(shifted):
            found.append(FeatureSet("audio", shifted.simprints, offsets, shifted.sizes))
    return found
