"""At home in real programs: on_result, hooks, logging, Prometheus, the
core's metrics, testing mode and the global switch as context managers,
the attempt number inside the call, trio and anyio."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from typing import Any, Iterator, List, Optional

import anyio
import prometheus_client
import pytest
import trio

import stormguard as sg

FAST = sg.Backoff.constant(0.0)


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with sg.testing():
        yield
    sg.set_on_retry_hooks(None)
    sg.set_on_give_up_hooks(None)


class Responses:
    """Returns the given values in turn."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


# --- on_result ------------------------------------------------------------------


def test_on_result_retries_until_the_value_is_good() -> None:
    op = Responses(503, 503, 200)
    assert sg.retry(on=ConnectionError, on_result=lambda r: r == 503, backoff=FAST)(op)() == 200
    assert op.calls == 3


def test_on_result_gives_the_last_result_back_and_the_reason() -> None:
    op = Responses(503)
    seen: List[sg.RetryDetails] = []
    result = sg.retry(
        on=ConnectionError,
        attempts=3,
        backoff=FAST,
        on_result=lambda r: r == 503,
        before_sleep=seen.append,
        on_give_up=seen.append,
    )(op)()
    assert result == 503  # a 503 is still a response
    assert [(d.attempt, d.result, d.exception, d.give_up_reason) for d in seen] == [
        (1, 503, None, None),
        (2, 503, None, None),
        (3, 503, None, "attempts exhausted"),
    ]


def test_on_result_verdicts_delay_and_stop() -> None:
    waits: List[float] = []
    op = Responses("later", "stop")

    def verdict(r: str) -> Any:
        return datetime.timedelta(seconds=2) if r == "later" else sg.STOP

    reasons: List[Optional[str]] = []
    result = sg.retry(
        on=ConnectionError,
        attempts=5,
        on_result=verdict,
        before_sleep=lambda d: waits.append(d.delay),
        on_give_up=lambda d: reasons.append(d.give_up_reason),
    )(op)()
    assert (result, waits, reasons) == ("stop", [2.0], ["server said stop"])


def test_on_result_with_async_and_a_non_idempotent_call() -> None:
    async def fetch() -> int:
        return 503

    assert asyncio.run(sg.retry(on=ConnectionError, on_result=lambda r: r == 503, attempts=2)(fetch)()) == 503
    reasons: List[Optional[str]] = []
    op = Responses(503, 200)
    assert (
        sg.retry(
            on=ConnectionError,
            idempotent=False,
            on_result=lambda r: r == 503,
            on_give_up=lambda d: reasons.append(d.give_up_reason),
        )(op)()
        == 503
    )
    assert reasons == ["unsafe to replay"]  # a response came back: it may have run


# --- hooks, logging, Prometheus ----------------------------------------------------------


def failing_twice() -> Any:
    calls = 0

    def op(x: int, *, y: int = 0) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"down {calls}")
        return x + y

    return op


def test_global_retry_hooks_get_details_and_may_be_turned_off() -> None:
    seen: List[sg.RetryDetails] = []
    sg.set_on_retry_hooks([seen.append])
    assert sg.get_on_retry_hooks() == (seen.append,)
    assert sg.retry(on=ConnectionError, backoff=FAST)(failing_twice())(1, y=2) == 3
    assert [(d.attempt, str(d.exception), d.args, dict(d.kwargs)) for d in seen] == [
        (1, "down 1", (1,), {"y": 2}),
        (2, "down 2", (1,), {"y": 2}),
    ]
    sg.set_on_retry_hooks([])
    sg.retry(on=ConnectionError, backoff=FAST)(failing_twice())(1)
    assert len(seen) == 2


def test_a_hook_may_return_a_context_manager_around_the_wait() -> None:
    events: List[str] = []

    @contextlib.contextmanager
    def span(details: sg.RetryDetails) -> Iterator[None]:
        events.append(f"enter {details.attempt}")
        yield
        events.append(f"exit {details.attempt}")

    sg.set_on_retry_hooks([span])

    def op() -> None:
        events.append("call")
        if events.count("call") < 2:
            raise ConnectionError

    sg.retry(on=ConnectionError, backoff=FAST)(op)()
    assert events == ["call", "enter 1", "exit 1", "call"]


def test_hook_factories_are_made_on_first_use() -> None:
    made: List[int] = []
    seen: List[int] = []

    def factory() -> Any:
        made.append(1)
        return lambda d: seen.append(d.attempt)

    sg.set_on_retry_hooks([sg.RetryHookFactory(factory)])
    assert made == []
    sg.retry(on=ConnectionError, backoff=FAST)(failing_twice())(1)
    assert (made, seen) == ([1], [1, 2])
    with pytest.raises(TypeError, match="hooks"):
        sg.set_on_retry_hooks([42])  # type: ignore[list-item]


def test_give_up_hooks() -> None:
    seen: List[sg.RetryDetails] = []
    sg.set_on_give_up_hooks([seen.append])
    with pytest.raises(ConnectionError):
        sg.retry(on=ConnectionError, attempts=2, backoff=FAST)(failing_twice())(1)
    assert [(d.attempt, d.give_up_reason) for d in seen] == [(2, "attempts exhausted")]
    assert set(sg.GIVE_UP_REASONS) >= {"attempts exhausted", "circuit open", "unsafe to replay"}


def test_one_log_record_per_retry_and_per_give_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stormguard")
    with pytest.raises(ConnectionError):
        sg.retry(on=ConnectionError, attempts=2, backoff=FAST)(failing_twice())(1)
    records = [r for r in caplog.records if r.name == "stormguard"]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in records] == [
        ("INFO", "stormguard.retry_scheduled"),
        ("WARNING", "stormguard.gave_up"),
    ]
    assert getattr(records[0], "stormguard.attempt") == 1
    assert getattr(records[1], "stormguard.give_up_reason") == "attempts exhausted"
    # Off-able through logging itself.
    caplog.clear()
    logging.getLogger("stormguard").disabled = True
    try:
        sg.retry(on=ConnectionError, backoff=FAST)(failing_twice())(1)
    finally:
        logging.getLogger("stormguard").disabled = False
    assert [r for r in caplog.records if r.name == "stormguard"] == []


def test_prometheus_counters() -> None:
    def value(name: str, **labels: str) -> float:
        return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0

    @sg.retry(on=ConnectionError, attempts=2, backoff=FAST)
    def prom_probe() -> None:
        raise ConnectionError

    name = prom_probe.__qualname__
    before = value("stormguard_retries_total", callable=name, retry_num="1", error_type="ConnectionError")
    with pytest.raises(ConnectionError):
        prom_probe()
    assert value("stormguard_retries_total", callable=name, retry_num="1", error_type="ConnectionError") == before + 1
    assert value("stormguard_give_ups_total", callable=name, reason="attempts exhausted") >= 1
    assert sg.get_prometheus_counters()[0] is sg.get_prometheus_counters()[0]


# --- metrics --------------------------------------------------------------------------------


def test_the_core_metrics_are_readable() -> None:
    metrics = sg.Metrics()
    breaker = sg.CircuitBreaker(failure_threshold=3, recovery_timeout=60.0, metrics=metrics)
    decorated = sg.retry(on=ConnectionError, attempts=5, backoff=FAST, breaker=breaker, metrics=metrics)
    assert decorated(failing_twice())(1) == 1
    assert (metrics.attempts, metrics.retries, metrics.successes) == (3, 2, 1)
    with pytest.raises(ConnectionError):
        decorated(lambda: (_ for _ in ()).throw(ConnectionError()))()
    assert metrics.breaker_opened == 1
    assert metrics.give_ups["circuit open"] == 1
    with pytest.raises(sg.CircuitOpenError):
        decorated(lambda: 1)()
    assert metrics.breaker_rejected >= 1
    assert set(metrics.give_ups) == set(sg.GIVE_UP_REASONS)


def test_metrics_count_a_first_try_success() -> None:
    metrics = sg.Metrics()
    assert sg.retry(on=ConnectionError, metrics=metrics)(lambda: 7)() == 7
    assert (metrics.attempts, metrics.successes) == (1, 1)


# --- testing mode, the global switch ------------------------------------------------------------


def test_set_testing_caps_attempts_and_restores_as_a_context_manager() -> None:
    op = failing_twice()
    with sg.set_testing(True, attempts=1):
        with pytest.raises(ConnectionError) as info:
            sg.retry(on=ConnectionError, attempts=5)(op)(1)
    assert getattr(info.value, "__notes__", None) == ["stormguard: gave up after 1 attempt: attempts exhausted"]
    assert sg.is_testing()  # the fixture's testing mode is back, without the cap
    assert sg.retry(on=ConnectionError, attempts=5)(failing_twice())(1) == 1


def test_testing_context_manager_with_attempts() -> None:
    with sg.testing(attempts=2):
        with pytest.raises(ConnectionError):
            sg.retry(on=ConnectionError, attempts=5)(failing_twice())(1)


def test_set_active_false_makes_one_attempt() -> None:
    assert sg.is_active()
    with sg.set_active(False):
        assert not sg.is_active()
        op = failing_twice()
        with pytest.raises(ConnectionError):
            sg.retry(on=ConnectionError, attempts=5)(op)(1)
        with pytest.raises(ConnectionError):
            for attempt in sg.retrying(on=ConnectionError, attempts=5):
                with attempt:
                    raise ConnectionError
    assert sg.is_active()
    assert sg.retry(on=ConnectionError, attempts=5)(failing_twice())(1) == 1
    sg.set_active(False)
    sg.set_active(True)
    assert sg.is_active()


# --- inside the call ---------------------------------------------------------------------------


def test_current_attempt_inside_the_decorated_function() -> None:
    seen: List[Optional[int]] = []

    @sg.retry(on=ConnectionError, backoff=FAST)
    def op() -> None:
        seen.append(sg.current_attempt())
        if len(seen) < 3:
            raise ConnectionError

    op()
    assert seen == [1, 2, 3]
    assert sg.current_attempt() is None


def test_current_attempt_is_the_innermost_call() -> None:
    seen: List[Optional[int]] = []

    @sg.retry(on=KeyError, backoff=FAST)
    def inner() -> None:
        seen.append(sg.current_attempt())

    @sg.retry(on=ConnectionError, backoff=FAST, breaker=sg.CircuitBreaker())
    def outer() -> None:
        inner()
        seen.append(sg.current_attempt())
        if len(seen) < 4:
            raise ConnectionError

    outer()
    assert seen == [1, 1, 1, 2]


def test_current_attempt_in_async_functions() -> None:
    seen: List[Optional[int]] = []

    async def helper() -> None:
        seen.append(sg.current_attempt())

    @sg.retry(on=ConnectionError, backoff=FAST)
    async def op() -> None:
        await helper()
        if len(seen) < 2:
            raise ConnectionError

    asyncio.run(op())
    assert seen == [1, 2]


def test_attempt_number_and_next_wait() -> None:
    seen = []
    for attempt in sg.retrying(on=ConnectionError, backoff=sg.Backoff.constant(0.5)):
        with attempt:
            seen.append((attempt.number, attempt.next_wait))
            if attempt.number < 2:
                raise ConnectionError
    assert seen == [(1, 0.5), (2, 0.5)]

    # With jitter, the forecast is the very wait drawn.
    forecasts, waits = [], []
    for attempt in sg.retrying(on=ConnectionError, attempts=4, before_sleep=lambda d: waits.append(d.delay)):
        with attempt:
            forecasts.append(attempt.next_wait)
            if attempt.number < 4:
                raise ConnectionError
    assert forecasts[:3] == waits


# --- trio and anyio ------------------------------------------------------------------------------


def test_the_decorator_sleeps_with_trio_under_trio() -> None:
    calls = 0

    @sg.retry(on=ConnectionError, backoff=sg.Backoff.constant(0.01))
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError
        return "ok"

    async def main() -> List[str]:
        results = [await fetch()]
        async for attempt in sg.retrying(on=ConnectionError, backoff=sg.Backoff.constant(0.01)):
            with attempt:
                if attempt.number < 2:
                    raise ConnectionError
                results.append("loop")
        return results

    with sg.testing(False):  # real waits: asyncio.sleep would fail under trio
        assert trio.run(main) == ["ok", "loop"]


def test_trio_cancellation_releases_the_probe() -> None:
    breaker = sg.CircuitBreaker(failure_threshold=1, recovery_timeout=5.0)
    breaker.acquire().failure()
    sg.advance_clock(5.01)

    @sg.retry(on=ConnectionError, breaker=breaker)
    async def probe() -> None:
        await trio.sleep(3600)

    async def main() -> None:
        with trio.move_on_after(0.01):
            await probe()

    trio.run(main)
    breaker.acquire().success()  # the probe's slot came back
    assert breaker.state == "closed"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_on_either_backend(backend: str) -> None:
    calls = 0

    @sg.retry(on=ConnectionError, backoff=sg.Backoff.constant(0.01))
    async def fetch() -> int:
        nonlocal calls
        calls += 1
        if calls < 2:
            raise ConnectionError
        await anyio.sleep(0)
        return calls

    with sg.testing(False):
        assert anyio.run(fetch, backend=backend) == 2
