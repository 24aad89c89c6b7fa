//! The validated, shareable configuration of retries.

use core::time::Duration;

use crate::backoff::{Backoff, BackoffBuilder, Jitter};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::failure::FailureClass;
use crate::idempotency::Idempotency;
use crate::metrics::Metrics;

/// In which order [`Retry::on_failure`](crate::Retry::on_failure) applies its
/// gates.
///
/// The orders reach the same verdict (retry or stop) and the same budget
/// arithmetic for every failure, except in two ways that gRPC proposal A6
/// specifies:
///
/// - under [`Grpc`](Self::Grpc), a server that said stop ends the call *and
///   counts as a budget failure* even when the failure's class is not
///   retryable, as grpc-go's `shouldRetry` does (A6: "negative or
///   unparseable pushback … counts as a throttling failure");
/// - under [`Grpc`](Self::Grpc), A6's *transparent retries*: a retryable
///   failure that never left the client ([`Replay::NotSent`]) is retried
///   after the backoff until the deadline, and one the server refused before
///   its application saw it ([`Replay::Rejected`]) is retried once, at once —
///   neither counting against `maxAttempts` nor taking from the budget
///   (A6: "transparent retries do not count toward the limit of configured
///   RPC attempts", nor "as failures when deciding whether to throttle").
///   A second refusal goes through the policy like any failure.
///
/// [`Replay::NotSent`]: crate::Replay::NotSent
/// [`Replay::Rejected`]: crate::Replay::Rejected
///
/// ```
/// use stormguard::{DecisionOrder, RetryPolicy};
/// assert_eq!(RetryPolicy::default().decision_order(), DecisionOrder::Standard);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecisionOrder {
    /// Not retryable → unsafe to replay → server said stop → attempts →
    /// deadline → budget.
    #[default]
    Standard,
    /// Server said stop (counted) → not retryable → the rest as `Standard`.
    Grpc,
}

/// How [`Retry`](crate::Retry) decides: attempt limits, backoff, deadline,
/// the cap on server-given delays, and the method's idempotency.
///
/// A policy is validated once, by [`RetryPolicyBuilder::build`], and then
/// shared (`&RetryPolicy`) by every call; it is `Copy`, holds no state, and
/// can live in a `static` because its builder is `const`.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Backoff, FailureClass, Idempotency, RetryPolicy};
///
/// static POLICY: RetryPolicy = match RetryPolicy::builder()
///     .max_attempts(4)
///     .max_attempts_for(FailureClass::Overloaded, 2)
///     .backoff(Backoff::exponential(Duration::from_millis(50), 2.0))
///     .deadline(Duration::from_secs(5))
///     .idempotency(Idempotency::NonIdempotent)
///     .build()
/// {
///     Ok(policy) => policy,
///     Err(_) => panic!("invalid retry policy"),
/// };
/// assert_eq!(POLICY.max_attempts(), 4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    max_attempts: u32,
    /// Per-class attempt limits for the retryable classes; 0 = none of its own.
    class_limits: [u8; 3],
    backoff: Backoff,
    deadline: Option<Duration>,
    max_server_delay: Duration,
    idempotency: Idempotency,
    order: DecisionOrder,
    metrics: Option<MetricsRef>,
}

/// A metrics sink compared and hashed by address, so a policy stays `Eq`.
#[derive(Clone, Copy, Debug)]
struct MetricsRef(&'static Metrics);

impl PartialEq for MetricsRef {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(self.0, other.0)
    }
}

impl Eq for MetricsRef {}

impl core::hash::Hash for MetricsRef {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        core::ptr::hash(self.0, state)
    }
}

/// The unvalidated settings of a [`RetryPolicy`].
///
/// ```
/// let policy = stormguard::RetryPolicy::builder().max_attempts(5).build()?;
/// assert_eq!(policy.max_attempts(), 5);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use = "a builder does nothing until `build()`"]
pub struct RetryPolicyBuilder {
    max_attempts: u32,
    class_limits: [Option<u32>; 3],
    limit_for_permanent: bool,
    backoff: BackoffBuilder,
    deadline: Option<Duration>,
    max_server_delay: Duration,
    idempotency: Idempotency,
    order: DecisionOrder,
    metrics: Option<MetricsRef>,
}

const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_MAX_SERVER_DELAY: Duration = Duration::from_secs(60);
const DEFAULT_BACKOFF: BackoffBuilder = Backoff::exponential(Duration::from_millis(100), 2.0);
/// gRPC proposal A6: "values greater than 5 are treated as 5".
pub(crate) const GRPC_MAX_ATTEMPTS_CAP: u32 = 5;

impl RetryPolicy {
    /// A builder with the defaults: 3 attempts, exponential backoff from
    /// 100 ms (factor 2, capped at 10 s, full jitter), no deadline, server
    /// delays honoured up to 60 s, [`Idempotency::Idempotent`].
    ///
    /// ```
    /// let p = stormguard::RetryPolicy::builder().build()?;
    /// assert_eq!(p, stormguard::RetryPolicy::default());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            class_limits: [None; 3],
            limit_for_permanent: false,
            backoff: DEFAULT_BACKOFF,
            deadline: None,
            max_server_delay: DEFAULT_MAX_SERVER_DELAY,
            idempotency: Idempotency::Idempotent,
            order: DecisionOrder::Standard,
            metrics: None,
        }
    }

    /// The gRPC retry policy of proposal A6, with its service-config fields.
    ///
    /// `max_attempts` includes the original attempt and must be greater than
    /// 1; values above 5 are treated as 5 (not an error). Backoff is
    /// `min(initial·multiplierᵏ, max) · U(0.8, 1.2)` with `k` the retries
    /// since the last server pushback ([`Jitter::GRPC`]) — except that
    /// stormguard clamps the jittered delay to `max_backoff`, where grpc-go
    /// lets it reach 1.2 × `max_backoff`. Gates apply in
    /// [`DecisionOrder::Grpc`]. Classify status codes with
    /// [`classify::grpc::CodeSet`](crate::classify::grpc::CodeSet), pushback
    /// with [`classify::grpc::pushback_hint`](crate::classify::grpc::pushback_hint),
    /// and pair the policy with a `Throttle` for A6's `retryThrottling`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the A6 field: `maxAttempts` ≤ 1,
    /// `initialBackoff` or `maxBackoff` zero, `backoffMultiplier` not finite,
    /// zero or negative (A6 allows multipliers in (0, 1): the backoff then
    /// shrinks).
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{DecisionOrder, Jitter, RetryPolicy};
    ///
    /// let p = RetryPolicy::grpc(9, Duration::from_millis(100), Duration::from_secs(1), 2.0)?;
    /// assert_eq!(p.max_attempts(), 5);
    /// assert_eq!(p.backoff().jitter(), Jitter::GRPC);
    /// assert_eq!(p.decision_order(), DecisionOrder::Grpc);
    /// assert_eq!(
    ///     RetryPolicy::grpc(1, Duration::from_millis(100), Duration::from_secs(1), 2.0)
    ///         .unwrap_err()
    ///         .field(),
    ///     "maxAttempts",
    /// );
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn grpc(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        backoff_multiplier: f64,
    ) -> Result<RetryPolicy, ConfigError> {
        match RetryPolicy::grpc_builder(
            max_attempts,
            initial_backoff,
            max_backoff,
            backoff_multiplier,
            GRPC_MAX_ATTEMPTS_CAP,
        ) {
            Ok(builder) => builder.build(),
            Err(error) => Err(error),
        }
    }

    /// [`RetryPolicy::grpc`]'s checks and builder, with the client's cap on
    /// `maxAttempts` (A6: 5 unless the client changes it) as an argument.
    pub(crate) const fn grpc_builder(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        backoff_multiplier: f64,
        attempts_cap: u32,
    ) -> Result<RetryPolicyBuilder, ConfigError> {
        if max_attempts <= 1 {
            return Err(ConfigError::new(
                "maxAttempts",
                ConfigErrorKind::OutOfRange("greater than 1"),
            ));
        }
        if initial_backoff.is_zero() {
            return Err(ConfigError::new("initialBackoff", ConfigErrorKind::Zero));
        }
        if max_backoff.is_zero() {
            return Err(ConfigError::new("maxBackoff", ConfigErrorKind::Zero));
        }
        if !backoff_multiplier.is_finite() {
            return Err(ConfigError::new(
                "backoffMultiplier",
                ConfigErrorKind::NotFinite,
            ));
        }
        if backoff_multiplier <= 0.0 {
            return Err(ConfigError::new(
                "backoffMultiplier",
                ConfigErrorKind::OutOfRange("greater than 0"),
            ));
        }
        // min(initial·mᵏ, max) is `max` for every k when max < initial.
        let base = if max_backoff.as_nanos() < initial_backoff.as_nanos() {
            max_backoff
        } else {
            initial_backoff
        };
        let attempts = if max_attempts > attempts_cap {
            attempts_cap
        } else {
            max_attempts
        };
        Ok(RetryPolicy::builder()
            .max_attempts(attempts)
            .backoff(
                Backoff::exponential(base, backoff_multiplier)
                    .max_delay(max_backoff)
                    .jitter(Jitter::GRPC),
            )
            .decision_order(DecisionOrder::Grpc))
    }

    /// The most attempts a call makes, the first one included.
    ///
    /// ```
    /// assert_eq!(stormguard::RetryPolicy::default().max_attempts(), 3);
    /// ```
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The same policy making at most `cap` attempts (the first included; a
    /// cap of 0 counts as 1): a test that wants no retries, or a switch that
    /// turns retrying off for a whole program, lowers the limit without
    /// rebuilding the policy. A cap above the policy's own limit changes
    /// nothing; per-class limits stay as they are.
    ///
    /// ```
    /// use stormguard::RetryPolicy;
    /// let policy = RetryPolicy::builder().max_attempts(5).build()?;
    /// assert_eq!(policy.capped_attempts(2).max_attempts(), 2);
    /// assert_eq!(policy.capped_attempts(9).max_attempts(), 5);
    /// assert_eq!(policy.capped_attempts(0).max_attempts(), 1);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    #[must_use]
    pub const fn capped_attempts(mut self, cap: u32) -> RetryPolicy {
        let cap = if cap == 0 { 1 } else { cap };
        if cap < self.max_attempts {
            self.max_attempts = cap;
        }
        self
    }

    /// The most attempts that may fail with `class` (`None`: only the overall
    /// limit applies). A [`FailureClass::Permanent`] failure is never retried.
    ///
    /// ```
    /// use stormguard::{FailureClass, RetryPolicy};
    /// let p = RetryPolicy::builder().max_attempts_for(FailureClass::Timeout, 5).build()?;
    /// assert_eq!(p.max_attempts_for(FailureClass::Timeout), Some(5));
    /// assert_eq!(p.max_attempts_for(FailureClass::Overloaded), None);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_attempts_for(&self, class: FailureClass) -> Option<u32> {
        match class {
            FailureClass::Permanent => Some(1),
            _ => match self.class_limits[class.index()] {
                0 => None,
                n => Some(n as u32),
            },
        }
    }

    pub(crate) const fn class_limit(&self, index: usize) -> u8 {
        self.class_limits[index]
    }

    /// The backoff between attempts.
    ///
    /// ```
    /// assert_eq!(*stormguard::RetryPolicy::default().backoff(), stormguard::Backoff::default());
    /// ```
    pub const fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The overall deadline of a call, measured from its start; it covers
    /// every attempt and every sleep.
    ///
    /// ```
    /// assert_eq!(stormguard::RetryPolicy::default().deadline(), None);
    /// ```
    pub const fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The longest server-given delay honoured; longer hints are capped.
    ///
    /// ```
    /// use core::time::Duration;
    /// assert_eq!(stormguard::RetryPolicy::default().max_server_delay(), Duration::from_secs(60));
    /// ```
    pub const fn max_server_delay(&self) -> Duration {
        self.max_server_delay
    }

    /// The method's idempotency, unless a call overrides it.
    ///
    /// ```
    /// use stormguard::{Idempotency, RetryPolicy};
    /// assert_eq!(RetryPolicy::default().idempotency(), Idempotency::Idempotent);
    /// ```
    pub const fn idempotency(&self) -> Idempotency {
        self.idempotency
    }

    /// The order of the gates.
    ///
    /// ```
    /// use stormguard::{DecisionOrder, RetryPolicy};
    /// assert_eq!(RetryPolicy::default().decision_order(), DecisionOrder::Standard);
    /// ```
    pub const fn decision_order(&self) -> DecisionOrder {
        self.order
    }

    /// The counters every call made with this policy updates, if any.
    ///
    /// ```
    /// assert!(stormguard::RetryPolicy::default().metrics().is_none());
    /// ```
    pub const fn metrics(&self) -> Option<&'static Metrics> {
        match self.metrics {
            Some(MetricsRef(metrics)) => Some(metrics),
            None => None,
        }
    }
}

impl Default for RetryPolicy {
    /// The [`RetryPolicy::builder`] defaults.
    fn default() -> Self {
        // Built when the crate compiles: invalid defaults fail the build.
        const DEFAULT: RetryPolicy = match RetryPolicy::builder().build() {
            Ok(policy) => policy,
            Err(_) => panic!("the RetryPolicy::builder defaults are invalid"),
        };
        DEFAULT
    }
}

impl RetryPolicyBuilder {
    /// The most attempts a call makes, the first one included (≥ 1; 1 means
    /// never retry; `u32::MAX` means no limit in practice, for a call a
    /// deadline or a budget bounds instead).
    ///
    /// ```
    /// let err = stormguard::RetryPolicy::builder().max_attempts(0).build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid max_attempts: must not be zero");
    /// ```
    pub const fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The most attempts that may fail with `class`, in 1..=255 (for example
    /// 5 for timeouts but 3 for overload). The overall limit still applies.
    /// Setting it for [`FailureClass::Permanent`] is an error: a permanent
    /// failure is never retried.
    ///
    /// ```
    /// use stormguard::{FailureClass, RetryPolicy};
    /// let p = RetryPolicy::builder()
    ///     .max_attempts(10)
    ///     .max_attempts_for(FailureClass::Overloaded, 3)
    ///     .build()?;
    /// assert_eq!(p.max_attempts_for(FailureClass::Overloaded), Some(3));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_attempts_for(mut self, class: FailureClass, max_attempts: u32) -> Self {
        match class {
            FailureClass::Permanent => self.limit_for_permanent = true,
            _ => self.class_limits[class.index()] = Some(max_attempts),
        }
        self
    }

    /// The backoff between attempts.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Backoff, RetryPolicy};
    /// let p = RetryPolicy::builder()
    ///     .backoff(Backoff::constant(Duration::from_millis(10)))
    ///     .build()?;
    /// assert_eq!(p.backoff().base(), Duration::from_millis(10));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn backoff(mut self, backoff: BackoffBuilder) -> Self {
        self.backoff = backoff;
        self
    }

    /// The overall deadline of a call, from its start, covering every
    /// attempt and every sleep (non-zero).
    ///
    /// ```
    /// use core::time::Duration;
    /// let p = stormguard::RetryPolicy::builder().deadline(Duration::from_secs(2)).build()?;
    /// assert_eq!(p.deadline(), Some(Duration::from_secs(2)));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The longest server-given delay (`Retry-After`, gRPC pushback)
    /// honoured; a longer hint — a hostile `Retry-After` of a year — is
    /// capped to it. Zero means "retry at once whatever the server says".
    ///
    /// ```
    /// use core::time::Duration;
    /// let p = stormguard::RetryPolicy::builder()
    ///     .max_server_delay(Duration::from_secs(5))
    ///     .build()?;
    /// assert_eq!(p.max_server_delay(), Duration::from_secs(5));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn max_server_delay(mut self, max: Duration) -> Self {
        self.max_server_delay = max;
        self
    }

    /// The method's idempotency.
    ///
    /// ```
    /// use stormguard::{Idempotency, RetryPolicy};
    /// let p = RetryPolicy::builder().idempotency(Idempotency::Keyed).build()?;
    /// assert_eq!(p.idempotency(), Idempotency::Keyed);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// The order of the gates (see [`DecisionOrder`]).
    ///
    /// ```
    /// use stormguard::{DecisionOrder, RetryPolicy};
    /// let p = RetryPolicy::builder().decision_order(DecisionOrder::Grpc).build()?;
    /// assert_eq!(p.decision_order(), DecisionOrder::Grpc);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn decision_order(mut self, order: DecisionOrder) -> Self {
        self.order = order;
        self
    }

    /// Counts every call made with the policy in `metrics`.
    ///
    /// ```
    /// static METRICS: stormguard::Metrics = stormguard::Metrics::new();
    /// let p = stormguard::RetryPolicy::builder().metrics(&METRICS).build()?;
    /// assert!(p.metrics().is_some());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn metrics(mut self, metrics: &'static Metrics) -> Self {
        self.metrics = Some(MetricsRef(metrics));
        self
    }

    /// Validates every setting.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid field: `max_attempts` zero;
    /// `max_attempts_for` outside 1..=255 or set for a permanent failure;
    /// `deadline` zero; any `backoff.*` error of [`BackoffBuilder::build`].
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Backoff, RetryPolicy};
    /// let err = RetryPolicy::builder()
    ///     .backoff(Backoff::exponential(Duration::from_millis(10), f64::INFINITY))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "backoff.factor");
    /// ```
    pub const fn build(self) -> Result<RetryPolicy, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new("max_attempts", ConfigErrorKind::Zero));
        }
        const BAD_LIMIT: ConfigError = ConfigError::new(
            "max_attempts_for",
            ConfigErrorKind::OutOfRange("between 1 and 255, for a retryable class"),
        );
        if self.limit_for_permanent {
            return Err(BAD_LIMIT);
        }
        let mut class_limits = [0u8; 3];
        let mut i = 0;
        while i < 3 {
            if let Some(limit) = self.class_limits[i] {
                if limit == 0 || limit > u8::MAX as u32 {
                    return Err(BAD_LIMIT);
                }
                class_limits[i] = limit as u8;
            }
            i += 1;
        }
        if let Some(deadline) = self.deadline {
            if deadline.is_zero() {
                return Err(ConfigError::new("deadline", ConfigErrorKind::Zero));
            }
        }
        let backoff = match self.backoff.build() {
            Ok(backoff) => backoff,
            Err(e) => return Err(e),
        };
        Ok(RetryPolicy {
            max_attempts: self.max_attempts,
            class_limits,
            backoff,
            deadline: self.deadline,
            max_server_delay: self.max_server_delay,
            idempotency: self.idempotency,
            order: self.order,
            metrics: self.metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_compare_their_metrics_sink_by_address() {
        extern crate std;
        use core::hash::{Hash, Hasher};
        use std::collections::hash_map::DefaultHasher;
        static ONE: Metrics = Metrics::new();
        static OTHER: Metrics = Metrics::new();
        let with = |m: &'static Metrics| RetryPolicy::builder().metrics(m).build().unwrap();
        let hash = |p: &RetryPolicy| {
            let mut h = DefaultHasher::new();
            p.hash(&mut h);
            h.finish()
        };
        assert_eq!(with(&ONE), with(&ONE));
        assert_ne!(with(&ONE), with(&OTHER));
        assert_ne!(with(&ONE), RetryPolicy::default());
        assert_eq!(hash(&with(&ONE)), hash(&with(&ONE)));
        assert_ne!(hash(&with(&ONE)), hash(&with(&OTHER)));
    }

    #[test]
    fn per_class_limits() {
        let p = RetryPolicy::builder()
            .max_attempts(4)
            .max_attempts_for(FailureClass::Timeout, 2)
            .build()
            .unwrap();
        assert_eq!(p.max_attempts_for(FailureClass::Timeout), Some(2));
        assert_eq!(p.max_attempts_for(FailureClass::Transient), None);
        assert_eq!(p.max_attempts_for(FailureClass::Permanent), Some(1));
    }

    #[test]
    fn per_class_limits_go_up_to_255() {
        let limit = |n| {
            RetryPolicy::builder()
                .max_attempts_for(FailureClass::Overloaded, n)
                .build()
        };
        let p = limit(255).unwrap();
        assert_eq!(p.max_attempts_for(FailureClass::Overloaded), Some(255));
        for bad in [0, 256] {
            assert_eq!(limit(bad).unwrap_err().field(), "max_attempts_for", "{bad}");
        }
    }

    #[test]
    fn capped_attempts_only_lowers_the_limit() {
        let p = RetryPolicy::builder().max_attempts(5).build().unwrap();
        assert_eq!(p.capped_attempts(2).max_attempts(), 2);
        assert_eq!(p.capped_attempts(4).max_attempts(), 4);
        assert_eq!(p.capped_attempts(5).max_attempts(), 5);
        assert_eq!(p.capped_attempts(9).max_attempts(), 5);
        assert_eq!(p.capped_attempts(0).max_attempts(), 1);
        assert_eq!(p.capped_attempts(1).max_attempts(), 1);
    }

    #[test]
    fn defaults_are_valid() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.backoff().base(), Duration::from_millis(100));
        assert_eq!(p.backoff().max_delay(), Duration::from_secs(10));
        assert_eq!(p.backoff().jitter(), Jitter::Full);
    }

    #[test]
    fn every_invalid_value_names_its_field() {
        let b = RetryPolicy::builder;
        let field = |r: Result<RetryPolicy, ConfigError>| r.unwrap_err().field();
        assert_eq!(field(b().max_attempts(0).build()), "max_attempts");
        assert_eq!(field(b().deadline(Duration::ZERO).build()), "deadline");
        assert_eq!(
            field(b().max_attempts_for(FailureClass::Timeout, 256).build()),
            "max_attempts_for"
        );
        assert_eq!(
            field(b().max_attempts_for(FailureClass::Timeout, 0).build()),
            "max_attempts_for"
        );
        assert_eq!(
            field(
                b().max_attempts_for(FailureClass::Permanent, 2)
                    .max_attempts_for(FailureClass::Transient, 2)
                    .build()
            ),
            "max_attempts_for"
        );
        assert_eq!(
            field(
                b().backoff(Backoff::exponential(Duration::from_millis(1), 0.0))
                    .build()
            ),
            "backoff.factor"
        );
        let d = Duration::from_millis(100);
        assert_eq!(field(RetryPolicy::grpc(0, d, d, 2.0)), "maxAttempts");
        assert_eq!(field(RetryPolicy::grpc(1, d, d, 2.0)), "maxAttempts");
        assert_eq!(
            field(RetryPolicy::grpc(3, Duration::ZERO, d, 2.0)),
            "initialBackoff"
        );
        assert_eq!(
            field(RetryPolicy::grpc(3, d, Duration::ZERO, 2.0)),
            "maxBackoff"
        );
        assert_eq!(
            field(RetryPolicy::grpc(3, d, d, f64::NAN)),
            "backoffMultiplier"
        );
        assert_eq!(field(RetryPolicy::grpc(3, d, d, 0.0)), "backoffMultiplier");
        assert_eq!(field(RetryPolicy::grpc(3, d, d, -1.0)), "backoffMultiplier");
        assert!(
            RetryPolicy::grpc(3, d, d, 0.5).is_ok(),
            "a shrinking backoff"
        );
    }

    #[test]
    fn grpc_caps_attempts_at_five_and_tolerates_max_below_initial() {
        let p = RetryPolicy::grpc(6, Duration::from_secs(2), Duration::from_secs(1), 2.0).unwrap();
        assert_eq!(p.max_attempts(), 5);
        assert_eq!(p.backoff().nominal(0), Duration::from_secs(1));
        assert_eq!(p.backoff().nominal(7), Duration::from_secs(1));
        assert_eq!(
            RetryPolicy::grpc(2, Duration::from_secs(1), Duration::from_secs(9), 1.5)
                .unwrap()
                .max_attempts(),
            2
        );
    }
}
