"""Benchmark: similarity search and resolve at 1,000,000 declarations, next to a numpy scan.

Fills a store with generated declarations through the indexer's own write path
(`Store.apply`), then measures in one run:
  - in-process similarity search (SimilarityIndex + record fetch) p50/p99, and its recall
    against a brute-force numpy scan of the same units, with the scan's own latency;
  - the same search over HTTP (`iscc-registry serve --no-index`), p50/p99;
  - resolve requests per second over HTTP under concurrent load with wrk (Debian package,
    installed if missing).

    .venv/bin/python scripts/bench_api.py                  # 1,000,000 declarations, SQLite
    .venv/bin/python scripts/bench_api.py --n 100000       # quicker
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import iscc_lib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.chain.devnet import free_port
from registry.chain.events import DeclaredEvent, Unit
from registry.chain.iscc_id import IsccId
from registry.iscc.codec import code_from_bytes, code_to_bytes
from registry.search.similarity import DEFAULT_THRESHOLD, SimilarityIndex, similar
from registry.store.store import Store

CHAIN_ID = 31337
CONTRACT = "0x" + "5e" * 20
UNIT_TYPES = ("META", "CONTENT-IMAGE", "DATA", "INSTANCE")
BATCH = 20_000


def _header() -> bytes:
    """The 2-byte header of a 64-bit META + CONTENT-IMAGE + DATA + INSTANCE ISCC-CODE."""
    units = [
        iscc_lib.gen_meta_code_v0("x")["iscc"],
        iscc_lib.gen_image_code_v0([0] * 1024)["iscc"],
        iscc_lib.gen_data_code_v0(b"x")["iscc"],
        iscc_lib.gen_instance_code_v0(b"x")["iscc"],
    ]
    return code_to_bytes(iscc_lib.gen_iscc_code_v0(units)["iscc"])[:2]


def fill(store: Store, n: int, seed: int) -> np.ndarray:
    """n declarations with random units; returns their CONTENT-IMAGE prefixes (row order)."""
    rng = np.random.default_rng(seed)
    header = _header()
    bodies = rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    declarers = ["0x" + os.urandom(20).hex() for _ in range(1000)]
    checkpoint: tuple[int, bytes] | None = None
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        block = start // BATCH + 1
        block_hash = block.to_bytes(32, "big")
        batch = []
        for i in range(start, min(n, start + BATCH)):
            parts = [int(v).to_bytes(8, "big") for v in bodies[i]]
            raw = header + b"".join(parts)
            datahash = parts[3] + os.urandom(24)
            batch.append(
                DeclaredEvent(
                    block_number=block,
                    block_hash=block_hash,
                    tx_hash=i.to_bytes(32, "big"),
                    log_index=0,
                    iscc_id_body=((1_700_000_000_000_000 + i) << 12),
                    realm=0,
                    declarer=declarers[i % len(declarers)],
                    datahash=datahash,
                    iscc_code_raw=raw,
                    metahash=bytes(32),
                    gateway="",
                    iscc_code=code_from_bytes(raw),
                    units=tuple(Unit(t, p) for t, p in zip(UNIT_TYPES, parts, strict=True)),
                    invalid_reason=None,
                )
            )
        store.apply(CHAIN_ID, CONTRACT, batch, checkpoint, block, block_hash)
        checkpoint = (block, block_hash)
        done = min(n, start + BATCH)
        rate = done / (time.perf_counter() - started)
        print(f"\r  loaded {done:,}/{n:,} ({rate:,.0f}/s)", end="", flush=True)
    print()
    return bodies[:, 1]


def queries(content: np.ndarray, count: int, seed: int) -> list[int]:
    """Declared content units with 0..8 random bits flipped: near-duplicates to find."""
    rnd = random.Random(seed)
    picked = []
    for _ in range(count):
        value = int(content[rnd.randrange(len(content))])
        for bit in rnd.sample(range(64), rnd.randrange(0, 9)):
            value ^= 1 << bit
        picked.append(value)
    return picked


@functools.cache
def _image_unit_header() -> bytes:
    return code_to_bytes(iscc_lib.gen_image_code_v0([0] * 1024)["iscc"])[:2]


def unit_code(value: int) -> str:
    """A 64-bit CONTENT-IMAGE unit as an ISCC string (what a client would send)."""
    return code_from_bytes(_image_unit_header() + value.to_bytes(8, "big"))


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50) * 1000), float(np.percentile(samples, 99) * 1000)


def bench_in_process(store: Store, content: np.ndarray, qs: list[int]) -> dict[str, float]:
    index = SimilarityIndex(store)
    started = time.perf_counter()
    index.refresh()
    build_s = time.perf_counter() - started
    ours, search_only, scan = [], [], []
    recall_hits = recall_total = 0
    keys = np.arange(1, len(content) + 1, dtype=np.int64)  # row ids follow insertion order
    for q in qs:
        units = [Unit("CONTENT-IMAGE", q.to_bytes(8, "big"))]
        code = unit_code(q)
        t0 = time.perf_counter()
        answer = similar(store, index, code, units, DEFAULT_THRESHOLD, limit=20)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        distances = np.bitwise_count(content ^ np.uint64(q))
        truth = set(keys[distances <= DEFAULT_THRESHOLD].tolist())
        scan.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got_ids = {m.declaration_id for m in index.search(units, DEFAULT_THRESHOLD)}
        search_only.append(time.perf_counter() - t0)
        recall_total += len(truth)
        recall_hits += len(truth & got_ids)
        assert len(answer["matches"]) == min(20, len(truth))
    p50, p99 = percentiles(ours)
    s50, s99 = percentiles(scan)
    i50, i99 = percentiles(search_only)
    return {
        "build_s": build_s,
        "index_p50": i50,
        "index_p99": i99,
        "p50": p50,
        "p99": p99,
        "scan_p50": s50,
        "scan_p99": s99,
        "recall": recall_hits / recall_total if recall_total else 1.0,
        "expected": recall_total,
    }


def serve(db_url: str, home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ISCC_REGISTRY_HOME": str(home), "ISCC_REGISTRY_DB_URL": db_url}
    cli = str(Path(sys.executable).parent / "iscc-registry")
    args = [cli, "serve", "--no-index", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=60).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                reason = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"serve failed: {reason}") from None
            time.sleep(0.2)
    raise SystemExit("serve did not come up")


def bench_http_search(url: str, qs: list[int]) -> tuple[float, float]:
    # Each worker builds its similarity index at start-up; wait until answers are steady
    # (20 in a row under 100 ms) so the figures are about searching, not loading.
    steady = 0
    while steady < 20:
        query = urllib.parse.urlencode({"iscc": unit_code(qs[0]), "limit": 20})
        t0 = time.perf_counter()
        urllib.request.urlopen(f"{url}/v1/search?{query}", timeout=300).read()
        steady = steady + 1 if time.perf_counter() - t0 < 0.1 else 0
    samples = []
    for q in qs:
        query = urllib.parse.urlencode({"iscc": unit_code(q), "limit": 20})
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/v1/search?{query}", timeout=60) as answer:
            json.loads(answer.read())
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("  installing wrk (Debian package)")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def bench_resolve(url: str, iscc_ids: list[str], seconds: int) -> float:
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        paths = ",".join(f'"/iscc-id/{i}"' for i in iscc_ids)
        script.write(
            f"local paths = {{{paths}}}\nlocal n = 0\n"
            "request = function()\n  n = n + 1\n"
            "  return wrk.format('GET', paths[(n % #paths) + 1])\nend\n"
        )
    out = subprocess.run(
        [wrk, "-t2", "-c32", f"-d{seconds}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
        if "Non-2xx" in line:
            raise SystemExit(f"resolve answered errors under load: {line}")
    raise SystemExit(f"no rate in wrk output:\n{out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="API processes for HTTP")
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration")
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    db_url = args.db_url or f"sqlite:///{folder / 'bench.db'}"
    try:
        print(f"filling {db_url} with {args.n:,} declarations")
        store = Store.open(db_url)
        content = fill(store, args.n, seed=1)
        qs = queries(content, args.queries, seed=2)
        print("in-process similarity search")
        inproc = bench_in_process(store, content, qs)
        store.close()
        print(f"HTTP: serve --no-index --workers {args.workers}")
        proc, url = serve(db_url, folder / "home", args.workers)
        try:
            h50, h99 = bench_http_search(url, qs[:100])
            ids = [
                str(IsccId((1_700_000_000_000_000 + i) << 12, 0))
                for i in range(0, args.n, max(1, args.n // 1000))
            ]
            rps = bench_resolve(url, ids, args.seconds)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    rows = [
        (
            "index search only (ids and distances), p50 / p99",
            f"{inproc['index_p50']:.2f} / {inproc['index_p99']:.2f} ms",
            f"{inproc['scan_p50']:.2f} / {inproc['scan_p99']:.2f} ms",
            "",
        ),
        (
            "full answer in process (search + 20 records), p50",
            f"{inproc['p50']:.2f} ms",
            f"{inproc['scan_p50']:.2f} ms",
            "<= 5 ms",
        ),
        (
            "full answer in process (search + 20 records), p99",
            f"{inproc['p99']:.2f} ms",
            f"{inproc['scan_p99']:.2f} ms",
            "",
        ),
        (
            "recall against the scan",
            f"{inproc['recall']:.4f} ({inproc['expected']} hits)",
            "1.0",
            "1.0",
        ),
        ("similarity query over HTTP, p50", f"{h50:.2f} ms", "", ""),
        ("similarity query over HTTP, p99", f"{h99:.2f} ms", "", ""),
        (
            f"resolve over HTTP (wrk, 32 connections, {args.workers} workers)",
            f"{rps:,.0f} req/s",
            "",
            ">= 2,000 req/s",
        ),
    ]
    print()
    print(
        f"{args.n:,} declarations, {args.queries} queries (declared units, 0-8 bits flipped), "
        f"threshold {DEFAULT_THRESHOLD} bits; index built in {inproc['build_s']:.1f} s"
    )
    print()
    print("| measurement | ours | numpy brute-force scan | target |")
    print("|---|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
