"""`search` and `match` as a user runs them, on the local index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from registry.chain.deployment import Deployment

CLI = str(Path(sys.executable).parent / "iscc-registry")


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home)}
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def _picture(path: Path, size: tuple[int, int], fmt: str) -> Path:
    image = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(image)
    for i in range(10):
        draw.rectangle((i * 30, i * 20, i * 30 + 90, i * 20 + 60), fill=(25 * i, 80, 200 - 15 * i))
    image.resize(size).save(path, fmt)
    return path


@pytest.mark.chain
def test_match_finds_a_declared_picture_from_a_copy(
    home: Path, tmp_path: Path, deployment: Deployment
) -> None:
    deployment.save(home / "deployment.json")
    original = _picture(tmp_path / "blocks.png", (400, 300), "PNG")
    assert run(home, "keys", "new", "erin").returncode == 0
    declared = run(home, "declare", str(original), "--key", "erin", "--json")
    assert declared.returncode == 0, declared.stderr
    iscc_id = json.loads(declared.stdout)["iscc_id"]
    assert run(home, "index").returncode == 0

    copy = _picture(tmp_path / "copy.jpg", (200, 150), "JPEG")
    found = run(home, "match", str(copy), "--json")
    assert found.returncode == 0, found.stderr
    body = json.loads(found.stdout)
    assert body["exact"] == []
    assert body["similar"]["matches"][0]["declaration"]["iscc_id"] == iscc_id

    code = json.loads(run(home, "gen", str(original), "--json").stdout)["iscc"]
    searched = run(home, "search", code)
    assert searched.returncode == 0 and iscc_id in searched.stdout
    assert "score 1.000" in searched.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("search", "ISCC:NOPE"), "not an ISCC-CODE"),
        (("search", "ISCC:EEA4GQZQTY6J5DTH", "--threshold", "99"), "threshold"),
        (("match", "/no/such/file.png"), "no index store"),
        (
            ("conflicts", "ISCC:EEA4GQZQTY6J5DTH"),
            "expected an ISCC-ID (ISCC:MAI...) or a declarer address (0x + 40 hex digits)",
        ),
        (("conflicts", "--status", "closed"), "status must be open, resolved or all"),
        (
            ("conflicts", "0x12"),
            "cannot resolve '0x12': expected an ISCC-ID (ISCC:MAI...) or a declarer address",
        ),
        (("search", "garbage"), "an ISCC is ISCC: followed by a code of the letters A-Z"),
    ],
)
def test_bad_input_is_one_line(home: Path, args: tuple[str, ...], fragment: str) -> None:
    proc = run(home, *args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert fragment in proc.stderr
    # Only the accepted forms are named, and no decoder's own words.
    if args[0] == "conflicts":
        assert "datahash" not in proc.stderr
    assert "trailing bits" not in proc.stderr
    # Read-only commands given bad input leave no store behind.
    assert not (home / "registry.db").exists()
