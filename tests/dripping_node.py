"""A JSON-RPC node on a real socket that answers slowly, a byte at a time, over HTTP or TLS."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DRIP_S = 0.1  # between two bytes: far below any read timeout here
LATE_S = 0.8
# A self-signed certificate for 127.0.0.1 (valid until 2126), made by `openssl req -x509`.
TLS = Path(__file__).parent / "data" / "node-tls"


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # many threads connect at once


@contextmanager
def dripping_node(
    drip: str,
    fast_methods: frozenset[str] = frozenset(),
    size: int = 0,
    tls: bool = False,
    late_methods: frozenset[str] = frozenset(),
    hang_up_after: int | None = None,
) -> Iterator[str]:
    """A JSON-RPC node at the URL yielded (https with `tls`). It answers `fast_methods` at
    once, `late_methods` whole after LATE_S, the others a byte every DRIP_S: its whole answer
    ("headers") or only the body ("body"), or nothing at all ("silent"), and after
    `hang_up_after` dripped bytes it closes the connection. Its result is "0x7a69", padded
    with `size` spaces. A body that is not a JSON-RPC request (a webhook's) is dripped an
    answer too."""
    stop = threading.Event()

    class Node(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps connections open, as nodes do

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            method = request.get("method") if isinstance(request, dict) else None
            answer_id = request.get("id", 1) if isinstance(request, dict) else 1
            answer = {"jsonrpc": "2.0", "id": answer_id, "result": "0x7a69"}
            body = json.dumps(answer).encode() + b" " * size
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            if method in fast_methods or method in late_methods:
                if method in late_methods and stop.wait(LATE_S):
                    return
                self.wfile.write(head + body)
                return
            if drip == "silent":
                stop.wait(30)
                return
            slow = head + body if drip == "headers" else body
            if drip == "body":
                self.wfile.write(head)
            try:
                for sent, byte in enumerate(slow):
                    if stop.wait(DRIP_S):
                        return
                    if sent == hang_up_after:
                        self.close_connection = True
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:  # the client gave up
                return

        def log_message(self, *_args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Node)
    server.daemon_threads = True
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS.with_suffix(".crt"), TLS.with_suffix(".key"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
