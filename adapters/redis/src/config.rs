//! The store's settings, checked once when they are built.

use std::time::Duration;

use stormguard::{Backoff, ConfigError, ConfigErrorKind, RetryPolicy};

use crate::keys::{check_prefix, KeyError, DEFAULT_PREFIX};

/// The longest lease or TTL accepted: 100 years (Redis takes expiries in
/// milliseconds as a signed 64-bit number).
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A [`RedisStore`](crate::RedisStore)'s settings: where its entries live,
/// how long they last, and how hard it tries to reach Redis.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `prefix` | `"stormguard:idem:"` | the start of every entry's Redis key |
/// | `lease` | 60 s | how long a running request holds its key; Redis deletes an in-flight entry when its lease ends |
/// | `ttl` | 24 h (Stripe) | how long a completed response is replayed |
/// | `attempt_timeout` | 500 ms | one script call's budget: a reply later than this counts as lost |
/// | `retry` | 3 attempts, 10 ms × 2ⁿ full jitter, 2 s deadline | the retries of one store operation before it answers `Unavailable` |
///
/// ```
/// use std::time::Duration;
/// use stormguard_redis::StoreConfig;
///
/// let config = StoreConfig::builder()
///     .prefix("payments:idem:")
///     .lease(Duration::from_secs(30))
///     .ttl(Duration::from_secs(24 * 3600))
///     .build()?;
/// assert_eq!(config.lease(), Duration::from_secs(30));
///
/// let err = StoreConfig::builder().lease(Duration::ZERO).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid lease: must not be zero");
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StoreConfig {
    prefix: String,
    lease: Duration,
    ttl: Duration,
    attempt_timeout: Duration,
    retry: RetryPolicy,
}

/// Builds a [`StoreConfig`]; [`build`](Self::build) checks every value.
///
/// ```
/// let config = stormguard_redis::StoreConfig::builder().build()?;
/// assert_eq!(config.prefix(), "stormguard:idem:");
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct StoreConfigBuilder {
    config: StoreConfig,
}

fn default_retry() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .backoff(
            Backoff::exponential(Duration::from_millis(10), 2.0)
                .max_delay(Duration::from_millis(200)),
        )
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}

impl StoreConfig {
    /// A builder starting from the defaults (see the table above).
    ///
    /// ```
    /// let config = stormguard_redis::StoreConfig::builder().build()?;
    /// assert_eq!(config.ttl().as_secs(), 86_400);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn builder() -> StoreConfigBuilder {
        StoreConfigBuilder {
            config: StoreConfig {
                prefix: DEFAULT_PREFIX.to_owned(),
                lease: Duration::from_secs(60),
                ttl: Duration::from_secs(24 * 60 * 60),
                attempt_timeout: Duration::from_millis(500),
                retry: default_retry(),
            },
        }
    }

    /// The start of every entry's Redis key.
    ///
    /// ```
    /// let config = stormguard_redis::StoreConfig::default();
    /// assert_eq!(config.prefix(), "stormguard:idem:");
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long a running request holds its key.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::StoreConfig::default().lease().as_secs(), 60);
    /// ```
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How long a completed response is replayed.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::StoreConfig::default().ttl().as_secs(), 86_400);
    /// ```
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// One script call's time budget.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::StoreConfig::default().attempt_timeout().as_millis(), 500);
    /// ```
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// The retries of one store operation.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::StoreConfig::default().retry().max_attempts(), 3);
    /// ```
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Milliseconds for `PX`, at least 1.
    pub(crate) fn millis(duration: Duration) -> u64 {
        u64::try_from(duration.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// How long the fence counter outlives its last use: a full TTL plus
    /// a lease, so a key's fencing tokens keep growing while any entry of it
    /// may still exist.
    pub(crate) fn fence_ttl(&self) -> Duration {
        self.ttl.saturating_add(self.lease)
    }
}

impl Default for StoreConfig {
    /// The defaults of the table on [`StoreConfig`].
    fn default() -> Self {
        StoreConfig::builder().config
    }
}

fn check_duration(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::new(field, ConfigErrorKind::Zero));
    }
    if value < Duration::from_millis(1) {
        return Err(ConfigError::new(
            field,
            ConfigErrorKind::OutOfRange("at least 1 ms"),
        ));
    }
    if value > MAX_DURATION {
        return Err(ConfigError::new(
            field,
            ConfigErrorKind::OutOfRange("at most 100 years"),
        ));
    }
    Ok(())
}

impl StoreConfigBuilder {
    /// The start of every entry's Redis key (no `{` or `}`, at most 128
    /// bytes): give each service its own.
    ///
    /// ```
    /// let config = stormguard_redis::StoreConfig::builder().prefix("svc:").build()?;
    /// assert_eq!(config.prefix(), "svc:");
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// How long a running request holds its key (at least 1 ms). Choose it
    /// longer than the slowest request: when a lease ends, a retry may run
    /// the request again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = stormguard_redis::StoreConfig::builder().lease(Duration::from_secs(5)).build()?;
    /// assert_eq!(config.lease(), Duration::from_secs(5));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How long a completed response is replayed (at least 1 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = stormguard_redis::StoreConfig::builder().ttl(Duration::from_secs(3600)).build()?;
    /// assert_eq!(config.ttl(), Duration::from_secs(3600));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// One script call's time budget (at least 1 ms): a reply later than
    /// this counts as lost, and the call is sent again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = stormguard_redis::StoreConfig::builder()
    ///     .attempt_timeout(Duration::from_millis(200))
    ///     .build()?;
    /// assert_eq!(config.attempt_timeout(), Duration::from_millis(200));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config.attempt_timeout = timeout;
        self
    }

    /// The retries of one store operation (attempts, backoff, deadline)
    /// before it answers [`Error::Unavailable`](crate::Error::Unavailable).
    ///
    /// ```
    /// use stormguard::RetryPolicy;
    /// let once = RetryPolicy::builder().max_attempts(1).build()?;
    /// let config = stormguard_redis::StoreConfig::builder().retry(once).build()?;
    /// assert_eq!(config.retry().max_attempts(), 1);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// The settings, each checked.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field: `prefix` (a brace, or longer than
    /// 128 bytes), `lease`, `ttl` or `attempt_timeout` (zero, below 1 ms,
    /// or above 100 years).
    ///
    /// ```
    /// use stormguard_redis::StoreConfig;
    /// let err = StoreConfig::builder().prefix("a{b}").build().unwrap_err();
    /// assert_eq!(err.field(), "prefix");
    /// ```
    pub fn build(self) -> Result<StoreConfig, ConfigError> {
        let config = self.config;
        check_prefix(&config.prefix).map_err(|err| {
            ConfigError::new(
                "prefix",
                ConfigErrorKind::OutOfRange(match err {
                    KeyError::BraceInPrefix => "without '{' or '}'",
                    _ => "at most 128 bytes",
                }),
            )
        })?;
        check_duration("lease", config.lease)?;
        check_duration("ttl", config.ttl)?;
        check_duration("attempt_timeout", config.attempt_timeout)?;
        Ok(config)
    }
}
