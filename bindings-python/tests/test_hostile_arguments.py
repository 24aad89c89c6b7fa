"""Arbitrary argument values for `retry`, `retrying`, `hedge` and
`from_grpc_service_config`: each either raises `TypeError`/`ValueError`
when the decorator (or iterator) is made, or makes one that works — never a
`PanicException` (a Rust panic crossing into Python, a `BaseException`
these tests do not catch), a crash or a hang.

Derandomized: every run draws the same examples (no example database), and
a failure prints the arguments that caused it."""

from __future__ import annotations

import asyncio
import datetime
import math
from typing import Any, Dict

from hypothesis import given, settings
from hypothesis import strategies as st

import stormguard as sg

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


class Abort(BaseException):
    """Ends a call that would otherwise never end (a zero wait forever
    until a far deadline): the decorators never retry a BaseException."""


numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 3, 5, -1, 0.0, 1e-12, 1e300, 2**32, 2**64]),
)
durations = st.one_of(
    numbers,
    st.timedeltas(min_value=datetime.timedelta(days=-3), max_value=datetime.timedelta(days=3)),
)


def verdicts(draw_value: Any) -> Any:
    return lambda exc: draw_value


anything = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(max_size=8),
    st.binary(max_size=8),
    st.just(object()),
    st.just(ConnectionError),
    st.just((ConnectionError, TimeoutError)),
    st.just(()),
    st.just(KeyboardInterrupt),
    st.just(int),
    st.sampled_from([sg.STOP, datetime.timedelta(seconds=1)]).map(verdicts),
    numbers.map(verdicts),
    st.builds(lambda: sg.Throttle(10, 0.1)),
    st.builds(lambda: sg.RetryBudget()),
    st.builds(lambda: sg.CircuitBreaker()),
    st.builds(lambda: sg.Backoff.constant(0.0)),
    st.builds(lambda: sg.Backoff.exponential()),
    st.builds(lambda: sg.Metrics()),
    st.just(lambda exc: "unknown"),
    st.just(lambda *a: None),
)

RETRY_ARGUMENTS = {
    "on": st.one_of(st.just(ConnectionError), anything),
    "attempts": st.one_of(numbers, anything),
    "backoff": anything,
    "deadline": st.one_of(durations, anything),
    "budget": anything,
    "breaker": anything,
    "idempotent": anything,
    "replay": anything,
    "before_sleep": anything,
    "max_server_delay": st.one_of(durations, anything),
    "on_result": anything,
    "on_give_up": anything,
    "metrics": anything,
}


def some_of(arguments: Dict[str, Any]) -> Any:
    """A dict holding a random subset of the arguments, each drawn from its
    strategy."""
    return st.fixed_dictionaries({}, optional=arguments)


class Flaky:
    """Fails twice with ConnectionError, then returns 1; aborts past 50 calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls > 50:
            raise Abort
        if self.calls <= 2:
            raise ConnectionError("flaky")
        return 1


# What a working decorator may do when called: return, or raise the
# function's own exception (given up), the breaker's refusal, or a
# TypeError/ValueError from a predicate's bad answer; Abort ends a call
# configured to retry (nearly) forever.
ALLOWED = (ConnectionError, sg.CircuitOpenError, TypeError, ValueError)


def call_through(run: Any) -> None:
    try:
        with sg.set_testing(True):  # no real waits: the clock jumps instead
            assert run() == 1
    except ALLOWED:
        pass
    except Abort:
        pass


@SETTINGS
@given(some_of(RETRY_ARGUMENTS))
def test_retry_with_any_arguments(kwargs: Dict[str, Any]) -> None:
    kwargs.setdefault("on", ConnectionError)
    try:
        decorator = sg.retry(**kwargs)
    except (TypeError, ValueError) as exc:
        assert str(exc)  # says what is wrong
        return
    call_through(decorator(Flaky()))


@SETTINGS
@given(some_of(RETRY_ARGUMENTS))
def test_retrying_with_any_arguments(kwargs: Dict[str, Any]) -> None:
    kwargs.setdefault("on", ConnectionError)
    kwargs.pop("on_give_up", None)  # a decorator-only argument
    flaky = Flaky()
    try:
        loop = sg.retrying(**kwargs)
    except (TypeError, ValueError) as exc:
        assert str(exc)
        return

    def run() -> int:
        for attempt in loop:
            with attempt:
                return flaky()
        raise AssertionError("the loop ended without an answer or an exception")

    call_through(run)


HEDGE_ARGUMENTS = {
    "on": st.one_of(st.just(ConnectionError), anything),
    "attempts": st.one_of(numbers, anything),
    "delay": st.one_of(durations, anything),
    "deadline": st.one_of(durations, anything),
    "budget": anything,
    "idempotent": anything,
    "replay": anything,
    "max_server_delay": st.one_of(durations, anything),
    "on_give_up": anything,
}


@SETTINGS
@given(some_of(HEDGE_ARGUMENTS))
def test_hedge_with_any_arguments(kwargs: Dict[str, Any]) -> None:
    kwargs.setdefault("on", ConnectionError)
    try:
        decorator = sg.hedge(**kwargs)
    except (TypeError, ValueError) as exc:
        assert str(exc)
        return
    flaky = Flaky()

    async def call() -> int:
        return flaky()

    hedged = decorator(call)
    call_through(lambda: asyncio.run(hedged()))


@SETTINGS
@given(
    json_text=st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60),
        st.sampled_from(['{"methodConfig": [{"name": [{}], "timeout": "1s"}]}', "{}", "[]", "null"]),
        anything,
    ),
    service=st.one_of(st.text(max_size=8), anything),
    method=st.one_of(st.text(max_size=8), anything),
    cap=st.one_of(st.none(), numbers, anything),
)
def test_from_grpc_service_config_with_any_arguments(json_text: Any, service: Any, method: Any, cap: Any) -> None:
    kwargs = {} if cap is None else {"max_attempts_cap": cap}
    try:
        cfg = sg.from_grpc_service_config(json_text, service, method, **kwargs)
    except (TypeError, ValueError) as exc:
        assert str(exc)
        return
    assert cfg["attempts"] >= 1
    assert math.isfinite(cfg.get("deadline") or 0.0)
