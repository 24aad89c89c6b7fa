//! Counters of what retries did: cheap to update, cheap to read.

use core::fmt;

use portable_atomic::{AtomicU64, Ordering};

use crate::retry::GiveUp;

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
/// assert_eq!((m.attempts, m.retries, m.give_ups.attempts_exhausted), (2, 1, 1));
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
/// ```
/// let snapshot = stormguard::Metrics::new().snapshot();
/// assert_eq!(snapshot, stormguard::MetricsSnapshot::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MetricsSnapshot {
    /// Attempts reported (failures and successes).
    pub attempts: u64,
    /// Decisions to retry.
    pub retries: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that gave up, by reason.
    pub give_ups: GiveUpCounts,
    /// Breaker transitions to open (from closed or half-open).
    pub breaker_opened: u64,
    /// Breaker transitions to half-open.
    pub breaker_half_opened: u64,
    /// Breaker transitions to closed.
    pub breaker_closed: u64,
    /// Calls the breaker refused without letting them through.
    pub breaker_rejected: u64,
}

/// Give-ups by reason; `budget_exhausted` is the count of budget refusals.
///
/// ```
/// let counts = stormguard::GiveUpCounts::default();
/// assert_eq!(counts.total(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GiveUpCounts {
    /// [`GiveUp::NotRetryable`].
    pub not_retryable: u64,
    /// [`GiveUp::AttemptsExhausted`].
    pub attempts_exhausted: u64,
    /// [`GiveUp::BudgetExhausted`]: the budget refused a retry.
    pub budget_exhausted: u64,
    /// [`GiveUp::DeadlineExceeded`].
    pub deadline_exceeded: u64,
    /// [`GiveUp::UnsafeToReplay`].
    pub unsafe_to_replay: u64,
    /// [`GiveUp::ServerSaidStop`].
    pub server_said_stop: u64,
    /// [`GiveUp::CircuitOpen`].
    pub circuit_open: u64,
}

impl GiveUpCounts {
    /// The count for one reason.
    ///
    /// ```
    /// use stormguard::{GiveUp, GiveUpCounts};
    /// assert_eq!(GiveUpCounts::default().get(GiveUp::CircuitOpen), 0);
    /// ```
    pub const fn get(&self, reason: GiveUp) -> u64 {
        match reason {
            GiveUp::NotRetryable => self.not_retryable,
            GiveUp::AttemptsExhausted => self.attempts_exhausted,
            GiveUp::BudgetExhausted => self.budget_exhausted,
            GiveUp::DeadlineExceeded => self.deadline_exceeded,
            GiveUp::UnsafeToReplay => self.unsafe_to_replay,
            GiveUp::ServerSaidStop => self.server_said_stop,
            GiveUp::CircuitOpen => self.circuit_open,
        }
    }

    /// Every give-up, whatever the reason.
    ///
    /// ```
    /// assert_eq!(stormguard::GiveUpCounts { circuit_open: 2, ..Default::default() }.total(), 2);
    /// ```
    pub const fn total(&self) -> u64 {
        self.not_retryable
            + self.attempts_exhausted
            + self.budget_exhausted
            + self.deadline_exceeded
            + self.unsafe_to_replay
            + self.server_said_stop
            + self.circuit_open
    }
}

impl Metrics {
    /// All counters at zero; `const`, so it can be a `static`.
    ///
    /// ```
    /// static M: stormguard::Metrics = stormguard::Metrics::new();
    /// assert_eq!(M.snapshot().attempts, 0);
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
    /// assert_eq!(stormguard::Metrics::new().snapshot().give_ups.total(), 0);
    /// ```
    pub fn snapshot(&self) -> MetricsSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let reason = |r: GiveUp| self.give_ups.get(r.index()).map_or(0, read);
        MetricsSnapshot {
            attempts: read(&self.attempts),
            retries: read(&self.retries),
            successes: read(&self.successes),
            give_ups: GiveUpCounts {
                not_retryable: reason(GiveUp::NotRetryable),
                attempts_exhausted: reason(GiveUp::AttemptsExhausted),
                budget_exhausted: reason(GiveUp::BudgetExhausted),
                deadline_exceeded: reason(GiveUp::DeadlineExceeded),
                unsafe_to_replay: reason(GiveUp::UnsafeToReplay),
                server_said_stop: reason(GiveUp::ServerSaidStop),
                circuit_open: reason(GiveUp::CircuitOpen),
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
