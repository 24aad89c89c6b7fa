//! Adaptive client throttling: the client sheds its own requests in
//! proportion to how many the backend has been refusing.

use core::fmt;
use core::time::Duration;

use crate::config::{ConfigError, ConfigErrorKind};
use crate::sync::{const_unless_loom, transition_u64, AtomicU64, Ordering};
use crate::time::{duration_to_nanos, Instant};

/// The ring's buckets: the window slides in steps of `window / BUCKETS`.
const BUCKETS: usize = 16;
/// Bits of a bucket's word: the epoch (which step of time it counts), then
/// requests, then accepts.
const EPOCH_BITS: u32 = 22;
const COUNT_BITS: u32 = 21;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;

/// The adaptive throttle of the Google SRE book ("Handling Overload",
/// client-side throttling): each client tracks, over a sliding window, the
/// requests it made and the ones the backend accepted, and rejects new
/// requests locally with probability
///
/// `max(0, (requests − K·accepts) / (requests + 1))`
///
/// capped at `max_reject`. While the backend accepts everything the
/// probability is 0; once it refuses more than 1/K of the requests, the
/// client starts dropping its own, so the load reaching the backend tracks
/// what it accepts — and never stops entirely, so recovery is noticed at
/// once. Unlike a [`CircuitBreaker`](crate::CircuitBreaker), which sheds
/// everything while open and then probes, the throttle sheds *gradually*:
/// there are no waves of probes and no all-or-nothing swings. The book
/// uses K = 2 ("the client can send twice as many requests as the backend
/// accepts") and a window of two minutes: those are the defaults.
///
/// Requests are counted *before* they are sent — rejected ones too, which is
/// what makes the probability climb when the backend keeps refusing. Report
/// an accepted request with [`on_accept`](Self::on_accept) (a [`Call`]
/// does both: it admits each attempt and reports accepts by its rules).
///
/// # Lock-freedom and exactness
/// The window is a ring of 16 buckets, each one `AtomicU64` holding its time
/// step and its two counts, changed by compare-and-swap: no lock, no
/// allocation. The random draw is the caller's ([`admit`](Self::admit) takes
/// it), so tests — and the simulator — get exact, reproducible answers.
/// Counts saturate at 2 097 151 per bucket. 152 bytes.
///
/// [`Call`]: crate::Call
///
/// ```
/// use stormguard::{AdaptiveThrottle, Instant};
///
/// let throttle = AdaptiveThrottle::sre(); // K = 2, a two-minute window
/// let now = Instant::from_secs(10);
/// // The backend refuses everything: 100 requests, no accepts.
/// for _ in 0..100 {
///     let _ = throttle.admit(now, u32::MAX); // the highest draw: always admitted
/// }
/// let p = throttle.reject_probability(now);
/// assert!((p - 100.0 / 101.0).abs() < 1e-9);
/// // A low draw is now rejected, locally: the backend never sees it.
/// assert!(!throttle.admit(now, 0));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
pub struct AdaptiveThrottle {
    buckets: [AtomicU64; BUCKETS],
    bucket_nanos: u64,
    /// K, in thousandths.
    k_milli: u32,
    min_requests: u32,
    /// The highest probability of rejecting, in millionths.
    max_reject_micro: u32,
}

/// The unvalidated settings of an [`AdaptiveThrottle`].
///
/// ```
/// use core::time::Duration;
/// let throttle = stormguard::AdaptiveThrottle::builder()
///     .k(1.5)
///     .window(Duration::from_secs(30))
///     .min_requests(20)
///     .max_reject(0.9)
///     .build()?;
/// assert_eq!(throttle.window(), Duration::from_secs(30));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use = "a builder does nothing until `build()`"]
pub struct AdaptiveThrottleBuilder {
    k: f64,
    window: Duration,
    min_requests: u32,
    max_reject: f64,
}

#[cfg(not(loom))]
const fn new_buckets() -> [AtomicU64; BUCKETS] {
    [const { AtomicU64::new(0) }; BUCKETS]
}

#[cfg(loom)]
fn new_buckets() -> [AtomicU64; BUCKETS] {
    core::array::from_fn(|_| AtomicU64::new(0))
}

const fn pack(epoch: u64, requests: u64, accepts: u64) -> u64 {
    ((epoch & EPOCH_MASK) << (2 * COUNT_BITS)) | (requests << COUNT_BITS) | accepts
}

const fn unpack(word: u64) -> (u64, u64, u64) {
    (
        word >> (2 * COUNT_BITS),
        (word >> COUNT_BITS) & COUNT_MAX,
        word & COUNT_MAX,
    )
}

impl AdaptiveThrottle {
    /// A builder with the SRE book's numbers: K = 2, a two-minute window, no
    /// minimum request count, no cap on the reject probability below 1.
    ///
    /// ```
    /// let t = stormguard::AdaptiveThrottle::builder().build()?;
    /// assert_eq!(t.k(), 2.0);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn builder() -> AdaptiveThrottleBuilder {
        AdaptiveThrottleBuilder {
            k: 2.0,
            window: Duration::from_secs(120),
            min_requests: 0,
            max_reject: 1.0,
        }
    }

    const_unless_loom! {
        /// The SRE book's throttle: K = 2 over a two-minute window.
        ///
        /// ```
        /// use core::time::Duration;
        /// let t = stormguard::AdaptiveThrottle::sre();
        /// assert_eq!(t.window(), Duration::from_secs(120));
        /// ```
        pub const fn sre() -> AdaptiveThrottle {
            AdaptiveThrottle::from_valid(AdaptiveThrottle::builder())
        }
    }

    const_unless_loom! {
        /// The throttle for settings already validated.
        const fn from_valid(settings: AdaptiveThrottleBuilder) -> AdaptiveThrottle {
            let window = duration_to_nanos(settings.window);
            AdaptiveThrottle {
                buckets: new_buckets(),
                bucket_nanos: window / BUCKETS as u64,
                k_milli: (settings.k * 1000.0 + 0.5) as u32,
                min_requests: settings.min_requests,
                max_reject_micro: (settings.max_reject * 1_000_000.0 + 0.5) as u32,
            }
        }
    }

    /// The time step `now` falls in.
    #[inline]
    fn epoch(&self, now: Instant) -> u64 {
        now.as_nanos() / self.bucket_nanos
    }

    /// Adds `requests` and `accepts` to `now`'s bucket, starting the bucket
    /// afresh if it still counts an older step.
    #[inline]
    fn count(&self, now: Instant, requests: u64, accepts: u64) {
        let epoch = self.epoch(now);
        let Some(bucket) = self.buckets.get(epoch as usize % BUCKETS) else {
            return;
        };
        let _ = transition_u64(bucket, |word| {
            let (stored, r, a) = unpack(word);
            let now_epoch = epoch & EPOCH_MASK;
            let ahead = stored.wrapping_sub(now_epoch) & EPOCH_MASK;
            let (owner, r, a) = if stored == now_epoch {
                (stored, r, a)
            } else if ahead < 1 << (EPOCH_BITS - 1) {
                // A later step already owns the bucket (this caller's clock
                // is behind): count into it rather than erase it.
                (stored, r, a)
            } else {
                (now_epoch, 0, 0)
            };
            let r = (r + requests).min(COUNT_MAX);
            let a = (a + accepts).min(COUNT_MAX);
            Ok::<_, ()>(((), pack(owner, r, a)))
        });
    }

    /// The requests and accepts of the window ending at `now`.
    ///
    /// ```
    /// use stormguard::{AdaptiveThrottle, Instant};
    /// let t = AdaptiveThrottle::sre();
    /// let now = Instant::from_secs(1);
    /// let _ = t.admit(now, u32::MAX);
    /// t.on_accept(now);
    /// assert_eq!(t.totals(now), (1, 1));
    /// ```
    pub fn totals(&self, now: Instant) -> (u64, u64) {
        let epoch = self.epoch(now);
        let (mut requests, mut accepts) = (0, 0);
        for bucket in &self.buckets {
            let (stored, r, a) = unpack(bucket.load(Ordering::Acquire));
            // Within the window: one of the last BUCKETS steps (modulo the
            // epoch's bits), and not from the future.
            let age = (epoch & EPOCH_MASK).wrapping_sub(stored) & EPOCH_MASK;
            if age < BUCKETS as u64 {
                requests += r;
                accepts += a;
            }
        }
        (requests, accepts)
    }

    /// The probability of rejecting a request at `now`:
    /// `max(0, (requests − K·accepts) / (requests + 1))`, capped at
    /// `max_reject`; 0 while the window holds fewer than `min_requests`
    /// requests.
    ///
    /// ```
    /// use stormguard::{AdaptiveThrottle, Instant};
    /// let t = AdaptiveThrottle::sre();
    /// assert_eq!(t.reject_probability(Instant::ZERO), 0.0);
    /// ```
    pub fn reject_probability(&self, now: Instant) -> f64 {
        let (requests, accepts) = self.totals(now);
        self.probability(requests, accepts)
    }

    fn probability(&self, requests: u64, accepts: u64) -> f64 {
        if requests < u64::from(self.min_requests) {
            return 0.0;
        }
        let excess = requests as f64 - f64::from(self.k_milli) / 1000.0 * accepts as f64;
        let p = excess / (requests as f64 + 1.0);
        let cap = f64::from(self.max_reject_micro) / 1_000_000.0;
        if p <= 0.0 {
            0.0
        } else if p > cap {
            cap
        } else {
            p
        }
    }

    /// Counts a request at `now` and says whether to send it: `false` means
    /// reject it locally. `draw` is a uniform random `u32` (the caller's, so
    /// tests are exact); the request is rejected when
    /// `draw < probability × 2³²`. Call it once per request, right before
    /// sending; calling it without sending inflates the probability.
    ///
    /// ```
    /// use stormguard::{AdaptiveThrottle, Instant};
    /// let t = AdaptiveThrottle::sre();
    /// assert!(t.admit(Instant::ZERO, 0)); // nothing refused yet: everything goes
    /// assert_eq!(t.totals(Instant::ZERO), (1, 0));
    /// ```
    pub fn admit(&self, now: Instant, draw: u32) -> bool {
        let p = self.reject_probability(now);
        self.count(now, 1, 0);
        let threshold = p * 4_294_967_296.0;
        (f64::from(draw)) >= threshold
    }

    /// The backend accepted a request (it answered, even with an error that
    /// is not overload): raises the share of requests that may be sent.
    ///
    /// ```
    /// use stormguard::{AdaptiveThrottle, Instant};
    /// let t = AdaptiveThrottle::sre();
    /// t.on_accept(Instant::ZERO);
    /// assert_eq!(t.totals(Instant::ZERO), (0, 1));
    /// ```
    pub fn on_accept(&self, now: Instant) {
        self.count(now, 0, 1);
    }

    /// K: how many requests per accepted one the client may send before it
    /// starts rejecting.
    ///
    /// ```
    /// assert_eq!(stormguard::AdaptiveThrottle::sre().k(), 2.0);
    /// ```
    pub fn k(&self) -> f64 {
        f64::from(self.k_milli) / 1000.0
    }

    /// The window the counts cover.
    ///
    /// ```
    /// assert_eq!(stormguard::AdaptiveThrottle::sre().window().as_secs(), 120);
    /// ```
    pub const fn window(&self) -> Duration {
        Duration::from_nanos(self.bucket_nanos.saturating_mul(BUCKETS as u64))
    }
}

impl Default for AdaptiveThrottle {
    /// [`AdaptiveThrottle::sre`].
    fn default() -> Self {
        AdaptiveThrottle::from_valid(AdaptiveThrottle::builder())
    }
}

impl fmt::Debug for AdaptiveThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveThrottle")
            .field("k", &self.k())
            .field("window", &self.window())
            .field("min_requests", &self.min_requests)
            .finish_non_exhaustive()
    }
}

impl AdaptiveThrottleBuilder {
    /// K, the requests allowed per accepted request before rejecting begins
    /// (finite, in [1, 1000]; the SRE book's 2 by default — lower rejects
    /// earlier, higher lets more through).
    ///
    /// ```
    /// let err = stormguard::AdaptiveThrottle::builder().k(0.5).build().unwrap_err();
    /// assert_eq!(err.field(), "k");
    /// ```
    pub const fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// The sliding window the counts cover, in [1.6 s, 1 day] (it slides in
    /// sixteenths).
    ///
    /// ```
    /// use core::time::Duration;
    /// let err = stormguard::AdaptiveThrottle::builder().window(Duration::from_millis(10)).build().unwrap_err();
    /// assert_eq!(err.field(), "window");
    /// ```
    pub const fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Rejects nothing while the window holds fewer than `requests`
    /// requests: a client with little traffic never throttles on a few
    /// unlucky failures.
    ///
    /// ```
    /// let t = stormguard::AdaptiveThrottle::builder().min_requests(50).build();
    /// assert!(t.is_ok());
    /// ```
    pub const fn min_requests(mut self, requests: u32) -> Self {
        self.min_requests = requests;
        self
    }

    /// The highest probability of rejecting, in (0, 1] (1 by default: the
    /// formula's own limit, which stays just below 1).
    ///
    /// ```
    /// let err = stormguard::AdaptiveThrottle::builder().max_reject(1.5).build().unwrap_err();
    /// assert_eq!(err.field(), "max_reject");
    /// ```
    pub const fn max_reject(mut self, max: f64) -> Self {
        self.max_reject = max;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field: `k` not finite or outside
    /// [1, 1000], `window` outside [1.6 s, 1 day], `max_reject` not finite
    /// or outside (0, 1].
    ///
    /// ```
    /// assert!(stormguard::AdaptiveThrottle::builder().k(f64::NAN).build().is_err());
    /// ```
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if !self.k.is_finite() {
            return Err(ConfigError::new("k", ConfigErrorKind::NotFinite));
        }
        if self.k < 1.0 || self.k > 1000.0 {
            return Err(ConfigError::new(
                "k",
                ConfigErrorKind::OutOfRange("between 1 and 1000"),
            ));
        }
        let window = self.window.as_nanos();
        if window < 1_600_000_000 || window > 86_400_000_000_000 {
            return Err(ConfigError::new(
                "window",
                ConfigErrorKind::OutOfRange("between 1.6 s and 1 day"),
            ));
        }
        if !self.max_reject.is_finite() {
            return Err(ConfigError::new("max_reject", ConfigErrorKind::NotFinite));
        }
        if self.max_reject <= 0.0 || self.max_reject > 1.0 {
            return Err(ConfigError::new(
                "max_reject",
                ConfigErrorKind::OutOfRange("in (0, 1]"),
            ));
        }
        Ok(())
    }

    const_unless_loom! {
        /// Validates the settings and builds the throttle.
        ///
        /// # Errors
        /// See [`validate`](Self::validate).
        ///
        /// ```
        /// let t = stormguard::AdaptiveThrottle::builder().k(3.0).build()?;
        /// assert_eq!(t.k(), 3.0);
        /// # Ok::<(), stormguard::ConfigError>(())
        /// ```
        pub const fn build(self) -> Result<AdaptiveThrottle, ConfigError> {
            match self.validate() {
                Ok(()) => Ok(AdaptiveThrottle::from_valid(self)),
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::format;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn the_sre_formula() {
        let t = AdaptiveThrottle::sre();
        let now = at(5_000);
        for _ in 0..30 {
            assert!(t.admit(now, u32::MAX));
        }
        for _ in 0..10 {
            t.on_accept(now);
        }
        // (30 − 2·10) / 31
        assert!((t.reject_probability(now) - 10.0 / 31.0).abs() < 1e-12);
        // Accepts at half the requests or more: nothing rejected.
        for _ in 0..5 {
            t.on_accept(now);
        }
        assert_eq!(t.reject_probability(now), 0.0);
    }

    #[test]
    fn the_draw_decides_exactly() {
        let t = AdaptiveThrottle::sre();
        let now = at(1_000);
        for _ in 0..3 {
            let _ = t.admit(now, u32::MAX);
        }
        // p = 3/4 before the next request is counted.
        let threshold = (0.75 * 4_294_967_296.0) as u32;
        assert!(!t.admit(now, threshold - 1));
        // p = 4/5 now (the rejected request counted too): a draw at the
        // threshold goes, one below it does not.
        let threshold = (0.8f64 * 4_294_967_296.0).ceil() as u32;
        assert!(!t.admit(now, threshold - 1));
        // p = 5/6 after that one.
        let threshold = (5.0f64 / 6.0 * 4_294_967_296.0).ceil() as u32;
        assert!(t.admit(now, threshold));
    }

    #[test]
    fn counts_slide_out_of_the_window() {
        let t = AdaptiveThrottle::builder()
            .window(Duration::from_secs(16))
            .build()
            .unwrap();
        for s in 0..16 {
            let _ = t.admit(Instant::from_secs(s), u32::MAX);
        }
        assert_eq!(t.totals(Instant::from_secs(15)), (16, 0));
        // One step later the oldest bucket has left the window.
        assert_eq!(t.totals(Instant::from_secs(16)), (15, 0));
        assert_eq!(t.totals(Instant::from_secs(100)), (0, 0));
        // A bucket reused for a new step starts afresh.
        let _ = t.admit(Instant::from_secs(32), u32::MAX);
        assert_eq!(t.totals(Instant::from_secs(32)), (1, 0));
    }

    #[test]
    fn a_minimum_and_a_cap() {
        let t = AdaptiveThrottle::builder()
            .min_requests(10)
            .max_reject(0.5)
            .build()
            .unwrap();
        let now = at(0);
        for _ in 0..9 {
            let _ = t.admit(now, u32::MAX);
        }
        assert_eq!(t.reject_probability(now), 0.0, "below the minimum");
        for _ in 0..100 {
            let _ = t.admit(now, u32::MAX);
        }
        assert_eq!(t.reject_probability(now), 0.5, "capped");
    }

    #[test]
    fn a_clock_behind_counts_into_the_current_step() {
        let t = AdaptiveThrottle::builder()
            .window(Duration::from_secs(16))
            .build()
            .unwrap();
        let _ = t.admit(Instant::from_secs(20), u32::MAX);
        // A caller whose clock reads one step earlier, in the same bucket
        // slot 16 steps back, must not erase the newer count.
        let _ = t.admit(Instant::from_secs(4), u32::MAX);
        assert_eq!(t.totals(Instant::from_secs(20)).0, 2);
    }

    #[test]
    fn a_bucket_half_the_epoch_space_ahead_counts_as_wrapped() {
        // Epochs are counted modulo 2^22 steps: a stored step exactly half
        // that space ahead is taken for an old step that wrapped, so the
        // bucket starts afresh; one step less ahead is a later step and is
        // counted into.
        let t = AdaptiveThrottle::builder()
            .window(Duration::from_secs(16))
            .build()
            .unwrap();
        let half = 1u64 << (EPOCH_BITS - 1);
        let _ = t.admit(Instant::from_secs(half), u32::MAX);
        let _ = t.admit(Instant::from_secs(0), u32::MAX);
        assert_eq!(t.totals(Instant::from_secs(half)), (0, 0));
        assert_eq!(t.totals(Instant::from_secs(0)), (1, 0));

        let t = AdaptiveThrottle::builder()
            .window(Duration::from_secs(16))
            .build()
            .unwrap();
        let _ = t.admit(Instant::from_secs(half - 16), u32::MAX);
        let _ = t.admit(Instant::from_secs(0), u32::MAX);
        assert_eq!(t.totals(Instant::from_secs(half - 16)), (2, 0));
    }

    #[test]
    fn the_minimum_counts_the_request_that_reaches_it() {
        let t = AdaptiveThrottle::builder()
            .min_requests(10)
            .build()
            .unwrap();
        let now = at(0);
        for _ in 0..10 {
            let _ = t.admit(now, u32::MAX);
        }
        // Ten requests, none accepted: 10 / 11.
        assert!((t.reject_probability(now) - 10.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn k_and_debug_show_the_settings() {
        let t = AdaptiveThrottle::builder()
            .k(3.5)
            .window(Duration::from_secs(32))
            .min_requests(7)
            .build()
            .unwrap();
        assert_eq!(t.k(), 3.5);
        assert_eq!(t.window(), Duration::from_secs(32));
        assert_eq!(
            format!("{t:?}"),
            "AdaptiveThrottle { k: 3.5, window: 32s, min_requests: 7, .. }"
        );
    }

    #[test]
    fn validation_accepts_its_bounds() {
        let b = AdaptiveThrottle::builder;
        assert!(b().k(1.0).build().is_ok());
        assert!(b().k(1000.0).build().is_ok());
        assert_eq!(b().k(1000.5).build().unwrap_err().field(), "k");
        assert!(b().window(Duration::from_millis(1_600)).build().is_ok());
        assert!(b().window(Duration::from_secs(86_400)).build().is_ok());
        let just_under = Duration::from_millis(1_600) - Duration::from_nanos(1);
        assert_eq!(
            b().window(just_under).build().unwrap_err().field(),
            "window"
        );
        let just_over = Duration::from_secs(86_400) + Duration::from_nanos(1);
        assert_eq!(b().window(just_over).build().unwrap_err().field(), "window");
    }

    #[test]
    fn validation_names_fields() {
        let b = AdaptiveThrottle::builder;
        let field = |r: Result<AdaptiveThrottle, ConfigError>| r.unwrap_err().field();
        assert_eq!(field(b().k(f64::INFINITY).build()), "k");
        assert_eq!(field(b().k(0.99).build()), "k");
        assert_eq!(field(b().window(Duration::from_secs(1)).build()), "window");
        assert_eq!(
            field(b().window(Duration::from_secs(90_000)).build()),
            "window"
        );
        assert_eq!(field(b().max_reject(0.0).build()), "max_reject");
        assert_eq!(field(b().max_reject(f64::NAN).build()), "max_reject");
        assert!(b().k(1.0).max_reject(1.0).build().is_ok());
    }
}
