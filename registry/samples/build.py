"""Builders of the bundled sample files, so each of them can be regenerated from code."""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["DATASET_CSV", "build_all", "dataset_csv_gz", "sunrise_image", "sunrise_png"]

HERE = Path(__file__).parent

DATASET_CSV = "station,day,temperature_c,rain_mm\n" + "".join(
    f"{station},2024-03-{day:02d},{round(8 + 6 * math.sin(day / 4 + i), 1)},"
    f"{round(max(0.0, 3 * math.cos(day / 3 + 2 * i)), 1)}\n"
    for i, station in enumerate(["harbour", "hill", "meadow"])
    for day in range(1, 31)
)
"""Made-up daily weather readings of three stations."""


def sunrise_image(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A sun rising over striped hills: sky gradient, sun disc with rays, three hill bands."""
    width, height = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(height):
        t = y / (height - 1)
        draw.line(
            [(0, y), (width, y)], fill=(int(40 + 215 * t), int(60 + 120 * t), int(150 - 90 * t))
        )
    cx, cy, r = width // 2, int(height * 0.62), height // 5
    for k in range(12):
        angle = math.pi * k / 11
        x2, y2 = cx + math.cos(angle) * r * 2.2, cy - math.sin(angle) * r * 2.2
        draw.line([(cx, cy), (x2, y2)], fill=(255, 220, 120), width=2)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 200, 40))
    colours = [(40, 110, 60), (30, 90, 50), (20, 70, 40)]
    for band, colour in enumerate(colours):
        base = int(height * (0.70 + 0.1 * band))
        points = [
            (x, base - 8 * math.sin(x / (13 + 5 * band) + band)) for x in range(0, width + 1, 4)
        ]
        draw.polygon([(0, height), *points, (width, height)], fill=colour)
    return img


def sunrise_png() -> bytes:
    buf = io.BytesIO()
    sunrise_image().save(buf, "PNG", optimize=True)
    return buf.getvalue()


def dataset_csv_gz() -> bytes:
    """The dataset gzipped with a fixed timestamp (gzip: no content code, Data+Instance only)."""
    return gzip.compress(DATASET_CSV.encode("utf-8"), compresslevel=9, mtime=0)


def build_all(folder: Path = HERE) -> list[Path]:
    """Write the generated samples (the text sample is hand-written and kept as is)."""
    written = []
    for name, data in [("sunrise.png", sunrise_png()), ("dataset.csv.gz", dataset_csv_gz())]:
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build_all():
        print(path, path.stat().st_size)
