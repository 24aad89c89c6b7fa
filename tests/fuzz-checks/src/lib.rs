//! The invariant checks behind stormguard's fuzz targets.
//!
//! Every fuzz target in `fuzz/fuzz_targets/` is one line: it hands libFuzzer's
//! bytes to one of the `check_*` functions here. The same functions run on
//! stable Rust in `tests/corpus_replay.rs`, over every seed committed in
//! `fuzz/corpus/<target>/` and a few thousand generated inputs, so a change
//! to the core that breaks an invariant fails `cargo test` — not only a
//! fuzzing campaign — and a check that no longer compiles fails the build.
//!
//! A check panics when an invariant does not hold; that panic is the crash
//! libFuzzer reports. What the checks assert:
//!
//! - the parsers (`Retry-After` in both forms, the HTTP-date, the
//!   `grpc-retry-pushback-ms` trailer, `IdempotencyKey`) agree with a second,
//!   independently written implementation of RFC 9110 §10.2.3 and §5.6.7,
//!   gRPC proposal A6 and RFC 9562's text layout, on every input;
//! - every builder given arbitrary numbers returns `Ok` or a typed
//!   [`ConfigError`](stormguard::ConfigError) naming a field, and a built
//!   value behaves: no delay above its cap, tokens within `[0, max]`,
//!   probabilities within `[0, max_reject]`;
//! - `ServiceConfig::from_json` on any text returns `Ok` with policies
//!   within A6's ranges, or an error with a path;
//! - sequences of failures, server hints, clock jumps (forward, none,
//!   huge, backwards), budget and breaker interleavings through
//!   [`Call`](stormguard::Call), [`Retry`](stormguard::Retry) and
//!   [`Hedge`](stormguard::Hedge) keep the core's promises at every step.
//!
//! ```
//! for (name, check) in stormguard_fuzz_checks::TARGETS {
//!     check(b"120"); // any bytes: a check panics only on a broken invariant
//!     assert!(!name.is_empty());
//! }
//! ```

mod arbitrary_values;
mod builders;
mod decisions;
mod hedge;
mod parsers;
mod service_config;

pub use builders::check_builders;
pub use decisions::check_decisions;
pub use hedge::check_hedge;
pub use parsers::{check_grpc_pushback, check_http_date, check_idempotency_key, check_retry_after};
pub use service_config::check_service_config;

/// A check: any bytes in, a panic only when an invariant broke.
///
/// ```
/// let check: stormguard_fuzz_checks::Check = stormguard_fuzz_checks::check_grpc_pushback;
/// check(b"250");
/// ```
pub type Check = fn(&[u8]);

/// Every fuzz target's name (its file in `fuzz/fuzz_targets/` and its
/// folder in `fuzz/corpus/`) and the check it runs.
///
/// ```
/// let names: Vec<&str> = stormguard_fuzz_checks::TARGETS.iter().map(|(n, _)| *n).collect();
/// assert!(names.contains(&"decisions"));
/// ```
pub const TARGETS: &[(&str, Check)] = &[
    ("retry_after", check_retry_after),
    ("http_date", check_http_date),
    ("grpc_pushback", check_grpc_pushback),
    ("idempotency_key", check_idempotency_key),
    ("builders", check_builders),
    ("service_config", check_service_config),
    ("decisions", check_decisions),
    ("hedge", check_hedge),
];
