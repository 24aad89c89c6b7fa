"""Correct under cancellation and early exit: successes reported when a
`with attempt:` block is left by `return` or `break`, permits given back
when a BaseException ends an attempt, fingerprints that never collide the
way `hash()` does, async callable objects retried like coroutines."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Optional

import pytest

import stormguard as sg

FAST = sg.Backoff.constant(0.0)


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with sg.testing():
        yield


def half_open_breaker() -> sg.CircuitBreaker:
    """A breaker that is open and lets one probe through now."""
    breaker = sg.CircuitBreaker(failure_threshold=1, recovery_timeout=5.0)
    breaker.acquire().failure()
    assert breaker.state == "open"
    sg.advance_clock(5.01)
    return breaker


def admits_a_call(breaker: sg.CircuitBreaker) -> bool:
    try:
        permit = breaker.acquire()
    except sg.CircuitOpenError:
        return False
    permit.abandon()
    return True


# --- early exit from `with attempt:` ---------------------------------------------


def test_return_inside_with_attempt_closes_a_half_open_breaker() -> None:
    breaker = half_open_breaker()

    def probe() -> str:
        for attempt in sg.retrying(on=ConnectionError, breaker=breaker):
            with attempt:
                return "ok"
        raise AssertionError("unreachable")

    assert probe() == "ok"
    assert breaker.state == "closed"


def test_break_inside_with_attempt_reports_the_success_to_the_budget() -> None:
    throttle = sg.Throttle(max_tokens=10, token_ratio=0.5)
    for _ in range(4):
        throttle.on_failure()
    for attempt in sg.retrying(on=ConnectionError, budget=throttle):
        with attempt:
            break
    assert throttle.tokens == 6.5


def test_continue_after_a_failure_then_return_reports_one_success() -> None:
    metrics = sg.Metrics()
    calls: List[int] = []

    def op() -> int:
        for attempt in sg.retrying(on=ConnectionError, backoff=FAST, metrics=metrics):
            with attempt:
                calls.append(attempt.number)
                if attempt.number < 2:
                    raise ConnectionError
                return attempt.number
        raise AssertionError("unreachable")

    assert op() == 2
    assert (metrics.attempts, metrics.retries, metrics.successes) == (2, 1, 1)


def test_async_for_with_return_closes_the_breaker_and_the_next_call_passes() -> None:
    breaker = half_open_breaker()

    async def probe() -> str:
        async for attempt in sg.retrying(on=ConnectionError, breaker=breaker):
            with attempt:
                return "ok"
        raise AssertionError("unreachable")

    async def main() -> List[str]:
        # The generator is not closed before the second call starts.
        return [await probe(), await probe()]

    assert asyncio.run(main()) == ["ok", "ok"]
    assert breaker.state == "closed"


def test_leaving_the_loop_before_entering_an_attempt_gives_the_permit_back() -> None:
    breaker = half_open_breaker()
    loop = iter(sg.retrying(on=ConnectionError, breaker=breaker))
    next(loop)  # the probe's permit is taken...
    assert not admits_a_call(breaker)
    loop.close()  # ...and given back when the loop is dropped unused
    assert admits_a_call(breaker)
    assert breaker.state == "half_open"


# --- BaseException during an attempt ------------------------------------------------


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_a_base_exception_in_a_decorated_call_releases_the_probe(error: type) -> None:
    breaker = half_open_breaker()

    @sg.retry(on=ConnectionError, breaker=breaker)
    def probe() -> None:
        raise error()

    with pytest.raises(error) as info:
        probe()
    # The traceback (held by `info`) keeps the wrapper's frame alive: the
    # permit must not wait for it to be collected.
    assert info.traceback
    assert admits_a_call(breaker)
    assert breaker.state == "half_open"


def _broken_predicate(exc: BaseException) -> Any:
    raise RuntimeError("a bug in the predicate")


@pytest.mark.parametrize(
    "settings, raises",
    [
        ({"on": _broken_predicate}, ConnectionError),
        ({"on": lambda exc: math.nan}, ConnectionError),
        ({"on": ConnectionError, "on_result": _broken_predicate}, None),
    ],
    ids=["on raises", "on returns nan", "on_result raises"],
)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_predicate_that_fails_releases_the_probe(settings: Dict[str, Any], raises: Any, kind: str) -> None:
    breaker = half_open_breaker()

    def probe() -> int:
        if raises is not None:
            raise raises("reset")
        return 1

    async def async_probe() -> int:
        return probe()

    decorated: Any = sg.retry(breaker=breaker, **settings)(async_probe if kind == "async" else probe)
    with pytest.raises((RuntimeError, ValueError)) as info:
        if kind == "async":
            asyncio.run(decorated())
        else:
            decorated()
    assert info.traceback  # the wrapper's frame is still alive
    assert admits_a_call(breaker)


def test_a_base_exception_inside_with_attempt_releases_the_probe() -> None:
    breaker = half_open_breaker()
    loop = sg.retrying(on=ConnectionError, breaker=breaker)
    with pytest.raises(KeyboardInterrupt):
        for attempt in loop:
            with attempt:
                raise KeyboardInterrupt
    assert admits_a_call(breaker)


def test_a_cancelled_async_call_releases_the_probe() -> None:
    breaker = half_open_breaker()

    @sg.retry(on=ConnectionError, breaker=breaker)
    async def probe(started: asyncio.Event) -> None:
        started.set()
        await asyncio.sleep(3600)

    async def main() -> Optional[BaseException]:
        started = asyncio.Event()
        task = asyncio.ensure_future(probe(started))
        await started.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc  # held: its traceback keeps the coroutine's frame
        return None

    held = asyncio.run(main())
    assert isinstance(held, asyncio.CancelledError)
    assert admits_a_call(breaker)


def test_a_cancelled_async_for_attempt_releases_the_probe() -> None:
    breaker = half_open_breaker()

    async def probe() -> None:
        async for attempt in sg.retrying(on=ConnectionError, breaker=breaker):
            with attempt:
                await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.ensure_future(probe())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert admits_a_call(breaker)


# --- fingerprints ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        (b"-1", b"-2"),  # hash(-1) == hash(-2)
        (0, 2**61 - 1),  # hash(0) == hash(2**61 - 1)
        ("(1, 'a')", "(1.0, 'a')"),  # equal tuples' payloads differ as text
        (b"amount=30", "amount=31"),
    ],
)
def test_different_payloads_are_a_mismatch_never_a_replay(first: Any, second: Any) -> None:
    table = sg.IdempotencyTable(capacity=4)
    begun = table.begin("key", first)
    assert begun.ticket is not None
    table.complete(begun.ticket, "charged once")
    answer = table.begin("key", second)
    assert (answer.kind, answer.status) == ("mismatch", 422)
    assert table.begin("key", first).kind == "replay"


def test_ints_are_used_as_given_and_str_as_its_utf8_bytes() -> None:
    table = sg.IdempotencyTable(capacity=4)
    begun = table.begin("a", 7)
    assert begun.ticket is not None
    table.complete(begun.ticket, "r")
    assert table.begin("a", 7).kind == "replay"
    begun = table.begin("b", "é")
    assert begun.ticket is not None
    table.complete(begun.ticket, "r")
    assert table.begin("b", "é".encode()).kind == "replay"
    assert sg.fingerprint("é") == sg.fingerprint(b"\xc3\xa9")


@pytest.mark.parametrize("bad", [(1, "a"), 1.0, None, ["x"], True])
def test_other_fingerprints_are_refused(bad: Any) -> None:
    with pytest.raises(TypeError, match="fingerprint"):
        sg.IdempotencyTable(capacity=1).begin("k", bad)


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_ints_outside_64_bits_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        sg.IdempotencyTable(capacity=1).begin("k", bad)


def test_the_fingerprint_is_the_same_in_every_process() -> None:
    code = "import stormguard as sg; print(sg.fingerprint('stormguard'), sg.fingerprint(b''))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "random")
    }
    # The value the Rust core's test pins (SipHash-2-4 under a fixed key).
    assert outputs == {f"{0x8CC068C5BA365582} {sg.fingerprint(b'')}\n"}


# --- async callable objects ------------------------------------------------------------


class AsyncClient:
    """An object with an ``async def __call__``, failing twice."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, x: int) -> int:
        self.calls += 1
        if self.calls < 3:
            raise ConnectionError("down")
        return x * 2


def test_async_callable_objects_are_retried_like_coroutine_functions() -> None:
    client = AsyncClient()
    fetch = sg.retry(on=ConnectionError, backoff=FAST)(client)
    assert asyncio.run(fetch(21)) == 42
    assert client.calls == 3


def test_async_callable_objects_give_up_with_the_original_exception() -> None:
    client = AsyncClient()
    fetch = sg.retry(on=ConnectionError, attempts=2, backoff=FAST)(client)
    with pytest.raises(ConnectionError) as info:
        asyncio.run(fetch(1))
    assert getattr(info.value, "__notes__", None) == ["stormguard: gave up after 2 attempts: attempts exhausted"]


def test_methods_are_decorated_like_functions() -> None:
    class Client:
        def __init__(self) -> None:
            self.calls = 0

        @sg.retry(on=ConnectionError, backoff=FAST)
        def get(self, x: int) -> int:
            self.calls += 1
            if self.calls < 2:
                raise ConnectionError
            return x

        @sg.retry(on=ConnectionError, backoff=FAST, breaker=sg.CircuitBreaker())
        async def aget(self, x: int) -> int:
            self.calls += 1
            if self.calls < 4:
                raise ConnectionError
            return x

    client = Client()
    assert client.get(5) == 5
    assert asyncio.run(client.aget(6)) == 6
    assert client.calls == 4
