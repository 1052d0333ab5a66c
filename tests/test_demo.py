"""The README's main job: `iscc-registry demo` runs the whole flow and says what happened, and
scripts/demo.sh shows nothing else the second time."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from registry.config import PROJECT_ROOT

CLI = str(Path(sys.executable).parent / "iscc-registry")


@pytest.mark.chain
def test_demo_runs_end_to_end() -> None:
    proc = subprocess.run([CLI, "demo"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "refused: the registry rejects it: NonceAlreadyUsed" in out
    assert "3 declarations stored" in out
    assert "indexing again stores 0 more" in out
    declarations, licences = out.split("==> Licensing")
    assert declarations.count(" yes ") == 9 and " NO " not in declarations
    # The licence ledger: the exclusive licence's conflict found, its case opened, and closed
    # by itself once the overlapping grant is terminated.
    found, ended = licences.split("bob terminates his grant")
    assert "in conflict: exclusive_overlap" in found
    assert re.search(r"exclusive_overlap\s*│\s*open", found)
    assert re.search(r"exclusive_overlap\s*│\s*resolved", ended)
    assert re.search(r"public .* terminated", ended)
    assert "was terminated by" in ended
    assert "devnet stopped" in out


def test_setup_again_prints_nothing() -> None:
    """scripts/demo.sh and scripts/test.sh run scripts/setup.sh first: once everything is in
    place, a rerun must not bury the demo's own output under install chatter."""
    setup = [str(PROJECT_ROOT / "scripts" / "setup.sh")]
    first = subprocess.run(setup, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    again = subprocess.run(setup, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout, again.stderr) == ("", "")
