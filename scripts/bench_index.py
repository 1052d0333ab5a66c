"""Indexer benchmark: N declarations on a fresh Hardhat devnet, indexed into SQLite and
PostgreSQL by registry.index, next to a naive web3.py get_logs + per-row insert baseline.

    source scripts/postgres.sh && pg_test_start          # or pass --pg-url
    .venv/bin/python scripts/bench_index.py --count 100000
    # --reuse DEPLOYMENT_JSON indexes a devnet that already holds the declarations
    pg_test_stop

Declarations are generated fast: automine off, `declare` transactions sent from Hardhat's
unlocked accounts as JSON-RPC batches, then mined many per block. Every indexing run happens in
its own process so its peak RSS is its own; RSS is also sampled as the run goes, to show whether
memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
)
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry.chain.contract import Registry  # noqa: E402
from registry.chain.deployment import Deployment  # noqa: E402
from registry.chain.devnet import Devnet, free_port  # noqa: E402
from registry.chain.loadgen import declare_many  # noqa: E402
from registry.ledger.indexer import Indexer  # noqa: E402
from registry.store.store import Store  # noqa: E402


def _rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except FileNotFoundError:  # a log reader that just stopped
        return 0.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def generate(url: str, deployment: Deployment, count: int) -> float:
    """Send `count` declarations of distinct small files; returns seconds taken."""
    started = time.monotonic()

    def progress(sent: int) -> None:
        print(f"\r  declared {sent:,}/{count:,}", end="", file=sys.stderr, flush=True)

    declare_many(url, deployment, count, on_progress=progress)
    print(file=sys.stderr)
    return time.monotonic() - started


def index_ours(deployment: Deployment, db_url: str) -> dict[str, Any]:
    registry = Registry.open(deployment)
    samples: list[tuple[int, float]] = []
    with Store.open(db_url) as store:
        follower = Indexer(registry, store)

        def sample(report: Any) -> None:
            if not samples or report.events_new - samples[-1][0] >= 10_000:
                readers = sum(_rss_mb(pid) for pid in follower.reader_pids)
                samples.append((report.events_new, f"{_rss_mb():.1f}+{readers:.1f}"))

        started = time.monotonic()
        report = follower.sync(on_progress=sample)
        seconds = time.monotonic() - started
        assert store.count() == report.events_new
    return {
        "events": report.events_new,
        "seconds": seconds,
        "detect_seconds": report.detect_seconds,
        "rss": samples,
    }


def index_naive(deployment: Deployment, db_url: str) -> dict[str, Any]:
    """What one writes first: web3's contract event API and one INSERT per event."""
    registry = Registry.open(deployment)
    url = make_url(db_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    metadata = MetaData()
    table = Table(
        "naive_declarations",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("iscc_id", String(32)),
        Column("declarer", String(42)),
        Column("datahash", LargeBinary),
        Column("iscc_code", Text),
        Column("tx_hash", LargeBinary),
        Column("log_index", Integer),
    )
    metadata.create_all(engine)
    event = registry.contract.events.Declared()
    head = registry.w3.eth.block_number
    samples: list[tuple[int, float]] = []
    events = 0
    started = time.monotonic()
    for start in range(deployment.block, head + 1, 2000):
        logs = event.get_logs(from_block=start, to_block=min(head, start + 1999))
        with engine.begin() as conn:
            for log in logs:
                conn.execute(
                    insert(table).values(
                        iscc_id=str(log["args"]["isccId"]),
                        declarer=log["args"]["declarer"],
                        datahash=log["args"]["datahash"],
                        iscc_code="0x" + log["args"]["isccCode"].hex(),
                        tx_hash=bytes(log["transactionHash"]),
                        log_index=log["logIndex"],
                    )
                )
        events += len(logs)
        if not samples or events - samples[-1][0] >= 10_000:
            samples.append((events, round(_rss_mb(), 1)))
    seconds = time.monotonic() - started
    engine.dispose()
    return {"events": events, "seconds": seconds, "rss": samples}


def _child(args: argparse.Namespace) -> None:
    deployment = Deployment.load(Path(args.deployment))
    run = index_ours if args.child == "ours" else index_naive
    result = run(deployment, args.db_url)
    result["peak_rss"] = round(_peak_rss_mb(), 1)
    # The log reader processes have stopped and been waited for: the largest one's peak.
    result["peak_reader_rss"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3, 1
    )
    print(json.dumps(result))


def _measure(kind: str, deployment_file: Path, db_url: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--deployment",
            str(deployment_file),
            "--db-url",
            db_url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pg_database(server: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(server).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--pg-url", default=os.environ.get("ISCC_REGISTRY_TEST_PG_URL"))
    parser.add_argument(
        "--reuse",
        metavar="DEPLOYMENT_JSON",
        help="index a devnet that is already running and holds --count declarations "
        "(its deployment file) instead of starting and filling a new one",
    )
    parser.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--deployment", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if not args.pg_url:
        raise SystemExit(
            "no PostgreSQL: pass --pg-url or source scripts/postgres.sh && pg_test_start"
        )

    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        home = Path(tmp)
        devnet = None if args.reuse else Devnet(home, free_port(), ROOT)
        try:
            if devnet is None:
                deployment_path = Path(args.reuse)
            else:
                deployment = devnet.start()
                deployment_path = devnet.deployment_path
                print(
                    f"generating {args.count:,} declarations on a Hardhat devnet", file=sys.stderr
                )
                seconds = generate(devnet.rpc_url, deployment, args.count)
                head = Registry.open(deployment).w3.eth.block_number
                print(
                    f"  {args.count:,} declarations in {head - deployment.block} blocks, "
                    f"{seconds:.0f} s",
                    file=sys.stderr,
                )
            runs = [
                ("registry.index", "SQLite", "ours", f"sqlite:///{home / 'ours.db'}"),
                ("registry.index", "PostgreSQL", "ours", _pg_database(args.pg_url)),
                (
                    "naive web3.py get_logs + per-row insert",
                    "SQLite",
                    "naive",
                    f"sqlite:///{home / 'naive.db'}",
                ),
                (
                    "naive web3.py get_logs + per-row insert",
                    "PostgreSQL",
                    "naive",
                    _pg_database(args.pg_url),
                ),
            ]
            results = []
            for label, backend, kind, db_url in runs:
                print(f"indexing: {label} into {backend}", file=sys.stderr)
                result = _measure(kind, deployment_path, db_url)
                if result["events"] != args.count:
                    raise SystemExit(f"{label} into {backend} indexed {result['events']} events")
                results.append((label, backend, result))
        finally:
            if devnet is not None:
                devnet.stop()

    print(f"\n{args.count:,} Declared events, {os.cpu_count()} CPUs\n")
    print(
        "| indexer | store | events/s indexed | indexing s | + conflict detection s "
        "| events/s with detection | peak RSS (MB) | peak RSS of a log reader (MB) "
        "| RSS every ~10k events (MB, indexer+log readers) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for label, backend, r in results:
        rss = ", ".join(str(mb) for _n, mb in r["rss"])
        detect = r.get("detect_seconds")
        indexing = r["seconds"] - (detect or 0.0)
        print(
            f"| {label} | {backend} | {r['events'] / indexing:,.0f} | {indexing:.1f} | "
            + (
                f"{detect:.1f} | {r['events'] / r['seconds']:,.0f} | "
                if detect is not None
                else "(none) | | "
            )
            + f"{r['peak_rss']} | {r['peak_reader_rss'] if detect is not None else ''} | {rss} |"
        )


if __name__ == "__main__":
    main()
