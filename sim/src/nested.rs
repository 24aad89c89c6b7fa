//! The nested study: three layers that each retry 3 times, against a dead
//! connection pool: retries multiply across layers.

use core::cell::Cell;
use core::time::Duration;

use stormguard::{Backoff, ConfigError, Decision, Failure, Instant, NoBudget, Retry, RetryPolicy};

/// Pool calls made for one failing request.
///
/// ```
/// let n = stormguard_sim::nested(3, 3)?;
/// assert_eq!((n.blind, n.one_layer), (27, 3));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedResult {
    /// Retrying layers above the pool.
    pub layers: u32,
    /// Attempts each layer makes.
    pub attempts: u32,
    /// Every layer retries whatever failed below it.
    pub blind: u64,
    /// Every layer reports its give-up with `GiveUp::into_failure()`, which
    /// the layers above refuse to retry ("retry at one layer").
    pub one_layer: u64,
}

/// One request through `layers` layers of `attempts` attempts each, down to
/// a pool that always fails; counts the pool calls, blind and with retry at
/// one layer. Every layer's decisions are a `stormguard::Retry`'s. Layers
/// above 6 and attempts above 10 are clamped (the blind count grows as
/// attemptsˡᵃʸᵉʳˢ).
///
/// # Errors
/// A `ConfigError` if `attempts` is zero.
pub fn nested(layers: u32, attempts: u32) -> Result<NestedResult, ConfigError> {
    let (layers, attempts) = (layers.min(6), attempts.min(10));
    let policy = RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()?;
    Ok(NestedResult {
        layers,
        attempts,
        blind: pool_calls(&policy, layers, false),
        one_layer: pool_calls(&policy, layers, true),
    })
}

fn pool_calls(policy: &RetryPolicy, layers: u32, mark: bool) -> u64 {
    let calls = Cell::new(0u64);
    let pool = || -> Result<(), Failure> {
        calls.set(calls.get() + 1);
        Err(Failure::transient())
    };
    let _ = through(layers, policy, mark, &pool);
    calls.get()
}

/// Calls `bottom` through `depth` retrying layers.
fn through(
    depth: u32,
    policy: &RetryPolicy,
    mark: bool,
    bottom: &dyn Fn() -> Result<(), Failure>,
) -> Result<(), Failure> {
    if depth == 0 {
        return bottom();
    }
    let mut retry = Retry::with_seed(policy, Instant::ZERO, u64::from(depth));
    loop {
        let Err(failure) = through(depth - 1, policy, mark, bottom) else {
            return Ok(());
        };
        match retry.on_failure(&failure, Instant::ZERO, &NoBudget) {
            Decision::Retry { .. } => {}
            Decision::GiveUp(reason) if mark => return Err(reason.into_failure()),
            Decision::GiveUp(_) => return Err(Failure::transient()),
        }
    }
}
