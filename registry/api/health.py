"""Health and Prometheus metrics: is the index there, how far behind the chain is it."""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.api.models import Health, IndexerState, NetworkOut, RelayerState
from registry.api.state import AppState, state_of
from registry.chain.networks import network_for
from registry.ledger.notify import outbox_counts

router = APIRouter(tags=["service"])


def indexer_state(state: AppState) -> tuple[IndexerState | None, list[str]]:
    if state.deployment is None or state.contract is None:
        return None, []
    problems = []
    done = state.store.checkpoint(state.deployment.chain_id, state.contract)
    head, problem = state.chain_head()
    if problem:
        problems.append(problem)
    if state.indexer_problem:
        problems.append(state.indexer_problem)
    lag = None if head is None or done is None else max(0, head - done)
    return (
        IndexerState(
            chain_id=state.deployment.chain_id,
            contract=state.contract,
            indexed_block=done,
            head_block=head,
            lag_blocks=lag,
            lookups_deferred=state.store.lookups_deferred(),
        ),
        problems,
    )


# Under /v1 like every other endpoint, and at the root where load balancers look first.
# Health checks get threads of their own (two at most): queued behind a pool busy with slow
# requests, a probe would time out exactly when a load balancer most needs the truth.
HEALTH_THREADS = 2
# Counting the declarations scans a table of a million rows; probes share one count a second.
COUNT_CACHE_S = 1.0


def _health_now(state: AppState) -> Health:
    indexer, problems = indexer_state(state)
    relayer = None
    if (balance := state.relayer_balance()) is not None:
        relay = state.started_relay()
        relayer = RelayerState(
            address=balance[0],
            balance_wei=balance[1],
            pending_jobs=relay.pending() if relay else 0,
            replacements=relay.sender.replacements if relay else 0,
        )
    network = None
    if state.deployment is not None:
        found = network_for(state.deployment.chain_id, state.settings.networks_path)
        network = NetworkOut(**found.to_dict())
    counted_at, count = state.declarations_counted
    if count is None or time.monotonic() - counted_at > COUNT_CACHE_S:
        count = state.store.count()
        state.declarations_counted = (time.monotonic(), count)
    return Health(
        status="degraded" if problems else "ok",
        declarations=count,
        indexer=indexer,
        network=network,
        relayer=relayer,
        problems=problems,
    )


@router.get("/v1/health", response_model=Health, summary="Service and indexer health")
@router.get("/health", response_model=Health, summary="Service and indexer health")
async def health(request: Request) -> Health:
    """`ok` when the store answers and the chain (if configured) is reachable. The number of
    declarations may be up to a second old."""
    limiter = request.app.state.health_threads
    if limiter is None:  # created on the event loop that serves the app
        limiter = request.app.state.health_threads = anyio.CapacityLimiter(HEALTH_THREADS)
    return await anyio.to_thread.run_sync(_health_now, state_of(request), limiter=limiter)


class Metrics:
    """Per-app collectors (not the process-global registry), so several apps in one process,
    as in tests, do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "iscc_registry_request_seconds",
            "HTTP request latency by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.lag = Gauge(
            "iscc_registry_indexer_lag_blocks",
            "Blocks the index is behind the chain head",
            registry=self.registry,
        )
        self.indexed = Gauge(
            "iscc_registry_indexed_block", "Last block applied to the store", registry=self.registry
        )
        self.declarations = Gauge(
            "iscc_registry_declarations", "Declarations in the store", registry=self.registry
        )
        self.deliveries = Gauge(
            "iscc_registry_webhook_deliveries",
            "Webhook deliveries in the outbox by status (pending, delivered, failed)",
            ["status"],
            registry=self.registry,
        )
        self.event_streams = Gauge(
            "iscc_registry_event_streams",
            "Server-sent-event streams open in this process",
            registry=self.registry,
        )
        self.relayer_balance = Gauge(
            "iscc_registry_relayer_balance_wei",
            "Balance of the account that pays for relayed requests",
            registry=self.registry,
        )

    def install(self, app: FastAPI) -> None:
        app.add_middleware(_ObserveLatency, histogram=self.latency)


class _ObserveLatency:
    """Pure ASGI middleware (not BaseHTTPMiddleware, which costs a task and a queue per request
    on the hot resolve path)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            # Label by template ("/iscc-id/{iscc_id}"), never by raw path: one series per
            # route, not one per identifier anybody asks for. The router leaves it in the scope.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.histogram.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request) -> Response:
    state = state_of(request)
    collectors: Metrics = request.app.state.metrics
    indexer, _problems = indexer_state(state)
    if indexer is not None:
        if indexer.lag_blocks is not None:
            collectors.lag.set(indexer.lag_blocks)
        if indexer.indexed_block is not None:
            collectors.indexed.set(indexer.indexed_block)
    collectors.declarations.set(state.store.count())
    for status, count in outbox_counts(state.store).items():
        collectors.deliveries.labels(status).set(count)
    collectors.event_streams.set(sum(request.app.state.event_feed.streams.values()))
    if (balance := state.relayer_balance()) is not None and balance[1] is not None:
        collectors.relayer_balance.set(balance[1])
    return Response(generate_latest(collectors.registry), media_type=CONTENT_TYPE_LATEST)
