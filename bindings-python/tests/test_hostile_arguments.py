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


# Values each argument accepts (boundary values included), so that most
# draws make a decorator and the call path runs too.
small_durations = st.one_of(
    st.sampled_from([0, 0.0, 1e-9, 0.001, 1, 2.5, 1e9]),
    st.floats(min_value=0.0, max_value=1e6),
    st.timedeltas(min_value=datetime.timedelta(0), max_value=datetime.timedelta(days=1)),
)
VALID = {
    "on": st.sampled_from(
        [ConnectionError, (ConnectionError, TimeoutError), Exception, lambda exc: True,
         lambda exc: 0.5, lambda exc: sg.STOP, lambda exc: None, lambda exc: datetime.timedelta(0)]
    ),
    "attempts": st.one_of(st.integers(min_value=1, max_value=2**32 - 1), st.none()),
    "backoff": st.sampled_from([sg.Backoff.constant(0.0), sg.Backoff.exponential(), sg.Backoff.linear(0.1, 0.1)]),
    "deadline": st.one_of(st.none(), small_durations.filter(lambda d: d != 0 and d != datetime.timedelta(0))),
    "budget": st.one_of(st.none(), st.builds(lambda: sg.Throttle(10, 0.1)), st.builds(sg.RetryBudget),
                        st.builds(sg.CostBucket.aws_standard)),
    "breaker": st.one_of(st.none(), st.builds(sg.CircuitBreaker)),
    "idempotent": st.booleans(),
    "replay": st.sampled_from([None, lambda exc: "unknown", lambda exc: "not_sent", lambda exc: "rejected"]),
    "before_sleep": st.sampled_from([None, lambda d: None]),
    "max_server_delay": st.one_of(st.none(), small_durations),
    "on_result": st.sampled_from([None, lambda r: False, lambda r: r != 1, lambda r: 0.0]),
    "on_give_up": st.sampled_from([None, lambda d: None]),
    "metrics": st.one_of(st.none(), st.builds(sg.Metrics)),
    "attempts_hedge": st.integers(min_value=2, max_value=5),
    "delay": small_durations,
}


def some_of(arguments: Dict[str, Any]) -> Any:
    """A dict holding a random subset of the arguments, each a valid value,
    and at most one of them (sometimes none) replaced by a value drawn
    from its hostile strategy."""
    valid = {name: VALID["attempts_hedge"] if name == "attempts" and "delay" in arguments else VALID[name]
             for name in arguments}
    hostile = st.one_of(st.none(), st.sampled_from(sorted(arguments)))

    @st.composite
    def draw(draw_: Any) -> Dict[str, Any]:
        kwargs: Dict[str, Any] = draw_(st.fixed_dictionaries({}, optional=valid))
        name = draw_(hostile)
        if name is not None:
            kwargs[name] = draw_(arguments[name])
        return kwargs

    return draw()


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
# configured to retry (nearly) forever. A hedged call whose deadline passes
# before any copy answers raises TimeoutError.
ALLOWED = (ConnectionError, TimeoutError, sg.CircuitOpenError, TypeError, ValueError)


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


RETRYING_ARGUMENTS = {k: v for k, v in RETRY_ARGUMENTS.items() if k != "on_result"}


@SETTINGS
@given(some_of(RETRYING_ARGUMENTS))
def test_retrying_with_any_arguments(kwargs: Dict[str, Any]) -> None:
    kwargs.setdefault("on", ConnectionError)
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


GRPC_CONFIGS = [
    '{"methodConfig": [{"name": [{}], "timeout": "1s"}]}',
    '{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {"maxAttempts": 9, '
    '"initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2, '
    '"retryableStatusCodes": ["UNAVAILABLE"]}}], "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}',
    '{"methodConfig": [{"name": [{"service": "s", "method": "m"}], "hedgingPolicy": '
    '{"maxAttempts": 3, "hedgingDelay": "0.5s"}}]}',
    "{}",
]
GRPC_ARGUMENTS = {
    "json_text": st.one_of(st.text(max_size=60), st.binary(max_size=60), anything),
    "service": anything,
    "method": anything,
    "max_attempts_cap": st.one_of(numbers, anything),
}
VALID.update(
    json_text=st.sampled_from(GRPC_CONFIGS + [c.encode() for c in GRPC_CONFIGS]),
    service=st.sampled_from(["s", "", "other", "ü"]),
    method=st.sampled_from(["m", "", "x"]),
    max_attempts_cap=st.integers(min_value=2, max_value=2**32 - 1),
)


@SETTINGS
@given(some_of(GRPC_ARGUMENTS))
def test_from_grpc_service_config_with_any_arguments(kwargs: Dict[str, Any]) -> None:
    json_text = kwargs.pop("json_text", "{}")
    service = kwargs.pop("service", "s")
    method = kwargs.pop("method", "m")
    try:
        cfg = sg.from_grpc_service_config(json_text, service, method, **kwargs)
    except (TypeError, ValueError) as exc:
        assert str(exc)
        return
    assert 1 <= cfg["attempts"] <= (kwargs.get("max_attempts_cap") or 5)
    assert math.isfinite(cfg.get("deadline") or 0.0)
    # The mapping makes a working decorator of the kind it is for.
    decorator = cfg.decorator()
    assert callable(decorator)
