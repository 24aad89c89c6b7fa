//! The client's idempotency key: its text form, its parser on hostile
//! input, and a `Retry` of a `Keyed` method sending the same key with every
//! attempt.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use proptest::prelude::*;
use stormguard::{
    Backoff, Begin, Decision, Failure, GiveUp, Idempotency, IdempotencyKey, IdempotencyTable,
    Instant, Jitter, KeyParseError, NoBudget, Random, Replay, Retry, RetryPolicy,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any bytes at all: a key or a typed error, never a panic; and a key
    /// parsed from text prints back as that text, in lower case.
    #[test]
    fn parse_never_panics_and_accepts_only_what_it_prints(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(key) = IdempotencyKey::parse(&bytes) {
            prop_assert_eq!(key.to_ascii().to_vec(), bytes.to_ascii_lowercase());
        }
    }

    /// Text that is nearly a key (the right alphabet, about the right
    /// length) exercises every error path.
    #[test]
    fn near_keys_parse_or_name_the_first_bad_byte(text in "[0-9a-fA-Fg-]{34,38}") {
        let bytes = text.as_bytes();
        let first_bad = bytes.iter().enumerate().find(|&(at, &b)| {
            if matches!(at, 8 | 13 | 18 | 23) { b != b'-' } else { !b.is_ascii_hexdigit() }
        });
        let expected = if bytes.len() != 36 {
            Err(KeyParseError::Length { found: bytes.len() })
        } else {
            match first_bad {
                Some((at, _)) if matches!(at, 8 | 13 | 18 | 23) => Err(KeyParseError::Hyphen { at }),
                Some((at, _)) => Err(KeyParseError::NotHex { at }),
                None => Ok(text.to_ascii_lowercase()),
            }
        };
        prop_assert_eq!(text.parse::<IdempotencyKey>().map(|k| k.to_string()), expected);
    }

    /// Every 128-bit value survives text and bytes.
    #[test]
    fn every_key_round_trips(bits in any::<u128>()) {
        let key = IdempotencyKey::from_u128(bits);
        prop_assert_eq!(key.to_string().parse::<IdempotencyKey>(), Ok(key));
        prop_assert_eq!(IdempotencyKey::parse(&key.to_ascii()), Ok(key));
        prop_assert_eq!(IdempotencyKey::from_bytes(key.to_bytes()), key);
        prop_assert_eq!(key.as_u128(), bits);
    }

    /// Generated keys are version 4, variant 10, 36 characters (≤ 255, the
    /// limit of Stripe's header), and parse back.
    #[test]
    fn generated_keys_are_uuid_v4_text(seed in any::<u64>()) {
        let key = IdempotencyKey::from_rng(&mut Random::with_seed(seed));
        let text = key.to_string();
        prop_assert!(text.len() == 36 && text.len() <= 255);
        prop_assert_eq!(key.version(), 4);
        prop_assert!(matches!(text.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        prop_assert_eq!(text.parse::<IdempotencyKey>(), Ok(key));
    }
}

#[test]
fn ten_thousand_keys_from_one_generator_and_from_new_are_distinct() {
    let mut rng = Random::with_seed(2024);
    let seeded: HashSet<_> = (0..10_000)
        .map(|_| IdempotencyKey::from_rng(&mut rng))
        .collect();
    assert_eq!(seeded.len(), 10_000);
    #[cfg(feature = "std")]
    {
        let fresh: HashSet<_> = (0..10_000).map(|_| IdempotencyKey::new()).collect();
        assert_eq!(fresh.len(), 10_000);
        assert!(fresh.iter().all(|k| k.version() == 4));
    }
}

#[test]
fn uppercase_input_is_accepted_and_printed_in_lower_case() {
    let key: IdempotencyKey = "0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0".parse().unwrap();
    assert_eq!(key.to_string(), "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0");
    assert_eq!(format!("{key:>40}").len(), 40, "Display honours width");
    assert_eq!(
        format!("{key:?}"),
        "IdempotencyKey(0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0)"
    );
}

/// What the flaky server does to one attempt.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The request runs and its response arrives.
    None,
    /// The handler fails before charging (aborting its ticket, if it got
    /// one): a 503.
    BeforeCharge,
    /// The handler answers (charging and storing the receipt, or replaying
    /// it), then the response is lost: the client sees a timeout.
    LoseResponse,
}

/// A `charge` service that dedupes on the key and records what it saw.
struct FlakyBank {
    table: IdempotencyTable<IdempotencyKey, u64, 8>,
    balance: u64,
    next_receipt: u64,
    faults: VecDeque<Fault>,
    keys_seen: Vec<IdempotencyKey>,
}

impl FlakyBank {
    fn new(faults: &[Fault]) -> Self {
        FlakyBank {
            table: IdempotencyTable::new(),
            balance: 100,
            next_receipt: 1,
            faults: faults.iter().copied().collect(),
            keys_seen: Vec::new(),
        }
    }

    fn charge(&mut self, key: IdempotencyKey, amount: u64, now: Instant) -> Result<u64, Failure> {
        self.keys_seen.push(key);
        let fault = self.faults.pop_front().unwrap_or(Fault::None);
        let receipt = match self.table.begin(key, amount, now) {
            Begin::Execute(ticket) => {
                if let Fault::BeforeCharge = fault {
                    self.table.abort(ticket).expect("current ticket");
                    return Err(Failure::overloaded());
                }
                self.balance -= amount;
                let receipt = self.next_receipt;
                self.next_receipt += 1;
                self.table
                    .complete(ticket, receipt, now)
                    .expect("current ticket");
                receipt
            }
            Begin::Replay(receipt) => *receipt,
            _ => return Err(Failure::overloaded()),
        };
        match fault {
            Fault::None => Ok(receipt),
            Fault::BeforeCharge => Err(Failure::overloaded()),
            Fault::LoseResponse => Err(Failure::timeout().with_replay(Replay::Unknown)),
        }
    }
}

/// One logical `charge` driven by a real `Retry`: the key is made once,
/// before the first attempt.
fn charge_with_retries(
    bank: &mut FlakyBank,
    policy: &RetryPolicy,
    amount: u64,
) -> (Result<u64, GiveUp>, u32) {
    let key = IdempotencyKey::from_rng(&mut Random::with_seed(99));
    let mut now = Instant::ZERO;
    let mut call = Retry::with_seed(policy, now, 5);
    loop {
        now += Duration::from_millis(10);
        match bank.charge(key, amount, now) {
            Ok(receipt) => {
                call.on_success(now, &NoBudget);
                return (Ok(receipt), call.attempts());
            }
            Err(failure) => match call.on_failure(&failure, now, &NoBudget) {
                Decision::Retry { after } => now += after,
                Decision::GiveUp(reason) => return (Err(reason), call.attempts()),
            },
        }
    }
}

fn policy(idempotency: Idempotency) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(5)
        .backoff(Backoff::constant(Duration::from_millis(50)).jitter(Jitter::None))
        .idempotency(idempotency)
        .build()
        .expect("valid policy")
}

#[test]
fn a_keyed_retry_sends_the_same_key_with_every_attempt_and_bills_once() {
    use Fault::*;
    let faults = [BeforeCharge, LoseResponse, LoseResponse, BeforeCharge];
    let mut bank = FlakyBank::new(&faults);
    let (receipt, attempts) = charge_with_retries(&mut bank, &policy(Idempotency::Keyed), 30);

    assert_eq!(attempts, 5, "four faults, then the replay");
    assert_eq!(bank.keys_seen.len(), 5);
    let first = bank.keys_seen[0];
    assert!(
        bank.keys_seen.iter().all(|&k| k == first),
        "{:?}",
        bank.keys_seen
    );
    // Charged on the 2nd attempt (its response lost); the 3rd, 4th and 5th
    // found the stored receipt, and only the 5th's answer arrived.
    assert_eq!(receipt, Ok(1));
    assert_eq!(bank.balance, 70);
}

#[test]
fn without_a_key_the_gate_refuses_to_replay_a_lost_response() {
    let mut bank = FlakyBank::new(&[Fault::LoseResponse]);
    let (receipt, attempts) =
        charge_with_retries(&mut bank, &policy(Idempotency::NonIdempotent), 30);
    assert_eq!(receipt, Err(GiveUp::UnsafeToReplay));
    assert_eq!((attempts, bank.balance), (1, 70));
}

#[test]
fn every_random_bit_of_a_generated_key_varies() {
    // RFC 9562 §5.4: 122 random bits; the version nibble (bits 76..80) and
    // the variant (bits 62..64) are fixed.
    const FIXED: u128 = (0xf << 76) | (0b11 << 62);
    let mut rng = Random::with_seed(11);
    let (mut ones, mut zeros) = (0u128, 0u128);
    for _ in 0..256 {
        let bits = IdempotencyKey::from_rng(&mut rng).as_u128();
        ones |= bits;
        zeros |= !bits;
    }
    assert_eq!(
        ones & zeros,
        !FIXED,
        "bits that never changed: {:#x}",
        !(ones & zeros) & !FIXED
    );
}

#[test]
fn parse_errors_say_what_was_wrong_and_where() {
    let shown = |text: &str| {
        IdempotencyKey::parse(text.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        shown("abc"),
        "invalid idempotency key: expected 36 characters, found 3"
    );
    assert_eq!(
        shown("0123456789abcdef0123456789abcdef0123"),
        "invalid idempotency key: expected '-' at byte 8"
    );
    assert_eq!(
        shown("0123456x-89ab-4def-8123-456789abcdef"),
        "invalid idempotency key: expected a hex digit at byte 7"
    );
}
