//! The idempotency table's verbs at N = 16, 1024 and 16384, every table
//! full: the cost must not grow with N.
//!
//! - `begin, replay`: a retry of a completed key (a hit).
//! - `begin, full`: a new key on a table whose every entry is live (a miss,
//!   answered `Full`).
//! - `begin + abort`: a new key on a table full but one: `Execute`, then
//!   the key released.
//! - `begin + complete, reclaiming`: a table at capacity whose oldest
//!   completed entry has just expired: `begin` reclaims it for the new key,
//!   `complete` stores the response — the steady state of a busy server.
//!
//! Keys are random [`IdempotencyKey`]s drawn before the timing.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use stormguard::{Begin, IdempotencyKey, IdempotencyTable, Instant, Random};

type Table<const N: usize> = IdempotencyTable<IdempotencyKey, u64, N>;

fn keys(count: usize) -> Vec<IdempotencyKey> {
    let mut rng = Random::with_seed(0x1de);
    (0..count)
        .map(|_| IdempotencyKey::from_rng(&mut rng))
        .collect()
}

fn execute<T>(answer: Begin<T>) -> stormguard::Ticket {
    match answer {
        Begin::Execute(ticket) => ticket,
        _ => panic!("expected Execute"),
    }
}

/// A table of `N` completed keys (`keys[..N]`), or `N - 1` with `spare`.
fn filled<const N: usize>(keys: &[IdempotencyKey], spare: bool) -> Box<Table<N>> {
    let mut table: Box<Table<N>> = Box::new(IdempotencyTable::new());
    let now = Instant::from_secs(1);
    for key in &keys[..N - usize::from(spare)] {
        let ticket = execute(table.begin(*key, 1, now));
        table.complete(ticket, 7, now).expect("fresh ticket");
    }
    table
}

fn bench_size<const N: usize>(c: &mut Criterion) {
    let keys = keys(4 * N);
    let now = Instant::from_secs(1);
    let mut g = c.benchmark_group("idempotency table");

    let mut table = filled::<N>(&keys, false);
    let mut i = 0;
    g.bench_function(format!("begin, replay/{N}"), |b| {
        b.iter(|| {
            i = (i + 1) % N;
            matches!(table.begin(black_box(keys[i]), 1, now), Begin::Replay(_))
        })
    });
    let mut i = 0;
    g.bench_function(format!("begin, full/{N}"), |b| {
        b.iter(|| {
            i = (i + 1) % N;
            matches!(table.begin(black_box(keys[N + i]), 1, now), Begin::Full)
        })
    });

    let mut table = filled::<N>(&keys, true);
    let mut i = 0;
    g.bench_function(format!("begin + abort/{N}"), |b| {
        b.iter(|| {
            i = (i + 1) % N;
            let ticket = execute(table.begin(black_box(keys[N + i]), 1, now));
            table.abort(ticket).is_ok()
        })
    });

    // Completed entries live N ns; entry i completed at i ns. At N + j ns
    // exactly one entry (j) has expired, and the next key reclaims it.
    let mut table: Box<Table<N>> = Box::new(
        IdempotencyTable::with_timeouts(Duration::from_nanos(N as u64), Duration::from_secs(60))
            .expect("valid timeouts"),
    );
    for (at, key) in keys[..N].iter().enumerate() {
        let at = Instant::from_nanos(at as u64);
        let ticket = execute(table.begin(*key, 1, at));
        table.complete(ticket, 7, at).expect("fresh ticket");
    }
    let mut j = 0;
    g.bench_function(format!("begin + complete, reclaiming/{N}"), |b| {
        b.iter(|| {
            let at = Instant::from_nanos((N + j) as u64);
            let key = keys[(N + j) % keys.len()];
            j += 1;
            let ticket = execute(table.begin(black_box(key), 1, at));
            table.complete(ticket, 7, at).is_ok()
        })
    });
    g.finish();
}

fn table(c: &mut Criterion) {
    bench_size::<16>(c);
    bench_size::<1024>(c);
    bench_size::<16384>(c);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = table
}
criterion_main!(benches);
