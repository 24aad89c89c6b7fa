"""Type stubs for the compiled half of stormguard (checked by mypy.stubtest)."""

__all__ = [
    "Backoff",
    "Begin",
    "Call",
    "CircuitBreaker",
    "CircuitOpenError",
    "CostBucket",
    "Hedge",
    "HedgePolicy",
    "IdempotencyTable",
    "Permit",
    "Policy",
    "RateBudget",
    "RetryBudget",
    "Throttle",
    "Metrics",
    "Ticket",
    "fingerprint",
    "give_up_reasons",
    "grpc_code",
    "grpc_method_config",
    "grpc_pushback",
    "http_failure",
    "is_idempotent_method",
    "new_idempotency_key",
    "now_ns",
    "parse_retry_after",
    "set_attempts_cap",
    "skip",
]

import datetime
from typing import Any, Dict, List, Optional, Tuple, Union, final, overload

_Seconds = Union[float, datetime.timedelta]

@final
class Backoff:
    """A validated backoff schedule."""

    @staticmethod
    def constant(delay: _Seconds) -> Backoff: ...
    @staticmethod
    def linear(
        base: _Seconds, step: _Seconds, max_delay: Optional[_Seconds] = ..., jitter: str = "none"
    ) -> Backoff: ...
    @staticmethod
    def exponential(
        base: Optional[_Seconds] = 0.1,
        factor: float = 2.0,
        max_delay: Optional[_Seconds] = ...,
        jitter: str = "full",
    ) -> Backoff: ...
    def delays(self, n: int, seed: Optional[int] = None) -> List[float]: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def jitter(self) -> str: ...

@final
class Throttle:
    """gRPC's retry throttle (proposal A6)."""

    def __new__(cls, max_tokens: int, token_ratio: float) -> Throttle: ...
    def on_failure(self) -> None: ...
    def on_success(self) -> None: ...
    def allows_retry(self) -> bool: ...
    @property
    def tokens(self) -> float: ...

@final
class RetryBudget:
    """Retries as a fraction of requests, plus a floor (Finagle, Linkerd)."""

    def __new__(
        cls, ratio: float = 0.2, min_per_second: Optional[int] = 10, ttl: Optional[_Seconds] = 10.0
    ) -> RetryBudget: ...
    @property
    def available(self) -> float: ...

@final
class RateBudget:
    """At most `per_second` retries per second, bursts of `burst`."""

    def __new__(cls, per_second: float, burst: Optional[int] = None) -> RateBudget: ...

@final
class CostBucket:
    """The AWS SDKs' cost-based retry quota."""

    @staticmethod
    def aws_standard() -> CostBucket: ...
    @property
    def tokens(self) -> int: ...

class CircuitOpenError(Exception):
    """The circuit breaker refused the call."""

    retry_in: float

@final
class Permit:
    """Permission to make one call; report its outcome once."""

    def success(self) -> None: ...
    def failure(self) -> None: ...
    def abandon(self) -> None: ...
    @property
    def is_probe(self) -> bool: ...

@final
class CircuitBreaker:
    """A circuit breaker whose half-open state admits exactly `half_open_probes` calls."""

    def __new__(
        cls,
        failure_threshold: Optional[int] = 5,
        recovery_timeout: Optional[_Seconds] = 30.0,
        half_open_probes: Optional[int] = 1,
        probe_timeout: Optional[_Seconds] = None,
        metrics: Optional[Metrics] = None,
    ) -> CircuitBreaker: ...
    @property
    def state(self) -> str: ...
    def acquire(self) -> Permit: ...

_Budget = Union[Throttle, RetryBudget, RateBudget, CostBucket]

@final
class Call:
    def on_failure(
        self, class_: int = 0, replay: int = 2, delay: Optional[float] = None, stop: bool = False
    ) -> Union[float, str]: ...
    def begin(self) -> Optional[str]: ...
    def on_success(self) -> None: ...
    def abandon(self) -> None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def next_backoff(self) -> float: ...
    @property
    def is_over(self) -> bool: ...

@final
class Policy:
    def __new__(
        cls,
        *,
        attempts: Optional[int],
        backoff: Optional[Backoff] = None,
        deadline: Optional[_Seconds] = None,
        max_server_delay: Optional[_Seconds] = None,
        idempotent: bool = True,
        budget: Optional[_Budget] = None,
        breaker: Optional[CircuitBreaker] = None,
        metrics: Optional[Metrics] = None,
    ) -> Policy: ...
    @property
    def needs_start(self) -> bool: ...
    @property
    def reports_success(self) -> bool: ...
    def first_try_success(self) -> None: ...
    def start(self, started_ns: Optional[int] = None) -> Call: ...

@final
class Hedge:
    def poll(self) -> Tuple[int, Any]: ...
    def succeeded(self, n: int) -> Tuple[int, Any]: ...
    def failed(
        self, n: int, class_: int = 0, replay: int = 2, delay: Optional[float] = None, stop: bool = False
    ) -> Tuple[int, Any]: ...
    @property
    def sent(self) -> int: ...

@final
class HedgePolicy:
    def __new__(
        cls,
        *,
        attempts: int,
        delay: _Seconds,
        deadline: Optional[_Seconds] = None,
        max_server_delay: Optional[_Seconds] = None,
        idempotent: bool = True,
        budget: Optional[_Budget] = None,
    ) -> HedgePolicy: ...
    @property
    def attempts(self) -> int: ...
    @property
    def delay(self) -> float: ...
    def start(self) -> Hedge: ...

def grpc_method_config(
    json_text: Union[str, bytes], service: str, method: str, max_attempts_cap: Optional[int] = None
) -> Dict[str, Any]: ...
def grpc_code(code: Union[int, str]) -> int: ...
def grpc_pushback(values: List[bytes]) -> Optional[float]: ...
def now_ns() -> int: ...
def skip(seconds: _Seconds) -> None: ...
def set_attempts_cap(cap: Optional[int]) -> None: ...

@final
class Metrics:
    """The core's counters, shared by the policies and breakers given them."""

    def __new__(cls) -> Metrics: ...
    @property
    def attempts(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def successes(self) -> int: ...
    @property
    def give_ups(self) -> Dict[str, int]: ...
    @property
    def breaker_opened(self) -> int: ...
    @property
    def breaker_half_opened(self) -> int: ...
    @property
    def breaker_closed(self) -> int: ...
    @property
    def breaker_rejected(self) -> int: ...

def give_up_reasons() -> List[str]: ...
def http_failure(
    status: int, retry_after: Union[str, bytes, None] = None, now: Optional[float] = None
) -> Optional[Tuple[str, str, Optional[float]]]: ...
def is_idempotent_method(method: Union[str, bytes]) -> bool: ...
def fingerprint(payload: Union[str, bytes]) -> int: ...

@final
class Ticket:
    """Permission to run one keyed request; complete or abort it once."""

@final
class Begin:
    """What `IdempotencyTable.begin` answered."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> Optional[int]: ...
    @property
    def response(self) -> Any: ...
    @property
    def ticket(self) -> Optional[Ticket]: ...

@final
class IdempotencyTable:
    """Runs each idempotency key's work once and replays its response."""

    def __new__(cls, capacity: int, ttl: Optional[_Seconds] = 86400.0) -> IdempotencyTable: ...
    def begin(self, key: str, fingerprint: Union[bytes, str, int]) -> Begin: ...
    def complete(self, ticket: Ticket, response: Any) -> bool: ...
    def abort(self, ticket: Ticket) -> bool: ...
    @property
    def capacity(self) -> int: ...
    def __len__(self) -> int: ...

def new_idempotency_key() -> str: ...
@overload
def parse_retry_after(value: None, now: Optional[float] = None) -> None: ...
@overload
def parse_retry_after(value: Union[str, bytes], now: Optional[float] = None) -> float: ...

# The Redis store's scripts and key layout (used by stormguard.redis).
def redis_scripts() -> dict[str, str]: ...
def redis_entry_key(prefix: str, key: str) -> str: ...
def redis_fence_key(entry: str) -> str: ...
def redis_check_prefix(prefix: str) -> None: ...
def redis_check_fingerprint(fingerprint: bytes) -> None: ...
def redis_hash_slot(key: str) -> int: ...

__all__ += [
    "redis_check_fingerprint",
    "redis_check_prefix",
    "redis_entry_key",
    "redis_fence_key",
    "redis_hash_slot",
    "redis_scripts",
]
