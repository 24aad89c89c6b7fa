//! The store's answers against a real `redis-server` started by the test:
//! each verb, leases and fencing, a re-sent `begin`, every entry with an
//! expiry, Redis unreachable, hanging, and stopped then restarted — and a
//! model test holding its answers to the in-process `IdempotencyTable`'s.
#![cfg(feature = "client")]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use stormguard::RetryPolicy;
use stormguard_redis::testing::RedisServer;
use stormguard_redis::{
    keys, scripts, Begin, BlockingRedisStore, EntryState, Error, RedisStore, StoreConfig, Ticket,
};

fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| RedisServer::start().expect("redis-server starts"))
}

/// A store on the shared server, its keys under a prefix of the test's own.
fn store(prefix: &str, lease: Duration) -> BlockingRedisStore {
    let config = StoreConfig::builder()
        .prefix(format!("test:{prefix}:"))
        .lease(lease)
        .ttl(Duration::from_secs(600))
        .build()
        .expect("valid config");
    BlockingRedisStore::open(&server().url(), config).expect("valid url")
}

fn execute(answer: Result<Begin, Error>) -> Ticket {
    match answer {
        Ok(Begin::Execute(ticket)) => ticket,
        other => panic!("expected Execute, got {other:?}"),
    }
}

#[test]
fn the_verbs_answer_as_the_table_does() {
    let store = store("verbs", Duration::from_secs(60));
    let ticket = execute(store.begin("k1", b"alice 30"));
    assert_eq!(ticket.key(), "k1");
    assert_eq!(store.begin("k1", b"alice 30").unwrap(), Begin::InProgress);
    assert_eq!(store.begin("k1", b"alice 99").unwrap(), Begin::Mismatch);
    store.complete(&ticket, b"receipt 1").unwrap();
    assert_eq!(
        store.begin("k1", b"alice 30").unwrap(),
        Begin::Replay(b"receipt 1".to_vec())
    );
    assert_eq!(store.begin("k1", b"alice 99").unwrap(), Begin::Mismatch);
    // complete is idempotent for its ticket; abort of a completed key is stale.
    store.complete(&ticket, b"receipt 1").unwrap();
    assert!(matches!(store.abort(&ticket), Err(Error::Stale)));

    let second = execute(store.begin("k2", b""));
    store.abort(&second).unwrap();
    assert!(matches!(store.abort(&second), Err(Error::Stale)));
    assert!(matches!(store.complete(&second, b"x"), Err(Error::Stale)));
    let third = execute(store.begin("k2", b""));
    assert!(third.fencing_token() > second.fencing_token());

    // Binary responses and fingerprints survive byte for byte.
    let bytes: Vec<u8> = (0..=255).collect();
    let ticket = execute(store.begin("bin", &bytes));
    store.complete(&ticket, &bytes).unwrap();
    assert_eq!(store.begin("bin", &bytes).unwrap(), Begin::Replay(bytes));
    let empty = execute(store.begin("empty", b"fp"));
    store.complete(&empty, b"").unwrap();
    assert_eq!(store.begin("empty", b"fp").unwrap(), Begin::Replay(vec![]));
}

#[test]
fn bad_keys_and_fingerprints_are_typed_errors_naming_the_field() {
    let store = store("bad", Duration::from_secs(60));
    let err = store.begin("", b"fp").unwrap_err();
    assert_eq!(
        (err.status(), err.to_string().as_str()),
        (400, "invalid key: must not be empty")
    );
    let err = store.begin(&"k".repeat(256), b"fp").unwrap_err();
    assert_eq!(err.to_string(), "invalid key: at most 255 bytes, found 256");
    let err = store.begin("k", &[0; 1025]).unwrap_err();
    assert!(matches!(err, Error::Invalid(e) if e.field() == "fingerprint"));
    // Braces and percent signs in keys are fine, and distinct.
    for key in ["{", "}", "%7B", "a{b}c"] {
        let ticket = execute(store.begin(key, b"fp"));
        store.complete(&ticket, key.as_bytes()).unwrap();
    }
    for key in ["{", "}", "%7B", "a{b}c"] {
        assert_eq!(
            store.begin(key, b"fp").unwrap(),
            Begin::Replay(key.as_bytes().to_vec())
        );
    }
}

#[test]
fn a_lease_that_ends_frees_the_key_and_fences_the_late_worker() {
    let store = store("lease", Duration::from_millis(300));
    let late = execute(store.begin("k", b"fp"));
    let entry = store.inspect("k").unwrap().expect("in flight");
    assert_eq!(entry.state, EntryState::Running);
    assert!(entry
        .expires_in
        .is_some_and(|left| left <= Duration::from_millis(300)));
    assert!(late.lease_ends() <= Instant::now() + Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(400));
    // Redis deleted the in-flight entry when its lease ended.
    assert_eq!(store.inspect("k").unwrap(), None);
    let takeover = execute(store.begin("k", b"fp"));
    assert!(takeover.fencing_token() > late.fencing_token());
    // The late worker can neither store its result nor release the key.
    assert!(matches!(store.complete(&late, b"late"), Err(Error::Stale)));
    assert!(matches!(store.abort(&late), Err(Error::Stale)));
    store.complete(&takeover, b"fresh").unwrap();
    assert_eq!(
        store.begin("k", b"fp").unwrap(),
        Begin::Replay(b"fresh".to_vec())
    );
    // Fenced even without a takeover.
    let slow = execute(store.begin("other", b"fp"));
    std::thread::sleep(Duration::from_millis(400));
    assert!(matches!(store.complete(&slow, b"late"), Err(Error::Stale)));
}

#[test]
fn completed_entries_expire_after_the_ttl() {
    let config = StoreConfig::builder()
        .prefix("test:ttl:")
        .ttl(Duration::from_millis(300))
        .build()
        .unwrap();
    let store = BlockingRedisStore::open(&server().url(), config).unwrap();
    let ticket = execute(store.begin("k", b"fp"));
    store.complete(&ticket, b"r").unwrap();
    let entry = store.inspect("k").unwrap().expect("completed");
    assert_eq!(entry.state, EntryState::Done);
    assert!(entry
        .expires_in
        .is_some_and(|left| left <= Duration::from_millis(300)));
    std::thread::sleep(Duration::from_millis(400));
    // Reuse after expiry is a new request, whatever its payload.
    let again = execute(store.begin("k", b"another payload"));
    assert!(again.fencing_token() > ticket.fencing_token());
}

/// The begin script called twice with one owner token — as when the first
/// reply was lost and the store sent it again — claims the key once.
#[test]
fn a_re_sent_begin_is_the_same_claim() {
    let mut conn = redis::Client::open(server().url())
        .unwrap()
        .get_connection()
        .unwrap();
    let entry = keys::entry_key("test:resend:", "k").unwrap();
    let fence = keys::fence_key(&entry);
    let begin = redis::Script::new(scripts::BEGIN);
    let call = |owner: &str, conn: &mut redis::Connection| -> redis::Value {
        begin
            .key(&entry)
            .key(&fence)
            .arg("fp")
            .arg(owner)
            .arg(60_000)
            .arg(120_000)
            .invoke(conn)
            .unwrap()
    };
    let first = call("owner-a", &mut conn);
    let resent = call("owner-a", &mut conn);
    assert_eq!(first, resent, "the same ticket, not a second claim");
    let other = call("owner-b", &mut conn);
    assert!(format!("{other:?}").contains("in_progress"), "{other:?}");
}

#[test]
fn every_entry_and_fence_key_has_an_expiry() {
    let store = store("expiry", Duration::from_secs(60));
    for i in 0..50 {
        let ticket = execute(store.begin(&format!("k{i}"), b"fp"));
        match i % 3 {
            0 => store.complete(&ticket, b"r").unwrap(),
            1 => store.abort(&ticket).unwrap(),
            _ => {} // left in flight
        }
    }
    let keys = server().command(&["KEYS", "test:expiry:*"]).unwrap();
    let keys: Vec<&str> = keys.lines().collect();
    assert!(keys.len() >= 50, "{keys:?}");
    for key in keys {
        let ttl: i64 = server().command(&["PTTL", key]).unwrap().parse().unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
        assert_eq!(
            keys::hash_slot(key),
            keys::hash_slot(key.trim_end_matches(":fence"))
        );
    }
}

#[test]
fn unreachable_redis_is_unavailable_and_nothing_runs() {
    let config = StoreConfig::builder()
        .attempt_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = BlockingRedisStore::open(&format!("redis://127.0.0.1:{port}/"), config).unwrap();
    let started = Instant::now();
    let err = store.begin("k", b"fp").unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(err.status(), 503);
    assert!(
        err.to_string()
            .starts_with("Redis unavailable for begin after 3 attempts"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_hanging_redis_times_out_and_the_claim_is_released_or_leased() {
    let server = RedisServer::start().unwrap();
    let config = StoreConfig::builder()
        .attempt_timeout(Duration::from_millis(100))
        .retry(RetryPolicy::builder().max_attempts(2).build().unwrap())
        .lease(Duration::from_secs(60))
        .build()
        .unwrap();
    let store = BlockingRedisStore::open(&server.url(), config).unwrap();
    // Connect and load the script first (a first EVALSHA would otherwise
    // be refused with NOSCRIPT once the pause ends, and nothing would
    // run), then hang the server for longer than every attempt.
    let warm_up = execute(store.begin("warm-up", b"fp"));
    store.abort(&warm_up).unwrap();
    server.pause(Duration::from_millis(800)).unwrap();
    let err = store.begin("k", b"fp").unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // The begin reaches Redis once the pause ends; the store's best-effort
    // abort, sent after it on the same connection, releases it — so the key
    // is free, not held for a minute by a claim nobody acts on.
    std::thread::sleep(Duration::from_millis(900));
    let deadline = Instant::now() + Duration::from_secs(5);
    let ticket = loop {
        match store.begin("k", b"fp") {
            Ok(Begin::Execute(ticket)) => break ticket,
            other if Instant::now() < deadline => {
                assert!(matches!(
                    other,
                    Ok(Begin::InProgress) | Err(Error::Unavailable(_))
                ));
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("the key stayed blocked: {other:?}"),
        }
    };
    store.complete(&ticket, b"once").unwrap();
}

#[test]
fn redis_stopped_then_restarted_answers_503_then_resumes_with_its_data() {
    let mut server = RedisServer::start().unwrap();
    let config = StoreConfig::builder()
        .attempt_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let store = BlockingRedisStore::open(&server.url(), config).unwrap();
    let done = execute(store.begin("done", b"fp"));
    store.complete(&done, b"r").unwrap();
    let running = execute(store.begin("running", b"fp"));
    server.stop().unwrap();
    assert!(store.begin("new", b"fp").unwrap_err().is_unavailable());
    assert!(store.complete(&running, b"r").unwrap_err().is_unavailable());
    server.restart().unwrap();
    // The connection manager reconnects; the data survived the restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.begin("done", b"fp") {
            Ok(answer) => {
                assert_eq!(answer, Begin::Replay(b"r".to_vec()));
                break;
            }
            Err(err) if err.is_unavailable() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("{err}"),
        }
    }
    store.complete(&running, b"r2").unwrap();
    assert_eq!(
        store.begin("running", b"fp").unwrap(),
        Begin::Replay(b"r2".to_vec())
    );
}

#[test]
fn the_async_store_runs_on_smol_without_tokio() {
    let store = RedisStore::open(
        &server().url(),
        StoreConfig::builder()
            .prefix("test:async:")
            .build()
            .unwrap(),
    )
    .unwrap();
    smol::block_on(async {
        let Begin::Execute(ticket) = store.begin("k", b"fp").await.unwrap() else {
            panic!("a fresh key")
        };
        store.complete(&ticket, b"r").await.unwrap();
        assert_eq!(
            store.begin("k", b"fp").await.unwrap(),
            Begin::Replay(b"r".to_vec())
        );
    });
}

// The model test: random sequences of begin / complete / abort on a few
// keys and payloads, against the store and against the in-process table,
// must get the same answers. Leases and TTLs are long (no time passes in a
// case); each case has a prefix of its own.

#[derive(Clone, Debug)]
enum Op {
    Begin { key: u8, fingerprint: u8 },
    Complete { pick: usize, response: u16 },
    Abort { pick: usize },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        5 => (0u8..5, 0u8..2).prop_map(|(key, fingerprint)| Op::Begin { key, fingerprint }),
        3 => (any::<usize>(), any::<u16>()).prop_map(|(pick, response)| Op::Complete { pick, response }),
        2 => any::<usize>().prop_map(|pick| Op::Abort { pick }),
    ];
    proptest::collection::vec(op, 1..40)
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Execute,
    Replay(u16),
    InProgress,
    Mismatch,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_store_answers_as_the_in_process_table(ops in ops()) {
        static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = store(&format!("model{case}"), Duration::from_secs(600));
        let mut table = stormguard::IdempotencyTable::<u8, u16, 8>::new();
        let now = stormguard::Instant::ZERO;
        let mut tickets: Vec<(Ticket, stormguard::Ticket)> = Vec::new();
        for op in ops {
            match op {
                Op::Begin { key, fingerprint } => {
                    let expected = match table.begin(key, u64::from(fingerprint), now) {
                        stormguard::Begin::Execute(t) => Some(t),
                        stormguard::Begin::Replay(r) => { let r = *r; prop_assert_eq!(got(&store, key, fingerprint, &mut tickets, None), Answer::Replay(r)); continue; }
                        stormguard::Begin::InProgress => { prop_assert_eq!(got(&store, key, fingerprint, &mut tickets, None), Answer::InProgress); continue; }
                        stormguard::Begin::Mismatch => { prop_assert_eq!(got(&store, key, fingerprint, &mut tickets, None), Answer::Mismatch); continue; }
                        other => panic!("{other:?}"),
                    };
                    prop_assert_eq!(got(&store, key, fingerprint, &mut tickets, expected), Answer::Execute);
                }
                Op::Complete { pick, response } if !tickets.is_empty() => {
                    let (ticket, core) = tickets.swap_remove(pick % tickets.len());
                    let expected = table.complete(core, response, now).is_ok();
                    let got = store.complete(&ticket, &response.to_be_bytes());
                    prop_assert_eq!(got.is_ok(), expected, "{:?}", got);
                }
                Op::Abort { pick } if !tickets.is_empty() => {
                    let (ticket, core) = tickets.swap_remove(pick % tickets.len());
                    let expected = table.abort(core).is_ok();
                    let got = store.abort(&ticket);
                    prop_assert_eq!(got.is_ok(), expected, "{:?}", got);
                }
                Op::Complete { .. } | Op::Abort { .. } => {}
            }
        }
    }
}

fn got(
    store: &BlockingRedisStore,
    key: u8,
    fingerprint: u8,
    tickets: &mut Vec<(Ticket, stormguard::Ticket)>,
    core: Option<stormguard::Ticket>,
) -> Answer {
    match store
        .begin(&key.to_string(), &[fingerprint])
        .expect("redis answers")
    {
        Begin::Execute(ticket) => {
            if let Some(core) = core {
                tickets.push((ticket, core));
            }
            Answer::Execute
        }
        Begin::Replay(bytes) => {
            Answer::Replay(u16::from_be_bytes(bytes.try_into().expect("two bytes")))
        }
        Begin::InProgress => Answer::InProgress,
        Begin::Mismatch => Answer::Mismatch,
        other => panic!("{other:?}"),
    }
}
