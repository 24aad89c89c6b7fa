//! Budgets and the breaker under real threads (≥ 10⁶ operations each), and
//! the budgets' long-run behaviour driven through `Retry`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use stormguard::{
    Backoff, Budget, CircuitBreaker, CostBucket, Decision, Failure, Instant, RateBudget, Retry,
    RetryBudget, RetryPolicy, Throttle,
};

const THREADS: u64 = 8;

/// Runs `f(thread_index)` on `THREADS` threads released together.
fn race(f: impl Fn(u64) + Sync) {
    let barrier = Barrier::new(THREADS as usize);
    thread::scope(|s| {
        for i in 0..THREADS {
            let (f, barrier) = (&f, &barrier);
            s.spawn(move || {
                barrier.wait();
                f(i)
            });
        }
    });
}

#[test]
fn throttle_final_balance_is_the_arithmetic_of_its_operations() {
    // 1000 tokens, ratio 0.1; drained to half so no operation clamps: each
    // thread alternates one failure (−1) and ten successes (+10 × 0.1).
    let t = Throttle::new(1000, 0.1).unwrap();
    for _ in 0..500 {
        t.record_failure();
    }
    let rounds = 1_000_000 / 11 / THREADS + 1;
    let min_seen = AtomicU64::new(u64::MAX);
    race(|_| {
        for _ in 0..rounds {
            t.record_failure();
            for _ in 0..10 {
                t.record_success();
            }
            min_seen.fetch_min(t.tokens_milli() as u64, Ordering::Relaxed);
        }
    });
    assert_eq!(t.tokens_milli(), 500_000);
    assert!(min_seen.into_inner() >= 500_000 - THREADS * 1000);
}

#[test]
fn throttle_clamps_under_contention() {
    let t = Throttle::new(10, 0.5).unwrap();
    race(|i| {
        for n in 0..150_000u64 {
            if (n + i) % 3 == 0 {
                t.record_success()
            } else {
                t.record_failure()
            }
            assert!(t.tokens_milli() <= 10_000);
        }
    });
    assert!(t.tokens_milli() <= 10_000);
}

#[test]
fn retry_budget_conserves_every_deposit_and_withdrawal() {
    // A fixed `now`: no fading, no refill; only deposits and withdrawals.
    let b = RetryBudget::new(0.3, 5, Duration::from_secs(10)).unwrap();
    let now = Instant::from_secs(1);
    let reserve = b.available_milli(now);
    let granted = AtomicU64::new(0);
    let per_thread = 1_000_000 / THREADS;
    race(|_| {
        for n in 0..per_thread {
            if n % 4 == 0 {
                if b.withdraw(now) {
                    granted.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                b.deposit(now);
            }
        }
    });
    let deposits = THREADS * per_thread * 3 / 4;
    let granted = granted.into_inner();
    assert_eq!(
        b.available_milli(now),
        reserve + deposits * 300 - granted * 1000
    );
}

#[test]
fn cost_bucket_never_overdraws() {
    let b = CostBucket::aws_standard();
    let spent = AtomicU64::new(0);
    let refunded = AtomicU64::new(0);
    race(|i| {
        for n in 0..(1_000_000 / THREADS) {
            let f = if (n + i) % 2 == 0 {
                Failure::timeout()
            } else {
                Failure::transient()
            };
            if let Some(w) = b.try_retry(&f, Instant::ZERO) {
                spent.fetch_add(w.cost() as u64, Ordering::Relaxed);
                if n % 3 == 0 {
                    b.on_success(Some(w), Instant::ZERO);
                    refunded.fetch_add(w.cost() as u64, Ordering::Relaxed);
                }
            }
        }
    });
    // Refunds never exceed what was spent, so no clamp at capacity applies.
    assert_eq!(
        b.tokens() as u64 + spent.into_inner(),
        500 + refunded.into_inner()
    );
}

#[test]
fn rate_budget_grants_exactly_the_burst_at_one_instant() {
    let b = RateBudget::new(1_000.0, 64).unwrap();
    let now = Instant::from_secs(5);
    let granted = AtomicU64::new(0);
    race(|_| {
        for _ in 0..(1_000_000 / THREADS) {
            if b.acquire(now) {
                granted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    assert_eq!(granted.into_inner(), 64);
}

#[test]
fn half_open_admits_exactly_the_configured_probes_every_round() {
    for probes in [1u32, 3] {
        let b = CircuitBreaker::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_millis(1))
            .half_open_probes(probes)
            .build()
            .unwrap();
        for round in 0..200u64 {
            let open_at = Instant::from_millis(10 * round);
            b.try_acquire(open_at).unwrap().failure(open_at);
            let probe_at = open_at + Duration::from_millis(1);
            let admitted = AtomicU64::new(0);
            race(|_| {
                for _ in 0..100 {
                    if let Ok(permit) = b.try_acquire(probe_at) {
                        admitted.fetch_add(1, Ordering::Relaxed);
                        std::mem::forget(permit);
                    }
                }
            });
            assert_eq!(admitted.into_inner(), probes as u64, "round {round}");
            // Close it again for the next round: a fresh round of probes
            // after the lost ones time out (probe timeout = 1 ms).
            let later = probe_at + Duration::from_millis(1);
            for _ in 0..probes {
                b.try_acquire(later).unwrap().success(later);
            }
            assert_eq!(b.state(), stormguard::BreakerState::Closed);
        }
    }
}

/// Drives `requests_per_second` logical calls against a dependency that is
/// fully down for `seconds`, every retry asking `budget`; returns the retries
/// granted per second over the second half.
fn retries_per_second_when_down(
    budget: &dyn Budget,
    requests_per_second: u64,
    seconds: u64,
) -> f64 {
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()
        .unwrap();
    let mut late_retries = 0;
    let step = Duration::from_nanos(1_000_000_000 / requests_per_second);
    let mut now = Instant::from_secs(1);
    for n in 0..requests_per_second * seconds {
        let mut call = Retry::with_seed(&policy, now, n);
        while let Decision::Retry { .. } = call.on_failure(&Failure::transient(), now, budget) {
            if n >= requests_per_second * seconds / 2 {
                late_retries += 1;
            }
        }
        now += step;
    }
    late_retries as f64 / (seconds / 2) as f64
}

#[test]
fn ratio_budget_converges_to_ratio_times_requests_plus_the_floor() {
    // Linkerd's numbers: 0.2 × 100 requests/s + 10/s = 30 retries/s, instead
    // of the 300/s that 3 blind retries per call would send.
    let budget = RetryBudget::new(0.2, 10, Duration::from_secs(10)).unwrap();
    let rate = retries_per_second_when_down(&budget, 100, 120);
    assert!((28.5..=31.5).contains(&rate), "{rate} retries/s");

    let no_floor = RetryBudget::new(0.1, 0, Duration::from_secs(10)).unwrap();
    let rate = retries_per_second_when_down(&no_floor, 200, 120);
    assert!((19.0..=21.0).contains(&rate), "{rate} retries/s");
}

#[test]
fn throttle_stops_retries_when_everything_fails() {
    // gRPC A6 numbers: after 5 failures the throttle allows no retry at all
    // while nothing succeeds.
    let throttle = Throttle::new(10, 0.1).unwrap();
    let rate = retries_per_second_when_down(&throttle, 100, 20);
    assert_eq!(rate, 0.0);
}

#[test]
fn rate_budget_caps_retries_per_second() {
    let budget = RateBudget::new(7.0, 7).unwrap();
    let rate = retries_per_second_when_down(&budget, 100, 60);
    assert!((6.9..=7.1).contains(&rate), "{rate}");
}

#[test]
fn shared_structures_are_sync_and_send() {
    fn shared<T: Sync + Send>() {}
    shared::<Throttle>();
    shared::<RetryBudget>();
    shared::<RateBudget>();
    shared::<CostBucket>();
    shared::<CircuitBreaker>();
    shared::<stormguard::Metrics>();
    shared::<RetryPolicy>();
}

/// Two threads race to drain fresh budgets, round after round: at every
/// instant, what was granted plus what is left must be what the arithmetic
/// allows. This caught a withdrawal being undone by a refill that was
/// published (the clock moved) before it was applied (the balance changed).
#[test]
fn racing_withdrawals_never_overdraw_a_fresh_retry_budget() {
    const ROUNDS: usize = 30_000;
    let start = Barrier::new(2);
    let budgets: Vec<RetryBudget> = (0..ROUNDS)
        .map(|_| RetryBudget::new(0.0, 10, Duration::from_secs(10)).unwrap())
        .collect();
    let granted: Vec<AtomicU64> = (0..ROUNDS).map(|_| AtomicU64::new(0)).collect();
    // A reserve of 10/s × 10 s = 100 retries; the first call moves the clock
    // from 0 to 1000 s (a full refill, clamped at the cap).
    let now = Instant::from_secs(1000);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for (b, g) in budgets.iter().zip(&granted) {
                    start.wait();
                    let n = (0..200).take_while(|_| b.withdraw(now)).count();
                    g.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    let over: Vec<(usize, u64)> = granted
        .iter()
        .map(|g| g.load(Ordering::Relaxed))
        .enumerate()
        .filter(|&(_, g)| g != 100)
        .collect();
    assert!(
        over.is_empty(),
        "{} of {ROUNDS} rounds granted other than 100: {:?}",
        over.len(),
        &over[..over.len().min(10)]
    );
    for b in &budgets {
        assert_eq!(b.available_milli(now), 0);
    }
}

/// Two threads withdraw and deposit on one budget while the clock moves
/// under them; granted retries never exceed the reserve plus deposits plus
/// the refill the elapsed time allows.
#[test]
fn racing_withdrawals_with_a_moving_clock_stay_within_the_arithmetic() {
    let ttl = Duration::from_secs(1); // ticks of 1 ms, refill 50 milli-retries a tick
    for round in 0..200u64 {
        let b = RetryBudget::new(0.5, 50, ttl).unwrap();
        let origin = Instant::from_secs(10 + round * 10);
        let steps = 2_000u64;
        let granted = AtomicU64::new(0);
        let deposited = AtomicU64::new(0);
        let start = Barrier::new(2);
        thread::scope(|s| {
            for i in 0..2u64 {
                let (b, granted, deposited, start) = (&b, &granted, &deposited, &start);
                s.spawn(move || {
                    start.wait();
                    for k in 0..steps {
                        // Each step is 100 µs: a tick every 10 steps.
                        let now = origin + Duration::from_micros(100 * k);
                        if (k + i) % 7 == 0 {
                            b.deposit(now);
                            deposited.fetch_add(1, Ordering::Relaxed);
                        } else if b.withdraw(now) {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // Reserve 50 retries at the origin; 200 ticks refill at most 10
        // more; each deposit adds 0.5 (fading can only take away).
        let granted = granted.into_inner();
        let bound = 50_000 + 200 * 50 + deposited.into_inner() * 500;
        assert!(
            granted * 1000 <= bound,
            "round {round}: granted {granted} retries, the arithmetic allows {}",
            bound / 1000
        );
    }
}
