"""What an audio or video file holds: streams, duration, size, tags (PyAV, no decoding)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from registry.errors import InputError
from registry.iscc.ffmpeg import plain_reason

__all__ = ["MediaInfo", "probe"]


@dataclass(frozen=True)
class MediaInfo:
    """Container facts of a media file; tag keys are lower case, first occurrence wins."""

    duration: float | None
    """Longest of the container's and the streams' durations, in seconds."""
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    """The first video stream's real base frame rate (ffprobe's r_frame_rate), 3 decimals."""
    channels: int | None = None
    sample_rate: int | None = None
    format_tags: dict[str, str] = field(default_factory=dict)
    """Container-level metadata (what ffmpeg's ffmetadata output shows)."""
    audio_tags: dict[str, str] = field(default_factory=dict)
    """Container-level metadata, then the first audio stream's (Ogg keeps comments there)."""

    def facts(self) -> dict[str, Any]:
        """The facts worth reporting, without the missing ones."""
        found = {
            "duration": round(self.duration, 3) if self.duration is not None else None,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "channels": self.channels,
            "sample_rate": self.sample_rate,
        }
        return {key: value for key, value in found.items() if value is not None}


def _lower(tags: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tags.items():
        out.setdefault(key.lower(), value)
    return out


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def probe(path: Path) -> MediaInfo:
    """Open the container and read its header; raises InputError if it is not media we can read."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            video = next((s for s in container.streams.video), None)
            audio = next((s for s in container.streams.audio), None)
            durations = [
                d
                for d in (
                    container.duration / av.time_base if container.duration else None,
                    *(_seconds(s.duration, s.time_base) for s in container.streams.video),
                )
                if d is not None
            ]
            fps = None
            if video is not None and video.base_rate:
                fps = round(float(video.base_rate), 3)
            format_tags = _lower(dict(container.metadata))
            audio_tags = dict(format_tags)
            if audio is not None:
                for key, value in _lower(dict(audio.metadata)).items():
                    audio_tags.setdefault(key, value)
            return MediaInfo(
                duration=max(durations) if durations else None,
                has_video=video is not None,
                has_audio=audio is not None,
                width=video.codec_context.width if video is not None else None,
                height=video.codec_context.height if video is not None else None,
                fps=fps,
                channels=audio.codec_context.channels if audio is not None else None,
                sample_rate=audio.codec_context.sample_rate if audio is not None else None,
                format_tags=format_tags,
                audio_tags=audio_tags,
            )
    except av.error.FFmpegError as exc:
        reason = plain_reason(str(exc.strerror))
        raise InputError(f"not a readable media file: {path.name} ({reason})") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable media file: {path.name} ({exc})") from None
