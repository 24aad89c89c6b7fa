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

Every rule about an attempt -- the breaker's permit, what the breaker and
the budget are told, the metrics, the decision -- is the core's
(`stormguard.Call` in Rust); the loops here only run attempts and sleep.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import importlib.util
import inspect
import logging
import math
import socket
import sys
import threading
import time
from types import CodeType, MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncGenerator,
    Awaitable,
    Callable,
    ContextManager,
    Dict,
    Generator,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Set,
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
    Metrics,
    Permit,
    RateBudget,
    RetryBudget,
    Throttle,
    Ticket,
    fingerprint,
    http_failure,
    is_idempotent_method,
    new_idempotency_key,
    parse_retry_after,
)
from ._core import Call as _Call
from ._core import Policy as _Policy
from ._core import give_up_reasons as _give_up_reasons
from ._core import set_attempts_cap as _set_attempts_cap
from ._core import skip as _skip

if TYPE_CHECKING:
    if sys.version_info >= (3, 10):
        from typing import ParamSpec
    else:  # pragma: no cover
        from typing_extensions import ParamSpec

    P = ParamSpec("P")
T = TypeVar("T")

__all__ = [
    "GIVE_UP_REASONS",
    "STOP",
    "GrpcMethodConfig",
    "GrpcServiceConfig",
    "Attempt",
    "Backoff",
    "Begin",
    "CircuitBreaker",
    "CircuitOpenError",
    "CostBucket",
    "IdempotencyTable",
    "Metrics",
    "Permit",
    "RateBudget",
    "RetryBudget",
    "RetryDetails",
    "RetryHookFactory",
    "Throttle",
    "Ticket",
    "advance_clock",
    "current_attempt",
    "fingerprint",
    "from_grpc_service_config",
    "get_on_give_up_hooks",
    "get_on_retry_hooks",
    "get_prometheus_counters",
    "grpc_pushback",
    "grpc_status_code",
    "hedge",
    "http_failure",
    "is_active",
    "is_idempotent_method",
    "is_testing",
    "new_idempotency_key",
    "parse_retry_after",
    "retry",
    "retrying",
    "set_active",
    "set_on_give_up_hooks",
    "set_on_retry_hooks",
    "set_testing",
    "testing",
]


class _Stop:
    """The type of `STOP`."""

    def __repr__(self) -> str:
        return "stormguard.STOP"


STOP = _Stop()
"""Returned by an `on` or `on_result` predicate: the server said not to retry."""

GIVE_UP_REASONS: Tuple[str, ...] = tuple(_give_up_reasons())
"""Every reason a call can give up for (``"attempts exhausted"``, …), as
`RetryDetails.give_up_reason` and `Metrics.give_ups` spell them."""

ExceptionTypes = Union[Type[BaseException], Tuple[Type[BaseException], ...]]
Verdict = Union[bool, float, int, datetime.timedelta, _Stop, None]
On = Union[ExceptionTypes, Callable[[BaseException], Verdict]]
OnResult = Callable[[Any], Verdict]
Replay = Callable[[BaseException], str]
Seconds = Union[float, datetime.timedelta]
AnyBudget = Union[Throttle, RetryBudget, RateBudget, CostBucket]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class RetryDetails(NamedTuple):
    """What the hooks are told: before each wait (`before_sleep`, the
    on-retry hooks) and when a call gives up (`on_give_up`, the give-up
    hooks). One per event, never shared between calls."""

    name: str
    """The decorated function's qualified name, or ``"retrying"``."""
    attempt: int
    """The attempt that just failed (1 for the first)."""
    delay: float
    """The wait before the next attempt, in seconds (0 on a give-up)."""
    exception: Optional[BaseException]
    """The exception the attempt raised (None when `on_result` rejected
    the value it returned)."""
    result: Any = None
    """The value the attempt returned, when `on_result` rejected it."""
    give_up_reason: Optional[str] = None
    """Why the call gave up (one of `GIVE_UP_REASONS`); None for a retry."""
    args: Tuple[Any, ...] = ()
    """The positional arguments of the decorated call."""
    kwargs: Mapping[str, Any] = _EMPTY
    """The keyword arguments of the decorated call."""


# --- testing mode and the global switch ----------------------------------------

_testing = False
_testing_attempts: Optional[int] = None
_active = True


def _apply_cap() -> None:
    # The core reads the cap when a call starts (`Policy.start`).
    if not _active:
        _set_attempts_cap(1)
    elif _testing:
        _set_attempts_cap(_testing_attempts)
    else:
        _set_attempts_cap(None)


class _Restore:
    """What `set_testing` and `set_active` return: the switch is already
    made; used as a context manager, it is undone when the block exits."""

    __slots__ = ("_undo",)

    def __init__(self, undo: Callable[[], None]) -> None:
        self._undo = undo

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: Any) -> None:
        self._undo()


def _check_attempts_cap(attempts: Optional[int]) -> Optional[int]:
    if attempts is None:
        return None
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        raise TypeError(f"attempts must be an int or None, not {type(attempts).__name__}")
    if not 1 <= attempts <= 0xFFFF_FFFF:
        raise ValueError("invalid attempts: must be between 1 and 4294967295")
    return attempts


def set_testing(on: bool, *, attempts: Optional[int] = None) -> ContextManager[None]:
    """Turn testing mode on or off. Waits are skipped (stormguard's clock
    jumps ahead instead, so deadlines and breaker timeouts still see the
    time pass), and with `attempts` every call makes at most that many
    attempts. Returns a context manager that restores the previous mode:
    ``with sg.set_testing(True, attempts=1): ...``."""
    global _testing, _testing_attempts
    cap = _check_attempts_cap(attempts)
    previous = (_testing, _testing_attempts)
    _testing, _testing_attempts = bool(on), cap
    _apply_cap()

    def undo() -> None:
        global _testing, _testing_attempts
        _testing, _testing_attempts = previous
        _apply_cap()

    return _Restore(undo)


def is_testing() -> bool:
    """Whether testing mode is on."""
    return _testing


class testing:
    """Testing mode for the duration of a ``with`` block (see
    `set_testing`); nothing changes until the block is entered."""

    def __init__(self, on: bool = True, *, attempts: Optional[int] = None) -> None:
        self._on = on
        self._attempts = _check_attempts_cap(attempts)
        self._restore: Optional[ContextManager[None]] = None

    def __enter__(self) -> None:
        self._restore = set_testing(self._on, attempts=self._attempts)

    def __exit__(self, *exc_info: Any) -> None:
        if self._restore is not None:
            self._restore.__exit__(None, None, None)
            self._restore = None


def set_active(on: bool) -> ContextManager[None]:
    """Turn retrying on or off for the whole program: while off, every call
    makes one attempt (a failure is raised at once, with a note saying so).
    Returns a context manager that restores the previous state."""
    global _active
    previous = _active
    _active = bool(on)
    _apply_cap()

    def undo() -> None:
        global _active
        _active = previous
        _apply_cap()

    return _Restore(undo)


def is_active() -> bool:
    """Whether retrying is on (see `set_active`)."""
    return _active


def advance_clock(seconds: Seconds) -> None:
    """Move stormguard's clock forward, as if `seconds` had passed: in tests,
    lets a breaker's recovery timeout or a deadline pass without waiting.
    ``ValueError`` if the clock would move more than 146 years in all."""
    _skip(seconds)


def _sleep(delay: float) -> None:
    # A zero delay never calls sleep at all (sleep(0) costs a syscall).
    if delay > 0.0:
        if _testing:
            _skip(delay)
        else:
            time.sleep(delay)


def _async_library() -> str:
    """The running async library as sniffio tells (``"trio"``, or
    ``"asyncio"`` for asyncio, anyio on asyncio, or none found)."""
    try:
        import sniffio
    except ImportError:  # pragma: no cover - sniffio ships with httpx, anyio, trio
        return "asyncio"
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "asyncio"


def _library_sleep() -> Callable[[float], Awaitable[None]]:
    """The running async library's sleep: trio's under trio, asyncio's
    otherwise (anyio on asyncio included)."""
    if _async_library() == "trio":
        import trio

        return cast(Callable[[float], Awaitable[None]], trio.sleep)
    return asyncio.sleep


async def _async_sleep(delay: float) -> None:
    if delay > 0.0:
        if _testing:
            _skip(delay)
        else:
            await _library_sleep()(delay)


# --- hooks: logging, Prometheus, the global lists ------------------------------

logger = logging.getLogger("stormguard")
"""The logger of the default hooks: one record per scheduled retry (INFO,
``stormguard.retry_scheduled``) and per give-up (WARNING,
``stormguard.gave_up``). Turn it off with the logging module
(``logging.getLogger("stormguard").disabled = True``) or by setting the
hook lists without it."""

RetryHook = Callable[[RetryDetails], Optional[ContextManager[None]]]
"""Called with a `RetryDetails` when a retry is scheduled, before the wait.
It may return a context manager: entered at once, exited right after the
wait (a span around the sleep)."""

GiveUpHook = Callable[[RetryDetails], Any]
"""Called with a `RetryDetails` (with `give_up_reason` set) when a call gives
up."""


class RetryHookFactory:
    """A hook made on first use (stamina's `RetryHookFactory`): importing a
    metrics or tracing library costs nothing until a retry happens."""

    __slots__ = ("hook_factory",)

    def __init__(self, hook_factory: Callable[[], Callable[[RetryDetails], Any]]) -> None:
        if not callable(hook_factory):
            raise TypeError("hook_factory must be callable")
        self.hook_factory = hook_factory

    def __repr__(self) -> str:
        return f"RetryHookFactory({self.hook_factory!r})"


def _log_retry(details: RetryDetails) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "stormguard.retry_scheduled: %s attempt %d failed (%s); retrying in %.3f s",
            details.name,
            details.attempt,
            _cause(details),
            details.delay,
            extra={
                "stormguard.callable": details.name,
                "stormguard.attempt": details.attempt,
                "stormguard.wait_for": details.delay,
                "stormguard.caused_by": _cause(details),
            },
        )


def _log_give_up(details: RetryDetails) -> None:
    if logger.isEnabledFor(logging.WARNING):
        logger.warning(
            "stormguard.gave_up: %s gave up after %d attempt%s: %s (%s)",
            details.name,
            details.attempt,
            "" if details.attempt == 1 else "s",
            details.give_up_reason,
            _cause(details),
            extra={
                "stormguard.callable": details.name,
                "stormguard.attempt": details.attempt,
                "stormguard.give_up_reason": details.give_up_reason,
                "stormguard.caused_by": _cause(details),
            },
        )


def _cause(details: RetryDetails) -> str:
    if details.exception is not None:
        return repr(details.exception)
    return f"result {details.result!r:.100}"


_prometheus: Optional[Tuple[Any, Any]] = None
_prometheus_lock = threading.Lock()


def get_prometheus_counters() -> Tuple[Any, Any]:
    """The Prometheus counters of the default hooks, made on first use in
    prometheus_client's default registry: ``stormguard_retries_total``
    (labels ``callable``, ``retry_num``, ``error_type``) and
    ``stormguard_give_ups_total`` (``callable``, ``reason``). ``ImportError``
    without prometheus_client."""
    global _prometheus
    with _prometheus_lock:  # two threads retrying at once must not register twice
        if _prometheus is not None:
            return _prometheus
        import prometheus_client

        _prometheus = (
            prometheus_client.Counter(
                "stormguard_retries",
                "Retries scheduled by stormguard",
                ["callable", "retry_num", "error_type"],
            ),
            prometheus_client.Counter(
                "stormguard_give_ups",
                "Calls stormguard gave up on, by reason",
                ["callable", "reason"],
            ),
        )
    return _prometheus


def _error_type(details: RetryDetails) -> str:
    if details.exception is not None:
        return type(details.exception).__name__
    return "result"


def _prometheus_retry_hook() -> RetryHook:
    retries, _ = get_prometheus_counters()

    def count(details: RetryDetails) -> None:
        retries.labels(details.name, str(details.attempt), _error_type(details)).inc()

    return count


def _prometheus_give_up_hook() -> GiveUpHook:
    _, give_ups = get_prometheus_counters()

    def count(details: RetryDetails) -> None:
        give_ups.labels(details.name, details.give_up_reason or "").inc()

    return count


def _default_hooks(kind: str) -> List[Union[Callable[[RetryDetails], Any], RetryHookFactory]]:
    hooks: List[Union[Callable[[RetryDetails], Any], RetryHookFactory]] = [
        _log_retry if kind == "retry" else _log_give_up
    ]
    if importlib.util.find_spec("prometheus_client") is not None:
        hooks.append(
            RetryHookFactory(_prometheus_retry_hook if kind == "retry" else _prometheus_give_up_hook)
        )
    return hooks


# None: the defaults, resolved on first use; a tuple: hooks and factories.
_hook_specs: Dict[str, Optional[Tuple[Any, ...]]] = {"retry": None, "give_up": None}
_hooks: Dict[str, Optional[Tuple[Callable[[RetryDetails], Any], ...]]] = {
    "retry": None,
    "give_up": None,
}


def _set_hooks(kind: str, hooks: Optional[Iterable[Any]]) -> None:
    if hooks is None:
        specs = None
    else:
        if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable):
            raise TypeError("hooks must be an iterable of callables or RetryHookFactory, or None")
        specs = tuple(hooks)
        for hook in specs:
            if not (isinstance(hook, RetryHookFactory) or callable(hook)):
                raise TypeError(f"hooks: {hook!r} is neither callable nor a RetryHookFactory")
    _hook_specs[kind] = specs
    _hooks[kind] = None


def _get_hooks(kind: str) -> Tuple[Callable[[RetryDetails], Any], ...]:
    hooks = _hooks[kind]
    if hooks is None:
        specs = _hook_specs[kind]
        made = [
            spec.hook_factory() if isinstance(spec, RetryHookFactory) else spec
            for spec in (specs if specs is not None else _default_hooks(kind))
        ]
        hooks = _hooks[kind] = tuple(made)
    return hooks


def set_on_retry_hooks(hooks: Optional[Iterable[Union[RetryHook, RetryHookFactory]]]) -> None:
    """The hooks called when any call schedules a retry (stamina's
    `set_on_retry_hooks`): ``None`` restores the defaults (a log record, and
    a Prometheus counter when prometheus_client is installed), ``[]`` turns
    them off."""
    _set_hooks("retry", hooks)


def get_on_retry_hooks() -> Tuple[RetryHook, ...]:
    """The on-retry hooks in force (factories are made now)."""
    return cast(Tuple[RetryHook, ...], _get_hooks("retry"))


def set_on_give_up_hooks(hooks: Optional[Iterable[Union[GiveUpHook, RetryHookFactory]]]) -> None:
    """The hooks called when any call gives up: ``None`` restores the
    defaults (a log record, a Prometheus counter), ``[]`` turns them off."""
    _set_hooks("give_up", hooks)


def get_on_give_up_hooks() -> Tuple[GiveUpHook, ...]:
    """The give-up hooks in force (factories are made now)."""
    return _get_hooks("give_up")


# --- classification -------------------------------------------------------------

_TRANSIENT, _TIMEOUT, _OVERLOADED = 0, 1, 2
_CLASS_CODES = {"transient": 0, "timeout": 1, "overloaded": 2, "permanent": 3}
_REPLAY_CODES = {"not_sent": 0, "rejected": 1, "unknown": 2}
# socket.timeout is TimeoutError from Python 3.10 on; on 3.9 it is only an
# OSError, and a read that timed out is still a timeout.
_TIMEOUTS: Tuple[Type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError, socket.timeout)

_Classified = Tuple[int, int, Optional[float], bool]
_Classifier = Callable[[BaseException], Optional[_Classified]]
_ResultClassifier = Callable[[Any], Optional[_Classified]]


def _default_replay(exc: BaseException) -> str:
    return "not_sent" if isinstance(exc, ConnectionRefusedError) else "unknown"


def _replay_code(replay: Replay, exc: BaseException) -> int:
    answer = replay(exc)
    try:
        return _REPLAY_CODES[answer]
    except (KeyError, TypeError):
        raise ValueError(
            f'replay() must return "not_sent", "rejected" or "unknown", not {answer!r:.100}'
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


def _exception_types(on: Any) -> Optional[Tuple[Type[Exception], ...]]:
    """`on` as a tuple of exception classes, None when it is a predicate;
    TypeError/ValueError (naming `on`) for anything else."""
    if isinstance(on, tuple):
        if not on:
            raise ValueError("invalid on: an empty tuple matches no exception")
        types = on
    elif isinstance(on, type):
        types = (on,)
    elif callable(on):
        return None
    else:
        raise TypeError(
            "on must be an exception class, a tuple of them, or a predicate, "
            f"not {type(on).__name__}"
        )
    for t in types:
        if not isinstance(t, type) or not issubclass(t, BaseException):
            raise TypeError(
                f"on must hold exception classes, but {t!r:.100} is not one"
                + (" (a class that is not an exception is not a predicate either)" if isinstance(t, type) else "")
            )
        if not issubclass(t, Exception):
            raise TypeError(
                f"on={t.__name__}: stormguard never retries a BaseException that is not an "
                "Exception (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError, "
                "trio.Cancelled): they stop the program or cancel the call. Name Exception "
                "subclasses instead"
            )
    return cast(Tuple[Type[Exception], ...], types)


def _verdict(verdict: Any, code: Callable[[], int], timeout: bool, what: str) -> Optional[_Classified]:
    """A predicate's answer as what the core needs."""
    if verdict is None or verdict is False:
        return None
    if verdict is True:
        return (_TIMEOUT if timeout else _TRANSIENT, code(), None, False)
    if verdict is STOP:
        return (_OVERLOADED, code(), None, True)
    if isinstance(verdict, datetime.timedelta):
        delay = verdict.total_seconds()
    elif isinstance(verdict, (int, float)):
        delay = float(verdict)
    else:
        raise TypeError(
            f"an `{what}` predicate must return a bool, a delay (seconds or timedelta), "
            f"stormguard.STOP or None, not {type(verdict).__name__}"
        )
    if math.isnan(delay) or delay < 0.0:
        raise ValueError(
            f"an `{what}` predicate returned {verdict!r:.100}: a delay must be a number "
            "of seconds >= 0 (a bug in the predicate)"
        )
    return (_OVERLOADED, code(), delay, False)


def _classifier(on: On, replay: Optional[Replay]) -> _Classifier:
    """Builds the function that turns an exception into what the core needs,
    or None when `on` does not match (the exception propagates untouched)."""
    if replay is not None and not callable(replay):
        raise TypeError(f"replay must be callable, not {type(replay).__name__}")
    replay_of = replay if replay is not None else _default_replay
    types = _exception_types(on)
    if types is not None:
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
    predicate = cast(Callable[[BaseException], Verdict], on)

    def by_predicate(exc: BaseException) -> Optional[_Classified]:
        return _verdict(
            predicate(exc), lambda: _replay_code(replay_of, exc), isinstance(exc, _TIMEOUTS), "on"
        )

    return by_predicate


def _result_classifier(on_result: Optional[OnResult]) -> Optional[_ResultClassifier]:
    if on_result is None:
        return None
    if isinstance(on_result, type) or not callable(on_result):
        raise TypeError(
            f"on_result must be a predicate on the returned value, not {on_result!r:.100}"
        )

    def by_result(result: Any) -> Optional[_Classified]:
        # A value came back, so the request may well have run: replaying it
        # needs an idempotent call.
        return _verdict(on_result(result), lambda: 2, False, "on_result")

    return by_result


def _check_hook(hook: Any, field: str) -> None:
    if hook is not None and not callable(hook):
        raise TypeError(f"{field} must be callable, not {type(hook).__name__}")


# --- the decorator --------------------------------------------------------------


class _Settings:
    """One decorator's validated settings."""

    __slots__ = ("policy", "classify", "classify_result", "before_sleep", "on_give_up", "name")

    def __init__(
        self,
        on: On,
        attempts: Optional[int],
        backoff: Optional[Backoff],
        deadline: Optional[Seconds],
        budget: Optional[AnyBudget],
        breaker: Optional[CircuitBreaker],
        idempotent: bool,
        replay: Optional[Replay],
        before_sleep: Optional[Callable[[RetryDetails], Any]],
        max_server_delay: Optional[Seconds],
        on_result: Optional[OnResult] = None,
        on_give_up: Optional[Callable[[RetryDetails], Any]] = None,
        metrics: Optional[Metrics] = None,
    ) -> None:
        if not isinstance(idempotent, bool):
            raise TypeError(f"idempotent must be a bool, not {type(idempotent).__name__}")
        _check_hook(before_sleep, "before_sleep")
        _check_hook(on_give_up, "on_give_up")
        if metrics is not None and not isinstance(metrics, Metrics):
            raise TypeError(f"metrics must be a stormguard.Metrics, not {type(metrics).__name__}")
        self.classify = _classifier(on, replay)
        self.classify_result = _result_classifier(on_result)
        self.policy = _Policy(
            attempts=attempts,
            backoff=backoff,
            deadline=deadline,
            max_server_delay=max_server_delay,
            idempotent=idempotent,
            budget=budget,
            breaker=breaker,
            metrics=metrics,
        )
        self.before_sleep = before_sleep
        self.on_give_up = on_give_up
        self.name = "retrying"

    def for_function(self, name: str) -> "_Settings":
        copy = _Settings.__new__(_Settings)
        for slot in _Settings.__slots__:
            setattr(copy, slot, getattr(self, slot))
        copy.name = name
        return copy


def _note(exc: BaseException, attempts: int, reason: str) -> None:
    note = f"stormguard: gave up after {attempts} attempt{'s' if attempts != 1 else ''}: {reason}"
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python < 3.11: PEP 678's attribute, without the method
        notes = getattr(exc, "__notes__", None)
        if notes is None:
            notes = []
            setattr(exc, "__notes__", notes)
        notes.append(note)


def _gave_up(
    s: _Settings,
    call: _Call,
    exc: Optional[BaseException],
    result: Any,
    reason: str,
    args: Tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> None:
    """Tells the hooks the call gave up, and notes why on the exception.
    The caller raises it (or returns the last result)."""
    if exc is not None:
        _note(exc, call.attempts, reason)
    hooks = _get_hooks("give_up")
    if s.on_give_up is None and not hooks:
        return
    details = RetryDetails(s.name, call.attempts, 0.0, exc, result, reason, args, kwargs)
    if s.on_give_up is not None:
        s.on_give_up(details)
    for hook in hooks:
        hook(details)


def _scheduled(
    s: _Settings,
    call: _Call,
    exc: Optional[BaseException],
    result: Any,
    delay: float,
    args: Tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> Optional[List[ContextManager[None]]]:
    """Tells the hooks a retry is scheduled; returns the context managers
    hooks gave back, entered, to exit after the wait."""
    hooks = _get_hooks("retry")
    if s.before_sleep is None and not hooks:
        return None  # nobody listens: no details to make
    details = RetryDetails(s.name, call.attempts, delay, exc, result, None, args, kwargs)
    if s.before_sleep is not None:
        s.before_sleep(details)
    entered: Optional[List[ContextManager[None]]] = None
    for hook in hooks:
        cm = hook(details)
        if cm is not None and hasattr(cm, "__exit__"):
            cm.__enter__()
            if entered is None:
                entered = []
            entered.append(cm)
    return entered


def _exit_all(entered: List[ContextManager[None]]) -> None:
    for cm in reversed(entered):
        cm.__exit__(None, None, None)


def _after_failure(
    s: _Settings,
    call: _Call,
    exc: Optional[BaseException],
    result: Any,
    verdict: _Classified,
    args: Tuple[Any, ...],
    kwargs: Mapping[str, Any],
    begin: bool = True,
) -> bool:
    """Reports a failed attempt, waits, and begins the next: True to run
    it. On a give-up raises `exc` with a note, or (for a rejected result)
    returns False. `begin=False` when nothing can refuse the next attempt
    (no breaker, no deadline): the core is then not asked."""
    decision = call.on_failure(*verdict)
    if isinstance(decision, str):
        reason = decision
    else:
        wait = decision
        entered = _scheduled(s, call, exc, result, wait, args, kwargs)
        try:
            _sleep(wait)
        finally:
            if entered is not None:
                _exit_all(entered)
        if not begin:
            return True
        begun = call.begin()  # the breaker's permit; the deadline after the wait
        if begun is None:
            return True
        reason = begun
    _gave_up(s, call, exc, result, reason, args, kwargs)
    if exc is not None:
        raise exc
    return False


async def _after_failure_async(
    s: _Settings,
    call: _Call,
    exc: Optional[BaseException],
    result: Any,
    verdict: _Classified,
    args: Tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> bool:
    """`_after_failure`, waiting with the running async library's sleep."""
    decision = call.on_failure(*verdict)
    if isinstance(decision, str):
        reason = decision
    else:
        wait = decision
        entered = _scheduled(s, call, exc, result, wait, args, kwargs)
        try:
            await _async_sleep(wait)
        finally:
            if entered is not None:
                _exit_all(entered)
        begun = call.begin()
        if begun is None:
            return True
        reason = begun
    _gave_up(s, call, exc, result, reason, args, kwargs)
    if exc is not None:
        raise exc
    return False


def retry(
    *,
    on: On,
    attempts: Optional[int] = 3,
    backoff: Optional[Backoff] = None,
    deadline: Optional[Seconds] = None,
    budget: Optional[AnyBudget] = None,
    breaker: Optional[CircuitBreaker] = None,
    idempotent: bool = True,
    replay: Optional[Replay] = None,
    before_sleep: Optional[Callable[[RetryDetails], Any]] = None,
    max_server_delay: Optional[Seconds] = None,
    on_result: Optional[OnResult] = None,
    on_give_up: Optional[Callable[[RetryDetails], Any]] = None,
    metrics: Optional[Metrics] = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retries the decorated function (plain, ``async def``, or an object
    with an ``async def __call__``) on the exceptions `on` matches and the
    results `on_result` rejects, as the Rust core decides.

    Invalid settings raise ``TypeError``/``ValueError`` here, at decoration
    time, naming the argument.
    """
    settings = _Settings(
        on, attempts, backoff, deadline, budget, breaker, idempotent, replay, before_sleep,
        max_server_delay, on_result, on_give_up, metrics,
    )

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if not callable(fn):
            raise TypeError(f"retry() decorates a callable, not {type(fn).__name__}")
        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        s = settings.for_function(name)
        if _is_async(fn):
            wrapper: Callable[..., Any] = _async_wrapper(cast(Callable[..., Awaitable[T]], fn), s)
        else:
            wrapper = _sync_wrapper(fn, s)
        return functools.wraps(fn)(wrapper)

    return decorate


def _is_async(fn: Any) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    if isinstance(fn, type):
        return False  # calling a class makes an instance
    return inspect.iscoroutinefunction(getattr(fn, "__call__", None))


# The code of every wrapper, so that `current_attempt` finds its frame.
_WRAPPER_CODES: Set[CodeType] = set()


def current_attempt() -> Optional[int]:
    """The number of the attempt running now (1 for the first) of the
    innermost function decorated with `retry` that is on the stack, or None
    outside one. Reads the wrapper's frame, so it costs nothing until it is
    called (a few microseconds then). In a `retrying()` loop, read
    ``attempt.number``."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _WRAPPER_CODES:
            call = frame.f_locals.get("call")
            return 1 if call is None else cast(_Call, call).attempts + 1
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _sync_wrapper(fn: Callable[..., T], s: _Settings) -> Callable[..., T]:
    # One loop per wrapper, with the failure handled inside its `except`
    # block: the exception a call gives up with is the one being handled,
    # so it is never chained to an earlier attempt's ("During handling
    # of…"). Every rule about the attempt (the breaker's permit, the
    # budget, the decision) is the core's `Call`; this loop only runs and
    # sleeps. Each wrapper below is one shape of that loop, picked here so
    # that a call pays only for the settings it has.
    policy, classify_result = s.policy, s.classify_result

    if not policy.needs_start and classify_result is None:
        # The hot path. No breaker and no deadline: the first attempt needs
        # nothing from the core before it runs, and the core's `Call` is
        # made only when an attempt fails. A first-try success returns
        # straight from the `try` -- or, when a budget or metrics must hear
        # of it, after one Rust call. The retries run in `_retry_loop`,
        # called once the first `except` block is over, so no failure is
        # chained to the first. The wrappers close over as few variables as
        # they can (each is copied into every call's frame).
        first_try_success = policy.first_try_success
        if policy.reports_success:

            def plain(*args: Any, **kwargs: Any) -> T:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    verdict = s.classify(exc)
                    if verdict is None:
                        raise
                    call = s.policy.start()
                    # No breaker, no deadline: nothing can refuse the next
                    # attempt, so the core is not asked to begin it.
                    _after_failure(s, call, exc, None, verdict, args, kwargs, False)
                else:
                    first_try_success()
                    return result
                return _retry_loop(fn, s, call, args, kwargs)

        else:

            def plain(*args: Any, **kwargs: Any) -> T:
                try:
                    return fn(*args, **kwargs)  # nothing to report on success
                except Exception as exc:
                    verdict = s.classify(exc)
                    if verdict is None:
                        raise
                    call = s.policy.start()
                    _after_failure(s, call, exc, None, verdict, args, kwargs, False)
                return _retry_loop(fn, s, call, args, kwargs)

        _WRAPPER_CODES.add(plain.__code__)
        return plain

    if classify_result is None:

        def guarded(*args: Any, **kwargs: Any) -> T:
            call = s.policy.start()  # the first permit; CircuitOpenError when refused
            while True:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    try:
                        verdict = s.classify(exc)
                    except BaseException:
                        call.abandon()  # the predicate failed: the permit goes back
                        raise
                    if verdict is None:
                        call.abandon()
                        raise
                    _after_failure(s, call, exc, None, verdict, args, kwargs)
                    continue
                except BaseException:
                    # KeyboardInterrupt, SystemExit…: the permit goes back
                    # now, not when the traceback lets go of this frame.
                    call.abandon()
                    raise
                call.on_success()
                return result

        _WRAPPER_CODES.add(guarded.__code__)
        return guarded

    def checked(*args: Any, **kwargs: Any) -> T:
        # `guarded`, with the returned value checked by `on_result`.
        call = s.policy.start()
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                try:
                    verdict = s.classify(exc)
                except BaseException:
                    call.abandon()  # the predicate failed: the permit goes back
                    raise
                if verdict is None:
                    call.abandon()
                    raise
                _after_failure(s, call, exc, None, verdict, args, kwargs)
                continue
            except BaseException:
                call.abandon()
                raise
            try:
                verdict = classify_result(result)
            except BaseException:
                call.abandon()
                raise
            if verdict is not None:
                if _after_failure(s, call, None, result, verdict, args, kwargs):
                    continue
                return result  # gave up: the last result is the answer
            call.on_success()
            return result

    _WRAPPER_CODES.add(checked.__code__)
    return checked


def _retry_loop(
    fn: Callable[..., T], s: _Settings, call: _Call, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> T:
    """The plain wrapper's attempts after the first failed: each failure
    handled in its own `except` block, so the exception a call gives up
    with is never chained to an earlier attempt's."""
    classify = s.classify
    while True:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
            _after_failure(s, call, exc, None, verdict, args, kwargs, False)
            continue
        call.on_success()
        return result


_WRAPPER_CODES.add(_retry_loop.__code__)


def _async_wrapper(fn: Callable[..., Awaitable[T]], s: _Settings) -> Callable[..., Awaitable[T]]:
    policy, classify, classify_result = s.policy, s.classify, s.classify_result

    async def wrapper(*args: Any, **kwargs: Any) -> T:
        # As `guarded` above: one loop, each failure handled in its own
        # `except` block.
        call = policy.start()  # raises CircuitOpenError when refused
        while True:
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                try:
                    verdict = classify(exc)
                except BaseException:
                    call.abandon()  # the predicate failed: the permit goes back
                    raise
                if verdict is None:
                    call.abandon()
                    raise
                await _after_failure_async(s, call, exc, None, verdict, args, kwargs)
                continue
            except BaseException:
                # CancelledError (asyncio), Cancelled (trio): the permit
                # goes back at once.
                call.abandon()
                raise
            if classify_result is not None:
                try:
                    verdict = classify_result(result)
                except BaseException:
                    call.abandon()
                    raise
                if verdict is not None:
                    if await _after_failure_async(s, call, None, result, verdict, args, kwargs):
                        continue
                    return result
            call.on_success()
            return result

    _WRAPPER_CODES.add(wrapper.__code__)
    return wrapper


# --- the iterator ---------------------------------------------------------------

_NEW, _ENTERED, _SUCCEEDED, _RETRY, _ENDED = range(5)


class Attempt:
    """One attempt of a `retrying()` loop; use it as a context manager.

    Leaving the ``with`` block cleanly -- at its end, or by ``return``,
    ``break`` or ``continue`` -- reports the success at once; an exception
    `on` matches is reported as a failure (swallowed when a retry follows,
    re-raised with a note when the call gives up)."""

    __slots__ = ("number", "_s", "_call", "_exc", "_wait", "_entered_hooks", "_state")

    def __init__(self, number: int, s: _Settings, call: _Call) -> None:
        self.number = number
        """1 for the first attempt."""
        self._s = s
        self._call = call
        self._exc: Optional[BaseException] = None
        self._wait: Optional[float] = None
        self._entered_hooks: Optional[List[ContextManager[None]]] = None
        self._state = _NEW

    @property
    def next_wait(self) -> float:
        """The wait before the next attempt, in seconds: once this attempt
        failed, the wait scheduled; before, the backoff's forecast should
        it fail (a server's delay replaces it, and the attempt limit, the
        budget or the deadline may still end the call)."""
        if self._wait is not None:
            return self._wait
        return self._call.next_backoff

    def __enter__(self) -> "Attempt":
        if self._state != _NEW:
            raise RuntimeError("an attempt can be entered only once")
        self._state = _ENTERED
        return self

    def __exit__(self, typ: Any, exc: Optional[BaseException], tb: Any) -> bool:
        call = self._call
        if exc is None:
            call.on_success()
            self._state = _SUCCEEDED
            return False
        verdict = self._s.classify(exc) if isinstance(exc, Exception) else None
        if verdict is None:
            call.abandon()  # not ours: propagates untouched, the permit back
            self._state = _ENDED
            return False
        decision = call.on_failure(*verdict)
        if isinstance(decision, str):
            self._state = _ENDED
            _gave_up(self._s, call, exc, None, decision, (), _EMPTY)
            return False  # the original exception propagates, with its note
        self._exc, self._wait, self._state = exc, decision, _RETRY
        self._entered_hooks = _scheduled(self._s, call, exc, None, self._wait, (), _EMPTY)
        return True

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"


class retrying:
    """``for attempt in retrying(on=...): with attempt: ...`` -- and
    ``async for`` likewise. Takes the decorator's arguments, but
    `on_result` (an attempt returns nothing)."""

    def __init__(
        self,
        *,
        on: On,
        attempts: Optional[int] = 3,
        backoff: Optional[Backoff] = None,
        deadline: Optional[Seconds] = None,
        budget: Optional[AnyBudget] = None,
        breaker: Optional[CircuitBreaker] = None,
        idempotent: bool = True,
        replay: Optional[Replay] = None,
        before_sleep: Optional[Callable[[RetryDetails], Any]] = None,
        max_server_delay: Optional[Seconds] = None,
        on_give_up: Optional[Callable[[RetryDetails], Any]] = None,
        metrics: Optional[Metrics] = None,
    ) -> None:
        self._settings = _Settings(
            on, attempts, backoff, deadline, budget, breaker, idempotent, replay, before_sleep,
            max_server_delay, None, on_give_up, metrics,
        )

    def _next(self, attempt: Attempt) -> Optional[Tuple[BaseException, float]]:
        """After an attempt: None when the loop is over, else the failure
        and the wait before the next attempt."""
        state = attempt._state
        if state == _SUCCEEDED:
            return None
        if state != _RETRY or attempt._exc is None or attempt._wait is None:
            raise RuntimeError("use each attempt as a context manager: `with attempt:`")
        return attempt._exc, attempt._wait

    def _begin_next(self, call: _Call, attempt: Attempt, exc: BaseException) -> None:
        if attempt._entered_hooks is not None:
            _exit_all(attempt._entered_hooks)
        reason = call.begin()
        if reason is not None:
            _gave_up(self._settings, call, exc, None, reason, (), _EMPTY)
            raise exc

    def __iter__(self) -> Generator[Attempt, None, None]:
        s = self._settings
        call = s.policy.start()
        try:
            while True:
                attempt = Attempt(call.attempts + 1, s, call)
                yield attempt
                failed = self._next(attempt)
                if failed is None:
                    return
                exc, wait = failed
                _sleep(wait)
                self._begin_next(call, attempt, exc)
        finally:
            # Left early (a `break` before `with`, the loop dropped): the
            # attempt in flight, if any, gives its permit back.
            call.abandon()

    async def __aiter__(self) -> AsyncGenerator[Attempt, None]:
        s = self._settings
        call = s.policy.start()
        try:
            while True:
                attempt = Attempt(call.attempts + 1, s, call)
                yield attempt
                failed = self._next(attempt)
                if failed is None:
                    return
                exc, wait = failed
                await _async_sleep(wait)
                self._begin_next(call, attempt, exc)
        finally:
            call.abandon()


# --- hedging and gRPC service configs (they build on the above) -----------------

from ._grpc import (  # noqa: E402
    GrpcMethodConfig,
    GrpcServiceConfig,
    from_grpc_service_config,
    grpc_pushback,
    grpc_status_code,
)
from ._hedge import hedge  # noqa: E402
