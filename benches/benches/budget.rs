//! Retry budgets: stormguard's one-atomic-word budgets against grpc-go's
//! mutex-guarded float (the design gRPC A6 throttling ships with) and
//! tower's `TpsBudget` (a mutex-guarded window of atomic slots).
//!
//! Groups:
//! - `budget failure+check`: one failed attempt's budget work — take a token
//!   and ask whether a retry may go (stormguard `on_failure` + `try_retry`,
//!   grpc-go `throttle()`, tower `withdraw()`), on a budget in its starting
//!   state, so every operation really writes.
//! - `budget success`: one success's budget work (stormguard `on_success` for
//!   the throttle and `on_request` — the deposit — for the ratio budget,
//!   grpc-go `successfulRPC()`, tower `deposit()`).
//! - `budget pair, 1 thread` / `budget pair, 2 threads`: a failure+check then
//!   a success on one shared budget, by one thread and by two threads at once
//!   (time per pair per thread). The ratios are 1.0, so the balance stays in
//!   the middle and every operation writes.
//!
//! tower's budget reads the clock in every operation; stormguard's take
//! `now` from the caller, who needs it for the decision anyway. The
//! "+ clock read" rows make stormguard's ratio budget read the clock too.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use stormguard::{Budget, Failure, Instant, RetryBudget, Throttle};
use stormguard_benches::{contend, Clock, GrpcThrottler};
use tower::retry::budget::{Budget as _, TpsBudget};

/// Fresh budgets per batch: small enough to stay in L1, large enough that
/// criterion's timer is noise.
const BATCH: BatchSize = BatchSize::NumIterations(512);
const FAILURE: Failure = Failure::transient();
const TTL: Duration = Duration::from_secs(10);

fn throttle() -> Throttle {
    Throttle::new(10, 0.1).expect("gRPC A6 example values")
}

fn ratio_budget(ratio: f64) -> RetryBudget {
    RetryBudget::new(ratio, 10, TTL).expect("Linkerd's values")
}

fn tower_budget(ratio: f32) -> TpsBudget {
    TpsBudget::new(TTL, 10, ratio)
}

fn failure_and_check(c: &mut Criterion) {
    let clock = Clock::new();
    let now = Instant::ZERO;
    let mut g = c.benchmark_group("budget failure+check");
    g.bench_function("stormguard Throttle", |b| {
        b.iter_batched_ref(
            throttle,
            |t| {
                t.on_failure(&FAILURE, now);
                t.try_retry(&FAILURE, now)
            },
            BATCH,
        )
    });
    g.bench_function("stormguard RetryBudget", |b| {
        b.iter_batched_ref(
            || ratio_budget(0.2),
            |t| {
                t.on_failure(&FAILURE, now);
                t.try_retry(&FAILURE, now)
            },
            BATCH,
        )
    });
    g.bench_function("stormguard RetryBudget + clock read", |b| {
        b.iter_batched_ref(
            || {
                let budget = ratio_budget(0.2);
                budget.available_milli(clock.now()); // accounted up to now
                budget
            },
            |t| {
                let now = clock.now();
                t.on_failure(&FAILURE, now);
                t.try_retry(&FAILURE, now)
            },
            BATCH,
        )
    });
    g.bench_function("grpc-go Mutex<f64>", |b| {
        b.iter_batched_ref(|| GrpcThrottler::new(10.0, 0.1), |t| t.throttle(), BATCH)
    });
    g.bench_function("tower TpsBudget", |b| {
        b.iter_batched_ref(|| tower_budget(0.2), |t| t.withdraw(), BATCH)
    });
    g.finish();
}

fn success(c: &mut Criterion) {
    let clock = Clock::new();
    let now = Instant::ZERO;
    let mut g = c.benchmark_group("budget success");
    g.bench_function("stormguard Throttle", |b| {
        b.iter_batched_ref(
            || {
                let t = throttle();
                t.record_failure(); // below the maximum, so the success counts
                t
            },
            |t| t.on_success(None, now),
            BATCH,
        )
    });
    g.bench_function("stormguard RetryBudget", |b| {
        b.iter_batched_ref(|| ratio_budget(0.2), |t| t.on_request(now), BATCH)
    });
    g.bench_function("stormguard RetryBudget + clock read", |b| {
        b.iter_batched_ref(
            || {
                let budget = ratio_budget(0.2);
                budget.available_milli(clock.now());
                budget
            },
            |t| t.on_request(clock.now()),
            BATCH,
        )
    });
    g.bench_function("grpc-go Mutex<f64>", |b| {
        b.iter_batched_ref(
            || {
                let t = GrpcThrottler::new(10.0, 0.1);
                t.throttle();
                t
            },
            |t| t.successful_rpc(),
            BATCH,
        )
    });
    g.bench_function("tower TpsBudget", |b| {
        b.iter_batched_ref(|| tower_budget(0.2), |t| t.deposit(), BATCH)
    });
    g.finish();
}

/// One failure+check and one success on each kind of shared budget.
struct Shared {
    clock: Clock,
    throttle: Throttle,
    ratio: RetryBudget,
    ratio_clocked: RetryBudget,
    grpc: GrpcThrottler,
    tower: TpsBudget,
}

impl Shared {
    fn new() -> Self {
        Shared {
            clock: Clock::new(),
            throttle: Throttle::new(10, 1.0).expect("valid"),
            ratio: ratio_budget(1.0),
            ratio_clocked: ratio_budget(1.0),
            grpc: GrpcThrottler::new(10.0, 1.0),
            tower: tower_budget(1.0),
        }
    }

    fn throttle_pair(&self) {
        let now = Instant::ZERO;
        self.throttle.on_failure(&FAILURE, now);
        black_box(self.throttle.try_retry(&FAILURE, now));
        self.throttle.on_success(None, now);
    }

    fn ratio_pair(&self) {
        let now = Instant::ZERO;
        self.ratio.on_request(now);
        self.ratio.on_failure(&FAILURE, now);
        black_box(self.ratio.try_retry(&FAILURE, now));
    }

    fn ratio_clocked_pair(&self) {
        let now = self.clock.now();
        self.ratio_clocked.on_request(now);
        self.ratio_clocked.on_failure(&FAILURE, now);
        black_box(self.ratio_clocked.try_retry(&FAILURE, self.clock.now()));
    }

    fn grpc_pair(&self) {
        black_box(self.grpc.throttle());
        self.grpc.successful_rpc();
    }

    fn tower_pair(&self) {
        self.tower.deposit();
        black_box(self.tower.withdraw());
    }
}

/// One `budget pair` benchmark: `pair` by `threads` threads on one shared
/// budget. Generic, so each pair is inlined into the measured loop rather
/// than called through a pointer.
fn bench_pair(
    g: &mut BenchmarkGroup<'_, WallTime>,
    threads: usize,
    label: &str,
    pair: impl Fn(&Shared) + Sync,
) {
    let shared = Shared::new();
    g.bench_function(label, |b| {
        b.iter_custom(|iters| contend(threads, iters, &shared, &pair))
    });
}

fn pairs(c: &mut Criterion) {
    for threads in [1, 2] {
        let name = if threads == 1 {
            "budget pair, 1 thread".to_string()
        } else {
            format!("budget pair, {threads} threads")
        };
        let mut g = c.benchmark_group(name);
        bench_pair(
            &mut g,
            threads,
            "stormguard Throttle",
            Shared::throttle_pair,
        );
        bench_pair(
            &mut g,
            threads,
            "stormguard RetryBudget",
            Shared::ratio_pair,
        );
        bench_pair(
            &mut g,
            threads,
            "stormguard RetryBudget + clock read",
            Shared::ratio_clocked_pair,
        );
        bench_pair(&mut g, threads, "grpc-go Mutex<f64>", Shared::grpc_pair);
        bench_pair(&mut g, threads, "tower TpsBudget", Shared::tower_pair);
        g.finish();
    }
}

/// What reading the clock costs on this machine, for the "+ clock read"
/// rows (and the async driver, which reads it on every attempt).
fn clock_read(c: &mut Criterion) {
    let clock = Clock::new();
    let mut g = c.benchmark_group("clock read");
    g.bench_function("std::time::Instant::now", |b| {
        b.iter(std::time::Instant::now)
    });
    g.bench_function("stormguard Instant from std", |b| b.iter(|| clock.now()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = failure_and_check, success, pairs, clock_read
}
criterion_main!(benches);
