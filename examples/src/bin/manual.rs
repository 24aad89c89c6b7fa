//! Drives stormguard's per-call state machine by hand against a scripted
//! flaky service, on a virtual clock, and prints every decision.
//!
//! Nothing here sleeps or reads a clock: each scripted attempt says how long
//! it took, the program adds that (and every wait) to a virtual `now`, and
//! stormguard decides from the `now` it is given.
//!
//! Run: `cargo run -p stormguard-examples --bin manual [-- --seed N]`

use std::process::ExitCode;

use core::time::Duration;

use stormguard::classify::http;
use stormguard::{
    Backoff, Decision, Failure, FailureClass, Idempotency, Instant, NoBudget, Replay, Retry,
    RetryPolicy,
};
use stormguard_examples::cli;

/// What one scripted attempt does.
#[derive(Clone, Copy)]
enum Outcome {
    /// HTTP 2xx.
    Ok,
    /// The client gave up waiting: the request may have run.
    Timeout,
    /// Connection refused: the request never left the client.
    Refused,
    /// An HTTP error status, with an optional `Retry-After` value.
    Http(u16, Option<&'static str>),
}

struct Scene {
    title: &'static str,
    idempotency: Idempotency,
    /// (how long the attempt takes, what it ends with)
    attempts: &'static [(u64, Outcome)],
}

/// Unix time of the virtual clock's origin, for `Retry-After` dates.
const UNIX_ORIGIN: u64 = 1_780_000_000;

const SCENES: &[Scene] = &[
    Scene {
        title: "GET /inventory (idempotent): a timeout, a 503 with Retry-After: 2, then 200",
        idempotency: Idempotency::Idempotent,
        attempts: &[
            (250, Outcome::Timeout),
            (40, Outcome::Http(503, Some("2"))),
            (30, Outcome::Ok),
        ],
    },
    Scene {
        title: "POST /charge (not idempotent): the first attempt times out and may have billed",
        idempotency: Idempotency::NonIdempotent,
        attempts: &[(250, Outcome::Timeout), (30, Outcome::Ok)],
    },
    Scene {
        title: "POST /charge (not idempotent): refused twice before it was sent, then 200",
        idempotency: Idempotency::NonIdempotent,
        attempts: &[
            (1, Outcome::Refused),
            (1, Outcome::Refused),
            (30, Outcome::Ok),
        ],
    },
    Scene {
        title: "POST /charge with an Idempotency-Key: a timeout is safe to retry",
        idempotency: Idempotency::Keyed,
        attempts: &[(250, Outcome::Timeout), (30, Outcome::Ok)],
    },
    Scene {
        title:
            "GET /report: 429 asking for a year's wait (capped), then 502s until attempts run out",
        idempotency: Idempotency::Idempotent,
        attempts: &[
            (20, Outcome::Http(429, Some("31536000"))),
            (20, Outcome::Http(502, None)),
            (20, Outcome::Http(502, None)),
            (20, Outcome::Http(502, None)),
        ],
    },
    Scene {
        title: "GET /report: 503 with an HTTP-date 4 s ahead; the deadline cannot be met",
        idempotency: Idempotency::Idempotent,
        attempts: &[
            (2_500, Outcome::Timeout),
            (
                100,
                Outcome::Http(503, Some("Thu, 28 May 2026 20:26:47 GMT")),
            ),
        ],
    },
    Scene {
        title: "GET /search?q=%: 400 Bad Request is not retried",
        idempotency: Idempotency::Idempotent,
        attempts: &[(15, Outcome::Http(400, None))],
    },
];

fn failure_of(outcome: Outcome, now: Instant) -> Option<Failure> {
    match outcome {
        Outcome::Ok => None,
        Outcome::Timeout => Some(Failure::timeout()),
        Outcome::Refused => Some(Failure::new(FailureClass::Transient, Replay::NotSent)),
        Outcome::Http(status, retry_after) => http::failure_for_response(
            status,
            retry_after.map(str::as_bytes),
            UNIX_ORIGIN + now.as_millis() / 1000,
        ),
    }
}

fn describe(outcome: Outcome) -> String {
    match outcome {
        Outcome::Ok => "200 OK".into(),
        Outcome::Timeout => "timed out".into(),
        Outcome::Refused => "connection refused".into(),
        Outcome::Http(status, None) => format!("HTTP {status}"),
        Outcome::Http(status, Some(hint)) => format!("HTTP {status}, Retry-After: {hint}"),
    }
}

const USAGE: &str = "\
usage: manual [--seed N]

  --seed N     seed of the jitter, 0 to 18446744073709551615 (default 7); the same seed prints the same story
  -h, --help   print this help";

fn main() -> ExitCode {
    let seed = match cli::seed_only(std::env::args_os().skip(1), 7) {
        Ok(Some(seed)) => seed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return cli::usage_error("manual", &message, USAGE),
    };
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .backoff(
            Backoff::exponential(Duration::from_millis(100), 2.0).max_delay(Duration::from_secs(2)),
        )
        .deadline(Duration::from_secs(5))
        .max_server_delay(Duration::from_secs(3))
        .build()
        .expect("a valid policy");

    println!("stormguard, driven by hand on a virtual clock (jitter seed {seed})");
    println!(
        "policy: {} attempts, exponential backoff from 100 ms (x2, cap 2 s, full jitter), \
         deadline 5 s, server delays honoured up to 3 s\n",
        policy.max_attempts()
    );

    for (i, scene) in SCENES.iter().enumerate() {
        println!("{}. {}", i + 1, scene.title);
        let mut now = Instant::from_secs(60 * i as u64);
        let start = now;
        let mut call = Retry::with_seed(&policy, now, seed).with_idempotency(scene.idempotency);
        for (n, &(took_ms, outcome)) in scene.attempts.iter().enumerate() {
            now += Duration::from_millis(took_ms);
            let t = (now - start).as_millis();
            let what = describe(outcome);
            let Some(failure) = failure_of(outcome, now - Duration::from_secs(60 * i as u64))
            else {
                call.on_success(now, &NoBudget);
                println!("   t={t:>5} ms  attempt {}  {what:<40} -> success", n + 1);
                break;
            };
            match call.on_failure(&failure, now, &NoBudget) {
                Decision::Retry { after } => {
                    println!(
                        "   t={t:>5} ms  attempt {}  {what:<40} -> retry in {} ms",
                        n + 1,
                        after.as_millis()
                    );
                    now += after;
                }
                Decision::GiveUp(reason) => {
                    println!(
                        "   t={t:>5} ms  attempt {}  {what:<40} -> give up: {reason}",
                        n + 1
                    );
                    break;
                }
            }
        }
        println!();
    }
    ExitCode::SUCCESS
}
