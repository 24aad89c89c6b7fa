"""Idempotency keys end to end from Python, and Retry-After parsing."""

from __future__ import annotations

import email.utils
import threading
from typing import Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stormguard as sg


def test_keys_are_uuid4_text() -> None:
    keys = {sg.new_idempotency_key() for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        assert len(key) == 36 and key[14] == "4" and key[19] in "89ab"


def test_table_answers() -> None:
    table = sg.IdempotencyTable(capacity=2)
    first = table.begin("k1", b"alice:30")
    assert first.kind == "execute" and first.ticket is not None
    assert table.begin("k1", b"alice:30").kind == "in_progress"
    assert table.begin("k1", b"alice:30").status == 409
    assert table.begin("k1", b"alice:99").status == 422
    assert table.complete(first.ticket, {"receipt": 1})
    replay = table.begin("k1", b"alice:30")
    assert (replay.kind, replay.response) == ("replay", {"receipt": 1})
    second = table.begin("k2", "x")
    assert second.kind == "execute"
    assert table.begin("k3", "y").status == 503  # full: nothing live is evicted
    assert second.ticket is not None and table.abort(second.ticket)
    assert table.begin("k3", "y").kind == "execute"  # the aborted key freed its slot
    assert len(table) == 2 and table.capacity == 2
    with pytest.raises(RuntimeError):
        table.complete(first.ticket, "again")


def test_ticket_of_another_table_is_refused() -> None:
    a, b = sg.IdempotencyTable(4), sg.IdempotencyTable(4)
    ticket = a.begin("k", 1).ticket
    assert ticket is not None
    with pytest.raises(ValueError):
        b.complete(ticket, "r")


@pytest.mark.parametrize("bad", [0, -1, 65537, 10**30])
def test_bad_capacity(bad: int) -> None:
    with pytest.raises(ValueError, match="invalid capacity"):
        sg.IdempotencyTable(bad)


def test_charge_runs_once_per_key_under_concurrent_duplicates() -> None:
    table = sg.IdempotencyTable(capacity=4096)
    ledger: Dict[str, int] = {}
    balance = {"alice": 0}
    lock = threading.Lock()

    class Busy(Exception):
        pass

    def charge(key: str, amount: int) -> str:
        begun = table.begin(key, amount)
        if begun.kind == "replay":
            return str(begun.response)
        if begun.kind != "execute":
            raise Busy(begun.kind)
        with lock:
            ledger[key] = ledger.get(key, 0) + 1
            balance["alice"] += amount
        receipt = f"receipt-{key}"
        assert begun.ticket is not None
        table.complete(begun.ticket, receipt)
        return receipt

    keys = [sg.new_idempotency_key() for _ in range(500)]
    receipts: List[List[str]] = [[] for _ in range(8)]
    # A duplicate that finds the key in progress backs off for real (1 ms,
    # releasing the GIL) and comes back for the stored receipt, as a client
    # answered 409 would; a zero wait would spin the duplicates against the
    # thread doing the work.
    client = sg.retry(on=Busy, attempts=10_000, backoff=sg.Backoff.constant(0.001))(charge)
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        barrier.wait()
        for key in keys:
            receipts[i].append(client(key, 3))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(count == 1 for count in ledger.values()) and len(ledger) == 500
    assert balance["alice"] == 3 * 500
    assert all(r == receipts[0] for r in receipts)


def test_parse_retry_after_seconds_and_dates() -> None:
    assert sg.parse_retry_after("120") == 120.0
    assert sg.parse_retry_after(" 0 ") == 0.0
    now = 1_780_000_000
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert sg.parse_retry_after(date, now=now) == 90.0
    assert sg.parse_retry_after(email.utils.formatdate(now - 5, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize("garbage", ["", "-1", "1.5", "soon", "Sun, 31 Feb 1994 08:49:37 GMT", "\u00e9"])
def test_parse_retry_after_rejects_garbage(garbage: str) -> None:
    with pytest.raises(ValueError):
        sg.parse_retry_after(garbage)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_retry_after_never_crashes(text: str) -> None:
    try:
        assert sg.parse_retry_after(text, now=1_780_000_000) >= 0.0
    except ValueError:
        pass


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(min_value=-10**6, max_value=10**8))
def test_http_dates_round_trip(offset: int) -> None:
    now = 1_780_000_000
    date = email.utils.formatdate(now + offset, usegmt=True)
    assert sg.parse_retry_after(date, now=now) == max(0, offset)


def test_retry_after_from_a_response_drives_the_decorator() -> None:
    class HTTPError(Exception):
        def __init__(self, status: int, retry_after: str) -> None:
            self.status, self.retry_after = status, retry_after

    def on(exc: BaseException) -> float | bool:
        if isinstance(exc, HTTPError) and exc.status in (429, 503):
            try:
                return sg.parse_retry_after(exc.retry_after)
            except ValueError:
                return True
        return False

    waits: List[float] = []
    calls = iter([HTTPError(503, "7"), HTTPError(429, "garbage")])

    @sg.retry(on=on, backoff=sg.Backoff.constant(0.5), before_sleep=lambda d: waits.append(d.delay))
    def fetch() -> str:
        err = next(calls, None)
        if err is not None:
            raise err
        return "ok"

    with sg.testing():
        assert fetch() == "ok"
    assert waits == [7.0, 0.5]
