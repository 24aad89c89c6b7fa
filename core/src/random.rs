//! The random generator that jitter is drawn from.

/// A small, seedable pseudo-random generator: where a [`Backoff`]'s jitter
/// comes from.
///
/// The same seed gives the same delays, so a schedule is reproducible in a
/// test. In production every call needs its own seed, or a fleet of clients
/// that failed together retries together: with `std`, [`Random::new`]
/// draws one from a per-thread generator seeded by the operating system;
/// without `std` there is no entropy to draw on, so firmware passes a seed
/// unique to the device and the call (a hardware random number, or a serial
/// number mixed with a counter).
///
/// The algorithm (wyrand) is an implementation detail: only "same seed,
/// same delays" within one version of stormguard is promised.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Backoff, Random};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100), 2.0).build()?;
/// let a: Vec<_> = backoff.delays(Random::with_seed(7)).take(4).collect();
/// let b: Vec<_> = backoff.delays(Random::with_seed(7)).take(4).collect();
/// assert_eq!(a, b);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
///
/// [`Backoff`]: crate::Backoff
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Random(fastrand::Rng);

impl Random {
    /// A generator seeded from the thread's own generator (itself seeded by
    /// the operating system): different in every call and every process.
    ///
    /// ```
    /// let mut a = stormguard::Random::new();
    /// let mut b = stormguard::Random::new();
    /// assert_ne!(a, b);
    /// ```
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    #[allow(clippy::new_without_default)] // a `Default` would hide that it draws entropy
    pub fn new() -> Self {
        Random(fastrand::Rng::new())
    }

    /// A generator whose output is fixed by `seed`.
    ///
    /// ```
    /// use stormguard::Random;
    /// assert_eq!(Random::with_seed(1), Random::with_seed(1));
    /// assert_ne!(Random::with_seed(1), Random::with_seed(2));
    /// ```
    pub fn with_seed(seed: u64) -> Self {
        Random(fastrand::Rng::with_seed(seed))
    }

    /// A uniform `u32`.
    #[inline]
    pub(crate) fn u32(&mut self) -> u32 {
        self.0.u32(..)
    }

    /// A uniform draw from `range` (inclusive; never panics, an empty range
    /// is not passed by the callers in this crate).
    #[inline]
    pub(crate) fn u64(&mut self, range: core::ops::RangeInclusive<u64>) -> u64 {
        self.0.u64(range)
    }
}
