//! The client configurations the simulator compares: each is a
//! `RetryPolicy`, plus a budget, a breaker or an adaptive throttle per
//! client process.

use core::fmt;
use core::time::Duration;

use stormguard::{
    AdaptiveThrottle, Backoff, BackoffBuilder, Budget, CircuitBreaker, ConfigError, Jitter,
    NoBudget, RetryBudget, RetryPolicy, Throttle,
};

/// One line of the table: how the clients retry.
///
/// ```
/// use stormguard_sim::Scenario;
/// assert_eq!(Scenario::ALL.len(), 8);
/// assert_eq!(Scenario::Naive.to_string(), "naive: 3 immediate retries");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// One attempt per call.
    NoRetries,
    /// The naive loop: up to 3 retries, each at once.
    Naive,
    /// Up to 3 retries after 100, 200 and 400 ms exactly.
    ExponentialNoJitter,
    /// Up to 3 retries after `U[0, 100·2ⁿ ms]` (AWS "full jitter").
    FullJitter,
    /// Full jitter, and a gRPC A6 `Throttle` (10 tokens, ratio 0.1) per
    /// client.
    Throttle,
    /// Full jitter, and a `RetryBudget` (retries at most 10 % of the
    /// requests of the last second) per client.
    RetryBudget,
    /// Full jitter, the `Throttle`, and a `CircuitBreaker` per client.
    ThrottleAndBreaker,
    /// Full jitter, the `Throttle`, and an `AdaptiveThrottle` (the SRE
    /// book's client-side throttling; K = 1.5 over 1.6 s, at most 70 %
    /// rejected) per client instead of a breaker.
    ThrottleAndAdaptive,
}

/// The retries a call may make in every retrying scenario.
pub const RETRIES: u32 = 3;
/// The first backoff of the exponential scenarios.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The backoff cap of the exponential scenarios.
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// The `Throttle` of the budgeted scenarios: gRPC A6's example numbers.
pub const THROTTLE_TOKENS: u32 = 10;
/// The `Throttle`'s token ratio.
pub const THROTTLE_RATIO: f64 = 0.1;
/// The `RetryBudget`'s share of retries: the SRE book's 10 %.
pub const BUDGET_RATIO: f64 = 0.1;
/// The `RetryBudget`'s floor per client: none, so retries are the plain
/// 10 % of requests of the SRE book's rule (Linkerd's floor of 10 per
/// second per client would add 100 retries/s across the 10 clients of the
/// standard world, a tenth of the backend's capacity).
pub const BUDGET_MIN_PER_SEC: u32 = 0;
/// The `RetryBudget`'s memory. With Linkerd's 10 s the budget banks 10 % of
/// the ten healthy seconds before the trigger and spends it in the first
/// second of the brownout: the peak load reaches about 1.3× the no-retry
/// peak. With 1 s it banks a tenth of that.
pub const BUDGET_TTL: Duration = Duration::from_secs(1);
/// Consecutive failures that open a client's breaker.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open breaker refuses before it lets one probe through.
pub const BREAKER_RECOVERY: Duration = Duration::from_secs(1);
/// The adaptive throttle's K. The SRE book's 2 lets a client send twice
/// what the backend accepts: against a backend that answers "overloaded"
/// at once that is the slack that notices recovery, but this backend
/// *queues* — twice its rate fills the queue, every caller times out, the
/// accepts vanish and the throttle slams shut, then reopens: waves. 1.5
/// keeps the queue short (see the README).
pub const ADAPTIVE_K: f64 = 1.5;
/// The adaptive throttle's memory: its shortest window (16 steps of 100 ms),
/// so it follows a backend whose capacity changes within seconds. The SRE
/// book's two minutes suit a slowly changing service; in a 30-second world
/// with a 10-second brownout the throttle would remember the brownout long
/// after it ended.
pub const ADAPTIVE_WINDOW: Duration = Duration::from_millis(1600);
/// The adaptive throttle's highest rejection probability: 30 % of the
/// calls always go through, so the throttle sees the backend recover.
pub const ADAPTIVE_MAX_REJECT: f64 = 0.7;

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 8] = [
        Scenario::NoRetries,
        Scenario::Naive,
        Scenario::ExponentialNoJitter,
        Scenario::FullJitter,
        Scenario::Throttle,
        Scenario::RetryBudget,
        Scenario::ThrottleAndBreaker,
        Scenario::ThrottleAndAdaptive,
    ];

    /// The scenarios with a budget: the ones that must keep the offered
    /// load near the no-retry load and recover.
    pub const BUDGETED: [Scenario; 4] = [
        Scenario::Throttle,
        Scenario::RetryBudget,
        Scenario::ThrottleAndBreaker,
        Scenario::ThrottleAndAdaptive,
    ];

    /// The scenario's name as the table and the JSON print it.
    ///
    /// ```
    /// use stormguard_sim::Scenario;
    /// assert_eq!(Scenario::NoRetries.name(), "no retries");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::NoRetries => "no retries",
            Scenario::Naive => "naive: 3 immediate retries",
            Scenario::ExponentialNoJitter => "exponential backoff, no jitter",
            Scenario::FullJitter => "full jitter",
            Scenario::Throttle => "full jitter + Throttle(10, 0.1)",
            Scenario::RetryBudget => "full jitter + RetryBudget(10%)",
            Scenario::ThrottleAndBreaker => "full jitter + Throttle + CircuitBreaker",
            Scenario::ThrottleAndAdaptive => "full jitter + Throttle + AdaptiveThrottle",
        }
    }

    /// The per-call policy every client of the scenario follows.
    ///
    /// # Errors
    /// Never with the constants above; a `ConfigError` if they were made
    /// invalid.
    ///
    /// ```
    /// use stormguard_sim::Scenario;
    /// assert_eq!(Scenario::NoRetries.policy()?.max_attempts(), 1);
    /// assert_eq!(Scenario::Throttle.policy()?.max_attempts(), 4);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn policy(self) -> Result<RetryPolicy, ConfigError> {
        let exponential = |jitter: Jitter| -> BackoffBuilder {
            Backoff::exponential(BACKOFF_BASE, 2.0)
                .max_delay(BACKOFF_CAP)
                .jitter(jitter)
        };
        let (attempts, backoff) = match self {
            Scenario::NoRetries => (1, Backoff::constant(Duration::ZERO)),
            Scenario::Naive => (RETRIES + 1, Backoff::constant(Duration::ZERO)),
            Scenario::ExponentialNoJitter => (RETRIES + 1, exponential(Jitter::None)),
            Scenario::FullJitter
            | Scenario::Throttle
            | Scenario::RetryBudget
            | Scenario::ThrottleAndBreaker
            | Scenario::ThrottleAndAdaptive => (RETRIES + 1, exponential(Jitter::Full)),
        };
        RetryPolicy::builder()
            .max_attempts(attempts)
            .backoff(backoff)
            .build()
    }

    /// A fresh budget for one client process.
    ///
    /// # Errors
    /// A `ConfigError` if the budget constants were made invalid.
    ///
    /// ```
    /// use stormguard::{Budget, Failure, Instant};
    /// use stormguard_sim::Scenario;
    /// let budget = Scenario::Throttle.budget()?;
    /// assert!(budget.try_retry(&Failure::timeout(), Instant::ZERO).is_some());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn budget(self) -> Result<Box<dyn Budget + Send>, ConfigError> {
        Ok(match self {
            Scenario::Throttle | Scenario::ThrottleAndBreaker | Scenario::ThrottleAndAdaptive => {
                Box::new(Throttle::new(THROTTLE_TOKENS, THROTTLE_RATIO)?)
            }
            Scenario::RetryBudget => Box::new(RetryBudget::new(
                BUDGET_RATIO,
                BUDGET_MIN_PER_SEC,
                BUDGET_TTL,
            )?),
            _ => Box::new(NoBudget),
        })
    }

    /// A fresh circuit breaker for one client process, if the scenario has
    /// one.
    ///
    /// # Errors
    /// A `ConfigError` if the breaker constants were made invalid.
    ///
    /// ```
    /// use stormguard_sim::Scenario;
    /// assert!(Scenario::ThrottleAndBreaker.breaker()?.is_some());
    /// assert!(Scenario::Throttle.breaker()?.is_none());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn breaker(self) -> Result<Option<CircuitBreaker>, ConfigError> {
        match self {
            Scenario::ThrottleAndBreaker => {
                CircuitBreaker::new(BREAKER_FAILURES, BREAKER_RECOVERY).map(Some)
            }
            _ => Ok(None),
        }
    }
}

impl Scenario {
    /// A fresh adaptive client throttle for one client process, if the
    /// scenario has one.
    ///
    /// # Errors
    /// A `ConfigError` if the throttle constants were made invalid.
    ///
    /// ```
    /// use stormguard_sim::Scenario;
    /// assert!(Scenario::ThrottleAndAdaptive.adaptive_throttle()?.is_some());
    /// assert!(Scenario::ThrottleAndBreaker.adaptive_throttle()?.is_none());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn adaptive_throttle(self) -> Result<Option<AdaptiveThrottle>, ConfigError> {
        match self {
            Scenario::ThrottleAndAdaptive => AdaptiveThrottle::builder()
                .k(ADAPTIVE_K)
                .window(ADAPTIVE_WINDOW)
                .max_reject(ADAPTIVE_MAX_REJECT)
                .build()
                .map(Some),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
