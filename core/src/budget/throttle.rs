//! gRPC retry throttling (proposal A6): a token bucket in one atomic word.

use crate::budget::{Budget, Withdrawal};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::failure::Failure;
use crate::sync::{const_unless_loom, transition_u32, AtomicU32, Ordering};
use crate::time::Instant;

/// gRPC's retry throttle: retries pause while half the bucket is gone.
///
/// The bucket starts full with `max_tokens`. Every failed attempt that
/// counts (a retryable failure, or a server that said stop) takes one token;
/// every successful call adds `token_ratio`; the count is clamped to
/// `[0, max_tokens]`. Retries are allowed only while tokens are **above**
/// `max_tokens / 2` — throttled at or below it. This is proposal A6's
/// `retryThrottling`, as grpc-go and grpc-java implement it: a bucket
/// exactly half full does not retry (a `tokens >= max / 2` check, an easy
/// slip, would let it).
///
/// Under a brownout every call fails, the bucket drains to half within
/// `max_tokens / 2` failures, and from then on only the original calls reach
/// the server: the offered load stays near 1× instead of climbing to
/// (retries + 1)×. As successes return, each earns back `token_ratio`.
///
/// The state is the token count in milli-tokens in one `AtomicU32` (A6 keeps
/// three decimals of `token_ratio`: 0.5466 is 0.546). Every update is one
/// compare-and-swap loop; nothing locks or allocates. 12 bytes.
///
/// ```
/// use stormguard::Throttle;
///
/// let throttle = Throttle::new(10, 0.1)?; // gRPC A6's example numbers
/// for _ in 0..4 {
///     throttle.record_failure();
/// }
/// assert!(throttle.allows_retry()); // 6 tokens > 5
/// throttle.record_failure();
/// assert!(!throttle.allows_retry()); // 5 tokens: throttled
/// for _ in 0..10 {
///     throttle.record_success();
/// }
/// assert_eq!(throttle.tokens_milli(), 6_000);
/// assert!(throttle.allows_retry());
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Throttle {
    milli_tokens: AtomicU32,
    max_milli: u32,
    ratio_milli: u32,
}

/// gRPC A6: `maxTokens` is in (0, 1000].
const MAX_TOKENS_LIMIT: u32 = 1000;

impl Throttle {
    const_unless_loom! {
        /// A full bucket of `max_tokens` tokens, earning back `token_ratio`
        /// per success.
        ///
        /// # Errors
        /// `max_tokens` outside (0, 1000]; `token_ratio` not finite, or below
        /// 0.001 (it keeps three decimals, so a smaller ratio would be zero).
        ///
        /// ```
        /// use stormguard::Throttle;
        /// assert_eq!(Throttle::new(0, 0.1).unwrap_err().field(), "max_tokens");
        /// assert_eq!(Throttle::new(10, f64::NAN).unwrap_err().field(), "token_ratio");
        /// // Decimals beyond three are ignored, as in grpc-java.
        /// assert_eq!(Throttle::new(10, 0.5466)?.token_ratio_milli(), 546);
        /// # Ok::<(), stormguard::ConfigError>(())
        /// ```
        pub const fn new(max_tokens: u32, token_ratio: f64) -> Result<Throttle, ConfigError> {
            if max_tokens == 0 {
                return Err(ConfigError::new("max_tokens", ConfigErrorKind::Zero));
            }
            if max_tokens > MAX_TOKENS_LIMIT {
                return Err(ConfigError::new(
                    "max_tokens",
                    ConfigErrorKind::OutOfRange("at most 1000"),
                ));
            }
            if !token_ratio.is_finite() {
                return Err(ConfigError::new("token_ratio", ConfigErrorKind::NotFinite));
            }
            if token_ratio < 0.001 {
                return Err(ConfigError::new(
                    "token_ratio",
                    ConfigErrorKind::OutOfRange("at least 0.001"),
                ));
            }
            let max_milli = max_tokens * 1000;
            // The epsilon keeps 0.3 (0.29999…) at 300; `as` saturates.
            let ratio = (token_ratio * 1000.0 + 1e-6) as u32;
            // A ratio above the maximum behaves exactly like the maximum.
            let ratio_milli = if ratio > max_milli { max_milli } else { ratio };
            Ok(Throttle {
                milli_tokens: AtomicU32::new(max_milli),
                max_milli,
                ratio_milli,
            })
        }
    }

    /// A full bucket from settings [`Throttle::new`] has already checked
    /// (a service config's `retryThrottling`, kept in thousandths).
    #[cfg(feature = "grpc-config")]
    pub(crate) fn from_milli(max_tokens: u32, ratio_milli: u32) -> Throttle {
        Throttle {
            milli_tokens: AtomicU32::new(max_tokens * 1000),
            max_milli: max_tokens * 1000,
            ratio_milli,
        }
    }

    /// Takes one token (clamped at zero): an attempt failed in a way that
    /// counts.
    ///
    /// ```
    /// let t = stormguard::Throttle::new(2, 1.0)?;
    /// t.record_failure();
    /// assert_eq!(t.tokens_milli(), 1_000);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline]
    pub fn record_failure(&self) {
        let _ = transition_u32(&self.milli_tokens, |t| {
            Ok::<_, ()>(((), t.saturating_sub(1000)))
        });
    }

    /// Adds `token_ratio` (clamped at `max_tokens`): a call succeeded.
    ///
    /// ```
    /// let t = stormguard::Throttle::new(2, 0.5)?;
    /// t.record_failure();
    /// t.record_success();
    /// assert_eq!(t.tokens_milli(), 1_500);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline]
    pub fn record_success(&self) {
        let (ratio, max) = (self.ratio_milli, self.max_milli);
        let _ = transition_u32(&self.milli_tokens, |t| {
            Ok::<_, ()>(((), t.saturating_add(ratio).min(max)))
        });
    }

    /// Whether a retry may go ahead now: tokens > `max_tokens / 2`.
    ///
    /// ```
    /// assert!(stormguard::Throttle::new(10, 0.1)?.allows_retry());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[inline]
    pub fn allows_retry(&self) -> bool {
        // max_milli is a multiple of 1000, so halving it is exact.
        self.milli_tokens.load(Ordering::Acquire) > self.max_milli / 2
    }

    /// The tokens in the bucket, in thousandths.
    ///
    /// ```
    /// assert_eq!(stormguard::Throttle::new(3, 0.1)?.tokens_milli(), 3_000);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn tokens_milli(&self) -> u32 {
        self.milli_tokens.load(Ordering::Acquire)
    }

    /// The bucket's capacity, in thousandths.
    ///
    /// ```
    /// assert_eq!(stormguard::Throttle::new(3, 0.1)?.max_tokens_milli(), 3_000);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_tokens_milli(&self) -> u32 {
        self.max_milli
    }

    /// `token_ratio`, in thousandths (three decimals kept).
    ///
    /// ```
    /// assert_eq!(stormguard::Throttle::new(3, 0.25)?.token_ratio_milli(), 250);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn token_ratio_milli(&self) -> u32 {
        self.ratio_milli
    }
}

impl Budget for Throttle {
    /// Takes a token: A6 counts every retryable failure, retried or not.
    #[inline]
    fn on_failure(&self, _: &Failure, _: Instant) {
        self.record_failure();
    }

    /// Allows the retry while tokens > max/2; withdraws nothing (the token
    /// was taken by the failure).
    #[inline]
    fn try_retry(&self, _: &Failure, _: Instant) -> Option<Withdrawal> {
        self.allows_retry().then_some(Withdrawal::FREE)
    }

    #[inline]
    fn on_success(&self, _: Option<Withdrawal>, _: Instant) {
        self.record_success();
    }

    #[inline]
    fn needs_time(&self) -> bool {
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a6_test_vector() {
        // A6's numbers, max 10, ratio 0.1: failures 1–4 still allow a retry; after
        // the 5th (5.000) throttled; 10 successes → 6.0, allowed again; a
        // failure then → 5.0, throttled again.
        let t = Throttle::new(10, 0.1).unwrap();
        for failures in 1..=4 {
            t.record_failure();
            assert!(t.allows_retry(), "after {failures} failures");
        }
        t.record_failure();
        assert_eq!(t.tokens_milli(), 5_000);
        assert!(!t.allows_retry());
        for _ in 0..10 {
            t.record_success();
        }
        assert_eq!(t.tokens_milli(), 6_000);
        assert!(t.allows_retry());
        t.record_failure();
        assert_eq!(t.tokens_milli(), 5_000);
        assert!(!t.allows_retry());
    }

    #[test]
    fn clamps_at_zero_and_max() {
        let t = Throttle::new(3, 0.7).unwrap();
        t.record_success();
        assert_eq!(t.tokens_milli(), 3_000);
        for _ in 0..10 {
            t.record_failure();
        }
        assert_eq!(t.tokens_milli(), 0);
        t.record_success();
        assert_eq!(t.tokens_milli(), 700);
    }

    #[test]
    fn ratio_keeps_three_decimals() {
        for (ratio, milli) in [
            (0.5466, 546),
            (0.3, 300),
            (0.1, 100),
            (0.001, 1),
            (0.29, 290),
            (4.35, 4350),
        ] {
            assert_eq!(
                Throttle::new(1000, ratio).unwrap().token_ratio_milli(),
                milli,
                "{ratio}"
            );
        }
        assert_eq!(Throttle::new(2, 1e9).unwrap().token_ratio_milli(), 2_000);
    }

    #[test]
    fn validation() {
        assert_eq!(Throttle::new(1001, 0.1).unwrap_err().field(), "max_tokens");
        assert_eq!(Throttle::new(10, 0.0).unwrap_err().field(), "token_ratio");
        assert_eq!(Throttle::new(10, -1.0).unwrap_err().field(), "token_ratio");
        assert_eq!(
            Throttle::new(10, 0.0009).unwrap_err().field(),
            "token_ratio"
        );
        assert_eq!(
            Throttle::new(10, f64::INFINITY).unwrap_err().field(),
            "token_ratio"
        );
        assert!(Throttle::new(1000, 0.001).is_ok());
    }

    #[test]
    fn usable_in_a_static() {
        static T: Throttle = match Throttle::new(10, 0.1) {
            Ok(t) => t,
            Err(_) => panic!(),
        };
        T.record_failure();
        assert_eq!(T.tokens_milli(), 9_000);
    }
}
