"""Licence detection benchmark: what judging new grants and usage reports costs against a store
that already holds many grants, on SQLite and PostgreSQL.

    source scripts/postgres.sh && pg_test_start          # or pass --pg-url
    .venv/bin/python scripts/bench_licences.py           # 100,000 grants on 10,000 works
    .venv/bin/python scripts/bench_licences.py --quick   # does it still run? (tests do this)
    pg_test_stop

The store is loaded directly, as the follower applies ranges (Store.apply, batches of 5,000
events): synthetic Declared events for the works (Meta, Image, Data and Instance units; 1,000
declarers) and LicenceGranted events, `--per-work` per work on average, most by the work's owner
in one of a handful of countries, uses and terms, a tenth exclusive, some by someone else. The
first detection run judges the whole backlog (what an indexer catching up does); then new grants
arrive in batches of 100 with a detection run after each (the steady state: every new grant is
judged against the grants of its own and related works only), and signed-note usage reports are
stored and judged the same way. Planted clashes among the new grants (an exclusive grant over a
country and use another live grant already has) must all be found, or the run fails.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_conflicts import _event  # noqa: E402
from bench_index import _pg_database  # noqa: E402
from eth_utils import keccak  # noqa: E402
from sqlalchemy import delete, func, select  # noqa: E402

from registry.chain.events import DeclaredEvent  # noqa: E402
from registry.chain.iscc_id import IsccId  # noqa: E402
from registry.chain.licence_events import GrantedEvent  # noqa: E402
from registry.ledger.licence_conflicts import (  # noqa: E402
    EXCLUSIVE_OVERLAP,
    LicenceDetector,
    list_licence_conflicts,
    store_usage_report,
)
from registry.ledger.licence_works import WorkMatcher  # noqa: E402
from registry.ledger.terms import Use  # noqa: E402
from registry.search.similarity import SimilarityIndex  # noqa: E402
from registry.search.snippets import SnippetIndex  # noqa: E402
from registry.store.schema import licence_conflicts, licence_queue  # noqa: E402
from registry.store.store import Store  # noqa: E402

CHAIN = 31337
CONTRACT = "0x" + "12" * 20
BATCH = 5000
DECLARERS = 1000
T0 = 1_767_225_600
YEAR = 365 * 86_400
COUNTRIES = ("AT", "DE", "FR", "IT", "ES", "NL", "BE", "PL", "SE", "US", "CA", "GB", "JP", "BR")
USES = (Use.SVOD, Use.AVOD, Use.TVOD, Use.FREE_TV, Use.PAY_TV, Use.THEATRICAL, Use.ONLINE)
NOW = T0 + 30 * 86_400


def _grant(
    rng: random.Random, n: int, work: DeclaredEvent, block: int, grantor: str, **terms: object
) -> GrantedEvent:
    values: dict[str, object] = {
        "licensee": f"0x{rng.getrandbits(160):040x}",
        "territories": tuple(sorted(rng.sample(COUNTRIES, rng.randint(1, 3)))),
        "worldwide": False,
        "uses": int(rng.choice(USES)),
        "start": T0 + rng.randrange(0, 3 * YEAR, 86_400),
        "end": 0,
        "exclusive": rng.random() < 0.1,
    }
    values.update(terms)
    if not values["end"]:
        values["end"] = int(values["start"]) + YEAR  # type: ignore[call-overload]
    return GrantedEvent(
        block_number=block,
        block_hash=block.to_bytes(32, "big"),
        tx_hash=(10**9 + n).to_bytes(32, "big"),
        log_index=n % 1000,
        block_time=T0 + block,
        grant_id="0x" + keccak(n.to_bytes(32, "big")).hex(),
        iscc_id=IsccId(work.iscc_id_body, 0),
        grantor=grantor,
        parent=None,
        conditions=0,
        sublicensable=False,
        terms_url="https://terms.example/licence",
        terms_hash=None,
        nonce=n,
        **values,  # type: ignore[arg-type]
    )


def workload(
    works: int, per_work: int, seed: int = 1
) -> tuple[list[DeclaredEvent], list[GrantedEvent]]:
    """The works and their grants, in chain order (grants after all works)."""
    rng = random.Random(seed)
    declarers = [f"0x{rng.getrandbits(160):040x}" for _ in range(DECLARERS)]
    declared = [
        _event(
            n,
            rng.choice(declarers),
            rng.randbytes(8),
            rng.randbytes(8),
            rng.randbytes(8),
            rng.randbytes(32),
        )
        for n in range(works)
    ]
    first = declared[-1].block_number + 1
    granted = []
    for n in range(works * per_work):
        work = declared[rng.randrange(works)]
        # Mostly the owner; one grant in fifty by someone else (grantor_not_owner).
        grantor = work.declarer if rng.random() > 0.02 else rng.choice(declarers)
        granted.append(_grant(rng, n, work, first + n // 1000, grantor))
    return declared, granted


def _apply(store: Store, events: list, parent: tuple[int, bytes] | None) -> tuple[int, bytes]:
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        end = batch[-1].block_number
        store.apply(CHAIN, CONTRACT, batch, parent, end, batch[-1].block_hash)
        parent = (end, batch[-1].block_hash)
    assert parent is not None
    return parent


def run(db_url: str, works: int, per_work: int, new: int, match: bool) -> dict[str, float]:
    declared, granted = workload(works, per_work)
    rng = random.Random(7)
    figures: dict[str, float] = {}
    with Store.open(db_url) as store:
        # As the indexer runs it: with the search that relates a declarer's own copies.
        matcher = WorkMatcher(store, SimilarityIndex(store), SnippetIndex(store)) if match else None
        detector = LicenceDetector(store, clock=lambda: NOW, batch=1000, matcher=matcher)
        started = time.monotonic()
        parent = _apply(store, declared, None)
        parent = _apply(store, granted, parent)
        figures["load"] = len(granted) / (time.monotonic() - started)
        started = time.monotonic()
        detector.run()
        figures["backlog"] = len(granted) / (time.monotonic() - started)
        with store.engine.begin() as conn:
            assert conn.execute(select(func.count()).select_from(licence_queue)).scalar() == 0
            figures["found"] = conn.execute(
                select(func.count()).select_from(licence_conflicts)
            ).scalar_one()
        # New grants: half plain, half planted exclusive clashes with a live grant.
        by_work: dict[str, list[GrantedEvent]] = {}
        for g in granted:
            by_work.setdefault(str(g.iscc_id), []).append(g)
        block = parent[0] + 1
        fresh, planted = [], set()
        for i in range(new):
            n = len(granted) + i
            if i % 2:
                target = rng.choice(granted)
                work = next(w for w in declared if w.iscc_id_body == target.iscc_id.body)
                clash = _grant(
                    rng, n, work, block + i // 100, work.declarer,
                    territories=target.territories, uses=target.uses, start=target.start,
                    end=target.end, exclusive=True,
                )  # fmt: skip
                planted.add((target.grant_id, clash.grant_id))
                fresh.append(clash)
            else:
                work = declared[rng.randrange(works)]
                fresh.append(_grant(rng, n, work, block + i // 100, work.declarer))
        started = time.monotonic()
        for start in range(0, len(fresh), 100):
            batch = fresh[start : start + 100]
            end = batch[-1].block_number
            store.apply(CHAIN, CONTRACT, batch, parent, end, batch[-1].block_hash)
            parent = (end, batch[-1].block_hash)
            detector.run()
        figures["grant_ms"] = (time.monotonic() - started) * 1000 / len(fresh)
        found = {
            (c["other_grant_id"], c["grant_id"])
            for c in list_licence_conflicts(store, kind=EXCLUSIVE_OVERLAP, limit=10**7)
        }
        missed = planted - found
        if missed:
            raise SystemExit(f"{len(missed)} planted exclusive clashes not found")
        # Usage reports of declared works (by datahash), judged after every 100.
        started = time.monotonic()
        for i in range(new):
            work = declared[rng.randrange(works)]
            store_usage_report(
                store,
                chain_id=CHAIN,
                contract=CONTRACT,
                reporter=f"0x{rng.getrandbits(160):040x}",
                iscc_code_raw=work.iscc_code_raw,
                datahash=work.datahash,
                territory=rng.choice(COUNTRIES),
                use=int(rng.choice(USES)),
                used_at=T0 + rng.randrange(0, 3 * YEAR),
                nonce=i,
                signature=b"\x01" * 65,
                digest=keccak(i.to_bytes(32, "big")),
                now=NOW,
            )
            if i % 100 == 99:
                detector.run()
        detector.run()
        figures["usage_ms"] = (time.monotonic() - started) * 1000 / new
        with store.engine.begin() as conn:
            conn.execute(delete(licence_queue))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=10_000)
    parser.add_argument("--per-work", type=int, default=10, help="grants per work")
    parser.add_argument("--new", type=int, default=1000, help="new grants and usage reports")
    parser.add_argument("--pg-url", default=os.environ.get("ISCC_REGISTRY_TEST_PG_URL"))
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--no-search",
        action="store_true",
        help="relate works by content conflicts only (no WorkMatcher, which the indexer runs)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run that checks the script works end to end (its figures mean nothing)",
    )
    args = parser.parse_args()
    if args.quick:
        args.works, args.per_work, args.new = 200, 5, 100
    backends = ["SQLite"] if args.sqlite_only else ["SQLite", "PostgreSQL"]
    if "PostgreSQL" in backends and not args.pg_url:
        raise SystemExit(
            "no PostgreSQL: pass --pg-url, --sqlite-only, or source scripts/postgres.sh && "
            "pg_test_start"
        )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-licences-") as tmp:
        for backend in backends:
            url = (
                f"sqlite:///{Path(tmp) / 'licences.db'}"
                if backend == "SQLite"
                else _pg_database(args.pg_url)
            )
            print(f"{backend}: load, backlog, new grants, usage reports", file=sys.stderr)
            figures = run(url, args.works, args.per_work, args.new, not args.no_search)
            rows.append((backend, figures))
    grants = args.works * args.per_work
    print(
        f"\n{grants:,} grants on {args.works:,} works, then {args.new:,} new grants (half of "
        f"them planted exclusive clashes, all found) and {args.new:,} usage reports, "
        f"{os.cpu_count()} CPUs, {'without' if args.no_search else 'with'} the search for a "
        "declarer's own copies\n"
    )
    print(
        "| store | load (grants/s) | backlog detection (grants/s) | conflicts in backlog | "
        "new grant, stored + judged (ms) | usage report, stored + judged (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for backend, f in rows:
        print(
            f"| {backend} | {f['load']:,.0f} | {f['backlog']:,.0f} | {f['found']:,.0f} | "
            f"{f['grant_ms']:.2f} | {f['usage_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
