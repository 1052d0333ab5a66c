"""Pages for people, served by the API itself: HTML, CSS and a little JavaScript, nothing
fetched from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from registry.api.web.errors import install_error_pages
from registry.api.web.pages import error_page, router

__all__ = ["install_pages"]

STATIC = Path(__file__).parent / "static"


def install_pages(app: FastAPI) -> None:
    """The pages, their files, and error pages for browsers; call after the JSON error
    handlers are installed, which the error pages wrap."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_error_pages(app, error_page)
