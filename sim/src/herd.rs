//! The herd study: many clients fail at the same instant and retry with the
//! same backoff: 5 attempts, exponential from 100 ms, factor 2.

use core::time::Duration;

use stormguard::{
    Backoff, ConfigError, Decision, Failure, Instant, Jitter, NoBudget, Retry, RetryPolicy,
};

use crate::stream_seed;

/// Attempts per client: the first and 4 retries.
pub const HERD_ATTEMPTS: u32 = 5;
/// The first backoff.
pub const HERD_BASE: Duration = Duration::from_millis(100);
/// The width of the bins arrivals are counted in.
pub const HERD_BIN: Duration = Duration::from_millis(10);

/// How one jitter kind spreads the herd's retries.
///
/// ```
/// use stormguard::Jitter;
/// use stormguard_sim::herd;
/// let none = herd(1_000, Jitter::None, 1)?;
/// assert_eq!(none.peak_per_bin, 1_000); // every client in the same 10 ms
/// let full = herd(1_000, Jitter::Full, 1)?;
/// assert!(full.peak_per_bin < 300);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HerdResult {
    /// The jitter kind.
    pub jitter: Jitter,
    /// Clients in the herd.
    pub clients: u32,
    /// The most retries arriving in one 10 ms bin.
    pub peak_per_bin: u32,
    /// All retries of all clients.
    pub retries: u64,
    /// When the last retry arrives.
    pub last_retry: Duration,
}

/// `clients` clients whose calls all fail at instant zero against a
/// dependency that stays down; each makes 5 attempts
/// (exponential backoff from 100 ms, factor 2) with `jitter`, every
/// decision made by its own seeded `Retry`. Counts the retries
/// arriving in each 10 ms bin.
///
/// # Errors
/// A `ConfigError` if the backoff cannot be built (never for the four AWS
/// kinds).
pub fn herd(clients: u32, jitter: Jitter, seed: u64) -> Result<HerdResult, ConfigError> {
    let policy = RetryPolicy::builder()
        .max_attempts(HERD_ATTEMPTS)
        .backoff(
            Backoff::exponential(HERD_BASE, 2.0)
                .max_delay(Duration::from_secs(60))
                .jitter(jitter),
        )
        .build()?;
    let bin = HERD_BIN.as_nanos() as u64;
    let mut bins: Vec<u32> = Vec::new();
    let mut retries = 0u64;
    let mut last = 0u64;
    let jitter_seed = stream_seed(seed, 7);
    for client in 0..clients {
        let mut now = Instant::ZERO;
        let mut state = Retry::with_seed(&policy, now, stream_seed(jitter_seed, u64::from(client)));
        while let Decision::Retry { after } =
            state.on_failure(&Failure::transient(), now, &NoBudget)
        {
            now += after;
            let at = now.as_nanos();
            let i = usize::try_from(at / bin).unwrap_or(usize::MAX);
            if i >= bins.len() {
                // Bounded: 4 retries of at most 60 s each.
                bins.resize(i.saturating_add(1).min(1 << 16), 0);
            }
            if let Some(n) = bins.get_mut(i) {
                *n += 1;
            }
            retries += 1;
            last = last.max(at);
        }
    }
    Ok(HerdResult {
        jitter,
        clients,
        peak_per_bin: bins.iter().copied().max().unwrap_or(0),
        retries,
        last_retry: Duration::from_nanos(last),
    })
}
