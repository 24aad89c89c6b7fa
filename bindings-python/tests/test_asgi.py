"""The ASGI middleware's answers, in process (httpx's ASGI transport) on a
real Redis: execute once and replay status, headers and body; 409 while
running; 422 for another payload; 400 for a bad or missing key; 503 when
Redis is down (and the app does not run); 500s stored."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping

import httpx
import pytest

from stormguard.asgi import (
    IdempotencyMiddleware,
    decode_response,
    encode_response,
    fingerprint,
    parse_key,
)
from stormguard.redis import AsyncRedisStore

from conftest import RedisServer, free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class App:
    """Counts its runs; ``/slow`` waits for `release`; ``/boom`` raises."""

    def __init__(self) -> None:
        self.runs: List[str] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.runs.append(scope["path"])
        if scope["path"] == "/slow":
            await self.release.wait()
        if scope["path"] == "/boom":
            raise RuntimeError("the app failed")
        payload = json.dumps({"run": len(self.runs), "echo": body.decode()}).encode()
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"x-run", str(len(self.runs)).encode())]})
        await send({"type": "http.response.body", "body": payload[:5], "more_body": True})
        await send({"type": "http.response.body", "body": payload[5:]})


def run(server_url: str, test: Callable[[httpx.AsyncClient, App], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        app = App()
        async with AsyncRedisStore.from_url(
            server_url, prefix=f"asgi{uuid.uuid4().hex[:6]}:", attempt_timeout=0.3, attempts=2,
            deadline=1.0,
        ) as store:
            wrapped = IdempotencyMiddleware(app, store, **options)
            transport = httpx.ASGITransport(app=wrapped)
            async with httpx.AsyncClient(transport=transport, base_url="http://fleet") as client:
                await test(client, app)

    asyncio.run(main())


def key() -> Dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_the_first_request_runs_and_every_retry_gets_its_response(redis_server: RedisServer) -> None:
    async def test(client: httpx.AsyncClient, app: App) -> None:
        headers = key()
        first = await client.post("/charge", content=b"alice 30", headers=headers)
        assert first.status_code == 201 and first.json()["run"] == 1
        for _ in range(3):
            retry = await client.post("/charge", content=b"alice 30", headers=headers)
            assert (retry.status_code, retry.content) == (201, first.content)
            assert retry.headers["x-run"] == "1"
            assert retry.headers["idempotent-replayed"] == "true"
        assert app.runs == ["/charge"]
        # Another key is another request; no key passes through.
        assert (await client.post("/charge", content=b"alice 30", headers=key())).json()["run"] == 2
        assert (await client.post("/charge", content=b"alice 30")).json()["run"] == 3
        # Methods outside the set pass through, key or not.
        assert (await client.put("/charge", content=b"x", headers=headers)).json()["run"] == 4

    run(redis_server.url, test)


def test_a_concurrent_duplicate_gets_409_and_another_payload_422(redis_server: RedisServer) -> None:
    async def test(client: httpx.AsyncClient, app: App) -> None:
        headers = key()
        running = asyncio.ensure_future(client.post("/slow", content=b"a", headers=headers))
        while not app.runs:
            await asyncio.sleep(0.01)
        dup = await client.post("/slow", content=b"a", headers=headers)
        assert dup.status_code == 409 and dup.headers["retry-after"] == "1"
        assert dup.headers["content-type"] == "application/problem+json"
        app.release.set()
        first = await running
        assert first.status_code == 201
        other_body = await client.post("/slow", content=b"b", headers=headers)
        other_path = await client.post("/charge", content=b"a", headers=headers)
        assert other_body.status_code == other_path.status_code == 422
        assert app.runs == ["/slow"]

    run(redis_server.url, test)


@pytest.mark.parametrize("value,ok", [
    ("abc", True),
    ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', True),  # an sf-string, as the IETF draft
    ("", False),
    ("k" * 256, False),
    ('"unterminated', True),  # not a string: the bare value, quote included
    ('"bad\\escape"', False),
])
def test_keys_are_checked(redis_server: RedisServer, value: str, ok: bool) -> None:
    async def test(client: httpx.AsyncClient, app: App) -> None:
        response = await client.post("/charge", content=b"x", headers={"Idempotency-Key": value})
        assert response.status_code == (201 if ok else 400), response.text
        assert app.runs == (["/charge"] if ok else [])

    run(redis_server.url, test)


def test_a_required_key_that_is_missing_is_400(redis_server: RedisServer) -> None:
    async def test(client: httpx.AsyncClient, app: App) -> None:
        response = await client.post("/charge", content=b"x")
        assert response.status_code == 400
        assert response.json()["title"] == "Idempotency-Key is missing"
        too_big = await client.post("/charge", content=b"x" * 2000, headers=key())
        assert too_big.status_code == 413
        assert app.runs == []

    run(redis_server.url, test, require_key=True, max_body=1000)


def test_an_app_failure_is_stored_as_a_500(redis_server: RedisServer) -> None:
    async def test(client: httpx.AsyncClient, app: App) -> None:
        headers = key()
        first = await client.post("/boom", content=b"x", headers=headers)
        again = await client.post("/boom", content=b"x", headers=headers)
        assert first.status_code == again.status_code == 500
        assert app.runs == ["/boom"]

    run(redis_server.url, test)


def test_with_on_error_abort_a_failure_releases_the_key(redis_server: RedisServer) -> None:
    async def test(client: httpx.AsyncClient, app: App) -> None:
        headers = key()
        assert (await client.post("/boom", content=b"x", headers=headers)).status_code == 500
        assert (await client.post("/boom", content=b"x", headers=headers)).status_code == 500
        assert app.runs == ["/boom", "/boom"]

    run(redis_server.url, test, on_error="abort")


def test_redis_down_is_503_and_the_app_does_not_run() -> None:
    async def test(client: httpx.AsyncClient, app: App) -> None:
        response = await client.post("/charge", content=b"x", headers=key())
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert app.runs == []

    run(f"redis://127.0.0.1:{free_port()}/", test)


def test_stored_responses_round_trip() -> None:
    headers = [(b"content-type", b"text/plain"), (b"x-empty", b""), (b"set-cookie", b"a=1")]
    for body in (b"", b"hello", bytes(range(256)) * 10):
        assert decode_response(encode_response(299, headers, body)) == (299, headers, body)
    with pytest.raises(ValueError):
        decode_response(b"not ours")
    with pytest.raises(ValueError):
        decode_response(encode_response(200, headers, b"")[:-3])


def test_parse_key_and_fingerprint() -> None:
    assert parse_key(b'"a\\"b"') == 'a"b'
    assert parse_key("é".encode()) is None
    base: Scope = {"method": "POST", "path": "/charge", "query_string": b""}
    assert fingerprint(base, b"x") == fingerprint(dict(base), b"x")
    assert fingerprint(base, b"x") != fingerprint(base, b"y")
    assert fingerprint(base, b"x") != fingerprint(dict(base, path="/refund"), b"x")
    assert fingerprint(base, b"x") != fingerprint(dict(base, query_string=b"a=1"), b"x")
    assert fingerprint(base, b"x") != fingerprint(dict(base, method="PATCH"), b"x")
