"""The decorator and the iterator: give-up reasons, notes, server hints,
deadlines, idempotency, budgets, the breaker, async, testing mode."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import time
from typing import Any, Callable, Iterator, List, Union

import pytest

import stormguard as sg

FAST = sg.Backoff.constant(0.0)


class Flaky:
    """Raises the given exceptions in turn, then returns `value`."""

    def __init__(self, *errors: BaseException, value: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.value = value

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with sg.testing():
        yield


def notes(exc: BaseException) -> List[str]:
    return list(getattr(exc, "__notes__", []))


def test_success_first_time() -> None:
    op = Flaky()
    assert sg.retry(on=ConnectionError)(op)() == "ok"
    assert op.calls == 1


def test_success_after_failures() -> None:
    op = Flaky(ConnectionError(), TimeoutError())
    assert sg.retry(on=(ConnectionError, TimeoutError), attempts=3, backoff=FAST)(op)() == "ok"
    assert op.calls == 3


def test_attempts_exhausted_reraises_the_original_with_a_note() -> None:
    last = ConnectionError("third")
    op = Flaky(ConnectionError("first"), ConnectionError("second"), last)
    with pytest.raises(ConnectionError) as info:
        sg.retry(on=ConnectionError, attempts=3, backoff=FAST)(op)()
    assert info.value is last
    assert notes(info.value) == ["stormguard: gave up after 3 attempts: attempts exhausted"]


@pytest.mark.parametrize(
    "extra",
    [{}, {"deadline": 60.0}, {"breaker": "new"}],
    ids=["plain", "deadline", "breaker"],
)
def test_the_reraised_exception_is_not_chained_to_earlier_failures(extra: Any) -> None:
    # A traceback must show the last failure alone, not "During handling of
    # the above exception, another exception occurred" for every attempt.
    settings = dict(extra)
    if settings.get("breaker") == "new":
        settings["breaker"] = sg.CircuitBreaker(failure_threshold=100)
    last = ConnectionError("third")
    op = Flaky(ConnectionError("first"), ConnectionError("second"), last)
    with pytest.raises(ConnectionError) as info:
        sg.retry(on=ConnectionError, attempts=3, backoff=FAST, **settings)(op)()
    assert info.value is last
    assert info.value.__context__ is None

    async def failing() -> None:
        op()

    op = Flaky(ConnectionError("first"), ConnectionError("second"), last := ConnectionError("3"))
    with pytest.raises(ConnectionError) as info:
        asyncio.run(sg.retry(on=ConnectionError, attempts=3, backoff=FAST, **settings)(failing)())
    assert info.value is last
    assert info.value.__context__ is None


def test_classes_are_classified_by_their_own_type_every_time() -> None:
    # The default classification is remembered per class: a refused
    # connection (never sent) and a reset one (may have run) alternate.
    op = Flaky(
        ConnectionRefusedError(), ConnectionResetError(), ConnectionRefusedError(), value="ok"
    )
    assert sg.retry(on=ConnectionError, attempts=4, backoff=FAST, idempotent=False)(
        Flaky(ConnectionRefusedError(), ConnectionRefusedError())
    )() == "ok"
    with pytest.raises(ConnectionResetError) as info:
        sg.retry(on=ConnectionError, attempts=4, backoff=FAST, idempotent=False)(op)()
    assert notes(info.value) == ["stormguard: gave up after 2 attempts: unsafe to replay"]


def test_one_attempt_note_is_singular() -> None:
    with pytest.raises(ConnectionError) as info:
        sg.retry(on=ConnectionError, attempts=1)(Flaky(ConnectionError()))()
    assert notes(info.value) == ["stormguard: gave up after 1 attempt: attempts exhausted"]


def test_an_exception_on_does_not_match_propagates_untouched() -> None:
    op = Flaky(KeyError("k"))
    with pytest.raises(KeyError) as info:
        sg.retry(on=ConnectionError, attempts=5)(op)()
    assert op.calls == 1
    assert notes(info.value) == []


def test_predicate_false_propagates_untouched() -> None:
    op = Flaky(ValueError("bad request"))
    with pytest.raises(ValueError) as info:
        sg.retry(on=lambda e: "retry me" in str(e))(op)()
    assert (op.calls, notes(info.value)) == (1, [])


def test_server_delay_from_the_predicate_is_honoured_and_capped() -> None:
    waits: List[float] = []
    op = Flaky(ConnectionError("2"), ConnectionError("3600"), ConnectionError(""))

    def server_says(exc: BaseException) -> Union[float, bool]:
        return float(str(exc)) if str(exc) else True

    decorated = sg.retry(
        on=server_says,
        attempts=4,
        backoff=sg.Backoff.constant(0.25),
        max_server_delay=30.0,
        before_sleep=lambda d: waits.append(d.delay),
    )(op)
    assert decorated() == "ok"
    assert waits == [2.0, 30.0, 0.25]


def test_predicate_may_return_a_timedelta() -> None:
    waits: List[float] = []
    op = Flaky(ConnectionError())
    sg.retry(
        on=lambda e: datetime.timedelta(milliseconds=1500),
        before_sleep=lambda d: waits.append(d.delay),
    )(op)()
    assert waits == [1.5]


def test_server_said_stop() -> None:
    op = Flaky(ConnectionError(), ConnectionError())
    with pytest.raises(ConnectionError) as info:
        sg.retry(on=lambda e: sg.STOP, attempts=5)(op)()
    assert op.calls == 1
    assert notes(info.value) == ["stormguard: gave up after 1 attempt: server said stop"]


def test_unsafe_to_replay_for_a_non_idempotent_method() -> None:
    op = Flaky(TimeoutError(), value="charged")
    with pytest.raises(TimeoutError) as info:
        sg.retry(on=TimeoutError, idempotent=False)(op)()
    assert op.calls == 1
    assert notes(info.value) == ["stormguard: gave up after 1 attempt: unsafe to replay"]


def test_a_request_that_was_never_sent_is_retried_even_if_not_idempotent() -> None:
    op = Flaky(ConnectionRefusedError(), value="charged")
    assert sg.retry(on=ConnectionError, idempotent=False, backoff=FAST)(op)() == "charged"
    assert op.calls == 2


def test_replay_callback_decides_replay_safety() -> None:
    op = Flaky(ConnectionError("rejected"), value="charged")
    replay = lambda e: "rejected" if "rejected" in str(e) else "unknown"  # noqa: E731
    assert sg.retry(on=ConnectionError, idempotent=False, replay=replay, backoff=FAST)(op)() == "charged"
    with pytest.raises(ValueError, match="replay"):
        sg.retry(on=ConnectionError, replay=lambda e: "maybe")(Flaky(ConnectionError()))()


def test_deadline_gives_up_instead_of_sleeping_into_it() -> None:
    op = Flaky(*[ConnectionError() for _ in range(10)])
    waits: List[float] = []
    decorated = sg.retry(
        on=ConnectionError,
        attempts=10,
        backoff=sg.Backoff.constant(1.0),
        deadline=2.5,
        before_sleep=lambda d: waits.append(d.delay),
    )(op)
    with pytest.raises(ConnectionError) as info:
        decorated()
    # Waits of 1 s at t≈0 and t≈1; a third would start at ≈3 s > 2.5 s.
    assert waits == [1.0, 1.0]
    assert notes(info.value) == ["stormguard: gave up after 3 attempts: deadline exceeded"]


def test_budget_exhausted() -> None:
    throttle = sg.Throttle(max_tokens=2, token_ratio=0.1)
    op = Flaky(*[ConnectionError() for _ in range(5)])
    with pytest.raises(ConnectionError) as info:
        sg.retry(on=ConnectionError, attempts=5, budget=throttle, backoff=FAST)(op)()
    # 2 tokens: the first failure leaves 1 (= max/2): throttled at once.
    assert op.calls == 1
    assert notes(info.value) == ["stormguard: gave up after 1 attempt: budget exhausted"]


def test_success_refills_the_throttle() -> None:
    throttle = sg.Throttle(max_tokens=10, token_ratio=0.5)
    for _ in range(4):
        throttle.on_failure()
    sg.retry(on=ConnectionError, budget=throttle)(Flaky())()
    assert throttle.tokens == 6.5


def test_open_breaker_raises_circuit_open_error() -> None:
    breaker = sg.CircuitBreaker(failure_threshold=2, recovery_timeout=60.0)
    op = Flaky(*[ConnectionError() for _ in range(10)])
    decorated = sg.retry(on=ConnectionError, attempts=5, breaker=breaker, backoff=FAST)(op)
    with pytest.raises(ConnectionError) as info:
        decorated()
    assert op.calls == 2
    assert notes(info.value) == ["stormguard: gave up after 2 attempts: circuit open"]
    assert breaker.state == "open"
    with pytest.raises(sg.CircuitOpenError) as refused:
        decorated()
    assert 59.0 < refused.value.retry_in <= 60.001  # whole milliseconds, rounded up
    assert op.calls == 2


def test_breaker_recovers_through_one_probe() -> None:
    breaker = sg.CircuitBreaker(failure_threshold=1, recovery_timeout=5.0)
    op = Flaky(ConnectionError())
    decorated = sg.retry(on=ConnectionError, attempts=1, breaker=breaker)(op)
    with pytest.raises(ConnectionError):
        decorated()
    assert breaker.state == "open"
    sg.advance_clock(5.01)  # the breaker counts whole milliseconds
    assert decorated() == "ok"
    assert breaker.state == "closed"


def test_signature_and_metadata_are_preserved() -> None:
    def fetch(url: str, *, timeout: float = 1.0) -> str:
        """Fetches."""
        return url

    decorated = sg.retry(on=ConnectionError)(fetch)
    assert inspect.signature(decorated) == inspect.signature(fetch)
    assert decorated.__name__ == "fetch"
    assert decorated.__doc__ == "Fetches."
    assert decorated("u", timeout=2.0) == "u"


def test_before_sleep_gets_per_call_details() -> None:
    seen: List[sg.RetryDetails] = []
    err = ConnectionError("boom")
    op = Flaky(err)

    @sg.retry(on=ConnectionError, backoff=sg.Backoff.constant(0.5), before_sleep=seen.append)
    def call() -> str:
        return op()

    call()
    assert seen == [sg.RetryDetails(call.__qualname__, 1, 0.5, err)]


def test_zero_delay_never_calls_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(_: float) -> None:
        raise AssertionError("sleep called")

    with sg.testing(False):
        monkeypatch.setattr(time, "sleep", forbidden)
        op = Flaky(ConnectionError(), ConnectionError())
        assert sg.retry(on=ConnectionError, backoff=FAST)(op)() == "ok"


def test_real_waits_happen_outside_testing_mode() -> None:
    with sg.testing(False):
        op = Flaky(ConnectionError())
        start = time.monotonic()
        sg.retry(on=ConnectionError, backoff=sg.Backoff.constant(0.05))(op)()
        assert time.monotonic() - start >= 0.05


def test_testing_mode_skips_waits() -> None:
    op = Flaky(ConnectionError(), ConnectionError())
    start = time.monotonic()
    sg.retry(on=ConnectionError, backoff=sg.Backoff.constant(30.0))(op)()
    assert time.monotonic() - start < 1.0
    assert sg.is_testing()


def test_keyboard_interrupt_is_never_retried() -> None:
    op = Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        sg.retry(on=Exception)(op)()
    assert op.calls == 1


# --- async ------------------------------------------------------------------


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_async_success_after_failures() -> None:
    calls = 0

    @sg.retry(on=ConnectionError, backoff=FAST)
    async def fetch(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError
        return x * 2

    assert inspect.iscoroutinefunction(fetch)
    assert run(fetch(21)) == 42
    assert calls == 3


def test_async_gives_up_with_a_note() -> None:
    @sg.retry(on=ConnectionError, attempts=2, backoff=FAST)
    async def fetch() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError) as info:
        run(fetch())
    assert notes(info.value) == ["stormguard: gave up after 2 attempts: attempts exhausted"]


def test_async_waits_with_asyncio_sleep() -> None:
    calls = 0

    @sg.retry(on=ConnectionError, backoff=sg.Backoff.constant(0.05))
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError
        return "ok"

    async def main() -> float:
        # Another task keeps running while the retry waits.
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.ensure_future(ticker())
        assert await fetch() == "ok"
        task.cancel()
        return ticks

    with sg.testing(False):
        assert run(main()) >= 3


# --- the iterator -------------------------------------------------------------


def test_retrying_iterator() -> None:
    op = Flaky(ConnectionError(), ConnectionError())
    results = []
    for attempt in sg.retrying(on=ConnectionError, attempts=3, backoff=FAST):
        with attempt:
            results.append((attempt.number, op()))
    assert results == [(3, "ok")]


def test_retrying_iterator_gives_up_with_the_original() -> None:
    err = ConnectionError("last")
    op = Flaky(ConnectionError(), err)
    with pytest.raises(ConnectionError) as info:
        for attempt in sg.retrying(on=ConnectionError, attempts=2, backoff=FAST):
            with attempt:
                op()
    assert info.value is err
    assert notes(err) == ["stormguard: gave up after 2 attempts: attempts exhausted"]


def test_retrying_iterator_lets_other_exceptions_through() -> None:
    with pytest.raises(KeyError):
        for attempt in sg.retrying(on=ConnectionError):
            with attempt:
                raise KeyError


def test_retrying_async_iterator() -> None:
    op = Flaky(ConnectionError())

    async def main() -> List[int]:
        numbers = []
        async for attempt in sg.retrying(on=ConnectionError, backoff=FAST):
            with attempt:
                numbers.append(attempt.number)
                op()
        return numbers

    assert run(main()) == [1, 2]


def test_each_call_has_its_own_state() -> None:
    # Two interleaved calls through one decorator never share counters.
    decorated = sg.retry(on=ConnectionError, attempts=2, backoff=FAST)
    a, b = Flaky(ConnectionError()), Flaky(ConnectionError())
    fa, fb = decorated(a), decorated(b)
    assert (fa(), fb()) == ("ok", "ok")
    assert (a.calls, b.calls) == (2, 2)


DecoratorFactory = Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]
