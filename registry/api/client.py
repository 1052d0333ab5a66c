"""A small client for a registry service, for the CLI's `--via URL` and remote commands.

stdlib urllib rather than an HTTP library: the CLI needs two JSON calls and no extra dependency.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from registry.errors import ChainUnavailable, InputError

__all__ = ["ServiceClient"]

TIMEOUT_S = 180


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
        """Post a signed declaration or action and wait for its outcome; raises on failure."""
        path = "/v1/relay/declarations" if kind == "declare" else "/v1/relay/actions"
        _status, job = self.request("POST", path, signed_json, {"wait": wait})
        while job["state"] == "pending":
            _status, job = self.request("GET", f"/v1/relay/jobs/{job['job']}", params={"wait": 30})
        if job["state"] == "failed":
            raise InputError(f"the relay could not send it: {job['error']}")
        return job["result"]
