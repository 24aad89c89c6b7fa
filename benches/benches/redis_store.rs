//! The Redis store's `begin` + `complete` (two script calls, a new key
//! each time) against a local `redis-server` the bench starts itself, next
//! to the in-process table behind a mutex:
//!
//! - `one connection, sequential`: one pair at a time — a round-trip-bound
//!   server handling one request at a time;
//! - `one connection, 64 concurrent`: 64 pairs at once on the same
//!   multiplexed connection (smol tasks) — the commands are pipelined;
//! - `SyncIdempotencyTable`: the in-process table, for scale.
//!
//! Throughput is in pairs per second (criterion's "elem/s"). Needs
//! `redis-server` (Debian: `apt-get install redis-server`).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stormguard::{Begin as TableBegin, IdempotencyKey, Instant as SgInstant, SyncIdempotencyTable};
use stormguard_redis::testing::RedisServer;
use stormguard_redis::{Begin, RedisStore, StoreConfig};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn next_key() -> String {
    format!("bench-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn pair(store: &RedisStore) {
    match store.begin(&next_key(), b"fingerprint").await {
        Ok(Begin::Execute(ticket)) => store
            .complete(&ticket, b"HTTP/1.1 201 Created")
            .await
            .expect("complete"),
        other => panic!("expected Execute, got {other:?}"),
    }
}

fn redis_store(c: &mut Criterion) {
    let server = match RedisServer::start() {
        Ok(server) => server,
        Err(err) => panic!("this benchmark needs redis-server: {err}"),
    };
    let config = StoreConfig::builder()
        .prefix("bench:")
        .ttl(Duration::from_secs(60))
        .build()
        .expect("valid config");
    let store = RedisStore::open(&server.url(), config).expect("valid url");
    smol::block_on(pair(&store)); // connect, load the scripts

    let mut g = c.benchmark_group("redis store");
    g.throughput(Throughput::Elements(1));
    g.bench_function("begin + complete, one connection, sequential", |b| {
        b.iter(|| smol::block_on(pair(&store)))
    });

    const CONCURRENT: u64 = 64;
    g.throughput(Throughput::Elements(CONCURRENT));
    g.bench_function("begin + complete, one connection, 64 concurrent", |b| {
        b.iter_custom(|iters| {
            let ex = smol::Executor::new();
            let started = Instant::now();
            smol::block_on(ex.run(async {
                for _ in 0..iters {
                    let tasks: Vec<_> = (0..CONCURRENT)
                        .map(|_| {
                            let store = store.clone();
                            ex.spawn(async move { pair(&store).await })
                        })
                        .collect();
                    for task in tasks {
                        task.await;
                    }
                }
            }));
            started.elapsed()
        })
    });

    let table: Box<SyncIdempotencyTable<IdempotencyKey, Vec<u8>, 1024>> =
        Box::new(SyncIdempotencyTable::with_ttl(Duration::from_nanos(1_000)).expect("valid ttl"));
    let mut now = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("begin + complete, in-process SyncIdempotencyTable", |b| {
        b.iter(|| {
            now += 1;
            let at = SgInstant::from_nanos(now);
            let key = IdempotencyKey::from_u128(u128::from(now));
            match table.begin(key, 1, at) {
                TableBegin::Execute(ticket) => table
                    .complete(ticket, b"HTTP/1.1 201 Created".to_vec(), at)
                    .is_ok(),
                _ => panic!("expected Execute"),
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = redis_store
}
criterion_main!(benches);
