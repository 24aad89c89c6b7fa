"""What the httpx transport and the requests adapter share: which requests
may be replayed, which responses are failures, and the per-client policy.

The rules come from the Rust core: `http_failure` is its HTTP classifier
(status classes, 408/429 "not acted on", `Retry-After` in both RFC 9110
forms) and `is_idempotent_method` its RFC 9110 §9.2.2 method list; the
decision for each attempt is its `Call`'s.
"""

from __future__ import annotations

from typing import Any, Callable, FrozenSet, Iterable, Optional, Tuple, Union
from urllib.parse import urlsplit

from . import (
    _CLASS_CODES,
    _REPLAY_CODES,
    AnyBudget,
    Backoff,
    CircuitBreaker,
    Metrics,
    RetryDetails,
    Seconds,
    Throttle,
    _Classified,
    _Settings,
    _check_hook,
    http_failure,
    is_idempotent_method,
    new_idempotency_key,
)
from ._core import Policy as _Policy

DEFAULT_STATUSES: FrozenSet[int] = frozenset({408, 429, 500, 502, 503, 504})
"""The statuses retried by default (urllib3's and stamina's choice, and the
core's retryable classes): 408, 429, 500, 502, 503, 504."""

IDEMPOTENCY_KEY = "Idempotency-Key"
"""The request header of the IETF draft "The Idempotency-Key HTTP Header
Field": a request carrying it may be replayed, the server deduplicating."""


class _PerClient:
    def __repr__(self) -> str:
        return "PER_CLIENT"


PER_CLIENT: Any = _PerClient()
"""The default `budget`: a `Throttle(max_tokens=10, token_ratio=0.1)` (gRPC's
numbers) made for each transport or adapter, shared by its requests."""

_NOT_SENT, _UNKNOWN = _REPLAY_CODES["not_sent"], _REPLAY_CODES["unknown"]
_TRANSIENT, _TIMEOUT = _CLASS_CODES["transient"], _CLASS_CODES["timeout"]
CONNECT_FAILED: _Classified = (_TRANSIENT, _NOT_SENT, None, False)
CONNECT_TIMED_OUT: _Classified = (_TIMEOUT, _NOT_SENT, None, False)
READ_TIMED_OUT: _Classified = (_TIMEOUT, _UNKNOWN, None, False)
BROKEN_AFTER_SENDING: _Classified = (_TRANSIENT, _UNKNOWN, None, False)


class HttpRetry:
    """One client's retry settings and shared state (budget, breaker)."""

    def __init__(
        self,
        *,
        attempts: Optional[int] = 3,
        backoff: Optional[Backoff] = None,
        deadline: Optional[Seconds] = None,
        budget: Union[AnyBudget, None, _PerClient] = PER_CLIENT,
        breaker: Optional[CircuitBreaker] = None,
        statuses: Iterable[int] = DEFAULT_STATUSES,
        methods: Optional[Iterable[str]] = None,
        respect_retry_after: bool = True,
        max_server_delay: Optional[Seconds] = 60.0,
        add_idempotency_key: bool = False,
        before_sleep: Optional[Callable[[RetryDetails], Any]] = None,
        on_give_up: Optional[Callable[[RetryDetails], Any]] = None,
        metrics: Optional[Metrics] = None,
    ) -> None:
        self.statuses = _statuses(statuses)
        self.methods = _methods(methods)
        for flag, value in (
            ("respect_retry_after", respect_retry_after),
            ("add_idempotency_key", add_idempotency_key),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, not {type(value).__name__}")
        self.respect_retry_after = respect_retry_after
        self.add_idempotency_key = add_idempotency_key
        _check_hook(before_sleep, "before_sleep")
        _check_hook(on_give_up, "on_give_up")
        if isinstance(budget, _PerClient):
            budget = Throttle(max_tokens=10, token_ratio=0.1)
        self.budget = budget
        self.breaker = breaker

        def policy(idempotent: bool) -> _Policy:
            return _Policy(
                attempts=attempts,
                backoff=backoff,
                deadline=deadline,
                max_server_delay=max_server_delay,
                idempotent=idempotent,
                budget=budget,
                breaker=breaker,
                metrics=metrics,
            )

        # Both policies share the client's budget, breaker and metrics; a
        # request takes one or the other by its method and headers.
        self.policies = {True: policy(True), False: policy(False)}
        self.hooks = _Settings.__new__(_Settings)
        self.hooks.policy = self.policies[True]
        self.hooks.classify = lambda exc: None
        self.hooks.classify_result = None
        self.hooks.before_sleep = before_sleep
        self.hooks.on_give_up = on_give_up
        self.hooks.name = "http"

    def prepare(self, method: str, headers: Any) -> Tuple[_Policy, Optional[str]]:
        """The policy for a request, and the idempotency key to add to it
        (when `add_idempotency_key` and the method needs one)."""
        if self.methods is not None:
            idempotent = method in self.methods
        else:
            idempotent = is_idempotent_method(method)  # RFC 9110 §9.2.2
        if idempotent:
            return self.policies[True], None
        if IDEMPOTENCY_KEY in headers:
            return self.policies[True], None  # keyed: the server deduplicates
        if self.add_idempotency_key and method in ("POST", "PATCH"):
            return self.policies[True], new_idempotency_key()
        return self.policies[False], None

    def verdict(self, status: int, retry_after: Optional[str]) -> Optional[_Classified]:
        """What a response says, as the core needs it; None to return it."""
        if status not in self.statuses:
            return None
        failure = http_failure(status, retry_after if self.respect_retry_after else None)
        if failure is None:
            return None  # a listed status that is not an error (1xx-3xx)
        cls, replay, delay = failure
        # A 4xx the caller listed is one it wants retried.
        code = _TRANSIENT if cls == "permanent" else _CLASS_CODES[cls]
        return (code, _REPLAY_CODES[replay], delay, False)

    def settings_for(self, method: str, url: object) -> _Settings:
        """The hooks' settings for one request (made on its first failure),
        named by method and origin: no path or query (a token in a URL
        stays out of the logs, and a Prometheus label keeps few values)."""
        return self.hooks.for_function(f"{method} {origin(str(url))}")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, without user, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _statuses(statuses: Iterable[int]) -> FrozenSet[int]:
    if isinstance(statuses, (str, bytes)) or not isinstance(statuses, Iterable):
        raise TypeError("statuses must be an iterable of ints")
    found = frozenset(statuses)
    for status in found:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"statuses must hold ints, not {status!r:.100}")
        if not 100 <= status <= 599:
            raise ValueError(f"invalid statuses: {status} is not an HTTP status (100-599)")
    return found


def _methods(methods: Optional[Iterable[str]]) -> Optional[FrozenSet[str]]:
    if methods is None:
        return None
    if isinstance(methods, (str, bytes)) or not isinstance(methods, Iterable):
        raise TypeError("methods must be an iterable of method names, or None")
    found = frozenset(methods)
    for method in found:
        if not isinstance(method, str) or not method:
            raise TypeError(f"methods must hold method names, not {method!r:.100}")
    return found

