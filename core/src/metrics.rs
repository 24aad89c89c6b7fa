//! Counters of what retries did: cheap to update, cheap to read.

use core::fmt;

use portable_atomic::{AtomicU64, Ordering};

use crate::decision::GiveUp;

/// Atomic counters of attempts, retries, give-ups by reason, and breaker
/// transitions.
///
/// Attach one to a [`RetryPolicy`](crate::RetryPolicy) (every call made with
/// the policy counts in it) and to a
/// [`CircuitBreaker`](crate::CircuitBreaker). Counters are updated with
/// relaxed atomic additions — no lock, no allocation — and read with
/// [`Metrics::snapshot`]. Because policies are `Copy` and may live in a
/// `static`, they hold a `&'static Metrics`: declare a `static`, or leak one
/// `Box` per client.
///
/// ```
/// use stormguard::{Failure, Instant, Metrics, NoBudget, Retry, RetryPolicy};
///
/// static METRICS: Metrics = Metrics::new();
/// let policy = RetryPolicy::builder().max_attempts(2).metrics(&METRICS).build()?;
/// let mut call = Retry::with_seed(&policy, Instant::ZERO, 1);
/// let _ = call.on_failure(&Failure::transient(), Instant::ZERO, &NoBudget);
/// let _ = call.on_failure(&Failure::transient(), Instant::ZERO, &NoBudget);
/// let m = METRICS.snapshot();
/// assert_eq!((m.attempts(), m.retries()), (2, 1));
/// assert_eq!(m.give_ups().get(stormguard::GiveUp::AttemptsExhausted), 1);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Default)]
pub struct Metrics {
    attempts: AtomicU64,
    retries: AtomicU64,
    successes: AtomicU64,
    give_ups: [AtomicU64; GiveUp::ALL.len()],
    breaker_opened: AtomicU64,
    breaker_half_opened: AtomicU64,
    breaker_closed: AtomicU64,
    breaker_rejected: AtomicU64,
}

/// A copy of the counters at one moment.
///
/// Read through accessors, so a counter added in a later version does not
/// break code that builds or matches on a snapshot.
///
/// ```
/// let snapshot = stormguard::Metrics::new().snapshot();
/// assert_eq!(snapshot, stormguard::MetricsSnapshot::default());
/// assert_eq!(snapshot.attempts(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MetricsSnapshot {
    attempts: u64,
    retries: u64,
    successes: u64,
    give_ups: GiveUpCounts,
    breaker_opened: u64,
    breaker_half_opened: u64,
    breaker_closed: u64,
    breaker_rejected: u64,
}

impl MetricsSnapshot {
    /// Attempts whose outcome was reported (failures and successes); an
    /// attempt cancelled before it ended is not counted.
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().attempts(), 0);
    /// ```
    pub const fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Decisions to retry.
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().retries(), 0);
    /// ```
    pub const fn retries(&self) -> u64 {
        self.retries
    }

    /// Calls that succeeded.
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().successes(), 0);
    /// ```
    pub const fn successes(&self) -> u64 {
        self.successes
    }

    /// Calls that gave up, by reason.
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().give_ups().total(), 0);
    /// ```
    pub const fn give_ups(&self) -> GiveUpCounts {
        self.give_ups
    }

    /// Breaker transitions to open (from closed or half-open).
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().breaker_opened(), 0);
    /// ```
    pub const fn breaker_opened(&self) -> u64 {
        self.breaker_opened
    }

    /// Breaker transitions to half-open.
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().breaker_half_opened(), 0);
    /// ```
    pub const fn breaker_half_opened(&self) -> u64 {
        self.breaker_half_opened
    }

    /// Breaker transitions to closed.
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().breaker_closed(), 0);
    /// ```
    pub const fn breaker_closed(&self) -> u64 {
        self.breaker_closed
    }

    /// Calls the breaker refused without letting them through.
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().breaker_rejected(), 0);
    /// ```
    pub const fn breaker_rejected(&self) -> u64 {
        self.breaker_rejected
    }
}

/// Give-ups by reason (the budget's refusals are
/// [`GiveUp::BudgetExhausted`]).
///
/// ```
/// use stormguard::{GiveUp, GiveUpCounts};
/// let counts = GiveUpCounts::default();
/// assert_eq!(counts.total(), 0);
/// assert_eq!(counts.get(GiveUp::CircuitOpen), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GiveUpCounts {
    by_reason: [u64; GiveUp::ALL.len()],
}

impl GiveUpCounts {
    /// The count for one reason.
    ///
    /// ```
    /// use stormguard::{GiveUp, GiveUpCounts};
    /// assert_eq!(GiveUpCounts::default().get(GiveUp::CircuitOpen), 0);
    /// ```
    pub const fn get(&self, reason: GiveUp) -> u64 {
        let i = reason.index();
        if i < self.by_reason.len() {
            self.by_reason[i]
        } else {
            0
        }
    }

    /// Every give-up, whatever the reason.
    ///
    /// ```
    /// assert_eq!(stormguard::GiveUpCounts::default().total(), 0);
    /// ```
    pub const fn total(&self) -> u64 {
        let mut sum = 0u64;
        let mut i = 0;
        while i < self.by_reason.len() {
            sum = sum.saturating_add(self.by_reason[i]);
            i += 1;
        }
        sum
    }

    /// Each reason with its count, in [`GiveUp::ALL`] order.
    ///
    /// ```
    /// let counts = stormguard::GiveUpCounts::default();
    /// assert_eq!(counts.iter().count(), stormguard::GiveUp::ALL.len());
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (GiveUp, u64)> + '_ {
        GiveUp::ALL.iter().map(|&reason| (reason, self.get(reason)))
    }
}

impl Metrics {
    /// All counters at zero; `const`, so it can be a `static`.
    ///
    /// ```
    /// static M: stormguard::Metrics = stormguard::Metrics::new();
    /// assert_eq!(M.snapshot().attempts(), 0);
    /// ```
    pub const fn new() -> Self {
        Metrics {
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            give_ups: [const { AtomicU64::new(0) }; GiveUp::ALL.len()],
            breaker_opened: AtomicU64::new(0),
            breaker_half_opened: AtomicU64::new(0),
            breaker_closed: AtomicU64::new(0),
            breaker_rejected: AtomicU64::new(0),
        }
    }

    /// Reads every counter (each atomically; the set is not one atomic
    /// snapshot while calls run).
    ///
    /// ```
    /// assert_eq!(stormguard::Metrics::new().snapshot().give_ups().total(), 0);
    /// ```
    pub fn snapshot(&self) -> MetricsSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            attempts: read(&self.attempts),
            retries: read(&self.retries),
            successes: read(&self.successes),
            give_ups: GiveUpCounts {
                by_reason: core::array::from_fn(|i| self.give_ups.get(i).map_or(0, read)),
            },
            breaker_opened: read(&self.breaker_opened),
            breaker_half_opened: read(&self.breaker_half_opened),
            breaker_closed: read(&self.breaker_closed),
            breaker_rejected: read(&self.breaker_rejected),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn attempt(&self) {
        Metrics::bump(&self.attempts);
    }

    pub(crate) fn retry(&self) {
        Metrics::bump(&self.retries);
    }

    pub(crate) fn success(&self) {
        Metrics::bump(&self.successes);
    }

    pub(crate) fn give_up(&self, reason: GiveUp) {
        if let Some(counter) = self.give_ups.get(reason.index()) {
            Metrics::bump(counter);
        }
    }

    pub(crate) fn breaker_opened(&self) {
        Metrics::bump(&self.breaker_opened);
    }

    pub(crate) fn breaker_half_opened(&self) {
        Metrics::bump(&self.breaker_half_opened);
    }

    pub(crate) fn breaker_closed(&self) {
        Metrics::bump(&self.breaker_closed);
    }

    pub(crate) fn breaker_rejected(&self) {
        Metrics::bump(&self.breaker_rejected);
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;

    use super::*;
    use std::format;
    use std::vec::Vec;

    #[test]
    fn a_snapshot_reads_every_counter() {
        let m = Metrics::new();
        let bump = |f: fn(&Metrics), n| (0..n).for_each(|_| f(&m));
        bump(Metrics::attempt, 2);
        bump(Metrics::retry, 3);
        bump(Metrics::success, 4);
        bump(Metrics::breaker_opened, 5);
        bump(Metrics::breaker_half_opened, 6);
        bump(Metrics::breaker_closed, 7);
        bump(Metrics::breaker_rejected, 8);
        m.give_up(GiveUp::CircuitOpen);
        m.give_up(GiveUp::CircuitOpen);
        m.give_up(GiveUp::DeadlineExceeded);
        let s = m.snapshot();
        assert_eq!(
            [
                s.attempts(),
                s.retries(),
                s.successes(),
                s.breaker_opened(),
                s.breaker_half_opened(),
                s.breaker_closed(),
                s.breaker_rejected(),
            ],
            [2, 3, 4, 5, 6, 7, 8]
        );
        let counts = s.give_ups();
        assert_eq!(counts.get(GiveUp::CircuitOpen), 2);
        assert_eq!(counts.get(GiveUp::DeadlineExceeded), 1);
        assert_eq!(counts.total(), 3);
        let listed: Vec<_> = counts.iter().collect();
        assert_eq!(listed.len(), GiveUp::ALL.len());
        for (reason, n) in listed {
            assert_eq!(n, counts.get(reason), "{reason}");
        }
        assert_eq!(format!("{m:?}"), format!("{s:?}"));
        assert!(format!("{m:?}").contains("breaker_rejected: 8"));
    }
}
