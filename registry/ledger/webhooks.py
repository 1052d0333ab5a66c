"""A webhook: one signed JSON POST to a URL a stranger chose.

The URL is attacker-controlled, so the service posts to it as it would to an enemy: only http(s)
on a public address (checked when subscribing and again at every delivery, against the address
actually connected to, so a DNS answer that changes in between cannot turn the service against
its own network), no redirects followed, one deadline for the whole exchange, and at most a few
hundred bytes of the answer read.

Receivers check `X-Registry-Signature`: `sha256=` and the hex HMAC-SHA256, under the
subscription's secret, of the `X-Registry-Timestamp` value, a full stop, and the exact body bytes.
The timestamp is inside the MAC, so a receiver that refuses old timestamps refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry import __version__
from registry.deadline import Cut, cut_after
from registry.errors import InputError

__all__ = [
    "ANSWER_READ",
    "MAX_URL",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Outcome",
    "check_url",
    "post",
    "sign",
    "verify",
]

MAX_URL = 2048
ANSWER_READ = 512
"""Bytes of a receiver's answer read at most (kept as the last error when it refused)."""
SIGNATURE_HEADER = "X-Registry-Signature"
TIMESTAMP_HEADER = "X-Registry-Timestamp"
DEFAULT_TOLERANCE_S = 300


class UnsafeUrl(InputError):
    """A webhook URL this service will not post to."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a receiver does: the signature matches the body and timestamp, and the timestamp is
    within `tolerance_s` of now (older: a replay, or a clock far off)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(stamp), body), signature)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (one vetted address) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


# IPv6 prefixes that carry an IPv4 address a gateway may forward to: NAT64 (the well-known
# prefix and the local-use one, RFC 6052 and 8215) in the low 32 bits; 6to4 is `sixtofour`.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Not global, though Python 3.11's is_global says so: IPv4-compatible (deprecated, ::/96) and
# site-local (deprecated, fec0::/10) addresses.
_INSIDE_V6 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("fec0::/10"))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif any(ip in net for net in _NAT64):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif any(ip in net for net in _INSIDE_V6):
            return False
    # is_global is False for loopback, private, link-local, shared (CGNAT), documentation and
    # reserved ranges; multicast is "global" for some ranges but never a web server.
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allow_private: bool = False) -> Target:
    """The URL as a Target if this service may post to it, else UnsafeUrl with the reason.
    Resolves the host: every address it has must be public (unless `allow_private`), so that
    no answer of a round-robin name reaches inside."""
    if len(url) > MAX_URL:
        raise UnsafeUrl(f"the webhook URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("a webhook URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("a webhook URL must not carry a user name or password")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("the webhook URL has no host")
    if parts.fragment:
        raise UnsafeUrl("a webhook URL must not have a #fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"the webhook host {host} does not resolve: {exc}") from None
    addresses = sorted({str(info[4][0]) for info in found})
    if not addresses:
        raise UnsafeUrl(f"the webhook host {host} has no address")
    if not allow_private:
        inside = [a for a in addresses if not _public(a)]
        if inside:
            raise UnsafeUrl(
                f"the webhook host {host} resolves to a non-public address ({inside[0]}); "
                "this service posts only to public addresses"
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the vetted address, not to whatever the name resolves to by then; the
    socket is cut at the exchange's deadline (`cut`)."""

    def __init__(self, target: Target, timeout: float, cut: Cut) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address
        self.cut = cut

    def _connected(self) -> socket.socket:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        # Before anything is read from it: a receiver may hold the TLS handshake, and a slow
        # connect may have used up the deadline already (then it is cut at once).
        self.cut.watch(sock)
        return sock

    def connect(self) -> None:
        self.sock = self._connected()


class _PinnedHTTPS(_PinnedHTTP):
    """The vetted address, with the certificate checked against the URL's host name."""

    default_port = http.client.HTTPS_PORT  # the Host header names no port for 443

    def connect(self) -> None:
        context = ssl.create_default_context()
        # TLS takes the socket over (the plain one is left without a descriptor), so the TLS
        # socket is the one to cut, the handshake included.
        self.sock = context.wrap_socket(
            self._connected(), server_hostname=self.host, do_handshake_on_connect=False
        )
        self.cut.watch(self.sock)
        self.sock.do_handshake()


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: delivered (a 2xx answer), else why not."""

    delivered: bool
    status: int | None
    error: str | None


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    allow_private: bool = False,
) -> Outcome:
    """POST `body` once. Never raises for the receiver's faults: they are the Outcome."""
    try:
        target = check_url(url, allow_private)
    except UnsafeUrl as exc:
        return Outcome(False, None, str(exc))
    factory = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    sent = {
        "Content-Type": "application/json",
        "User-Agent": f"iscc-registry/{__version__}",
        "Connection": "close",
        **headers,
    }
    # Each socket operation has `timeout_s`, but a receiver dripping a byte at a time would
    # restart it forever: the whole exchange is cut at `timeout_s` too.
    with cut_after(timeout_s) as cut:
        conn = factory(target, timeout_s, cut)
        try:
            conn.request("POST", target.path, body=body, headers=sent)
            answer = conn.getresponse()
            excerpt = answer.read(ANSWER_READ)
            status = answer.status
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            # Whichever ran out first, the socket's wait or the whole exchange's deadline.
            if cut.expired or isinstance(exc, TimeoutError):
                return Outcome(False, None, f"no answer within {timeout_s:g} s")
            return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:300])
        finally:
            conn.close()
        if cut.expired:  # an answer read until the connection closed, cut short
            return Outcome(False, None, f"no answer within {timeout_s:g} s")
    if 200 <= status < 300:
        return Outcome(True, status, None)
    if 300 <= status < 400:
        return Outcome(False, status, f"HTTP {status}: redirects are not followed")
    text = excerpt.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
    return Outcome(False, status, f"HTTP {status}" + (f": {text}" if text else ""))
