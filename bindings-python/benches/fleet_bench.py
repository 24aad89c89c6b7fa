"""What the fleet store costs, from Python, against a local redis-server the
script starts itself:

* the Redis store: ``begin`` + ``complete`` pairs per second (a new key
  each), sync (`RedisStore`, one connection, one pair at a time) and async
  (`AsyncRedisStore`, 64 pairs in flight on one event loop), next to the
  in-process `stormguard.IdempotencyTable`;
* the ASGI middleware: microseconds per request over a bare ASGI app,
  calling the app directly (no server, no sockets between client and app):
  the bare app, a keyed request that executes (``begin`` + ``complete``),
  and a keyed retry that replays.

Usage: python fleet_bench.py [--quick] [--json FILE]
Needs redis-server (Debian: apt-get install redis-server) and the
stormguard wheel with redis-py in the environment (``scripts/python-env``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping

import redis

import stormguard as sg
from stormguard.asgi import IdempotencyMiddleware
from stormguard.redis import AsyncRedisStore, RedisStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def start_redis() -> "tuple[subprocess.Popen[bytes], int, str]":
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    directory = tempfile.mkdtemp()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.02)
    return proc, port, directory


def rate_of(runs: int, measure: Callable[[], float]) -> Dict[str, float]:
    """The median and the best (highest) of ``runs`` rates."""
    values = [measure() for _ in range(runs)]
    return {"median": statistics.median(values), "best": max(values)}


def sync_pairs(url: str, n: int) -> float:
    store = RedisStore.from_url(url, prefix=f"b{uuid.uuid4().hex[:6]}:", ttl=60.0)
    started = time.perf_counter()
    for i in range(n):
        ticket = store.begin(f"k{i}", b"fp").ticket
        assert ticket is not None
        store.complete(ticket, b"HTTP/1.1 201 Created")
    return n / (time.perf_counter() - started)


def async_pairs(url: str, n: int, concurrency: int = 64) -> float:
    async def run() -> float:
        store = AsyncRedisStore.from_url(url, prefix=f"b{uuid.uuid4().hex[:6]}:", ttl=60.0)

        async def one(i: int) -> None:
            ticket = (await store.begin(f"k{i}", b"fp")).ticket
            assert ticket is not None
            await store.complete(ticket, b"HTTP/1.1 201 Created")

        started = time.perf_counter()
        for batch in range(0, n, concurrency):
            await asyncio.gather(*(one(i) for i in range(batch, min(n, batch + concurrency))))
        rate = n / (time.perf_counter() - started)
        await store.client.aclose()
        return rate

    return asyncio.run(run())


def table_pairs(n: int) -> float:
    table = sg.IdempotencyTable(capacity=1 << 16, ttl=60.0)
    started = time.perf_counter()
    for i in range(n):
        ticket = table.begin(f"k{i % 60000}-{i}", b"fp").ticket
        assert ticket is not None
        table.complete(ticket, b"HTTP/1.1 201 Created")
        if i % 60000 == 59999:
            table = sg.IdempotencyTable(capacity=1 << 16, ttl=60.0)
    return n / (time.perf_counter() - started)


async def bare_app(scope: Scope, receive: Callable[[], Awaitable[Message]],
                   send: Callable[[Message], Awaitable[None]]) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"charge": "ch_1"}'})


def middleware_costs(url: str, n: int) -> Dict[str, float]:
    """Microseconds per request: bare, keyed and executed, keyed replay."""

    async def run() -> Dict[str, float]:
        store = AsyncRedisStore.from_url(url, prefix=f"m{uuid.uuid4().hex[:6]}:", ttl=60.0)
        keyed = IdempotencyMiddleware(bare_app, store)

        async def receive() -> Message:
            return {"type": "http.request", "body": b'{"amount": 30}', "more_body": False}

        async def send(message: Message) -> None:
            pass

        def scope(key: str) -> Scope:
            return {"type": "http", "method": "POST", "path": "/charge", "raw_path": b"/charge",
                    "query_string": b"", "headers": [(b"idempotency-key", key.encode())]}

        async def timed(app: Callable[..., Awaitable[None]], scopes: List[Scope]) -> float:
            started = time.perf_counter()
            for s in scopes:
                await app(s, receive, send)
            return (time.perf_counter() - started) / len(scopes) * 1e6

        keys = [f"key-{uuid.uuid4().hex}" for _ in range(n)]
        results = {
            "bare app": await timed(bare_app, [scope(k) for k in keys]),
            "keyed, executes (begin + complete)": await timed(keyed, [scope(k) for k in keys]),
            "keyed retry, replays (begin)": await timed(keyed, [scope(k) for k in keys]),
        }
        await store.client.aclose()
        return results

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    n = 2_000 if args.quick else 10_000
    runs = 3 if args.quick else 5
    if shutil.which("redis-server") is None:
        sys.exit("fleet_bench.py needs redis-server")
    proc, port, directory = start_redis()
    url = f"redis://127.0.0.1:{port}/"
    try:
        rates = {
            "RedisStore (sync), one connection, sequential":
                rate_of(runs, lambda: sync_pairs(url, n)),
            "AsyncRedisStore, 64 in flight":
                rate_of(runs, lambda: async_pairs(url, n)),
            "in-process IdempotencyTable":
                rate_of(runs, lambda: table_pairs(n * 10)),
        }
        costs: Dict[str, List[float]] = {}
        for _ in range(runs):
            for name, value in middleware_costs(url, n).items():
                costs.setdefault(name, []).append(value)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"Python {platform.python_version()}, redis-py {redis.__version__}, "
          f"{n} operations a run, median of {runs} runs")
    print("\n| begin + complete | pairs/s (median) | best |\n|---|---:|---:|")
    for name, r in rates.items():
        print(f"| {name} | {r['median']:,.0f} | {r['best']:,.0f} |")
    bare = statistics.median(costs["bare app"])
    print("\n| ASGI request | µs (median) | over the bare app |\n|---|---:|---:|")
    for name, values in costs.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {median - bare:+.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rates": rates, "asgi_us": costs}, f, indent=2)


if __name__ == "__main__":
    main()
