"""OPTIONS answered with the methods a path allows, and CORS when it is configured."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AllowedMethods", "install_cors"]


class AllowedMethods:
    """`OPTIONS <path>` (not a CORS preflight, which CORSMiddleware answers when configured)
    gets 204 with `Allow`: the methods of the routes matching the path. Other methods a route
    does not take get 405 with `Allow` from the router (errors.py keeps its header)."""

    def __init__(self, app: ASGIApp, router_app: FastAPI) -> None:
        self.app = app
        self.router_app = router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        methods: set[str] = set()
        for route in self.router_app.router.routes:
            match, _child = route.matches(scope)
            if match != Match.NONE:
                methods |= getattr(route, "methods", None) or {"GET", "HEAD"}
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
