"""scripts/bench_api.py runs end to end (--quick): fill, reference, every HTTP figure."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "bench_api.py"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian package) is not installed")
def test_bench_api_quick_prints_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in done.stdout.splitlines()
        if line.startswith("| ")
    }
    for figure in [
        "hello-world FastAPI (reference)",
        "resolve by ISCC-ID, warm cache (1,000 IDs)",
        "resolve by ISCC-CODE (1,000 codes)",
        "similarity search over HTTP, p50 / p99",
        "/health beside load and abuse, p50 / p99",
        "start-up: first /health answer",
    ]:
        assert figure in rows, done.stdout
    assert "| similarity search over HTTP, recall | 1.0000 |" in done.stdout
    assert "req/s (" in rows["resolve by ISCC-ID, warm cache (1,000 IDs)"]
