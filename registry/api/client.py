"""A small client for a registry service, for the CLI's `--via URL` and remote commands.

stdlib urllib rather than an HTTP library: the CLI needs two JSON calls and no extra dependency.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TypeVar

from registry.chain.actions import ActionReceipt, SignedAction
from registry.chain.declaration import SignedDeclaration
from registry.chain.iscc_id import IsccId
from registry.chain.licences import (
    GrantReceipt,
    SignedGrant,
    SignedTermination,
    TerminationReceipt,
)
from registry.chain.submit import DeclarationReceipt
from registry.errors import ChainUnavailable, InputError
from registry.metadata import CanonicalMetadata

__all__ = ["ServiceClient", "ServiceSubmitter"]

R = TypeVar("R", DeclarationReceipt, ActionReceipt)

TIMEOUT_S = 180
_RELAY_PATHS = {
    "declare": "/v1/relay/declarations",
    "grant": "/v1/relay/grants",
    "terminate": "/v1/relay/terminations",
}


class ServiceClient:
    def __init__(self, base_url: str) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            url, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message", exc.reason)
            except (ValueError, AttributeError):
                message = exc.reason
            if exc.code >= 500:
                raise ChainUnavailable(f"{self.base_url} answered {exc.code}: {message}") from None
            raise InputError(f"{self.base_url} refused: {message}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ChainUnavailable(f"no registry service at {self.base_url}: {exc}") from None

    def relay(self, kind: str, signed_json: dict[str, Any], wait: float = 120) -> dict[str, Any]:
        """Post a signed declaration, action, grant or termination and wait for its outcome;
        raises on failure."""
        path = _RELAY_PATHS.get(kind, "/v1/relay/actions")
        _status, job = self.request("POST", path, signed_json, {"wait": wait})
        while job["state"] == "pending":
            _status, job = self.request("GET", f"/v1/relay/jobs/{job['job']}", params={"wait": 30})
        if job["state"] == "failed":
            raise InputError(f"the relay could not send it: {job['error']}")
        return job["result"]

    def publish(self, canonical: CanonicalMetadata) -> None:
        """Store a metadata document with the service (which checks it hashes as expected)."""
        document = json.loads(canonical.canonical)
        self.request("POST", "/v1/metadata", document, {"expect": canonical.metahash})


class ServiceSubmitter:
    """A registry service as the Submitter of registry.chain.flows: its relayer pays."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    def declare(self, signed: SignedDeclaration) -> DeclarationReceipt:
        return _receipt(DeclarationReceipt, self.client.relay("declare", signed.to_json()))

    def act(self, signed: SignedAction, record: int | None = None) -> ActionReceipt:
        if record is not None:
            raise InputError("a registry service finds the declaration's record itself: omit it")
        return _receipt(ActionReceipt, self.client.relay("act", signed.to_json()))

    def grant(self, signed: SignedGrant) -> GrantReceipt:
        result = self.client.relay("grant", signed.to_json())
        return GrantReceipt(
            grant_id=result["grant_id"],
            iscc_id=IsccId.parse(result["iscc_id"]),
            grantor=result["grantor"],
            licensee=result["licensee"],
            tx_hash=result["tx_hash"],
            block_number=result["block_number"],
            gas_used=result["gas_used"],
        )

    def terminate(self, signed: SignedTermination) -> TerminationReceipt:
        result = self.client.relay("terminate", signed.to_json())
        return TerminationReceipt(
            grant_id=result["grant_id"],
            by=result["terminated_by"],
            tx_hash=result["tx_hash"],
            block_number=result["block_number"],
            gas_used=result["gas_used"],
        )


def _receipt(cls: type[R], result: dict[str, Any]) -> R:
    """A receipt from the service's JSON form of it (to_dict), with the ISCC-ID parsed back."""
    known = {f.name for f in dataclasses.fields(cls)}
    values = {key: value for key, value in result.items() if key in known}
    return cls(**values | {"iscc_id": IsccId.parse(result["iscc_id"])})
