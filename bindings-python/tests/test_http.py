"""stormguard.httpx and stormguard.requests against a real HTTP server on
127.0.0.1, started by the tests: 503 with and without Retry-After, 429 with
an HTTP-date, refused connections, a connection reset after the request was
read, POSTs that must not be replayed, a budget shared by concurrent
requests, a deadline, a breaker, and the async transport under asyncio and
trio."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import httpx
import pytest
import requests
import trio

import stormguard as sg
import stormguard.httpx
import stormguard.requests

FAST = sg.Backoff.constant(0.25)

Action = Tuple[Any, ...]  # ("status", code, headers) or ("reset",)


class Server:
    """A scripted HTTP server: each request takes the next action (200 "ok"
    once the script is done) and is recorded."""

    def __init__(self) -> None:
        self.script: List[Action] = []
        self.always: Optional[Action] = None
        self.every_other: Optional[Action] = None
        self.seen: List[Tuple[str, str, Dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    server.seen.append((self.command, self.path, dict(self.headers), body))
                    if server.every_other is not None and len(server.seen) % 2:
                        action = server.every_other
                    elif server.script:
                        action = server.script.pop(0)
                    else:
                        action = server.always or ("status", 200, {})
                if action[0] == "reset":
                    # The request was read; the peer sees a reset, not a response.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                    self.close_connection = True
                    return
                _, status, headers = action
                payload = f"answer {status}".encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def finish(self) -> None:
                try:
                    super().finish()
                except (OSError, ValueError):
                    pass  # the reset connection

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests_seen(self) -> int:
        with self.lock:
            return len(self.seen)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with sg.testing():
        yield


@pytest.fixture()
def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


Waits = List[float]


def httpx_get(url: str, waits: Optional[Waits] = None, **settings: Any) -> Callable[..., httpx.Response]:
    transport = stormguard.httpx.RetryTransport(
        backoff=FAST, before_sleep=(lambda d: waits.append(d.delay)) if waits is not None else None, **settings
    )
    client = httpx.Client(transport=transport, trust_env=False)
    return client.request


def requests_get(url: str, waits: Optional[Waits] = None, **settings: Any) -> Callable[..., requests.Response]:
    session = stormguard.requests.session(
        backoff=FAST, before_sleep=(lambda d: waits.append(d.delay)) if waits is not None else None, **settings
    )
    session.trust_env = False
    return session.request


CLIENTS = [httpx_get, requests_get]
Client = Callable[..., Callable[..., Any]]


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_503_without_retry_after_waits_the_backoff(server: Server, client: Client) -> None:
    server.script = [("status", 503, {})]
    waits: Waits = []
    response = client(server.url, waits)("GET", server.url + "/a")
    assert (response.status_code, response.text) == (200, "answer 200")
    assert server.requests_seen() == 2
    assert waits == [0.25]


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_503_with_retry_after_waits_what_the_server_asks(server: Server, client: Client) -> None:
    server.script = [("status", 503, {"Retry-After": "7"}), ("status", 503, {"Retry-After": "3600"})]
    waits: Waits = []
    response = client(server.url, waits, max_server_delay=30.0)("GET", server.url)
    assert response.status_code == 200
    assert waits == [7.0, 30.0]  # the second hint capped


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_429_with_an_http_date_and_a_post(server: Server, client: Client) -> None:
    # 429 says the request was not acted on: even a POST may go again.
    later = email.utils.formatdate(time.time() + 600, usegmt=True)
    server.script = [("status", 429, {"Retry-After": later})]
    waits: Waits = []
    body = {"content": b"x"} if client is httpx_get else {"data": b"x"}
    response = client(server.url, waits, max_server_delay=30.0)("POST", server.url, **body)
    assert response.status_code == 200
    assert waits == [30.0]
    assert [s[0] for s in server.seen] == ["POST", "POST"]


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_giving_up_returns_the_last_response_and_says_why(server: Server, client: Client) -> None:
    server.always = ("status", 503, {})
    seen: List[sg.RetryDetails] = []
    response = client(server.url, None, attempts=3, on_give_up=seen.append)(
        "GET", server.url + "/path?token=secret"
    )
    assert (response.status_code, response.text) == (503, "answer 503")
    assert server.requests_seen() == 3
    [details] = seen
    assert details.give_up_reason == "attempts exhausted"
    assert details.result is response
    assert details.name == f"GET {server.url}"  # no path or query in logs and labels


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_statuses_not_listed_are_returned_at_once(server: Server, client: Client) -> None:
    server.script = [("status", 404, {}), ("status", 501, {})]
    send = client(server.url, None)
    assert send("GET", server.url).status_code == 404
    assert send("GET", server.url).status_code == 501
    assert server.requests_seen() == 2


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_a_refused_connection_is_retried_even_for_a_post(refused_url: str, client: Client) -> None:
    metrics = sg.Metrics()
    send = client(refused_url, None, attempts=3, metrics=metrics)
    expected = httpx.ConnectError if client is httpx_get else requests.ConnectionError
    with pytest.raises(expected) as info:
        send("POST", refused_url)
    assert metrics.attempts == 3  # never sent: safe to send again
    assert getattr(info.value, "__notes__", None) == ["stormguard: gave up after 3 attempts: attempts exhausted"]


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_a_reset_after_the_request_was_read(server: Server, client: Client) -> None:
    server.script = [("reset",)]
    assert client(server.url, None)("GET", server.url).status_code == 200
    assert server.requests_seen() == 2

    # The POST may have run: it is not sent again.
    server.script = [("reset",)]
    expected = (httpx.TransportError,) if client is httpx_get else (requests.ConnectionError,)
    with pytest.raises(expected) as info:
        client(server.url, None)("POST", server.url)
    assert server.requests_seen() == 3
    assert getattr(info.value, "__notes__", None) == ["stormguard: gave up after 1 attempt: unsafe to replay"]


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_a_post_answered_503_is_not_replayed_unless_keyed(server: Server, client: Client) -> None:
    server.script = [("status", 503, {})]
    assert client(server.url, None)("POST", server.url).status_code == 503
    assert server.requests_seen() == 1

    server.script = [("status", 503, {})]
    keyed = client(server.url, None)("POST", server.url, headers={"Idempotency-Key": "k-1"})
    assert keyed.status_code == 200
    assert server.requests_seen() == 3

    server.script = [("status", 503, {})]
    added = client(server.url, None, add_idempotency_key=True)("POST", server.url)
    assert added.status_code == 200
    first, second = server.seen[-2:]
    key = first[2]["Idempotency-Key"]
    assert len(key) == 36 and second[2]["Idempotency-Key"] == key  # one key, every attempt


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_a_budget_shared_by_concurrent_requests(server: Server, client: Client) -> None:
    server.always = ("status", 503, {})
    throttle = sg.Throttle(max_tokens=4, token_ratio=0.1)
    send = client(server.url, None, attempts=5, budget=throttle)
    barrier = threading.Barrier(8)
    statuses: List[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(send("GET", server.url).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [503] * 8
    # 8 requests; the throttle allows a retry only while it holds more than
    # half its 4 tokens: one retry in all, not 4 per request.
    assert 8 <= server.requests_seen() <= 9
    assert throttle.tokens == 0.0


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_a_deadline_the_server_delay_would_overshoot(server: Server, client: Client) -> None:
    server.always = ("status", 503, {"Retry-After": "10"})
    reasons: List[Optional[str]] = []
    send = client(server.url, None, deadline=5.0, on_give_up=lambda d: reasons.append(d.give_up_reason))
    assert send("GET", server.url).status_code == 503
    assert server.requests_seen() == 1
    assert reasons == ["deadline exceeded"]


@pytest.mark.parametrize("client", CLIENTS, ids=["httpx", "requests"])
def test_a_breaker_per_client(server: Server, client: Client) -> None:
    server.always = ("status", 503, {})
    breaker = sg.CircuitBreaker(failure_threshold=2, recovery_timeout=60.0)
    send = client(server.url, None, attempts=5, breaker=breaker)
    assert send("GET", server.url).status_code == 503
    assert server.requests_seen() == 2
    with pytest.raises(sg.CircuitOpenError):
        send("GET", server.url)
    assert server.requests_seen() == 2


def async_transport(waits: Waits) -> stormguard.httpx.AsyncRetryTransport:
    return stormguard.httpx.AsyncRetryTransport(
        backoff=FAST, before_sleep=lambda d: waits.append(d.delay)
    )


async def fetch_twice(url: str, waits: Waits) -> List[int]:
    async with httpx.AsyncClient(transport=async_transport(waits), trust_env=False) as client:
        return [(await client.get(url)).status_code, (await client.post(url)).status_code]


def test_async_transport_under_asyncio(server: Server) -> None:
    server.script = [("status", 503, {"Retry-After": "0"}), ("reset",)]
    waits: Waits = []
    with sg.testing(False):  # real (short) waits, through asyncio's sleep
        statuses = asyncio.run(fetch_twice(server.url, waits))
    # GET: 503, then a reset, then 200; the POST: 200.
    assert statuses == [200, 200]
    assert waits == [0.0, 0.25]
    assert server.requests_seen() == 4


def test_async_transport_under_trio(server: Server) -> None:
    server.script = [("status", 503, {}), ("status", 429, {"Retry-After": "1"})]
    waits: Waits = []
    statuses = trio.run(fetch_twice, server.url, waits)
    assert statuses == [200, 200]
    assert waits == [0.25, 1.0]


def test_transport_settings_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="statuses"):
        stormguard.httpx.RetryTransport(statuses=[503, 999])
    with pytest.raises(TypeError, match="statuses"):
        stormguard.httpx.RetryTransport(statuses="503")
    with pytest.raises(TypeError, match="methods"):
        stormguard.requests.RetryAdapter(methods="GET")
    with pytest.raises(TypeError, match="max_retries"):
        stormguard.requests.RetryAdapter(max_retries=3)
    with pytest.raises(TypeError, match="before_sleep"):
        stormguard.httpx.AsyncRetryTransport(before_sleep=3)
    with pytest.raises(TypeError, match="transport"):
        stormguard.httpx.RetryTransport(transport=object())  # type: ignore[arg-type]


def test_the_core_classifier_is_exposed() -> None:
    assert sg.http_failure(503, "3") == ("overloaded", "unknown", 3.0)
    assert sg.http_failure(429, b"soon") == ("overloaded", "rejected", None)
    assert sg.http_failure(200) is None
    assert sg.http_failure(404) == ("permanent", "unknown", None)
    assert sg.http_failure(70000) == ("permanent", "unknown", None)
    assert sg.is_idempotent_method("PUT") and not sg.is_idempotent_method("POST")
    assert not sg.is_idempotent_method(b"get")  # methods are case-sensitive


def test_the_readme_examples_run(server: Server, redis_server: Any) -> None:
    import __future__
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    # The fleet example names its Redis "redis:6379": here it is a throwaway
    # redis-server on 127.0.0.1, and the app it wraps a trivial ASGI app.
    readme = readme.replace("redis://redis:6379/", redis_server.url)
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 10
    server.every_other = ("status", 503, {"Retry-After": "1"})
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise AssertionError("the example only wraps the app")

    namespace: Dict[str, Any] = {
        "url": server.url,
        "__name__": "readme",
        "app": app,
        "key": "9c7e0f52-5a1d-4c8e-9f4b-2d6b1e0a7c33",
        "fingerprint": b"sha256 of the request",
        "response_bytes": b"201 charged",
    }
    try:
        for i, block in enumerate(blocks):
            code = compile(
                block,
                f"README.md block {i + 1}",
                "exec",
                flags=__future__.annotations.compiler_flag,
                dont_inherit=True,
            )
            # Each block has a current event loop, as a fresh script's top
            # level does (redis.asyncio asks for it on Python 3.9, and a
            # block that ran asyncio.run() leaves none), closed after it.
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                exec(code, namespace)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
    finally:
        sg.set_on_retry_hooks(None)
        sg.set_on_give_up_hooks(None)
        sg.set_active(True)
        logging.getLogger("stormguard").setLevel(logging.NOTSET)
    assert server.requests_seen() >= 10  # the clients really went to the server
    # The fleet example really executed once and stored its answer.
    with namespace["store"] as store:  # closed by the example's block: this opens it again
        again = store.begin(namespace["key"], namespace["fingerprint"])
    assert (again.kind, again.response) == ("replay", b"201 charged")
