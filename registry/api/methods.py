"""OPTIONS answered with the methods a path allows, and CORS when it is configured."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AllowedMethods", "install_cors"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class AllowedMethods:
    """`OPTIONS <path>` (not a CORS preflight, which CORSMiddleware answers when configured)
    gets 204 with `Allow`: the methods of the routes matching the path. Other methods a route
    does not take get 405 with `Allow` from the router (errors.py keeps its header)."""

    def __init__(self, app: ASGIApp, router_app: FastAPI) -> None:
        self.app = app
        self.router_app = router_app

    def _allowed(self, scope: Scope) -> set[str]:
        # Asked method by method: included routers nest their routes, and only a full match
        # (path and method) tells that a method is taken. A mount (static files) takes any
        # method and answers GET and HEAD.
        allowed: set[str] = set()
        for method in _METHODS:
            route = _full_match(self.router_app.router.routes, {**scope, "method": method})
            if isinstance(route, Mount):
                allowed |= {"GET", "HEAD"}
            elif route is not None:
                allowed.add(method)
        return allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        methods = self._allowed(scope)
        if not methods:
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [(b"allow", allow.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _full_match(routes: list[BaseRoute], scope: Scope) -> BaseRoute | None:
    return next((r for r in routes if r.matches(scope)[0] == Match.FULL), None)


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Browsers on `origins` may call the API; none by default. Credentials are never allowed:
    the API has no cookies, and relay tokens are sent by programs, not by browsers' ambient
    authority."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
