"""`iscc-registry serve` as a real process: the in-process indexer, `declare --via`, shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.chain.deployment import Deployment
from registry.chain.devnet import free_port

pytestmark = pytest.mark.chain

CLI = str(Path(sys.executable).parent / "iscc-registry")


def _env(home: Path) -> dict[str, str]:
    environ = {**os.environ, "ISCC_REGISTRY_HOME": str(home)}
    environ.pop("ISCC_REGISTRY_KEY_PASSWORD", None)
    return environ


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def served(home: Path, deployment: Deployment) -> Iterator[tuple[str, subprocess.Popen]]:
    deployment.save(home / "deployment.json")
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    # Start-up takes what it takes on a busy machine; the bound only catches a hung server.
    hang_guard = time.monotonic() + 600
    while True:
        try:
            _get(url + "/health")
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
            assert time.monotonic() < hang_guard, "serve never answered"
            time.sleep(0.1)
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_declare_via_service_is_indexed_by_serve(
    home: Path, tmp_path: Path, served: tuple[str, subprocess.Popen]
) -> None:
    url, proc = served
    env = _env(home)
    subprocess.run([CLI, "keys", "new", "carol"], env=env, check=True, capture_output=True)
    work = tmp_path / "letter.txt"
    work.write_text("Dear registry, this letter is mine and I can prove it. " * 12)
    declared = subprocess.run(
        [CLI, "declare", str(work), "--key", "carol", "--via", url, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert declared.returncode == 0, declared.stderr
    receipt = json.loads(declared.stdout)

    # serve runs the indexer in process: the declaration shows up without `index`.
    hang_guard = time.monotonic() + 600
    records: list[Any] = []
    while not records:
        assert proc.poll() is None and time.monotonic() < hang_guard, "serve never indexed it"
        with contextlib.suppress(OSError):
            records = _get(f"{url}/v1/resolve?q={receipt['declarer']}")["records"]
        if not records:
            time.sleep(0.2)
    assert [r["iscc_id"] for r in records] == [receipt["iscc_id"]]

    # Graceful stop: uvicorn finishes requests and the lifespan (indexer, relay), then re-raises
    # the signal, so the exit status is the signal's.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_declare_via_bad_url_is_one_line(
    home: Path, tmp_path: Path, deployment: Deployment
) -> None:
    deployment.save(home / "deployment.json")
    env = _env(home)
    subprocess.run([CLI, "keys", "new", "dave"], env=env, check=True, capture_output=True)
    work = tmp_path / "note.txt"
    work.write_text("nobody is listening " * 20)
    port = free_port()
    proc = subprocess.run(
        [CLI, "declare", str(work), "--key", "dave", "--via", f"http://127.0.0.1:{port}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no registry service"), proc.stderr
