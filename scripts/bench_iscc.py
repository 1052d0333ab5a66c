"""Benchmark: our ISCC generation next to iscc-sdk 0.9.7 on the same generated files, one run.

Usage: .venv/bin/python scripts/bench_iscc.py [--sdk .venv-sdk/bin/sdk-python] [--quick]

Each measurement is a fresh child process; peak memory is the largest sum of resident memory
over that process and all its descendants (ffmpeg, fpcalc, Tika included), sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "iscc"))

from make_media import make_av, pattern_image  # noqa: E402

OURS = "import sys; from registry.iscc import generate; print(generate(sys.argv[1]).iscc)"
LIB = (
    "import sys, iscc_lib; "
    "print(iscc_lib.gen_iscc_code_v0(iscc_lib.gen_sum_code_v0(sys.argv[1], add_units=True)"
    "['units'])['iscc'])"
)
SDK = (
    "import sys, warnings; warnings.filterwarnings('ignore'); from loguru import logger; "
    "logger.remove(); import iscc_sdk as idk; print(idk.code_iscc(sys.argv[1], fallback=True).iscc)"
)


def _tree_rss(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def measure(python: str, code: str, path: Path) -> tuple[float, int, str]:
    """Wall seconds, peak tree RSS in bytes, and the ISCC printed."""
    # The reference venv's fpcalc resamples in Python before Debian's fpcalc runs (see
    # scripts/reference_fpcalc.py); timing iscc-sdk, it runs the native binary alone.
    env = {**os.environ, "REFERENCE_FPCALC": "debian"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    out = proc.stdout.read().strip() if proc.stdout else ""
    return elapsed, peak, out if proc.returncode == 0 else f"failed ({proc.returncode})"


def make_files(folder: Path, quick: bool, kinds: set[str], data_gib: int) -> dict[str, Path]:
    # --quick: every kind of file, a hundredth of the size (a few seconds of media).
    scale = 0.01 if quick else 1.0
    files: dict[str, Path] = {}
    if "data" in kinds:
        data = folder / "data.bin"
        with open(data, "wb") as out:
            for _ in range(int(1024 * data_gib * scale)):
                out.write(os.urandom(1 << 20))
        files[f"data {data_gib} GiB"] = data
    if kinds == {"data"}:
        return files
    text = folder / "text.txt"
    text.write_text(" ".join(f"word{i % 5000} stands here" for i in range(int(200_000 * scale))))
    image = folder / "image.jpg"
    pattern_image((int(2400 * scale**0.5), int(1600 * scale**0.5))).save(image, quality=90)
    files |= {"text 4 MB": text, "image 2400x1600": image}
    files["audio 5 min mp3"] = make_av(
        folder / "audio.mp3", "AUDIO", "-b:a", "192k", seconds=300 * scale
    )
    for label, seconds in (("video 60 s", 60), ("video 10 min", 600)):
        files[f"{label} 720p"] = make_av(
            folder / f"video{seconds}.mp4",
            "VIDEO",
            "AUDIO",
            "-vf",
            "scale=1280:720",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            seconds=seconds * scale,
        )
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk", default=str(ROOT / ".venv-sdk" / "bin" / "sdk-python"))
    parser.add_argument(
        "--quick", action="store_true", help="a hundredth of the sizes (checks the script works)"
    )
    parser.add_argument("--only-data", action="store_true", help="just the data file")
    parser.add_argument("--data-gib", type=int, default=1, help="size of the data file")
    args = parser.parse_args()
    if not Path(args.sdk).exists():
        raise SystemExit(f"no iscc-sdk interpreter at {args.sdk}: run scripts/sdk_venv.sh")
    kinds = {"data"} if args.only_data else {"data", "media"}
    with tempfile.TemporaryDirectory(prefix="bench-iscc-") as tmp:
        files = make_files(Path(tmp), args.quick, kinds, args.data_gib)
        print("| file | MB | ours s | ours MB/s | ours peak MB | sdk s | sdk peak MB | speed-up |")
        print("|" + "---|" * 8)
        for label, path in files.items():
            size = path.stat().st_size / 1e6
            ours_s, ours_mem, ours_code = measure(sys.executable, OURS, path)
            sdk_s, sdk_mem, sdk_code = measure(args.sdk, SDK, path)
            same = "" if ours_code == sdk_code else f" (DIFFERENT: {ours_code} / {sdk_code})"
            print(
                f"| {label} | {size:.1f} | {ours_s:.2f} | {size / ours_s:.1f} | "
                f"{ours_mem / 1e6:.0f} | {sdk_s:.2f} | {sdk_mem / 1e6:.0f} | "
                f"{sdk_s / ours_s:.2f}x{same} |"
            )
            if label.startswith("data"):
                lib_s, lib_mem, _ = measure(sys.executable, LIB, path)
                print(
                    f"| {label}: iscc_lib.gen_sum_code_v0 alone | {size:.1f} | {lib_s:.2f} | "
                    f"{size / lib_s:.1f} | {lib_mem / 1e6:.0f} | | | ours at "
                    f"{lib_s / ours_s:.0%} of its throughput |"
                )


if __name__ == "__main__":
    main()
