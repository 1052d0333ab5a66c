"""`index`: mirror the registry's events into the store, once or following the chain."""

from __future__ import annotations

import json
import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from registry.cli.common import JsonOpt, app, err, get_settings, open_registry, open_store, out
from registry.defaults import DEFER_LOOKUPS_AFTER
from registry.errors import ChainUnavailable

if TYPE_CHECKING:
    from registry.config import Settings
    from registry.store.store import Store


@app.command()
def index(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new blocks until SIGTERM or Ctrl-C")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --follow")] = 1.0,
    ws: Annotated[
        str | None,
        typer.Option(
            "--ws",
            help="With --follow: WebSocket URL of the node, to sync at each new block "
            "(default: ISCC_REGISTRY_WS_URL; polling goes on as a fallback)",
            show_default=False,
        ),
    ] = None,
    max_range: Annotated[
        int, typer.Option(min=1, help="Most blocks per eth_getLogs call (shrinks when refused)")
    ] = 2000,
    reset: Annotated[
        bool, typer.Option("--reset", help="Forget what was indexed from this registry first")
    ] = False,
    defer_lookups_after: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Drop the lookup indexes while catching up on at least this many events, and "
            "build them at the end; 0: never (default: ISCC_REGISTRY_DEFER_LOOKUPS_AFTER or "
            f"{DEFER_LOOKUPS_AFTER:,})",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Mirror the registry's events into the store (idempotent: safe to run again, or to kill).

    Reorganised blocks are rolled back and replayed; with --follow the indexer rides out node
    failures and prints lag and throughput (JSON lines with --json). While a large backlog is
    caught up, lookups by ISCC-CODE, datahash and declarer scan the store instead of using
    indexes, and conflict detection waits for the end.
    """
    settings = get_settings()
    store = open_store(settings)
    try:
        _index(
            store,
            settings,
            follow,
            poll,
            max_range,
            reset,
            defer_lookups_after,
            json_out,
            ws or settings.ws_url,
        )
    except ChainUnavailable:
        # An indexer that cannot reach its node (any more) leaves the store with fast lookups,
        # whatever a catch-up it cut short had dropped; the next large one drops them again.
        store.restore_lookups()
        raise


def _index(
    store: Store,
    settings: Settings,
    follow: bool,
    poll: float,
    max_range: int,
    reset: bool,
    defer_lookups_after: int | None,
    json_out: bool,
    ws_url: str | None = None,
) -> None:
    from registry.chain.deployment import Deployment
    from registry.chain.networks import index_confirmations
    from registry.index.report import SyncReport
    from registry.index.waiting import open_when_reachable
    from registry.ledger.case_policy import CasePolicy
    from registry.ledger.indexer import Indexer

    stop = threading.Event()
    if follow:
        for signum in (signal.SIGINT, signal.SIGTERM):
            # The batch in flight commits or rolls back as a whole; the loop stops after it.
            signal.signal(signum, lambda *_: stop.set())

        def waiting(problem: str, delay: float) -> None:
            err.print(
                f"waiting for the node: {problem}; retrying in {delay:.1f} s", highlight=False
            )

        # Following may start before its node does (a service manager starts both): wait.
        registry = open_when_reachable(
            Deployment.load(settings.deployment_path), settings.rpc_url, stop, waiting
        )
        if registry is None:
            err.print("stopped")
            return
    else:
        registry = open_registry(settings)
    follower = Indexer(
        registry,
        store,
        confirmations=index_confirmations(settings, registry.deployment.chain_id),
        max_range=max_range,
        defer_lookups_after=(
            settings.defer_lookups_after if defer_lookups_after is None else defer_lookups_after
        ),
        cases=CasePolicy.of(settings),
    )
    if reset:
        removed = follower.store.forget(follower.chain_id, follower.contract)
        err.print(f"forgot {removed} declarations indexed from {follower.contract}")

    def show(report: SyncReport) -> None:
        if json_out:
            print(json.dumps(report.to_dict()), flush=True)
            return
        rolled = f", {report.events_rolled_back} rolled back" if report.events_rolled_back else ""
        parts = [
            f"{seconds:.2f} s {what}"
            for seconds, what in (
                (report.index_seconds, "building lookup indexes"),
                (report.detect_seconds, "conflict detection"),
            )
            if seconds >= 0.01
        ]
        of_it = f" ({', '.join(parts)})" if parts else ""
        out.print(
            f"blocks {report.from_block}-{report.to_block} (head {report.head}, lag "
            f"{report.lag}): {report.events_new} new of {report.events_seen} events{rolled} in "
            f"{report.seconds:.2f} s{of_it}, {report.events_per_second:,.0f} events/s indexed",
            highlight=False,
        )

    if not follow:
        show(follower.sync())
        return
    wake = None
    if ws_url:
        from registry.index.heads import NewHeads

        wake = threading.Event()
        NewHeads(ws_url, wake, stop).start()
    err.print(f"following {follower.contract}; SIGTERM or Ctrl-C to stop")
    follower.follow(stop, poll_interval=poll, on_progress=show, wake=wake)
    err.print("stopped")
