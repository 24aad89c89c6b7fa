//! The blocking driver, tested like the async one: on a virtual clock that
//! its sleeps move forward (every figure exact), plus one run on the real
//! `std::thread::sleep`.
#![cfg(feature = "std")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use stormguard::driver::{BlockingRetryExt, Clock, LastAttempt};
use stormguard::{
    Backoff, Call, CircuitBreaker, Decision, Failure, GiveUp, Idempotency, Instant, Jitter,
    RetryAfter, RetryPolicy, Throttle,
};

const MS: Duration = Duration::from_millis(1);

/// Virtual time: the clock reads it, sleeps and attempts move it.
#[derive(Clone, Default)]
struct World {
    now: Rc<Cell<u64>>,
    slept: Rc<RefCell<Vec<u64>>>,
}

impl World {
    fn ms(&self) -> u64 {
        self.now.get()
    }

    fn pass(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }

    /// A sleeper that records each wait and moves time by `extra` more than
    /// asked (a thread woken late).
    fn sleeper(&self, extra: u64) -> impl Fn(Duration) + '_ {
        move |d: Duration| {
            let ms = d.as_millis() as u64;
            self.slept.borrow_mut().push(ms);
            self.pass(ms + extra);
        }
    }

    fn slept(&self) -> Vec<u64> {
        self.slept.borrow().clone()
    }
}

impl Clock for World {
    fn now(&self) -> Instant {
        Instant::from_millis(self.ms())
    }
}

fn policy(attempts: u32, backoff_ms: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::exponential(MS * backoff_ms, 2.0).jitter(Jitter::None))
        .build()
        .unwrap()
}

fn status(s: &u16) -> Failure {
    stormguard::classify::http::failure_for_status(*s).unwrap_or(Failure::permanent())
}

/// An operation that takes `latency` ms of virtual time and fails with 503
/// `fails` times before answering `Ok(attempt)`.
fn flaky(world: &World, latency: u64, fails: u32) -> impl FnMut() -> Result<u32, u16> + '_ {
    let mut n = 0;
    move || {
        n += 1;
        world.pass(latency);
        if n <= fails {
            Err(503)
        } else {
            Ok(n)
        }
    }
}

#[test]
fn success_first_time_sleeps_nowhere() {
    let world = World::default();
    let policy = policy(3, 100);
    let out = flaky(&world, 5, 0)
        .retry(&policy)
        .sleeper(world.sleeper(0))
        .clock(world.clone())
        .call();
    assert_eq!(out, Ok(1));
    assert!(world.slept().is_empty());
}

#[test]
fn success_after_failures_waits_the_backoff() {
    let world = World::default();
    let policy = policy(5, 100);
    let mut notified = Vec::new();
    let out = flaky(&world, 10, 3)
        .retry(&policy)
        .sleeper(world.sleeper(0))
        .clock(world.clone())
        .when(status)
        .notify(|last, after| notified.push((last.error().copied(), after.as_millis())))
        .call();
    assert_eq!(out, Ok(4));
    assert_eq!(world.slept(), [100, 200, 400]);
    assert_eq!(world.ms(), 4 * 10 + 700);
    assert_eq!(
        notified,
        [(Some(503), 100), (Some(503), 200), (Some(503), 400)]
    );
}

#[test]
fn every_give_up_reason() {
    let world = World::default();
    let p = policy(3, 1);
    let err = flaky(&world, 1, 9)
        .retry(&p)
        .sleeper(world.sleeper(0))
        .clock(world.clone())
        .when(status)
        .call()
        .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts(), err.last()),
        (GiveUp::AttemptsExhausted, 3, &LastAttempt::Failed(503))
    );

    let err = (|| Err::<(), u16>(404))
        .retry(&p)
        .sleeper(world.sleeper(0))
        .when(status)
        .call()
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::NotRetryable, 1));

    let err = flaky(&world, 1, 9)
        .retry(&p)
        .sleeper(world.sleeper(0))
        .when(status)
        .idempotency(Idempotency::NonIdempotent)
        .call()
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::UnsafeToReplay, 1));

    let big = policy(10, 1);
    let throttle = Throttle::new(4, 0.1).unwrap();
    let err = flaky(&world, 1, 99)
        .retry(&big)
        .sleeper(world.sleeper(0))
        .when(status)
        .budget(&throttle)
        .call()
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::BudgetExhausted, 2));

    let breaker = CircuitBreaker::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let err = flaky(&world, 1, 99)
        .retry(&big)
        .sleeper(world.sleeper(0))
        .clock(world.clone())
        .when(status)
        .breaker(&breaker)
        .call()
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::CircuitOpen, 1));
    assert_eq!(err.last(), &LastAttempt::Failed(503));
    let calls = Cell::new(0);
    let err = (|| {
        calls.set(calls.get() + 1);
        Err::<(), u16>(503)
    })
    .retry(&big)
    .sleeper(world.sleeper(0))
    .clock(world.clone())
    .breaker(&breaker)
    .call()
    .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::CircuitOpen, 0));
    assert!(matches!(err.last(), LastAttempt::Refused(_)));
    assert_eq!(calls.get(), 0, "an open breaker sends nothing");

    let server_stop = |_: &u16| Failure::overloaded().with_retry_after(RetryAfter::Stop);
    let err = flaky(&world, 1, 9)
        .retry(&big)
        .sleeper(world.sleeper(0))
        .clock(world.clone())
        .when(server_stop)
        .call()
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (GiveUp::ServerSaidStop, 1));
}

#[test]
fn a_retry_that_cannot_finish_in_time_gives_up_at_once() {
    let world = World::default();
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .backoff(Backoff::constant(Duration::from_secs(2)).jitter(Jitter::None))
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let err = flaky(&world, 10, 9)
        .retry(&policy)
        .sleeper(world.sleeper(0))
        .clock(world.clone())
        .call()
        .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts()),
        (GiveUp::DeadlineExceeded, 1)
    );
    assert!(
        world.slept().is_empty(),
        "it did not sleep into the deadline"
    );
}

#[test]
fn a_sleep_that_overshoots_the_deadline_ends_the_call_before_the_next_attempt() {
    // The backoff fits (100 ms of a 500 ms deadline), but the thread wakes
    // 1 s late: the next attempt would start after the deadline.
    let world = World::default();
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .backoff(Backoff::constant(MS * 100).jitter(Jitter::None))
        .deadline(MS * 500)
        .build()
        .unwrap();
    let calls = Cell::new(0);
    let err = (|| {
        calls.set(calls.get() + 1);
        world.pass(10);
        Err::<(), u16>(503)
    })
    .retry(&policy)
    .sleeper(world.sleeper(1000))
    .clock(world.clone())
    .call()
    .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts()),
        (GiveUp::DeadlineExceeded, 1)
    );
    assert_eq!(err.last(), &LastAttempt::Failed(503), "the last failure");
    assert_eq!(calls.get(), 1, "no attempt after the deadline");
}

#[test]
fn retry_if_retries_only_what_it_says() {
    let world = World::default();
    let policy = policy(4, 1);
    let mut answers = [Err(429), Err(500), Ok(7)].into_iter();
    let err = (|| answers.next().unwrap())
        .retry(&policy)
        .sleeper(world.sleeper(0))
        .retry_if(|status| *status == 429)
        .call()
        .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts(), err.into_error()),
        (GiveUp::NotRetryable, 2, Some(500))
    );
}

#[test]
fn the_same_seed_gives_the_same_waits() {
    let waits = |seed: u64| {
        let world = World::default();
        let policy = RetryPolicy::builder()
            .max_attempts(6)
            .backoff(Backoff::exponential(MS * 100, 2.0))
            .build()
            .unwrap();
        let _ = flaky(&world, 0, 9)
            .retry(&policy)
            .sleeper(world.sleeper(0))
            .clock(world.clone())
            .seed(seed)
            .call();
        world.slept()
    };
    assert_eq!(waits(7), waits(7));
    assert_ne!(waits(7), waits(8));
}

#[test]
fn the_thread_really_sleeps_by_default() {
    let policy = policy(3, 20);
    let mut n = 0;
    let start = std::time::Instant::now();
    let out = (|| {
        n += 1;
        if n < 3 {
            Err(())
        } else {
            Ok(n)
        }
    })
    .retry(&policy)
    .call();
    assert_eq!(out, Ok(3));
    // 20 ms then 40 ms: at least that long (an upper bound would depend on
    // the scheduler).
    assert!(start.elapsed() >= MS * 60, "{:?}", start.elapsed());
}

proptest! {
    /// Whatever the script, the blocking driver makes exactly the decisions
    /// the lifecycle makes when driven by hand: same attempts, same waits,
    /// same outcome.
    #[test]
    fn the_driver_agrees_with_the_lifecycle(
        script in proptest::collection::vec(prop_oneof![Just(Ok(1u32)), Just(Err(503u16)), Just(Err(404)), Just(Err(429))], 1..8),
        latency in 0u64..200,
        attempts in 1u32..6,
        deadline_ms in 200u64..3000,
        seed in any::<u64>(),
    ) {
        let policy = RetryPolicy::builder()
            .max_attempts(attempts)
            .backoff(Backoff::exponential(MS * 50, 2.0))
            .deadline(MS * deadline_ms as u32)
            .build()
            .unwrap();
        let classify = |s: &u16| match s {
            429 => Failure::overloaded().with_retry_after(RetryAfter::Delay(MS * 120)),
            s => status(s),
        };
        let world = World::default();
        let mut n = 0;
        let out = (|| {
            n += 1;
            world.pass(latency);
            script[(n - 1).min(script.len() - 1)]
        })
        .retry(&policy)
        .sleeper(world.sleeper(0))
        .clock(world.clone())
        .when(classify)
        .seed(seed)
        .call();

        let mut call = Call::with_seed(&policy, seed);
        let mut now = 0u64;
        let mut waits = Vec::new();
        let mut i = 0;
        let expected = loop {
            let attempt = match call.begin_attempt(Instant::from_millis(now)) {
                Ok(attempt) => attempt,
                Err(Decision::GiveUp(reason)) => break Err(reason),
                Err(other) => panic!("{other:?}"),
            };
            now += latency;
            let answer = script[i.min(script.len() - 1)];
            i += 1;
            match answer {
                Ok(v) => {
                    attempt.succeed(Instant::from_millis(now));
                    break Ok(v);
                }
                Err(s) => match attempt.fail(&classify(&s), Instant::from_millis(now)) {
                    Decision::Retry { after } => {
                        waits.push(after.as_millis() as u64);
                        now += after.as_millis() as u64;
                    }
                    Decision::GiveUp(reason) => break Err(reason),
                },
            }
        };
        prop_assert_eq!(world.slept(), waits);
        prop_assert_eq!(out.map_err(|e| e.reason()), expected);
    }
}
