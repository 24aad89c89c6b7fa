"""`stormguard.hedge`: copies of an async call `delay` apart, the first
success wins (gRPC A6 hedging), on asyncio and on trio.

Every test decides its outcome by what the copies do (an event that never
fires, an immediate answer), not by how long anything takes: the delays
only order copies that would otherwise never finish."""

from __future__ import annotations

import asyncio
import math
from typing import Any, Awaitable, Callable, List

import pytest
import trio

import stormguard as sg
from stormguard._core import now_ns

Runner = Callable[[Callable[[], Awaitable[Any]]], Any]


def run_asyncio(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())  # type: ignore[arg-type]


def run_trio(main: Callable[[], Awaitable[Any]]) -> Any:
    return trio.run(main)


RUNNERS = pytest.mark.parametrize("run", [run_asyncio, run_trio], ids=["asyncio", "trio"])


async def forever() -> None:
    """Sleeps until cancelled, on whichever library runs it."""
    await sg._library_sleep()(3600.0)


class Copies:
    """A function whose n-th copy does `behaviours[n]`, recording what ran
    and what was cancelled."""

    def __init__(self, *behaviours: Callable[[int], Awaitable[Any]]) -> None:
        self.behaviours = behaviours
        self.started: List[int] = []
        self.cancelled: List[int] = []

    async def __call__(self) -> Any:
        n = len(self.started)
        self.started.append(n)
        try:
            return await self.behaviours[n](n)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.cancelled.append(n)
            raise


async def hang(n: int) -> Any:
    await forever()


async def answer(n: int) -> str:
    return f"copy {n}"


async def refuse(n: int) -> str:
    raise ConnectionError(f"copy {n} refused")


async def bug(n: int) -> str:
    raise KeyError(f"copy {n}")


@RUNNERS
def test_a_slow_copy_is_overtaken_by_the_next_and_cancelled(run: Runner) -> None:
    copies = Copies(hang, answer, answer)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=0.01)(copies)
    assert run(call) == "copy 1"
    assert copies.started == [0, 1]  # the third was never needed
    assert copies.cancelled == [0]  # the loser is cancelled, not left running


@RUNNERS
def test_a_retryable_failure_sends_the_next_copy_at_once(run: Runner) -> None:
    # An hour between copies: only A6's "non-fatal: send the next now" can
    # bring the second copy.
    copies = Copies(refuse, answer)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=3600.0)(copies)
    assert run(call) == "copy 1"
    assert copies.started == [0, 1]


@RUNNERS
def test_an_exception_on_does_not_match_ends_the_call_untouched(run: Runner) -> None:
    copies = Copies(hang, bug, answer)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=0.01)(copies)
    with pytest.raises(KeyError) as caught:
        run(call)
    assert not getattr(caught.value, "__notes__", None)  # untouched
    assert copies.started == [0, 1]
    assert copies.cancelled == [0]


@RUNNERS
def test_when_every_copy_fails_the_last_failure_is_raised_with_the_reason(run: Runner) -> None:
    copies = Copies(refuse, refuse, refuse)
    details: List[sg.RetryDetails] = []
    call = sg.hedge(on=ConnectionError, attempts=3, delay=3600.0, on_give_up=details.append)(copies)
    with pytest.raises(ConnectionError, match="copy 2 refused") as caught:
        run(call)
    assert getattr(caught.value, "__notes__", None) == ["stormguard: gave up after 3 attempts: attempts exhausted"]
    assert [(d.attempt, d.give_up_reason) for d in details] == [(3, "attempts exhausted")]


@RUNNERS
def test_the_deadline_cancels_every_copy(run: Runner) -> None:
    copies = Copies(hang, hang, hang)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=0.01, deadline=0.2)(copies)
    with pytest.raises(TimeoutError) as caught:
        run(call)
    assert (getattr(caught.value, "__notes__", None) or [""])[-1].endswith("deadline exceeded")
    assert copies.started == [0, 1, 2]
    assert sorted(copies.cancelled) == [0, 1, 2]


@RUNNERS
def test_a_server_stop_sends_no_more_copies(run: Runner) -> None:
    async def stopped(n: int) -> str:
        raise ConnectionError("stop")

    copies = Copies(stopped, answer)
    call = sg.hedge(on=lambda exc: sg.STOP, attempts=3, delay=0.01)(copies)
    with pytest.raises(ConnectionError) as caught:
        run(call)
    assert getattr(caught.value, "__notes__", None) == ["stormguard: gave up after 1 attempt: server said stop"]
    assert copies.started == [0]


def test_copies_after_the_first_need_the_budget() -> None:
    throttle = sg.Throttle(10, 0.1)
    for _ in range(6):
        throttle.on_failure()  # 4 tokens left: below half, no retries
    assert not throttle.allows_retry()

    async def slow(n: int) -> str:
        await asyncio.sleep(0.05)
        return f"copy {n}"

    copies = Copies(slow, answer)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=0.001, budget=throttle)(copies)
    assert asyncio.run(call()) == "copy 0"
    assert copies.started == [0]  # the hedge was refused: the first copy won alone


def test_a_non_idempotent_call_is_never_hedged() -> None:
    copies = Copies(refuse, answer)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=0.001, idempotent=False)(copies)
    with pytest.raises(ConnectionError):
        asyncio.run(call())
    assert copies.started == [0]


def test_cancelling_the_call_cancels_its_copies() -> None:
    copies = Copies(hang, hang, hang)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=0.001)(copies)

    async def main() -> None:
        task = asyncio.ensure_future(call())
        while len(copies.started) < 3:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert sorted(copies.cancelled) == [0, 1, 2]


def test_testing_mode_skips_the_waits_on_stormguards_clock() -> None:
    copies = Copies(hang, hang, answer)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=3600.0)(copies)
    before = now_ns()
    with sg.set_testing(True):
        assert asyncio.run(call()) == "copy 2"
    # Two hedging delays passed on stormguard's clock, not the wall's.
    assert now_ns() - before >= 2 * 3600 * 10**9


@pytest.mark.parametrize("cap, sent", [(1, [0]), (2, [0, 1])])
def test_a_testing_cap_on_attempts_caps_the_copies(cap: int, sent: List[int]) -> None:
    copies = Copies(refuse, refuse, answer)
    call = sg.hedge(on=ConnectionError, attempts=3, delay=0.001)(copies)
    with sg.set_testing(True, attempts=cap):
        with pytest.raises(ConnectionError):
            asyncio.run(call())
    assert copies.started == sent


def test_the_decorated_function_keeps_its_name_and_arguments() -> None:
    @sg.hedge(on=ConnectionError, delay=0.01)
    async def fetch(x: int, *, y: int) -> int:
        return x + y

    assert fetch.__name__ == "fetch"
    assert asyncio.run(fetch(1, y=2)) == 3


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"attempts": 1}, ValueError, "invalid attempts"),
        ({"attempts": 6}, ValueError, "invalid attempts"),
        ({"attempts": 2.5}, TypeError, "attempts must be an int"),
        ({"delay": -1.0}, ValueError, "invalid delay"),
        ({"delay": math.nan}, ValueError, "invalid delay"),
        ({"delay": "1s"}, TypeError, "delay must be a number of seconds"),
        ({"deadline": 0.0}, ValueError, "invalid deadline"),
        ({"budget": 3}, TypeError, "budget must be"),
        ({"idempotent": "yes"}, TypeError, "idempotent must be a bool"),
        ({"on": int}, TypeError, "exception classes"),
        ({"on_give_up": 3}, TypeError, "on_give_up must be callable"),
    ],
)
def test_bad_settings_fail_when_the_decorator_is_made(kwargs: Any, error: type, message: str) -> None:
    arguments = {"on": ConnectionError, **kwargs}
    with pytest.raises(error, match=message):
        sg.hedge(**arguments)


def test_only_async_functions_can_be_hedged() -> None:
    def sync() -> None: ...

    with pytest.raises(TypeError, match="async def"):
        sg.hedge(on=ConnectionError)(sync)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decorates a callable"):
        sg.hedge(on=ConnectionError)(3)  # type: ignore[arg-type]


def test_a_callable_returning_an_awaitable_is_hedged_and_one_returning_a_value_is_an_error() -> None:
    class Stub:
        """Like a grpc.aio multicallable: a plain __call__ that returns an awaitable."""

        def __init__(self) -> None:
            self.calls = 0

        def __call__(self) -> Awaitable[str]:
            self.calls += 1
            return answer(self.calls)

    stub = Stub()
    assert asyncio.run(sg.hedge(on=ConnectionError, delay=0.01)(stub)()) == "copy 1"

    class NotAwaitable:
        def __call__(self) -> int:
            return 3

    with pytest.raises(TypeError, match="returns an awaitable"):
        asyncio.run(sg.hedge(on=ConnectionError)(NotAwaitable())())  # type: ignore[arg-type]
