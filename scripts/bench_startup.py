"""Benchmark: how long `iscc-registry` takes to start, beside a bare Python start, in one run.

Usage: .venv/bin/python scripts/bench_startup.py [--runs N] [--quick]

hyperfine (Debian's package, installed here with apt-get when missing) times each command
repeatedly after warm-up runs; the table shows mean +- standard deviation, the range, and the
target of each command. `python3 -c pass` is the floor every Python command pays.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "iscc-registry"
# Mean wall time each command should stay under on this 2-core machine (issue: newcomer fixes).
TARGETS = {"iscc-registry --help": 0.3, "iscc-registry gen small.png": 0.6}


def _hyperfine() -> str:
    found = shutil.which("hyperfine")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "hyperfine"], check=True, env=env)
    return shutil.which("hyperfine") or sys.exit("hyperfine did not install")


def _small_png(folder: Path) -> Path:
    from PIL import Image

    path = folder / "small.png"
    Image.radial_gradient("L").resize((64, 48)).convert("RGB").save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command")
    parser.add_argument("--quick", action="store_true", help="3 runs each (the suite's check)")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        picture = _small_png(folder)
        home = folder / "home"
        commands = {
            "python3 -c pass": f"{sys.executable} -c pass",
            "iscc-registry --help": f"{CLI} --help",
            "iscc-registry gen small.png": f"{CLI} gen {picture}",
        }
        export = folder / "times.json"
        cmd = [_hyperfine(), "--style", "none", "--warmup", "2", "--runs", str(runs)]
        cmd += ["--export-json", str(export)]
        for label, command in commands.items():
            cmd += ["--command-name", label, command]
        subprocess.run(
            cmd,
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "ISCC_REGISTRY_HOME": str(home), "COLUMNS": "80"},
        )
        results = json.loads(export.read_text())["results"]
    print(f"{'command':<30} {'mean (s)':>14} {'min-max (s)':>14} {'target':>8} {'met':>4}")
    for r in results:
        target = TARGETS.get(r["command"])
        met = "" if target is None else ("yes" if r["mean"] <= target else "NO")
        print(
            f"{r['command']:<30} {r['mean']:>7.3f} +- {r['stddev']:.3f} "
            f"{r['min']:>6.3f}-{r['max']:.3f} {'' if target is None else target:>8} {met:>4}"
        )
    print(f"\n{runs} runs each after 2 warm-up runs, on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
