"""The FastAPI application: routes, error handling, metrics and the in-process indexer."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from registry import __version__
from registry.api import (
    conflicts,
    declare,
    health,
    ledger,
    metadata,
    notifications,
    relay,
    resolve,
    search,
)
from registry.api.admission import StoreReads
from registry.api.chain_threads import (
    PAGE_NODE_WAITS,
    WALLET_NODE_WAITS,
    NodeWaits,
    chain_admission,
)
from registry.api.docs import install_docs
from registry.api.errors import install_error_handlers
from registry.api.health import HealthMonitor, Metrics
from registry.api.limits import BodyLimit
from registry.api.methods import AllowedMethods, install_cors
from registry.api.ratelimit import RateLimiter
from registry.api.relay import RelayPolicy
from registry.api.state import AppState
from registry.api.web import install_pages
from registry.config import Settings, get_settings
from registry.errors import RegistryError
from registry.metadata import MAX_FEATURE_DOCUMENT_BYTES
from registry.store.store import Store

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger(__name__)
RETRY_S = 5.0


def _run_indexer(state: AppState, stop: threading.Event) -> None:
    """Follow the chain until stopped. A node that is down at start or goes away is waited
    for; anything else is reported in /health rather than killing the API."""
    from registry.chain.networks import index_confirmations
    from registry.ledger.case_policy import CasePolicy
    from registry.ledger.indexer import Indexer

    wake = None
    if state.settings.ws_url:
        from registry.index.heads import NewHeads

        # One listener for the service's life; it reconnects by itself.
        wake = threading.Event()
        NewHeads(state.settings.ws_url, wake, stop).start()
    while not stop.is_set():
        try:
            registry = state.registry()
            follower = Indexer(
                registry,
                state.store,
                confirmations=index_confirmations(state.settings, registry.deployment.chain_id),
                similarity=state.similarity(),
                defer_lookups_after=state.settings.defer_lookups_after,
                cases=CasePolicy.of(state.settings),
            )
            state.indexer_problem = None
            follower.follow(stop, wake=wake)
        except RegistryError as exc:
            state.indexer_problem = f"indexer: {exc}"
            log.warning("%s; retrying in %.0f s", state.indexer_problem, RETRY_S)
        except Exception as exc:  # a bug in the indexer must not take the API down with it
            state.indexer_problem = f"indexer crashed: {type(exc).__name__}: {exc}"
            log.exception("indexer crashed; retrying in %.0f s", RETRY_S)
        stop.wait(RETRY_S)


def _deliver(state: AppState, stop: threading.Event) -> None:
    """Announce case changes and post webhooks until stopped (registry.ledger.notify)."""
    from registry.ledger.notify import Deliverer, DeliveryPolicy

    Deliverer(state.store, DeliveryPolicy.from_settings(state.settings)).run(stop)


def _warm_up(state: AppState) -> None:
    try:
        state.similarity().refresh()
    except Exception as exc:  # a failed warm-up only means the first search builds it
        log.warning("similarity index warm-up failed: %s", exc)


def create_app(
    settings: Settings | None = None, *, store: Store | None = None, follow: bool = False
) -> FastAPI:
    """The service for `settings`. With `follow`, an indexer thread keeps the store current
    while the app runs (the `serve` default); without it the API only reads."""
    settings = settings or get_settings()
    own_store = store is None
    state = AppState.load(settings, store or Store.open(settings.database_url))
    feed = notifications.EventFeed(
        state.store, settings.max_event_streams, settings.event_streams_per_client
    )
    monitor = HealthMonitor(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        # Build the similarity index now rather than on the first search, which would
        # otherwise wait seconds at a million declarations.
        threading.Thread(target=_warm_up, args=(state,), name="warm-up", daemon=True).start()
        if follow and state.deployment is not None:
            thread = threading.Thread(
                target=_run_indexer, args=(state, stop), name="indexer", daemon=True
            )
            thread.start()
        # Every process delivers: the outbox's leases keep two from posting one row at once.
        deliverer = threading.Thread(
            target=_deliver, args=(state, stop), name="notifications", daemon=True
        )
        deliverer.start()
        # Checked from the start, so no probe waits for a first check (the first probe of a
        # process used to, for as long as a check takes).
        monitor.start()
        try:
            yield
        finally:
            stop.set()
            monitor.stop()
            await feed.close()
            if thread is not None:
                thread.join(timeout=30)
            deliverer.join(timeout=30)
            state.close()
            if own_store:
                state.store.close()

    app = FastAPI(
        title="ISCC declaration registry",
        version=__version__,
        description=(
            "Resolve ISCC-IDs, ISCC-CODEs, datahashes and declarers to on-chain declarations, "
            "find similar content and relay signed declarations."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.registry = state
    app.state.metrics = Metrics()
    app.state.health = monitor
    app.state.store_reads = StoreReads(
        settings.read_threads,
        settings.read_queue,
        settings.reads_per_client,
        inline=(
            (state.store.read_budget, settings.inline_read_ms / 1000)
            if state.store.reads_bounded and settings.inline_read_ms
            else None
        ),
    )
    app.state.chain_admission = chain_admission()
    app.state.wallet_node_waits = NodeWaits(WALLET_NODE_WAITS)
    app.state.page_node_waits = NodeWaits(PAGE_NODE_WAITS)
    app.state.event_feed = feed
    app.state.subscribe_limit = RateLimiter(notifications.SUBSCRIBE_PER_CLIENT_PER_MIN)
    app.state.note_policy = ledger.NotePolicy(
        settings.notes_per_client_per_min, settings.notes_per_signer_per_min
    )
    app.state.relay_policy = RelayPolicy(
        settings, state.deployment.chain_id if state.deployment else None
    )
    app.state.metrics.install(app)
    app.add_middleware(AllowedMethods, router_app=app)
    app.add_middleware(
        BodyLimit,
        max_body=settings.max_body_kb * 1024,
        max_upload=settings.max_upload_mb * 1024 * 1024,
        # The web page's upload runs the match endpoint: a file, streamed, too.
        streamed=(search.MATCH_PATH, "/upload"),
        timeout=settings.body_timeout_s,
        # A metadata document with granular features may be 12 MiB canonical; as posted, with
        # whitespace and escapes, allow twice that.
        larger={"/v1/metadata": 2 * MAX_FEATURE_DOCUMENT_BYTES},
    )
    # Outermost, so its answers (and preflights) carry CORS headers too.
    install_cors(app, settings.cors_origins)
    install_error_handlers(app)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        # Neither the exception's text nor its type: both tell an attacker about the code.
        return JSONResponse(
            status_code=500, content={"error": "internal", "message": "internal error"}
        )

    app.include_router(resolve.router)
    app.include_router(search.router)
    app.include_router(conflicts.router)
    app.include_router(metadata.router)
    app.include_router(relay.router)
    app.include_router(declare.router)
    app.include_router(ledger.router)
    app.include_router(notifications.router)
    app.include_router(health.router)
    install_pages(app)
    install_docs(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn's multi-process mode, which imports the app in each worker."""
    from registry.api.server import answer_health_from, freeze_start_up

    app = create_app(get_settings(), follow=False)
    answer_health_from(app)
    freeze_start_up()
    return app
