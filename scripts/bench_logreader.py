"""Log reader benchmark: CPU per log of the worker that turns an eth_getLogs answer into the
store's rows (registry.index.logreader), the reference way against the log reader's way.

    .venv/bin/python scripts/bench_logreader.py                 # 5,000 generated logs
    .venv/bin/python scripts/bench_logreader.py --file logs.json  # a saved eth_getLogs result
    .venv/bin/python scripts/bench_logreader.py --quick      # does it still run? (tests do this)

Reference: json.loads, EventDecoder.decode_logs (DeclaredEvent objects), rows.rows_of, as the
worker did before and as the in-process indexer still does. Log reader: msgspec parsing into
typed logs, rows.rows_of_logs (Declared logs straight to rows, base32 in one numpy batch). Both
pickle the rows for the writer, which unpickles them: that part runs in the writing process.
The HTTP body is read from a local server in another process (its CPU is not counted), with
`response.content` as before and with one `raw.read()` as the worker now does.

Without --file, the logs are Declared events ABI-encoded with eth-abi, their ISCC-CODEs made
by iscc-lib as the devnet benchmark declares them (Data + Instance units; a quarter also with
Meta and Text units), 500 per block, ten declarers, mostly empty gateways. Every figure is the
best of --repeat runs of CPU time (time.process_time) over the whole answer, divided by its logs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import iscc_lib
import requests
from eth_abi import encode as abi_encode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry.chain.artifact import artifact  # noqa: E402
from registry.chain.devnet import free_port  # noqa: E402
from registry.index.events import EventDecoder, RawLog, event_topic  # noqa: E402
from registry.index.logreader import _parse_answer  # noqa: E402
from registry.index.rows import rows_of_logs  # noqa: E402
from registry.iscc.codec import code_to_bytes, multihash_to_digest  # noqa: E402
from registry.store.rows import rows_of  # noqa: E402

LOGS_PER_BLOCK = 500


def generate(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` Declared logs in JSON-RPC form, as a node answers eth_getLogs."""
    rng = random.Random(seed)
    entry = next(e for e in artifact()["abi"] if e.get("name") == "Declared")
    topic0 = "0x" + event_topic(entry).hex()
    data_types = [i["type"] for i in entry["inputs"] if not i["indexed"]]
    declarers = [rng.randbytes(20) for _ in range(10)]
    contract = "0x" + rng.randbytes(20).hex()
    logs = []
    for n in range(count):
        blob = rng.randbytes(rng.randrange(200, 2000))
        instance = iscc_lib.gen_instance_code_v0(blob)
        units = [iscc_lib.gen_data_code_v0(blob)["iscc"], instance["iscc"]]
        if n % 4 == 0:
            title = f"Title {n}"
            units = [
                iscc_lib.gen_meta_code_v0(title)["iscc"],
                iscc_lib.gen_text_code_v0(f"{title} {blob.hex()}")["iscc"],
                *units,
            ]
        raw = code_to_bytes(iscc_lib.gen_iscc_code_v0(units)["iscc"])
        gateway = "" if n % 5 else f"https://gateway.example/{n}/{{iscc_id}}"
        metahash = bytes(32) if n % 3 else rng.randbytes(32)
        block = 1 + n // LOGS_PER_BLOCK
        body = ((1_700_000_000_000_000 + n) << 12) | 7
        logs.append(
            {
                "removed": False,
                "logIndex": hex(n % LOGS_PER_BLOCK),
                "transactionIndex": hex(n % LOGS_PER_BLOCK),
                "transactionHash": "0x" + rng.randbytes(32).hex(),
                "blockHash": "0x" + block.to_bytes(32, "big").hex(),
                "blockNumber": hex(block),
                "blockTimestamp": hex(1_700_000_000 + block),
                "address": contract,
                # Contract v2: the record handle (here the nonce) and no commitment (plain).
                "data": "0x" + abi_encode(data_types, [raw, metahash, gateway, n, 0]).hex(),
                "topics": [
                    topic0,
                    "0x" + body.to_bytes(32, "big").hex(),
                    "0x" + declarers[n % len(declarers)].rjust(32, b"\0").hex(),
                    "0x" + multihash_to_digest(instance["datahash"]).hex(),
                ],
            }
        )
    return logs


def pair(repeat: int, old: Callable[[], Any], new: Callable[[], Any]) -> tuple[Any, ...]:
    """Least CPU seconds of `repeat` runs of each, taking turns so that both meet the same
    load, and each one's last result: (old s, new s, old result, new result)."""
    least = [float("inf"), float("inf")]
    results: list[Any] = [None, None]
    for _ in range(repeat):
        for i, run in enumerate((old, new)):
            start = time.process_time()
            results[i] = run()
            least[i] = min(least[i], time.process_time() - start)
    return (*least, *results)


def http_reads(answer: bytes, repeat: int) -> tuple[float, float]:
    """CPU seconds to read the answer over HTTP: response.content, then one raw.read().

    Python's static file server in another process stands in for the node (GET instead of
    POST: reading the body costs the client the same)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "answer.json").write_bytes(answer)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):  # until the server listens
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port}/answer.json"
            session = requests.Session()
            chunked, whole, body, same = pair(
                repeat,
                lambda: session.get(url).content,
                lambda: session.get(url, stream=True).raw.read(),
            )
            assert body == same == answer
            return chunked, whole
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="a JSON list of logs (an eth_getLogs result)")
    parser.add_argument("--count", type=int, default=5000, help="logs to generate")
    parser.add_argument("--realm", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (best counts)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run that checks the script works end to end (its figures mean nothing)",
    )
    args = parser.parse_args()
    if args.quick:
        args.count, args.repeat = min(args.count, 200), 1
    logs = json.loads(args.file.read_bytes()) if args.file else generate(args.count)
    answer = json.dumps({"jsonrpc": "2.0", "id": 1, "result": logs}).encode()
    count = len(logs)
    decoder = EventDecoder(args.realm)
    repeat = args.repeat
    parsed: list[RawLog] = _parse_answer(answer).result or []
    events = decoder.decode_logs(logs)

    figures: list[tuple[str, float, float]] = []
    chunked, whole = http_reads(answer, repeat)
    figures.append(("HTTP body (content / one raw.read)", chunked, whole))
    old_parse, new_parse, *_ = pair(
        repeat, lambda: json.loads(answer)["result"], lambda: _parse_answer(answer).result
    )
    figures.append(("parse JSON (json.loads / msgspec)", old_parse, new_parse))
    old_decode, new_decode, *_ = pair(
        repeat, lambda: decoder.decode_logs(logs), lambda: decoder.decode_positioned(parsed)
    )
    old_rows, new_total, reference, rows = pair(
        repeat, lambda: rows_of(events), lambda: rows_of_logs(decoder, parsed)
    )
    if rows != reference:
        sys.exit("the log reader's rows differ from the reference rows")
    # The reference validates ISCC-CODEs while decoding, the log reader while building rows.
    details = [
        ("  decode logs (decode_logs / decode_positioned)", old_decode, new_decode),
        ("  build rows (rows_of / rest of rows_of_logs)", old_rows, new_total - new_decode),
    ]
    figures.append(("decode and build rows", old_decode + old_rows, new_total))
    old_dump, new_dump, old_blob, new_blob = pair(
        repeat,
        lambda: pickle.dumps(reference, pickle.HIGHEST_PROTOCOL),
        lambda: pickle.dumps(rows, pickle.HIGHEST_PROTOCOL),
    )
    figures.append(("pickle rows", old_dump, new_dump))
    worker = ("**worker total**", *(sum(f[i] for f in figures) for i in (1, 2)))
    old_load, new_load, *_ = pair(
        repeat, lambda: pickle.loads(old_blob), lambda: pickle.loads(new_blob)
    )
    figures[3:3] = details
    figures += [worker, ("unpickle in the writer", old_load, new_load)]

    def us(seconds: float) -> str:
        return f"{seconds / count * 1e6:.1f}"

    source = args.file.name if args.file else f"{count} generated Declared logs"
    print(f"\nLog reader CPU per log, {source}, best of {repeat} (us)\n")
    print("| stage | reference | log reader | ratio |")
    print("|---|---:|---:|---:|")
    for name, old, new in figures:
        print(f"| {name} | {us(old)} | {us(new)} | {old / new:.1f}x |")
    print(f"\npickled rows: {len(old_blob) / count:.0f} / {len(new_blob) / count:.0f} bytes a log")


if __name__ == "__main__":
    main()
