"""Long synthetic works for snippet matching, and excerpts of them cut and re-encoded by ffmpeg.

Each seed gives a visually and audibly distinct work that changes over time: video frames are
made with numpy (a drifting random texture per scene, moving shapes in random colours), audio is
a random note sequence with harmonics. lavfi test sources all look alike and would let unrelated
works match each other, which would hide false positives.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from registry.iscc.ffmpeg import ffmpeg_exe
from registry.iscc.granular import FeatureSet
from registry.iscc.sound import SAMPLE_RATE, sound_features

__all__ = [
    "cut_clip",
    "make_audio_work",
    "make_loop_work",
    "make_text_work",
    "make_video_work",
    "make_zoom_work",
    "melody_sound",
]

WIDTH, HEIGHT, FPS = 320, 240, 25
AUDIO_RATE = 22050
_SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
# One shared vocabulary of 3,000 made-up words: works share words, as real texts do, but not
# long runs of them.
_WORDS = [
    "".join(np.random.default_rng(word).choice(_SYLLABLES, size=1 + word % 3))
    for word in range(3000)
]


def _texture(rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour field (upsampled noise), as float32 HxWx3."""
    coarse = rng.random((HEIGHT // 20 + 2, WIDTH // 20 + 2, 3)).astype(np.float32)
    field = np.repeat(np.repeat(coarse, 20, axis=0), 20, axis=1)
    # A box blur over the blocks keeps the field smooth, so re-encoding preserves it.
    for axis in (0, 1):
        field = (field + np.roll(field, 7, axis) + np.roll(field, -7, axis)) / 3
    return field[:HEIGHT, :WIDTH] * 255


def _frames(seed: int, seconds: float):
    """Frames of a work: scenes of 2-6 s, each a texture drifting under moving shapes."""
    rng = np.random.default_rng(seed)
    total = int(seconds * FPS)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    index = 0
    while index < total:
        scene = int(rng.uniform(2, 6) * FPS)
        texture = _texture(rng)
        drift = rng.uniform(-2, 2, size=2)
        shapes = [
            (
                rng.uniform(0, WIDTH),
                rng.uniform(0, HEIGHT),
                rng.uniform(-4, 4),
                rng.uniform(-3, 3),
                rng.uniform(12, 45),
                rng.integers(0, 256, size=3).astype(np.float32),
                bool(rng.integers(0, 2)),
            )
            for _ in range(int(rng.integers(3, 7)))
        ]
        for step in range(min(scene, total - index)):
            dx, dy = (drift * step).astype(int)
            frame = np.roll(texture, (dy, dx), axis=(0, 1)).copy()
            for x0, y0, vx, vy, size, colour, round_shape in shapes:
                cx, cy = (x0 + vx * step) % WIDTH, (y0 + vy * step) % HEIGHT
                if round_shape:
                    mask = (xx - cx) ** 2 + (yy - cy) ** 2 < size**2
                else:
                    mask = (abs(xx - cx) < size) & (abs(yy - cy) < size * 0.6)
                frame[mask] = colour
            yield frame.astype(np.uint8)
            index += 1


def _melody(seed: int, seconds: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """Mono int16 samples at `rate`: random notes (0.1-0.5 s) with harmonics and a decay, some
    noise. Harmonics above the rate's Nyquist frequency are left out, as a resampler's filter
    would; at AUDIO_RATE none is that high."""
    rng = np.random.default_rng(seed + 1_000_003)
    total = int(seconds * rate)
    out = np.zeros(total, dtype=np.float32)
    pos = 0
    while pos < total:
        length = min(int(rng.uniform(0.1, 0.5) * rate), total - pos)
        t = np.arange(length, dtype=np.float32) / rate
        base = 110 * 2 ** (rng.integers(0, 48) / 12)
        phases = rng.uniform(0, 6.3, size=4)
        note = sum(
            np.sin(2 * np.pi * base * k * t + phases[k - 1]) / k
            for k in range(1, 5)
            if base * k < rate / 2
        )
        out[pos : pos + length] = note * np.exp(-3 * t) * rng.uniform(0.3, 1.0)
        pos += length
    out += rng.normal(0, 0.02, total).astype(np.float32)
    return (out / np.abs(out).max() * 20000).astype("<i2")


def melody_sound(seed: int, seconds: float) -> FeatureSet:
    """The "sound" segments of a seeded melody, synthesized straight at the sound feature's
    sample rate and never encoded: in the tens of milliseconds a work takes, benchmark
    distractors get real sound features, not random bits."""
    return sound_features(_melody(seed, seconds, SAMPLE_RATE).tobytes())


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(AUDIO_RATE)
        sink.writeframes(samples.tobytes())
    return path


def _zoom_frames(seed: int, seconds: float):
    """Frames of a slow zoom and pan over still pictures (one per 20 s): a crop window that
    shrinks from the whole picture to 60 % of it while drifting sideways, as in a documentary
    made from photographs. Neighbouring frames differ very little."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    total = int(seconds * FPS)
    per_picture = 20 * FPS
    picture = None
    for index in range(total):
        if index % per_picture == 0:
            big = np.repeat(np.repeat(_texture(rng), 2, axis=0), 2, axis=1)
            yy, xx = np.mgrid[0 : 2 * HEIGHT, 0 : 2 * WIDTH]
            for _ in range(8):  # objects in the photograph
                cx, cy = rng.uniform(0, 2 * WIDTH), rng.uniform(0, 2 * HEIGHT)
                size = rng.uniform(20, 90)
                big[(xx - cx) ** 2 + (yy - cy) ** 2 < size**2] = rng.integers(0, 256, size=3)
            picture = Image.fromarray(big.astype(np.uint8))
            direction = rng.choice([-1, 1])
        assert picture is not None
        progress = (index % per_picture) / per_picture
        scale = 1 - 0.4 * progress
        w, h = 2 * WIDTH * scale, 2 * HEIGHT * scale
        x0 = (2 * WIDTH - w) * (0.5 + direction * 0.4 * (progress - 0.5))
        y0 = (2 * HEIGHT - h) / 2
        box = (x0, y0, x0 + w, y0 + h)
        frame = picture.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR, box=box)
        yield np.asarray(frame, dtype=np.uint8)


def _encode(path: Path, frames, soundtrack: Path | None) -> Path:
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "rawvideo"]
    cmd += ["-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-"]
    if soundtrack is not None:
        cmd += ["-i", str(soundtrack), "-c:a", "aac", "-b:a", "128k", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    proc = subprocess.Popen([*cmd, str(path)], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg could not encode {path}")
    return path


def make_video_work(
    path: Path, seed: int, seconds: float, sound: bool = True, soundtrack: Path | None = None
) -> Path:
    """An H.264 MP4 of a seeded work, with an AAC soundtrack: its own melody unless `sound` is
    False, or the given recording (a film that reuses a declared recording)."""
    with tempfile.TemporaryDirectory(prefix="work-") as tmp:
        if soundtrack is None and sound:
            soundtrack = _write_wav(Path(tmp, "a.wav"), _melody(seed, seconds))
        return _encode(path, _frames(seed, seconds), soundtrack)


def make_zoom_work(path: Path, seed: int, seconds: float) -> Path:
    """A film of slow zooms and pans over still pictures (`_zoom_frames`), with sound."""
    with tempfile.TemporaryDirectory(prefix="work-") as tmp:
        soundtrack = _write_wav(Path(tmp, "a.wav"), _melody(seed, seconds))
        return _encode(path, _zoom_frames(seed, seconds), soundtrack)


def make_loop_work(path: Path, seed: int, seconds: float, bar: float = 2.0) -> Path:
    """Repetitive music: one bar of a seeded melody played over and over (as an MP3), with only
    the faint noise of a recording telling the repetitions apart."""
    phrase = _melody(seed, bar).astype(np.float32)
    repeats = int(np.ceil(seconds / bar))
    rng = np.random.default_rng(seed + 17)
    loop = np.tile(phrase, repeats)[: int(seconds * AUDIO_RATE)]
    loop += rng.normal(0, 100, len(loop)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="work-") as tmp:
        wav = _write_wav(Path(tmp, "a.wav"), np.clip(loop, -32000, 32000).astype(np.int16))
        cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(wav)]
        subprocess.run([*cmd, "-c:a", "libmp3lame", "-b:a", "160k", str(path)], check=True)
    return path


def make_audio_work(path: Path, seed: int, seconds: float) -> Path:
    """An MP3 of a seeded random melody."""
    with tempfile.TemporaryDirectory(prefix="work-") as tmp:
        wav = _write_wav(Path(tmp, "a.wav"), _melody(seed, seconds))
        cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(wav)]
        subprocess.run([*cmd, "-c:a", "libmp3lame", "-b:a", "160k", str(path)], check=True)
    return path


def make_text_work(seed: int, words: int) -> str:
    """Seeded prose: random words in sentences and paragraphs."""
    rng = np.random.default_rng(seed + 7_000_001)
    picked = rng.choice(len(_WORDS), size=words)
    out, sentence = [], []
    for position, word in enumerate(picked, start=1):
        sentence.append(_WORDS[word])
        if rng.random() < 0.1 or position == words:
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
            if rng.random() < 0.15:
                out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n")


def cut_clip(source: Path, target: Path, start: float, seconds: float) -> Path:
    """An excerpt from `start`, re-encoded smaller: half the width, low bitrates."""
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-ss", f"{start:.3f}"]
    cmd += ["-i", str(source), "-t", f"{seconds:.3f}"]
    if target.suffix in (".mp4", ".mkv"):
        cmd += ["-vf", "scale=160:-2", "-c:v", "libx264", "-b:v", "150k", "-c:a", "aac"]
        cmd += ["-b:a", "64k"]
    else:
        cmd += ["-c:a", "libmp3lame", "-b:a", "64k"]
    subprocess.run([*cmd, str(target)], check=True)
    return target
