"""Acceptance of snippet matching: long works declared on the devnet and indexed for real, then
excerpts cut at random offsets and re-encoded smaller are traced to their work and offset, by
the CLI and by the API."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from works import cut_clip, make_audio_work, make_text_work, make_video_work

from registry.api import create_app
from registry.chain.deployment import Deployment
from registry.config import Settings

pytestmark = pytest.mark.chain

CLI = str(Path(sys.executable).parent / "iscc-registry")
SECONDS = 20


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home)}
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def _match(home: Path, clip: Path) -> dict[str, Any]:
    found = run(home, "match", str(clip), "--json")
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def _place(answer: dict[str, Any], kind: str) -> tuple[str, int]:
    """ISCC-ID of the best snippet match and where it puts the excerpt for one kind."""
    best = answer["snippets"][0]
    (place,) = [k for k in best["kinds"] if k["kind"] == kind]
    return best["declaration"]["iscc_id"], place["offset"]


def _declare_works(home: Path, tmp_path: Path, deployment: Deployment) -> dict[str, Any]:
    deployment.save(home / "deployment.json")
    text = make_text_work(33, 2500)
    works = {
        "film": make_video_work(tmp_path / "film.mp4", 31, SECONDS),
        "song": make_audio_work(tmp_path / "song.mp3", 32, SECONDS),
        "book": tmp_path / "book.txt",
    }
    works["book"].write_text(text)
    assert run(home, "keys", "new", "maker").returncode == 0
    ids = {}
    for name, path in works.items():
        proc = run(home, "declare", str(path), "--key", "maker", "--json")
        assert proc.returncode == 0, proc.stderr
        ids[name] = json.loads(proc.stdout)["iscc_id"]
    assert run(home, "index").returncode == 0
    return {"works": works, "ids": ids, "text": text}


def test_excerpts_are_traced_to_their_work_and_offset(
    home: Path, tmp_path: Path, deployment: Deployment
) -> None:
    declared = _declare_works(home, tmp_path, deployment)
    works, ids = declared["works"], declared["ids"]
    rng = random.Random(7)
    for length in (2, 3, 5):
        start = rng.uniform(0.5, SECONDS - length - 0.5)
        clip = cut_clip(works["film"], tmp_path / f"film-{length}.mp4", start, length)
        answer = _match(home, clip)
        assert answer["exact"] == []
        iscc_id, offset = _place(answer, "video")
        assert iscc_id == ids["film"]
        assert abs(offset / 1000 - start) <= 1.0, (length, start, offset)

    start = rng.uniform(0.5, SECONDS - 5.5)
    clip = cut_clip(works["song"], tmp_path / "song-5.mp3", start, 5)
    iscc_id, offset = _place(_match(home, clip), "audio")
    assert iscc_id == ids["song"] and abs(offset / 1000 - start) <= 1.0

    # Two seconds of sound are too little for Chromaprint, so for an ISCC: `gen` refuses them
    # in one line, and `match` finds them by their finer sound segments, saying why it has no
    # ISCC to show.
    start = rng.uniform(0.5, SECONDS - 2.5)
    short = cut_clip(works["song"], tmp_path / "song-2.mp3", start, 2)
    refused = run(home, "gen", str(short))
    assert refused.returncode == 1 and "too short" in refused.stderr
    assert "Traceback" not in refused.stderr
    answer = _match(home, short)
    assert answer["iscc"]["iscc"] is None and "too short" in answer["iscc"]["note"]
    iscc_id, offset = _place(answer, "sound")
    assert iscc_id == ids["song"] and abs(offset / 1000 - start) <= 1.0
    shown = run(home, "match", str(short))
    assert shown.returncode == 0 and "no ISCC" in shown.stdout and ids["song"] in shown.stdout

    text = declared["text"]
    start = rng.randrange(1000, len(text) - 2500)
    excerpt = tmp_path / "excerpt.txt"
    excerpt.write_text(textwrap.fill(text[start : start + 2000], 64))
    iscc_id, offset = _place(_match(home, excerpt), "text")
    spaced_start = len(" ".join((text[:start] + "x").split())) - 1
    assert iscc_id == ids["book"] and abs(offset - spaced_start) <= 2

    # A work nobody declared is not an excerpt of anything.
    other = make_video_work(tmp_path / "other.mp4", 34, 6)
    assert _match(home, other)["snippets"] == []
    shown = run(home, "match", str(clip))
    assert shown.returncode == 0 and "audio: at" in shown.stdout

    # The API and the upload page give the same answer.
    clip = cut_clip(works["film"], tmp_path / "clip.mp4", 11.3, 3)
    with TestClient(create_app(Settings(home=home))) as client:
        response = client.post(
            "/v1/match", params={"filename": clip.name}, content=clip.read_bytes()
        )
        assert response.status_code == 200, response.text
        best = response.json()["snippets"][0]
        assert best["declaration"]["iscc_id"] == ids["film"]
        video = next(k for k in best["kinds"] if k["kind"] == "video")
        assert abs(video["offset"] - 11_300) <= 1000 and video["unit"] == "ms"
        page = client.post("/upload", params={"filename": clip.name}, content=clip.read_bytes())
        assert page.status_code == 200
        # The page says it is an excerpt, names the film and places the clip in it on its card.
        assert "excerpt of a declared work" in page.text and ids["film"] in page.text
        segments = page.text.split('<ul class="segments">')[1].split("</ul>")[0]
        assert "Video: this file is" in segments and "of the declared work" in segments
