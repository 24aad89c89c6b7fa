"""stormguard: safe retries for Python, backed by a Rust core.

A decorator and an iterator in the style of stamina and tenacity, whose
decisions -- backoff with jitter, retry budgets, a circuit breaker,
idempotency, deadlines and server hints -- are made by stormguard's Rust
state machine.

    import stormguard as sg

    @sg.retry(on=(ConnectionError, TimeoutError), attempts=3)
    def fetch(url: str) -> bytes: ...

    for attempt in sg.retrying(on=ConnectionError, attempts=3):
        with attempt:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import inspect
import sys
import time
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    NamedTuple,
    NoReturn,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

from ._core import (
    Backoff,
    Begin,
    CircuitBreaker,
    CircuitOpenError,
    CostBucket,
    IdempotencyTable,
    Permit,
    RateBudget,
    RetryBudget,
    Throttle,
    Ticket,
    new_idempotency_key,
    parse_retry_after,
)
from ._core import Call as _Call
from ._core import Policy as _Policy
from ._core import skip as _skip

if TYPE_CHECKING:
    if sys.version_info >= (3, 10):
        from typing import ParamSpec
    else:  # pragma: no cover
        from typing_extensions import ParamSpec

    P = ParamSpec("P")
T = TypeVar("T")

__all__ = [
    "STOP",
    "Attempt",
    "Backoff",
    "Begin",
    "CircuitBreaker",
    "CircuitOpenError",
    "CostBucket",
    "IdempotencyTable",
    "Permit",
    "RateBudget",
    "RetryBudget",
    "RetryDetails",
    "Throttle",
    "Ticket",
    "advance_clock",
    "is_testing",
    "new_idempotency_key",
    "parse_retry_after",
    "retry",
    "retrying",
    "set_testing",
    "testing",
]


class _Stop:
    """The type of `STOP`."""

    def __repr__(self) -> str:
        return "stormguard.STOP"


STOP = _Stop()
"""Returned by an `on` predicate: the server said not to retry this call."""

ExceptionTypes = Union[Type[BaseException], Tuple[Type[BaseException], ...]]
Verdict = Union[bool, float, int, datetime.timedelta, _Stop, None]
On = Union[ExceptionTypes, Callable[[BaseException], Verdict]]
Replay = Callable[[BaseException], str]


class RetryDetails(NamedTuple):
    """What `before_sleep` is told before each wait (one per call, never shared)."""

    name: str
    """The decorated function's qualified name, or ``"retrying"``."""
    attempt: int
    """The attempt that just failed (1 for the first)."""
    delay: float
    """The wait before the next attempt, in seconds."""
    exception: BaseException
    """The exception the attempt raised."""


# --- testing mode -----------------------------------------------------------

_testing = False


def set_testing(on: bool) -> None:
    """Turn testing mode on or off: waits are skipped (stormguard's clock jumps
    ahead instead, so deadlines and breaker timeouts still see the time pass)."""
    global _testing
    _testing = bool(on)


def is_testing() -> bool:
    """Whether testing mode is on."""
    return _testing


def advance_clock(seconds: float) -> None:
    """Move stormguard's clock forward, as if `seconds` had passed: in tests,
    lets a breaker's recovery timeout or a deadline pass without waiting."""
    _skip(seconds)


@contextlib.contextmanager
def testing(on: bool = True) -> Iterator[None]:
    """Testing mode for the duration of a ``with`` block."""
    previous = _testing
    set_testing(on)
    try:
        yield
    finally:
        set_testing(previous)


def _sleep(delay: float) -> None:
    # A zero delay never calls sleep at all (sleep(0) costs a syscall).
    if delay > 0.0:
        if _testing:
            _skip(delay)
        else:
            time.sleep(delay)


async def _async_sleep(delay: float) -> None:
    if delay > 0.0:
        if _testing:
            _skip(delay)
        else:
            await asyncio.sleep(delay)


# --- classification ---------------------------------------------------------

_TRANSIENT, _TIMEOUT, _OVERLOADED = 0, 1, 2
_REPLAY_CODES = {"not_sent": 0, "rejected": 1, "unknown": 2}
_TIMEOUTS: Tuple[Type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)

_Classified = Tuple[int, int, Optional[float], bool]
_Classifier = Callable[[BaseException], Optional[_Classified]]


def _default_replay(exc: BaseException) -> str:
    return "not_sent" if isinstance(exc, ConnectionRefusedError) else "unknown"


def _replay_code(replay: Replay, exc: BaseException) -> int:
    answer = replay(exc)
    try:
        return _REPLAY_CODES[answer]
    except (KeyError, TypeError):
        raise ValueError(
            f'replay() must return "not_sent", "rejected" or "unknown", not {answer!r}'
        ) from None


def _memoized_by_class(classify: _Classifier) -> _Classifier:
    """`classify`, remembered per exception class, for classifications
    that depend on the class alone (exception types with the default
    replay). One dict lookup instead of a few `isinstance` calls on every
    failure."""
    memo: Dict[type, Optional[_Classified]] = {}

    def by_class(exc: BaseException) -> Optional[_Classified]:
        cls = exc.__class__
        try:
            return memo[cls]
        except KeyError:
            verdict = classify(exc)
            if len(memo) < 256:  # a program raises few distinct classes
                memo[cls] = verdict
            return verdict

    return by_class


def _classifier(on: On, replay: Optional[Replay]) -> _Classifier:
    """Builds the function that turns an exception into what the core needs,
    or None when `on` does not match (the exception propagates untouched)."""
    replay_of = replay if replay is not None else _default_replay
    if isinstance(on, type) and issubclass(on, BaseException) or isinstance(on, tuple):
        if isinstance(on, tuple) and not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in on
        ):
            raise TypeError("on must be an exception type, a tuple of them, or a predicate")
        types = on
        if replay is None:
            # The default replay, inlined: the verdicts are constants.
            timeout, refused, other = (
                (_TIMEOUT, 2, None, False),
                (_TRANSIENT, 0, None, False),
                (_TRANSIENT, 2, None, False),
            )

            def by_type_default(exc: BaseException) -> Optional[_Classified]:
                if not isinstance(exc, types):
                    return None
                if isinstance(exc, _TIMEOUTS):
                    return timeout
                return refused if isinstance(exc, ConnectionRefusedError) else other

            return _memoized_by_class(by_type_default)

        def by_type(exc: BaseException) -> Optional[_Classified]:
            if not isinstance(exc, types):
                return None
            cls = _TIMEOUT if isinstance(exc, _TIMEOUTS) else _TRANSIENT
            return (cls, _replay_code(replay_of, exc), None, False)

        return by_type  # a user's `replay` may look at the instance: not memoized
    if not callable(on):
        raise TypeError("on must be an exception type, a tuple of them, or a predicate")
    predicate = cast(Callable[[BaseException], Verdict], on)

    def by_predicate(exc: BaseException) -> Optional[_Classified]:
        verdict = predicate(exc)
        if verdict is None or verdict is False:
            return None
        code = _replay_code(replay_of, exc)
        if verdict is True:
            cls = _TIMEOUT if isinstance(exc, _TIMEOUTS) else _TRANSIENT
            return (cls, code, None, False)
        if verdict is STOP:
            return (_OVERLOADED, code, None, True)
        if isinstance(verdict, datetime.timedelta):
            return (_OVERLOADED, code, verdict.total_seconds(), False)
        if isinstance(verdict, (int, float)):
            return (_OVERLOADED, code, float(verdict), False)
        raise TypeError(
            "an `on` predicate must return a bool, a delay (seconds or timedelta), "
            f"stormguard.STOP or None, not {type(verdict).__name__}"
        )

    return by_predicate


def _give_up(exc: BaseException, attempts: int, reason: str) -> NoReturn:
    note = f"stormguard: gave up after {attempts} attempt{'s' if attempts != 1 else ''}: {reason}"
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python < 3.11: PEP 678's attribute, without the method
        notes = getattr(exc, "__notes__", None)
        if notes is None:
            notes = []
            exc.__notes__ = notes
        notes.append(note)
    raise exc


# --- the decorator ----------------------------------------------------------


class _Settings:
    """One decorator's validated settings."""

    __slots__ = ("policy", "classify", "before_sleep", "name")

    def __init__(
        self,
        on: On,
        attempts: int,
        backoff: Optional[Backoff],
        deadline: Union[float, datetime.timedelta, None],
        budget: Union[Throttle, RetryBudget, RateBudget, CostBucket, None],
        breaker: Optional[CircuitBreaker],
        idempotent: bool,
        replay: Optional[Replay],
        before_sleep: Optional[Callable[[RetryDetails], None]],
        max_server_delay: Union[float, datetime.timedelta, None],
    ) -> None:
        self.policy = _Policy(
            attempts=attempts,
            backoff=backoff,
            deadline=_seconds(deadline, "deadline"),
            max_server_delay=_seconds(max_server_delay, "max_server_delay"),
            idempotent=idempotent,
            budget=budget,
            breaker=breaker,
        )
        self.classify = _classifier(on, replay)
        self.before_sleep = before_sleep
        self.name = "retrying"


def _seconds(value: Union[float, datetime.timedelta, None], field: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{field} must be a number of seconds or a timedelta")
    return float(value)


def _next_wait(
    settings: _Settings, call: _Call, exc: BaseException, verdict: _Classified
) -> float:
    """Reports a failure; returns the wait, or raises `exc` with a note."""
    decision = call.on_failure(*verdict)
    if isinstance(decision, str):
        _give_up(exc, call.attempts, decision)
    if settings.before_sleep is not None:
        settings.before_sleep(RetryDetails(settings.name, call.attempts, decision, exc))
    return decision


def _begin(call: _Call, exc: BaseException) -> None:
    """Begins the next attempt, or raises `exc` with a note when the call
    gives up before it (the breaker refused, or the wait overshot the
    deadline)."""
    reason = call.begin()
    if reason is not None:
        _give_up(exc, call.attempts, reason)


def retry(
    *,
    on: On,
    attempts: int = 3,
    backoff: Optional[Backoff] = None,
    deadline: Union[float, datetime.timedelta, None] = None,
    budget: Union[Throttle, RetryBudget, RateBudget, CostBucket, None] = None,
    breaker: Optional[CircuitBreaker] = None,
    idempotent: bool = True,
    replay: Optional[Replay] = None,
    before_sleep: Optional[Callable[[RetryDetails], None]] = None,
    max_server_delay: Union[float, datetime.timedelta, None] = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retries the decorated function (plain or ``async def``) on the
    exceptions `on` matches, as the Rust core decides.

    Invalid settings raise ``ValueError`` here, at decoration time.
    """
    settings = _Settings(
        on, attempts, backoff, deadline, budget, breaker, idempotent, replay, before_sleep,
        max_server_delay,
    )

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        settings_for_fn = _Settings.__new__(_Settings)
        settings_for_fn.policy = settings.policy
        settings_for_fn.classify = settings.classify
        settings_for_fn.before_sleep = settings.before_sleep
        settings_for_fn.name = getattr(fn, "__qualname__", repr(fn))
        if inspect.iscoroutinefunction(fn):
            wrapper: Callable[..., Any] = _async_wrapper(fn, settings_for_fn)
        else:
            wrapper = _sync_wrapper(fn, settings_for_fn)
        return functools.wraps(fn)(wrapper)

    return decorate


def _sync_wrapper(fn: Callable[..., T], s: _Settings) -> Callable[..., T]:
    # One loop per wrapper, with the failure handled inside its `except`
    # block: a second function for the retries costs a microsecond a call,
    # and the exception a call gives up with is the one being handled, so it
    # is never chained to an earlier attempt's ("During handling of…").
    # Every rule about the attempt (the breaker's permit, the budget, the
    # decision) is the core's `Call`; this loop only runs and sleeps.
    policy, classify = s.policy, s.classify
    start, first_try_success = policy.start, policy.first_try_success

    if not policy.needs_start:
        # The hot path: on success, one call and one Rust call, nothing else;
        # the core's `Call` is made only when an attempt fails.
        def plain(*args: Any, **kwargs: Any) -> T:
            call = None
            while True:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    verdict = classify(exc)
                    if verdict is None:
                        raise
                    if call is None:
                        call = start()
                    # No breaker, no deadline: nothing can refuse the next
                    # attempt, so the core is not asked to begin it.
                    _sleep(_next_wait(s, call, exc, verdict))
                    continue
                if call is None:
                    first_try_success()
                else:
                    call.on_success()
                return result

        return plain

    def guarded(*args: Any, **kwargs: Any) -> T:
        call = start()  # the first attempt's permit; CircuitOpenError when refused
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                verdict = classify(exc)
                if verdict is None:
                    call.abandon()
                    raise
                _sleep(_next_wait(s, call, exc, verdict))
                _begin(call, exc)
                continue
            call.on_success()
            return result

    return guarded


def _async_wrapper(fn: Callable[..., Awaitable[T]], s: _Settings) -> Callable[..., Awaitable[T]]:
    policy, classify = s.policy, s.classify

    async def wrapper(*args: Any, **kwargs: Any) -> T:
        # As `guarded` above: one loop, each failure handled in its own
        # `except` block.
        call = policy.start()  # raises CircuitOpenError when refused
        while True:
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                verdict = classify(exc)
                if verdict is None:
                    call.abandon()
                    raise
                await _async_sleep(_next_wait(s, call, exc, verdict))
                _begin(call, exc)
                continue
            call.on_success()
            return result

    return wrapper


# --- the iterator -----------------------------------------------------------


class Attempt:
    """One attempt of a `retrying()` loop; use it as a context manager."""

    __slots__ = ("number", "_classify", "_call", "_exc", "_verdict", "_entered")

    def __init__(self, number: int, classify: _Classifier, call: _Call) -> None:
        self.number = number
        """1 for the first attempt."""
        self._classify = classify
        self._call = call
        self._exc: Optional[BaseException] = None
        self._verdict: Optional[_Classified] = None
        self._entered = False

    def __enter__(self) -> "Attempt":
        self._entered = True
        return self

    def __exit__(self, typ: Any, exc: Optional[BaseException], tb: Any) -> bool:
        if exc is None:
            return False
        verdict = self._classify(exc) if isinstance(exc, Exception) else None
        if verdict is None:
            self._call.abandon()
            return False  # not ours: propagates untouched
        self._exc, self._verdict = exc, verdict
        return True

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"


class retrying:
    """``for attempt in retrying(on=...): with attempt: ...`` -- and
    ``async for`` likewise. Takes the same arguments as `retry`."""

    def __init__(
        self,
        *,
        on: On,
        attempts: int = 3,
        backoff: Optional[Backoff] = None,
        deadline: Union[float, datetime.timedelta, None] = None,
        budget: Union[Throttle, RetryBudget, RateBudget, CostBucket, None] = None,
        breaker: Optional[CircuitBreaker] = None,
        idempotent: bool = True,
        replay: Optional[Replay] = None,
        before_sleep: Optional[Callable[[RetryDetails], None]] = None,
        max_server_delay: Union[float, datetime.timedelta, None] = None,
    ) -> None:
        self._settings = _Settings(
            on, attempts, backoff, deadline, budget, breaker, idempotent, replay, before_sleep,
            max_server_delay,
        )

    def _start(self) -> _Call:
        return self._settings.policy.start()

    def __iter__(self) -> Iterator[Attempt]:
        s = self._settings
        call = self._start()
        while True:
            attempt = Attempt(call.attempts + 1, s.classify, call)
            yield attempt
            if not attempt._entered:
                raise RuntimeError("use each attempt as a context manager: `with attempt:`")
            exc, verdict = attempt._exc, attempt._verdict
            if exc is None or verdict is None:
                call.on_success()
                return
            _sleep(_next_wait(s, call, exc, verdict))
            _begin(call, exc)

    async def __aiter__(self) -> AsyncIterator[Attempt]:
        s = self._settings
        call = self._start()
        while True:
            attempt = Attempt(call.attempts + 1, s.classify, call)
            yield attempt
            if not attempt._entered:
                raise RuntimeError("use each attempt as a context manager: `with attempt:`")
            exc, verdict = attempt._exc, attempt._verdict
            if exc is None or verdict is None:
                call.on_success()
                return
            await _async_sleep(_next_wait(s, call, exc, verdict))
            _begin(call, exc)
