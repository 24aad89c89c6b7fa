"""Retries for httpx in one line: a transport that wraps another.

    import httpx
    import stormguard.httpx

    client = httpx.Client(transport=stormguard.httpx.RetryTransport())
    async_client = httpx.AsyncClient(transport=stormguard.httpx.AsyncRetryTransport())

Retried: responses with a status in `statuses` (408, 429, 500, 502, 503,
504 by default), waiting what `Retry-After` asks (capped by
`max_server_delay`); connection failures; timeouts. Requests whose method
is idempotent by RFC 9110 §9.2.2 (GET, HEAD, OPTIONS, TRACE, PUT, DELETE)
are retried after any of these; POST and PATCH only when the request never
left (the connection failed) or was not acted on (408, 429), or when it
carries an ``Idempotency-Key`` header -- which the transport adds itself
with ``add_idempotency_key=True``. The transport's budget (a gRPC-style
``Throttle(10, 0.1)`` unless given) and breaker are shared by every request
through it. On giving up, the last response is returned (a 503 is still a
response); the last exception is raised with a note saying why.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Union

import httpx

from . import AnyBudget, Backoff, CircuitBreaker, Metrics, RetryDetails, Seconds
from . import _after_failure, _after_failure_async, _Classified, _EMPTY
from ._http import (
    BROKEN_AFTER_SENDING,
    CONNECT_FAILED,
    CONNECT_TIMED_OUT,
    DEFAULT_STATUSES,
    IDEMPOTENCY_KEY,
    PER_CLIENT,
    READ_TIMED_OUT,
    HttpRetry,
    _PerClient,
)

__all__ = ["AsyncRetryTransport", "RetryTransport", "DEFAULT_STATUSES"]


def _classify(exc: BaseException) -> Optional[_Classified]:
    """httpx's transport errors: may the request have run?"""
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return CONNECT_TIMED_OUT
    if isinstance(exc, httpx.ConnectError):
        return CONNECT_FAILED  # the request never left
    if isinstance(exc, httpx.TimeoutException):
        return READ_TIMED_OUT
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return BROKEN_AFTER_SENDING
    return None  # a bad URL, a proxy error…: retrying will not help


class _Base:
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
        self._retry = HttpRetry(
            attempts=attempts,
            backoff=backoff,
            deadline=deadline,
            budget=budget,
            breaker=breaker,
            statuses=statuses,
            methods=methods,
            respect_retry_after=respect_retry_after,
            max_server_delay=max_server_delay,
            add_idempotency_key=add_idempotency_key,
            before_sleep=before_sleep,
            on_give_up=on_give_up,
            metrics=metrics,
        )

    @property
    def budget(self) -> Optional[AnyBudget]:
        """The budget every request through this transport shares."""
        return self._retry.budget

    @property
    def breaker(self) -> Optional[CircuitBreaker]:
        """The breaker every request through this transport shares."""
        return self._retry.breaker


class RetryTransport(_Base, httpx.BaseTransport):
    """An httpx transport retrying through `transport` (default: a fresh
    ``httpx.HTTPTransport()``). Takes the settings of `stormguard.retry`
    that make sense for HTTP, plus `statuses`, `methods` (default: RFC 9110
    idempotent methods), `respect_retry_after` and `add_idempotency_key`."""

    def __init__(self, transport: Optional[httpx.BaseTransport] = None, **settings: Any) -> None:
        super().__init__(**settings)
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError("transport must be an httpx.BaseTransport")
        self._transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        retry = self._retry
        policy, key = retry.prepare(request.method, request.headers)
        if key is not None:
            request.headers[IDEMPOTENCY_KEY] = key
        request.read()  # a body sent again must be at hand
        call = policy.start()  # CircuitOpenError when the breaker refuses
        while True:
            try:
                response = self._transport.handle_request(request)
            except Exception as exc:
                verdict = _classify(exc)
                if verdict is None:
                    call.abandon()
                    raise
                s = retry.settings_for(request.method, request.url)
                _after_failure(s, call, exc, None, verdict, (request,), _EMPTY)
                continue
            except BaseException:
                call.abandon()
                raise
            verdict = retry.verdict(response.status_code, response.headers.get("Retry-After"))
            if verdict is None:
                call.on_success()
                return response
            response.read()  # given back on a give-up; the connection freed
            response.close()
            s = retry.settings_for(request.method, request.url)
            if not _after_failure(s, call, None, response, verdict, (request,), _EMPTY):
                return response

    def close(self) -> None:
        self._transport.close()


class AsyncRetryTransport(_Base, httpx.AsyncBaseTransport):
    """`RetryTransport` for ``httpx.AsyncClient`` (asyncio or trio: waits
    use the running library's sleep)."""

    def __init__(
        self, transport: Optional[httpx.AsyncBaseTransport] = None, **settings: Any
    ) -> None:
        super().__init__(**settings)
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError("transport must be an httpx.AsyncBaseTransport")
        self._transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retry = self._retry
        policy, key = retry.prepare(request.method, request.headers)
        if key is not None:
            request.headers[IDEMPOTENCY_KEY] = key
        await request.aread()
        call = policy.start()
        while True:
            try:
                response = await self._transport.handle_async_request(request)
            except Exception as exc:
                verdict = _classify(exc)
                if verdict is None:
                    call.abandon()
                    raise
                s = retry.settings_for(request.method, request.url)
                await _after_failure_async(s, call, exc, None, verdict, (request,), _EMPTY)
                continue
            except BaseException:
                call.abandon()
                raise
            verdict = retry.verdict(response.status_code, response.headers.get("Retry-After"))
            if verdict is None:
                call.on_success()
                return response
            await response.aread()
            await response.aclose()
            s = retry.settings_for(request.method, request.url)
            if not await _after_failure_async(s, call, None, response, verdict, (request,), _EMPTY):
                return response

    async def aclose(self) -> None:
        await self._transport.aclose()
