"""Health and Prometheus metrics: is the index there, how far behind the chain is it."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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

from registry.api.errors import error_status
from registry.api.models import Health, IndexerState, NetworkOut, RelayerState
from registry.api.state import AppState, state_of
from registry.chain.networks import index_confirmations, network_for
from registry.errors import RegistryError
from registry.ledger.notify import outbox_counts

log = logging.getLogger(__name__)
router = APIRouter(tags=["service"])


def indexer_state(
    state: AppState, head: int | None, node_problem: str | None
) -> tuple[IndexerState | None, list[str]]:
    """The indexer's progress against the chain head (as last asked of the node) and what is
    wrong with it."""
    if state.deployment is None or state.contract is None:
        return None, []
    problems = [node_problem] if node_problem else []
    done = state.store.checkpoint(state.deployment.chain_id, state.contract)
    if state.indexer_problem:
        problems.append(state.indexer_problem)
    lag = None if head is None or done is None else max(0, head - done)
    if lag is not None and lag > (allowed := allowed_lag(state)):
        # The indexer may be another process (`serve --no-index`): this is how a dead one shows.
        problems.append(
            f"the index is {lag} blocks behind the chain head (more than {allowed}): "
            "is the indexer running?"
        )
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


def allowed_lag(state: AppState) -> int:
    """Blocks the index may trail the head: the confirmations it waits for, and the blocks of
    HEALTH_MAX_LAG_S setting."""
    assert state.deployment is not None
    chain_id = state.deployment.chain_id
    network = network_for(chain_id, state.settings.networks_path)
    blocks = math.ceil(state.settings.health_max_lag_s / max(network.block_time, 0.1))
    return index_confirmations(state.settings, chain_id) + blocks


# A process checks its own health once a second, in threads of its own, and every probe is
# answered from the last check, on the event loop: a probe queued behind a busy thread pool, or
# one that read the store itself, was slowest exactly when a load balancer most needs the truth.
HEALTH_CHECK_S = 1.0
# A store check that has not come back for this long means the store hangs: say so (503)
# rather than repeat what was true before.
HEALTH_STALE_S = 10.0
# The chain node is asked in a thread of its own (a node that hangs holds a call for the RPC
# timeout, 30 s, and used to turn the whole answer into a 503 while the store was fine). Its
# last answer counts for this long; then the node is a problem of the answer, as a refusing
# node is.
NODE_STALE_S = 10.0
# The first check waits this long for the node's first answer.
NODE_FIRST_WAIT_S = 2.0


@dataclass(frozen=True)
class NodeAnswer:
    """What the node said at `at` (monotonic): the head or why it is unknown, and the
    relaying account with its balance."""

    at: float
    head: int | None
    problem: str | None
    relayer: tuple[str, int | None] | None


def _node_part(
    node: NodeAnswer | None, now: float
) -> tuple[int | None, str | None, tuple[str, int | None] | None]:
    """The head, the node's problem and the relayer's balance as of `now` from the node's
    last answer: a head older than NODE_STALE_S is no head."""
    if node is None:
        return None, "the chain node has not answered yet", None
    if now - node.at > NODE_STALE_S:
        return None, f"the chain node has not answered for {now - node.at:.0f} s", node.relayer
    return node.head, node.problem, node.relayer


def _health_now(state: AppState, node: NodeAnswer | None, now: float) -> Health:
    head, problem, balance = _node_part(node, now)
    indexer, problems = indexer_state(state, head, problem)
    relayer = None
    if balance is not None:
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
    return Health(
        status="degraded" if problems else "ok",
        declarations=state.store.count(),
        indexer=indexer,
        network=network,
        relayer=relayer,
        problems=problems,
    )


class HealthMonitor:
    """The answer to /health, checked again every HEALTH_CHECK_S by a thread that starts with
    the service, and the chain node's part of it, asked by a second thread."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._checked: tuple[float, int, bytes] | None = None
        self._node: NodeAnswer | None = None
        self._node_answered = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def check(self) -> tuple[int, bytes]:
        """Check the store, the indexer and the relayer now, with the node's last answer."""
        self.start()
        self._node_answered.wait(NODE_FIRST_WAIT_S)
        try:
            health = _health_now(self.state, self._node, time.monotonic())
            status, body = 200, health.model_dump_json().encode()
        except RegistryError as exc:  # the store refused: the probe must hear it
            status, kind = error_status(exc)
            body = json.dumps({"error": kind, "message": str(exc)}).encode()
        except Exception:
            log.exception("health check failed")
            status, body = 500, b'{"error":"internal","message":"internal error"}'
        self._checked = (time.monotonic(), status, body)
        return status, body

    def ask_node(self) -> None:
        """Ask the node for its head and the relayer's balance now."""
        state = self.state
        head, problem = state.chain_head() if state.deployment is not None else (None, None)
        try:
            balance = state.relayer_balance()
        except Exception as exc:
            # Anything but RegistryError (a relayer key that does not load, a node's odd
            # answer) ended this thread: the answer said "the chain node has not answered"
            # from then on, whatever the node did (attacker review).
            log.exception("the relayer's balance could not be read")
            balance = None
            problem = problem or f"the relayer's balance could not be read: {type(exc).__name__}"
        self._node = NodeAnswer(time.monotonic(), head, problem, balance)
        self._node_answered.set()

    @property
    def node(self) -> NodeAnswer | None:
        """The node's last answer, None before its first."""
        return self._node

    def answer(self) -> tuple[int, bytes] | None:
        """The last check's answer (503 if it is older than HEALTH_STALE_S); None before the
        first check."""
        if self._checked is None:
            return None
        checked_at, status, body = self._checked
        age = time.monotonic() - checked_at
        if age > HEALTH_STALE_S:
            message = f"the store has not answered for {age:.0f} s"
            return 503, json.dumps({"error": "unavailable", "message": message}).encode()
        return status, body

    def start(self) -> None:
        with self._lock:
            if self._threads or self._stop.is_set():
                return
            for name, step in (("health-node", self.ask_node), ("health", self.check)):
                thread = threading.Thread(target=self._every, args=(step,), name=name, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _every(self, step: Callable[[], object]) -> None:
        while True:
            step()
            if self._stop.wait(HEALTH_CHECK_S):
                return

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=30)


@router.get("/v1/health", response_model=Health, summary="Service and indexer health")
@router.get("/health", response_model=Health, summary="Service and indexer health")
async def health(request: Request) -> Response:
    """`ok` when the store answers, the chain (if configured) is reachable and the index keeps
    up with it, as checked at most a second ago; `degraded` with the problems otherwise; 503
    when the store cannot be reached or has not answered the checks for ten seconds."""
    monitor: HealthMonitor = request.app.state.health
    answer = monitor.answer()
    if answer is None:
        # A probe before the first check waits for it, but no longer than a check may take: a
        # store that hangs from the start is a 503 too, not a probe that hangs with it.
        monitor.start()
        deadline = time.monotonic() + HEALTH_STALE_S
        while (answer := monitor.answer()) is None and time.monotonic() < deadline:
            await anyio.sleep(0.02)
        if answer is None:
            message = f"the first health check has not come back in {HEALTH_STALE_S:.0f} s"
            answer = 503, json.dumps({"error": "unavailable", "message": message}).encode()
    status, body = answer
    return Response(body, status_code=status, media_type="application/json")


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
    # The node's part from the health thread's last answer: asked here, a scrape waited on a
    # node that did not answer, in a worker thread every sync route shares (attacker review).
    monitor: HealthMonitor = request.app.state.health
    monitor.start()
    head, problem, balance = _node_part(monitor.node, time.monotonic())
    indexer, _problems = indexer_state(state, head, problem)
    if indexer is not None:
        if indexer.lag_blocks is not None:
            collectors.lag.set(indexer.lag_blocks)
        if indexer.indexed_block is not None:
            collectors.indexed.set(indexer.indexed_block)
    collectors.declarations.set(state.store.count())
    for status, count in outbox_counts(state.store).items():
        collectors.deliveries.labels(status).set(count)
    collectors.event_streams.set(sum(request.app.state.event_feed.streams.values()))
    if balance is not None and balance[1] is not None:
        collectors.relayer_balance.set(balance[1])
    return Response(generate_latest(collectors.registry), media_type=CONTENT_TYPE_LATEST)
