//! Backoff: the delays of one call's retries, with jitter, against backon's
//! `ExponentialBuilder` and the `backoff` crate's `ExponentialBackoff`.
//!
//! Each iteration builds a fresh schedule — as each logical call does — and
//! draws its first 5 delays (a call with 6 attempts): base 100 ms, factor 2,
//! cap 10 s. Divide by 5 for the cost of one delay.
//!
//! The jitters differ by design: stormguard's full jitter draws uniformly in
//! [0, d] (AWS "Exponential Backoff and Jitter"), backon adds U(0, 1)·d to d,
//! the `backoff` crate draws in d·(1 ± 0.5). Each is its library's jittered
//! exponential schedule. The `backoff` crate also reads the clock on every
//! delay to enforce its `max_elapsed_time` (15 minutes by default); the row
//! with `max_elapsed_time(None)` shows it without that.

mod common;

use std::hint::black_box;
use std::time::Duration;

use backoff::backoff::Backoff as _;
use backon::BackoffBuilder as _;
use criterion::{criterion_group, criterion_main, Criterion};
use stormguard::{Backoff, Jitter, Random};

const DELAYS: usize = 5;
const BASE: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(10);

fn schedule(c: &mut Criterion) {
    let mut g = c.benchmark_group("backoff schedule of 5");

    let full = Backoff::exponential(BASE, 2.0)
        .max_delay(CAP)
        .jitter(Jitter::Full)
        .build()
        .expect("valid backoff");
    g.bench_function("stormguard full jitter", |b| {
        b.iter(|| {
            // A fresh generator per call, as `Retry::new` seeds one.
            let delays = black_box(&full).delays(Random::new());
            delays.take(DELAYS).sum::<Duration>()
        })
    });

    let backon = backon::ExponentialBuilder::new()
        .with_min_delay(BASE)
        .with_factor(2.0)
        .with_max_delay(CAP)
        .with_jitter()
        .with_max_times(DELAYS);
    g.bench_function("backon ExponentialBuilder with_jitter", |b| {
        b.iter(|| black_box(backon).build().sum::<Duration>())
    });

    let mut builder = backoff::ExponentialBackoffBuilder::new();
    builder
        .with_initial_interval(BASE)
        .with_multiplier(2.0)
        .with_max_interval(CAP);
    g.bench_function("backoff ExponentialBackoff", |b| {
        b.iter(|| {
            let mut backoff = black_box(&builder).build();
            (0..DELAYS)
                .filter_map(|_| backoff.next_backoff())
                .sum::<Duration>()
        })
    });

    let mut timeless = backoff::ExponentialBackoffBuilder::new();
    timeless
        .with_initial_interval(BASE)
        .with_multiplier(2.0)
        .with_max_interval(CAP)
        .with_max_elapsed_time(None);
    g.bench_function("backoff ExponentialBackoff, max_elapsed_time(None)", |b| {
        b.iter(|| {
            let mut backoff = black_box(&timeless).build();
            (0..DELAYS)
                .filter_map(|_| backoff.next_backoff())
                .sum::<Duration>()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = schedule
}
criterion_main!(benches);
