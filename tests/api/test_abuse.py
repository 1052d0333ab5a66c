"""Hostile clients (issue 18): every finding reproduced against the service as it runs."""

from __future__ import annotations

import http.client
import json
import os
import socket
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

CLI = str(Path(sys.executable).parent / "iscc-registry")

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


# --- a real `iscc-registry serve` process --------------------------------------------------


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/health", timeout=30) as response:
            return json.loads(response.read())


def _serve(home: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    port = free_port()
    environ = {**os.environ, "ISCC_REGISTRY_HOME": str(home), **(env or {})}
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port), *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(proc, port)
    for _ in range(300):
        try:
            served.health()
            return served
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.1)
    proc.kill()
    pytest.fail("serve did not answer /health")


@pytest.fixture
def served(home: Path, deployment: Deployment) -> Iterator[Served]:
    """`iscc-registry serve` with its indexer and relayer on the devnet."""
    deployment.save(home / "deployment.json")
    served = _serve(home)
    yield served
    if served.proc.poll() is None:
        served.proc.kill()
        served.proc.wait()


# --- finding 1: one deep JSON body killed the process ----------------------------------------

ENTRY_MODULES = [
    "registry.cli",
    "registry.api.app",
    "registry.index.follower",
    "registry.index.logreader",
    "registry.chain.relayer",
    "eth_account",
    "web3",
    "py_ecc",
]


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_no_entry_module_raises_the_recursion_limit(module: str) -> None:
    # A fresh interpreter per module: once imported, a module cannot show its import's effect.
    # eth_account and web3 are imported after `registry` (which every process of the project
    # imports first, the log reader workers too, as `python -m registry.index.logreader`).
    code = (
        "import sys; before = sys.getrecursionlimit(); import registry; "
        f"import {module}; print(before, sys.getrecursionlimit())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out[0] == out[1], f"{module} moved the recursion limit from {out[0]} to {out[1]}"


def test_recursion_limit_is_lowered_when_py_ecc_came_first() -> None:
    code = (
        "import sys; before = sys.getrecursionlimit(); import eth_account, registry; "
        "print(before, sys.getrecursionlimit())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out[0] == out[1]


@pytest.mark.chain
@pytest.mark.parametrize("path", ["/v1/relay/declarations", "/v1/metadata"])
def test_deeply_nested_json_is_refused_and_the_server_lives(served: Served, path: str) -> None:
    status, _headers, body = served.request(
        "POST", path, DEEP_JSON, {"content-type": "application/json"}
    )
    assert 400 <= status < 500, body[:200]
    assert "message" in json.loads(body)
    assert served.proc.poll() is None
    assert served.health()["status"] in ("ok", "degraded")
