//! The decision: `Retry::on_failure`, alone and with a budget and a circuit
//! breaker attached, and the full path of a call that fails once and then
//! succeeds.
//!
//! Policy: 3 attempts, exponential backoff (100 ms × 2, cap 10 s) with full
//! jitter, a 30 s deadline, idempotent — so every gate runs (class,
//! idempotency, attempts, backoff, deadline, budget).
//!
//! The `on_failure` rows give each iteration a fresh `Retry` and, where
//! attached, a fresh `Throttle` and `CircuitBreaker` (built outside the
//! timing), so each decision takes a token and records a failure for real
//! rather than hitting an empty bucket or an open breaker.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use stormguard::{
    Backoff, Call, CircuitBreaker, Decision, Failure, Instant, NoBudget, Retry, RetryPolicy,
    Throttle,
};

const BATCH: BatchSize = BatchSize::NumIterations(512);
const FAILURE: Failure = Failure::transient();

static POLICY: RetryPolicy = match RetryPolicy::builder()
    .max_attempts(3)
    .backoff(
        Backoff::exponential(Duration::from_millis(100), 2.0).max_delay(Duration::from_secs(10)),
    )
    .deadline(Duration::from_secs(30))
    .build()
{
    Ok(policy) => policy,
    Err(_) => panic!("valid policy"),
};

fn throttle() -> Throttle {
    Throttle::new(10, 0.1).expect("gRPC A6 example values")
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(5, Duration::from_secs(30)).expect("valid breaker")
}

fn retry(seed: &mut u64) -> Retry<&'static RetryPolicy> {
    *seed += 1;
    Retry::with_seed(&POLICY, Instant::ZERO, *seed)
}

fn on_failure(c: &mut Criterion) {
    let now = Instant::from_millis(50);
    let mut g = c.benchmark_group("decision");
    let mut seed = 0;
    g.bench_function("on_failure, no budget", |b| {
        b.iter_batched_ref(
            || retry(&mut seed),
            |r| r.on_failure(&FAILURE, now, &NoBudget),
            BATCH,
        )
    });
    g.bench_function("on_failure, Throttle", |b| {
        b.iter_batched_ref(
            || (retry(&mut seed), throttle()),
            |(r, budget)| r.on_failure(&FAILURE, now, budget),
            BATCH,
        )
    });
    // Through the lifecycle: the breaker's permit, the attempt's failure,
    // the budget and the decision, as every driver does it.
    g.bench_function("on_failure, Throttle + breaker", |b| {
        b.iter_batched_ref(
            || {
                seed += 1;
                (throttle(), breaker(), seed)
            },
            |(budget, breaker, seed)| {
                let mut call = Call::with_seed(&POLICY, *seed)
                    .budget(&*budget)
                    .breaker(&*breaker);
                let decision = match call.begin_attempt(now) {
                    Ok(attempt) => attempt.fail(&FAILURE, now),
                    Err(decision) => decision,
                };
                decision
            },
            BATCH,
        )
    });

    // The whole of one logical call on a shared budget and breaker: start,
    // attempt (fails), decide, attempt again (succeeds), report. A token
    // ratio of 1 makes the success give back what the failure took, so the
    // shared throttle stays level however many calls run.
    let budget = Throttle::new(10, 1.0).expect("valid");
    let breaker = breaker();
    g.bench_function(
        "call failing once then succeeding, Throttle + breaker",
        |b| {
            b.iter(|| {
                let mut call = Call::with_seed(&POLICY, black_box(7))
                    .budget(&budget)
                    .breaker(&breaker);
                let attempt = call.begin_attempt(now).expect("closed");
                let after = match attempt.fail(&FAILURE, now) {
                    Decision::Retry { after } => after,
                    Decision::GiveUp(reason) => panic!("{reason}"),
                };
                let later = now + after;
                call.begin_attempt(later).expect("closed").succeed(later);
                after
            })
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = on_failure
}
criterion_main!(benches);
