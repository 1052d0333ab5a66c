"""Running the service under uvicorn with the limits a public deployment needs.

uvicorn bounds neither the time a client takes to send its request head nor the head's size
when it parses with httptools (its default with uvicorn[standard], and the faster parser): a
client sending one byte a second, or a 2 MB header block, held a connection for as long as it
liked. The protocol below adds both; everything else is uvicorn's own configuration.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from registry.config import Settings, get_settings

__all__ = ["GuardedHttpTools", "answer_health_from", "freeze_start_up", "run", "uvicorn_options"]

HEALTH_PATHS = (b"/health", b"/v1/health")


class GuardedHttpTools(HttpToolsProtocol):
    """httptools' protocol with a deadline for each request head and a cap on its size.

    Named by import string (uvicorn's worker processes are spawned and import it); the limits
    are class settings that `configure` sets, or the environment's in a spawned worker.
    """

    limits: tuple[int, float] | None = None
    """(largest head in bytes, seconds a head may take)."""

    health: ClassVar[Callable[[], tuple[int, bytes] | None] | None] = None
    """The process's last health answer (HealthMonitor.answer), or None before its first
    check. A `GET /health` is answered from it here, as soon as its head is parsed: through
    the app it took one more turn of a busy event loop (the app's task runs in the next
    one) and the whole middleware stack, which is what a probe's latency under load was."""

    @classmethod
    def configure(cls, settings: Settings) -> None:
        cls.limits = (settings.max_header_kb * 1024, settings.header_timeout_s)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if GuardedHttpTools.limits is None:
            GuardedHttpTools.configure(get_settings())
        assert GuardedHttpTools.limits is not None
        self.max_head, self.head_timeout = GuardedHttpTools.limits
        self._head_size = 0
        self._head_too_large = False
        self._head_timer: asyncio.TimerHandle | None = None
        # Set once a health probe is answered here: the connection closes, and whatever else
        # it brought in the same read is dropped rather than run by the app unanswered.
        self._answered = False
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # Only a head still in progress is cut: an idle kept-alive connection is uvicorn's
        # keep-alive timeout's business, a running request the app's.
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408, b"the request head did not arrive in time")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_too_large:
            return
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the next request's head on a kept-alive connection
        super().data_received(data)
        if self._head_too_large:
            self._refuse(431, b"the request head is larger than this service accepts")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.max_head:
            self._head_too_large = True

    def on_headers_complete(self) -> None:
        self._disarm()
        if self._head_too_large or self._answered:
            # Never handed to the app: data_received answers 431, or a health answer closed
            # the connection.
            return
        if self._answer_health():
            return
        super().on_headers_complete()

    def _answer_health(self) -> bool:
        health = GuardedHttpTools.health
        if health is None or self.parser.get_method() != b"GET":
            return False
        if httptools.parse_url(self.url).path not in HEALTH_PATHS:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            # A request ahead of it on this connection is answered first: written now, the
            # probe's answer went out as the answer to that one, and the connection closed
            # under it (attacker review). uvicorn queues it behind, and the app answers it.
            return False
        if self.parser.should_upgrade():
            return False  # uvicorn's upgrade handling needs the scope it would have set
        answer = health()
        if answer is None:
            return False  # before the first check: the app waits for it
        status, body = answer
        self._answered = True
        reason = HTTPStatus(status).phrase.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"cache-control: no-store\r\nconnection: close\r\n\r\n%s"
            % (status, reason, len(body), body)
        )
        self.transport.close()
        return True

    def on_body(self, body: bytes) -> None:
        if not self._head_too_large and not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._head_too_large and not self._answered:
            super().on_message_complete()

    def _refuse(self, status: int, message: bytes) -> None:
        if self.transport.is_closing():
            return
        reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason, len(message), message)
        )
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for this deployment: forwarded headers only from the configured
    proxies (uvicorn itself trusts 127.0.0.1 by default, so anything on the host could claim
    any client address), timeouts, a connection cap and the guarded protocol."""
    proxies = settings.trusted_proxies.strip()
    GuardedHttpTools.configure(settings)
    return {
        "http": f"{__name__}:GuardedHttpTools",
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or "",
        "server_header": False,
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_kb * 1024,
        # uvicorn restarts a worker that does not answer its supervisor's ping within 5 s by
        # default: on a busy 2-core host a worker importing the service (or building its
        # similarity index at a million declarations) misses that, and is restarted forever.
        "timeout_worker_healthcheck": 60,
        # Without it, a shutdown waits for every open request, however slow its client.
        "timeout_graceful_shutdown": 30,
    }


def answer_health_from(app: Any) -> None:
    """Let the protocol answer `GET /health` from `app`'s health checks (one app per serving
    process)."""
    GuardedHttpTools.health = app.state.health.answer


def freeze_start_up() -> None:
    """Exempt what the serving process holds from start-up on (modules, the app, its routes:
    some 160,000 objects) from the cyclic garbage collector. A full collection walked them all
    with the event loop stopped, 50-300 ms on a busy host: the tail of every latency under
    load. They live as long as the process anyway."""
    gc.collect()
    gc.freeze()


def run(settings: Settings, app: Any, host: str, port: int, workers: int = 1) -> None:
    """Serve `app` (an app, or an import string of a factory with `workers` > 1, which
    calls `freeze_start_up` in each worker)."""
    options = uvicorn_options(settings)
    if workers > 1:
        options |= {"factory": True, "workers": workers}
    else:
        answer_health_from(app)
        freeze_start_up()
    uvicorn.run(app, host=host, port=port, log_level="warning", **options)
