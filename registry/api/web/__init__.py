"""Pages for people, served by the API itself: HTML, CSS and a little JavaScript, nothing
fetched from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from registry.api.web.pages import router

__all__ = ["install_pages"]

STATIC = Path(__file__).parent / "static"


def install_pages(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
