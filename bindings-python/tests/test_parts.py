"""The parts on their own: schedules, budgets, the breaker; and bad input
everywhere."""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stormguard as sg

# --- Backoff ------------------------------------------------------------------


def test_exponential_without_jitter_is_the_textbook_schedule() -> None:
    b = sg.Backoff.exponential(base=0.1, factor=2.0, max_delay=1.0, jitter="none")
    assert b.delays(6) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_linear_and_constant() -> None:
    assert sg.Backoff.linear(1.0, 0.5, max_delay=2.0).delays(4) == [1.0, 1.5, 2.0, 2.0]
    assert sg.Backoff.constant(0.3).delays(3) == [0.3, 0.3, 0.3]


def test_same_seed_same_schedule() -> None:
    b = sg.Backoff.exponential(jitter="decorrelated")
    assert b.delays(20, seed=7) == b.delays(20, seed=7)
    assert b.delays(20, seed=7) != b.delays(20, seed=8)
    assert b.delays(20) != b.delays(20)  # no fixed default seed


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=1e-6, max_value=100.0),
    factor=st.floats(min_value=1.0, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=1000.0),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    seed=st.integers(min_value=0, max_value=2**64 - 1),
)
def test_no_delay_exceeds_the_cap(base: float, factor: float, extra: float, jitter: str, seed: int) -> None:
    b = sg.Backoff.exponential(base=base, factor=factor, max_delay=base + extra, jitter=jitter)
    delays = b.delays(50, seed=seed)
    assert len(delays) == 50
    assert all(0.0 <= d <= b.max_delay for d in delays)


@settings(max_examples=100, deadline=None)
@given(base=st.floats(min_value=1e-3, max_value=10.0), n=st.integers(min_value=0, max_value=30))
def test_full_jitter_stays_below_the_nominal_delay(base: float, n: int) -> None:
    b = sg.Backoff.exponential(base=base, factor=2.0, max_delay=1e6, jitter="full")
    nominal = sg.Backoff.exponential(base=base, factor=2.0, max_delay=1e6, jitter="none")
    for got, cap in zip(b.delays(n), nominal.delays(n)):
        assert got <= cap * (1 + 1e-9)


# --- bad input ------------------------------------------------------------------

BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1.0, 1e300]


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_seconds_are_value_errors(value: float) -> None:
    makers: List[Callable[[], Any]] = [
        lambda: sg.Backoff.constant(value),
        lambda: sg.Backoff.exponential(base=value),
        lambda: sg.Backoff.exponential(max_delay=value),
        lambda: sg.Backoff.linear(value, 1.0),
        lambda: sg.CircuitBreaker(recovery_timeout=value),
        lambda: sg.RetryBudget(ttl=value),
        lambda: sg.retry(on=OSError, deadline=value),
        lambda: sg.retry(on=OSError, max_server_delay=value),
    ]
    for make in makers:
        with pytest.raises(ValueError):
            make()


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: sg.Backoff.exponential(factor=math.nan), "backoff.factor"),
        (lambda: sg.Backoff.exponential(factor=0.0), "backoff.factor"),
        (lambda: sg.Backoff.exponential(base=0.0), "backoff.base"),
        (lambda: sg.Backoff.exponential(base=2.0, max_delay=1.0), "backoff.max_delay"),
        (lambda: sg.Backoff.exponential(jitter="wobbly"), "backoff.jitter"),
        (lambda: sg.Throttle(0, 0.1), "max_tokens"),
        (lambda: sg.Throttle(1001, 0.1), "max_tokens"),
        (lambda: sg.Throttle(-5, 0.1), "max_tokens"),
        (lambda: sg.Throttle(10**30, 0.1), "max_tokens"),
        (lambda: sg.Throttle(10, 0.0), "token_ratio"),
        (lambda: sg.Throttle(10, math.inf), "token_ratio"),
        (lambda: sg.RetryBudget(ratio=-0.1), "ratio"),
        (lambda: sg.RetryBudget(ratio=math.nan), "ratio"),
        (lambda: sg.RetryBudget(min_per_second=-1), "min_per_second"),
        (lambda: sg.RetryBudget(ttl=0.5), "ttl"),
        (lambda: sg.RateBudget(0.0), "per_second"),
        (lambda: sg.RateBudget(math.nan), "per_second"),
        (lambda: sg.RateBudget(10.0, burst=0), "burst"),
        (lambda: sg.CircuitBreaker(failure_threshold=0), "failure_threshold"),
        (lambda: sg.CircuitBreaker(half_open_probes=0), "half_open_probes"),
        (lambda: sg.CircuitBreaker(recovery_timeout=0.0), "recovery_timeout"),
        (lambda: sg.CircuitBreaker(probe_timeout=0.0), "probe_timeout"),
        (lambda: sg.retry(on=OSError, attempts=0), "attempts"),
        (lambda: sg.retry(on=OSError, attempts=-3), "attempts"),
        (lambda: sg.retry(on=OSError, attempts=2**70), "attempts"),
        (lambda: sg.retry(on=OSError, deadline=0.0), "deadline"),
        (lambda: sg.Backoff.constant(1.0).delays(-1), "n"),
    ],
)
def test_invalid_values_name_their_field(make: Callable[[], Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"invalid {field}"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: sg.Throttle("10", 0.1),  # type: ignore[arg-type]
        lambda: sg.Throttle(10.5, 0.1),  # type: ignore[arg-type]
        lambda: sg.retry(on=OSError, attempts="3"),  # type: ignore[arg-type]
        lambda: sg.retry(on=42),  # type: ignore[arg-type]
        lambda: sg.retry(on=(OSError, "x")),  # type: ignore[arg-type]
        lambda: sg.retry(on=OSError, budget=object()),  # type: ignore[arg-type]
        lambda: sg.retry(on=OSError, deadline="soon"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_are_type_errors(make: Callable[[], Any]) -> None:
    with pytest.raises(TypeError):
        make()


# --- Throttle -----------------------------------------------------------------


def test_throttle_a6_arithmetic() -> None:
    t = sg.Throttle(max_tokens=10, token_ratio=0.1)
    for _ in range(4):
        t.on_failure()
        assert t.allows_retry()
    t.on_failure()
    assert t.tokens == 5.0 and not t.allows_retry()
    for _ in range(10):
        t.on_success()
    assert t.tokens == 6.0 and t.allows_retry()
    t.on_failure()
    assert not t.allows_retry()


def test_throttle_shared_by_8_threads_keeps_its_arithmetic() -> None:
    t = sg.Throttle(max_tokens=1000, token_ratio=0.1)
    for _ in range(500):
        t.on_failure()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(2000):
            t.on_failure()
            for _ in range(10):
                t.on_success()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.tokens == 500.0


def test_rate_budget_default_burst_is_one_second() -> None:
    budget = sg.RateBudget(3.0)
    op_calls = 0

    def op() -> None:
        nonlocal op_calls
        op_calls += 1
        raise ConnectionError

    decorated = sg.retry(on=ConnectionError, attempts=100, budget=budget, backoff=sg.Backoff.constant(0.0))(op)
    with pytest.raises(ConnectionError) as info:
        decorated()
    assert op_calls == 4  # the first attempt + a burst of 3 retries
    assert getattr(info.value, "__notes__", None) == ["stormguard: gave up after 4 attempts: budget exhausted"]


def test_retry_budget_starts_with_its_floor() -> None:
    assert sg.RetryBudget().available == 100.0


# --- CircuitBreaker -------------------------------------------------------------


def test_breaker_transitions() -> None:
    b = sg.CircuitBreaker(failure_threshold=2, recovery_timeout=0.05)
    assert b.state == "closed"
    b.acquire().failure()
    b.acquire().failure()
    assert b.state == "open"
    with pytest.raises(sg.CircuitOpenError):
        b.acquire()
    time.sleep(0.06)
    probe = b.acquire()
    assert probe.is_probe and b.state == "half_open"
    with pytest.raises(sg.CircuitOpenError):
        b.acquire()
    probe.success()
    assert b.state == "closed"
    with pytest.raises(RuntimeError):
        probe.failure()  # reported twice


def test_half_open_admits_exactly_one_of_8_racing_threads() -> None:
    for _ in range(20):
        # A long probe timeout: however slow the threads, no second round.
        b = sg.CircuitBreaker(failure_threshold=1, recovery_timeout=0.01, probe_timeout=60.0)
        b.acquire().failure()
        time.sleep(0.02)
        barrier = threading.Barrier(8)
        admitted: List[sg.Permit] = []
        lock = threading.Lock()

        def race() -> None:
            barrier.wait()
            for _ in range(50):
                try:
                    permit = b.acquire()
                except sg.CircuitOpenError:
                    continue
                with lock:
                    admitted.append(permit)

        threads = [threading.Thread(target=race) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(admitted) == 1
        admitted[0].success()
        assert b.state == "closed"


def test_no_lock_is_held_while_the_function_runs() -> None:
    # pybreaker holds a lock for the whole call: 5 threads sleeping 0.2 s
    # through it take 1 s. Here they overlap.
    breaker = sg.CircuitBreaker()

    @sg.retry(on=ConnectionError, breaker=breaker)
    def slow() -> None:
        time.sleep(0.2)

    threads = [threading.Thread(target=slow) for _ in range(5)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert time.monotonic() - start < 0.6
