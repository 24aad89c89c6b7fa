//! Exactly once, proven: a `charge(account, amount, key)` service behind a
//! `SyncIdempotencyTable`, eight client threads sending every key at the
//! same time, and injected failures on both sides of the side effect —
//! the handler failing before it charges (it aborts its ticket) and the
//! response lost after it charged (the client's `Retry` replays the key and
//! must get the stored receipt). Across 10 000 keys, every key is charged
//! exactly once and every client ends with that charge's receipt.
//!
//! Time is a shared fake clock: it stands still within a round of keys and
//! jumps past the TTL between rounds, so every round's entries expire and
//! the next round's keys reclaim their slots. Nothing sleeps.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use stormguard::{
    Backoff, Begin, Decision, Failure, Idempotency, IdempotencyKey, Instant, NoBudget, Random,
    Replay, Retry, RetryPolicy, SyncIdempotencyTable,
};

const THREADS: usize = 8;
const ROUNDS: usize = 100;
const KEYS_PER_ROUND: usize = 100;
const ACCOUNTS: usize = 16;
const TTL: Duration = Duration::from_secs(3600);
/// Percent of attempts whose handler fails before charging.
const FAIL_BEFORE_EFFECT: u32 = 15;
/// Percent of attempts whose response is lost after the handler answered.
const LOSE_RESPONSE: u32 = 15;

/// What a charge returns, and what the table stores for replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Receipt {
    /// Unique per execution of the side effect: a second execution of the
    /// same key would show up as a different receipt.
    id: u64,
    account: usize,
    amount: i64,
}

/// A logical request: the same for all eight clients.
#[derive(Clone, Copy)]
struct Request {
    key: IdempotencyKey,
    account: usize,
    amount: i64,
}

/// The service: balances, a ledger of every side effect, the dedupe table.
struct Bank {
    table: SyncIdempotencyTable<IdempotencyKey, Receipt, 128>,
    balances: Vec<AtomicI64>,
    ledger: Mutex<Vec<(IdempotencyKey, Receipt)>>,
    next_receipt: AtomicU64,
    clock: AtomicU64,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    attempts: AtomicU64,
    executed: AtomicU64,
    aborted: AtomicU64,
    replayed: AtomicU64,
    in_progress: AtomicU64,
    lost: AtomicU64,
    /// The most attempts one client needed for one key.
    max_attempts: AtomicU32,
}

impl Bank {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.load(Relaxed))
    }

    /// The handler. `rng` injects this attempt's faults.
    fn charge(
        &self,
        account: usize,
        amount: i64,
        key: IdempotencyKey,
        rng: &mut fastrand::Rng,
    ) -> Result<Receipt, Failure> {
        self.stats.attempts.fetch_add(1, Relaxed);
        // The payload's fingerprint: its fields, packed exactly.
        let fingerprint = ((account as u64) << 32) | amount as u64;
        let receipt = match self.table.begin(key, fingerprint, self.now()) {
            Begin::Execute(ticket) => {
                if rng.u32(0..100) < FAIL_BEFORE_EFFECT {
                    self.stats.aborted.fetch_add(1, Relaxed);
                    self.table.abort(ticket).expect("a fresh ticket is current");
                    return Err(Failure::transient()); // a 500: the client cannot know
                }
                // The side effect.
                let receipt = Receipt {
                    id: self.next_receipt.fetch_add(1, Relaxed),
                    account,
                    amount,
                };
                self.balances[account].fetch_sub(amount, Relaxed);
                self.ledger.lock().unwrap().push((key, receipt));
                self.stats.executed.fetch_add(1, Relaxed);
                self.table
                    .complete(ticket, receipt, self.now())
                    .expect("no lease runs out: the clock stands still within a round");
                receipt
            }
            Begin::Replay(receipt) => {
                self.stats.replayed.fetch_add(1, Relaxed);
                receipt
            }
            Begin::InProgress => {
                self.stats.in_progress.fetch_add(1, Relaxed);
                // 409: another attempt holds the key; try again later.
                return Err(Failure::transient().with_replay(Replay::Rejected));
            }
            Begin::Full => return Err(Failure::overloaded().with_replay(Replay::Rejected)),
            Begin::Mismatch => return Err(Failure::permanent()),
            // `Begin` is non-exhaustive: a new answer needs its own HTTP
            // status here before this test can say anything about it.
            other => panic!("an answer the bank does not handle: {other:?}"),
        };
        if rng.u32(0..100) < LOSE_RESPONSE {
            self.stats.lost.fetch_add(1, Relaxed);
            return Err(Failure::timeout()); // it ran, but the client cannot know
        }
        Ok(receipt)
    }
}

/// One client's logical call: one key, attempts driven by a real `Retry`.
fn client_charge(
    bank: &Bank,
    policy: &RetryPolicy,
    request: Request,
    rng: &mut fastrand::Rng,
) -> Result<Receipt, String> {
    let mut call = Retry::with_seed(policy, bank.now(), rng.u64(..));
    loop {
        match bank.charge(request.account, request.amount, request.key, rng) {
            Ok(receipt) => {
                call.on_success(bank.now(), &NoBudget);
                bank.stats.max_attempts.fetch_max(call.attempts(), Relaxed);
                return Ok(receipt);
            }
            Err(failure) => match call.on_failure(&failure, bank.now(), &NoBudget) {
                // The backoff is zero; let the key's holder run.
                Decision::Retry { .. } => std::thread::yield_now(),
                Decision::GiveUp(reason) => {
                    return Err(format!("{:?} gave up: {reason}", request.key));
                }
            },
        }
    }
}

#[test]
fn every_key_is_charged_exactly_once_and_every_client_gets_its_receipt() {
    let started = std::time::Instant::now();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut keys = Random::with_seed(0x5eed);
    let requests: Vec<Request> = (0..ROUNDS * KEYS_PER_ROUND)
        .map(|i| Request {
            key: IdempotencyKey::from_rng(&mut keys),
            account: i % ACCOUNTS,
            amount: rng.i64(1..1_000),
        })
        .collect();
    let bank = Bank {
        table: SyncIdempotencyTable::with_ttl(TTL).unwrap(),
        balances: (0..ACCOUNTS).map(|_| AtomicI64::new(0)).collect(),
        ledger: Mutex::new(Vec::new()),
        next_receipt: AtomicU64::new(1),
        clock: AtomicU64::new(0),
        stats: Stats::default(),
    };
    // Keyed: a lost response may be replayed. No waiting between attempts
    // (the fake clock stands still); the attempt limit only stops a key that
    // would be stuck forever (a healthy run needs at most a few dozen, but a
    // busy machine may preempt a key's holder while the others spin).
    let policy = RetryPolicy::builder()
        .idempotency(Idempotency::Keyed)
        .max_attempts(200_000)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()
        .unwrap();
    let barrier = Barrier::new(THREADS);
    // Set by the first client that gives up: the others stop working (but
    // keep meeting at the barrier) so a failing run ends quickly.
    let failed = AtomicBool::new(false);

    let per_client: Vec<Result<Vec<Receipt>, String>> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..THREADS as u64)
            .map(|client| {
                let (bank, policy, requests, barrier, failed) =
                    (&bank, &policy, &requests, &barrier, &failed);
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(client);
                    let mut receipts = Vec::with_capacity(requests.len());
                    let mut failure = None;
                    for round in requests.chunks(KEYS_PER_ROUND) {
                        // Every client sends every key of the round, in the
                        // same order: they collide on the same key at once.
                        for &request in round {
                            if failed.load(Relaxed) {
                                break;
                            }
                            match client_charge(bank, policy, request, &mut rng) {
                                Ok(receipt) => receipts.push(receipt),
                                Err(reason) => {
                                    failed.store(true, Relaxed);
                                    failure = failure.or(Some(reason));
                                }
                            }
                        }
                        if barrier.wait().is_leader() {
                            // Past the TTL: this round's entries expire.
                            bank.clock.fetch_add(2 * TTL.as_nanos() as u64, Relaxed);
                        }
                        barrier.wait();
                    }
                    failure.map_or(Ok(receipts), Err)
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();

    // Every client got a receipt for every key…
    let per_client: Vec<Vec<Receipt>> = per_client
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|reason| panic!("{reason}"));
    // …the same receipt as every other client…
    for (client, receipts) in per_client.iter().enumerate() {
        assert_eq!(receipts.len(), requests.len());
        assert!(
            receipts == &per_client[0],
            "client {client} saw another receipt"
        );
    }
    // …and it is the one charge the ledger holds for that key.
    let ledger = bank.ledger.into_inner().unwrap();
    assert_eq!(ledger.len(), requests.len(), "charges != keys");
    for ((request, receipt), (key, charged)) in requests.iter().zip(&per_client[0]).zip(&ledger) {
        assert_eq!((key, charged), (&request.key, receipt));
        assert_eq!(
            (receipt.account, receipt.amount),
            (request.account, request.amount)
        );
    }
    for (account, balance) in bank.balances.iter().enumerate() {
        let billed: i64 = requests
            .iter()
            .filter(|r| r.account == account)
            .map(|r| r.amount)
            .sum();
        assert_eq!(balance.load(Relaxed), -billed, "account {account}");
    }
    // The test is only as good as its faults: every path must have run.
    let s = &bank.stats;
    let (attempts, executed, aborted, replayed, in_progress, lost, max) = (
        s.attempts.load(Relaxed),
        s.executed.load(Relaxed),
        s.aborted.load(Relaxed),
        s.replayed.load(Relaxed),
        s.in_progress.load(Relaxed),
        s.lost.load(Relaxed),
        s.max_attempts.load(Relaxed),
    );
    assert_eq!(executed, requests.len() as u64);
    assert!(aborted > 1_000, "aborts: {aborted}");
    assert!(lost > 1_000, "lost responses: {lost}");
    assert!(
        replayed >= (THREADS as u64 - 1) * executed,
        "replays: {replayed}"
    );
    eprintln!(
        "{} keys × {THREADS} clients in {elapsed:?}: {attempts} attempts, {executed} charges, \
         {aborted} aborted before the charge, {lost} responses lost, {replayed} replays, \
         {in_progress} answered 409; at most {max} attempts for one key",
        requests.len(),
    );
}
