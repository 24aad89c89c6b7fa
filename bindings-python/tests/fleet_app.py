"""The charge service of the fleet tests: a bare ASGI app behind
`IdempotencyMiddleware`, run by uvicorn as a real process (``uvicorn
fleet_app:app``), one per replica, all sharing one Redis.

``POST /charge`` appends one line -- key, charge id, replica -- to this
process's ledger file (the side effect the tests count) and answers 201
with the charge. Faults, asked for by the test client in ``x-fault``:

- ``slow``: the charge takes ``FLEET_SLOW`` seconds (past the client's
  timeout);
- ``crash``: on a replica started with ``FLEET_CRASHABLE=1``, the process
  kills itself with SIGKILL before charging -- mid-request. It first stops
  admitting charges and waits until no other request of this process is
  between its charge and its sent response (see `test_fleet`'s docstring:
  that window is the one a kill must not hit); requests it takes down with
  it are before their charge;
- ``reset``: the request runs, then the connection is dropped after the
  response's first line, before its body (the response is lost).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from typing import Any, Awaitable, Callable, Dict, MutableMapping

from stormguard.asgi import IdempotencyMiddleware
from stormguard.redis import AsyncRedisStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REPLICA = os.environ.get("FLEET_REPLICA", "0")
LEDGER = os.path.join(
    os.environ.get("FLEET_LEDGER_DIR", "."), f"ledger-{REPLICA}-{os.getpid()}.log"
)
SLOW = float(os.environ.get("FLEET_SLOW", "1.0"))
LEASE = float(os.environ.get("FLEET_LEASE", "3.0"))
CRASHABLE = os.environ.get("FLEET_CRASHABLE") == "1"

_ledger = os.open(LEDGER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
# Requests that entered `charge` and have not sent their response yet.
_active = 0
_crashing = False


def _headers(scope: Scope) -> Dict[bytes, bytes]:
    return {bytes(n).lower(): bytes(v) for n, v in scope.get("headers", [])}


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def charge(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    global _active, _crashing
    headers = _headers(scope)
    fault = headers.get(b"x-fault", b"").decode()
    while _crashing:  # this process is about to die: charge nothing more
        await asyncio.sleep(1)
    if fault == "crash" and CRASHABLE:
        _crashing = True
        while _active > 0:
            await asyncio.sleep(0.001)
        os.kill(os.getpid(), signal.SIGKILL)
    _active += 1
    scope.setdefault("state", {})["charging"] = True
    if fault == "slow":
        await asyncio.sleep(SLOW)
    key = headers.get(b"idempotency-key", b"").decode()
    charge_id = uuid.uuid4().hex
    # One write(2) with O_APPEND: whole lines, even from a process killed
    # right after.
    os.write(_ledger, f"{key}\t{charge_id}\t{REPLICA}\n".encode())
    amount = json.loads(body or b"{}").get("amount", 0)
    await _respond(send, 201, json.dumps(
        {"charge": charge_id, "amount": amount, "replica": REPLICA}
    ).encode())


def _store() -> AsyncRedisStore:
    # The store's own client: no retries of its own, 0.2 s an attempt; two
    # attempts within 0.4 s, so a 503 comes back before the client's 0.5 s
    # timeout.
    nodes = os.environ.get("FLEET_REDIS_CLUSTER")
    url = f"redis://{nodes.split(',')[0]}/" if nodes else (
        f"redis://127.0.0.1:{os.environ.get('FLEET_REDIS_PORT', '6379')}/"
    )
    return AsyncRedisStore.from_url(url, cluster=bool(nodes), attempt_timeout=0.2,
                                    prefix="fleet:", lease=LEASE, ttl=600.0, attempts=2,
                                    deadline=0.4)


_keyed = IdempotencyMiddleware(charge, _store(), require_key=True)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await _respond(send, 200, b'"ok"')
        return
    reset = _headers(scope).get(b"x-fault") == b"reset"
    started = False

    async def respond(message: Message) -> None:
        global _active
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
            if scope.get("state", {}).pop("charging", False):
                _active -= 1  # stored (or refused) before this is sent
            await send(message)
        elif reset and started:
            raise ConnectionResetError("fault injected: the response is lost")
        else:
            await send(message)

    await _keyed(scope, receive, respond)
