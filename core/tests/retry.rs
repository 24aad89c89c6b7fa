//! The per-call state machine: every gate, in its order of precedence, on a
//! fake clock.

use core::cell::RefCell;
use core::time::Duration;

use proptest::prelude::*;
use stormguard::{
    Backoff, Budget, Decision, DecisionOrder, Failure, FailureClass, GiveUp, Idempotency, Instant,
    Jitter, NoBudget, Replay, Retry, RetryAfter, RetryPolicy, Withdrawal,
};

const MS: Duration = Duration::from_millis(1);

fn fixed(ms: u64) -> stormguard::BackoffBuilder {
    Backoff::exponential(MS * ms as u32, 2.0)
        .max_delay(Duration::from_secs(60))
        .jitter(Jitter::None)
}

fn policy() -> stormguard::RetryPolicyBuilder {
    RetryPolicy::builder().max_attempts(5).backoff(fixed(100))
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn retry(after_ms: u64) -> Decision {
    Decision::Retry {
        after: MS * after_ms as u32,
    }
}

fn give_up(reason: GiveUp) -> Decision {
    Decision::GiveUp(reason)
}

/// A budget that records every call made to it and refuses on demand.
#[derive(Default)]
struct Recorder {
    log: RefCell<Vec<&'static str>>,
    refuse: bool,
}

impl Budget for Recorder {
    fn on_request(&self, _: Instant) {
        self.log.borrow_mut().push("request");
    }
    fn on_failure(&self, _: &Failure, _: Instant) {
        self.log.borrow_mut().push("failure");
    }
    fn try_retry(&self, _: &Failure, _: Instant) -> Option<Withdrawal> {
        self.log.borrow_mut().push("try_retry");
        (!self.refuse).then_some(Withdrawal::new(5))
    }
    fn on_success(&self, last: Option<Withdrawal>, _: Instant) {
        self.log.borrow_mut().push(if last.is_some() {
            "success+refund"
        } else {
            "success"
        });
    }
}

#[test]
fn exponential_schedule_then_attempts_exhausted() {
    let p = policy().build().unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    let f = Failure::transient();
    let decisions: Vec<_> = (0..5)
        .map(|_| call.on_failure(&f, at(0), &NoBudget))
        .collect();
    assert_eq!(
        decisions,
        [
            retry(100),
            retry(200),
            retry(400),
            retry(800),
            give_up(GiveUp::AttemptsExhausted)
        ]
    );
    assert_eq!(call.attempts(), 5);
}

#[test]
fn one_attempt_means_never_retry() {
    let p = policy().max_attempts(1).build().unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    assert_eq!(
        call.on_failure(&Failure::transient(), at(0), &NoBudget),
        give_up(GiveUp::AttemptsExhausted)
    );
}

#[test]
fn precedence_follows_the_documented_order() {
    // Each row makes every gate from its own downward fail, and checks that
    // the first one in the order is the one reported.
    let p = policy()
        .max_attempts(1)
        .deadline(Duration::from_millis(50))
        .idempotency(Idempotency::NonIdempotent)
        .build()
        .unwrap();
    let refusing = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    let stop = RetryAfter::Stop;
    let cases = [
        (
            Failure::permanent().with_retry_after(stop),
            GiveUp::NotRetryable,
        ),
        (Failure::transient().already_retried(), GiveUp::NotRetryable),
        (
            Failure::transient().with_retry_after(stop),
            GiveUp::UnsafeToReplay,
        ),
        (
            Failure::transient()
                .with_replay(Replay::Rejected)
                .with_retry_after(stop),
            GiveUp::ServerSaidStop,
        ),
        (
            Failure::transient().with_replay(Replay::NotSent),
            GiveUp::AttemptsExhausted,
        ),
    ];
    for (failure, expected) in cases {
        let mut call = Retry::with_seed(&p, at(0), 1);
        assert_eq!(
            call.on_failure(&failure, at(0), &refusing),
            give_up(expected),
            "{failure:?}"
        );
    }
    // With attempts left, the deadline comes before the budget…
    let p = policy()
        .deadline(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    assert_eq!(
        call.on_failure(&Failure::transient(), at(0), &refusing),
        give_up(GiveUp::DeadlineExceeded)
    );
    // …and the budget is asked last.
    let p = policy().build().unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    assert_eq!(
        call.on_failure(&Failure::transient(), at(0), &refusing),
        give_up(GiveUp::BudgetExhausted)
    );
}

#[test]
fn idempotency_gate() {
    let p = policy()
        .idempotency(Idempotency::NonIdempotent)
        .build()
        .unwrap();
    for (replay, allowed) in [
        (Replay::NotSent, true),
        (Replay::Rejected, true),
        (Replay::Unknown, false),
    ] {
        let mut call = Retry::with_seed(&p, at(0), 1);
        let d = call.on_failure(&Failure::timeout().with_replay(replay), at(0), &NoBudget);
        assert_eq!(matches!(d, Decision::Retry { .. }), allowed, "{replay:?}");
        if !allowed {
            assert_eq!(d, give_up(GiveUp::UnsafeToReplay));
        }
    }
    for method in [Idempotency::Idempotent, Idempotency::Keyed] {
        let mut call = Retry::with_seed(&p, at(0), 1).with_idempotency(method);
        assert_eq!(
            call.on_failure(&Failure::timeout(), at(0), &NoBudget),
            retry(100)
        );
    }
}

#[test]
fn per_class_limits() {
    let p = policy()
        .max_attempts(10)
        .max_attempts_for(FailureClass::Timeout, 5)
        .max_attempts_for(FailureClass::Overloaded, 3)
        .build()
        .unwrap();
    let count_retries = |f: Failure| {
        let mut call = Retry::with_seed(&p, at(0), 1);
        let mut n = 0;
        while let Decision::Retry { .. } = call.on_failure(&f, at(0), &NoBudget) {
            n += 1;
        }
        n + 1
    };
    assert_eq!(count_retries(Failure::timeout()), 5);
    assert_eq!(count_retries(Failure::overloaded()), 3);
    assert_eq!(count_retries(Failure::transient()), 10);

    // Classes are counted separately: two overloads, then timeouts.
    let mut call = Retry::with_seed(&p, at(0), 1);
    let mut attempts = 0;
    for f in [Failure::overloaded(), Failure::overloaded()]
        .into_iter()
        .chain([Failure::timeout(); 10])
    {
        attempts += 1;
        if let Decision::GiveUp(reason) = call.on_failure(&f, at(0), &NoBudget) {
            assert_eq!(reason, GiveUp::AttemptsExhausted);
            break;
        }
    }
    assert_eq!(attempts, 7);
}

#[test]
fn server_delay_replaces_backoff_is_capped_and_restarts_the_sequence() {
    let p = policy()
        .max_attempts(10)
        .max_server_delay(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    let f = Failure::overloaded();
    let hint = |s: u64| f.with_retry_after(RetryAfter::Delay(Duration::from_secs(s)));
    assert_eq!(call.on_failure(&f, at(0), &NoBudget), retry(100));
    assert_eq!(call.on_failure(&f, at(0), &NoBudget), retry(200));
    assert_eq!(call.on_failure(&hint(1), at(0), &NoBudget), retry(1000));
    assert_eq!(
        call.on_failure(&f, at(0), &NoBudget),
        retry(100),
        "restarted"
    );
    assert_eq!(
        call.on_failure(&hint(365 * 86_400), at(0), &NoBudget),
        retry(2000),
        "capped"
    );
    assert_eq!(call.attempts(), 5, "server delays count as attempts");
}

#[test]
fn server_delay_passes_the_same_gates() {
    let hint = Failure::overloaded().with_retry_after(RetryAfter::Delay(Duration::from_secs(1)));
    // Attempts.
    let p = policy().max_attempts(1).build().unwrap();
    assert_eq!(
        Retry::with_seed(&p, at(0), 1).on_failure(&hint, at(0), &NoBudget),
        give_up(GiveUp::AttemptsExhausted)
    );
    // Deadline: the hinted delay would cross it.
    let p = policy()
        .deadline(Duration::from_millis(900))
        .build()
        .unwrap();
    assert_eq!(
        Retry::with_seed(&p, at(0), 1).on_failure(&hint, at(0), &NoBudget),
        give_up(GiveUp::DeadlineExceeded)
    );
    // Budget.
    let p = policy().build().unwrap();
    let refusing = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    assert_eq!(
        Retry::with_seed(&p, at(0), 1).on_failure(&hint, at(0), &refusing),
        give_up(GiveUp::BudgetExhausted)
    );
}

#[test]
fn deadline_gives_up_before_sleeping_into_it() {
    let p = policy()
        .max_attempts(100)
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    // 100 ms → at 100; 200 → at 300; 400 → at 700; 800 would end at 1500.
    let mut now = at(0);
    let mut waits = vec![];
    loop {
        match call.on_failure(&Failure::transient(), now, &NoBudget) {
            Decision::Retry { after } => {
                waits.push(after.as_millis());
                now += after;
            }
            Decision::GiveUp(reason) => {
                assert_eq!(reason, GiveUp::DeadlineExceeded);
                break;
            }
        }
    }
    assert_eq!(waits, [100, 200, 400]);
    assert_eq!(
        now,
        at(700),
        "gave up at once, without sleeping toward the deadline"
    );
    // A retry that would start exactly at the deadline is refused too.
    let p = policy()
        .deadline(Duration::from_millis(100))
        .build()
        .unwrap();
    assert_eq!(
        Retry::with_seed(&p, at(0), 1).on_failure(&Failure::transient(), at(0), &NoBudget),
        give_up(GiveUp::DeadlineExceeded)
    );
}

#[test]
fn clock_going_backwards_is_harmless() {
    let p = policy().deadline(Duration::from_secs(10)).build().unwrap();
    let mut call = Retry::with_seed(&p, at(5_000), 1);
    // `now` far before the start: the wait is still just the backoff.
    assert_eq!(
        call.on_failure(&Failure::transient(), at(0), &NoBudget),
        retry(100)
    );
    assert_eq!(call.time_left(at(0)), Some(Duration::from_secs(15)));
    // A start near the end of time saturates instead of overflowing: a
    // deadline past the end of time is no deadline.
    let mut late = Retry::with_seed(&p, Instant::MAX, 1);
    assert_eq!(late.deadline(), None);
    assert_eq!(
        late.on_failure(&Failure::transient(), Instant::MAX, &NoBudget),
        retry(100)
    );
    // A deadline just before the end of time still holds.
    let almost = Instant::MAX - Duration::from_secs(11);
    let mut call = Retry::with_seed(&p, almost, 1);
    assert_eq!(
        call.on_failure(&Failure::transient(), Instant::MAX, &NoBudget),
        give_up(GiveUp::DeadlineExceeded)
    );
    // Without a deadline, even Instant::MAX retries normally.
    let p = policy().build().unwrap();
    let mut call = Retry::with_seed(&p, Instant::MAX, 1);
    assert_eq!(
        call.on_failure(&Failure::transient(), Instant::MAX, &NoBudget),
        retry(100)
    );
}

#[test]
fn budget_hooks_are_called_in_order() {
    let p = policy().build().unwrap();
    let budget = Recorder::default();
    let mut call = Retry::with_seed(&p, at(0), 1);
    let _ = call.on_failure(&Failure::transient(), at(0), &budget);
    call.on_success(at(1), &budget);
    assert_eq!(
        *budget.log.borrow(),
        ["request", "failure", "try_retry", "success+refund"]
    );

    // A first-try success: one request, no refund.
    let budget = Recorder::default();
    Retry::with_seed(&p, at(0), 1).on_success(at(0), &budget);
    assert_eq!(*budget.log.borrow(), ["request", "success"]);

    // A non-retryable failure does not count; attempts exhausted still counts.
    let budget = Recorder::default();
    let _ = Retry::with_seed(&p, at(0), 1).on_failure(&Failure::permanent(), at(0), &budget);
    assert_eq!(*budget.log.borrow(), ["request"]);
    let one = policy().max_attempts(1).build().unwrap();
    let budget = Recorder::default();
    let _ = Retry::with_seed(&one, at(0), 1).on_failure(&Failure::transient(), at(0), &budget);
    assert_eq!(*budget.log.borrow(), ["request", "failure"]);
}

#[test]
fn grpc_order_counts_a_server_stop_even_on_a_non_retryable_code() {
    let stop = Failure::permanent().with_retry_after(RetryAfter::Stop);
    let standard = policy().build().unwrap();
    let grpc = policy()
        .decision_order(DecisionOrder::Grpc)
        .build()
        .unwrap();

    let budget = Recorder::default();
    let d = Retry::with_seed(&standard, at(0), 1).on_failure(&stop, at(0), &budget);
    assert_eq!(
        (d, budget.log.borrow().len()),
        (give_up(GiveUp::NotRetryable), 1)
    );

    let budget = Recorder::default();
    let d = Retry::with_seed(&grpc, at(0), 1).on_failure(&stop, at(0), &budget);
    assert_eq!(d, give_up(GiveUp::ServerSaidStop));
    assert_eq!(*budget.log.borrow(), ["request", "failure"]);
}

#[test]
fn grpc_preset_backoff_and_attempt_cap() {
    let p = RetryPolicy::grpc(10, Duration::from_millis(100), Duration::from_secs(1), 2.0).unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    let mut waits = vec![];
    while let Decision::Retry { after } = call.on_failure(&Failure::transient(), at(0), &NoBudget) {
        waits.push(after);
    }
    assert_eq!(call.attempts(), 5, "maxAttempts above 5 is treated as 5");
    for (k, wait) in waits.iter().enumerate() {
        let nominal = (100.0 * 2f64.powi(k as i32)).min(1000.0);
        let ms = wait.as_secs_f64() * 1000.0;
        assert!(
            ms >= nominal * 0.8 - 1e-6 && ms <= (nominal * 1.2).min(1000.0) + 1e-6,
            "{k}: {ms}"
        );
    }
}

#[test]
fn retry_stays_small() {
    assert!(
        core::mem::size_of::<Retry>() <= 48,
        "{}",
        core::mem::size_of::<Retry>()
    );
}

fn any_failure() -> impl Strategy<Value = Failure> {
    let class = prop::sample::select(FailureClass::ALL.to_vec());
    let replay = prop::sample::select(vec![Replay::NotSent, Replay::Rejected, Replay::Unknown]);
    let hint = prop_oneof![
        Just(None),
        Just(Some(RetryAfter::Stop)),
        any::<u64>().prop_map(|s| Some(RetryAfter::Delay(Duration::from_nanos(s)))),
        any::<u64>().prop_map(|s| Some(RetryAfter::Delay(Duration::new(s, 0)))),
    ];
    (class, replay, hint, any::<bool>()).prop_map(|(c, r, h, marked)| {
        let f = Failure::new(c, r);
        let f = match h {
            Some(h) => f.with_retry_after(h),
            None => f,
        };
        if marked {
            f.already_retried()
        } else {
            f
        }
    })
}

proptest! {
    /// Whatever the failures and clock readings, no panic, every wait is
    /// bounded by the backoff cap or the server-delay cap, a retry never
    /// starts at or past the deadline, and attempts never exceed the limit.
    #[test]
    fn decisions_are_bounded(
        failures in prop::collection::vec((any_failure(), any::<u64>()), 1..40),
        start in any::<u64>(),
        max_attempts in 1u32..20,
        deadline_ms in prop::option::of(1u64..100_000),
        seed in any::<u64>(),
        jitter in prop::sample::select(vec![Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated, Jitter::GRPC]),
        grpc in any::<bool>(),
    ) {
        let mut b = RetryPolicy::builder()
            .max_attempts(max_attempts)
            .backoff(Backoff::exponential(Duration::from_millis(10), 3.0).max_delay(Duration::from_secs(5)).jitter(jitter))
            .max_server_delay(Duration::from_secs(30));
        if let Some(ms) = deadline_ms {
            b = b.deadline(Duration::from_millis(ms));
        }
        if grpc {
            b = b.decision_order(DecisionOrder::Grpc);
        }
        let p = b.build().unwrap();
        let mut call = Retry::with_seed(&p, Instant::from_nanos(start), seed);
        let (mut retries, mut transparent, mut rejected_used) = (0u32, 0u32, false);
        for (failure, now) in failures {
            let now = Instant::from_nanos(now);
            if let Decision::Retry { after } = call.on_failure(&failure, now, &NoBudget) {
                // gRPC A6's transparent retries do not count against the limit.
                let server_stop = failure.retry_after() == Some(RetryAfter::Stop);
                if grpc && !server_stop {
                    match failure.replay() {
                        Replay::NotSent => transparent += 1,
                        Replay::Rejected if !rejected_used => {
                            rejected_used = true;
                            transparent += 1;
                        }
                        _ => retries += 1,
                    }
                } else {
                    retries += 1;
                }
                prop_assert!(after <= Duration::from_secs(30));
                if failure.retry_after().is_none() {
                    prop_assert!(after <= Duration::from_secs(5));
                }
                if let Some(deadline) = call.deadline() {
                    prop_assert!(now + after < deadline);
                }
                prop_assert!(failure.class().is_retryable() && !failure.is_already_retried());
            }
        }
        prop_assert!(retries < max_attempts);
        prop_assert!(transparent == 0 || grpc, "transparent retries only under the gRPC order");
    }
}

#[test]
fn metrics_count_attempts_retries_and_give_ups_by_reason() {
    static METRICS: stormguard::Metrics = stormguard::Metrics::new();
    let p = policy().max_attempts(3).metrics(&METRICS).build().unwrap();
    // Two retries, then attempts exhausted.
    let mut call = Retry::with_seed(&p, at(0), 1);
    while let Decision::Retry { .. } = call.on_failure(&Failure::transient(), at(0), &NoBudget) {}
    // One retry, then success.
    let mut call = Retry::with_seed(&p, at(0), 1);
    let _ = call.on_failure(&Failure::transient(), at(0), &NoBudget);
    call.on_success(at(1), &NoBudget);
    // Refused by the budget, unsafe replay.
    let refusing = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    let _ = Retry::with_seed(&p, at(0), 1).on_failure(&Failure::transient(), at(0), &refusing);
    let _ = Retry::with_seed(&p, at(0), 1)
        .with_idempotency(Idempotency::NonIdempotent)
        .on_failure(&Failure::timeout(), at(0), &NoBudget);

    let m = METRICS.snapshot();
    assert_eq!(m.attempts(), 3 + 2 + 1 + 1);
    assert_eq!(m.retries(), 2 + 1);
    assert_eq!(m.successes(), 1);
    let give_ups = m.give_ups();
    assert_eq!(give_ups.get(GiveUp::AttemptsExhausted), 1);
    assert_eq!(give_ups.get(GiveUp::BudgetExhausted), 1);
    assert_eq!(give_ups.get(GiveUp::UnsafeToReplay), 1);
    assert_eq!(give_ups.get(GiveUp::CircuitOpen), 0);
    assert_eq!(give_ups.total(), 3);
}

/// gRPC A6, "Transparent Retries": an RPC that never left the client is
/// retried until the deadline, and one the server library refused before its
/// application saw it is retried once at once — neither counts against
/// `maxAttempts` nor the retry throttle.
mod transparent_retries {
    use super::*;
    use stormguard::Throttle;

    fn grpc(max_attempts: u32) -> RetryPolicy {
        policy()
            .max_attempts(max_attempts)
            .backoff(Backoff::constant(MS * 100).jitter(Jitter::None))
            .decision_order(DecisionOrder::Grpc)
            .deadline(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn not_sent() -> Failure {
        Failure::transient().with_replay(Replay::NotSent)
    }

    fn refused() -> Failure {
        Failure::transient().with_replay(Replay::Rejected)
    }

    #[test]
    fn never_sent_is_retried_without_counting_until_the_deadline() {
        let p = grpc(2);
        let throttle = Throttle::new(10, 0.1).unwrap();
        let mut call = Retry::with_seed(&p, at(0), 1);
        let mut now = at(0);
        for _ in 0..50 {
            match call.on_failure(&not_sent(), now, &throttle) {
                Decision::Retry { after } => now += after,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(throttle.tokens_milli(), 10_000, "no token taken");
        // The one counted retry of maxAttempts = 2 is still there ...
        assert!(matches!(
            call.on_failure(&Failure::transient(), now, &throttle),
            Decision::Retry { .. }
        ));
        assert_eq!(throttle.tokens_milli(), 9_000);
        // ... and then the limit applies.
        assert_eq!(
            call.on_failure(&Failure::transient(), now, &throttle),
            give_up(GiveUp::AttemptsExhausted)
        );
        // The deadline bounds the transparent retries too.
        let mut call = Retry::with_seed(&p, at(0), 1);
        assert_eq!(
            call.on_failure(&not_sent(), at(9_950), &throttle),
            give_up(GiveUp::DeadlineExceeded)
        );
    }

    #[test]
    fn refused_by_the_server_library_is_retried_once_at_once() {
        let p = grpc(2);
        let throttle = Throttle::new(10, 0.1).unwrap();
        let mut call = Retry::with_seed(&p, at(0), 1);
        assert_eq!(call.on_failure(&refused(), at(0), &throttle), retry(0));
        assert_eq!(throttle.tokens_milli(), 10_000);
        // The second refusal goes through the policy: it counts.
        assert_eq!(call.on_failure(&refused(), at(1), &throttle), retry(100));
        assert_eq!(throttle.tokens_milli(), 9_000);
        assert_eq!(
            call.on_failure(&refused(), at(200), &throttle),
            give_up(GiveUp::AttemptsExhausted)
        );
    }

    #[test]
    fn the_standard_order_counts_every_failure() {
        let p = policy().max_attempts(2).build().unwrap();
        let throttle = Throttle::new(10, 0.1).unwrap();
        let mut call = Retry::with_seed(&p, at(0), 1);
        assert_eq!(call.on_failure(&refused(), at(0), &throttle), retry(100));
        assert_eq!(
            call.on_failure(&not_sent(), at(100), &throttle),
            give_up(GiveUp::AttemptsExhausted)
        );
        assert_eq!(throttle.tokens_milli(), 8_000);
    }

    #[test]
    fn a_server_stop_or_a_permanent_code_is_never_transparent() {
        let p = grpc(5);
        let mut call = Retry::with_seed(&p, at(0), 1);
        let stop = not_sent().with_retry_after(RetryAfter::Stop);
        assert_eq!(
            call.on_failure(&stop, at(0), &NoBudget),
            give_up(GiveUp::ServerSaidStop)
        );
        let mut call = Retry::with_seed(&p, at(0), 1);
        let permanent = Failure::permanent().with_replay(Replay::NotSent);
        assert_eq!(
            call.on_failure(&permanent, at(0), &NoBudget),
            give_up(GiveUp::NotRetryable)
        );
    }
}

/// The count of transparent retries saturates (15 bits) without touching
/// the flag of the one immediate retry after a refusal: after 40 000
/// retries of requests that never left the client, a refused one is still
/// retried at once.
#[test]
fn transparent_retries_saturate_without_using_up_the_refusal_retry() {
    let p = RetryPolicy::builder()
        .max_attempts(2)
        .backoff(Backoff::constant(Duration::ZERO))
        .decision_order(DecisionOrder::Grpc)
        .build()
        .unwrap();
    let mut call = Retry::with_seed(&p, at(0), 1);
    let not_sent = Failure::transient().with_replay(Replay::NotSent);
    for _ in 0..40_000 {
        assert!(matches!(
            call.on_failure(&not_sent, at(0), &NoBudget),
            Decision::Retry { .. }
        ));
    }
    let refused = Failure::transient().with_replay(Replay::Rejected);
    assert_eq!(
        call.on_failure(&refused, at(0), &NoBudget),
        Decision::Retry {
            after: Duration::ZERO
        }
    );
    // Past the saturated count, the extra transparent retries count as
    // attempts: the second refusal, an ordinary failure, finds the limit
    // reached (conservative: never more retries than the policy allows).
    assert_eq!(
        call.on_failure(&refused, at(0), &NoBudget),
        Decision::GiveUp(GiveUp::AttemptsExhausted)
    );
}
