"""The ffmpeg binary shipped with imageio-ffmpeg, run once per file with streamed progress.

PyAV (the `av` wheel) lacks the two pieces the reference toolchain needs: the MPEG-7
`signature` filter and the `chromaprint` muxer. imageio-ffmpeg's static build has both, so all
decoding for Audio- and Video-Codes happens in one ffmpeg child process per file.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from registry.errors import InputError, UnsupportedMedia

__all__ = ["Progress", "ffmpeg_exe", "filter_path", "run_ffmpeg"]

Progress = Callable[[float, float | None], None]
"""Called with the media time (seconds) decoded so far and the total duration, if known."""

_STDERR_KEEP = 4096  # bytes of ffmpeg's error output kept for the one-line message


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable (ISCC_FFMPEG overrides imageio-ffmpeg's binary)."""
    override = os.environ.get("ISCC_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def filter_path(path: Path) -> str:
    """A path as a filter option value: ffmpeg's filter syntax gives ':' '\\' and quotes meaning."""
    text = path.as_posix()
    for char in ("\\", "'", ":", ",", ";", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


# ffmpeg's words for the usual broken inputs, and what they mean to the owner of the file.
_PLAIN_REASONS = (
    ("end of file", "it ends before any audio or video data: empty or cut short"),
    ("moov atom not found", "it is cut short: its index (the MP4 moov atom) is missing"),
    ("invalid data found", "its bytes are not audio or video that can be decoded"),
    ("does not contain any stream", "it holds no audio or video stream"),
    ("output file is empty", "it has no frames or samples to decode"),
    ("could not find codec parameters", "its streams have no frames, or an unknown codec"),
)


def plain_reason(message: str) -> str:
    """ffmpeg's message for a file it cannot decode, in the file owner's terms where known."""
    lowered = message.lower()
    return next((plain for phrase, plain in _PLAIN_REASONS if phrase in lowered), message)


def _last_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return plain_reason(lines[-1]) if lines else "ffmpeg failed"


def run_ffmpeg(
    path: Path,
    outputs: Sequence[str],
    progress: Progress | None = None,
    duration: float | None = None,
) -> None:
    """Decode `path` once through every output chain in `outputs` (ffmpeg arguments).

    Progress comes from ffmpeg's `-progress` key=value stream on stdout; errors go to a
    temporary file so neither pipe can fill up and block ffmpeg on long or broken inputs.
    """
    cmd = [
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-i",
        os.fspath(path),
        *outputs,
    ]
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        except OSError as exc:
            raise UnsupportedMedia(f"cannot run ffmpeg ({exc.strerror or exc})") from None
        assert proc.stdout is not None
        with proc:
            for raw in proc.stdout:
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                if progress and key == "out_time_us" and value.isdigit():
                    progress(int(value) / 1_000_000, duration)
        if proc.returncode != 0:
            errors.seek(0, os.SEEK_END)
            errors.seek(max(0, errors.tell() - _STDERR_KEEP))
            reason = _last_error(errors.read())
            raise InputError(f"cannot decode {path.name}: {reason}")
