"""Notification endpoints: webhook subscriptions and the server-sent-events feed of cases.

The feed holds no server thread per client: streams are async generators on the event loop,
one poller per process watches the store's newest notice and wakes them, and a stream reads
the store (in a worker thread, briefly) only when there is something new for it. Streams are
capped in all and per client (issue 18: clients that wait must not starve the service).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from registry.api.errors import ERROR_RESPONSES, RateLimited, RelayUnauthorized
from registry.api.formats import ISCC_ID
from registry.api.ratelimit import RateLimiter
from registry.api.state import client_of, state_of, store_of
from registry.errors import InputError, StoreError
from registry.ledger import notify
from registry.ledger.webhooks import MAX_URL
from registry.store.store import Store

__all__ = ["EventFeed", "router"]

router = APIRouter(prefix="/v1", tags=["notifications"], responses=ERROR_RESPONSES)

SUBSCRIBE_PER_CLIENT_PER_MIN = 10
KEEPALIVE_S = 15.0
POLL_S = 0.5
BATCH = 100
FILTER = r"^[A-Za-z0-9:_.-]{1,80}$"


class SubscriptionIn(BaseModel):
    """Where to POST notices, and which ones (every filter given must match)."""

    url: str = Field(
        max_length=MAX_URL,
        description="http(s) URL on a public address; redirects are not followed",
        examples=["https://example.org/hooks/registry"],
    )
    case_id: str | None = Field(None, pattern=FILTER, description="Only this case")
    work: str | None = Field(
        None, max_length=64, pattern=ISCC_ID, description="Only cases about this ISCC-ID"
    )
    kind: str | None = Field(
        None,
        pattern=r"^[a-z_]{1,32}$",
        description="Only this conflict kind, e.g. exclusive_overlap",
    )


class SubscriptionOut(BaseModel):
    id: str
    url: str
    secret: str | None = Field(
        None,
        description="Signs every delivery (HMAC-SHA256, see docs/api.md); shown once, at "
        "creation. Also the bearer token that deletes the subscription.",
    )
    case_id: str | None
    work: str | None
    kind: str | None
    created: int
    deliveries: dict[str, int] | None = Field(
        None, description="Outbox rows by state: pending, delivered, failed"
    )


def _secret(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RelayUnauthorized("send the subscription's secret as Authorization: Bearer <secret>")
    return token.strip()


def _subscribe_limit(request: Request) -> RateLimiter:
    return request.app.state.subscribe_limit


_AUTH = {401: {"description": "No secret sent"}, 403: {"description": "Not its secret"}}


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionOut,
    summary="Subscribe a webhook to case notices",
    responses={
        403: {"description": "This client holds the most subscriptions the service keeps"},
        429: {"description": "Too many subscription requests from this client"},
    },
)
async def create_subscription(request: Request, body: SubscriptionIn) -> Any:
    """Every notice of a case that opens or changes and matches the filters is POSTed to `url`
    as JSON, signed with the returned secret, and retried with backoff until it is answered
    with 2xx (or given up after the service's number of attempts)."""
    client = client_of(request)
    if wait := _subscribe_limit(request).allow(client):
        raise RateLimited(f"too many subscription requests; retry in {wait:.0f} s", wait)
    state = state_of(request)
    # check_url resolves the host name: a blocking call, off the event loop.
    return await anyio.to_thread.run_sync(
        lambda: notify.subscribe(
            state.store,
            state.settings,
            body.url,
            client,
            case_id=body.case_id,
            work=body.work,
            kind=body.kind,
        )
    )


SubscriptionId = Annotated[str, Path(max_length=40, pattern=r"^sub_[0-9a-f]{24}$")]
Authorization = Annotated[str | None, Header(description="Bearer <the subscription's secret>")]


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    summary="A subscription and its deliveries",
    responses=_AUTH,
)
def get_subscription(
    request: Request, subscription_id: SubscriptionId, authorization: Authorization = None
) -> Any:
    return notify.subscription(store_of(request), subscription_id, _secret(authorization))


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    summary="Delete a subscription",
    responses=_AUTH,
)
def delete_subscription(
    request: Request, subscription_id: SubscriptionId, authorization: Authorization = None
) -> Response:
    """With the subscription's secret; its undelivered notices are dropped."""
    notify.unsubscribe(store_of(request), subscription_id, _secret(authorization))
    return Response(status_code=204)


class EventFeed:
    """One per process: counts the open streams and wakes them when a notice arrives."""

    def __init__(self, store: Store, max_streams: int, per_client: int) -> None:
        self.store = store
        self.max_streams = max_streams
        self.per_client = per_client
        self.latest = 0
        self.streams: Counter[str] = Counter()
        self.closing = False
        self._changed: asyncio.Condition | None = None
        self._poller: asyncio.Task[None] | None = None

    async def _start(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
            self._poller = asyncio.create_task(self._poll())
        return self._changed

    async def _poll(self) -> None:
        assert self._changed is not None
        while not self.closing:
            try:
                latest = await anyio.to_thread.run_sync(notify.latest_notice, self.store)
            except StoreError:
                latest = self.latest  # the store is away; streams keep waiting
            if latest != self.latest:
                self.latest = latest
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(POLL_S)

    async def wait_beyond(self, last_id: int, timeout: float) -> bool:
        """Whether a notice above `last_id` exists, waiting up to `timeout` for one."""
        changed = await self._start()
        if self.latest > last_id:
            return True
        try:
            async with changed:
                await asyncio.wait_for(
                    changed.wait_for(lambda: self.latest > last_id or self.closing), timeout
                )
        except TimeoutError:
            return False
        return self.latest > last_id

    async def close(self) -> None:
        self.closing = True
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
        if self._poller is not None:
            self._poller.cancel()

    def admit(self, client: str) -> str | None:
        """Count a new stream of `client`, or say why it is refused."""
        if sum(self.streams.values()) >= self.max_streams:
            return "this service serves as many event streams as it can; retry later"
        if self.streams[client] >= self.per_client:
            return f"this client has {self.per_client} event streams open already"
        self.streams[client] += 1
        return None

    def leave(self, client: str) -> None:
        self.streams[client] -= 1
        if self.streams[client] <= 0:
            del self.streams[client]


def _frame(notice: dict[str, Any]) -> bytes:
    data = notify.notice_body(notice).decode()
    return f"id: {notice['id']}\nevent: {notice['type']}\ndata: {data}\n\n".encode()


async def _stream(
    feed: EventFeed,
    last_id: int,
    case_id: str | None,
    work: str | None,
    kind: str | None,
) -> AsyncIterator[bytes]:
    # How long a browser's EventSource waits before it reconnects (with Last-Event-ID).
    yield b"retry: 3000\n\n"
    read = partial(notify.matching_notices, case_id=case_id, work=work, kind=kind)
    while not feed.closing:
        found, last_id = await anyio.to_thread.run_sync(read, feed.store, last_id, BATCH)
        for notice in found:
            yield _frame(notice)
        if len(found) == BATCH:
            continue
        if not await feed.wait_beyond(last_id, KEEPALIVE_S):
            # A comment line keeps proxies from closing an idle stream.
            yield b": keepalive\n\n"


class _EventStream(StreamingResponse):
    """A stream that gives its place back however it ends: finished, failed, or cancelled
    when the client goes away (the generator may never see that itself)."""

    def __init__(self, feed: EventFeed, client: str, content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.feed = feed
        self.client = client

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.feed.leave(self.client)


def feed_of(request: Request) -> EventFeed:
    return request.app.state.event_feed


@router.get(
    "/events",
    summary="Server-sent events: case notices as they happen",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "An event stream: `id` is the notice number, `event` its type "
            "(case.opened, case.changed), `data` the notice as JSON",
        },
        503: {"description": "Too many event streams open; retry later"},
    },
)
async def events(
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=20,
            pattern=r"^[0-9]*$",
            description="Resume after this notice (browsers send it when they reconnect)",
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, lt=2**63, description="Resume after this notice (instead of the header)"),
    ] = None,
    case_id: Annotated[str | None, Query(pattern=FILTER)] = None,
    work: Annotated[str | None, Query(max_length=64, pattern=ISCC_ID)] = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
) -> Response:
    """Without a position the stream starts with what happens from now on; with
    `Last-Event-ID` (or `after`) it first replays every notice after that one."""
    feed = feed_of(request)
    client = client_of(request)
    if refusal := feed.admit(client):
        return JSONResponse(
            status_code=503,
            content={"error": "too-many-streams", "message": refusal},
            headers={"Retry-After": "10"},
        )
    try:
        if last_event_id:
            start = int(last_event_id)
            if start >= 2**63:
                raise InputError("Last-Event-ID is not a notice number of this service")
        elif after is not None:
            start = after
        else:
            start = await anyio.to_thread.run_sync(notify.latest_notice, feed.store)
    except BaseException:
        feed.leave(client)
        raise
    return _EventStream(feed, client, _stream(feed, start, case_id, work, kind))
