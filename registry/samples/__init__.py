"""Small sample files bundled for demos: a text, an image and a generic (gzip) data file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE_NAMES", "sample_files"]

SAMPLE_NAMES = ("manifesto.txt", "sunrise.png", "dataset.csv.gz")


def sample_files() -> list[Path]:
    """Paths of the bundled samples: text (Text-Code), image (Image-Code), gzip (Data only)."""
    folder = Path(__file__).parent
    return [folder / name for name in SAMPLE_NAMES]
