//! The brownout simulator: a retry storm and its cures, on a virtual clock.
//!
//! A backend with a fixed capacity and a FIFO queue browns out for a while
//! (it slows down and drops calls); clients keep sending logical calls at a
//! steady rate below its capacity, each attempt with a timeout, and retry
//! as one of eight [`Scenario`]s says — every decision made by a real
//! `stormguard::Call` with a real `Throttle`, `RetryBudget`,
//! `CircuitBreaker` or `AdaptiveThrottle`. [`simulate`] runs one scenario;
//! [`Sim`] is the same simulation as a state machine to step, with any
//! setting of the [`Clients`] and a trigger pulled by hand (the
//! playground's); four studies ([`herd`], [`nested`], [`contention`], [`tail`]) look at
//! jitter, nesting and hedging on their own.
//!
//! This crate depends only on `stormguard` and `fastrand`, so the same code
//! runs natively (`./scripts/run`, whose table, JSON and chart live in
//! `stormguard-examples`, which re-exports all of this) and in a browser,
//! compiled to WebAssembly (the playground). Everything is deterministic:
//! the same seed gives the same numbers on both.
//!
//! ```
//! use stormguard_sim::{simulate, Config, Scenario};
//! let naive = simulate(&Config::small(), Scenario::Naive, 1)?;
//! assert!(naive.peak_offered_load > 3.0);
//! assert_eq!(naive.recovered_after, None); // a metastable failure
//! # Ok::<(), stormguard_sim::SimError>(())
//! ```

mod clients;
mod config;
mod contention;
mod herd;
mod nested;
mod recording;
mod scenario;
mod sim;
mod tail;

pub use clients::{
    BackoffKind, BudgetKind, ClientBudget, Clients, Method, ADAPTIVE_K, ADAPTIVE_MAX_REJECT,
    ADAPTIVE_WINDOW, BACKOFF_BASE, BACKOFF_CAP, BREAKER_FAILURES, BREAKER_RECOVERY,
    BUDGET_MIN_PER_SEC, BUDGET_RATIO, BUDGET_TTL, THROTTLE_RATIO, THROTTLE_TOKENS,
};
pub use config::{Config, InvalidConfig};
pub use contention::{contention, ContentionResult, CONTENTION_BASE, CONTENTION_CAP};
pub use herd::{herd, HerdResult, HERD_ATTEMPTS, HERD_BASE, HERD_BIN};
pub use nested::{nested, NestedResult};
pub use recording::{page_ms, page_time, Change, Recording};
pub use scenario::{Scenario, RETRIES};
pub use sim::{
    simulate, ScenarioResult, Sim, SimError, Summary, IDEMPOTENCY_SHARDS, IDEMPOTENCY_SHARD_KEYS,
    IDEMPOTENCY_TTL, METASTABLE_AFTER, READOUT_WINDOW,
};
pub use tail::{
    tail, TailResult, TailStrategy, TAIL_MEAN_EXTRA, TAIL_MIN_LATENCY, TAIL_REPLICAS,
    TAIL_RETRY_ATTEMPTS, TAIL_SLOWDOWN,
};

/// A seed for one random stream of a run: splitmix64 of the run's seed and
/// the stream's number, so streams are independent and a scenario's
/// arrivals do not depend on what the other streams drew.
pub(crate) fn stream_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
