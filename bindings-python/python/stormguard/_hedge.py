"""`stormguard.hedge`: hedged calls for ``async def`` functions, on asyncio
and trio.

A hedged call sends a copy of the call, then another every `delay` while no
answer has come, up to `attempts` copies running at once; the first success
wins and the other copies are cancelled (gRPC proposal A6's hedging
policy; "The Tail at Scale", Dean & Barroso). Every rule — when the next
copy is due, what a failure or a server pushback does, the budget, the
deadline — is the Rust core's `Hedge`; this module only runs the copies.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import math
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Deque,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    cast,
)

import stormguard as _sg

from ._core import HedgePolicy as _HedgePolicy
from ._core import skip as _skip

if TYPE_CHECKING:
    from . import P
T = TypeVar("T")

# The steps `Hedge.poll`, `succeeded` and `failed` return, as (kind, value);
# a won call (kind 3) is over where its success is reported.
_SEND, _WAIT, _WAIT_FOR_ANSWERS, _WON, _GAVE_UP = range(5)

# One copy's answer: its number, whether it succeeded, and its result or
# the exception it raised.
_Answer = Tuple[int, bool, Any]


async def _call(fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """One copy: `fn`'s awaitable (a coroutine, or the call object of a
    ``grpc.aio`` stub), awaited."""
    awaitable = fn(*args, **kwargs)
    if not inspect.isawaitable(awaitable):
        raise TypeError(
            f"hedge() needs a callable that returns an awaitable; {fn!r:.100} returned "
            f"{type(awaitable).__name__}"
        )
    return await awaitable


class _AsyncioCopies:
    """The copies of one call as asyncio tasks."""

    __slots__ = ("_fn", "_args", "_kwargs", "_tasks", "_ready")

    def __init__(self, fn: Callable[..., Awaitable[Any]], args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._tasks: Dict["asyncio.Future[Tuple[bool, Any]]", int] = {}
        self._ready: Deque[_Answer] = collections.deque()

    async def _run(self) -> Tuple[bool, Any]:
        try:
            return (True, await _call(self._fn, self._args, self._kwargs))
        except Exception as exc:
            return (False, exc)

    def spawn(self, n: int) -> None:
        self._tasks[asyncio.ensure_future(self._run())] = n

    async def next(self, timeout: Optional[float]) -> Optional[_Answer]:
        """The next answer, or None when `timeout` seconds passed first."""
        if not self._ready:
            if self._tasks:
                done, _ = await asyncio.wait(
                    list(self._tasks), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                # Several copies may end in one turn: report them in order.
                for task in sorted(done, key=self._tasks.__getitem__):
                    n = self._tasks.pop(task)
                    ok, value = task.result()
                    self._ready.append((n, ok, value))
            elif timeout is not None:
                await asyncio.sleep(timeout)
        return self._ready.popleft() if self._ready else None

    async def cancel(self) -> None:
        """Cancels every copy still running and waits for them to end."""
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class _TrioCopies:
    """The copies of one call as tasks in a trio nursery."""

    __slots__ = ("_fn", "_args", "_kwargs", "_nursery", "_send", "_receive")

    def __init__(
        self, nursery: Any, fn: Callable[..., Awaitable[Any]], args: Tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        import trio

        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._nursery = nursery
        # Unbounded: a copy never waits to report its answer.
        self._send, self._receive = trio.open_memory_channel[_Answer](math.inf)

    async def _run(self, n: int) -> None:
        try:
            result = await _call(self._fn, self._args, self._kwargs)
        except Exception as exc:
            self._send.send_nowait((n, False, exc))
            return
        self._send.send_nowait((n, True, result))

    def spawn(self, n: int) -> None:
        self._nursery.start_soon(self._run, n)

    async def next(self, timeout: Optional[float]) -> Optional[_Answer]:
        import trio

        if timeout is None:
            return await self._receive.receive()
        with trio.move_on_after(timeout):
            return await self._receive.receive()
        return None


class _Outcome:
    """How a hedged call ended: the winning copy's result, or the
    exception to raise (with the reason the call gave up, if it did)."""

    __slots__ = ("ok", "value", "reason", "sent")

    def __init__(self, ok: bool, value: Any, reason: Optional[str], sent: int) -> None:
        self.ok, self.value, self.reason, self.sent = ok, value, reason, sent


async def _drive(policy: _HedgePolicy, classify: Any, copies: Any) -> _Outcome:
    """Runs one hedged call: sends copies when the core says so, reports
    every answer to it, waits as it says. Never raises for a copy's
    exception: the outcome carries it."""
    hedge = policy.start()
    last: Optional[BaseException] = None
    step = hedge.poll()
    while True:
        kind, value = step
        if kind == _SEND:
            copies.spawn(value)
            step = hedge.poll()
            continue
        if kind == _GAVE_UP:
            return _Outcome(False, last, value, hedge.sent)
        timeout: Optional[float] = value if kind == _WAIT else None
        if _sg._testing and timeout is not None:
            # Testing mode: no real wait. Answers ready now are taken;
            # otherwise stormguard's clock jumps to when the core is due.
            answer = await copies.next(0.0)
            if answer is None:
                _skip(timeout)
        else:
            answer = await copies.next(timeout)
        if answer is None:
            step = hedge.poll()
            continue
        n, ok, result = answer
        if ok:
            # The copy is in flight (each answers once): its success ends
            # the call, and the core pays the budget.
            hedge.succeeded(n)
            return _Outcome(True, result, None, hedge.sent)
        verdict = classify(result)
        if verdict is None:
            # Not an exception `on` names: fatal. The call ends and the
            # exception propagates untouched.
            hedge.failed(n, 3)
            return _Outcome(False, result, None, hedge.sent)
        last = result
        step = hedge.failed(n, *verdict)


def _raise(outcome: _Outcome, name: str, on_give_up: Optional[Callable[[Any], Any]],
           args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    if outcome.ok:
        return outcome.value
    exc = outcome.value
    if outcome.reason is None:
        raise exc  # fatal: untouched
    if exc is None:
        # The deadline passed before any copy answered.
        exc = TimeoutError(f"{name}: no copy answered before the deadline")
    _sg._note(exc, outcome.sent, outcome.reason)
    hooks = _sg._get_hooks("give_up")
    if on_give_up is not None or hooks:
        details = _sg.RetryDetails(name, outcome.sent, 0.0, exc, None, outcome.reason, args, kwargs)
        if on_give_up is not None:
            on_give_up(details)
        for hook in hooks:
            hook(details)
    raise exc


def hedge(
    *,
    on: _sg.On,
    attempts: int = 3,
    delay: _sg.Seconds = 0.1,
    deadline: Optional[_sg.Seconds] = None,
    budget: Optional[_sg.AnyBudget] = None,
    idempotent: bool = True,
    replay: Optional[_sg.Replay] = None,
    max_server_delay: Optional[_sg.Seconds] = None,
    on_give_up: Optional[Callable[[_sg.RetryDetails], Any]] = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Hedges the decorated ``async def`` function: one copy now, another
    every `delay` while none has answered (at most `attempts`, 2 to 5, all
    running at once), the first success wins and the others are cancelled.

    Any callable that returns an awaitable can be hedged too, such as a
    ``grpc.aio`` stub's method: each copy is one call of it, cancelled by
    cancelling its awaitable.

    A copy failing with an exception `on` matches lets the others run and
    sends the next copy at once (or after a server delay the predicate
    returns; ``STOP`` sends no more); any other exception ends the call and
    propagates untouched. Every copy after the first needs the `budget`'s
    leave (a `Throttle`, as gRPC's `retryThrottling`). `deadline` bounds
    the whole call: the copies still running are cancelled when it passes.
    A call that gives up raises the last copy's exception (a
    ``TimeoutError`` if none answered) with a note saying why.

    Only for calls that may run more than once at the same time
    (``idempotent=False`` sends a single copy). Runs on asyncio and trio
    (found with sniffio). Invalid settings raise ``TypeError`` or
    ``ValueError`` here, naming the argument.
    """
    if not isinstance(idempotent, bool):
        raise TypeError(f"idempotent must be a bool, not {type(idempotent).__name__}")
    _sg._check_hook(on_give_up, "on_give_up")
    classify = _sg._classifier(on, replay)
    policy = _HedgePolicy(
        attempts=attempts,
        delay=delay,
        deadline=deadline,
        max_server_delay=max_server_delay,
        idempotent=idempotent,
        budget=budget,
    )

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        if not callable(fn):
            raise TypeError(f"hedge() decorates a callable, not {type(fn).__name__}")
        if (inspect.isfunction(fn) or inspect.ismethod(fn)) and not _sg._is_async(fn):
            raise TypeError(
                "hedge() runs copies of a call at the same time: it decorates an async def "
                f"function (or a callable returning an awaitable), not {fn.__qualname__!s:.100}"
            )
        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__

        async def hedged(*args: Any, **kwargs: Any) -> T:
            if _sg._async_library() == "trio":
                import trio

                async with trio.open_nursery() as nursery:
                    outcome = await _drive(policy, classify, _TrioCopies(nursery, fn, args, kwargs))
                    nursery.cancel_scope.cancel()  # the losers
            else:
                copies = _AsyncioCopies(fn, args, kwargs)
                try:
                    outcome = await _drive(policy, classify, copies)
                finally:
                    await copies.cancel()  # the losers, or all when cancelled
            return cast(T, _raise(outcome, name, on_give_up, args, kwargs))

        return cast("Callable[P, Coroutine[Any, Any, T]]", functools.wraps(fn)(hedged))

    return decorate


__all__: List[str] = ["hedge"]
