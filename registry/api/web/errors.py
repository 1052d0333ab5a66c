"""Errors as pages for browsers: the JSON API's error handlers answer programs as before, and
a request that asks for HTML (a browser following a link or typing a URL) gets the same status
and message as a page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from registry.errors import RegistryError

__all__ = ["install_error_pages", "wants_html"]

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]
Render = Callable[[Request, int, str], Response]


def wants_html(request: Request) -> bool:
    """True for a browser's navigation (Accept lists text/html before any JSON); XHR, fetch
    and API clients send */* or application/json and keep getting JSON."""
    accept = request.headers.get("accept", "").lower()
    if "text/html" not in accept:
        return False
    json_at = accept.find("application/json")
    return json_at < 0 or accept.find("text/html") < json_at


def install_error_pages(app: FastAPI, render: Render) -> None:
    """Wrap the installed handlers of these exception types: HTML by `render` for browsers,
    the JSON handler's answer for everyone else (its status and message reused, so the two
    never disagree)."""
    for kind in (StarletteHTTPException, RequestValidationError, RegistryError, Exception):
        json_handler = app.exception_handlers.get(kind)
        if json_handler is not None:
            app.add_exception_handler(kind, _negotiating(json_handler, render))


def _negotiating(json_handler: Handler, render: Render) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        answer = json_handler(request, exc)
        response = await answer if isinstance(answer, Awaitable) else answer
        if not wants_html(request):
            return response
        try:
            message = json.loads(bytes(response.body))["message"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return response
        page = render(request, response.status_code, str(message))
        for name in ("retry-after", "allow"):
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page

    return handle
