"""The ABI and bytecode shipped in the package equal a fresh compile of contracts/."""

import json
import os
import subprocess

import pytest

from registry.chain.artifact import CONTRACT_NAME, artifact
from registry.config import PROJECT_ROOT


def test_shipped_artifact_matches_fresh_compile() -> None:
    bin_dir = PROJECT_ROOT / "node_modules" / ".bin"
    if not (bin_dir / "hardhat").exists():
        pytest.fail("Hardhat is not installed: run scripts/setup.sh")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        ["npx", "--no-install", "hardhat", "compile"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    path = (
        PROJECT_ROOT / "artifacts" / "contracts" / f"{CONTRACT_NAME}.sol" / f"{CONTRACT_NAME}.json"
    )
    fresh = json.loads(path.read_text())
    shipped = artifact()
    assert shipped["abi"] == fresh["abi"], "ABI is stale: run scripts/export_contracts.py"
    assert shipped["bytecode"] == fresh["bytecode"], (
        "bytecode is stale: run scripts/export_contracts.py"
    )
