"""Test pictures: distinct shapes per seed, so each seed is a different work for the ISCC."""

from __future__ import annotations

from PIL import Image, ImageDraw


def picture(seed: int) -> Image.Image:
    image = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (seed * 37 + i * 53) % 280, (seed * 91 + i * 29) % 200
        draw.ellipse((x, y, x + 40 + i * 3, y + 30 + i * 2), fill=(i * 20 % 255, seed % 255, 90))
    return image
