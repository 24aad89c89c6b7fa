"""gRPC service configs for the decorators: `from_grpc_service_config` and
`GrpcServiceConfig`, read and validated by the Rust core."""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Union

import stormguard as _sg

from ._core import Throttle
from ._core import grpc_code as _grpc_code
from ._core import grpc_method_config as _grpc_method_config
from ._core import grpc_pushback as _grpc_pushback

_PUSHBACK = "grpc-retry-pushback-ms"


def grpc_status_code(exc: BaseException) -> Optional[int]:
    """The gRPC status code an exception carries, as a number, or None.

    Reads ``exc.code()`` (grpcio's ``RpcError`` and ``grpc.aio.AioRpcError``,
    whose codes are ``grpc.StatusCode`` members) or an attribute ``code``
    holding a number, a name or a ``grpc.StatusCode``."""
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            code = code()
        except Exception:
            return None
    if code is None:
        return None
    value = getattr(code, "value", code)  # grpc.StatusCode.X.value == (n, "name")
    if isinstance(value, tuple) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        return _grpc_code(value)
    except ValueError:
        return None


def grpc_pushback(exc: BaseException) -> Union[None, float, "_sg._Stop"]:
    """The server's ``grpc-retry-pushback-ms`` hint in an exception's
    trailing metadata (``exc.trailing_metadata()``), as gRPC A6 reads it:
    None without one, the delay in seconds for one valid value, ``STOP``
    for a negative, malformed or repeated one."""
    metadata = getattr(exc, "trailing_metadata", None)
    if callable(metadata):
        try:
            metadata = metadata()
        except Exception:
            return None
    if metadata is None:
        return None
    values: List[bytes] = []
    try:
        for key, value in metadata:
            if isinstance(key, str) and key.lower() == _PUSHBACK:
                values.append(value.encode("latin-1", "replace") if isinstance(value, str) else bytes(value))
    except (TypeError, ValueError):
        return None
    hint = _grpc_pushback(values)
    if hint is None:
        return None
    return _sg.STOP if hint < 0 else hint


class GrpcMethodConfig(Mapping[str, Any]):
    """One method's settings from a gRPC service config, as the arguments
    of the decorator its policy calls for: ``@sg.retry(**cfg)`` for a
    ``retryPolicy``, ``@sg.hedge(**cfg)`` for a ``hedgingPolicy`` (or
    ``@cfg.decorator()``, which picks). Without a policy the mapping asks
    for one attempt, as gRPC makes.

    Its keys: ``on`` (a predicate on gRPC errors: the policy's retryable or
    non-fatal codes are retried, honouring ``grpc-retry-pushback-ms``;
    other codes end the call), ``attempts``, ``backoff`` (retry; A6's
    exponential backoff, times a random factor in [0.8, 1.2]), ``delay`` (hedging), and when
    the config sets them ``deadline`` (the method's ``timeout``) and
    ``budget`` (the ``Throttle`` of ``retryThrottling``)."""

    __slots__ = ("kind", "attempts", "backoff", "delay", "deadline", "budget", "codes",
                 "wait_for_ready", "matched", "_arguments")

    def __init__(self, settings: Dict[str, Any], throttle: Optional[Throttle]) -> None:
        self.kind: Optional[str] = settings["kind"]
        """``"retry"``, ``"hedging"``, or None (no policy: one attempt)."""
        self.attempts: int = settings["attempts"]
        self.backoff: Optional[_sg.Backoff] = settings.get("backoff")
        self.delay: Optional[float] = settings.get("delay")
        self.deadline: Optional[float] = settings["deadline"]
        self.budget: Optional[Throttle] = throttle
        self.codes: FrozenSet[int] = frozenset(settings["codes"])
        """The retryable (or non-fatal) status codes, as numbers."""
        self.wait_for_ready: Optional[bool] = settings["wait_for_ready"]
        self.matched: bool = settings["matched"]
        """Whether a ``methodConfig`` names the method (or its service, or
        is the default)."""
        arguments: Dict[str, Any] = {"on": self.on, "attempts": self.attempts}
        if self.kind == "retry":
            arguments["backoff"] = self.backoff
        elif self.kind == "hedging":
            arguments["delay"] = self.delay
        if self.deadline is not None:
            arguments["deadline"] = self.deadline
        if throttle is not None and self.kind is not None:
            arguments["budget"] = throttle
        self._arguments = arguments

    def on(self, exc: BaseException) -> _sg.Verdict:
        """The verdict on a failed call: None if it carries no gRPC status
        code (not a gRPC error: it propagates), a server's delay or
        ``STOP`` from ``grpc-retry-pushback-ms``, True for one of the
        policy's codes, False for the others."""
        code = grpc_status_code(exc)
        if code is None:
            return None
        pushback = grpc_pushback(exc)
        if code in self.codes:
            return True if pushback is None else pushback
        # A6: a "do not retry" pushback counts against the throttle whatever
        # the code; STOP tells the core so.
        return _sg.STOP if pushback is _sg.STOP else False

    def decorator(self, **overrides: Any) -> Any:
        """``sg.retry(**self, **overrides)``, or ``sg.hedge(...)`` for a
        hedging policy (which decorates ``async def`` functions only)."""
        arguments = {**self._arguments, **overrides}
        if self.kind == "hedging":
            return _sg.hedge(**arguments)
        return _sg.retry(**arguments)

    def __getitem__(self, key: str) -> Any:
        return self._arguments[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arguments)

    def __len__(self) -> int:
        return len(self._arguments)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._arguments.items() if k != "on"}
        return f"GrpcMethodConfig(kind={self.kind!r}, codes={sorted(self.codes)}, {shown})"


class GrpcServiceConfig:
    """A gRPC service config (JSON, as a str or bytes), validated as
    grpc-go validates it: every error is a ``ValueError`` naming its JSON
    path (``methodConfig[0].retryPolicy.maxAttempts``). `max_attempts_cap`
    is the client's cap on ``maxAttempts`` (A6: 5).

    The methods it returns share one ``Throttle`` (``retryThrottling`` is
    per server), unless `throttle` gives the one to share."""

    __slots__ = ("_text", "_cap", "throttle")

    def __init__(self, json_text: Union[str, bytes], *, max_attempts_cap: int = 5,
                 throttle: Optional[Throttle] = None) -> None:
        if throttle is not None and not isinstance(throttle, Throttle):
            raise TypeError(f"throttle must be a stormguard.Throttle, not {type(throttle).__name__}")
        settings = _grpc_method_config(json_text, "", "", max_attempts_cap)
        self._text, self._cap = json_text, max_attempts_cap
        self.throttle: Optional[Throttle] = throttle if throttle is not None else settings["throttle"]
        """The throttle every method of this config shares, or None."""

    def method(self, service: str, method: str) -> GrpcMethodConfig:
        """The settings of `method` of `service` (e.g. ``"helloworld.Greeter"``,
        ``"SayHello"``), with gRPC's precedence: the exact name, then the
        service, then the default."""
        if not isinstance(service, str) or not isinstance(method, str):
            raise TypeError("service and method must be str")
        return GrpcMethodConfig(_grpc_method_config(self._text, service, method, self._cap), self.throttle)


def from_grpc_service_config(json_text: Union[str, bytes], service: str, method: str, *,
                             max_attempts_cap: int = 5,
                             throttle: Optional[Throttle] = None) -> GrpcMethodConfig:
    """The decorator arguments for `method` of `service` from a gRPC service
    config: ``@sg.retry(**sg.from_grpc_service_config(text, "pkg.Svc",
    "Get"))``. See `GrpcServiceConfig` (to share one throttle between
    methods) and `GrpcMethodConfig`."""
    return GrpcServiceConfig(json_text, max_attempts_cap=max_attempts_cap, throttle=throttle).method(service, method)


__all__ = ["GrpcMethodConfig", "GrpcServiceConfig", "from_grpc_service_config", "grpc_pushback", "grpc_status_code"]
