"""Benchmark: the HTTP service at 1,000,000 declarations, beside a hello-world FastAPI app.

Fills a store with generated declarations through the indexer's own write path
(`Store.apply`), then measures in one run:
  - in-process similarity search (SimilarityIndex + record fetch) p50/p99, and its recall
    against a brute-force numpy scan of the same units, with the scan's own latency;
  - a hello-world FastAPI endpoint under wrk, on the same uvicorn settings and worker count as
    the service (registry.api.server): the reference every req/s figure is divided by;
  - `iscc-registry serve --no-index`: start-up time, RSS, similarity search over HTTP
    (p50/p99, recall), resolve by ISCC-ID with a warm answer cache and cold (no answer cache,
    20,000 distinct ISCC-IDs), resolve by ISCC-CODE, and /health latency while hostile clients
    (slow heads, deep and oversized JSON, anonymous metadata posts) run beside wrk's load, with
    the rate that load was served at and how many of its requests were refused (shed).

wrk is the Debian package (installed if missing).

    .venv/bin/python scripts/bench_api.py                  # 1,000,000 declarations, SQLite
    .venv/bin/python scripts/bench_api.py --n 100000       # quicker
    .venv/bin/python scripts/bench_api.py --quick          # seconds: a smoke run (tests)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import iscc_lib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.api.server import uvicorn_options
from registry.chain.devnet import free_port
from registry.chain.events import DeclaredEvent, Unit
from registry.chain.iscc_id import IsccId
from registry.config import Settings
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


def fill(store: Store, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n declarations with random units; returns their unit bodies (row order, one column per
    unit type) and the CONTENT-IMAGE column."""
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
                    # Unique per block, as on a chain (schema v8 refuses duplicates).
                    log_index=i - start,
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
    return bodies, bodies[:, 1]


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


def iscc_id_of(row: int) -> str:
    """The ISCC-ID of the declaration filled at `row` (0-based)."""
    return str(IsccId((1_700_000_000_000_000 + row) << 12, 0))


def iscc_code_of(bodies: np.ndarray, row: int) -> str:
    return code_from_bytes(_header() + b"".join(int(v).to_bytes(8, "big") for v in bodies[row]))


# --- servers ---------------------------------------------------------------------------------


def reference_app() -> Any:
    """The reference: FastAPI's hello world (a factory, as uvicorn's workers import it)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def run_reference(port: int, workers: int) -> None:
    import uvicorn

    options = uvicorn_options(Settings())
    uvicorn.run(
        "bench_api:reference_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        **options,
    )


class Server:
    """A server process on a free port, stopped (SIGTERM) on exit."""

    def __init__(self, args: list[str], env: dict[str, str], probe: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [*args, "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(3000):
            try:
                urllib.request.urlopen(self.url + probe, timeout=60).read()
                self.started_s = time.perf_counter() - started
                return
            except OSError:
                if self.proc.poll() is not None:
                    reason = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise SystemExit(f"{args[0]} failed: {reason}") from None
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"{args} did not come up")

    def rss_mb(self) -> float:
        """Resident memory of the process and all its descendants (uvicorn's workers)."""
        pids, children = [self.proc.pid], _children()
        total = 0
        while pids:
            pid = pids.pop()
            pids.extend(children.get(pid, []))
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_exc: object) -> None:
        # Listed first: once the supervisor is gone its workers are orphans nobody lists.
        family, children = [], _children()
        pending = [self.proc.pid]
        while pending:
            pid = pending.pop()
            family.append(pid)
            pending.extend(children.get(pid, []))
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in family[1:]:  # workers that outlived their supervisor
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return found


def serve(db_url: str, home: Path, workers: int, **env: str) -> Server:
    cli = str(Path(sys.executable).parent / "iscc-registry")
    environ = {"ISCC_REGISTRY_HOME": str(home), "ISCC_REGISTRY_DB_URL": db_url}
    environ |= {f"ISCC_REGISTRY_{k.upper()}": v for k, v in env.items()}
    return Server([cli, "serve", "--no-index", "--workers", str(workers)], environ, "/health")


def reference(workers: int) -> Server:
    here = str(Path(__file__).resolve().parent)
    env = {"PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, __file__, "--reference", "--workers", str(workers)]
    return Server(args, env, "/")


# --- load ------------------------------------------------------------------------------------


def wait_for_search(url: str, q: int, limit: int = 20) -> float:
    """Seconds until similarity search answers are steady (20 in a row under 100 ms). Each
    worker builds its similarity index at start-up, reading every unit from the store; figures
    taken before that ends measure the loading, not the route."""
    started = time.perf_counter()
    steady = 0
    while steady < 20:
        query = urllib.parse.urlencode({"iscc": unit_code(q), "limit": limit})
        t0 = time.perf_counter()
        urllib.request.urlopen(f"{url}/v1/search?{query}", timeout=300).read()
        steady = steady + 1 if time.perf_counter() - t0 < 0.1 else 0
    return time.perf_counter() - started


def bench_http_search(
    url: str, qs: list[int], content: np.ndarray, limit: int = 20
) -> tuple[float, float, float, float]:
    """p50, p99 (ms), recall of the answers against a scan, and seconds until steady."""
    ready_s = wait_for_search(url, qs[0], limit)
    samples, hits, expected = [], 0, 0
    for q in qs:
        query = urllib.parse.urlencode({"iscc": unit_code(q), "limit": limit})
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/v1/search?{query}", timeout=60) as answer:
            matches = json.loads(answer.read())["matches"]
        samples.append(time.perf_counter() - t0)
        distances = np.bitwise_count(content ^ np.uint64(q))
        truth = {iscc_id_of(int(r)) for r in np.flatnonzero(distances <= DEFAULT_THRESHOLD)}
        got = {m["declaration"]["iscc_id"] for m in matches}
        expected += min(limit, len(truth))
        hits += len(got & truth)
    p50, p99 = percentiles(samples)
    return p50, p99, hits / expected if expected else 1.0, ready_s


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("  installing wrk (Debian package)")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def wrk(url: str, paths: list[str], seconds: float, connections: int = 32) -> float:
    """Requests per second over `paths` in turn; any non-2xx answer ends the benchmark."""
    rate, refused = wrk_load(url, paths, seconds, connections)
    if refused:
        raise SystemExit(f"{url} answered {refused} errors under load")
    return rate


def wrk_load(
    url: str, paths: list[str], seconds: float, connections: int = 32
) -> tuple[float, int]:
    """Requests per second over `paths` in turn, and how many were not answered 2xx (a
    service that sheds load refuses some)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        listed = ",".join(json.dumps(p) for p in paths)
        script.write(
            f"local paths = {{{listed}}}\nlocal n = 0\n"
            "request = function()\n  n = n + 1\n"
            "  return wrk.format('GET', paths[(n % #paths) + 1])\nend\n"
        )
    try:
        command = [ensure_wrk(), "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        out = subprocess.run(
            [*command, "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rate, refused = None, 0
    for line in out.splitlines():
        if "Non-2xx" in line:
            refused = int(line.split()[-1])
        if line.startswith("Requests/sec:"):
            rate = float(line.split()[1])
    if rate is None:
        raise SystemExit(f"no rate in wrk output:\n{out}")
    return rate, refused


class Abuse:
    """Hostile clients, each in its own thread, until stopped: slow request heads, 100k-deep
    JSON, bodies past the size limit, and anonymous metadata posts (which used to flush the
    answer cache)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.sent = {"slow": 0, "deep": 0, "oversized": 0, "metadata": 0}
        self.threads = [
            threading.Thread(target=self._slow_heads, daemon=True),
            threading.Thread(target=self._post_loop, args=("deep",), daemon=True),
            threading.Thread(target=self._post_loop, args=("oversized",), daemon=True),
            threading.Thread(target=self._post_loop, args=("metadata",), daemon=True),
        ]

    def __enter__(self) -> Abuse:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _slow_heads(self) -> None:
        sockets: list[socket.socket] = []
        while not self.stop.is_set():
            while len(sockets) < 50:
                try:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                    sockets.append(s)
                    self.sent["slow"] += 1
                except OSError:
                    break
            for s in list(sockets):
                try:
                    s.sendall(b"X")  # one byte a second per connection
                except OSError:
                    s.close()
                    sockets.remove(s)
            self.stop.wait(1.0)
        for s in sockets:
            s.close()

    def _post_loop(self, kind: str) -> None:
        deep = b"[" * 100_000 + b"]" * 100_000
        oversized = b"[" + b"0," * 2_000_000 + b"0]"
        n = 0
        while not self.stop.is_set():
            n += 1
            body = {
                "deep": deep,
                "oversized": oversized,
                "metadata": json.dumps({"name": f"spam {os.getpid()} {n} {time.time()}"}).encode(),
            }[kind]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
                    s.sendall(
                        b"POST /v1/metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                    )
                    s.sendall(body)
                    while s.recv(65536):
                        pass
            except OSError:
                pass
            self.sent[kind] += 1
            if kind == "metadata":
                self.stop.wait(0.25)


def health_latency(url: str, seconds: float) -> tuple[float, float, int]:
    """p50 and p99 (ms) of /health, one request at a time on fresh connections."""
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        urllib.request.urlopen(url + "/health", timeout=60).read()
        samples.append(time.perf_counter() - t0)
        time.sleep(0.02)
    p50, p99 = percentiles(samples)
    return p50, p99, len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="API processes for HTTP")
    parser.add_argument("--seconds", type=float, default=15, help="wrk duration per figure")
    parser.add_argument("--cold-ids", type=int, default=20_000)
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    parser.add_argument("--quick", action="store_true", help="tiny store, short runs (tests)")
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        run_reference(args.port, args.workers)
        return
    if args.quick:
        args.n, args.queries, args.seconds, args.cold_ids = 3000, 20, 1, 2000
    args.cold_ids = min(args.cold_ids, args.n)

    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    db_url = args.db_url or f"sqlite:///{folder / 'bench.db'}"
    home = folder / "home"
    rnd = random.Random(3)
    try:
        print(f"filling {db_url} with {args.n:,} declarations")
        store = Store.open(db_url)
        bodies, content = fill(store, args.n, seed=1)
        qs = queries(content, args.queries, seed=2)
        print("in-process similarity search")
        inproc = bench_in_process(store, content, qs)
        store.close()
        warm_ids = [
            f"/iscc-id/{iscc_id_of(r)}" for r in rnd.sample(range(args.n), min(1000, args.n))
        ]
        cold_ids = [f"/iscc-id/{iscc_id_of(r)}" for r in rnd.sample(range(args.n), args.cold_ids)]
        codes = [
            "/v1/resolve?" + urllib.parse.urlencode({"q": iscc_code_of(bodies, r)})
            for r in rnd.sample(range(args.n), min(1000, args.n))
        ]

        print(f"reference: hello-world FastAPI, {args.workers} workers")
        with reference(args.workers) as ref:
            ref_rps = wrk(ref.url, ["/"], args.seconds)

        print(f"HTTP: serve --no-index --workers {args.workers}")
        with serve(db_url, home, args.workers) as ours:
            started_s = ours.started_s
            h50, h99, http_recall, ready_s = bench_http_search(ours.url, qs[:100], content)
            rss = ours.rss_mb()
            wrk(ours.url, warm_ids, args.seconds)  # fills every worker's answer cache
            warm_rps = wrk(ours.url, warm_ids, args.seconds)
            code_rps = wrk(ours.url, codes, args.seconds)
            print("  /health beside wrk's load and the hostile clients")
            served: list[tuple[float, int]] = []
            normal = threading.Thread(
                target=lambda: served.append(wrk_load(ours.url, warm_ids, args.seconds + 2))
            )
            with Abuse(ours.port) as abuse:
                normal.start()
                time.sleep(1)
                health50, health99, health_n = health_latency(ours.url, args.seconds)
                normal.join()
            normal_rps, normal_refused = served[0]
            sent = abuse.sent
            rss_after = ours.rss_mb()
        print("HTTP: resolve without an answer cache (cold)")
        with serve(db_url, home, args.workers, answer_cache="0") as cold:
            wait_for_search(cold.url, qs[0])
            cold_rps = wrk(cold.url, cold_ids, args.seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def ratio(rps: float) -> str:
        return f"{rps:,.0f} req/s ({rps / ref_rps:.2f}x)"

    rows = [
        ("hello-world FastAPI (reference)", f"{ref_rps:,.0f} req/s (1.00x)", ""),
        ("resolve by ISCC-ID, warm cache (1,000 IDs)", ratio(warm_rps), ">= 0.8x"),
        (
            f"resolve by ISCC-ID, cold ({args.cold_ids:,} IDs, no answer cache)",
            ratio(cold_rps),
            ">= 0.5x",
        ),
        ("resolve by ISCC-CODE (1,000 codes)", ratio(code_rps), ">= 0.5x"),
        ("similarity search over HTTP, p50 / p99", f"{h50:.2f} / {h99:.2f} ms", "p50 <= 10 ms"),
        ("similarity search over HTTP, recall", f"{http_recall:.4f}", "1.0"),
        (
            "/health beside load and abuse, p50 / p99",
            f"{health50:.1f} / {health99:.1f} ms ({health_n} requests)",
            "p99 <= 100 ms",
        ),
        (
            "normal load beside /health and abuse (warm ISCC-IDs)",
            f"{normal_rps:,.0f} req/s, {normal_refused:,} refused",
            "",
        ),
        ("start-up: first /health answer", f"{started_s:.1f} s", ""),
        ("start-up: similarity search steady", f"{started_s + ready_s:.1f} s", ""),
        ("RSS, all processes: warm / after the abuse", f"{rss:,.0f} / {rss_after:,.0f} MB", ""),
    ]
    print()
    print(
        f"{args.n:,} declarations, {args.workers} workers, wrk -t2 -c32 for {args.seconds:g} s "
        f"per figure; hostile clients sent {sent}"
    )
    print()
    print("| HTTP measurement | ours | target |")
    print("|---|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(
        f"in process: {args.queries} queries (declared units, 0-8 bits flipped), threshold "
        f"{DEFAULT_THRESHOLD} bits; index built in {inproc['build_s']:.1f} s"
    )
    print()
    print("| in-process measurement | ours | numpy brute-force scan |")
    print("|---|---:|---:|")
    print(
        f"| index search only, p50 / p99 | {inproc['index_p50']:.2f} / {inproc['index_p99']:.2f} ms"
        f" | {inproc['scan_p50']:.2f} / {inproc['scan_p99']:.2f} ms |"
    )
    print(
        f"| full answer (search + 20 records), p50 / p99 | {inproc['p50']:.2f} / "
        f"{inproc['p99']:.2f} ms | |"
    )
    print(f"| recall against the scan | {inproc['recall']:.4f} ({inproc['expected']} hits) | 1.0 |")


if __name__ == "__main__":
    main()
