"""The ABI and bytecode shipped in the package equal a fresh compile of contracts/."""

import json
import subprocess

import pytest

from registry.chain.artifact import CONTRACT_NAME, artifact
from registry.config import PROJECT_ROOT


def test_shipped_artifact_matches_fresh_compile() -> None:
    """Compiled by package.json's own `compile` script, so that script keeps working too."""
    bin_dir = PROJECT_ROOT / "node_modules" / ".bin"
    if not (bin_dir / "hardhat").exists():
        pytest.fail("Hardhat is not installed: run scripts/setup.sh")
    # npm puts node_modules/.bin first on the script's PATH: Hardhat runs under the Node 22
    # installed there, whatever Node runs npm itself.
    compiled = subprocess.run(
        ["npm", "run", "--silent", "compile"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    path = (
        PROJECT_ROOT / "artifacts" / "contracts" / f"{CONTRACT_NAME}.sol" / f"{CONTRACT_NAME}.json"
    )
    fresh = json.loads(path.read_text())
    shipped = artifact()
    assert shipped["abi"] == fresh["abi"], "ABI is stale: run scripts/export_contracts.py"
    assert shipped["bytecode"] == fresh["bytecode"], (
        "bytecode is stale: run scripts/export_contracts.py"
    )
