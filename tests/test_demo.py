"""The README's main job: `iscc-registry demo` runs the whole flow and says what happened."""

import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "iscc-registry")


@pytest.mark.chain
def test_demo_runs_end_to_end() -> None:
    proc = subprocess.run([CLI, "demo"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "refused: the registry rejects it: NonceAlreadyUsed" in out
    assert "3 declarations stored" in out
    assert "indexing again stores 0 more" in out
    assert out.count(" yes ") == 9 and " NO " not in out
    assert "devnet stopped" in out
