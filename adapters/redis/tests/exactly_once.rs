//! Exactly once on a real Redis, under lost replies: 8 concurrent tasks
//! (async, on smol) each run every one of 10 000 keyed charges, through a
//! proxy that drops reply chunks with their connection and holds others
//! back past the store's attempt timeout. Workers fail before their side
//! effect (and abort), crash (and leave their key to its lease), or run so
//! slowly that their lease ends. Afterwards:
//!
//! - the ledger holds exactly one charge per key;
//! - every task got, for every key, the answer of that one charge;
//! - every worker whose lease ended was refused (`Stale`): fencing holds;
//! - nothing is left in flight.
//!
//! A second test runs 8 threads on the blocking store while Redis is
//! stopped and restarted: requests get `Unavailable` (503), none runs
//! twice, and service resumes.
#![cfg(feature = "client")]

mod support;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use stormguard::{Backoff, RetryPolicy};
use stormguard_redis::testing::RedisServer;
use stormguard_redis::{Begin, BlockingRedisStore, EntryState, Error, RedisStore, StoreConfig};
use support::proxy::{Faults, Proxy};

const KEYS: usize = 10_000;
const TASKS: usize = 8;
const LEASE: Duration = Duration::from_millis(1_500);

#[derive(Default)]
struct Counts {
    executions: AtomicU64,
    takeovers: AtomicU64,
    aborted: AtomicU64,
    crashed: AtomicU64,
    late: AtomicU64,
    late_refused: AtomicU64,
    in_progress: AtomicU64,
    unavailable: AtomicU64,
    /// Violations: a side effect whose response could not be stored.
    unstored: AtomicU64,
}

struct Shared {
    /// Charges per key: the side effect.
    charges: Vec<AtomicU64>,
    /// The receipt of each key's charge.
    receipts: Vec<Mutex<Option<Vec<u8>>>>,
    /// What each task was answered, per key.
    answers: Vec<Mutex<Vec<Option<Vec<u8>>>>>,
    counts: Counts,
    late_workers: Mutex<Vec<smol::Task<()>>>,
}

fn key_name(key: usize) -> String {
    format!("charge-{key}")
}

fn fingerprint(key: usize) -> Vec<u8> {
    format!("POST /charge amount={}", key % 97).into_bytes()
}

fn config(prefix: &str, attempt_timeout: Duration) -> StoreConfig {
    StoreConfig::builder()
        .prefix(prefix)
        .lease(LEASE)
        .ttl(Duration::from_secs(600))
        .attempt_timeout(attempt_timeout)
        .retry(
            RetryPolicy::builder()
                .max_attempts(6)
                .backoff(
                    Backoff::exponential(Duration::from_millis(5), 2.0)
                        .max_delay(Duration::from_millis(100)),
                )
                .deadline(Duration::from_secs(2))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// One task: every key once, in an order of its own; keys that are in
/// progress elsewhere, or that hit an outage, are put back for later.
async fn task(
    id: usize,
    store: RedisStore<ConnectionManager>,
    shared: Arc<Shared>,
    ex: Arc<smol::Executor<'static>>,
) {
    let mut rng = fastrand::Rng::with_seed(0x5eed + id as u64);
    let mut order: Vec<usize> = (0..KEYS).collect();
    rng.shuffle(&mut order);
    let mut queue: VecDeque<(usize, Instant)> =
        order.into_iter().map(|k| (k, Instant::now())).collect();
    let counts = &shared.counts;
    while let Some((key, due)) = queue.pop_front() {
        let now = Instant::now();
        if due > now {
            async_io::Timer::after((due - now).min(Duration::from_millis(20))).await;
        }
        let later = |after_ms| (key, Instant::now() + Duration::from_millis(after_ms));
        match store.begin(&key_name(key), &fingerprint(key)).await {
            Ok(Begin::Execute(ticket)) => {
                counts.executions.fetch_add(1, Ordering::Relaxed);
                if ticket.fencing_token() > 1 {
                    counts.takeovers.fetch_add(1, Ordering::Relaxed);
                }
                match rng.u32(0..1000) {
                    // The work fails before any side effect: release the key.
                    0..=19 => {
                        counts.aborted.fetch_add(1, Ordering::Relaxed);
                        let _ = store.abort(&ticket).await;
                        queue.push_back(later(5));
                    }
                    // The worker crashes before its side effect: the key is
                    // held until its lease ends.
                    20..=22 => {
                        counts.crashed.fetch_add(1, Ordering::Relaxed);
                        drop(ticket);
                        queue.push_back(later(100));
                    }
                    // The worker is slow: its lease ends while it works. It
                    // checks its lease before the side effect (and skips
                    // it), then tries to store a result anyway: fenced.
                    23..=25 => {
                        counts.late.fetch_add(1, Ordering::Relaxed);
                        let (late_store, late_shared) = (store.clone(), shared.clone());
                        let worker = ex.spawn(async move {
                            let (store, shared) = (late_store, late_shared);
                            async_io::Timer::after(LEASE + Duration::from_millis(200)).await;
                            assert!(Instant::now() >= ticket.lease_ends());
                            loop {
                                match store.complete(&ticket, b"late").await {
                                    Err(Error::Stale) => {
                                        shared.counts.late_refused.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                    Err(err) if err.is_unavailable() => continue,
                                    other => panic!("a late worker was not fenced: {other:?}"),
                                }
                            }
                        });
                        shared.late_workers.lock().unwrap().push(worker);
                        queue.push_back(later(100));
                    }
                    // The charge: the side effect, then the stored response,
                    // retried through outages until the lease ends.
                    _ => {
                        let receipt = format!(
                            "receipt for {key}: token {} by task {id}",
                            ticket.fencing_token()
                        )
                        .into_bytes();
                        shared.charges[key].fetch_add(1, Ordering::SeqCst);
                        *shared.receipts[key].lock().unwrap() = Some(receipt.clone());
                        loop {
                            match store.complete(&ticket, &receipt).await {
                                Ok(()) => break,
                                Err(err)
                                    if err.is_unavailable()
                                        && Instant::now() < ticket.lease_ends() =>
                                {
                                    async_io::Timer::after(Duration::from_millis(10)).await;
                                }
                                Err(_) => {
                                    counts.unstored.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                        shared.answers[id].lock().unwrap()[key] = Some(receipt);
                    }
                }
            }
            Ok(Begin::Replay(receipt)) => {
                shared.answers[id].lock().unwrap()[key] = Some(receipt);
            }
            Ok(Begin::InProgress) => {
                counts.in_progress.fetch_add(1, Ordering::Relaxed);
                queue.push_back(later(20));
            }
            Ok(Begin::Mismatch) => panic!("one fingerprint per key"),
            Err(err) if err.is_unavailable() => {
                counts.unavailable.fetch_add(1, Ordering::Relaxed);
                queue.push_back(later(10));
            }
            Err(err) => panic!("{err}"),
            Ok(other) => panic!("{other:?}"),
        }
    }
}

fn shared(keys: usize, tasks: usize) -> Arc<Shared> {
    Arc::new(Shared {
        charges: (0..keys).map(|_| AtomicU64::new(0)).collect(),
        receipts: (0..keys).map(|_| Mutex::new(None)).collect(),
        answers: (0..tasks).map(|_| Mutex::new(vec![None; keys])).collect(),
        counts: Counts::default(),
        late_workers: Mutex::new(Vec::new()),
    })
}

/// Exactly one charge per key, and every task answered that charge's
/// receipt for it.
fn assert_exactly_once(shared: &Shared, keys: usize) {
    for key in 0..keys {
        let charges = shared.charges[key].load(Ordering::SeqCst);
        assert_eq!(charges, 1, "key {key} was charged {charges} times");
        let receipt = shared.receipts[key].lock().unwrap().clone();
        assert!(receipt.is_some());
        for (task, answers) in shared.answers.iter().enumerate() {
            assert_eq!(
                answers.lock().unwrap()[key],
                receipt,
                "task {task} got another answer for key {key}"
            );
        }
    }
    assert_eq!(shared.counts.unstored.load(Ordering::Relaxed), 0);
}

#[test]
fn eight_tasks_ten_thousand_keys_lost_replies_and_lease_expiries_exactly_once() {
    let server = RedisServer::start().expect("redis-server");
    let proxy = Proxy::start(
        server.port(),
        Faults {
            reset_one_in: 400,
            delay_one_in: 600,
            delay: Duration::from_millis(150),
            seed: 13,
        },
    )
    .unwrap();
    let store = RedisStore::open(&proxy.url(), config("eo:", Duration::from_millis(100))).unwrap();
    let shared = shared(KEYS, TASKS);
    let ex = Arc::new(smol::Executor::new());
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|id| ex.spawn(task(id, store.clone(), shared.clone(), ex.clone())))
        .collect();
    smol::block_on(ex.run(async {
        for task in tasks {
            task.await;
        }
        let late: Vec<_> = std::mem::take(&mut *shared.late_workers.lock().unwrap());
        for worker in late {
            worker.await;
        }
    }));
    let elapsed = started.elapsed();
    proxy.calm_down();

    let c = &shared.counts;
    let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
    eprintln!(
        "{TASKS} tasks × {KEYS} keys in {elapsed:.1?}: {} executions ({} takeovers), {} aborted, \
         {} crashed, {} late ({} refused), {} in progress, {} unavailable; proxy: {} connections, \
         {} replies lost with their connection, {} held back",
        count(&c.executions),
        count(&c.takeovers),
        count(&c.aborted),
        count(&c.crashed),
        count(&c.late),
        count(&c.late_refused),
        count(&c.in_progress),
        count(&c.unavailable),
        count(&proxy.counts.connections),
        count(&proxy.counts.resets),
        count(&proxy.counts.delays),
    );

    assert_exactly_once(&shared, KEYS);
    // Fencing: every worker whose lease ended was refused.
    assert!(count(&c.late) > 0);
    assert_eq!(count(&c.late_refused), count(&c.late));
    // The faults happened.
    assert!(count(&c.aborted) > 0 && count(&c.crashed) > 0 && count(&c.takeovers) > 0);
    assert!(count(&proxy.counts.resets) > 0 && count(&proxy.counts.delays) > 0);

    // Nothing is left in flight: every key's entry is completed.
    let check =
        BlockingRedisStore::open(&server.url(), config("eo:", Duration::from_secs(1))).unwrap();
    for key in 0..KEYS {
        let entry = check
            .inspect(&key_name(key))
            .unwrap()
            .expect("an entry per key");
        assert_eq!(entry.state, EntryState::Done, "key {key}");
        assert!(entry.expires_in.is_some());
    }
}

#[test]
fn redis_stopped_mid_run_gives_503s_runs_nothing_twice_and_service_resumes() {
    const KEYS: usize = 1_500;
    const THREADS: usize = 8;
    let mut server = RedisServer::start().expect("redis-server");
    let store =
        BlockingRedisStore::open(&server.url(), config("stop:", Duration::from_millis(100)))
            .unwrap();
    let shared = shared(KEYS, THREADS);
    let next = AtomicU64::new(0);
    let unavailable_during_outage = AtomicU64::new(0);
    let outage = Mutex::new(None::<(Instant, Instant)>);
    std::thread::scope(|s| {
        for id in 0..THREADS {
            let (store, shared, next) = (&store, &shared, &next);
            let (outage, unavailable_during_outage) = (&outage, &unavailable_during_outage);
            s.spawn(move || loop {
                // Each key is taken 8 times in a row, by whichever threads
                // come: they meet on keys and see each other in progress.
                // Answers are kept per turn.
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= KEYS * THREADS {
                    break;
                }
                let (key, turn) = (i / THREADS, i % THREADS);
                loop {
                    match store.begin(&key_name(key), &fingerprint(key)) {
                        Ok(Begin::Execute(ticket)) => {
                            let receipt = format!("receipt {key} by {id}").into_bytes();
                            shared.charges[key].fetch_add(1, Ordering::SeqCst);
                            *shared.receipts[key].lock().unwrap() = Some(receipt.clone());
                            loop {
                                match store.complete(&ticket, &receipt) {
                                    Ok(()) => break,
                                    Err(err)
                                        if err.is_unavailable()
                                            && Instant::now() < ticket.lease_ends() =>
                                    {
                                        std::thread::sleep(Duration::from_millis(20));
                                    }
                                    Err(_) => {
                                        shared.counts.unstored.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                }
                            }
                            shared.answers[turn].lock().unwrap()[key] = Some(receipt);
                            break;
                        }
                        Ok(Begin::Replay(receipt)) => {
                            shared.answers[turn].lock().unwrap()[key] = Some(receipt);
                            break;
                        }
                        Ok(Begin::InProgress) => std::thread::sleep(Duration::from_millis(2)),
                        Err(err) if err.is_unavailable() => {
                            let now = Instant::now();
                            if outage
                                .lock()
                                .unwrap()
                                .is_some_and(|(from, to)| from <= now && now <= to)
                            {
                                unavailable_during_outage.fetch_add(1, Ordering::Relaxed);
                            }
                            shared.counts.unavailable.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        other => panic!("{other:?}"),
                    }
                }
            });
        }
        // Mid-run: stop Redis for a second, then bring it back.
        while next.load(Ordering::Relaxed) < (KEYS * THREADS / 3) as u64 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stopped = Instant::now();
        *outage.lock().unwrap() = Some((stopped, stopped + Duration::from_secs(3600)));
        server.stop().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        server.restart().unwrap();
        let back = Instant::now();
        *outage.lock().unwrap() = Some((stopped, back));
    });
    eprintln!(
        "{} unavailable answers, {} of them while Redis was down",
        shared.counts.unavailable.load(Ordering::Relaxed),
        unavailable_during_outage.load(Ordering::Relaxed)
    );
    assert!(unavailable_during_outage.load(Ordering::Relaxed) > 0);
    assert_exactly_once(&shared, KEYS);
}
