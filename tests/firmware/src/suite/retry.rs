//! `Retry`'s decisions through every gate, in the documented order.

use core::time::Duration;

use stormguard::{
    Backoff, Decision, DecisionOrder, Failure, FailureClass, GiveUp, Idempotency, Instant, Jitter,
    NoBudget, Replay, Retry, RetryAfter, RetryPolicy, Throttle,
};

use super::Checks;

const MS: Duration = Duration::from_millis(1);

/// A policy from constant settings.
const fn policy(builder: stormguard::RetryPolicyBuilder) -> RetryPolicy {
    match builder.build() {
        Ok(policy) => policy,
        Err(_) => panic!("invalid policy"),
    }
}

/// Four attempts, 100 ms doubling without jitter, a 1 s deadline.
static POLICY: RetryPolicy = policy(
    RetryPolicy::builder()
        .max_attempts(4)
        .max_attempts_for(FailureClass::Overloaded, 2)
        .backoff(Backoff::exponential(Duration::from_millis(100), 2.0).jitter(Jitter::None))
        .deadline(Duration::from_secs(1))
        .max_server_delay(Duration::from_millis(300)),
);

/// The same with six attempts, for sequences longer than four.
static LONGER: RetryPolicy = policy(
    RetryPolicy::builder()
        .max_attempts(6)
        .backoff(Backoff::exponential(Duration::from_millis(100), 2.0).jitter(Jitter::None))
        .deadline(Duration::from_secs(1))
        .max_server_delay(Duration::from_millis(300)),
);

fn retry_after(ms: u64) -> Decision {
    Decision::Retry {
        after: MS * ms as u32,
    }
}

/// Each gate, alone: not retryable, unsafe to replay, server said stop,
/// attempts (overall and per class), deadline, budget — and a retry.
pub fn every_gate(c: &mut Checks<'_>) {
    let t0 = Instant::from_secs(50);
    let transient = Failure::transient();

    // Three retries at 100, 200, 400 ms, then the fourth attempt is the last.
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    let mut now = t0;
    for expected in [100, 200, 400] {
        let d = call.on_failure(&transient, now, &NoBudget);
        check_eq!(c, d, retry_after(expected));
        now += d.retry_after().unwrap_or_default();
    }
    check_eq!(
        c,
        call.on_failure(&transient, now, &NoBudget),
        Decision::GiveUp(GiveUp::AttemptsExhausted)
    );
    check_eq!(c, call.attempts(), 4);

    // Not retryable: a permanent class, or a failure a lower layer retried.
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    check_eq!(
        c,
        call.on_failure(&Failure::permanent(), t0, &NoBudget),
        Decision::GiveUp(GiveUp::NotRetryable)
    );
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    let nested = GiveUp::AttemptsExhausted.into_failure();
    check!(c, nested.is_already_retried());
    check_eq!(
        c,
        call.on_failure(&nested, t0, &NoBudget),
        Decision::GiveUp(GiveUp::NotRetryable)
    );

    // Unsafe to replay: it may have run and the method is not idempotent —
    // but a request that never left may be sent again.
    let mut charge = Retry::with_seed(&POLICY, t0, 1).with_idempotency(Idempotency::NonIdempotent);
    check_eq!(
        c,
        charge.on_failure(&Failure::timeout(), t0, &NoBudget),
        Decision::GiveUp(GiveUp::UnsafeToReplay)
    );
    let mut charge = Retry::with_seed(&POLICY, t0, 1).with_idempotency(Idempotency::NonIdempotent);
    let refused = Failure::transient().with_replay(Replay::NotSent);
    check_eq!(
        c,
        charge.on_failure(&refused, t0, &NoBudget),
        retry_after(100)
    );
    let mut keyed = Retry::with_seed(&POLICY, t0, 1).with_idempotency(Idempotency::Keyed);
    check_eq!(
        c,
        keyed.on_failure(&Failure::timeout(), t0, &NoBudget),
        retry_after(100)
    );

    // The server said stop.
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    let stop = Failure::overloaded().with_retry_after(RetryAfter::Stop);
    check_eq!(
        c,
        call.on_failure(&stop, t0, &NoBudget),
        Decision::GiveUp(GiveUp::ServerSaidStop)
    );

    // Per class: two attempts for `Overloaded`.
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    let busy = Failure::overloaded();
    check_eq!(c, call.on_failure(&busy, t0, &NoBudget), retry_after(100));
    check_eq!(
        c,
        call.on_failure(&busy, t0, &NoBudget),
        Decision::GiveUp(GiveUp::AttemptsExhausted)
    );

    // The deadline: at 850 ms, a retry after 200 ms would start past 1 s.
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    check_eq!(
        c,
        call.on_failure(&transient, t0, &NoBudget),
        retry_after(100)
    );
    check_eq!(
        c,
        call.on_failure(&transient, t0 + MS * 850, &NoBudget),
        Decision::GiveUp(GiveUp::DeadlineExceeded)
    );
    check_eq!(c, call.time_left(t0 + MS * 850), Some(MS * 150));
    check_eq!(c, call.time_left(t0 + MS * 5000), Some(Duration::ZERO));

    // The budget: gRPC's throttle at half is spent.
    let Ok(throttle) = Throttle::new(4, 0.1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    check_eq!(
        c,
        call.on_failure(&transient, t0, &throttle),
        retry_after(100)
    ); // 3 tokens
    check_eq!(
        c,
        call.on_failure(&transient, t0, &throttle),
        Decision::GiveUp(GiveUp::BudgetExhausted) // 2 tokens: at half
    );
    call.on_success(t0, &throttle);
    check_eq!(c, throttle.tokens_milli(), 2_100);

    // gRPC's order: a server's stop is counted against the budget even
    // for a class that would not be retried.
    let grpc = policy(RetryPolicy::builder().decision_order(DecisionOrder::Grpc));
    let Ok(throttle) = Throttle::new(10, 0.1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let mut call = Retry::with_seed(&grpc, t0, 1);
    let stop = Failure::permanent().with_retry_after(RetryAfter::Stop);
    check_eq!(
        c,
        call.on_failure(&stop, t0, &throttle),
        Decision::GiveUp(GiveUp::ServerSaidStop)
    );
    check_eq!(c, throttle.tokens_milli(), 9_000);
}

/// A server's delay replaces the backoff, is capped by the policy, restarts
/// the exponential sequence (gRPC A6) and passes the same gates.
pub fn server_delay(c: &mut Checks<'_>) {
    let t0 = Instant::ZERO;
    let mut call = Retry::with_seed(&LONGER, t0, 1);
    let transient = Failure::transient();
    check_eq!(
        c,
        call.on_failure(&transient, t0, &NoBudget),
        retry_after(100)
    );
    check_eq!(
        c,
        call.on_failure(&transient, t0, &NoBudget),
        retry_after(200)
    );
    let hint =
        Failure::overloaded().with_retry_after(RetryAfter::Delay(Duration::from_secs(86_400)));
    check_eq!(c, call.on_failure(&hint, t0, &NoBudget), retry_after(300));
    // The sequence restarted: 100 ms again.
    check_eq!(
        c,
        call.on_failure(&transient, t0, &NoBudget),
        retry_after(100)
    );

    // A hint that would end past the deadline gives up at once.
    let mut call = Retry::with_seed(&POLICY, t0, 1);
    let late = Failure::transient().with_retry_after(RetryAfter::Delay(MS * 250));
    check_eq!(
        c,
        call.on_failure(&late, t0 + MS * 800, &NoBudget),
        Decision::GiveUp(GiveUp::DeadlineExceeded)
    );
    // A clock that went backwards: never a longer wait, never a panic.
    let mut call = Retry::with_seed(&POLICY, Instant::from_secs(9), 1);
    check_eq!(
        c,
        call.on_failure(&transient, Instant::ZERO, &NoBudget),
        retry_after(100)
    );
    check_eq!(
        c,
        call.on_failure(&transient, Instant::MAX, &NoBudget),
        Decision::GiveUp(GiveUp::DeadlineExceeded)
    );
}
