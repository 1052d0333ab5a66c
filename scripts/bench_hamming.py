"""Hamming index benchmark: one snippet lookup while new codes keep arriving.

A live service's index holds millions of codes loaded at start and then takes the indexer's
new declarations in small batches. This builds a `HammingIndex` over --codes random 64-bit
codes, then adds batches of --batch codes until the codes added since the load reach each
size in --tails, and at each size times a lookup of --queries codes within 7 bits (a snippet
lookup's size: 8 sound grids of 15 codes), exact and with `band_radius=0` (what the snippet
search uses), next to the reference: numpy comparing every code with every query code (the
same answer as the exact lookup, by construction). Also the build time, and the time to add a
batch at the largest tail.

    .venv/bin/python scripts/bench_hamming.py              # a few seconds on 2 cores
    .venv/bin/python scripts/bench_hamming.py --quick      # does it still run? (tests do this)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.search.hamming import HammingIndex

RADIUS = 7


def _best_ms(run: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def _scan(codes: np.ndarray, queries: np.ndarray) -> int:
    # Query by query: the whole product at once would not fit in memory at millions of codes.
    return sum(int((np.bitwise_count(codes ^ q) <= RADIUS).sum()) for q in queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=1_500_000, help="codes loaded at start")
    parser.add_argument(
        "--tails",
        default="0,4000,32000,65000",
        help="codes added since the load at which a lookup is timed (comma-separated)",
    )
    parser.add_argument("--batch", type=int, default=300, help="codes per added batch")
    parser.add_argument("--queries", type=int, default=120, help="query codes per lookup")
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure, best kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a small run (figures mean nothing)")
    args = parser.parse_args()
    if args.quick:
        args.codes, args.tails, args.repeat = 20_000, "0,5000", 1
    tails = sorted(int(t) for t in args.tails.split(","))
    rng = np.random.default_rng(args.seed)
    loaded = rng.integers(0, 2**64, size=args.codes, dtype=np.uint64)
    index = HammingIndex()
    started = time.perf_counter()
    index.add(np.arange(args.codes), loaded)
    print(f"built over {args.codes:,} codes in {(time.perf_counter() - started) * 1000:.0f} ms")
    added: list[np.ndarray] = [loaded]
    print(
        f"\nlookup of {args.queries} codes within {RADIUS} bits, best of {args.repeat} (ms):\n"
        f"{'added since load':>16} {'exact':>8} {'band radius 0':>14} {'full scan (ref)':>16} "
        f"{'add a batch':>12}"
    )
    key = args.codes
    for tail in tails:
        batch_ms = []
        while key - args.codes < tail:
            codes = rng.integers(0, 2**64, size=args.batch, dtype=np.uint64)
            started = time.perf_counter()
            index.add(np.arange(key, key + args.batch), codes)
            batch_ms.append((time.perf_counter() - started) * 1000)
            added.append(codes)
            key += args.batch
        every = np.concatenate(added)
        # Half the query codes lie near stored codes (as an excerpt's do), half anywhere.
        near = every[rng.integers(0, len(every), size=args.queries // 2)] ^ np.uint64(0b1001)
        far = rng.integers(0, 2**64, size=args.queries - len(near), dtype=np.uint64)
        queries = np.concatenate((near, far))
        exact = _best_ms(lambda q=queries: index.within_many(q, RADIUS), args.repeat)
        banded = _best_ms(lambda q=queries: index.within_many(q, RADIUS, 0), args.repeat)
        scan = _best_ms(lambda q=queries, e=every: _scan(e, q), 1)
        found = len(index.within_many(queries, RADIUS)[0])
        if found != _scan(every, queries):
            raise SystemExit("the exact lookup and the full scan disagree")
        add = f"{statistics.median(batch_ms):.2f}" if batch_ms else "-"
        print(f"{key - args.codes:>16,} {exact:>8.2f} {banded:>14.2f} {scan:>16.1f} {add:>12}")


if __name__ == "__main__":
    main()
