//! The circuit breaker's whole cycle, on its 64-bit state word (a critical
//! section per compare-and-swap on the Cortex-M0).

use core::time::Duration;

use stormguard::{BreakerState, CircuitBreaker, Instant, Metrics};

use super::Checks;

const SECOND: Duration = Duration::from_secs(1);

/// Closed → Open after the threshold → refused with the time left →
/// HalfOpen admitting exactly N probes → Closed when all succeed; and
/// HalfOpen → Open again when a probe fails.
pub fn full_cycle(c: &mut Checks<'_>) {
    static METRICS: Metrics = Metrics::new();
    let Ok(breaker) = CircuitBreaker::builder()
        .failure_threshold(3)
        .recovery_timeout(SECOND * 5)
        .half_open_probes(3)
        .metrics(&METRICS)
        .build()
    else {
        check!(c, false, "valid settings refused");
        return;
    };
    let t = Instant::from_secs(100);
    check_eq!(c, breaker.state(), BreakerState::Closed);
    // Two failures, a success (the count restarts), three failures: open.
    for _ in 0..2 {
        if let Ok(p) = breaker.try_acquire(t) {
            p.failure(t);
        }
    }
    if let Ok(p) = breaker.try_acquire(t) {
        p.success(t);
    }
    for _ in 0..2 {
        if let Ok(p) = breaker.try_acquire(t) {
            p.failure(t);
        }
    }
    check_eq!(c, breaker.state(), BreakerState::Closed);
    match breaker.try_acquire(t) {
        Ok(p) => p.failure(t),
        Err(_) => check!(c, false, "refused while closed"),
    }
    check_eq!(c, breaker.state(), BreakerState::Open);
    check_eq!(
        c,
        breaker.try_acquire(t + SECOND).err().map(|o| o.retry_in),
        Some(SECOND * 4)
    );
    check_eq!(
        c,
        breaker
            .try_acquire(t + SECOND * 5 - Duration::from_nanos(1))
            .err()
            .map(|o| o.retry_in),
        Some(Duration::from_nanos(1))
    );

    // Half-open: exactly three probes, however many ask.
    let later = t + SECOND * 5;
    let p1 = breaker.try_acquire(later);
    let p2 = breaker.try_acquire(later);
    let p3 = breaker.try_acquire(later);
    check_eq!(c, breaker.state(), BreakerState::HalfOpen);
    check!(c, p1.as_ref().is_ok_and(|p| p.is_probe()));
    check!(c, p2.is_ok() && p3.is_ok());
    let mut refused = 0;
    for _ in 0..10 {
        if breaker.try_acquire(later).is_err() {
            refused += 1;
        }
    }
    check_eq!(c, refused, 10);
    // Two probes succeed: still half-open; the third closes it.
    if let (Ok(p1), Ok(p2), Ok(p3)) = (p1, p2, p3) {
        p1.success(later);
        p2.success(later);
        check_eq!(c, breaker.state(), BreakerState::HalfOpen);
        check!(c, breaker.try_acquire(later).is_err(), "no fourth probe");
        p3.success(later);
    }
    check_eq!(c, breaker.state(), BreakerState::Closed);
    check!(c, breaker.try_acquire(later).is_ok_and(|p| !p.is_probe()));

    // Open again; this time a probe fails: open, with a fresh timeout.
    for _ in 0..3 {
        if let Ok(p) = breaker.try_acquire(later) {
            p.failure(later);
        }
    }
    check_eq!(c, breaker.state(), BreakerState::Open);
    let again = later + SECOND * 5;
    match breaker.try_acquire(again) {
        Ok(p) => p.failure(again + SECOND),
        Err(_) => check!(c, false, "no probe after the recovery timeout"),
    }
    check_eq!(c, breaker.state(), BreakerState::Open);
    check_eq!(
        c,
        breaker
            .try_acquire(again + SECOND)
            .err()
            .map(|o| o.retry_in),
        Some(SECOND * 5)
    );

    let m = METRICS.snapshot();
    check_eq!(c, m.breaker_opened(), 3);
    check_eq!(c, m.breaker_half_opened(), 2);
    check_eq!(c, m.breaker_closed(), 1);
    check_eq!(c, m.breaker_rejected(), 14);
}

/// A probe dropped without a verdict gives its slot back; a permit from an
/// earlier round changes nothing; a probe that never reports lets a new
/// round start after the probe timeout.
pub fn abandoned_and_stale_permits(c: &mut Checks<'_>) {
    let Ok(breaker) = CircuitBreaker::builder()
        .failure_threshold(1)
        .recovery_timeout(SECOND)
        .probe_timeout(SECOND * 2)
        .build()
    else {
        check!(c, false, "valid settings refused");
        return;
    };
    let t = Instant::ZERO;
    // A slow call admitted while closed…
    let slow = breaker.try_acquire(t);
    if let Ok(p) = breaker.try_acquire(t) {
        p.failure(t);
    }
    check_eq!(c, breaker.state(), BreakerState::Open);
    // …reports success after the breaker opened: fenced out.
    if let Ok(slow) = slow {
        slow.success(t);
    }
    check_eq!(c, breaker.state(), BreakerState::Open);

    let t1 = t + SECOND;
    match breaker.try_acquire(t1) {
        Ok(probe) => drop(probe), // cancelled: the slot comes back
        Err(_) => check!(c, false, "no probe"),
    }
    check_eq!(c, breaker.state(), BreakerState::HalfOpen);
    let lost = breaker.try_acquire(t1).map(|p| p.detach());
    check!(c, lost.is_ok(), "the freed slot is taken again");
    check!(c, breaker.try_acquire(t1).is_err());
    // The probe is lost (never reports); after the probe timeout a new
    // round starts, and the lost probe's late verdict is ignored.
    let t2 = t1 + SECOND * 2;
    let fresh = breaker.try_acquire(t2);
    check!(c, fresh.is_ok(), "a new round after the probe timeout");
    if let Ok(token) = lost {
        breaker.record_failure(token, t2);
    }
    check_eq!(c, breaker.state(), BreakerState::HalfOpen);
    if let Ok(p) = fresh {
        p.success(t2);
    }
    check_eq!(c, breaker.state(), BreakerState::Closed);
    // A clock far behind or at the end of time: no panic, sane answers.
    check!(c, breaker.try_acquire(Instant::ZERO).is_ok());
    check!(c, breaker.try_acquire(Instant::MAX).is_ok());
}

/// The failure-rate rule over a tumbling count window.
pub fn failure_rate(c: &mut Checks<'_>) {
    let Ok(breaker) = CircuitBreaker::builder()
        .failure_threshold(100)
        .failure_rate(0.5, 10, 4)
        .recovery_timeout(SECOND)
        .build()
    else {
        check!(c, false, "valid settings refused");
        return;
    };
    let t = Instant::ZERO;
    // success, failure, success: 1 of 3, below min_calls.
    for ok in [true, false, true] {
        if let Ok(p) = breaker.try_acquire(t) {
            if ok {
                p.success(t)
            } else {
                p.failure(t)
            }
        }
    }
    check_eq!(c, breaker.state(), BreakerState::Closed);
    // A fourth call failing: 2 of 4 = 50 %: open.
    if let Ok(p) = breaker.try_acquire(t) {
        p.failure(t);
    }
    check_eq!(c, breaker.state(), BreakerState::Open);
}
