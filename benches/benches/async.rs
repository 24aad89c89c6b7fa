//! The async success path on smol: an operation that succeeds at once,
//! awaited bare, through stormguard-smol's retry future, and through
//! backon's `Retryable` with a smol sleeper.
//!
//! The whole measured loop runs inside one `smol::block_on`, so the figures
//! are the futures' own cost, not the executor's. The operation is an
//! `async` block that is ready on its first poll.
//!
//! stormguard's retry future reads the clock only when something needs it:
//! with the default policy (3 attempts, exponential backoff with full
//! jitter, no deadline) and no breaker, never on this path; with a deadline
//! or a breaker, once (before the attempt). See the `clock read` row of the
//! budget benchmark for what one read costs on the machine. backon reads no
//! clock. No per-attempt timer is armed.

mod common;

use std::future::IntoFuture;
use std::hint::black_box;
use std::time::{Duration, Instant};

use backon::Retryable;
use criterion::{criterion_group, criterion_main, Criterion};
use stormguard_smol::{CircuitBreaker, RetryExt, RetryPolicy, Throttle};

async fn call() -> Result<u32, std::io::Error> {
    Ok(black_box(42))
}

/// backon's custom sleeper: smol's timer (async-io), as backon's docs show.
async fn smol_sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

/// Times `iters` awaits of `make()` inside one `block_on`.
fn run<F: std::future::Future>(iters: u64, mut make: impl FnMut() -> F) -> Duration {
    smol::block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(make().await);
        }
        start.elapsed()
    })
}

fn success_path(c: &mut Criterion) {
    let policy = RetryPolicy::default();
    let with_deadline = RetryPolicy::builder()
        .deadline(Duration::from_secs(30))
        .build()
        .expect("valid");
    let throttle = Throttle::new(10, 0.1).expect("gRPC A6 example values");
    let breaker = CircuitBreaker::default();
    let backon = backon::ExponentialBuilder::default().with_jitter();

    let mut g = c.benchmark_group("async success path");
    g.bench_function("bare .await", |b| b.iter_custom(|iters| run(iters, call)));
    // What one clock read adds (the deadline row reads the clock once).
    g.bench_function("bare .await + one StdClock read", |b| {
        b.iter_custom(|iters| {
            run(iters, || {
                black_box(stormguard_smol::Clock::now(&stormguard_smol::StdClock));
                call()
            })
        })
    });
    g.bench_function("stormguard-smol retry", |b| {
        b.iter_custom(|iters| run(iters, || RetryExt::retry(call, &policy).into_future()))
    });
    g.bench_function("stormguard-smol retry, with a deadline", |b| {
        b.iter_custom(|iters| {
            run(iters, || {
                RetryExt::retry(call, &with_deadline).into_future()
            })
        })
    });
    g.bench_function("stormguard-smol retry + Throttle + breaker", |b| {
        b.iter_custom(|iters| {
            run(iters, || {
                RetryExt::retry(call, &policy)
                    .budget(&throttle)
                    .breaker(&breaker)
                    .into_future()
            })
        })
    });
    g.bench_function("backon retry, smol sleeper", |b| {
        b.iter_custom(|iters| run(iters, || Retryable::retry(call, backon).sleep(smol_sleep)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = success_path
}
criterion_main!(benches);
