"""Strict with bad input: a TypeError or ValueError naming the argument,
at decoration time; predicates that return nonsense are errors; parsers and
the clock never crash, wrap or echo a whole hostile input."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, Callable, Iterator

import pytest

import redis

import stormguard as sg
from stormguard.redis import RedisStore

FAST = sg.Backoff.constant(0.0)


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with sg.testing():
        yield


def ok() -> str:
    return "ok"


@pytest.mark.parametrize(
    "on",
    [bool, int, dict, object, str, (ConnectionError, int), (ConnectionError, "x"), "ConnectionError", 3, None],
)
def test_on_that_is_not_exceptions_or_a_predicate_is_a_type_error(on: Any) -> None:
    with pytest.raises(TypeError, match="on"):
        sg.retry(on=on)
    with pytest.raises(TypeError, match="on"):
        sg.retrying(on=on)


def test_an_empty_tuple_is_refused() -> None:
    with pytest.raises(ValueError, match="on"):
        sg.retry(on=())


@pytest.mark.parametrize(
    "on",
    [
        KeyboardInterrupt,
        SystemExit,
        GeneratorExit,
        asyncio.CancelledError,
        BaseException,
        (ConnectionError, KeyboardInterrupt),
    ],
)
def test_base_exceptions_the_wrapper_never_catches_are_refused(on: Any) -> None:
    with pytest.raises(TypeError, match="never retries a BaseException"):
        sg.retry(on=on)


@pytest.mark.parametrize("hook", ["before_sleep", "on_give_up", "replay", "on_result"])
@pytest.mark.parametrize("bad", [1, "print", [print]])
def test_hooks_must_be_callable(hook: str, bad: Any) -> None:
    with pytest.raises(TypeError, match=hook):
        sg.retry(on=ConnectionError, **{hook: bad})


def test_on_result_must_be_a_predicate_not_a_type() -> None:
    with pytest.raises(TypeError, match="on_result"):
        sg.retry(on=ConnectionError, on_result=int)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"idempotent": "yes"}, TypeError),
        ({"attempts": True}, TypeError),
        ({"attempts": 2.5}, TypeError),
        ({"attempts": 0}, ValueError),
        ({"attempts": -1}, ValueError),
        ({"attempts": 2**70}, ValueError),
        ({"deadline": True}, TypeError),
        ({"deadline": "30"}, TypeError),
        ({"deadline": -1.0}, ValueError),
        ({"deadline": float("nan")}, ValueError),
        ({"deadline": datetime.timedelta(seconds=-1)}, ValueError),
        ({"max_server_delay": float("inf")}, ValueError),
        ({"budget": 10}, TypeError),
        ({"breaker": "closed"}, TypeError),
        ({"backoff": 0.1}, TypeError),
        ({"metrics": {}}, TypeError),
    ],
)
def test_bad_settings_name_their_argument(kwargs: Any, error: type) -> None:
    (name,) = kwargs
    with pytest.raises(error, match=name):
        sg.retry(on=ConnectionError, **kwargs)


def test_attempts_none_without_a_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        sg.retry(on=ConnectionError, attempts=None)


@pytest.mark.parametrize(
    "bound",
    [{"deadline": 3600.0}, {"budget": sg.RateBudget(per_second=1000.0, burst=1000)}],
    ids=["deadline", "budget"],
)
def test_attempts_none_means_no_attempt_limit(bound: Any) -> None:
    calls = 0

    @sg.retry(on=ConnectionError, attempts=None, backoff=FAST, **bound)
    def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls < 50:
            raise ConnectionError
        return calls

    assert flaky() == 50  # never silently 3


def test_max_delay_none_means_no_cap() -> None:
    exponential = sg.Backoff.exponential(base=1.0, factor=2.0, max_delay=None, jitter="none")
    assert exponential.delays(12)[-1] == 2048.0
    linear = sg.Backoff.linear(1.0, 10.0, max_delay=None)
    assert linear.delays(5)[-1] == 41.0
    # Left out, the documented defaults hold.
    assert sg.Backoff.exponential(jitter="none").max_delay == 10.0


@pytest.mark.parametrize(
    "verdict, error",
    [
        (float("nan"), ValueError),
        (-1.0, ValueError),
        (-5, ValueError),
        (datetime.timedelta(seconds=-1), ValueError),
        ("soon", TypeError),
        ([1.0], TypeError),
    ],
)
def test_a_predicate_returning_nonsense_is_an_error(verdict: Any, error: type) -> None:
    def failing() -> None:
        raise ConnectionError("down")

    with pytest.raises(error, match="predicate"):
        sg.retry(on=lambda e: verdict)(failing)()
    with pytest.raises(error, match="on_result"):
        sg.retry(on=ConnectionError, on_result=lambda r: verdict)(ok)()


def test_parse_retry_after_none_bytes_and_long_garbage() -> None:
    assert sg.parse_retry_after(None) is None
    assert sg.parse_retry_after(b"120") == 120.0
    assert sg.parse_retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT", now=784111777 - 5) == 5.0
    hostile = "x" * 100_000
    with pytest.raises(ValueError) as info:
        sg.parse_retry_after(hostile)
    assert len(str(info.value)) < 250
    assert "x" * 100 in str(info.value) and "x" * 101 not in str(info.value)
    with pytest.raises(ValueError):
        sg.parse_retry_after(b"\xff\xfe" * 1000)
    with pytest.raises(TypeError, match="value"):
        sg.parse_retry_after(120)  # type: ignore[call-overload]


def test_advance_clock_cannot_wrap_the_clock() -> None:
    from stormguard._core import now_ns

    before = now_ns()
    sg.advance_clock(datetime.timedelta(seconds=1))
    assert now_ns() >= before + 1_000_000_000
    for bad in (1e30, float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="seconds"):
            sg.advance_clock(bad)
    # Up to the limit in steps, then one more is refused; the clock never
    # goes backwards.
    with pytest.raises(ValueError, match="146 years"):
        for _ in range(200):
            sg.advance_clock(datetime.timedelta(days=365))
    assert now_ns() > before


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**64, ValueError), ("1", TypeError), (1.0, TypeError)])
def test_delays_seed_must_be_a_64_bit_int(seed: Any, error: type) -> None:
    with pytest.raises(error, match="seed"):
        sg.Backoff.constant(0.1).delays(3, seed=seed)
    assert sg.Backoff.exponential().delays(3, seed=2**64 - 1) == sg.Backoff.exponential().delays(
        3, seed=2**64 - 1
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda d: sg.Backoff.constant(d),
        lambda d: sg.Backoff.linear(d, d),
        lambda d: sg.Backoff.exponential(base=d, max_delay=d * 10),
        lambda d: sg.CircuitBreaker(recovery_timeout=d, probe_timeout=d),
        lambda d: sg.RetryBudget(ttl=d),
        lambda d: sg.IdempotencyTable(capacity=1, ttl=d),
        lambda d: sg.retry(on=ConnectionError, deadline=d, max_server_delay=d),
        lambda d: sg.retrying(on=ConnectionError, deadline=d, max_server_delay=d),
        lambda d: sg.advance_clock(d),
        lambda d: sg.hedge(on=ConnectionError, delay=d, deadline=d, max_server_delay=d),
        lambda d: RedisStore(redis.Redis(), lease=d, ttl=d, deadline=d),
        lambda d: RedisStore.from_url("redis://127.0.0.1:1/", attempt_timeout=d, lease=d, ttl=d),
    ],
)
def test_every_duration_accepts_a_timedelta(make: Callable[[Any], Any]) -> None:
    make(datetime.timedelta(milliseconds=1500))
    with pytest.raises(TypeError):
        make(True)


def test_timedelta_values_mean_their_seconds() -> None:
    assert sg.Backoff.constant(datetime.timedelta(milliseconds=250)).delays(2) == [0.25, 0.25]
    waits = []
    sg.retry(
        on=lambda e: datetime.timedelta(hours=1),
        max_server_delay=datetime.timedelta(seconds=7),
        before_sleep=lambda d: waits.append(d.delay),
    )(Flaky())()
    assert waits == [7.0]


class Flaky:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError
        return "ok"


def test_set_testing_attempts_is_validated() -> None:
    with pytest.raises(ValueError, match="attempts"):
        sg.set_testing(True, attempts=0)
    with pytest.raises(TypeError, match="attempts"):
        sg.set_testing(True, attempts=True)
    assert sg.is_testing()  # nothing changed


def test_decorating_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="callable"):
        sg.retry(on=ConnectionError)(42)  # type: ignore[arg-type]
