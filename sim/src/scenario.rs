//! The eight client configurations the table compares: each is one setting
//! of [`Clients`](crate::Clients) — a `RetryPolicy`, plus a budget, a
//! breaker or an adaptive throttle per client process.

use core::fmt;

use stormguard::{AdaptiveThrottle, Budget, CircuitBreaker, ConfigError, RetryPolicy};

use crate::clients::{BackoffKind, BudgetKind, Clients, Method, THROTTLE_RATIO, THROTTLE_TOKENS};

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

    /// The scenario as a setting of the clients: the same policy, budget,
    /// breaker and throttle, calling `greet`.
    ///
    /// ```
    /// use stormguard_sim::{BackoffKind, Scenario};
    /// let clients = Scenario::Naive.clients();
    /// assert_eq!((clients.retries, clients.backoff), (3, BackoffKind::None));
    /// ```
    pub const fn clients(self) -> Clients {
        let throttle = BudgetKind::Throttle {
            max_tokens: THROTTLE_TOKENS,
            token_ratio: THROTTLE_RATIO,
        };
        let (retries, backoff, budget, breaker, adaptive) = match self {
            Scenario::NoRetries => (0, BackoffKind::None, BudgetKind::Off, false, false),
            Scenario::Naive => (RETRIES, BackoffKind::None, BudgetKind::Off, false, false),
            Scenario::ExponentialNoJitter => (
                RETRIES,
                BackoffKind::Exponential,
                BudgetKind::Off,
                false,
                false,
            ),
            Scenario::FullJitter => (
                RETRIES,
                BackoffKind::FullJitter,
                BudgetKind::Off,
                false,
                false,
            ),
            Scenario::Throttle => (RETRIES, BackoffKind::FullJitter, throttle, false, false),
            Scenario::RetryBudget => (
                RETRIES,
                BackoffKind::FullJitter,
                BudgetKind::RetryBudget,
                false,
                false,
            ),
            Scenario::ThrottleAndBreaker => {
                (RETRIES, BackoffKind::FullJitter, throttle, true, false)
            }
            Scenario::ThrottleAndAdaptive => {
                (RETRIES, BackoffKind::FullJitter, throttle, false, true)
            }
        };
        Clients {
            retries,
            backoff,
            budget,
            breaker,
            adaptive,
            method: Method::Greet,
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
        self.clients().policy()
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
        self.clients().budget()
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
        self.clients().breaker()
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
        self.clients().adaptive_throttle()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
