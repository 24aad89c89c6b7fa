//! The retry future allocates nothing — not per call, not per attempt —
//! proven with a counting global allocator (this test binary's allocator is
//! `allocation-counter`'s).

use std::future::{ready, Future, IntoFuture, Ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use allocation_counter::measure;
use stormguard::driver::{Clock, LastAttempt, RetryExt, Sleeper};
use stormguard::{
    Backoff, CircuitBreaker, Decision, Failure, GiveUp, Instant, NoBudget, Retry, RetryBudget,
    RetryPolicy, Throttle,
};

/// Sleeps end at once; the clock moves 1 ms per reading.
struct Virtual(std::cell::Cell<u64>);

impl Sleeper for Virtual {
    type Sleep = Ready<()>;
    fn sleep(&self, _: Duration) -> Ready<()> {
        ready(())
    }
}

impl Clock for Virtual {
    fn now(&self) -> Instant {
        let t = self.0.get() + 1;
        self.0.set(t);
        Instant::from_millis(t)
    }
}

fn poll_to_end<F: IntoFuture>(f: F) -> F::Output {
    let mut f = pin!(f.into_future());
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::exponential(Duration::from_millis(10), 2.0))
        .deadline(Duration::from_secs(3600))
        .build()
        .unwrap()
}

#[test]
fn the_counter_sees_an_allocation() {
    let info = measure(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(info.count_total, 1);
}

#[test]
fn the_core_future_allocates_nothing_however_many_attempts() {
    let policy = policy(50);
    let throttle = Throttle::new(1000, 0.1).unwrap();
    let breaker = CircuitBreaker::builder()
        .failure_threshold(1000)
        .build()
        .unwrap();
    let clock = Virtual(Default::default());
    let mut calls = 0u32;
    let mut notified = 0u32;
    let info = measure(|| {
        let out = poll_to_end(
            (|| {
                calls += 1;
                ready(if calls < 50 { Err(503u16) } else { Ok(calls) })
            })
            .retry(&policy)
            .sleeper(|d| clock.sleep(d))
            .clock(&clock)
            .budget(&throttle)
            .breaker(&breaker)
            .when(|_: &u16| Failure::transient())
            .notify(|_: &LastAttempt<u16>, _: Duration| notified += 1)
            .attempt_timeout(Duration::from_secs(1))
            .seed(7),
        );
        assert_eq!(out, Ok(50));
    });
    assert_eq!((calls, notified), (50, 49), "the work really happened");
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn giving_up_allocates_nothing_either() {
    let policy = policy(5);
    let budget = RetryBudget::default();
    let clock = Virtual(Default::default());
    let info = measure(|| {
        let err = poll_to_end(
            (|| ready(Err::<(), _>("down")))
                .retry(&policy)
                .sleeper(|d| clock.sleep(d))
                .clock(&clock)
                .budget(&budget),
        )
        .unwrap_err();
        assert_eq!(
            (err.reason(), err.attempts()),
            (GiveUp::AttemptsExhausted, 5)
        );
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn the_hedge_future_allocates_nothing() {
    let policy = stormguard::HedgingPolicy::builder()
        .max_attempts(5)
        .hedging_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let throttle = Throttle::new(1000, 0.1).unwrap();
    let clock = Virtual(Default::default());
    let mut calls = 0u32;
    let info = measure(|| {
        let err = poll_to_end(
            (|| {
                calls += 1;
                ready(Err::<u32, u16>(503))
            })
            .hedge(&policy)
            .sleeper(|d| clock.sleep(d))
            .clock(&clock)
            .budget(&throttle),
        )
        .unwrap_err();
        assert_eq!(
            (err.reason(), err.attempts()),
            (GiveUp::AttemptsExhausted, 5)
        );
    });
    assert_eq!(calls, 5, "the work really happened");
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn the_state_machine_by_hand_allocates_nothing() {
    let policy = policy(100);
    let info = measure(|| {
        let mut call = Retry::with_seed(&policy, Instant::ZERO, 1);
        let mut now = Instant::ZERO;
        while let Decision::Retry { after } = call.on_failure(&Failure::timeout(), now, &NoBudget) {
            now += after;
        }
        assert_eq!(call.attempts(), 100);
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

mod smol {
    use std::future::ready;
    use std::time::Duration;

    use allocation_counter::measure;
    use stormguard_smol::{Backoff, Jitter, RetryExt, RetryPolicy};

    use super::poll_to_end;

    #[test]
    fn the_smol_adapter_allocates_nothing_on_its_success_path() {
        // No deadline, no per-attempt timeout and zero backoff: no timer is ever
        // created, so whatever allocates here would be the adapter's own.
        let policy = RetryPolicy::builder()
            .max_attempts(10)
            .backoff(Backoff::constant(Duration::ZERO).jitter(Jitter::None))
            .build()
            .unwrap();
        let mut calls = 0u32;
        let info = measure(|| {
            let out = poll_to_end(
                (|| {
                    calls += 1;
                    ready(if calls < 10 { Err(()) } else { Ok(calls) })
                })
                .retry(&policy),
            );
            assert_eq!(out, Ok(10));
        });
        assert_eq!(info.count_total, 0, "{info:?}");
    }
}
