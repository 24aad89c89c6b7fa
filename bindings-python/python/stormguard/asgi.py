"""Idempotency keys for any ASGI app, across a fleet of replicas.

`IdempotencyMiddleware` wraps an ASGI application (Starlette, FastAPI,
Django's ASGI handler, a bare callable) so that a request carrying an
``Idempotency-Key`` header runs once, whichever replica each of its retries
lands on, and every retry gets the first response back -- the semantics of
the IETF draft "The Idempotency-Key HTTP Header Field" and of Stripe's
idempotent requests::

    import redis.asyncio
    from stormguard.asgi import IdempotencyMiddleware
    from stormguard.redis import AsyncRedisStore

    store = AsyncRedisStore(redis.asyncio.Redis(socket_timeout=0.5), lease=30.0)
    app = IdempotencyMiddleware(app, store)

For a keyed ``POST`` or ``PATCH`` (the methods are configurable):

========================================  ==========================================
the request                               the answer
========================================  ==========================================
the key's first request                   the app runs; its status, headers and body
                                          are stored, then sent
a retry after it completed                the stored response, with
                                          ``Idempotent-Replayed: true``
a retry while it still runs               ``409 Conflict`` (``Retry-After: 1``)
the key with another method, path,        ``422 Unprocessable Content``
query or body
a malformed key (or a missing one, with   ``400 Bad Request``
``require_key=True``)
Redis unavailable                         ``503 Service Unavailable``
                                          (``Retry-After: 1``); the app does not run
========================================  ==========================================

Refusals are ``application/problem+json`` (RFC 9457) and are not stored.
The key is the header's value, bare (Stripe) or as a structured-field string
(``"…"``, the IETF draft), 1 to 255 printable ASCII characters; pass
``key_scope`` to scope keys per account, as Stripe does. The fingerprint is a
SHA-256 of the method, path, query string and body.

The response is buffered whole (it is stored before it is sent), so the
middleware is not for streamed responses. An exception in the app is
answered and stored as a ``500`` (Stripe stores 500s: the work may have had
effects); with ``on_error="abort"`` the key is released instead, for apps
whose failures never have side effects. A response that cannot be stored
because Redis is down is retried until the ticket's lease ends, then sent
anyway -- its retry after the lease would run the request again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import struct
import time
from typing import (
    Any,
    Awaitable,
    Callable,
    Iterable,
    List,
    MutableMapping,
    Optional,
    Sequence,
    Tuple,
)

from .redis import AsyncRedisStore, StaleTicketError, Ticket, UnavailableError

__all__ = ["IdempotencyMiddleware", "decode_response", "encode_response", "fingerprint", "parse_key"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = List[Tuple[bytes, bytes]]

log = logging.getLogger("stormguard.asgi")

_MAGIC = b"SGR1"


def encode_response(status: int, headers: Sequence[Tuple[bytes, bytes]], body: bytes) -> bytes:
    """A response as the bytes the middleware stores: ``SGR1``, the status
    and the header count (two big-endian u16), each header as its name's and
    value's lengths (u16, u32) and bytes, then the body."""
    out = bytearray(_MAGIC)
    out += struct.pack(">HH", status, len(headers))
    for name, value in headers:
        out += struct.pack(">HI", len(name), len(value))
        out += name
        out += value
    out += body
    return bytes(out)


def decode_response(data: bytes) -> Tuple[int, Headers, bytes]:
    """`encode_response` undone; ``ValueError`` on anything else."""
    if data[:4] != _MAGIC or len(data) < 8:
        raise ValueError("not a stored stormguard response")
    status, count = struct.unpack_from(">HH", data, 4)
    at = 8
    headers: Headers = []
    for _ in range(count):
        if at + 6 > len(data):
            raise ValueError("truncated stored response")
        name_len, value_len = struct.unpack_from(">HI", data, at)
        at += 6
        end = at + name_len + value_len
        if end > len(data):
            raise ValueError("truncated stored response")
        headers.append((data[at : at + name_len], data[at + name_len : end]))
        at = end
    return status, headers, data[at:]


def parse_key(raw: bytes) -> Optional[str]:
    """The key in an ``Idempotency-Key`` header value, or None if it is not
    1 to 255 printable ASCII characters. A structured-field string
    (``"…"``, with ``\\"`` and ``\\\\`` escapes) is unquoted."""
    try:
        text = raw.decode("ascii").strip(" \t")
    except UnicodeDecodeError:
        return None
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner, out, escaped = text[1:-1], [], False
        for char in inner:
            if escaped:
                if char not in '"\\':
                    return None
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                return None
            else:
                out.append(char)
        if escaped:
            return None
        text = "".join(out)
    if not 1 <= len(text) <= 255 or any(not " " <= c <= "~" for c in text):
        return None
    return text


def fingerprint(scope: Scope, body: bytes) -> bytes:
    """The request's fingerprint: SHA-256 of its method, path, query
    string and body, each length-prefixed."""
    digest = hashlib.sha256()
    path = scope.get("raw_path") or str(scope.get("path", "")).encode("utf-8")
    for part in (
        str(scope.get("method", "")).encode("ascii", "replace"),
        path,
        scope.get("query_string", b""),
        body,
    ):
        digest.update(struct.pack(">Q", len(part)))
        digest.update(part)
    return digest.digest()


def _problem(status: int, title: str, detail: str) -> Tuple[int, Headers, bytes]:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    headers: Headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status in (409, 503):
        headers.append((b"retry-after", b"1"))
    return status, headers, body.encode()


async def _send(send: Send, response: Tuple[int, Headers, bytes]) -> None:
    status, headers, body = response
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _TooLarge(Exception):
    pass


class IdempotencyMiddleware:
    """Makes an ASGI app idempotent for requests with an ``Idempotency-Key``.

    ``store`` is an `AsyncRedisStore` shared by every replica. ``methods``
    are the methods the key applies to (others pass through untouched);
    ``require_key`` answers 400 to such a request without a key;
    ``key_scope`` maps a request's scope to a string its key is scoped by
    (an account id); ``max_body`` bounds the buffered request body (413
    beyond); ``on_error`` says what an exception in the app does
    (``"store"`` a 500, or ``"abort"``).
    """

    def __init__(
        self,
        app: ASGIApp,
        store: AsyncRedisStore,
        *,
        methods: Iterable[str] = ("POST", "PATCH"),
        require_key: bool = False,
        key_scope: Optional[Callable[[Scope], str]] = None,
        max_body: int = 1 << 20,
        on_error: str = "store",
    ) -> None:
        if on_error not in ("store", "abort"):
            raise ValueError('invalid on_error: must be "store" or "abort"')
        if not isinstance(max_body, int) or max_body < 0:
            raise ValueError("invalid max_body: must be an integer >= 0")
        self.app = app
        self.store = store
        self.methods = frozenset(m.upper() for m in methods)
        self.require_key = require_key
        self.key_scope = key_scope
        self.max_body = max_body
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") not in self.methods:
            await self.app(scope, receive, send)
            return
        values = [v for (n, v) in scope.get("headers", []) if n.lower() == b"idempotency-key"]
        if not values:
            if self.require_key:
                await _send(send, _problem(400, "Idempotency-Key is missing",
                                           "This request needs an Idempotency-Key header."))
                return
            await self.app(scope, receive, send)
            return
        key = parse_key(values[0]) if len(values) == 1 else None
        if key is None:
            await _send(send, _problem(400, "Idempotency-Key is not valid",
                                       "The key must be one header of 1 to 255 printable ASCII characters."))
            return
        if self.key_scope is not None:
            key = f"{self.key_scope(scope)}:{key}"
        try:
            body = await self._read_body(receive)
        except _TooLarge:
            await _send(send, _problem(413, "Request body too large",
                                       f"A keyed request body may be at most {self.max_body} bytes."))
            return
        try:
            begun = await self.store.begin(key, fingerprint(scope, body))
        except UnavailableError as exc:
            log.warning("idempotency store unavailable: %s", exc)
            await _send(send, _problem(503, "Idempotency store unavailable",
                                       "Retry the request with the same Idempotency-Key."))
            return
        except ValueError as exc:
            await _send(send, _problem(400, "Idempotency-Key is not valid", str(exc)))
            return
        if begun.kind == "replay" and begun.response is not None:
            try:
                status, headers, stored = decode_response(begun.response)
            except ValueError:
                await _send(send, _problem(500, "Stored response unreadable", "Contact the service."))
                return
            await _send(send, (status, headers + [(b"idempotent-replayed", b"true")], stored))
        elif begun.kind == "in_progress":
            await _send(send, _problem(409, "Request in progress",
                                       "A request with this Idempotency-Key is still being processed; retry it later."))
        elif begun.kind == "mismatch":
            await _send(send, _problem(422, "Idempotency-Key reused",
                                       "This Idempotency-Key was used with a different request."))
        elif begun.ticket is not None:
            await self._execute(scope, body, receive, send, begun.ticket)
        else:  # pragma: no cover - every answer is handled above
            await _send(send, _problem(500, "Unexpected answer", begun.kind))

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: List[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; run with what came
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _execute(self, scope: Scope, body: bytes, receive: Receive, send: Send,
                       ticket: Ticket) -> None:
        start: Optional[Message] = None
        chunks: List[bytes] = []
        body_sent = False

        async def replay_body() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body, capture)
        except Exception:
            log.exception("the app failed on a keyed request")
            failed = _problem(500, "Internal Server Error", "The request failed.")
            if self.on_error == "abort":
                await asyncio.shield(self._abort(ticket))
            else:
                await asyncio.shield(self._complete(ticket, encode_response(*failed)))
            await _send(send, failed)
            return
        if start is None:
            response = _problem(500, "Internal Server Error", "The app sent no response.")
        else:
            headers = [(bytes(n), bytes(v)) for (n, v) in start.get("headers", [])]
            response = (int(start["status"]), headers, b"".join(chunks))
        await asyncio.shield(self._complete(ticket, encode_response(*response)))
        await _send(send, response)

    async def _complete(self, ticket: Ticket, stored: bytes) -> None:
        """Stores the response, retrying through an outage until the lease
        ends (after it the key may belong to another execution)."""
        wait = 0.02
        while True:
            try:
                await self.store.complete(ticket, stored)
                return
            except StaleTicketError:
                log.warning("lease of %r ran out before its response was stored", ticket.key)
                return
            except UnavailableError as exc:
                if time.monotonic() + wait >= ticket.lease_ends:
                    log.error("response of %r not stored before its lease ended: %s",
                              ticket.key, exc)
                    return
                await asyncio.sleep(wait)
                wait = min(wait * 2, 0.5)

    async def _abort(self, ticket: Ticket) -> None:
        try:
            await self.store.abort(ticket)
        except (StaleTicketError, UnavailableError) as exc:
            log.warning("could not release %r: %s", ticket.key, exc)
