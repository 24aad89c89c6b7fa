//! The double-billing bug of blind retries, and its cure: an idempotency key
//! on the client (the IETF draft "The Idempotency-Key HTTP Header Field";
//! Stripe's keys work the same way) and the server's `IdempotencyTable`.
//!
//! `charge` moves money; a retry cannot tell whether the first attempt ran
//! (a lost response looks exactly like a request that never arrived). When
//! the bank charges and the response is lost, a naive `callWithRetry`
//! retries blindly and bills twice. stormguard's gate refuses that replay
//! for a `NonIdempotent` method (no double bill, but no receipt either);
//! with an `Idempotency-Key` sent on every attempt and a table on the
//! server, the retry gets the first charge's receipt and the customer is
//! billed once.
//!
//! Everything runs on a virtual clock with a seeded network: the same seed
//! prints the same story, nothing sleeps.
//!
//! Run: `cargo run -p stormguard-examples --bin charge [-- --seed N]`

use std::process::ExitCode;

use core::time::Duration;

use stormguard::{
    Backoff, Begin, Decision, Failure, GiveUp, Idempotency, IdempotencyKey, IdempotencyTable,
    Instant, NoBudget, Random, Retry, RetryPolicy,
};
use stormguard_examples::cli;

/// What the network does to one attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The request runs and the response arrives.
    None,
    /// The bank's handler fails before it charges: a 500.
    BeforeCharge,
    /// The bank answers, and the response is lost: the client times out.
    LoseResponse,
}

/// The faults of the attempts, in order.
enum Network {
    Script(&'static [Fault]),
    /// Each attempt: `lose`% of responses lost, `fail`% of handlers failing
    /// before the charge.
    Lossy {
        rng: fastrand::Rng,
        lose: u32,
        fail: u32,
    },
}

impl Network {
    fn next(&mut self) -> Fault {
        match self {
            Network::Script(faults) => match faults.split_first() {
                Some((&fault, rest)) => {
                    *faults = rest;
                    fault
                }
                None => Fault::None,
            },
            Network::Lossy { rng, lose, fail } => {
                let roll = rng.u32(0..100);
                if roll < *fail {
                    Fault::BeforeCharge
                } else if roll < *fail + *lose {
                    Fault::LoseResponse
                } else {
                    Fault::None
                }
            }
        }
    }
}

/// Alice's account at the bank, and the bank's idempotency table.
struct Bank {
    balance: i64,
    charges: u32,
    next_receipt: u32,
    table: IdempotencyTable<IdempotencyKey, u32, 1024>,
    /// What the last attempt did, for the narration.
    last: String,
}

impl Bank {
    fn new(balance: i64) -> Self {
        Bank {
            balance,
            charges: 0,
            next_receipt: 1,
            table: IdempotencyTable::new(),
            last: String::new(),
        }
    }

    /// The side effect: `balance -= amount`.
    fn bill(&mut self, amount: i64) -> u32 {
        self.balance -= amount;
        self.charges += 1;
        self.next_receipt += 1;
        self.next_receipt - 1
    }

    /// `charge(name, amount)`, as it is usually first written: no key.
    fn charge(&mut self, amount: i64, fault: Fault) -> Result<u32, Failure> {
        if fault == Fault::BeforeCharge {
            self.last = "handler failed before charging".into();
            return Err(Failure::transient());
        }
        let receipt = self.bill(amount);
        self.last = format!("charged {amount}, receipt #{receipt}");
        deliver(receipt, fault, &mut self.last)
    }

    /// `charge(name, amount, key)`: deduplicated on the key.
    fn charge_keyed(
        &mut self,
        amount: i64,
        key: IdempotencyKey,
        now: Instant,
        fault: Fault,
    ) -> Result<u32, Failure> {
        let fingerprint = amount as u64; // the payload, packed exactly
        let receipt = match self.table.begin(key, fingerprint, now) {
            Begin::Execute(ticket) => {
                if fault == Fault::BeforeCharge {
                    // Nothing happened yet: release the key for the retry.
                    self.table.abort(ticket).ok();
                    self.last = "execute: handler failed before charging, key released".into();
                    return Err(Failure::transient());
                }
                let receipt = self.bill(amount);
                // A late ticket is refused, but this one is fresh; either
                // way the receipt still goes back to the client.
                self.table.complete(ticket, receipt, now).ok();
                self.last = format!("execute: charged {amount}, receipt #{receipt}");
                receipt
            }
            Begin::Replay(&receipt) => {
                self.last = format!("replay: receipt #{receipt}, nothing charged");
                receipt
            }
            refused => {
                self.last = format!("refused: HTTP {:?}", refused.refusal_status());
                return Err(Failure::overloaded());
            }
        };
        if fault == Fault::BeforeCharge {
            self.last.push_str(", then the handler failed");
            return Err(Failure::transient());
        }
        deliver(receipt, fault, &mut self.last)
    }
}

fn deliver(receipt: u32, fault: Fault, last: &mut String) -> Result<u32, Failure> {
    if fault == Fault::LoseResponse {
        last.push_str(", response lost");
        Err(Failure::timeout())
    } else {
        Ok(receipt)
    }
}

/// A naive `callWithRetry`: retry every failure up to `max_attempts`,
/// whatever the method.
fn call_with_retry_blind(
    bank: &mut Bank,
    net: &mut Network,
    amount: i64,
    max_attempts: u32,
    narrate: bool,
) -> Option<u32> {
    for attempt in 1..=max_attempts {
        let result = bank.charge(amount, net.next());
        if narrate {
            let next = if result.is_ok() { "ok" } else { "retry" };
            println!("     attempt {attempt}  {:<52} -> {next}", bank.last);
        }
        if let Ok(receipt) = result {
            return Some(receipt);
        }
    }
    None
}

/// stormguard: a `Retry` decides; with a key, every attempt sends the same
/// one.
fn call_with_stormguard(
    bank: &mut Bank,
    net: &mut Network,
    policy: &RetryPolicy,
    amount: i64,
    key: Option<IdempotencyKey>,
    (now, seed): (&mut Instant, u64),
    narrate: bool,
) -> Result<u32, GiveUp> {
    let mut call = Retry::with_seed(policy, *now, seed);
    loop {
        *now += Duration::from_millis(40); // the attempt's round trip
        let fault = net.next();
        let result = match key {
            Some(key) => bank.charge_keyed(amount, key, *now, fault),
            None => bank.charge(amount, fault),
        };
        let attempt = call.attempts() + 1;
        let failure = match result {
            Ok(receipt) => {
                call.on_success(*now, &NoBudget);
                if narrate {
                    println!("     attempt {attempt}  {:<52} -> ok", bank.last);
                }
                return Ok(receipt);
            }
            Err(failure) => failure,
        };
        match call.on_failure(&failure, *now, &NoBudget) {
            Decision::Retry { after } => {
                if narrate {
                    let wait = format!("retry in {} ms", after.as_millis());
                    println!("     attempt {attempt}  {:<52} -> {wait}", bank.last);
                }
                *now += after;
            }
            Decision::GiveUp(reason) => {
                if narrate {
                    println!(
                        "     attempt {attempt}  {:<52} -> give up: {reason}",
                        bank.last
                    );
                }
                return Err(reason);
            }
        }
    }
}

fn policy(idempotency: Idempotency, max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .backoff(Backoff::exponential(Duration::from_millis(50), 2.0))
        .idempotency(idempotency)
        .build()
        .expect("a valid policy")
}

const USAGE: &str = "\
usage: charge [--seed N]

  --seed N     seed of the keys and the network, 0 to 18446744073709551615 (default 7); the same seed prints the same story
  -h, --help   print this help";

fn main() -> ExitCode {
    let seed = match cli::seed_only(std::env::args_os().skip(1), 7) {
        Ok(Some(seed)) => seed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return cli::usage_error("charge", &message, USAGE),
    };
    // Keys come from stormguard's generator, amounts from the simulation's.
    let mut keys = Random::with_seed(seed);
    let mut rng = fastrand::Rng::with_seed(seed);
    println!("charge(\"alice\", amount) when responses get lost (seed {seed})\n");

    // 1. One charge of 30 from a balance of 100; the bank charges, and the
    //    first response is lost.
    const LOST_ONCE: &[Fault] = &[Fault::LoseResponse];
    println!("1. One charge of 30; the bank charges, and its response is lost\n");

    println!("   a naive callWithRetry (retries every failure, 3 attempts):");
    let mut bank = Bank::new(100);
    let mut net = Network::Script(LOST_ONCE);
    call_with_retry_blind(&mut bank, &mut net, 30, 3, true);
    let blind_balance = bank.balance;
    println!(
        "     alice: 100 -> {blind_balance}   billed {} times for one purchase\n",
        bank.charges
    );

    println!("   stormguard, charge declared NonIdempotent, no key:");
    let mut bank = Bank::new(100);
    let mut net = Network::Script(LOST_ONCE);
    let mut now = Instant::ZERO;
    let outcome = call_with_stormguard(
        &mut bank,
        &mut net,
        &policy(Idempotency::NonIdempotent, 3),
        30,
        None,
        (&mut now, seed),
        true,
    );
    println!(
        "     alice: 100 -> {}   billed {} time, but the client has no receipt ({})\n",
        bank.balance,
        bank.charges,
        outcome.err().map_or("ok", GiveUp::as_str),
    );

    let key = IdempotencyKey::from_rng(&mut keys);
    println!(
        "   stormguard, Keyed, {}: {key} on every attempt:",
        IdempotencyKey::HEADER
    );
    let mut bank = Bank::new(100);
    let mut net = Network::Script(LOST_ONCE);
    let mut now = Instant::ZERO;
    let receipt = call_with_stormguard(
        &mut bank,
        &mut net,
        &policy(Idempotency::Keyed, 3),
        30,
        Some(key),
        (&mut now, seed),
        true,
    );
    let keyed_balance = bank.balance;
    println!(
        "     alice: 100 -> {keyed_balance}   billed {} time, and the client holds receipt {}\n",
        bank.charges,
        receipt.map_or_else(|reason| format!("none ({reason})"), |r| format!("#{r}")),
    );

    // 2. A thousand purchases over a lossy network.
    const PURCHASES: usize = 1_000;
    let (lose, fail) = (20, 10);
    let amounts: Vec<i64> = (0..PURCHASES).map(|_| rng.i64(1..=100)).collect();
    let bought: i64 = amounts.iter().sum();
    println!(
        "2. {PURCHASES} purchases worth {bought} in all; {lose}% of responses lost, \
         {fail}% of handlers failing before they charge\n"
    );

    let mut blind = Bank::new(0);
    let mut net = Network::Lossy {
        rng: fastrand::Rng::with_seed(seed ^ 0xb11d),
        lose,
        fail,
    };
    let blind_gave_up = amounts
        .iter()
        .filter(|&&amount| call_with_retry_blind(&mut blind, &mut net, amount, 3, false).is_none())
        .count();

    let mut keyed = Bank::new(0);
    let mut net = Network::Lossy {
        rng: fastrand::Rng::with_seed(seed ^ 0xb11d),
        lose,
        fail,
    };
    let keyed_policy = policy(Idempotency::Keyed, 8);
    let mut now = Instant::ZERO;
    let keyed_gave_up = amounts
        .iter()
        .enumerate()
        .filter(|&(i, &amount)| {
            let key = IdempotencyKey::from_rng(&mut keys);
            let call_seed = seed.wrapping_add(i as u64);
            call_with_stormguard(
                &mut keyed,
                &mut net,
                &keyed_policy,
                amount,
                Some(key),
                (&mut now, call_seed),
                false,
            )
            .is_err()
        })
        .count();

    println!(
        "   blind retries:      {:>5} charges, alice's balance {:>7} ({:+} against what she bought), {blind_gave_up} calls gave up",
        blind.charges,
        blind.balance,
        -blind.balance - bought,
    );
    println!(
        "   keyed + table:      {:>5} charges, alice's balance {:>7} ({:+} against what she bought), {keyed_gave_up} calls gave up",
        keyed.charges,
        keyed.balance,
        -keyed.balance - bought,
    );
    println!(
        "\nBalances: one charge of 30 -> blind {blind_balance}, keyed {keyed_balance}; \
         {PURCHASES} purchases -> blind {}, keyed {} (bought {bought})",
        blind.balance, keyed.balance
    );
    ExitCode::SUCCESS
}
