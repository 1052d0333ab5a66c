"""Every benchmark script runs end to end in its quick mode, so none can rot unnoticed.

The figures of a quick run mean nothing and are not looked at (benchmarks are scripts, their
figures go to docs/benchmarks.md); what is checked is that each script still works against the
code as it is: it exits 0 and prints its figures. About a minute and a half in all on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from stores import required_env

from registry.config import PROJECT_ROOT

pytestmark = pytest.mark.benchmarks

SCRIPTS = sorted(
    path.name
    for path in (PROJECT_ROOT / "scripts").glob("bench_*.py")
    # bench_api.py gets its quick mode and test with the fix of its fill (issue 15).
    if path.name != "bench_api.py"
)
NEEDS_POSTGRESQL = {"bench_conflicts.py", "bench_index.py", "bench_licences.py"}
NEEDS_SDK = {"bench_iscc.py"}


def test_every_benchmark_script_is_run_here() -> None:
    assert SCRIPTS and all((PROJECT_ROOT / "scripts" / name).is_file() for name in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_mode_runs(script: str, tmp_path: Path) -> None:
    args = [sys.executable, str(PROJECT_ROOT / "scripts" / script), "--quick"]
    env = {**os.environ}
    if script in NEEDS_POSTGRESQL:
        env["ISCC_REGISTRY_TEST_PG_URL"] = required_env(
            "ISCC_REGISTRY_TEST_PG_URL", "scripts/test.sh starts a PostgreSQL server"
        )
    if script in NEEDS_SDK:
        args += [
            "--sdk",
            required_env("ISCC_SDK_PYTHON", "scripts/test.sh builds the iscc-sdk venv"),
        ]
    run = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"{script} --quick failed:\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr
    assert run.stdout.strip(), "no figures printed"
