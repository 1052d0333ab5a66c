"""Request bodies are bounded in size and time on every route, while they stream in.

One pure ASGI middleware, in front of every route, so no handler can forget it and nothing
(FastAPI's JSON parsing included) ever holds more than the limit. JSON routes get their body
read here up to the limit and handed on whole; the upload route gets it in chunks, counted.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.api.errors import BodyTimeout, UploadTooLarge

__all__ = ["BodyLimit"]


class _Refused(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class BodyLimit:
    """`max_body` bytes per request body (more on the `larger` paths), except on `streamed`
    paths (uploads), which get `max_upload` bytes and are passed on chunk by chunk. A body must
    arrive within `timeout` seconds (JSON routes: all of it; uploads: each chunk)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        max_upload: int,
        streamed: tuple[str, ...],
        timeout: float,
        larger: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.streamed = streamed
        self.timeout = timeout
        self.larger = larger or {}
        """Paths whose JSON bodies may be larger than `max_body`, with their own limit."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        streamed = scope["path"] in self.streamed
        if streamed:
            limit = self.max_upload
        else:
            limit = max(self.max_body, self.larger.get(scope["path"], 0))
        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is None and not chunked:
            # No body at all (every GET on the hot resolve path): nothing to bound.
            await self.app(scope, receive, send)
            return
        try:
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                message = str(UploadTooLarge(limit)) if streamed else _too_large(limit)
                raise _Refused(413, "too-large", message)
            if streamed:
                await self.app(scope, self._counting(receive, limit), send)
            else:
                body = await self._read(receive, limit)
                await self.app(scope, _replay(body, receive), send)
        except _Refused as refused:
            await _answer(send, refused)

    async def _read(self, receive: Receive, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        break
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise _Refused(413, "too-large", _too_large(limit))
                    parts.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise _Refused(
                408, "timeout", f"the request body did not arrive within {self.timeout:.0f} s"
            ) from None
        return b"".join(parts)

    def _counting(self, receive: Receive, limit: int) -> Receive:
        size = 0

        async def counted() -> Message:
            nonlocal size
            try:
                async with asyncio.timeout(self.timeout):
                    message = await receive()
            except TimeoutError:
                # Raised inside the handler, whose error handlers answer 408/413 as JSON.
                raise BodyTimeout(f"the upload paused for more than {self.timeout:.0f} s") from None
            size += len(message.get("body", b""))
            if size > limit:
                raise UploadTooLarge(limit)
            return message

        return counted


def _too_large(limit: int) -> str:
    return f"the request body is larger than this service accepts ({limit} bytes)"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body, the only thing left to learn is whether the client went away.
        return await receive()

    return replayed


async def _answer(send: Send, refused: _Refused) -> None:
    body = json.dumps({"error": refused.kind, "message": refused.message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
