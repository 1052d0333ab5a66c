"""The ABI and bytecode shipped in the package equal a fresh compile of contracts/."""

import json
import subprocess

import pytest

from registry.chain.artifact import CONTRACT_NAME, LICENCES_NAME, artifact, verification_material
from registry.config import PROJECT_ROOT

CONTRACTS = [CONTRACT_NAME, LICENCES_NAME]


@pytest.mark.parametrize("name", CONTRACTS)
def test_shipped_artifact_matches_fresh_compile(name: str) -> None:
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
    path = PROJECT_ROOT / "artifacts" / "contracts" / f"{name}.sol" / f"{name}.json"
    fresh = json.loads(path.read_text())
    shipped = artifact(name)
    assert shipped["abi"] == fresh["abi"], "ABI is stale: run scripts/export_contracts.py"
    assert shipped["bytecode"] == fresh["bytecode"], (
        "bytecode is stale: run scripts/export_contracts.py"
    )


@pytest.mark.parametrize("name", CONTRACTS)
def test_verification_material_compiles_to_the_shipped_bytecode(name: str) -> None:
    """An explorer compiles the shipped standard JSON input; it must give the bytecode we deploy
    and the metadata whose hash that bytecode ends with."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "export_contracts", PROJECT_ROOT / "scripts" / "export_contracts.py"
    )
    assert spec and spec.loader
    export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export)
    material = verification_material(name)
    compiled = export.compile_standard(material["input"])
    source, name = material["fullyQualifiedName"].rsplit(":", 1)
    out = compiled["contracts"][source][name]
    assert "0x" + out["evm"]["bytecode"]["object"] == artifact(name)["bytecode"], (
        "verification material is stale: run scripts/export_contracts.py"
    )
    assert out["metadata"] == material["metadata"]
    compiler = json.loads(out["metadata"])["compiler"]["version"]
    assert material["solcLongVersion"].startswith(compiler)
