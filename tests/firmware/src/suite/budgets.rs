//! The budgets, whose every update is a compare-and-swap loop: on a
//! Cortex-M0 (no `ldrex`/`strex`) each one runs through `portable-atomic`'s
//! critical-section path — 32-bit words for the throttle and the cost
//! bucket, a 64-bit word for the rate budget and a 128-bit word for the
//! ratio budget.

use core::time::Duration;

use stormguard::{
    Budget, CostBucket, Failure, FailureClass, Instant, RateBudget, RetryBudget, Throttle,
};

use super::Checks;

/// gRPC's numbers, in a `static` as firmware declares a client's throttle:
/// built when the crate compiles, no floating point on the chip.
static THROTTLE: Throttle = match Throttle::new(10, 0.1) {
    Ok(throttle) => throttle,
    Err(_) => panic!("invalid throttle"),
};

/// gRPC proposal A6 `retryThrottling`: the bucket starts full; a failure
/// takes 1, a success adds `token_ratio`; retries only while tokens >
/// max/2; three decimals of the ratio.
pub fn throttle_grpc_a6(c: &mut Checks<'_>) {
    let t = &THROTTLE;
    check_eq!(c, t.tokens_milli(), 10_000);
    check_eq!(c, t.max_tokens_milli(), 10_000);
    check_eq!(c, t.token_ratio_milli(), 100);
    for _ in 0..4 {
        t.record_failure();
    }
    check_eq!(c, t.tokens_milli(), 6_000);
    check!(c, t.allows_retry(), "6 tokens > 5");
    t.record_failure();
    check_eq!(c, t.tokens_milli(), 5_000);
    check!(c, !t.allows_retry(), "exactly half: throttled");
    t.record_success();
    check_eq!(c, t.tokens_milli(), 5_100);
    check!(c, t.allows_retry(), "5.1 tokens > 5");
    // Through the `Budget` trait, as a call uses it.
    let f = Failure::transient();
    check!(c, t.try_retry(&f, Instant::ZERO).is_some());
    t.on_failure(&f, Instant::ZERO); // 4.1
    check!(c, t.try_retry(&f, Instant::ZERO).is_none());
    // Clamped at zero and at the maximum.
    for _ in 0..20 {
        t.record_failure();
    }
    check_eq!(c, t.tokens_milli(), 0);
    for _ in 0..200 {
        t.record_success();
    }
    check_eq!(c, t.tokens_milli(), 10_000);

    // Three decimals are kept (0.5466 is 0.546); 0.3 stays 300 despite its
    // binary representation; a ratio above the maximum is the maximum.
    let odd = Throttle::new(3, 0.5466).ok();
    check_eq!(c, odd.as_ref().map(|t| t.token_ratio_milli()), Some(546));
    let third = Throttle::new(7, 0.3).ok();
    check_eq!(c, third.as_ref().map(|t| t.token_ratio_milli()), Some(300));
    let big = Throttle::new(2, 1e12).ok();
    check_eq!(c, big.as_ref().map(|t| t.token_ratio_milli()), Some(2_000));
    if let Some(t) = odd {
        t.record_failure();
        t.record_failure(); // 1.000
        t.record_success(); // 1.546
        t.record_success(); // 2.092
        check_eq!(c, t.tokens_milli(), 2_092);
        check!(c, t.allows_retry(), "2.092 > 1.5");
    }
    check_eq!(
        c,
        Throttle::new(0, 0.1).err().map(|e| e.field()),
        Some("max_tokens")
    );
    check_eq!(
        c,
        Throttle::new(1001, 0.1).err().map(|e| e.field()),
        Some("max_tokens")
    );
    check_eq!(
        c,
        Throttle::new(10, f64::NAN).err().map(|e| e.field()),
        Some("token_ratio")
    );
}

/// The ratio budget's one 128-bit word: deposits, withdrawals, the reserve's
/// refill and the deposits' fading, moved together in one transition.
pub fn retry_budget(c: &mut Checks<'_>) {
    let f = Failure::transient();
    let Ok(budget) = RetryBudget::new(0.2, 0, Duration::from_secs(10)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let now = Instant::from_secs(1);
    for _ in 0..10 {
        budget.on_request(now); // 10 requests deposit 2 retries
    }
    check_eq!(c, budget.available_milli(now), 2_000);
    check!(c, budget.try_retry(&f, now).is_some());
    check!(c, budget.try_retry(&f, now).is_some());
    check!(c, budget.try_retry(&f, now).is_none());
    check_eq!(c, budget.available_milli(now), 0);

    // A reserve of min_per_second × ttl = 2 retries, refilled at 1 per second.
    let Ok(floor) = RetryBudget::new(0.2, 1, Duration::from_secs(2)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    check!(c, floor.withdraw(Instant::ZERO));
    check!(c, floor.withdraw(Instant::ZERO));
    check!(c, !floor.withdraw(Instant::ZERO));
    check_eq!(c, floor.available_milli(Instant::from_millis(500)), 500);
    check!(c, floor.withdraw(Instant::from_secs(1)));
    check!(c, !floor.withdraw(Instant::from_secs(1)));

    // Fading: ttl 1 s, ticks of 1 ms; each tick takes 1/1000 of the deposits.
    let Ok(fading) = RetryBudget::new(0.5, 0, Duration::from_secs(1)) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let t0 = Instant::from_secs(100);
    for _ in 0..10 {
        fading.deposit(t0);
    }
    check_eq!(c, fading.available_milli(t0), 5_000);
    check_eq!(
        c,
        fading.available_milli(t0 + Duration::from_millis(100)),
        4_500
    );
    check_eq!(
        c,
        fading.available_milli(t0 + Duration::from_millis(999)),
        5
    );
    check_eq!(c, fading.available_milli(t0 + Duration::from_secs(1)), 0);
    // A clock that went backwards changes nothing; the far future is safe.
    check_eq!(c, fading.available_milli(Instant::ZERO), 5_000);
    check_eq!(c, fading.available_milli(Instant::MAX), 0);
    check!(c, !fading.withdraw(Instant::MAX));

    // Linkerd's defaults: a full reserve of 10/s × 10 s = 100 retries.
    let linkerd = RetryBudget::linkerd();
    check_eq!(c, linkerd.available_milli(Instant::ZERO), 100_000);
    let mut granted = 0;
    while linkerd.try_retry(&f, Instant::ZERO).is_some() && granted < 1000 {
        granted += 1;
    }
    check_eq!(c, granted, 100);
    check_eq!(
        c,
        RetryBudget::new(0.2, 10, Duration::from_millis(10))
            .err()
            .map(|e| e.field()),
        Some("ttl")
    );
}

/// GCRA in one 64-bit word: bursts, the sustained rate, fractions.
pub fn rate_budget(c: &mut Checks<'_>) {
    let f = Failure::transient();
    let Ok(budget) = RateBudget::new(2.0, 2) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let t0 = Instant::from_secs(10);
    check!(c, budget.try_retry(&f, t0).is_some());
    check!(c, budget.try_retry(&f, t0).is_some());
    check!(c, budget.try_retry(&f, t0).is_none(), "burst spent");
    check!(
        c,
        budget.try_retry(&f, Instant::from_millis(10_499)).is_none()
    );
    check!(
        c,
        budget.try_retry(&f, Instant::from_millis(10_500)).is_some()
    );
    check_eq!(c, budget.interval(), Duration::from_millis(500));

    let Ok(slow) = RateBudget::new(0.5, 1) else {
        check!(c, false, "valid settings refused");
        return;
    };
    check!(c, slow.acquire(Instant::from_secs(5)));
    check!(c, !slow.acquire(Instant::from_secs(6)));
    check!(c, slow.acquire(Instant::from_secs(7)));
    // A clock that went backwards is refused, never a panic or a wrap.
    check!(c, !slow.acquire(Instant::ZERO));
    // The end of time saturates instead of wrapping.
    check!(c, slow.acquire(Instant::MAX));
    check_eq!(
        c,
        RateBudget::new(10.0, 0).err().map(|e| e.field()),
        Some("burst")
    );
}

/// The AWS SDKs' standard retry quota: 500 tokens, 5 a retry, 10 after a
/// timeout, refunds on success, +1 for a first-try success.
pub fn cost_bucket(c: &mut Checks<'_>) {
    let quota = CostBucket::aws_standard();
    let now = Instant::ZERO;
    check_eq!(c, quota.cost_of(FailureClass::Timeout), 10);
    check_eq!(c, quota.cost_of(FailureClass::Transient), 5);
    let paid = quota.try_retry(&Failure::timeout(), now);
    check_eq!(c, paid.map(|w| w.cost()), Some(10));
    check_eq!(c, quota.tokens(), 490);
    quota.on_success(paid, now); // the retry succeeded: refunded
    check_eq!(c, quota.tokens(), 500);
    quota.on_success(None, now); // first try: +1, but capped at capacity
    check_eq!(c, quota.tokens(), 500);
    let mut granted = 0;
    while quota.try_retry(&Failure::transient(), now).is_some() && granted < 1000 {
        granted += 1;
    }
    check_eq!(c, granted, 100);
    check_eq!(c, quota.tokens(), 0);
    quota.on_success(None, now);
    check_eq!(c, quota.tokens(), 1);
    check!(c, quota.try_retry(&Failure::transient(), now).is_none());

    let newer = CostBucket::aws_v2_1();
    let throttled = newer.try_retry(&Failure::overloaded(), now);
    check_eq!(c, throttled.map(|w| w.cost()), Some(5));
    check_eq!(
        c,
        CostBucket::new(100, 0, 10, 5, 1).err().map(|e| e.field()),
        Some("retry_cost")
    );
}
