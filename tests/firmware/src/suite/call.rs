//! The `Call` lifecycle: the breaker's permit per attempt, what the breaker
//! and the budget are told, the metrics, the decision.

use core::time::Duration;

use stormguard::{
    Backoff, BreakerState, Call, CircuitBreaker, Decision, Failure, GiveUp, Idempotency, Instant,
    Jitter, Metrics, RetryPolicy, Throttle,
};

use super::Checks;

const MS: Duration = Duration::from_millis(1);

/// A client's shared parts, as firmware declares them: `static`s built
/// when the crate compiles.
static METRICS: Metrics = Metrics::new();
static POLICY: RetryPolicy = match RetryPolicy::builder()
    .max_attempts(3)
    .backoff(Backoff::exponential(Duration::from_millis(10), 2.0).jitter(Jitter::None))
    .deadline(Duration::from_secs(2))
    .metrics(&METRICS)
    .build()
{
    Ok(policy) => policy,
    Err(_) => panic!("invalid policy"),
};

/// A call that fails twice and then succeeds, with a throttle and a
/// breaker; then the give-ups a call reaches before any attempt runs.
pub fn lifecycle(c: &mut Checks<'_>) {
    let before = METRICS.snapshot();
    let Ok(throttle) = Throttle::new(10, 0.1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let Ok(breaker) = CircuitBreaker::new(5, Duration::from_secs(1)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let mut call = Call::with_seed(&POLICY, 7)
        .budget(&throttle)
        .breaker(&breaker);
    check!(
        c,
        call.needs_clock(),
        "a breaker and a deadline need the time"
    );
    check_eq!(c, call.deadline(), None);
    let mut now = Instant::from_secs(1);
    let mut waits = [0u128; 2];
    let mut answers = [Err(503u16), Err(503), Ok("body")].into_iter();
    let outcome = loop {
        let attempt = match call.begin_attempt(now) {
            Ok(attempt) => attempt,
            Err(decision) => break Err(decision),
        };
        check!(c, !attempt.is_probe());
        let number = attempt.number();
        now += MS * 20; // the attempt runs
        match answers.next() {
            Some(Ok(body)) => {
                attempt.succeed(now);
                break Ok(body);
            }
            _ => match attempt.fail(&Failure::transient(), now) {
                Decision::Retry { after } => {
                    if let Some(slot) = waits.get_mut(number as usize - 1) {
                        *slot = after.as_millis();
                    }
                    now += after;
                }
                decision => break Err(decision),
            },
        }
    };
    check_eq!(c, outcome, Ok("body"));
    check_eq!(c, waits, [10, 20]);
    check_eq!(c, call.attempts(), 3);
    check!(c, call.is_over());
    check_eq!(c, call.deadline(), Some(Instant::from_secs(3)));
    // Two failures took two tokens, the success earned 0.1 back.
    check_eq!(c, throttle.tokens_milli(), 8_100);
    check_eq!(c, breaker.state(), BreakerState::Closed);
    // After it is over, a call answers the same and counts nothing.
    check_eq!(
        c,
        call.begin_attempt(now).err(),
        Some(Decision::GiveUp(GiveUp::NotRetryable))
    );
    let m = METRICS.snapshot();
    check_eq!(c, m.attempts() - before.attempts(), 3);
    check_eq!(c, m.retries() - before.retries(), 2);
    check_eq!(c, m.successes() - before.successes(), 1);

    // The deadline passed during a sleep: no attempt starts, no permit.
    let mut call = Call::with_seed(&POLICY, 7).breaker(&breaker);
    if let Ok(attempt) = call.begin_attempt(Instant::ZERO) {
        check!(
            c,
            matches!(
                attempt.fail(&Failure::timeout(), Instant::ZERO + MS * 10),
                Decision::Retry { .. }
            )
        );
    }
    check_eq!(
        c,
        call.begin_attempt(Instant::from_secs(5)).err(),
        Some(Decision::GiveUp(GiveUp::DeadlineExceeded))
    );
    let gave_up = METRICS.snapshot().give_ups().get(GiveUp::DeadlineExceeded)
        - before.give_ups().get(GiveUp::DeadlineExceeded);
    check_eq!(c, gave_up, 1);

    // An open breaker: refused before the attempt, with when to come back.
    let Ok(tripped) = CircuitBreaker::new(1, Duration::from_secs(5)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    if let Ok(p) = tripped.try_acquire(Instant::ZERO) {
        p.failure(Instant::ZERO);
    }
    let mut call = Call::with_seed(&POLICY, 7).breaker(&tripped);
    check_eq!(
        c,
        call.begin_attempt(Instant::from_secs(1)).err(),
        Some(Decision::GiveUp(GiveUp::CircuitOpen))
    );
    check_eq!(
        c,
        call.refusal().map(|open| open.retry_in),
        Some(Duration::from_secs(4))
    );
    check_eq!(c, call.attempts(), 0);
}

/// What the breaker is told: a retryable failure counts against it; a
/// permanent one or an unsafe replay gives the permit back; a cancelled
/// attempt frees a probe's slot.
pub fn breaker_rules(c: &mut Checks<'_>) {
    let Ok(breaker) = CircuitBreaker::new(1, Duration::from_secs(1)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let t = Instant::ZERO;
    // A 404 is not the service failing.
    let mut call = Call::with_seed(&POLICY, 1).breaker(&breaker);
    if let Ok(attempt) = call.begin_attempt(t) {
        check_eq!(
            c,
            attempt.fail(&Failure::permanent(), t),
            Decision::GiveUp(GiveUp::NotRetryable)
        );
    }
    check_eq!(c, breaker.state(), BreakerState::Closed);
    // Neither is a replay the call refuses.
    let mut charge = Call::with_seed(&POLICY, 1)
        .breaker(&breaker)
        .with_idempotency(Idempotency::NonIdempotent);
    if let Ok(attempt) = charge.begin_attempt(t) {
        check_eq!(
            c,
            attempt.fail(&Failure::timeout(), t),
            Decision::GiveUp(GiveUp::UnsafeToReplay)
        );
    }
    check_eq!(c, breaker.state(), BreakerState::Closed);
    // A transient failure is: the threshold of one opens it.
    let mut call = Call::with_seed(&POLICY, 1).breaker(&breaker);
    if let Ok(attempt) = call.begin_attempt(t) {
        check!(
            c,
            matches!(
                attempt.fail(&Failure::transient(), t),
                Decision::Retry { .. }
            )
        );
    }
    check_eq!(c, breaker.state(), BreakerState::Open);
    // Half-open: the call's attempt is the probe; dropping the attempt
    // (cancelled) gives the slot back to the next caller.
    let later = Instant::from_secs(1);
    let mut call = Call::with_seed(&POLICY, 1).breaker(&breaker);
    match call.begin_attempt(later) {
        Ok(attempt) => {
            check!(c, attempt.is_probe());
            drop(attempt);
        }
        Err(_) => check!(c, false, "no probe"),
    }
    check!(c, !call.is_attempting() && !call.is_over());
    check_eq!(c, call.attempts(), 0);
    let mut other = Call::with_seed(&POLICY, 2).breaker(&breaker);
    match other.begin_attempt(later) {
        Ok(attempt) => {
            check!(c, attempt.is_probe(), "the freed slot");
            // While it runs, the first call is refused.
            check_eq!(
                c,
                call.begin_attempt(later).err(),
                Some(Decision::GiveUp(GiveUp::CircuitOpen))
            );
            attempt.succeed(later);
        }
        Err(_) => check!(c, false, "the probe's slot was not given back"),
    }
    check_eq!(c, breaker.state(), BreakerState::Closed);
    // A call dropped during its attempt releases the permit too.
    if let Ok(p) = breaker.try_acquire(later) {
        p.failure(later);
    }
    let much_later = Instant::from_secs(3);
    {
        let mut doomed = Call::with_seed(&POLICY, 3).breaker(&breaker);
        check!(c, doomed.start_attempt(much_later).is_ok());
        check!(
            c,
            breaker.try_acquire(much_later).is_err(),
            "the slot is held"
        );
    }
    check!(c, breaker.try_acquire(much_later).is_ok(), "and given back");
}
