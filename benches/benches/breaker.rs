//! The circuit breaker's fast path: `try_acquire` and recording the outcome
//! while Closed, and a refusal while Open.
//!
//! - `acquire + success`: a healthy service. Without a failure-rate rule a
//!   success after a success leaves the breaker's word as it is: a load, no
//!   compare-and-swap.
//! - `acquire + failure`: a fresh breaker per iteration (built outside the
//!   timing), so the failure is counted for real.
//! - `acquire + failure, acquire + success`: both on one shared breaker;
//!   each writes.
//! - `acquire + success, failure-rate window`: the resilience4j preset,
//!   which counts every call in its window, so a success writes too.
//! - `acquire while Open`: a refusal, which also says when to come back.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use stormguard::{CircuitBreaker, Instant};

const BATCH: BatchSize = BatchSize::NumIterations(512);

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(5, Duration::from_secs(30)).expect("valid breaker")
}

fn closed(c: &mut Criterion) {
    let now = Instant::from_secs(1);
    let mut g = c.benchmark_group("breaker");

    let healthy = breaker();
    g.bench_function("acquire + success", |b| {
        b.iter(|| match healthy.try_acquire(now) {
            Ok(permit) => permit.success(now),
            Err(open) => panic!("{open}"),
        })
    });

    g.bench_function("acquire + failure", |b| {
        b.iter_batched_ref(
            breaker,
            |breaker| match breaker.try_acquire(now) {
                Ok(permit) => permit.failure(now),
                Err(open) => panic!("{open}"),
            },
            BATCH,
        )
    });

    let flaky = breaker();
    g.bench_function("acquire + failure, acquire + success", |b| {
        b.iter(|| {
            match flaky.try_acquire(now) {
                Ok(permit) => permit.failure(now),
                Err(open) => panic!("{open}"),
            }
            match flaky.try_acquire(now) {
                Ok(permit) => permit.success(now),
                Err(open) => panic!("{open}"),
            }
        })
    });

    let windowed = CircuitBreaker::resilience4j();
    g.bench_function("acquire + success, failure-rate window", |b| {
        b.iter(|| match windowed.try_acquire(now) {
            Ok(permit) => permit.success(now),
            Err(open) => panic!("{open}"),
        })
    });

    let open = breaker();
    for _ in 0..5 {
        if let Ok(permit) = open.try_acquire(now) {
            permit.failure(now);
        }
    }
    g.bench_function("acquire while Open", |b| {
        b.iter(|| open.try_acquire(now).map(|_| ()).expect_err("open"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = closed
}
criterion_main!(benches);
