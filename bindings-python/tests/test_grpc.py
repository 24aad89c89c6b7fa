"""gRPC service configs in Python (`from_grpc_service_config`,
`GrpcServiceConfig`), against a real grpcio server on 127.0.0.1: generic
handlers on raw bytes, scripted to fail with status codes and
`grpc-retry-pushback-ms` trailers, with grpcio's own retries off so every
retry seen is stormguard's."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent import futures
from typing import Any, Iterator, List, Optional, Tuple

import grpc  # type: ignore[import-untyped]
import pytest

import stormguard as sg

SERVICE, METHOD = "pkg.Svc", "Get"

RETRY_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "timeout": "5s",
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.05s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE", "resource_exhausted"],
                },
            },
            {
                "name": [{"service": SERVICE, "method": "Hedged"}],
                "hedgingPolicy": {
                    "maxAttempts": 3,
                    "hedgingDelay": "0.05s",
                    "nonFatalStatusCodes": [14],
                },
            },
            {"name": [{"service": "pkg.Plain"}], "waitForReady": True},
        ],
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }
)

# One scripted answer: ("ok",), ("code", NAME, pushback or None), ("hang",).
Step = Tuple[Any, ...]


class Server:
    """A grpcio server whose handlers follow a script."""

    def __init__(self) -> None:
        self.script: List[Step] = []
        self.seen = 0
        self.cancelled = 0
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(self.handle)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler, "Hedged": handler}),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def handle(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self.lock:
            self.seen += 1
            step = self.script.pop(0) if self.script else ("ok",)
        if step[0] == "hang":
            # Until the client cancels (a losing hedge), at most 10 s.
            for _ in range(1000):
                if not context.is_active():
                    with self.lock:
                        self.cancelled += 1
                    break
                time.sleep(0.01)
            return b"late"
        if step[0] == "code":
            _, name, pushback = step
            if pushback is not None:
                context.set_trailing_metadata((("grpc-retry-pushback-ms", pushback),))
            context.abort(getattr(grpc.StatusCode, name), "scripted")
        return b"hello"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.server.stop(grace=None)


@pytest.fixture
def channel(server: Server) -> Iterator[grpc.Channel]:
    server.script.clear()
    server.seen = 0
    server.cancelled = 0
    with grpc.insecure_channel(server.target, options=[("grpc.enable_retries", 0)]) as ch:
        yield ch


def get(channel: grpc.Channel) -> Any:
    return channel.unary_unary(f"/{SERVICE}/{METHOD}")


def test_a_retry_policy_becomes_the_decorators_arguments() -> None:
    cfg = sg.from_grpc_service_config(RETRY_CONFIG, SERVICE, METHOD)
    assert cfg.kind == "retry"
    assert cfg.matched
    assert set(cfg) == {"on", "attempts", "backoff", "deadline", "budget"}
    assert cfg["attempts"] == 4
    assert cfg["deadline"] == 5.0
    assert isinstance(cfg["budget"], sg.Throttle)
    assert cfg.codes == {14, 8}  # UNAVAILABLE and RESOURCE_EXHAUSTED
    # A6's backoff: min(initial * multiplier^k, max) * U(0.8, 1.2).
    assert cfg["backoff"].jitter == "proportional"
    for seed in range(20):
        delays = cfg["backoff"].delays(4, seed=seed)
        assert all(0.8 * c <= d <= 1.2 * c for d, c in zip(delays, [0.01, 0.02, 0.04, 0.05]))


def test_a_hedging_policy_and_no_policy() -> None:
    config = sg.GrpcServiceConfig(RETRY_CONFIG)
    hedged = config.method(SERVICE, "Hedged")
    assert hedged.kind == "hedging"
    assert (hedged["attempts"], hedged["delay"]) == (3, 0.05)
    assert hedged.codes == {14}
    assert set(hedged) == {"on", "attempts", "delay", "budget"}
    plain = config.method("pkg.Plain", "Any")
    assert (plain.kind, plain["attempts"], plain.wait_for_ready) == (None, 1, True)
    assert "budget" not in plain  # nothing to retry, nothing to throttle
    unknown = config.method("other.Svc", "X")
    assert (unknown.matched, unknown["attempts"]) == (False, 1)
    # The methods of one config share its one throttle (per server, A6).
    assert hedged.budget is config.method(SERVICE, METHOD).budget is config.throttle


def test_the_attempts_cap_is_the_clients() -> None:
    text = RETRY_CONFIG.replace('"maxAttempts": 4', '"maxAttempts": 9')
    assert sg.from_grpc_service_config(text, SERVICE, METHOD)["attempts"] == 5
    assert sg.from_grpc_service_config(text, SERVICE, METHOD, max_attempts_cap=7)["attempts"] == 7
    with pytest.raises(ValueError, match="max_attempts_cap"):
        sg.from_grpc_service_config(text, SERVICE, METHOD, max_attempts_cap=1)


@pytest.mark.parametrize(
    "text, path",
    [
        ('{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 1, "initialBackoff": "1s",'
         ' "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": [14]}}]}',
         "methodConfig[0].retryPolicy.maxAttempts"),
        ('{"methodConfig": [{"name": [{}], "timeout": "1h"}]}', "methodConfig[0].timeout"),
        ('{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0}}', "retryThrottling.tokenRatio"),
        ('{"retryThrottling": {"maxTokens": 1, "maxTokens": 2, "tokenRatio": 1}}', 'duplicate key "maxTokens"'),
        ("[" * 1000, ""),
    ],
)
def test_an_invalid_config_is_a_value_error_naming_its_path(text: str, path: str) -> None:
    with pytest.raises(ValueError, match="invalid gRPC service config") as caught:
        sg.from_grpc_service_config(text, SERVICE, METHOD)
    assert path in str(caught.value)


def test_json_text_as_bytes_and_wrong_types() -> None:
    assert sg.from_grpc_service_config(RETRY_CONFIG.encode(), SERVICE, METHOD)["attempts"] == 4
    with pytest.raises(TypeError, match="json_text must be a str or bytes"):
        sg.from_grpc_service_config(42, SERVICE, METHOD)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="service and method must be str"):
        sg.GrpcServiceConfig(RETRY_CONFIG).method(SERVICE, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="throttle must be"):
        sg.GrpcServiceConfig(RETRY_CONFIG, throttle=3)  # type: ignore[arg-type]


class FakeError(Exception):
    def __init__(self, code: Any, trailers: Any = ()) -> None:
        self._code, self._trailers = code, trailers

    def code(self) -> Any:
        return self._code

    def trailing_metadata(self) -> Any:
        return self._trailers


def test_status_codes_and_pushback_as_grpcio_reports_them() -> None:
    assert sg.grpc_status_code(FakeError(grpc.StatusCode.UNAVAILABLE)) == 14
    assert sg.grpc_status_code(FakeError(8)) == 8
    assert sg.grpc_status_code(FakeError("aborted")) == 10
    assert sg.grpc_status_code(FakeError(99)) is None
    assert sg.grpc_status_code(ValueError()) is None
    assert sg.grpc_pushback(FakeError(14)) is None
    assert sg.grpc_pushback(FakeError(14, (("grpc-retry-pushback-ms", "250"),))) == 0.25
    assert sg.grpc_pushback(FakeError(14, (("Grpc-Retry-Pushback-Ms", b"-1"),))) is sg.STOP
    assert sg.grpc_pushback(FakeError(14, (("grpc-retry-pushback-ms", "1x"),))) is sg.STOP
    twice = (("grpc-retry-pushback-ms", "1"), ("grpc-retry-pushback-ms", "1"))
    assert sg.grpc_pushback(FakeError(14, twice)) is sg.STOP
    cfg = sg.from_grpc_service_config(RETRY_CONFIG, SERVICE, METHOD)
    assert cfg.on(FakeError(grpc.StatusCode.UNAVAILABLE)) is True
    assert cfg.on(FakeError(grpc.StatusCode.INTERNAL)) is False
    assert cfg.on(FakeError(grpc.StatusCode.INTERNAL, (("grpc-retry-pushback-ms", "-1"),))) is sg.STOP
    assert cfg.on(ValueError()) is None


def test_retryable_codes_are_retried_against_a_real_server(server: Server, channel: grpc.Channel) -> None:
    server.script[:] = [("code", "UNAVAILABLE", None), ("code", "RESOURCE_EXHAUSTED", None), ("ok",)]
    call = sg.from_grpc_service_config(RETRY_CONFIG, SERVICE, METHOD).decorator()(get(channel))
    assert call(b"x") == b"hello"
    assert server.seen == 3


def test_other_codes_are_not_retried(server: Server, channel: grpc.Channel) -> None:
    server.script[:] = [("code", "INTERNAL", None), ("ok",)]
    call = sg.retry(**sg.from_grpc_service_config(RETRY_CONFIG, SERVICE, METHOD))(get(channel))
    with pytest.raises(grpc.RpcError) as caught:
        call(b"x")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert server.seen == 1


def test_the_servers_pushback_sets_the_wait_or_stops(server: Server, channel: grpc.Channel) -> None:
    waits: List[float] = []
    cfg = sg.from_grpc_service_config(RETRY_CONFIG, SERVICE, METHOD)
    call = sg.retry(**cfg, before_sleep=lambda d: waits.append(d.delay))(get(channel))
    server.script[:] = [("code", "UNAVAILABLE", "30"), ("ok",)]
    assert call(b"x") == b"hello"
    assert waits == [0.03]  # exactly the pushback, not the backoff
    server.script[:] = [("code", "UNAVAILABLE", "-1"), ("ok",)]
    server.seen = 0
    with pytest.raises(grpc.RpcError) as caught:
        call(b"x")
    assert caught.value.__notes__ == ["stormguard: gave up after 1 attempt: server said stop"]
    assert server.seen == 1


def test_retry_throttling_stops_retries_when_the_server_keeps_failing(
    server: Server, channel: grpc.Channel
) -> None:
    config = sg.GrpcServiceConfig(RETRY_CONFIG)
    call = sg.retry(**config.method(SERVICE, METHOD))(get(channel))
    server.script[:] = [("code", "UNAVAILABLE", None)] * 40
    reasons = []
    for _ in range(4):
        with pytest.raises(grpc.RpcError) as caught:
            call(b"x")
        reasons.append(caught.value.__notes__[-1].rsplit(": ", 1)[-1])
    # 10 tokens, one per failure; retries stop at half (A6): the first call
    # spends 4 attempts (tokens 6), the second is refused its second retry.
    assert reasons[0] == "attempts exhausted"
    assert "budget exhausted" in reasons
    assert config.throttle is not None and config.throttle.tokens <= 5.0


def test_a_hedging_policy_hedges_an_aio_call(server: Server) -> None:
    server.script[:] = [("hang",), ("ok",)]
    server.seen = server.cancelled = 0
    cfg = sg.from_grpc_service_config(RETRY_CONFIG, SERVICE, "Hedged")

    async def main() -> Any:
        async with grpc.aio.insecure_channel(server.target, options=[("grpc.enable_retries", 0)]) as ch:
            call = cfg.decorator()(ch.unary_unary(f"/{SERVICE}/Hedged"))
            return await call(b"x")

    assert asyncio.run(main()) == b"hello"
    assert server.seen == 2
    deadline = time.monotonic() + 10
    while server.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.cancelled == 1  # the slow copy was cancelled on the server too
