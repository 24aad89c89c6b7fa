"""The idempotency table for a fleet of Python servers, on Redis.

The verbs and answers of `stormguard.IdempotencyTable`, kept in the Redis
every replica shares, so that a retry landing on another replica finds the
first attempt. The transitions are the Lua scripts of the Rust crate
``stormguard-redis`` -- the very same text, compiled into the stormguard
wheel and read from it here -- so Rust and Python servers can share one
Redis::

    import redis
    from stormguard.redis import RedisStore

    store = RedisStore(redis.Redis(socket_timeout=0.5), lease=30.0)
    begun = store.begin(key, fingerprint)
    if begun.kind == "execute":
        response = charge(...)                    # the side effect
        store.complete(begun.ticket, response)    # bytes, replayed for a day
    elif begun.kind == "replay":
        response = begun.response
    else:
        ...                                       # begun.status: 409 or 422

`AsyncRedisStore` is the same on ``redis.asyncio``; both take a
``RedisCluster`` too (a request's keys share a hash tag).

Each verb is one script call, retried (by stormguard's own retry loop) when
Redis does not answer -- whatever the reason the answer did not come: a
refused or reset connection, a timeout, a cluster moving slots: a ``begin`` carries an owner token made once per
call, so a re-sent ``begin`` whose reply was lost gets the same ticket back
instead of a second claim, and a re-sent ``complete`` finds its own response
stored. When every attempt fails the verb raises `UnavailableError` (answer
503; the request must not run).

Retry at one layer: ``RedisStore.from_url(url)`` makes a client that does
not retry by itself and whose every attempt times out after
``attempt_timeout`` seconds, so the store's own ``attempts``, ``backoff``
and ``deadline`` are the whole story. A client you pass in yourself keeps
its settings: redis-py retries failed commands by default (ten times, with
exponential backoff, in redis-py 8), which is safe here -- every script is
safe to re-send -- but multiplies with the store's attempts and can hold a
request for seconds before it is answered 503. Give such a client
``retry=Retry(NoBackoff(), 0)`` and a ``socket_timeout``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Set, Tuple, TypeVar, Union, cast

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)

from . import Backoff, Seconds, retrying
from ._core import (
    redis_check_fingerprint,
    redis_check_prefix,
    redis_entry_key,
    redis_fence_key,
    redis_scripts,
)

if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["execute", "replay", "in_progress", "mismatch"]
else:
    Kind = str

__all__ = [
    "AsyncRedisStore",
    "Begin",
    "Entry",
    "RedisStore",
    "StaleTicketError",
    "Ticket",
    "UnavailableError",
    "SCRIPTS",
]

T = TypeVar("T")

SCRIPTS = redis_scripts()
"""The store's Lua scripts by name, as the Rust crate compiles them."""

# Error replies worth another attempt: the cluster is moving, the server
# is loading, or it does not know the script yet (a cluster node that missed
# the SCRIPT LOAD).
_TRANSIENT_REPLIES = (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    NoScriptError,
    TryAgainError,
)


def _transient(exc: BaseException) -> bool:
    """Whether a script call that raised ``exc`` is worth another attempt:
    every failure to get Redis's answer is -- a refused or reset connection,
    a timeout, and the errors redis-py's asyncio client raises when a
    connection is closed under a command (``RuntimeError``,
    ``AttributeError``) -- since every script is safe to re-send; an error
    *reply* is not, but for the few that say "later"."""
    if isinstance(exc, ResponseError):
        return isinstance(exc, _TRANSIENT_REPLIES)
    return isinstance(exc, Exception)


class UnavailableError(Exception):
    """Redis did not answer any attempt (or refused the write for want of
    memory): answer ``503 Service Unavailable`` and do not run the request."""

    status = 503

    def __init__(self, operation: str, cause: BaseException) -> None:
        super().__init__(f"Redis unavailable for {operation}: {cause}")
        self.operation = operation
        """``"begin"``, ``"complete"``, ``"abort"`` or ``"inspect"``."""


class StaleTicketError(Exception):
    """The ticket's lease ran out: its key expired or belongs to another
    execution now, and nothing was written."""

    status = 409

    def __init__(self) -> None:
        super().__init__(
            "stale idempotency ticket: its lease ran out, "
            "the key may belong to another execution"
        )


@dataclasses.dataclass(frozen=True)
class Ticket:
    """The right to finish one execution of a keyed request.

    `complete` and `abort` act for it only while the entry still carries its
    owner token, i.e. while its lease lasts: a worker that outlived its
    lease gets `StaleTicketError` instead of overwriting the new owner's
    result. Both may be retried with the same ticket.
    """

    key: str
    """The idempotency key."""
    entry: str
    """The entry's Redis key."""
    owner: str
    """The owner token: random, made for the call of ``begin`` that got it."""
    fencing_token: int
    """Grows with every execution of the key: pass it to a downstream store
    that can refuse stale writers."""
    lease_ends: float
    """When the lease ends at the latest, on ``time.monotonic()``'s clock
    (measured from just before ``begin`` was sent)."""


@dataclasses.dataclass(frozen=True)
class Begin:
    """What `RedisStore.begin` answered."""

    kind: Kind
    """``"execute"``, ``"replay"``, ``"in_progress"`` or ``"mismatch"``."""
    status: Optional[int] = None
    """409 for ``in_progress``, 422 for ``mismatch``, else None."""
    response: Optional[bytes] = None
    """The stored response, for ``replay``."""
    ticket: Optional[Ticket] = None
    """The ticket, for ``execute``."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """What `RedisStore.inspect` reads about a key."""

    state: str
    """``"running"`` or ``"done"``."""
    fingerprint: bytes
    owner: str
    fencing_token: int
    expires_in: Optional[float]
    """Seconds until Redis deletes it; None if it has no expiry (which the
    scripts never write)."""


def _seconds(name: str, value: Seconds) -> int:
    """Milliseconds for ``PX`` from seconds or a ``timedelta``;
    ``TypeError`` for another type, ``ValueError`` for a bad value, each
    naming the field."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds or a timedelta, not {type(value).__name__}")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"invalid {name}: must be a finite number of seconds > 0")
    millis = int(value * 1000)
    if millis < 1:
        raise ValueError(f"invalid {name}: must be at least 0.001 seconds")
    return millis


def _text(value: Any) -> Optional[str]:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and str(exc).startswith("OOM")


class _Settings:
    """What the sync and async stores share: the configuration, the key
    layout and the parsing of the scripts' replies."""

    def __init__(
        self,
        prefix: str,
        lease: Seconds,
        ttl: Seconds,
        attempts: int,
        backoff: Optional[Backoff],
        deadline: Optional[Seconds],
    ) -> None:
        redis_check_prefix(prefix)
        self.prefix = prefix
        self.lease_ms = _seconds("lease", lease)
        self.lease = self.lease_ms / 1000.0
        self.ttl_ms = _seconds("ttl", ttl)
        self.fence_ms = self.ttl_ms + self.lease_ms
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ValueError("invalid attempts: must be an integer >= 1")
        self.attempts = attempts
        self.backoff = backoff or Backoff.exponential(
            base=0.01, factor=2.0, max_delay=0.2, jitter="full"
        )
        self.deadline = deadline

    def begin_call(self, key: str, fingerprint: bytes) -> Tuple[str, List[str], List[Any], str, float]:
        if not isinstance(fingerprint, (bytes, bytearray, memoryview)):
            raise TypeError("fingerprint must be bytes")
        fingerprint = bytes(fingerprint)
        redis_check_fingerprint(fingerprint)
        entry = redis_entry_key(self.prefix, key)
        owner = str(uuid.uuid4())
        lease_ends = time.monotonic() + self.lease
        keys = [entry, redis_fence_key(entry)]
        args: List[Any] = [fingerprint, owner, self.lease_ms, self.fence_ms]
        return entry, keys, args, owner, lease_ends

    @staticmethod
    def begin_answer(reply: Any, key: str, entry: str, owner: str, lease_ends: float) -> Begin:
        if isinstance(reply, list) and reply:
            tag = _text(reply[0])
            if tag == "execute" and len(reply) > 1 and isinstance(reply[1], int):
                ticket = Ticket(key, entry, owner, reply[1], lease_ends)
                return Begin("execute", ticket=ticket)
            if tag == "replay" and len(reply) > 1 and isinstance(reply[1], bytes):
                return Begin("replay", response=reply[1])
            if tag == "in_progress":
                return Begin("in_progress", status=409)
            if tag == "mismatch":
                return Begin("mismatch", status=422)
        raise RuntimeError(f"unexpected reply from Redis to begin: {reply!r}")

    @staticmethod
    def ok_or_stale(operation: str, reply: Any) -> None:
        text = _text(reply)
        if text == "ok":
            return
        if text == "stale":
            raise StaleTicketError()
        raise RuntimeError(f"unexpected reply from Redis to {operation}: {reply!r}")

    @staticmethod
    def entry(reply: Any) -> Optional[Entry]:
        if reply is None:
            return None
        if not isinstance(reply, list) or len(reply) < 5:
            raise RuntimeError(f"unexpected reply from Redis to inspect: {reply!r}")
        state, fingerprint, owner, generation, pttl = reply[:5]
        return Entry(
            state=_text(state) or "",
            fingerprint=fingerprint if isinstance(fingerprint, bytes) else b"",
            owner=_text(owner) or "",
            fencing_token=generation if isinstance(generation, int) else 0,
            expires_in=pttl / 1000.0 if isinstance(pttl, int) and pttl >= 0 else None,
        )

    def retrying(self) -> retrying:
        return retrying(
            on=_transient,
            attempts=self.attempts,
            backoff=self.backoff,
            deadline=self.deadline,
        )


SyncClient = Union["redis.Redis", "redis.RedisCluster"]
AsyncClient = Union["redis.asyncio.Redis", "redis.asyncio.RedisCluster"]


class RedisStore:
    """The idempotency table's verbs on Redis, for threads (redis-py).

    ``prefix`` starts every entry's key (no braces); ``lease`` (seconds,
    default 60) is how long a running request holds its key -- choose it
    longer than the slowest request; ``ttl`` (default 24 h, as Stripe) how
    long a completed response is replayed. ``attempts``, ``backoff`` and
    ``deadline`` are the retries of one script call before
    `UnavailableError`. Invalid settings raise ``ValueError`` naming the
    field.
    """

    def __init__(
        self,
        client: SyncClient,
        *,
        prefix: str = "stormguard:idem:",
        lease: Seconds = 60.0,
        ttl: Seconds = 86400.0,
        attempts: int = 3,
        backoff: Optional[Backoff] = None,
        deadline: Optional[Seconds] = 2.0,
    ) -> None:
        self._settings = _Settings(prefix, lease, ttl, attempts, backoff, deadline)
        self._client = client
        self._owns_client = False
        scripts = redis_scripts()
        # Any: redis-py's stubs type register_script for Redis alone in some
        # releases (RedisCluster has it too).
        any_client: Any = client
        self._begin = any_client.register_script(scripts["begin"])
        self._complete = any_client.register_script(scripts["complete"])
        self._abort = any_client.register_script(scripts["abort"])
        self._inspect = any_client.register_script(scripts["inspect"])

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        attempt_timeout: Seconds = 0.5,
        prefix: str = "stormguard:idem:",
        lease: Seconds = 60.0,
        ttl: Seconds = 86400.0,
        attempts: int = 3,
        backoff: Optional[Backoff] = None,
        deadline: Optional[Seconds] = 2.0,
    ) -> "RedisStore":
        """A store on a client of its own for ``url`` (a ``RedisCluster``
        with ``cluster=True``): the client does not retry, and each attempt
        (connecting included) times out after ``attempt_timeout`` seconds."""
        timeout = _seconds("attempt_timeout", attempt_timeout) / 1000.0
        options: Any = dict(
            retry=redis.retry.Retry(NoBackoff(), 0),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        client: SyncClient = (
            cast(Any, redis.RedisCluster).from_url(url, **options) if cluster
            else redis.Redis.from_url(url, **options)
        )
        store = cls(client, prefix=prefix, lease=lease, ttl=ttl, attempts=attempts,
                    backoff=backoff, deadline=deadline)
        store._owns_client = True
        return store

    def close(self) -> None:
        """Closes the client if the store made it (`from_url`); a client
        passed in stays open, its owner's to close. Also the end of a
        ``with`` block::

            with RedisStore.from_url("redis://127.0.0.1:6379/") as store:
                begun = store.begin("key", b"fingerprint")
        """
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> "RedisStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def lease(self) -> float:
        """How long a running request holds its key, in seconds."""
        return self._settings.lease

    @property
    def client(self) -> SyncClient:
        """The Redis client."""
        return self._client

    def _run(self, operation: str, call: Callable[[], T]) -> T:
        try:
            for attempt in self._settings.retrying():
                with attempt:
                    result = call()
        except Exception as exc:
            if _transient(exc) or _is_out_of_memory(exc):
                raise UnavailableError(operation, exc) from exc
            raise
        return result

    def begin(self, key: str, fingerprint: bytes) -> Begin:
        """Looks ``key`` up and claims it if it is free.

        ``fingerprint`` identifies the request's payload (at most 1024
        bytes; the same key with another fingerprint is ``mismatch``).
        Raises ``ValueError`` for an empty key, a key over 255 bytes or an
        over-long fingerprint, `UnavailableError` when Redis does not
        answer (the key is then released by a best-effort ``abort``, or held
        until its lease ends by a claim nobody acts on).
        """
        entry, keys, args, owner, lease_ends = self._settings.begin_call(key, fingerprint)
        try:
            reply = self._run("begin", lambda: self._begin(keys=keys, args=args))
        except UnavailableError:
            self._release(entry, owner)
            raise
        return self._settings.begin_answer(reply, key, entry, owner, lease_ends)

    def complete(self, ticket: Ticket, response: bytes) -> None:
        """Stores ``response`` for every retry of the ticket's key until the
        TTL ends; call it before sending the response. Raises
        `StaleTicketError` when the lease ran out (nothing stored), and
        `UnavailableError` when Redis does not answer -- retry with the same
        ticket until ``ticket.lease_ends``."""
        args: List[Any] = [ticket.owner, bytes(response), self._settings.ttl_ms]
        reply = self._run(
            "complete", lambda: self._complete(keys=[ticket.entry], args=args)
        )
        _Settings.ok_or_stale("complete", reply)

    def abort(self, ticket: Ticket) -> None:
        """Releases the ticket's key (the work failed before any side
        effect). Raises `StaleTicketError` when the lease ran out -- or when
        this abort was re-sent after its first reply was lost: the key is
        released either way."""
        reply = self._run(
            "abort", lambda: self._abort(keys=[ticket.entry], args=[ticket.owner])
        )
        _Settings.ok_or_stale("abort", reply)

    def inspect(self, key: str) -> Optional[Entry]:
        """Reads ``key``'s entry without changing it."""
        entry = redis_entry_key(self._settings.prefix, key)
        reply = self._run("inspect", lambda: self._inspect(keys=[entry], args=[]))
        return _Settings.entry(reply)

    def _release(self, entry: str, owner: str) -> None:
        try:
            self._abort(keys=[entry], args=[owner])
        except Exception:  # best effort: the lease frees the key anyway
            pass


class AsyncRedisStore:
    """`RedisStore` on ``redis.asyncio``: the same verbs, awaited."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        prefix: str = "stormguard:idem:",
        lease: Seconds = 60.0,
        ttl: Seconds = 86400.0,
        attempts: int = 3,
        backoff: Optional[Backoff] = None,
        deadline: Optional[Seconds] = 2.0,
    ) -> None:
        self._settings = _Settings(prefix, lease, ttl, attempts, backoff, deadline)
        self._client = client
        self._owns_client = False
        scripts = redis_scripts()
        # Any: redis-py's stubs type register_script for Redis alone in some
        # releases (RedisCluster has it too).
        any_client: Any = client
        self._begin = any_client.register_script(scripts["begin"])
        self._complete = any_client.register_script(scripts["complete"])
        self._abort = any_client.register_script(scripts["abort"])
        self._inspect = any_client.register_script(scripts["inspect"])
        self._releases: Set["asyncio.Future[None]"] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        attempt_timeout: Seconds = 0.5,
        prefix: str = "stormguard:idem:",
        lease: Seconds = 60.0,
        ttl: Seconds = 86400.0,
        attempts: int = 3,
        backoff: Optional[Backoff] = None,
        deadline: Optional[Seconds] = 2.0,
    ) -> "AsyncRedisStore":
        """`RedisStore.from_url`, on ``redis.asyncio``."""
        timeout = _seconds("attempt_timeout", attempt_timeout) / 1000.0
        options: Any = dict(
            retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        client: AsyncClient = (
            cast(Any, redis.asyncio.RedisCluster).from_url(url, **options) if cluster
            else redis.asyncio.Redis.from_url(url, **options)
        )
        store = cls(client, prefix=prefix, lease=lease, ttl=ttl, attempts=attempts,
                    backoff=backoff, deadline=deadline)
        store._owns_client = True
        return store

    async def aclose(self) -> None:
        """Waits for the keys being released in the background, then closes
        the client if the store made it (`from_url`); a client passed in
        stays open, its owner's to close. Also the end of an ``async with``
        block::

            async with AsyncRedisStore.from_url("redis://127.0.0.1:6379/") as store:
                begun = await store.begin("key", b"fingerprint")
        """
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> "AsyncRedisStore":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def lease(self) -> float:
        """How long a running request holds its key, in seconds."""
        return self._settings.lease

    @property
    def client(self) -> AsyncClient:
        """The Redis client."""
        return self._client

    async def _run(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            async for attempt in self._settings.retrying():
                with attempt:
                    result = await call()
        except Exception as exc:
            if _transient(exc) or _is_out_of_memory(exc):
                raise UnavailableError(operation, exc) from exc
            raise
        return result

    async def begin(self, key: str, fingerprint: bytes) -> Begin:
        """`RedisStore.begin`, awaited."""
        entry, keys, args, owner, lease_ends = self._settings.begin_call(key, fingerprint)
        try:
            reply = await self._run("begin", lambda: self._begin(keys=keys, args=args))
        except UnavailableError:
            # In the background: the 503 need not wait for it.
            task = asyncio.ensure_future(self._release(entry, owner))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)
            raise
        return self._settings.begin_answer(reply, key, entry, owner, lease_ends)

    async def complete(self, ticket: Ticket, response: bytes) -> None:
        """`RedisStore.complete`, awaited."""
        args: List[Any] = [ticket.owner, bytes(response), self._settings.ttl_ms]
        reply = await self._run(
            "complete", lambda: self._complete(keys=[ticket.entry], args=args)
        )
        _Settings.ok_or_stale("complete", reply)

    async def abort(self, ticket: Ticket) -> None:
        """`RedisStore.abort`, awaited."""
        reply = await self._run(
            "abort", lambda: self._abort(keys=[ticket.entry], args=[ticket.owner])
        )
        _Settings.ok_or_stale("abort", reply)

    async def inspect(self, key: str) -> Optional[Entry]:
        """`RedisStore.inspect`, awaited."""
        entry = redis_entry_key(self._settings.prefix, key)
        reply = await self._run("inspect", lambda: self._inspect(keys=[entry], args=[]))
        return _Settings.entry(reply)

    async def _release(self, entry: str, owner: str) -> None:
        # Not cancelled on a timeout: redis-py's connections do not survive
        # a command cancelled half-way. The client's own timeouts bound it.
        try:
            await self._abort(keys=[entry], args=[owner])
        except Exception:  # best effort: the lease frees the key anyway
            pass
