"""Retries for requests in one line: an ``HTTPAdapter`` to mount.

    import requests
    import stormguard.requests

    session = requests.Session()
    session.mount("https://", stormguard.requests.RetryAdapter())
    session.mount("http://", stormguard.requests.RetryAdapter())

The rules are `stormguard.httpx`'s: statuses 408, 429, 500, 502, 503, 504
retried by default, ``Retry-After`` honoured up to `max_server_delay`, RFC
9110 idempotent methods retried after any failure, POST and PATCH only
when the request never left, was not acted on (408, 429) or carries an
``Idempotency-Key``; a budget and breaker per adapter; the last response
returned on giving up (``raise_on_status=False`` in urllib3's words).
urllib3's own retries are off (``max_retries=0``): one layer retries.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Union

import requests
import requests.adapters
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, ReadTimeout, Timeout

from . import AnyBudget, Backoff, CircuitBreaker, Metrics, RetryDetails, Seconds
from . import _after_failure, _Classified, _EMPTY
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

__all__ = ["DEFAULT_STATUSES", "RetryAdapter", "session"]


def _never_connected(exc: BaseException) -> bool:
    """Whether urllib3 failed before the request left: it wraps a refused
    connection in ``MaxRetryError(reason=NewConnectionError)``."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    cause: Any = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, NewConnectionError)


def _classify(exc: BaseException) -> Optional[_Classified]:
    if isinstance(exc, ConnectTimeout):
        return CONNECT_TIMED_OUT
    if isinstance(exc, (ReadTimeout, Timeout)):
        return READ_TIMED_OUT
    if isinstance(exc, RequestsConnectionError):
        return CONNECT_FAILED if _never_connected(exc) else BROKEN_AFTER_SENDING
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return BROKEN_AFTER_SENDING
    return None


class RetryAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` transport adapter retrying as the Rust core decides.
    Takes `stormguard.httpx.RetryTransport`'s settings; other keyword
    arguments (``pool_connections``, ``pool_maxsize``, …) go to
    ``HTTPAdapter``."""

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
        **adapter_settings: Any,
    ) -> None:
        if "max_retries" in adapter_settings:
            raise TypeError("max_retries: stormguard retries; urllib3's retries stay off")
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
        super().__init__(max_retries=0, **adapter_settings)

    @property
    def budget(self) -> Optional[AnyBudget]:
        """The budget every request through this adapter shares."""
        return self._retry.budget

    @property
    def breaker(self) -> Optional[CircuitBreaker]:
        """The breaker every request through this adapter shares."""
        return self._retry.breaker

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Union[None, float, tuple[float, float], tuple[float, None]] = None,
        verify: Union[bool, str] = True,
        cert: Union[None, bytes, str, tuple[Union[bytes, str], Union[bytes, str]]] = None,
        proxies: Optional[Mapping[str, str]] = None,
    ) -> requests.Response:
        retry = self._retry
        method = request.method or "GET"
        policy, key = retry.prepare(method, request.headers)
        if key is not None:
            request.headers[IDEMPOTENCY_KEY] = key
        call = policy.start()  # CircuitOpenError when the breaker refuses
        while True:
            try:
                response = super().send(request, stream, timeout, verify, cert, proxies)
            except Exception as exc:
                verdict = _classify(exc)
                if verdict is None:
                    call.abandon()
                    raise
                s = retry.settings_for(method, request.url)
                _after_failure(s, call, exc, None, verdict, (request,), _EMPTY)
                continue
            except BaseException:
                call.abandon()
                raise
            verdict = retry.verdict(response.status_code, response.headers.get("Retry-After"))
            if verdict is None:
                call.on_success()
                return response
            response.content  # read: given back on a give-up, the connection freed
            response.close()
            s = retry.settings_for(method, request.url)
            if not _after_failure(s, call, None, response, verdict, (request,), _EMPTY):
                return response


def session(**settings: Any) -> requests.Session:
    """A ``requests.Session`` with one `RetryAdapter(**settings)` mounted for
    ``http://`` and ``https://`` (one budget and breaker for both)."""
    adapter = RetryAdapter(**settings)
    s = requests.Session()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s
