"""Conflict detection benchmark: what detecting conflicts after every indexed batch costs the
indexer's store side, on SQLite and PostgreSQL.

    source scripts/postgres.sh && pg_test_start          # or pass --pg-url
    .venv/bin/python scripts/bench_conflicts.py --count 50000
    pg_test_stop

Synthetic Declared events (Meta, Image, Data and Instance units; 1,000 declarers) are applied
to a fresh store in batches of 5,000, as the follower applies a range: once with the store alone,
once with ConflictDetector.run() after every batch, as the follower runs it. A share of the
declarations are planted conflicts: exact copies (same datahash) and re-encodings (Image unit a
few bits off, new datahash) of earlier declarations by other declarers; the detector must find
each (the run fails otherwise). Unrelated random units within the threshold are counted as
chance conflicts. The chain side (node, decoding) is the same in both runs and left out, so the
overhead shown is the overhead on the store's share of indexing time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import iscc_lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_index import _pg_database  # noqa: E402

from registry.chain.events import DeclaredEvent, validate_code  # noqa: E402
from registry.iscc.codec import code_to_bytes  # noqa: E402
from registry.ledger.conflicts import ConflictDetector, list_conflicts  # noqa: E402
from registry.store.store import Store  # noqa: E402

BATCH = 5000
DECLARERS = 1000
CHAIN = 31337
CONTRACT = "0x" + "12" * 20
_TEMPLATE = iscc_lib.gen_iscc_code_v0(
    [
        iscc_lib.gen_meta_code_v0("template")["iscc"],
        iscc_lib.gen_image_code_v0([i % 256 for i in range(1024)])["iscc"],
        iscc_lib.gen_data_code_v0(b"template")["iscc"],
        iscc_lib.gen_instance_code_v0(b"template")["iscc"],
    ]
)["iscc"]
HEADER = code_to_bytes(_TEMPLATE)[:2]


def _event(
    n: int, declarer: str, meta: bytes, image: bytes, data: bytes, datahash: bytes
) -> DeclaredEvent:
    raw = HEADER + meta + image + data + datahash[:8]
    code, units, reason = validate_code(raw, datahash)
    block = 1 + n // 100
    return DeclaredEvent(
        block_number=block,
        block_hash=block.to_bytes(32, "big"),
        tx_hash=n.to_bytes(32, "big"),
        log_index=n % 100,
        iscc_id_body=(1_700_000_000_000_000 + n) << 12,
        realm=0,
        declarer=declarer,
        datahash=datahash,
        iscc_code_raw=raw,
        metahash=bytes(32),
        gateway="",
        iscc_code=code,
        units=units,
        invalid_reason=reason,
    )


Pair = tuple[str, str]


def workload(count: int, share: float, seed: int = 1) -> tuple[list[DeclaredEvent], set[Pair]]:
    """`count` events and the planted conflicts among them (earlier, later ISCC-ID)."""
    rng = random.Random(seed)
    declarers = [f"0x{rng.getrandbits(160):040x}" for _ in range(DECLARERS)]
    events: list[DeclaredEvent] = []
    # Each original is copied at most once, so every copy makes exactly one conflict.
    originals: list[DeclaredEvent] = []
    planted: set[Pair] = set()
    for n in range(count):
        declarer = rng.choice(declarers)
        if originals and rng.random() < share:
            source = originals.pop(rng.randrange(len(originals)))
            if source.declarer == declarer:
                declarer = declarers[(declarers.index(declarer) + 1) % DECLARERS]
            meta, image, data = (u.body for u in source.units[:3])
            if rng.random() < 0.5:
                datahash = source.datahash
            else:
                flipped = int.from_bytes(image, "big")
                for bit in rng.sample(range(64), 3):
                    flipped ^= 1 << bit
                image = flipped.to_bytes(8, "big")
                datahash = rng.randbytes(32)
            copied = True
        else:
            meta, image, data = rng.randbytes(8), rng.randbytes(8), rng.randbytes(8)
            datahash = rng.randbytes(32)
            copied = False
        events.append(_event(n, declarer, meta, image, data, datahash))
        if copied:
            planted.add((source.iscc_id, events[-1].iscc_id))
        else:
            originals.append(events[-1])
    return events, planted


def run(db_url: str, events: list[DeclaredEvent], detect: bool) -> tuple[float, set[Pair]]:
    """Seconds to apply (and with `detect`, check) every batch; conflicts found."""
    with Store.open(db_url) as store:
        detector = ConflictDetector(store)
        parent = None
        started = time.monotonic()
        for start in range(0, len(events), BATCH):
            batch = events[start : start + BATCH]
            end = batch[-1].block_number
            store.apply(CHAIN, CONTRACT, batch, parent, end, batch[-1].block_hash)
            parent = (end, batch[-1].block_hash)
            if detect:
                detector.run()
        seconds = time.monotonic() - started
        listed = list_conflicts(store, limit=10**7) if detect else []
    return seconds, {(c["earlier"]["iscc_id"], c["later"]["iscc_id"]) for c in listed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--share", type=float, default=0.05, help="Share of planted copies")
    parser.add_argument("--pg-url", default=os.environ.get("ISCC_REGISTRY_TEST_PG_URL"))
    args = parser.parse_args()
    if not args.pg_url:
        raise SystemExit(
            "no PostgreSQL: pass --pg-url or source scripts/postgres.sh && pg_test_start"
        )
    events, planted = workload(args.count, args.share)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-conflicts-") as tmp:
        for backend in ("SQLite", "PostgreSQL"):
            urls = [
                f"sqlite:///{Path(tmp) / f'{backend}-{i}.db'}"
                if backend == "SQLite"
                else _pg_database(args.pg_url)
                for i in range(2)
            ]
            print(f"{backend}: store alone, then with detection", file=sys.stderr)
            alone, _ = run(urls[0], events, detect=False)
            detecting, found = run(urls[1], events, detect=True)
            missed = planted - found
            if missed:
                raise SystemExit(f"{backend}: {len(missed)} planted conflicts not found")
            rows.append((backend, alone, detecting, len(found - planted)))
    print(
        f"\n{args.count:,} Declared events, {len(planted):,} planted copies (all found), "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| store | store alone (events/s) | store + conflict detection (events/s) | "
        "overhead | chance conflicts (unrelated units within the threshold) |"
    )
    print("|---|---:|---:|---:|---:|")
    for backend, alone, detecting, chance in rows:
        print(
            f"| {backend} | {args.count / alone:,.0f} | {args.count / detecting:,.0f} | "
            f"{(detecting - alone) / alone:+.0%} | {chance:,} |"
        )


if __name__ == "__main__":
    main()
