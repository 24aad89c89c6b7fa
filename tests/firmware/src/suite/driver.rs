//! The async driver (`stormguard::driver`) on the minimal executor, its
//! timer driven by the test: `(|| op()).retry(&policy).sleeper(…)
//! .clock(…).seed(…)`. Without `std` the seed is required — a retry future
//! without `.seed(...)` does not compile.

use core::cell::{Cell, RefCell};
use core::future::{pending, ready, Future};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use stormguard::classify::http;
use stormguard::driver::{Clock, LastAttempt, RetryExt};
use stormguard::{
    Backoff, BreakerState, CircuitBreaker, Failure, GiveUp, Idempotency, Jitter, Random,
    RetryPolicy, Throttle,
};

use super::executor::{block_on, run_until, Sleep, Stopped, VirtualTime};
use super::Checks;

const MS: Duration = Duration::from_millis(1);

/// `attempts` attempts, `backoff_ms` constant backoff without jitter.
fn policy(attempts: u32, backoff_ms: u32) -> Option<RetryPolicy> {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(MS * backoff_ms).jitter(Jitter::None))
        .build()
        .ok()
}

fn status(s: &u16) -> Failure {
    http::failure_for_status(*s).unwrap_or(Failure::permanent())
}

/// One attempt of [`flaky`]: its answer after 5 ms of virtual time.
struct Answer<'a> {
    took: Sleep<'a>,
    result: Result<u32, u16>,
}

impl Future for Answer<'_> {
    type Output = Result<u32, u16>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<u32, u16>> {
        match Pin::new(&mut self.took).poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.result),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// An operation that takes 5 ms of virtual time per attempt, failing with
/// 503 `fails` times, then answering its attempt number.
fn flaky<'a>(
    time: &'a VirtualTime,
    fails: u32,
    calls: &'a Cell<u32>,
) -> impl FnMut() -> Answer<'a> + 'a {
    move || {
        calls.set(calls.get() + 1);
        let n = calls.get();
        Answer {
            took: time.after(MS * 5),
            result: if n <= fails { Err(503) } else { Ok(n) },
        }
    }
}

/// Two failures, then a success: exact virtual time, sleeps and hook calls.
pub fn retries_on_virtual_time(c: &mut Checks<'_>) {
    let Some(policy) = RetryPolicy::builder()
        .max_attempts(5)
        .backoff(Backoff::exponential(MS * 10, 2.0).jitter(Jitter::None))
        .build()
        .ok()
    else {
        check!(c, false, "valid settings refused");
        return;
    };
    let Ok(throttle) = Throttle::new(10, 0.1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let Ok(breaker) = CircuitBreaker::new(5, Duration::from_secs(1)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let time = VirtualTime::new();
    let calls = Cell::new(0);
    let notified = RefCell::new([Duration::ZERO; 4]);
    let out = block_on(
        &time,
        flaky(&time, 2, &calls)
            .retry(&policy)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(0x5eed)
            .budget(&throttle)
            .breaker(&breaker)
            .when(status)
            .notify(|last: &LastAttempt<u16>, after: Duration| {
                if let (LastAttempt::Failed(503), Ok(mut seen)) = (last, notified.try_borrow_mut())
                {
                    if let Some(slot) = seen.iter_mut().find(|d| d.is_zero()) {
                        *slot = after;
                    }
                }
            }),
    );
    check_eq!(c, out, Ok(Ok(3)));
    check_eq!(c, calls.get(), 3);
    // 5 ms attempt, 10 ms sleep, 5 ms, 20 ms sleep, 5 ms.
    check_eq!(c, time.elapsed(), MS * 45);
    check_eq!(c, time.sleeps_created(), 2);
    check_eq!(c, time.sleeps_alive(), 0);
    check_eq!(
        c,
        *notified.borrow(),
        [MS * 10, MS * 20, Duration::ZERO, Duration::ZERO]
    );
    check_eq!(c, throttle.tokens_milli(), 8_100);
    check_eq!(c, breaker.state(), BreakerState::Closed);

    // A first-try success sleeps nothing and reads no clock it does not need.
    let time = VirtualTime::new();
    let calls = Cell::new(0);
    let out = block_on(
        &time,
        flaky(&time, 0, &calls)
            .retry(&policy)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(1),
    );
    check_eq!(c, out, Ok(Ok(1)));
    check_eq!(c, (time.elapsed(), time.sleeps_created()), (MS * 5, 0));
}

/// Every reason a retried call gives up, through the driver.
pub fn every_give_up(c: &mut Checks<'_>) {
    let (Some(three), Some(ten)) = (policy(3, 1), policy(10, 1)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let time = VirtualTime::new();

    let calls = Cell::new(0);
    let out = block_on(
        &time,
        flaky(&time, 9, &calls)
            .retry(&three)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(2)
            .when(status),
    );
    let err = out.ok().and_then(Result::err);
    check_eq!(
        c,
        err.as_ref().map(|e| (e.reason(), e.attempts(), e.last())),
        Some((GiveUp::AttemptsExhausted, 3, &LastAttempt::Failed(503)))
    );

    let out = block_on(
        &time,
        (|| ready(Err::<(), u16>(404)))
            .retry(&three)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(3)
            .when(status),
    );
    let err = out.ok().and_then(Result::err);
    check_eq!(
        c,
        err.map(|e| (e.reason(), e.attempts())),
        Some((GiveUp::NotRetryable, 1))
    );

    let calls = Cell::new(0);
    let out = block_on(
        &time,
        flaky(&time, 9, &calls)
            .retry(&three)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(4)
            .when(status)
            .idempotency(Idempotency::NonIdempotent),
    );
    let err = out.ok().and_then(Result::err);
    check_eq!(
        c,
        err.map(|e| (e.reason(), e.attempts())),
        Some((GiveUp::UnsafeToReplay, 1))
    );

    let Ok(throttle) = Throttle::new(4, 0.1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let calls = Cell::new(0);
    let out = block_on(
        &time,
        flaky(&time, 99, &calls)
            .retry(&ten)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(5)
            .when(status)
            .budget(&throttle),
    );
    let err = out.ok().and_then(Result::err);
    check_eq!(
        c,
        err.map(|e| (e.reason(), e.attempts())),
        Some((GiveUp::BudgetExhausted, 2))
    );

    let Ok(breaker) = CircuitBreaker::new(1, Duration::from_secs(60)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let calls = Cell::new(0);
    for expected_attempts in [1, 0] {
        let out = block_on(
            &time,
            flaky(&time, 99, &calls)
                .retry(&ten)
                .sleeper(time.sleeper())
                .clock(&time)
                .seed(6)
                .when(status)
                .breaker(&breaker),
        );
        let err = out.ok().and_then(Result::err);
        check_eq!(
            c,
            err.as_ref().map(|e| (e.reason(), e.attempts())),
            Some((GiveUp::CircuitOpen, expected_attempts))
        );
        if expected_attempts == 0 {
            check!(
                c,
                err.is_some_and(|e| matches!(e.last(), LastAttempt::Refused(_)))
            );
        }
    }
    check_eq!(c, calls.get(), 1);

    // A deadline cuts a hanging attempt at exactly the deadline.
    let Some(deadline) = RetryPolicy::builder()
        .max_attempts(5)
        .deadline(MS * 80)
        .build()
        .ok()
    else {
        check!(c, false, "valid settings refused");
        return;
    };
    let time = VirtualTime::new();
    let out = block_on(
        &time,
        (|| pending::<Result<(), u16>>())
            .retry(&deadline)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(7),
    );
    let err = out.ok().and_then(Result::err);
    check_eq!(
        c,
        err.map(|e| (e.reason(), *e.last())),
        Some((GiveUp::DeadlineExceeded, LastAttempt::TimedOut))
    );
    check_eq!(c, time.elapsed(), MS * 80);

    // A retry that could not start before the deadline gives up at once.
    let Some(slow) = RetryPolicy::builder()
        .max_attempts(5)
        .backoff(Backoff::constant(Duration::from_secs(2)).jitter(Jitter::None))
        .deadline(Duration::from_secs(1))
        .build()
        .ok()
    else {
        check!(c, false, "valid settings refused");
        return;
    };
    let time = VirtualTime::new();
    let calls = Cell::new(0);
    let out = block_on(
        &time,
        flaky(&time, 9, &calls)
            .retry(&slow)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(8)
            .when(status),
    );
    let err = out.ok().and_then(Result::err);
    check_eq!(
        c,
        err.map(|e| (e.reason(), e.attempts())),
        Some((GiveUp::DeadlineExceeded, 1))
    );
    check_eq!(c, time.elapsed(), MS * 5);
}

/// A timed-out attempt is dropped and retried; a dropped retry future
/// leaves no timer and gives a half-open probe's slot back.
pub fn timeouts_and_cancellation(c: &mut Checks<'_>) {
    let Some(policy) = policy(3, 1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let time = VirtualTime::new();
    let calls = Cell::new(0);
    let out = block_on(
        &time,
        (|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n == 1 {
                    pending::<()>().await;
                }
                Ok::<u32, u16>(n)
            }
        })
        .retry(&policy)
        .sleeper(time.sleeper())
        .clock(&time)
        .seed(9)
        .attempt_timeout(MS * 40),
    );
    check_eq!(c, out, Ok(Ok(2)));
    // 40 ms timeout, 1 ms backoff; the second attempt answers at once.
    check_eq!(c, time.elapsed(), MS * 41);
    check_eq!(c, time.sleeps_alive(), 0);

    // A timed-out attempt may have run: a non-idempotent call stops.
    let out = block_on(
        &time,
        (|| pending::<Result<(), u16>>())
            .retry(&policy)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(10)
            .attempt_timeout(MS * 20)
            .idempotency(Idempotency::NonIdempotent),
    );
    let err = out.ok().and_then(Result::err);
    check_eq!(
        c,
        err.map(|e| (e.reason(), *e.last())),
        Some((GiveUp::UnsafeToReplay, LastAttempt::TimedOut))
    );

    // Without a timeout or a deadline a hanging attempt waits: the future
    // is pending with no timer, and the executor sees it stuck.
    let out = block_on(
        &time,
        (|| pending::<Result<(), u16>>())
            .retry(&policy)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(11),
    );
    check_eq!(c, out.err(), Some(Stopped::Stuck));

    // Dropped while it sleeps between attempts: the sleep goes with it.
    let Some(long) = policy_with_backoff(200) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let time = VirtualTime::new();
    let calls = Cell::new(0);
    let out = run_until(
        &time,
        MS * 30,
        flaky(&time, 9, &calls)
            .retry(&long)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(12),
    );
    check_eq!(c, out.err(), Some(Stopped::Limit));
    check_eq!(c, (time.sleeps_created(), time.sleeps_alive()), (1, 0));
    check_eq!(c, calls.get(), 1);

    // Dropped during a half-open probe: the probe's slot comes back.
    let Ok(breaker) = CircuitBreaker::new(1, Duration::from_secs(1)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let time = VirtualTime::new();
    if let Ok(p) = breaker.try_acquire(time.now()) {
        p.failure(time.now());
    }
    let _ = run_until(
        &time,
        Duration::from_secs(1),
        time.after(Duration::from_secs(1)),
    );
    let out = run_until(
        &time,
        Duration::from_secs(2),
        (|| pending::<Result<(), u16>>())
            .retry(&policy)
            .sleeper(time.sleeper())
            .clock(&time)
            .seed(13)
            .breaker(&breaker)
            .attempt_timeout(Duration::from_secs(60)),
    );
    check_eq!(c, out.err(), Some(Stopped::Limit));
    check_eq!(c, breaker.state(), BreakerState::HalfOpen);
    check_eq!(c, time.sleeps_alive(), 0);
    let probe = breaker.try_acquire(time.now());
    check!(
        c,
        probe.as_ref().is_ok_and(|p| p.is_probe()),
        "the slot came back"
    );
}

fn policy_with_backoff(ms: u32) -> Option<RetryPolicy> {
    policy(5, ms)
}

/// With a seed, the driver's delays are the backoff's schedule for that
/// seed — the same numbers on the chip and on the host.
pub fn seeded_schedule(c: &mut Checks<'_>) {
    let backoff = Backoff::exponential(MS * 100, 2.0)
        .max_delay(Duration::from_secs(5))
        .jitter(Jitter::Full);
    let Some(policy) = RetryPolicy::builder()
        .max_attempts(6)
        .backoff(backoff)
        .build()
        .ok()
    else {
        check!(c, false, "valid settings refused");
        return;
    };
    for seed in [7, 0xdead_beef] {
        let time = VirtualTime::new();
        let seen = RefCell::new([Duration::ZERO; 5]);
        let index = Cell::new(0);
        let out = block_on(
            &time,
            (|| ready(Err::<(), u16>(503)))
                .retry(&policy)
                .sleeper(time.sleeper())
                .clock(&time)
                .seed(seed)
                .notify(|_: &LastAttempt<u16>, after: Duration| {
                    if let Ok(mut seen) = seen.try_borrow_mut() {
                        if let Some(slot) = seen.get_mut(index.get()) {
                            *slot = after;
                        }
                    }
                    index.set(index.get() + 1);
                }),
        );
        check!(c, out.is_ok_and(|r| r.is_err()));
        let mut expected = [Duration::ZERO; 5];
        for (slot, d) in expected
            .iter_mut()
            .zip(policy.backoff().delays(Random::with_seed(seed)))
        {
            *slot = d;
        }
        check_eq!(c, *seen.borrow(), expected);
        let total: Duration = expected.iter().sum();
        check_eq!(c, time.elapsed(), total);
    }
    // The first row of the shared table (seed 7) is what the driver slept.
    let table = &super::backoff::SCHEDULES[1];
    let mut first = Random::with_seed(table.seed);
    let d0 = table.backoff.delay(0, Duration::ZERO, &mut first);
    check_eq!(c, d0.as_nanos() as u64, table.nanos[0]);
}
