"""What a declaration's gateway may be: nothing, a URL, or a URI template (RFC 6570) of one.

The contract stores any string up to its length cap, and a gateway goes on chain for good; so
the user actions (registry.chain.flows) refuse what no resolver could follow before anything is
signed.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from registry.errors import InputError

__all__ = ["MAX_GATEWAY_LENGTH", "check_gateway"]

# The contract refuses longer ones (GatewayTooLong).
MAX_GATEWAY_LENGTH = 1024
# An RFC 6570 expression: an optional operator and comma-separated variable names.
_EXPRESSION = re.compile(
    r"\{[+#./;?&]?[A-Za-z0-9_.%-]+(?::[0-9]+|\*)?(?:,[A-Za-z0-9_.%-]+(?::[0-9]+|\*)?)*\}"
)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def check_gateway(gateway: str) -> str:
    """The gateway if it is empty, a URL or a URI template of one (`scheme://host/...` with
    `{name}` expressions); raises InputError saying what is wrong otherwise."""
    if not gateway:
        return gateway
    if len(gateway) > MAX_GATEWAY_LENGTH:
        raise InputError(f"the gateway is {len(gateway)} characters; at most {MAX_GATEWAY_LENGTH}")
    if any(c.isspace() or not c.isprintable() for c in gateway):
        raise InputError(f"the gateway {gateway!r} contains spaces or control characters")
    filled = _EXPRESSION.sub("x", gateway)
    if "{" in filled or "}" in filled:
        raise InputError(f"the gateway {gateway!r} has a malformed {{...}} template expression")
    parts = urlsplit(filled)
    if not _SCHEME.fullmatch(parts.scheme) or not parts.netloc:
        raise InputError(
            f"the gateway {gateway!r} is not a URL: expected scheme://host/... (a URI template "
            "like https://example.org/{iscc_id} is fine too)"
        )
    return gateway
