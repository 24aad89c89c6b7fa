//! The attempt lifecycle (`Call`): the one rule for what the breaker is
//! told, the give-ups found before an attempt and their metrics, cancelled
//! attempts, and a property test over arbitrary schedules of events.

use core::time::Duration;

use proptest::prelude::*;
use stormguard::{
    BreakerState, Call, CircuitBreaker, Decision, Failure, FailureClass, GiveUp, Idempotency,
    Instant, Metrics, NoBudget, Replay, RetryPolicy, Throttle,
};

const MS: Duration = Duration::from_millis(1);

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A breaker that opens on the first failure and half-opens after 100 ms.
fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_threshold(1)
        .recovery_timeout(MS * 100)
        .build()
        .unwrap()
}

/// A breaker opened at t = 0, half-open from t = 100 ms.
fn opened_breaker() -> CircuitBreaker {
    let b = breaker();
    b.try_acquire(at(0)).unwrap().failure(at(0));
    assert_eq!(b.state(), BreakerState::Open);
    b
}

#[test]
fn a_permanent_failure_is_not_the_breakers_business() {
    let policy = RetryPolicy::default();
    // Closed, threshold 1: a 404 does not open it.
    let b = breaker();
    let mut call = Call::with_seed(&policy, 1).breaker(&b);
    let attempt = call.begin_attempt(at(0)).unwrap();
    assert_eq!(
        attempt.fail(&Failure::permanent(), at(1)),
        Decision::GiveUp(GiveUp::NotRetryable)
    );
    assert_eq!(b.state(), BreakerState::Closed);

    // Half-open: a probe that ends in a 404 neither closes nor reopens the
    // breaker, and gives its slot to the next caller.
    let b = opened_breaker();
    let mut call = Call::with_seed(&policy, 1).breaker(&b);
    let attempt = call.begin_attempt(at(100)).unwrap();
    assert!(attempt.is_probe());
    let _ = attempt.fail(&Failure::permanent(), at(101));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire(at(101)).expect("the slot came back");
    assert!(probe.is_probe());
}

#[test]
fn an_unsafe_replay_is_not_the_breakers_business() {
    let policy = RetryPolicy::default();
    let b = breaker();
    let mut charge = Call::with_seed(&policy, 1)
        .breaker(&b)
        .with_idempotency(Idempotency::NonIdempotent);
    let attempt = charge.begin_attempt(at(0)).unwrap();
    assert_eq!(
        attempt.fail(&Failure::timeout(), at(1)),
        Decision::GiveUp(GiveUp::UnsafeToReplay)
    );
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn a_retryable_failure_is_the_breakers_business() {
    let policy = RetryPolicy::default();
    let b = breaker();
    let mut call = Call::with_seed(&policy, 1).breaker(&b);
    let attempt = call.begin_attempt(at(0)).unwrap();
    assert!(matches!(
        attempt.fail(&Failure::transient(), at(1)),
        Decision::Retry { .. }
    ));
    assert_eq!(b.state(), BreakerState::Open);
    // ... and the same failure not sent (safe to replay whatever the
    // method) also counts for a non-idempotent call.
    let b = breaker();
    let mut charge = Call::with_seed(&policy, 1)
        .breaker(&b)
        .with_idempotency(Idempotency::NonIdempotent);
    let attempt = charge.begin_attempt(at(0)).unwrap();
    let refused = Failure::new(FailureClass::Overloaded, Replay::Rejected);
    let _ = attempt.fail(&refused, at(1));
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn a_successful_probe_closes_the_breaker() {
    let policy = RetryPolicy::default();
    let b = opened_breaker();
    let mut call = Call::with_seed(&policy, 1).breaker(&b);
    call.begin_attempt(at(100)).unwrap().succeed(at(101));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn a_dropped_attempt_gives_its_probe_slot_back_and_counts_nothing() {
    static METRICS: Metrics = Metrics::new();
    let policy = RetryPolicy::builder().metrics(&METRICS).build().unwrap();
    let b = opened_breaker();
    let mut call = Call::with_seed(&policy, 1).breaker(&b);
    {
        let _probe = call.begin_attempt(at(100)).unwrap();
        assert!(b.try_acquire(at(100)).is_err(), "one probe at a time");
    }
    assert!(!call.is_attempting());
    assert_eq!(call.attempts(), 0);
    assert_eq!(METRICS.snapshot().attempts(), 0);
    // The call itself, dropped mid-attempt, gives it back too.
    let mut other = Call::with_seed(&policy, 2).breaker(&b);
    other.start_attempt(at(100)).unwrap();
    assert!(b.try_acquire(at(100)).is_err());
    drop(other);
    assert!(b.try_acquire(at(100)).is_ok());
}

#[test]
fn a_sleep_that_overshot_the_deadline_gives_up_before_the_attempt_and_counts_it() {
    static METRICS: Metrics = Metrics::new();
    let policy = RetryPolicy::builder()
        .deadline(MS * 1000)
        .metrics(&METRICS)
        .build()
        .unwrap();
    let b = breaker();
    let mut call = Call::with_seed(&policy, 1).breaker(&b);
    let attempt = call.begin_attempt(at(0)).unwrap();
    let Decision::Retry { after } = attempt.fail(&Failure::overloaded(), at(10)) else {
        panic!("a retry fits in the deadline");
    };
    assert!(after < MS * 990);
    // The caller slept far longer than `after`: the deadline passed.
    assert_eq!(
        call.begin_attempt(at(1000)).err(),
        Some(Decision::GiveUp(GiveUp::DeadlineExceeded))
    );
    let m = METRICS.snapshot();
    assert_eq!(m.give_ups().get(GiveUp::DeadlineExceeded), 1);
    assert_eq!(m.give_ups().total(), 1);
    assert_eq!((m.attempts(), m.retries()), (1, 1));
    // No permit was taken for the attempt that never ran.
    assert_eq!(b.state(), BreakerState::Open); // opened by the failure
    assert!(call.is_over());
    // Over: asking again answers the same and counts nothing more.
    assert_eq!(
        call.begin_attempt(at(1001)).err(),
        Some(Decision::GiveUp(GiveUp::DeadlineExceeded))
    );
    assert_eq!(
        METRICS.snapshot().give_ups().get(GiveUp::DeadlineExceeded),
        1
    );
}

#[test]
fn an_attempt_that_begins_just_before_the_deadline_runs() {
    let policy = RetryPolicy::builder().deadline(MS * 1000).build().unwrap();
    let mut call = Call::with_seed(&policy, 1);
    call.start_attempt(at(0)).unwrap();
    let _ = call.fail(&Failure::transient(), at(1));
    assert!(call.begin_attempt(at(999)).is_ok());
}

#[test]
fn a_refusal_by_the_breaker_gives_up_and_counts_it() {
    static METRICS: Metrics = Metrics::new();
    let policy = RetryPolicy::builder().metrics(&METRICS).build().unwrap();
    let b = opened_breaker();
    let mut call = Call::with_seed(&policy, 1).breaker(&b);
    assert_eq!(
        call.begin_attempt(at(40)).err(),
        Some(Decision::GiveUp(GiveUp::CircuitOpen))
    );
    assert_eq!(call.refusal().map(|o| o.retry_in), Some(MS * 60));
    assert_eq!(call.attempts(), 0);
    let m = METRICS.snapshot();
    assert_eq!(m.give_ups().get(GiveUp::CircuitOpen), 1);
    assert_eq!(m.attempts(), 0);
}

#[test]
fn the_deadline_counts_from_the_first_attempt() {
    let policy = RetryPolicy::builder().deadline(MS * 500).build().unwrap();
    let mut call = Call::with_seed(&policy, 1);
    assert_eq!(call.deadline(), None);
    call.start_attempt(at(1000)).unwrap();
    assert_eq!(call.deadline(), Some(at(1500)));
    assert_eq!(call.time_left(at(1200)), Some(MS * 300));
}

#[test]
fn a_success_ends_the_call_and_pays_the_budget() {
    let policy = RetryPolicy::default();
    let throttle = Throttle::new(10, 0.5).unwrap();
    let mut call = Call::with_seed(&policy, 1).budget(&throttle);
    let _ = call
        .begin_attempt(at(0))
        .unwrap()
        .fail(&Failure::transient(), at(1));
    assert_eq!(throttle.tokens_milli(), 9_000);
    call.begin_attempt(at(5)).unwrap().succeed(at(6));
    assert_eq!(throttle.tokens_milli(), 9_500);
    assert!(call.is_over());
    assert_eq!(
        call.begin_attempt(at(7)).err(),
        Some(Decision::GiveUp(GiveUp::NotRetryable))
    );
    call.succeed(at(8)); // over: ignored
    assert_eq!(throttle.tokens_milli(), 9_500);
    assert_eq!(call.attempts(), 2);
}

#[test]
fn needs_clock_only_for_a_deadline_a_timed_budget_or_a_breaker() {
    let plain = RetryPolicy::default();
    let timed = RetryPolicy::builder().deadline(MS * 10).build().unwrap();
    let throttle = Throttle::new(10, 0.1).unwrap();
    let ratio = stormguard::RetryBudget::default();
    let b = breaker();
    assert!(!Call::with_seed(&plain, 1).needs_clock());
    assert!(!Call::with_seed(&plain, 1).budget(&throttle).needs_clock());
    assert!(!Call::with_seed(&plain, 1).budget(NoBudget).needs_clock());
    assert!(Call::with_seed(&timed, 1).needs_clock());
    assert!(Call::with_seed(&plain, 1).budget(&ratio).needs_clock());
    assert!(Call::with_seed(&plain, 1).breaker(&b).needs_clock());
}

#[derive(Clone, Debug)]
enum Event {
    Begin(u64),
    Succeed(u64),
    Fail(u8, u8, u64),
    Cancel,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0u64..50).prop_map(Event::Begin),
        (0u64..50).prop_map(Event::Succeed),
        (0u8..4, 0u8..3, 0u64..50).prop_map(|(c, r, t)| Event::Fail(c, r, t)),
        Just(Event::Cancel),
    ]
}

proptest! {
    /// Whatever the order of events — out of order, repeated, after the
    /// end — a call never panics, never holds more than one permit, counts
    /// exactly one attempt per outcome it accepted, and ends at most once.
    #[test]
    fn any_schedule_of_events_keeps_the_books(events in proptest::collection::vec(event(), 0..40), seed in any::<u64>()) {
        static METRICS: Metrics = Metrics::new();
        let before = METRICS.snapshot();
        let policy = RetryPolicy::builder()
            .max_attempts(4)
            .deadline(MS * 1000)
            .metrics(&METRICS)
            .build()
            .unwrap();
        let b = CircuitBreaker::builder().failure_threshold(2).recovery_timeout(MS * 20).build().unwrap();
        let mut call = Call::with_seed(&policy, seed).breaker(&b);
        let (mut now, mut outcomes, mut give_ups) = (0u64, 0u32, 0u32);
        let classes = [FailureClass::Transient, FailureClass::Timeout, FailureClass::Overloaded, FailureClass::Permanent];
        let replays = [Replay::NotSent, Replay::Rejected, Replay::Unknown];
        for e in events {
            let was_over = call.is_over();
            match e {
                Event::Begin(dt) => {
                    now += dt;
                    if let Err(Decision::GiveUp(_)) = call.start_attempt(at(now)) {
                        if !was_over { give_ups += 1; }
                    }
                }
                Event::Succeed(dt) => {
                    now += dt;
                    call.succeed(at(now));
                    if !was_over { outcomes += 1; }
                }
                Event::Fail(c, r, dt) => {
                    now += dt;
                    let f = Failure::new(classes[c as usize], replays[r as usize]);
                    let d = call.fail(&f, at(now));
                    if !was_over {
                        outcomes += 1;
                        if matches!(d, Decision::GiveUp(_)) { give_ups += 1; }
                    }
                }
                Event::Cancel => call.cancel_attempt(),
            }
            prop_assert!(give_ups <= 1, "a call ends once");
        }
        let held = call.is_attempting();
        drop(call);
        // Every permit went back (or to a verdict): a fresh caller is let
        // through as soon as the breaker's own state allows it.
        let later = at(now + 10_000);
        prop_assert!(b.try_acquire(later).is_ok(), "held={held}");
        let after = METRICS.snapshot();
        prop_assert_eq!(after.attempts() - before.attempts(), u64::from(outcomes));
        prop_assert_eq!(after.give_ups().total() - before.give_ups().total(), u64::from(give_ups));
    }
}

mod adaptive_throttle {
    use super::*;
    use stormguard::AdaptiveThrottle;

    #[test]
    fn a_locally_rejected_attempt_ends_the_call_and_gives_the_permit_back() {
        static METRICS: Metrics = Metrics::new();
        let policy = RetryPolicy::builder().metrics(&METRICS).build().unwrap();
        let throttle = AdaptiveThrottle::builder().min_requests(1).build().unwrap();
        // The backend refused 1000 requests: p = 1000/1001.
        for _ in 0..1000 {
            let _ = throttle.admit(at(0), u32::MAX);
        }
        let b = opened_breaker();
        // Seeds whose first draw falls under p are rejected; most are.
        let mut rejected = 0;
        for seed in 0..200 {
            let mut call = Call::with_seed(&policy, seed)
                .breaker(&b)
                .throttle(&throttle);
            let outcome = call.begin_attempt(at(100)).map(|attempt| attempt.cancel());
            if let Err(decision) = outcome {
                assert_eq!(decision, Decision::GiveUp(GiveUp::ClientThrottled));
                rejected += 1;
                // The half-open probe slot was given back.
                let probe = b.try_acquire(at(100)).expect("the probe slot is free");
                drop(probe);
            }
        }
        assert!(rejected >= 190, "{rejected} of 200");
        let m = METRICS.snapshot();
        assert_eq!(m.give_ups().get(GiveUp::ClientThrottled), rejected);
        assert_eq!(m.attempts(), 0);
    }

    #[test]
    fn what_counts_as_accepted_by_the_backend() {
        let policy = RetryPolicy::builder().max_attempts(1).build().unwrap();
        let accepted = |f: Option<Failure>| {
            let throttle = AdaptiveThrottle::sre();
            let mut call = Call::with_seed(&policy, 1).throttle(&throttle);
            let attempt = call.begin_attempt(at(0)).unwrap();
            match f {
                None => attempt.succeed(at(1)),
                Some(f) => {
                    let _ = attempt.fail(&f, at(1));
                }
            }
            let (requests, accepts) = throttle.totals(at(1));
            assert_eq!(requests, 1, "the attempt was counted as a request");
            accepts == 1
        };
        assert!(accepted(None), "a success");
        assert!(
            accepted(Some(Failure::permanent())),
            "a 404: the server answered"
        );
        assert!(accepted(Some(Failure::transient())), "a 500 it answered");
        assert!(
            !accepted(Some(Failure::overloaded())),
            "a 503: shedding load"
        );
        assert!(!accepted(Some(Failure::timeout())), "no answer in time");
        assert!(!accepted(Some(
            Failure::transient().with_replay(Replay::NotSent)
        )));
        assert!(!accepted(Some(
            Failure::transient().with_replay(Replay::Rejected)
        )));
    }

    #[test]
    fn a_healthy_backend_is_never_throttled() {
        let policy = RetryPolicy::default();
        let throttle = AdaptiveThrottle::sre();
        for seed in 0..1000 {
            let mut call = Call::with_seed(&policy, seed).throttle(&throttle);
            call.begin_attempt(at(seed))
                .expect("admitted")
                .succeed(at(seed));
        }
        assert_eq!(throttle.reject_probability(at(1000)), 0.0);
    }
}

// --- what the review by mutation testing found untested outside doc tests ---

mod found_by_mutation_testing {
    use super::*;
    use stormguard::AdaptiveThrottle;

    /// A throttle that rejects nearly every request: the backend refused
    /// 1000 of them (p = 1000/1001).
    fn saturated() -> AdaptiveThrottle {
        let throttle = AdaptiveThrottle::builder().min_requests(1).build().unwrap();
        for _ in 0..1000 {
            let _ = throttle.admit(at(0), u32::MAX);
        }
        throttle
    }

    #[test]
    fn a_throttle_chosen_at_run_time_is_asked_and_none_is_not() {
        let policy = RetryPolicy::default();
        let throttle = saturated();
        let rejected = |chosen: Option<&AdaptiveThrottle>| {
            (0..100)
                .filter(|&seed| {
                    Call::with_seed(&policy, seed)
                        .throttle(chosen)
                        .begin_attempt(at(1))
                        .map(|attempt| attempt.cancel())
                        .is_err()
                })
                .count()
        };
        assert!(rejected(Some(&throttle)) >= 95);
        assert_eq!(rejected(None), 0);
    }

    #[test]
    fn another_breaker_for_a_call_mid_attempt_gives_the_old_permit_back() {
        let policy = RetryPolicy::default();
        let old = opened_breaker(); // half-open from 100 ms: one probe
        let new = CircuitBreaker::default();
        let mut call = Call::with_seed(&policy, 1).breaker(&old);
        call.start_attempt(at(100)).expect("the probe");
        assert!(old.try_acquire(at(100)).is_err(), "the probe slot is taken");
        let mut call = call.breaker(&new);
        assert!(
            !call.is_attempting(),
            "the attempt ended with the old breaker"
        );
        drop(
            old.try_acquire(at(100))
                .expect("the old probe slot is free again"),
        );
        call.start_attempt(at(100))
            .expect("the new breaker is closed");
    }

    #[test]
    fn is_attempting_follows_the_attempt() {
        let policy = RetryPolicy::default();
        let mut call = Call::with_seed(&policy, 1);
        assert!(!call.is_attempting());
        call.start_attempt(at(0)).unwrap();
        assert!(call.is_attempting());
        let _ = call.fail(&Failure::transient(), at(1));
        assert!(!call.is_attempting());
        call.start_attempt(at(500)).unwrap();
        assert!(call.is_attempting());
        call.succeed(at(501));
        assert!(!call.is_attempting());
    }

    #[test]
    fn next_backoff_is_the_wait_a_failure_then_gets() {
        let policy = RetryPolicy::builder()
            .max_attempts(5)
            .backoff(stormguard::Backoff::exponential(MS * 100, 2.0))
            .build()
            .unwrap();
        for seed in 0..20 {
            let mut call = Call::with_seed(&policy, seed);
            for attempt in 0..4u64 {
                call.start_attempt(at(attempt * 10_000)).unwrap();
                let forecast = call.next_backoff();
                assert!(forecast <= MS * (100 << attempt), "{forecast:?}");
                assert_eq!(
                    call.fail(&Failure::transient(), at(attempt * 10_000 + 1)),
                    Decision::Retry { after: forecast }
                );
            }
        }
    }

    #[test]
    fn an_attempt_knows_its_number_and_whether_it_is_the_probe() {
        let policy = RetryPolicy::default();
        let b = opened_breaker(); // half-open from 100 ms
        let mut call = Call::with_seed(&policy, 1).breaker(&b);
        let first = call.begin_attempt(at(100)).unwrap();
        assert_eq!(first.number(), 1);
        assert!(first.is_probe(), "the half-open breaker's one probe");
        let _ = first.fail(&Failure::transient(), at(101));
        // The failed probe reopened the breaker; at 300 ms it half-opens again.
        let second = call.begin_attempt(at(300)).unwrap();
        assert_eq!(second.number(), 2);
        assert!(second.is_probe());
        second.succeed(at(301));
        let closed = CircuitBreaker::default();
        let mut call = Call::with_seed(&policy, 1).breaker(&closed);
        let attempt = call.begin_attempt(at(0)).unwrap();
        assert!(
            !attempt.is_probe(),
            "a closed breaker's attempt is no probe"
        );
        assert_eq!(attempt.number(), 1);
    }

    #[test]
    fn an_attempt_knows_the_time_left_and_shows_itself() {
        let policy = RetryPolicy::builder().deadline(MS * 1000).build().unwrap();
        let mut call = Call::with_seed(&policy, 1);
        let attempt = call.begin_attempt(at(200)).unwrap();
        // The deadline counts from the first attempt.
        assert_eq!(attempt.time_left(at(450)), Some(MS * 750));
        assert_eq!(attempt.time_left(at(5000)), Some(Duration::ZERO));
        assert_eq!(
            format!("{attempt:?}"),
            "Attempt { number: 1, probe: false }"
        );
        let unbounded = RetryPolicy::default();
        let mut call = Call::with_seed(&unbounded, 1);
        assert_eq!(call.begin_attempt(at(0)).unwrap().time_left(at(1)), None);
    }

    /// A call whose adaptive throttle draws a random number before every
    /// attempt gets its seed before the first attempt, not at the first
    /// failure: different seeds then draw differently, and about half of
    /// the calls are rejected at p = 1/2 (every call drawing one fixed
    /// number would reject all or none). Through the blocking driver, which
    /// seeds a call lazily.
    #[test]
    fn the_driver_seeds_a_call_with_an_adaptive_throttle_before_its_first_attempt() {
        use stormguard::driver::{BlockingRetryExt, Clock};

        struct Zero;
        impl Clock for Zero {
            fn now(&self) -> Instant {
                Instant::ZERO
            }
        }

        let throttle = AdaptiveThrottle::builder().min_requests(1).build().unwrap();
        // 20 000 requests, 5 000 accepted: p = (20 000 - 2 x 5 000) / 20 001.
        for i in 0..20_000u32 {
            let _ = throttle.admit(Instant::ZERO, u32::MAX);
            if i % 4 == 0 {
                throttle.on_accept(Instant::ZERO);
            }
        }
        let p = throttle.reject_probability(Instant::ZERO);
        assert!((0.45..0.55).contains(&p), "{p}");
        let policy = RetryPolicy::builder().max_attempts(1).build().unwrap();
        let rejected = (0..200u64)
            .filter(|&seed| {
                (|| Ok::<u32, u16>(1))
                    .retry(&policy)
                    .sleeper(|_: Duration| {})
                    .clock(Zero)
                    .throttle(&throttle)
                    .seed(seed)
                    .call()
                    .is_err()
            })
            .count();
        assert!((40..160).contains(&rejected), "{rejected} of 200 rejected");
    }

    #[test]
    fn a_call_shows_its_attempts_phase_and_breaker() {
        let policy = RetryPolicy::default();
        let b = breaker();
        let mut call = Call::with_seed(&policy, 1).breaker(&b);
        call.start_attempt(at(0)).unwrap();
        let shown = format!("{call:?}");
        assert!(shown.starts_with("Call { attempts: 0, phase: "), "{shown}");
        assert!(shown.contains("breaker: true"), "{shown}");
    }
}
