//! The idempotency table against a reference model: a `HashMap` from key to
//! entry that follows the documented rules in the plainest way, with no
//! slots, no generations and no capacity tricks. Random sequences of
//! `begin`, `complete`, `abort`, `purge_expired` and clock moves (forwards
//! and backwards) must get the same answer from the table, from the `Sync`
//! wrapper and from the model at every step.
#![cfg(feature = "std")]

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use stormguard::{
    Begin, ConfigErrorKind, IdempotencyTable, Instant, StaleTicket, SyncIdempotencyTable, Ticket,
};

/// The model's capacity; the table reserves the next power of two and takes
/// this as its limit (a table's `N` is a power of two).
const CAPACITY: usize = 3;
const RESERVED: usize = 4;

type Table = IdempotencyTable<u8, u16, RESERVED>;
type SyncTable = SyncIdempotencyTable<u8, u16, RESERVED>;

/// The rules, written as directly as possible.
struct Model {
    entries: HashMap<u8, ModelEntry>,
    ttl: Duration,
    lease: Duration,
    /// The latest `now` seen.
    latest: Instant,
    next_id: u64,
}

struct ModelEntry {
    fingerprint: u8,
    state: ModelState,
}

enum ModelState {
    InFlight { id: u64, lease_until: Instant },
    Completed { response: u16, expires: Instant },
}

/// A ticket of the model: the key and the execution it names.
#[derive(Clone, Copy, Debug)]
struct ModelTicket {
    key: u8,
    id: u64,
}

/// An answer of `begin`, comparable across the three implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Execute,
    Replay(u16),
    InProgress,
    Mismatch,
    Full,
}

impl Model {
    fn new(ttl: Duration, lease: Duration) -> Self {
        Model {
            entries: HashMap::new(),
            ttl,
            lease,
            latest: Instant::ZERO,
            next_id: 0,
        }
    }

    fn clock(&mut self, now: Instant) -> Instant {
        self.latest = self.latest.max(now);
        self.latest
    }

    fn is_live(entry: &ModelEntry, now: Instant) -> bool {
        match entry.state {
            ModelState::InFlight { lease_until, .. } => now < lease_until,
            ModelState::Completed { expires, .. } => now < expires,
        }
    }

    fn live_count(&self, now: Instant) -> usize {
        let now = self.latest.max(now);
        self.entries
            .values()
            .filter(|e| Model::is_live(e, now))
            .count()
    }

    fn begin(&mut self, key: u8, fingerprint: u8, now: Instant) -> (Answer, Option<ModelTicket>) {
        let now = self.clock(now);
        if let Some(entry) = self.entries.get(&key).filter(|e| Model::is_live(e, now)) {
            let answer = if entry.fingerprint != fingerprint {
                Answer::Mismatch
            } else {
                match entry.state {
                    ModelState::InFlight { .. } => Answer::InProgress,
                    ModelState::Completed { response, .. } => Answer::Replay(response),
                }
            };
            return (answer, None);
        }
        // The key has no live entry: it is new (an expired entry is gone).
        if self.live_count(now) >= CAPACITY {
            return (Answer::Full, None);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            key,
            ModelEntry {
                fingerprint,
                state: ModelState::InFlight {
                    id,
                    lease_until: now.saturating_add(self.lease),
                },
            },
        );
        (Answer::Execute, Some(ModelTicket { key, id }))
    }

    fn holds(&self, ticket: ModelTicket, now: Instant) -> bool {
        matches!(
            self.entries.get(&ticket.key),
            Some(ModelEntry { state: ModelState::InFlight { id, lease_until }, .. })
                if *id == ticket.id && now < *lease_until
        )
    }

    fn complete(&mut self, ticket: ModelTicket, response: u16, now: Instant) -> Result<(), u16> {
        let now = self.clock(now);
        if !self.holds(ticket, now) {
            return Err(response);
        }
        let expires = now.saturating_add(self.ttl);
        if let Some(entry) = self.entries.get_mut(&ticket.key) {
            entry.state = ModelState::Completed { response, expires };
        }
        Ok(())
    }

    fn abort(&mut self, ticket: ModelTicket) -> Result<(), ()> {
        if !self.holds(ticket, self.latest) {
            return Err(());
        }
        self.entries.remove(&ticket.key);
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Begin { key: u8, fingerprint: u8 },
    Complete { pick: usize, response: u16 },
    Abort { pick: usize },
    Forward(u64),
    Back(u64),
    Purge,
}

fn ops(max_step: u64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        5 => (0u8..6, 0u8..2).prop_map(|(key, fingerprint)| Op::Begin { key, fingerprint }),
        3 => (any::<usize>(), any::<u16>()).prop_map(|(pick, response)| Op::Complete { pick, response }),
        1 => any::<usize>().prop_map(|pick| Op::Abort { pick }),
        3 => (0..=max_step).prop_map(Op::Forward),
        1 => (0..=max_step).prop_map(Op::Back),
        1 => Just(Op::Purge),
    ];
    proptest::collection::vec(op, 1..80)
}

fn answer<T: Into<u16>>(begin: Begin<T>, tickets: &mut Vec<Ticket>) -> Answer {
    match begin {
        Begin::Execute(ticket) => {
            tickets.push(ticket);
            Answer::Execute
        }
        Begin::Replay(response) => Answer::Replay(response.into()),
        Begin::InProgress => Answer::InProgress,
        Begin::Mismatch => Answer::Mismatch,
        Begin::Full => Answer::Full,
        // `Begin` is non-exhaustive: a new answer needs a model first.
        _ => panic!("an answer the model does not know"),
    }
}

/// Runs `ops` on the table, the `Sync` table and the model, comparing every
/// answer; `start` is the first `now`.
fn run(ttl: Duration, lease: Duration, start: Instant, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut table = Table::with_timeouts(ttl, lease)
        .and_then(|t| t.with_limit(CAPACITY))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let shared = Table::with_timeouts(ttl, lease)
        .and_then(|t| t.with_limit(CAPACITY))
        .map(SyncTable::from_table)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model = Model::new(ttl, lease);
    // Outstanding tickets, at the same positions in all three lists.
    let mut tickets: Vec<Ticket> = Vec::new();
    let mut shared_tickets: Vec<Ticket> = Vec::new();
    let mut model_tickets: Vec<ModelTicket> = Vec::new();
    let mut now = start;

    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Begin { key, fingerprint } => {
                let fp = u64::from(fingerprint);
                let expected = model.begin(key, fingerprint, now);
                let got = answer(table.begin(key, fp, now).map_replay(|r| *r), &mut tickets);
                let got_shared = answer(shared.begin(key, fp, now), &mut shared_tickets);
                if let Some(ticket) = expected.1 {
                    model_tickets.push(ticket);
                }
                prop_assert_eq!(
                    got,
                    expected.0,
                    "step {}: begin({}, {})",
                    step,
                    key,
                    fingerprint
                );
                prop_assert_eq!(got_shared, expected.0, "step {}: sync begin", step);
            }
            Op::Complete { pick, response } if !model_tickets.is_empty() => {
                let i = pick % model_tickets.len();
                let expected = model.complete(model_tickets.swap_remove(i), response, now);
                let got = table
                    .complete(tickets.swap_remove(i), response, now)
                    .map_err(StaleTicket::into_response);
                let got_shared = shared
                    .complete(shared_tickets.swap_remove(i), response, now)
                    .map_err(StaleTicket::into_response);
                prop_assert_eq!(got, expected, "step {}: complete", step);
                prop_assert_eq!(got_shared, expected, "step {}: sync complete", step);
            }
            Op::Abort { pick } if !model_tickets.is_empty() => {
                let i = pick % model_tickets.len();
                let expected = model.abort(model_tickets.swap_remove(i));
                let got = table.abort(tickets.swap_remove(i)).map_err(drop);
                let got_shared = shared.abort(shared_tickets.swap_remove(i)).map_err(drop);
                prop_assert_eq!(got, expected, "step {}: abort", step);
                prop_assert_eq!(got_shared, expected, "step {}: sync abort", step);
            }
            Op::Complete { .. } | Op::Abort { .. } => {}
            Op::Forward(nanos) => now += Duration::from_nanos(nanos),
            Op::Back(nanos) => now = now - Duration::from_nanos(nanos),
            Op::Purge => {
                model.clock(now);
                let purged = table.purge_expired(now);
                let purged_shared = shared.purge_expired(now);
                prop_assert_eq!(purged, purged_shared, "step {}: purge", step);
            }
        }
        let live = model.live_count(now);
        prop_assert_eq!(table.live_entries(now), live, "step {}: live entries", step);
        prop_assert_eq!(
            shared.live_entries(now),
            live,
            "step {}: sync live entries",
            step
        );
    }
    Ok(())
}

const MS: u64 = 1_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// A TTL of 500 ms, leases of 200 ms, steps of up to 300 ms: entries
    /// expire, leases run out and slots are reclaimed within one sequence.
    #[test]
    fn table_matches_the_model(ops in ops(300 * MS)) {
        run(Duration::from_millis(500), Duration::from_millis(200), Instant::from_secs(1), &ops)?;
    }

    /// Any TTL, any lease, any start and any step, up to the ends of the
    /// clock: saturating arithmetic everywhere, the same answers, no panic.
    #[test]
    fn table_matches_the_model_at_the_extremes(
        ttl in 1..=u64::MAX,
        lease in 1..=u64::MAX,
        start in any::<u64>(),
        ops in ops(u64::MAX),
    ) {
        run(Duration::from_nanos(ttl), Duration::from_nanos(lease), Instant::from_nanos(start), &ops)?;
    }
}

fn table(ttl_ms: u64, lease_ms: u64) -> Table {
    Table::with_timeouts(
        Duration::from_millis(ttl_ms),
        Duration::from_millis(lease_ms),
    )
    .and_then(|t| t.with_limit(CAPACITY))
    .expect("valid timeouts")
}

fn execute<T: std::fmt::Debug>(answer: Begin<T>) -> Ticket {
    match answer {
        Begin::Execute(ticket) => ticket,
        other => panic!("expected Execute, got {other:?}"),
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn full_evicts_nothing_live_and_reclaims_expired_entries() {
    let mut t = table(1_000, 500);
    let done = execute(t.begin(1, 0, at(0)));
    t.complete(done, 10, at(0)).expect("fresh ticket"); // kept until 1000 ms
    let _two = execute(t.begin(2, 0, at(0))); // leased until 500 ms
    let _three = execute(t.begin(3, 0, at(400))); // leased until 900 ms
                                                  // Every slot is live: a new key is refused, and every entry survives.
    assert_eq!(t.begin(4, 0, at(450)), Begin::Full);
    assert_eq!(t.begin(1, 0, at(450)), Begin::Replay(&10));
    assert_eq!(t.begin(2, 0, at(450)), Begin::InProgress);
    assert_eq!(t.begin(3, 0, at(450)), Begin::InProgress);
    // Key 2's lease runs out at 500 ms: the new key reclaims its slot…
    let _four = execute(t.begin(4, 0, at(500))); // leased until 1000 ms
                                                 // …and the table is full again, still holding key 1's response.
    assert_eq!(t.begin(5, 0, at(500)), Begin::Full);
    // Key 3's lease ran out at 900 ms: key 5 gets that slot, not key 1's.
    let _five = execute(t.begin(5, 0, at(950)));
    assert_eq!(t.begin(6, 0, at(950)), Begin::Full);
    assert_eq!(t.begin(1, 0, at(999)), Begin::Replay(&10));
    // At 1000 ms key 1 expires (and key 4's lease runs out): room again, and
    // key 1 is a new request.
    assert_eq!(t.live_entries(at(1_000)), 1);
    let _six = execute(t.begin(6, 0, at(1_000)));
    let _one = execute(t.begin(1, 0, at(1_000)));
    assert_eq!(t.begin(7, 0, at(1_000)), Begin::Full);
}

#[test]
fn a_lease_that_runs_out_lets_a_retry_take_over_and_fences_the_old_ticket() {
    let mut t = table(10_000, 100);
    let crashed = execute(t.begin(7, 0, at(0)));
    assert_eq!(t.begin(7, 0, at(99)), Begin::InProgress);
    let retry = execute(t.begin(7, 0, at(100)));
    assert!(retry.fencing_token() > crashed.fencing_token());
    // The old worker wakes up: it can neither overwrite nor release the key.
    assert_eq!(
        t.complete(crashed, 1, at(150))
            .map_err(StaleTicket::into_response),
        Err(1)
    );
    assert_eq!(t.begin(7, 0, at(150)), Begin::InProgress);
    t.complete(retry, 2, at(150))
        .expect("the takeover's ticket is current");
    assert_eq!(t.begin(7, 0, at(151)), Begin::Replay(&2));
}

#[test]
fn a_worker_past_its_lease_is_fenced_even_without_a_takeover() {
    let mut t = table(10_000, 100);
    let slow = execute(t.begin(7, 0, at(0)));
    let other = execute(t.begin(8, 0, at(100)));
    assert!(t.abort(slow).is_err(), "the table's clock is at 100 ms");
    t.abort(other).expect("current");
    let slow = execute(t.begin(7, 0, at(200)));
    assert_eq!(
        t.complete(slow, 3, at(300))
            .map_err(StaleTicket::into_response),
        Err(3)
    );
    assert!(matches!(t.begin(7, 0, at(300)), Begin::Execute(_)));
}

#[test]
fn a_clock_going_backwards_neither_panics_nor_revives_an_entry() {
    let mut t = table(1_000, 100);
    let ticket = execute(t.begin(1, 0, at(5_000)));
    t.complete(ticket, 9, at(5_000)).expect("fresh");
    // Far in the past: the table's clock stays at 5 s, the entry is live.
    assert_eq!(t.begin(1, 0, Instant::ZERO), Begin::Replay(&9));
    // Key 1 expires at 6 s; a clock stepping back to 5.5 s cannot revive it.
    let running = execute(t.begin(2, 0, at(6_000)));
    assert!(matches!(t.begin(1, 0, at(5_500)), Begin::Execute(_)));
    // Nor extend a lease: both ran out at 6.1 s, whatever `now` says later.
    assert_eq!(t.purge_expired(at(6_100)), 2);
    assert!(t.complete(running, 1, Instant::ZERO).is_err());
    assert_eq!(t.live_entries(Instant::ZERO), 0);
}

#[test]
fn mismatch_wins_over_in_progress_and_replay() {
    let mut t = table(1_000, 100);
    let ticket = execute(t.begin(1, 0xaa, at(0)));
    assert_eq!(t.begin(1, 0xbb, at(0)), Begin::Mismatch);
    t.complete(ticket, 1, at(0)).expect("fresh");
    assert_eq!(t.begin(1, 0xbb, at(0)), Begin::Mismatch);
    assert_eq!(t.begin(1, 0xaa, at(0)), Begin::Replay(&1));
    // After expiry the key is new: any payload executes.
    assert!(matches!(t.begin(1, 0xbb, at(1_000)), Begin::Execute(_)));
}

#[test]
fn zero_timeouts_are_config_errors_naming_the_field() {
    let err = Table::with_ttl(Duration::ZERO).unwrap_err();
    assert_eq!((err.field(), err.kind()), ("ttl", ConfigErrorKind::Zero));
    let err = Table::with_timeouts(Duration::from_secs(1), Duration::ZERO).unwrap_err();
    assert_eq!(
        (err.field(), err.kind()),
        ("in_flight_timeout", ConfigErrorKind::Zero)
    );
    let err = SyncTable::with_timeouts(Duration::ZERO, Duration::ZERO).unwrap_err();
    assert_eq!(err.field(), "ttl");
}

#[test]
fn a_run_time_limit_below_n_is_a_hard_capacity() {
    let mut t = IdempotencyTable::<u32, u32, 8>::new()
        .with_limit(2)
        .unwrap();
    let now = Instant::from_secs(1);
    let Begin::Execute(a) = t.begin(1, 0, now) else {
        panic!("first key")
    };
    let Begin::Execute(_) = t.begin(2, 0, now) else {
        panic!("second key")
    };
    assert_eq!(t.begin(3, 0, now), Begin::Full);
    t.complete(a, 10, now).unwrap();
    assert_eq!(
        t.begin(3, 0, now),
        Begin::Full,
        "a completed entry is still live"
    );
    // A day later both entries have expired (key 2's lease long ago): two
    // keys get in, a third does not.
    let later = now + t.ttl() + core::time::Duration::from_secs(1);
    assert!(matches!(t.begin(1, 0, later), Begin::Execute(_)));
    assert!(matches!(t.begin(3, 0, later), Begin::Execute(_)));
    assert_eq!(t.begin(4, 0, later), Begin::Full);
    assert_eq!(t.live_entries(later), 2);
    assert_eq!(
        IdempotencyTable::<u8, u8, 4>::new()
            .with_limit(5)
            .unwrap_err()
            .field(),
        "capacity"
    );
    assert_eq!(
        IdempotencyTable::<u8, u8, 4>::new()
            .with_limit(0)
            .unwrap_err()
            .field(),
        "capacity"
    );
}

#[test]
fn defaults_keep_keys_a_day_and_show_in_debug() {
    let table: IdempotencyTable<u8, u16, 4> = IdempotencyTable::new();
    assert_eq!(table.ttl(), Duration::from_secs(24 * 60 * 60));
    let shared: SyncTable = SyncIdempotencyTable::new();
    let shown = format!("{shared:?}");
    assert!(
        shown.starts_with("SyncIdempotencyTable { table: "),
        "{shown}"
    );
    assert!(shown.contains(&format!(
        "{:?}",
        IdempotencyTable::<u8, u16, RESERVED>::new()
    )));
}

#[test]
fn the_shared_table_gives_back_what_it_holds() {
    let shared: SyncTable = SyncIdempotencyTable::new();
    let now = Instant::from_millis(0);
    let Begin::Execute(ticket) = shared.begin(7, 1, now) else {
        panic!("a new key runs")
    };
    shared.complete(ticket, 200, now).unwrap();
    let mut table = shared.into_inner();
    assert_eq!(table.live_entries(now), 1);
    assert!(matches!(table.begin(7, 1, now), Begin::Replay(200)));
}

/// A hasher under which every key has the same hash: the index must then
/// tell keys apart by comparing them, and remove the entry it was asked to.
#[derive(Default)]
struct EveryKeyCollides;

impl core::hash::Hasher for EveryKeyCollides {
    fn finish(&self) -> u64 {
        0x5eed
    }

    fn write(&mut self, _bytes: &[u8]) {}
}

#[test]
fn keys_whose_hashes_collide_stay_apart() {
    let mut t = IdempotencyTable::<u32, u32, 8, EveryKeyCollides>::new();
    let now = Instant::from_secs(1);
    let Begin::Execute(one) = t.begin(1, 0, now) else {
        panic!("a new key runs")
    };
    // Same hash, different key: it runs too, and is not a mismatch.
    let Begin::Execute(two) = t.begin(2, 0xbad, now) else {
        panic!("a key with the same hash is a different key")
    };
    let Begin::Execute(three) = t.begin(3, 0, now) else {
        panic!("a third colliding key runs")
    };
    // Releasing the second key takes its own entry out of the index, not
    // the first one found with its hash.
    t.abort(two).unwrap();
    assert_eq!(t.begin(1, 0, now), Begin::InProgress);
    assert_eq!(t.begin(3, 0, now), Begin::InProgress);
    let Begin::Execute(two) = t.begin(2, 0, now) else {
        panic!("an aborted key runs again")
    };
    t.complete(one, 10, now).unwrap();
    t.complete(two, 20, now).unwrap();
    t.complete(three, 30, now).unwrap();
    assert_eq!(t.begin(1, 0, now), Begin::Replay(&10));
    assert_eq!(t.begin(2, 0, now), Begin::Replay(&20));
    assert_eq!(t.begin(3, 0, now), Begin::Replay(&30));
    assert_eq!(t.begin(2, 0xbad, now), Begin::Mismatch);
    assert_eq!(t.live_entries(now), 3);
}

#[test]
fn the_limit_may_be_the_whole_table_and_capacity_says_which() {
    assert_eq!(IdempotencyTable::<u8, u8, 4>::new().capacity(), 4);
    assert_eq!(
        IdempotencyTable::<u8, u8, 4>::new()
            .with_limit(3)
            .unwrap()
            .capacity(),
        3
    );
    let mut t = IdempotencyTable::<u8, u8, 4>::new().with_limit(4).unwrap();
    assert_eq!(t.capacity(), 4);
    let now = Instant::ZERO;
    for key in 0..4 {
        assert!(
            matches!(t.begin(key, 0, now), Begin::Execute(_)),
            "key {key}"
        );
    }
    assert_eq!(t.begin(4, 0, now), Begin::Full);
}

#[test]
fn an_expired_key_waits_while_a_lowered_limit_is_exceeded() {
    let ttl = Duration::from_secs(10);
    let mut t = IdempotencyTable::<u8, u8, 8>::with_ttl(ttl).unwrap();
    let start = Instant::ZERO;
    let later = start + Duration::from_secs(5);
    for (key, at) in [(1, start), (2, later), (3, later), (4, later)] {
        let Begin::Execute(ticket) = t.begin(key, 0, at) else {
            panic!("key {key} runs")
        };
        t.complete(ticket, key, at).unwrap();
    }
    // The limit drops to 2 while 4 entries are stored.
    let mut t = t.with_limit(2).unwrap();
    // Key 1 has expired, the other three have not: taking key 1's place
    // again would keep the table over its limit, so the answer is Full.
    let at = start + Duration::from_secs(12);
    assert_eq!(t.begin(1, 0, at), Begin::Full);
    assert_eq!(t.live_entries(at), 3);
    // Once they have expired too, key 1 runs again.
    let at = later + ttl;
    assert!(matches!(t.begin(1, 0, at), Begin::Execute(_)));
    assert_eq!(t.live_entries(at), 1);
}

#[test]
fn each_answer_has_its_http_status() {
    let mut t = IdempotencyTable::<u8, u8, 4>::new();
    let execute = t.begin(1, 0, Instant::ZERO);
    assert!(matches!(execute, Begin::Execute(_)));
    assert_eq!(execute.refusal_status(), None);
    assert_eq!(Begin::Replay(()).refusal_status(), None);
    assert_eq!(Begin::<()>::InProgress.refusal_status(), Some(409));
    assert_eq!(Begin::<()>::Mismatch.refusal_status(), Some(422));
    assert_eq!(Begin::<()>::Full.refusal_status(), Some(503));
}

#[test]
fn a_table_and_a_stale_ticket_describe_themselves() {
    let mut t = IdempotencyTable::<u8, u8, 4>::with_timeouts(
        Duration::from_secs(60),
        Duration::from_secs(1),
    )
    .unwrap()
    .with_limit(3)
    .unwrap();
    let Begin::Execute(ticket) = t.begin(1, 0, Instant::from_secs(2)) else {
        panic!("a new key runs")
    };
    assert_eq!(
        format!("{t:?}"),
        "IdempotencyTable { capacity: 3, entries: 1, ttl: 60s, in_flight_timeout: 1s, \
         latest: Instant { nanos: 2000000000 }, .. }"
    );
    // The lease runs out: the ticket is stale.
    let _ = t.begin(2, 0, Instant::from_secs(5));
    let stale = t.complete(ticket, 9, Instant::from_secs(5)).unwrap_err();
    assert_eq!(
        stale.to_string(),
        "stale idempotency ticket: its lease ran out, the key may belong to another execution"
    );
    assert_eq!(stale.into_response(), 9);
}
