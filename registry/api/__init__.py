"""The HTTP service: resolve, search, match, metadata and relay over the index store."""

from registry.api.app import create_app

__all__ = ["create_app"]
