//! Time as a value: the caller owns the clock.
//!
//! stormguard never reads a clock. Every method that depends on time takes
//! `now: Instant`, an integer count of nanoseconds since an origin the caller
//! chooses (boot, process start, the start of a simulation). This is what
//! makes the core usable on firmware without an OS and makes every test of
//! time exact: a test simply passes the instants it wants.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time: nanoseconds since an origin the caller chooses.
///
/// Instants are monotonic *by contract*, not by enforcement. A caller whose
/// clock goes backwards gets saturating arithmetic everywhere — a duration
/// between an instant and a later one is [`Duration::ZERO`], never a panic,
/// an overflow or a huge wait.
///
/// `u64` nanoseconds cover 584 years, so adding any duration saturates at
/// [`Instant::MAX`] rather than wrapping.
///
/// # Example
/// ```
/// use core::time::Duration;
/// use stormguard::Instant;
///
/// let t0 = Instant::from_millis(1_000);
/// let t1 = t0 + Duration::from_millis(250);
/// assert_eq!(t1.as_millis(), 1_250);
/// assert_eq!(t1.saturating_duration_since(t0), Duration::from_millis(250));
/// // A clock that went backwards: zero, not a panic.
/// assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant { nanos: 0 };
    /// The latest representable instant; also used as "never".
    pub const MAX: Instant = Instant { nanos: u64::MAX };

    /// An instant `nanos` nanoseconds after the origin.
    ///
    /// ```
    /// # use stormguard::Instant;
    /// assert_eq!(Instant::from_nanos(1_500).as_micros(), 1);
    /// ```
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant { nanos }
    }

    /// An instant `micros` microseconds after the origin (saturating).
    ///
    /// ```
    /// # use stormguard::Instant;
    /// assert_eq!(Instant::from_micros(7).as_nanos(), 7_000);
    /// ```
    pub const fn from_micros(micros: u64) -> Self {
        Instant {
            nanos: micros.saturating_mul(1_000),
        }
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    ///
    /// ```
    /// # use stormguard::Instant;
    /// assert_eq!(Instant::from_millis(3).as_micros(), 3_000);
    /// ```
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// An instant `secs` seconds after the origin (saturating).
    ///
    /// ```
    /// # use stormguard::Instant;
    /// assert_eq!(Instant::from_secs(2).as_millis(), 2_000);
    /// ```
    pub const fn from_secs(secs: u64) -> Self {
        Instant {
            nanos: secs.saturating_mul(1_000_000_000),
        }
    }

    /// Nanoseconds since the origin.
    ///
    /// ```
    /// # use stormguard::Instant;
    /// assert_eq!(Instant::from_micros(1).as_nanos(), 1_000);
    /// ```
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Whole microseconds since the origin.
    ///
    /// ```
    /// # use stormguard::Instant;
    /// assert_eq!(Instant::from_nanos(2_999).as_micros(), 2);
    /// ```
    pub const fn as_micros(self) -> u64 {
        self.nanos / 1_000
    }

    /// Whole milliseconds since the origin.
    ///
    /// ```
    /// # use stormguard::Instant;
    /// assert_eq!(Instant::from_secs(1).as_millis(), 1_000);
    /// ```
    pub const fn as_millis(self) -> u64 {
        self.nanos / 1_000_000
    }

    /// The time elapsed since the origin, as a [`Duration`].
    ///
    /// ```
    /// # use stormguard::Instant;
    /// # use core::time::Duration;
    /// assert_eq!(Instant::from_millis(5).since_origin(), Duration::from_millis(5));
    /// ```
    pub const fn since_origin(self) -> Duration {
        Duration::from_nanos(self.nanos)
    }

    /// The duration from `earlier` to `self`, or zero if `earlier` is later
    /// (a clock that went backwards).
    ///
    /// ```
    /// # use stormguard::Instant;
    /// # use core::time::Duration;
    /// let (a, b) = (Instant::from_secs(1), Instant::from_secs(3));
    /// assert_eq!(b.saturating_duration_since(a), Duration::from_secs(2));
    /// assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    /// ```
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// `self + duration`, saturating at [`Instant::MAX`].
    ///
    /// ```
    /// # use stormguard::Instant;
    /// # use core::time::Duration;
    /// assert_eq!(Instant::MAX.saturating_add(Duration::from_secs(1)), Instant::MAX);
    /// ```
    #[must_use = "this returns the result of the operation, without modifying the original"]
    pub const fn saturating_add(self, duration: Duration) -> Instant {
        Instant {
            nanos: self.nanos.saturating_add(duration_to_nanos(duration)),
        }
    }

    /// `self - duration`, saturating at the origin.
    ///
    /// ```
    /// # use stormguard::Instant;
    /// # use core::time::Duration;
    /// assert_eq!(Instant::ZERO.saturating_sub(Duration::from_secs(1)), Instant::ZERO);
    /// ```
    #[must_use = "this returns the result of the operation, without modifying the original"]
    pub const fn saturating_sub(self, duration: Duration) -> Instant {
        Instant {
            nanos: self.nanos.saturating_sub(duration_to_nanos(duration)),
        }
    }

    /// The instant `now` measured from `origin`, both `std::time::Instant`s.
    ///
    /// A `now` earlier than `origin` maps to [`Instant::ZERO`].
    ///
    /// ```
    /// let origin = std::time::Instant::now();
    /// let now = stormguard::Instant::from_std(origin, std::time::Instant::now());
    /// assert!(now.as_nanos() < 60_000_000_000);
    /// ```
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn from_std(origin: std::time::Instant, now: std::time::Instant) -> Instant {
        Instant {
            nanos: duration_to_nanos(now.saturating_duration_since(origin)),
        }
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) const fn duration_to_nanos(duration: Duration) -> u64 {
    let nanos = duration.as_nanos();
    if nanos > u64::MAX as u128 {
        u64::MAX
    } else {
        nanos as u64
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturating: never overflows, never panics.
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;

    /// Saturating at the origin.
    fn sub(self, rhs: Duration) -> Instant {
        self.saturating_sub(rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// Saturating: an `rhs` later than `self` gives [`Duration::ZERO`].
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let max = Duration::new(u64::MAX, 999_999_999);
        assert_eq!(Instant::from_secs(1) + max, Instant::MAX);
        assert_eq!(Instant::from_secs(1) - max, Instant::ZERO);
        assert_eq!(duration_to_nanos(max), u64::MAX);
        // 2^64 ns (whose low 64 bits are zero) saturates too.
        let just_over = Duration::from_nanos(u64::MAX) + Duration::from_nanos(1);
        assert_eq!(duration_to_nanos(just_over), u64::MAX);
        assert_eq!(duration_to_nanos(Duration::from_nanos(u64::MAX)), u64::MAX);
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
    }

    #[test]
    fn units_convert_exactly_and_saturate() {
        let t = Instant::from_nanos(1_234_567_891);
        assert_eq!(t.as_nanos(), 1_234_567_891);
        assert_eq!(t.as_micros(), 1_234_567);
        assert_eq!(t.as_millis(), 1_234);
        assert_eq!(t.since_origin(), Duration::from_nanos(1_234_567_891));
        assert_eq!(Instant::from_micros(7).as_nanos(), 7_000);
        assert_eq!(Instant::from_millis(7).as_nanos(), 7_000_000);
        assert_eq!(Instant::from_secs(7).as_nanos(), 7_000_000_000);
        assert_eq!(Instant::from_micros(u64::MAX), Instant::MAX);
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
    }

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        let (one, two) = (Instant::from_secs(1), Instant::from_secs(2));
        let sec = Duration::from_secs(1);
        assert_eq!(two.saturating_duration_since(one), sec);
        assert_eq!(one.saturating_duration_since(two), Duration::ZERO);
        assert_eq!(one.saturating_add(sec), two);
        assert_eq!(two.saturating_sub(sec), one);
        assert_eq!(one.saturating_sub(sec * 2), Instant::ZERO);
        assert_eq!(Instant::MAX.saturating_add(sec), Instant::MAX);
        let mut t = one;
        t += sec;
        assert_eq!(t, two);
        assert_eq!(two - sec, one);
        assert_eq!(two - one, sec);
    }

    #[cfg(feature = "std")]
    #[test]
    fn from_std_measures_from_the_origin() {
        let origin = std::time::Instant::now();
        let later = origin + Duration::from_millis(1_500);
        assert_eq!(
            Instant::from_std(origin, later),
            Instant::from_millis(1_500)
        );
        assert_eq!(Instant::from_std(later, origin), Instant::ZERO);
    }

    #[test]
    fn backwards_clock_gives_zero() {
        assert_eq!(
            Instant::from_secs(1) - Instant::from_secs(2),
            Duration::ZERO
        );
    }
}
