"""A second audio feature with fine time resolution, for excerpts too short for Chromaprint.

Chromaprint emits its first item only after about 2.6 s of sound, so an audio excerpt of 3 s
has two or three items: too few to find, let alone place. This feature follows Haitsma and
Kalker's robust audio hash ("A Highly Robust Audio Fingerprinting System", ISMIR 2002): the
sound, resampled to 5512 Hz mono, is cut into frames of 2048 samples (0.37 s) every 64 samples
(11.6 ms); each frame's energy in 33 logarithmic bands from 300 to 2000 Hz gives 32 bits, one
per pair of neighbouring bands, set where the energy difference between the two bands grew
since the previous frame. Lossy re-encoding keeps most of these bits (they compare energies,
not levels), and the heavily overlapping frames make the bits change slowly with a shift of
the frame grid, so an excerpt cut anywhere lines up within half a hop.

A segment ("sound" kind) is the 32 bits of one frame followed by those of the frame 8 hops
(93 ms) later: 64 bits. A declared work keeps one segment every 16 frames (186 ms); an excerpt
is looked up on 8 grids, every second frame of the 16, so one of them lies within a hop of the
work's. Frames without sound (energy below `SILENCE`) give no segment: silence would match the
silence of every other work.

This is not part of any ISCC unit: the Audio-Code stays Chromaprint's, as iscc-sdk computes it.
Hand-written with numpy, because no maintained library computes this hash; the FFT is numpy's.
"""

from __future__ import annotations

import numpy as np

from registry.iscc.granular import FeatureSet

__all__ = [
    "SAMPLE_RATE",
    "SEGMENT_STEP",
    "pcm_output",
    "sound_features",
    "sound_grids",
]

SAMPLE_RATE = 5512
FRAME = 2048
HOP = 64
PAIR = 8
"""Hops between the two frames a segment joins."""
SEGMENT_STEP = 16
"""Hops between two declared segments."""
QUERY_PHASES = tuple(range(0, SEGMENT_STEP, 2))
"""Grids an excerpt is looked up on: every second hop of a declared step."""
SILENCE = 1e-6
"""Mean power (of full scale 1.0) below which a frame counts as silent."""
_BANDS = 33
_CHUNK = 2048  # frames transformed at once: bounds memory for long works

_edges = np.geomspace(300, 2000, _BANDS + 1)
_bins = np.fft.rfftfreq(FRAME, 1 / SAMPLE_RATE)
_band_of = np.searchsorted(_edges, _bins, side="right") - 1
# Which FFT bins sum into which band, as a matrix: one product bands a whole block.
_BAND_MATRIX = np.zeros((len(_bins), _BANDS), dtype=np.float32)
for _bin, _band in enumerate(_band_of):
    if 0 <= _band < _BANDS:
        _BAND_MATRIX[_bin, _band] = 1.0
_WINDOW = np.hanning(FRAME).astype(np.float32)
_WEIGHTS = (1 << np.arange(31, -1, -1, dtype=np.uint64)).astype(np.uint64)


def pcm_output(target: str) -> list[str]:
    """ffmpeg output arguments writing the best audio stream as 5512 Hz mono s16 samples."""
    chain = f"aresample={SAMPLE_RATE}:ochl=mono"
    return ["-vn", "-sn", "-dn", "-af", chain, "-f", "s16le", "-c:a", "pcm_s16le", target]


def _frame_bits(samples: np.ndarray, phases: tuple[int, ...]) -> dict[int, tuple[int, bool]]:
    """The 32 bits (as an integer) and whether there is sound, of every frame a segment on
    one of these grids needs: frame n's bits compare transform frames n + 1 and n."""
    count = (len(samples) - FRAME) // HOP + 1
    needed = sorted(
        {
            n + k
            for phase in phases
            for start in range(phase, max(count - PAIR - 1, 0), SEGMENT_STEP)
            for n in (start, start + PAIR)
            for k in (0, 1)
        }
    )
    if not needed:
        return {}
    frames = np.lib.stride_tricks.sliding_window_view(samples, FRAME)[::HOP]
    energies: dict[int, np.ndarray] = {}
    power: dict[int, float] = {}
    for start in range(0, len(needed), _CHUNK):
        picked = needed[start : start + _CHUNK]
        block = frames[picked] * _WINDOW
        spectrum = np.abs(np.fft.rfft(block, axis=1)).astype(np.float32) ** 2
        banded = spectrum @ _BAND_MATRIX
        loud = (block.astype(np.float64) ** 2).mean(axis=1)
        for row, frame in enumerate(picked):
            energies[frame], power[frame] = banded[row].astype(np.float64), float(loud[row])
    found = {}
    for n in needed:
        if n + 1 not in energies or n not in energies:
            continue
        now, before = energies[n + 1], energies[n]
        bits = ((now[:-1] - now[1:]) - (before[:-1] - before[1:])) > 0
        value = int((bits.astype(np.uint64) * _WEIGHTS).sum(dtype=np.uint64))
        found[n] = (value, power[n] >= SILENCE and power[n + 1] >= SILENCE)
    return found


def _segments(bits: dict[int, tuple[int, bool]], phase: int) -> FeatureSet:
    """Segments every SEGMENT_STEP frames from `phase`; offsets in ms from the first sample."""
    simprints, offsets = [], []
    for n in sorted(k for k in bits if k % SEGMENT_STEP == phase % SEGMENT_STEP and k >= phase):
        first, second = bits.get(n), bits.get(n + PAIR)
        if first is None or second is None or not (first[1] and second[1]):
            continue
        simprints.append((first[0] << 32) | second[0])
        # The bits belong to transform frame n + 1, which they compare with frame n.
        offsets.append(round((n + 1) * HOP * 1000 / SAMPLE_RATE))
    size = round((SEGMENT_STEP * HOP) * 1000 / SAMPLE_RATE)
    return FeatureSet("sound", tuple(simprints), tuple(offsets), (size,) * len(offsets))


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2", len(pcm) // 2).astype(np.float32) / 32768.0


def sound_features(pcm: bytes) -> FeatureSet:
    """The "sound" segments a declared work keeps, from its s16 samples at 5512 Hz."""
    return _segments(_frame_bits(_samples(pcm), (0,)), 0)


def sound_grids(pcm: bytes) -> list[FeatureSet]:
    """An excerpt's "sound" segments on every query grid (QUERY_PHASES), non-empty ones."""
    bits = _frame_bits(_samples(pcm), QUERY_PHASES)
    grids = [_segments(bits, phase) for phase in QUERY_PHASES]
    return [grid for grid in grids if len(grid)]
