"""Every failure leaves the API as JSON with a status code and one readable message."""

from __future__ import annotations

import requests
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import (
    ChainUnavailable,
    Forbidden,
    InputError,
    InvalidCode,
    InvalidDeclaration,
    InvalidGrant,
    InvalidNote,
    NotFound,
    RegistryError,
    StoreError,
    UnsupportedMedia,
)
from registry.ledger.cases import CaseNotFound, IllegalTransition, NotAParty, ReplayedResponse
from registry.ledger.licence_conflicts import UsageReplayed

__all__ = [
    "ERROR_RESPONSES",
    "BodyTimeout",
    "ErrorBody",
    "GrantConflict",
    "NotFound",
    "Overloaded",
    "RateLimited",
    "RelayConflict",
    "RelayForbidden",
    "RelayUnauthorized",
    "UploadTooLarge",
    "error_status",
    "install_error_handlers",
]


class UploadTooLarge(InputError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the upload is larger than this service accepts ({limit_bytes} bytes)")


class BodyTimeout(InputError):
    """The client sent its request body too slowly."""


class RelayConflict(InvalidDeclaration):
    """The chain already consumed a signature's nonce: declared before, or invalidated."""


class StaleAction(RelayConflict):
    """An owner action signed for an earlier state of the declaration (its action count moved
    on since): it can never be accepted, and must be signed again."""


class GrantConflict(InvalidGrant):
    """The ledger's state refuses a licence request for good: the grantor's nonce is spent
    (granted before, or invalidated), or the grant is terminated already."""


class RateLimited(RegistryError):
    """A rate limit or gas budget is spent for now; `retry_after` tells when to come back."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(RateLimited):
    """The process has as much work admitted as it takes; the client may retry shortly."""


class RelayUnauthorized(RegistryError):
    """This relay pays only for holders of a relay token, and none (or an unknown one) came."""


class RelayForbidden(RegistryError):
    """This service does not relay for anyone."""


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    """A short machine-readable kind, e.g. `invalid-code`, `not-found`."""
    message: str
    """One line for a human."""


# Most specific first: the first matching class decides the status.
_STATUS: list[tuple[type[RegistryError], int, str]] = [
    (NotFound, 404, "not-found"),
    (CaseNotFound, 404, "not-found"),
    (NotAParty, 403, "not-a-party"),
    (IllegalTransition, 409, "illegal-transition"),
    (ReplayedResponse, 409, "replayed"),
    (UsageReplayed, 409, "replayed"),
    (InvalidNote, 400, "invalid-note"),
    (StaleAction, 409, "stale-action"),
    (RelayConflict, 409, "nonce-used"),
    (GrantConflict, 409, "grant-conflict"),
    (UploadTooLarge, 413, "too-large"),
    (BodyTimeout, 408, "timeout"),
    (Overloaded, 503, "overloaded"),
    (RateLimited, 429, "rate-limited"),
    (RelayUnauthorized, 401, "relay-token-required"),
    (RelayForbidden, 403, "relay-closed"),
    (Forbidden, 403, "forbidden"),
    (InvalidCode, 400, "invalid-code"),
    (InvalidDeclaration, 400, "invalid-declaration"),
    (InvalidGrant, 400, "invalid-grant"),
    (UnsupportedMedia, 415, "unsupported-media"),
    (InputError, 400, "bad-input"),
    (ChainUnavailable, 503, "chain-unavailable"),
    (StoreError, 503, "store-unavailable"),
]

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "Malformed query or input"},
    404: {"model": ErrorBody, "description": "Nothing indexed under this identifier"},
    422: {"model": ErrorBody, "description": "Request does not match the schema"},
}


def _json(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": kind, "message": message}, headers=headers
    )


def _headers(exc: RegistryError) -> dict[str, str] | None:
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
    if isinstance(exc, RelayUnauthorized):
        return {"WWW-Authenticate": 'Bearer realm="relay"'}
    return None


def error_status(exc: RegistryError) -> tuple[int, str]:
    """The status and kind that answer `exc`."""
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 400, "error"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def _registry_error(_request: Request, exc: RegistryError) -> JSONResponse:
        status, kind = error_status(exc)
        return _json(status, kind, str(exc), _headers(exc))

    @app.exception_handler(requests.RequestException)
    async def _node_error(_request: Request, exc: requests.RequestException) -> JSONResponse:
        # A chain node that timed out or dropped the connection in the middle of a request
        # (after connecting): the node's fault, not ours, so not a 500 with a traceback
        # logged for each (outside attacker review).
        message = f"the chain node did not answer ({type(exc).__name__})"
        return _json(503, "chain-unavailable", message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return _json(422, "invalid-request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not-found" if exc.status_code == 404 else f"http-{exc.status_code}"
        # The router's own headers stay: a 405 must say what is allowed (Allow).
        return _json(exc.status_code, kind, str(exc.detail), exc.headers)
