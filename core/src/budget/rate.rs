//! At most N retries per second: a rate limit on retries (GCRA).

use crate::budget::{Budget, Withdrawal};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::failure::Failure;
use crate::sync::{const_unless_loom, transition_u64, AtomicU64};
use crate::time::Instant;

/// At most `per_second` retries per second, refilled continuously, with
/// bursts of up to `burst`.
///
/// The usual way to write this is a token bucket behind a lock that reads
/// the clock on every call. Here it is the generic cell rate algorithm
/// (GCRA, as in governor): the whole state is one "theoretical arrival time" in an
/// `AtomicU64`; a retry is allowed when that time is no further than
/// `burst − 1` intervals ahead of `now`, and pushes it one interval
/// forward — one compare-and-swap. Idle time refills the burst; nothing
/// accumulates beyond it. 24 bytes.
///
/// Unlike a ratio budget it does not grow with traffic: pick it when the
/// server's spare capacity for retries is a known, fixed number.
///
/// ```
/// use stormguard::{Budget, Failure, Instant, RateBudget};
///
/// let budget = RateBudget::new(2.0, 2)?; // 2 per second, bursts of 2
/// let f = Failure::transient();
/// let t0 = Instant::from_secs(10);
/// assert!(budget.try_retry(&f, t0).is_some());
/// assert!(budget.try_retry(&f, t0).is_some());
/// assert!(budget.try_retry(&f, t0).is_none()); // burst spent
/// assert!(budget.try_retry(&f, Instant::from_millis(10_500)).is_some()); // 500 ms later: one more
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RateBudget {
    /// Nanoseconds; the instant by which every granted retry is "paid for".
    theoretical_arrival: AtomicU64,
    interval_nanos: u64,
    tolerance_nanos: u64,
}

impl RateBudget {
    const_unless_loom! {
        /// At most `per_second` retries per second (fractions allowed:
        /// `0.5` is one every two seconds), bursts of up to `burst`.
        ///
        /// # Errors
        /// `per_second` not finite, or outside [1e-6, 1e9]; `burst` zero.
        ///
        /// ```
        /// use stormguard::RateBudget;
        /// assert_eq!(RateBudget::new(0.0, 1).unwrap_err().field(), "per_second");
        /// assert_eq!(RateBudget::new(10.0, 0).unwrap_err().field(), "burst");
        /// ```
        pub const fn new(per_second: f64, burst: u32) -> Result<RateBudget, ConfigError> {
            if !per_second.is_finite() {
                return Err(ConfigError::new("per_second", ConfigErrorKind::NotFinite));
            }
            if per_second < 1e-6 || per_second > 1e9 {
                return Err(ConfigError::new(
                    "per_second",
                    ConfigErrorKind::OutOfRange("between 0.000001 and 1000000000"),
                ));
            }
            if burst == 0 {
                return Err(ConfigError::new("burst", ConfigErrorKind::Zero));
            }
            let interval_nanos = (1e9 / per_second) as u64;
            Ok(RateBudget {
                theoretical_arrival: AtomicU64::new(0),
                interval_nanos,
                tolerance_nanos: interval_nanos.saturating_mul(burst as u64 - 1),
            })
        }
    }

    /// Takes one retry if the rate allows it at `now`.
    ///
    /// ```
    /// use stormguard::{Instant, RateBudget};
    /// let b = RateBudget::new(1.0, 1)?;
    /// assert!(b.acquire(Instant::from_secs(5)));
    /// assert!(!b.acquire(Instant::from_secs(5)));
    /// assert!(b.acquire(Instant::from_secs(6)));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn acquire(&self, now: Instant) -> bool {
        let now = now.as_nanos();
        let (interval, tolerance) = (self.interval_nanos, self.tolerance_nanos);
        transition_u64(&self.theoretical_arrival, |tat| {
            let tat = tat.max(now);
            if tat - now > tolerance {
                Err(())
            } else {
                Ok(((), tat.saturating_add(interval)))
            }
        })
        .is_ok()
    }

    /// The time between two retries at the sustained rate.
    ///
    /// ```
    /// use core::time::Duration;
    /// assert_eq!(stormguard::RateBudget::new(4.0, 1)?.interval(), Duration::from_millis(250));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn interval(&self) -> core::time::Duration {
        core::time::Duration::from_nanos(self.interval_nanos)
    }
}

impl Budget for RateBudget {
    #[inline]
    fn try_retry(&self, _: &Failure, now: Instant) -> Option<Withdrawal> {
        self.acquire(now).then_some(Withdrawal::FREE)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn as_a_budget_it_grants_the_burst_then_the_rate() {
        let b = RateBudget::new(1.0, 2).unwrap();
        let (f, now) = (Failure::transient(), Instant::from_secs(10));
        let granted = (0..5).filter(|_| b.try_retry(&f, now).is_some()).count();
        assert_eq!(granted, 2);
        assert!(b
            .try_retry(&f, now + core::time::Duration::from_secs(1))
            .is_some());
        assert!(b.needs_time());
    }

    #[test]
    fn sustained_rate_is_per_second() {
        let b = RateBudget::new(10.0, 5).unwrap();
        let mut granted = 0;
        // Try every millisecond for 10 s.
        for ms in 0..10_000 {
            if b.acquire(Instant::from_millis(1_000_000 + ms)) {
                granted += 1;
            }
        }
        // 5 of burst, then 10 per second.
        assert!((100..=105).contains(&granted), "{granted}");
    }

    #[test]
    fn idle_refills_only_up_to_the_burst() {
        let b = RateBudget::new(100.0, 3).unwrap();
        let t = Instant::from_secs(3600);
        assert_eq!((0..10).filter(|_| b.acquire(t)).count(), 3);
    }

    #[test]
    fn backwards_clock_refuses_rather_than_panics() {
        let b = RateBudget::new(1.0, 1).unwrap();
        assert!(b.acquire(Instant::from_secs(100)));
        assert!(!b.acquire(Instant::ZERO));
        assert!(b.acquire(Instant::MAX));
    }

    #[test]
    fn validation() {
        assert_eq!(
            RateBudget::new(f64::NAN, 1).unwrap_err().field(),
            "per_second"
        );
        assert_eq!(RateBudget::new(-1.0, 1).unwrap_err().field(), "per_second");
        assert_eq!(RateBudget::new(2e9, 1).unwrap_err().field(), "per_second");
        assert!(RateBudget::new(1e9, u32::MAX).is_ok());
        assert!(RateBudget::new(1e-6, 1).is_ok());
    }
}
