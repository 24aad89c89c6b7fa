//! How the clients call: their retries, backoff, budget, breaker, adaptive
//! throttle and method. Every [`Scenario`](crate::Scenario) of the table is
//! one setting of these; the playground lets a reader pick any other.

use core::time::Duration;

use stormguard::{
    AdaptiveThrottle, Backoff, BackoffBuilder, Budget, CircuitBreaker, ConfigError, Idempotency,
    Jitter, NoBudget, RetryBudget, RetryPolicy, Throttle,
};

/// The first backoff of the exponential settings.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The backoff cap of the exponential settings.
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

/// When a client sends its retries.
///
/// ```
/// use stormguard_sim::BackoffKind;
/// assert_eq!(BackoffKind::FullJitter.name(), "exponential, full jitter");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackoffKind {
    /// At once.
    None,
    /// After [`BACKOFF_BASE`] × 2ⁿ, capped at [`BACKOFF_CAP`], exactly.
    Exponential,
    /// After a uniform draw from zero to the exponential delay (AWS "full
    /// jitter").
    FullJitter,
}

impl BackoffKind {
    /// Every kind, in the order of their codes: the playground's backoff
    /// control and its exported settings number them 0, 1 and 2.
    pub const ALL: [BackoffKind; 3] = [
        BackoffKind::None,
        BackoffKind::Exponential,
        BackoffKind::FullJitter,
    ];

    /// The kind of a code (0 none, 1 exponential, 2 full jitter).
    ///
    /// ```
    /// use stormguard_sim::BackoffKind;
    /// assert_eq!(BackoffKind::from_code(2), Some(BackoffKind::FullJitter));
    /// assert_eq!(BackoffKind::from_code(3), None);
    /// ```
    pub fn from_code(code: u32) -> Option<BackoffKind> {
        Self::ALL.get(code as usize).copied()
    }

    /// The kind's code (see [`from_code`](Self::from_code)).
    ///
    /// ```
    /// assert_eq!(stormguard_sim::BackoffKind::Exponential.code(), 1);
    /// ```
    pub const fn code(self) -> u32 {
        match self {
            BackoffKind::None => 0,
            BackoffKind::Exponential => 1,
            BackoffKind::FullJitter => 2,
        }
    }

    /// A short name for the page and the docs.
    ///
    /// ```
    /// assert_eq!(stormguard_sim::BackoffKind::None.name(), "none");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            BackoffKind::None => "none",
            BackoffKind::Exponential => "exponential",
            BackoffKind::FullJitter => "exponential, full jitter",
        }
    }

    fn builder(self) -> BackoffBuilder {
        let exponential = |jitter: Jitter| -> BackoffBuilder {
            Backoff::exponential(BACKOFF_BASE, 2.0)
                .max_delay(BACKOFF_CAP)
                .jitter(jitter)
        };
        match self {
            BackoffKind::None => Backoff::constant(Duration::ZERO),
            BackoffKind::Exponential => exponential(Jitter::None),
            BackoffKind::FullJitter => exponential(Jitter::Full),
        }
    }
}

/// The retry budget each client process keeps.
///
/// ```
/// use stormguard_sim::BudgetKind;
/// let throttle = BudgetKind::Throttle { max_tokens: 10, token_ratio: 0.1 };
/// assert!(throttle.build()?.is_some());
/// assert!(BudgetKind::Off.build()?.is_none());
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BudgetKind {
    /// No budget: every retry the policy allows is sent.
    Off,
    /// gRPC A6's `Throttle`: a bucket of `max_tokens` that loses one token
    /// per failure and earns `token_ratio` per success; retries pause at or
    /// below half.
    Throttle {
        /// The bucket's size (1 to 1000).
        max_tokens: u32,
        /// Tokens earned per success (at most 1).
        token_ratio: f64,
    },
    /// A `RetryBudget`: retries at most [`BUDGET_RATIO`] of the requests of
    /// the last [`BUDGET_TTL`].
    RetryBudget,
}

/// A budget as [`BudgetKind::build`] makes it: the concrete type, so the
/// page can show a `Throttle`'s tokens.
///
/// ```
/// use stormguard_sim::{BudgetKind, ClientBudget};
/// let built = BudgetKind::RetryBudget.build()?;
/// assert!(matches!(built, Some(ClientBudget::RetryBudget(_))));
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Debug)]
pub enum ClientBudget {
    /// A gRPC A6 token bucket.
    Throttle(Throttle),
    /// A ratio budget.
    RetryBudget(RetryBudget),
}

impl BudgetKind {
    /// The budget of a code, as the playground numbers them: 0 off, 1 a
    /// `Throttle` of `max_tokens` earning `token_ratio` (not checked here:
    /// [`build`](Self::build) checks them), 2 a `RetryBudget`. The
    /// `Throttle`'s numbers are ignored for the other codes.
    ///
    /// ```
    /// use stormguard_sim::BudgetKind;
    /// assert_eq!(BudgetKind::from_code(2, 10, 0.1), Some(BudgetKind::RetryBudget));
    /// assert_eq!(BudgetKind::from_code(3, 10, 0.1), None);
    /// ```
    pub fn from_code(code: u32, max_tokens: u32, token_ratio: f64) -> Option<BudgetKind> {
        match code {
            0 => Some(BudgetKind::Off),
            1 => Some(BudgetKind::Throttle {
                max_tokens,
                token_ratio,
            }),
            2 => Some(BudgetKind::RetryBudget),
            _ => None,
        }
    }

    /// The budget's code (see [`from_code`](Self::from_code)).
    ///
    /// ```
    /// assert_eq!(stormguard_sim::BudgetKind::Off.code(), 0);
    /// ```
    pub const fn code(self) -> u32 {
        match self {
            BudgetKind::Off => 0,
            BudgetKind::Throttle { .. } => 1,
            BudgetKind::RetryBudget => 2,
        }
    }

    /// A fresh budget for one client process, `None` when off.
    ///
    /// # Errors
    /// A `ConfigError` for a `Throttle` outside gRPC A6's limits.
    ///
    /// ```
    /// use stormguard_sim::BudgetKind;
    /// assert!(BudgetKind::Throttle { max_tokens: 0, token_ratio: 0.1 }.build().is_err());
    /// ```
    pub fn build(self) -> Result<Option<ClientBudget>, ConfigError> {
        Ok(match self {
            BudgetKind::Off => None,
            BudgetKind::Throttle {
                max_tokens,
                token_ratio,
            } => Some(ClientBudget::Throttle(Throttle::new(
                max_tokens,
                token_ratio,
            )?)),
            BudgetKind::RetryBudget => Some(ClientBudget::RetryBudget(RetryBudget::new(
                BUDGET_RATIO,
                BUDGET_MIN_PER_SEC,
                BUDGET_TTL,
            )?)),
        })
    }
}

/// What each logical call does at the backend.
///
/// `greet` is idempotent: running it twice does no harm. `charge` bills the
/// customer each time the backend runs it. A timed-out attempt may still be
/// waiting in the backend's queue, and the backend serves it all the same
/// (it cannot know the caller left), so a retry of it may bill twice —
/// unless the client refuses that replay or the backend deduplicates it.
///
/// ```
/// use stormguard::Idempotency;
/// use stormguard_sim::Method;
/// assert_eq!(Method::Charge.idempotency(), Idempotency::Idempotent); // the bug
/// assert_eq!(Method::ChargeWithKey.idempotency(), Idempotency::Keyed);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Method {
    /// Idempotent: retried freely.
    #[default]
    Greet,
    /// Not idempotent, but the client does not say so (stormguard's default
    /// is [`Idempotency::Idempotent`], as in every retry library): a
    /// timed-out attempt is retried, and when the backend serves both, the
    /// customer is billed twice.
    Charge,
    /// Not idempotent, and declared so ([`Idempotency::NonIdempotent`]):
    /// stormguard refuses to replay an attempt that may have run (a
    /// timeout, RFC 9110 §9.2.2) and retries only those that certainly did
    /// not (a 503 from a full queue). No double charge, fewer successes.
    ChargeNonIdempotent,
    /// Every attempt carries the call's idempotency key
    /// ([`Idempotency::Keyed`]) and the backend runs each key once,
    /// answering repeats from a `stormguard::IdempotencyTable` (the IETF
    /// draft "The Idempotency-Key HTTP Header Field"). Retried freely, billed
    /// once.
    ChargeWithKey,
}

impl Method {
    /// Every method, in the order of their codes: the playground's method
    /// control and its exported settings number them 0 to 3.
    pub const ALL: [Method; 4] = [
        Method::Greet,
        Method::Charge,
        Method::ChargeNonIdempotent,
        Method::ChargeWithKey,
    ];

    /// The method of a code (0 `greet`, 1 `charge` without a key, 2
    /// `charge` declared non-idempotent, 3 `charge` with a key).
    ///
    /// ```
    /// use stormguard_sim::Method;
    /// assert_eq!(Method::from_code(3), Some(Method::ChargeWithKey));
    /// assert_eq!(Method::from_code(4), None);
    /// ```
    pub fn from_code(code: u32) -> Option<Method> {
        Self::ALL.get(code as usize).copied()
    }

    /// The method's code (see [`from_code`](Self::from_code)).
    ///
    /// ```
    /// assert_eq!(stormguard_sim::Method::Charge.code(), 1);
    /// ```
    pub const fn code(self) -> u32 {
        match self {
            Method::Greet => 0,
            Method::Charge => 1,
            Method::ChargeNonIdempotent => 2,
            Method::ChargeWithKey => 3,
        }
    }

    /// What the client tells stormguard about the method.
    ///
    /// ```
    /// use stormguard::Idempotency;
    /// use stormguard_sim::Method;
    /// assert_eq!(Method::ChargeNonIdempotent.idempotency(), Idempotency::NonIdempotent);
    /// ```
    pub const fn idempotency(self) -> Idempotency {
        match self {
            Method::Greet | Method::Charge => Idempotency::Idempotent,
            Method::ChargeNonIdempotent => Idempotency::NonIdempotent,
            Method::ChargeWithKey => Idempotency::Keyed,
        }
    }

    /// Whether running it bills the customer.
    ///
    /// ```
    /// assert!(!stormguard_sim::Method::Greet.is_charge());
    /// ```
    pub const fn is_charge(self) -> bool {
        !matches!(self, Method::Greet)
    }

    /// A short name for the page and the docs.
    ///
    /// ```
    /// assert_eq!(stormguard_sim::Method::ChargeWithKey.name(), "charge with an idempotency key");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Method::Greet => "greet",
            Method::Charge => "charge, no key",
            Method::ChargeNonIdempotent => "charge, no key, declared non-idempotent",
            Method::ChargeWithKey => "charge with an idempotency key",
        }
    }
}

/// How every client calls the backend.
///
/// ```
/// use stormguard_sim::{BackoffKind, BudgetKind, Clients, Method};
/// let clients = Clients {
///     retries: 3,
///     backoff: BackoffKind::FullJitter,
///     budget: BudgetKind::Throttle { max_tokens: 10, token_ratio: 0.1 },
///     breaker: false,
///     adaptive: false,
///     method: Method::Greet,
/// };
/// assert_eq!(clients.policy()?.max_attempts(), 4);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clients {
    /// Retries per logical call (the page offers 0 to 5).
    pub retries: u32,
    /// When the retries are sent.
    pub backoff: BackoffKind,
    /// Each client process's retry budget.
    pub budget: BudgetKind,
    /// Whether each client process has a `CircuitBreaker`
    /// ([`BREAKER_FAILURES`] consecutive failures open it for
    /// [`BREAKER_RECOVERY`]).
    pub breaker: bool,
    /// Whether each client process has an `AdaptiveThrottle` (the SRE book's
    /// client-side throttling, with [`ADAPTIVE_K`], [`ADAPTIVE_WINDOW`] and
    /// [`ADAPTIVE_MAX_REJECT`]).
    pub adaptive: bool,
    /// What the calls do.
    pub method: Method,
}

impl Clients {
    /// Builds everything a client process would (the policy, a budget, a
    /// breaker, an adaptive throttle) and keeps none of it: whether a
    /// simulation can run these settings.
    ///
    /// # Errors
    /// The first `ConfigError`: too many attempts for a policy, or a
    /// `Throttle` outside gRPC A6's limits (its `field()` is `max_tokens`
    /// or `token_ratio`).
    ///
    /// ```
    /// use stormguard_sim::{BudgetKind, Scenario};
    /// let mut clients = Scenario::Throttle.clients();
    /// assert!(clients.validate().is_ok());
    /// clients.budget = BudgetKind::Throttle { max_tokens: 0, token_ratio: 0.1 };
    /// assert_eq!(clients.validate().unwrap_err().field(), "max_tokens");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy()?;
        self.budget.build()?;
        self.breaker()?;
        self.adaptive_throttle()?;
        Ok(())
    }

    /// The per-call policy: `retries + 1` attempts, the backoff, the
    /// method's idempotency.
    ///
    /// # Errors
    /// A `ConfigError` when the policy cannot be built (too many attempts).
    ///
    /// ```
    /// use stormguard_sim::Scenario;
    /// assert_eq!(Scenario::NoRetries.clients().policy()?.max_attempts(), 1);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn policy(&self) -> Result<RetryPolicy, ConfigError> {
        RetryPolicy::builder()
            .max_attempts(self.retries.saturating_add(1))
            .backoff(self.backoff.builder())
            .idempotency(self.method.idempotency())
            .build()
    }

    /// A fresh budget for one client process, as a trait object
    /// ([`NoBudget`] when off).
    ///
    /// # Errors
    /// A `ConfigError` for a `Throttle` outside gRPC A6's limits.
    ///
    /// ```
    /// use stormguard::{Budget, Failure, Instant};
    /// let budget = stormguard_sim::Scenario::Throttle.clients().budget()?;
    /// assert!(budget.try_retry(&Failure::timeout(), Instant::ZERO).is_some());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn budget(&self) -> Result<Box<dyn Budget + Send>, ConfigError> {
        Ok(match self.budget.build()? {
            None => Box::new(NoBudget),
            Some(ClientBudget::Throttle(t)) => Box::new(t),
            Some(ClientBudget::RetryBudget(r)) => Box::new(r),
        })
    }

    /// A fresh circuit breaker for one client process, if it has one.
    ///
    /// # Errors
    /// A `ConfigError` if the breaker constants were made invalid.
    ///
    /// ```
    /// let clients = stormguard_sim::Scenario::ThrottleAndBreaker.clients();
    /// assert!(clients.breaker()?.is_some());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn breaker(&self) -> Result<Option<CircuitBreaker>, ConfigError> {
        if self.breaker {
            CircuitBreaker::new(BREAKER_FAILURES, BREAKER_RECOVERY).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A fresh adaptive client throttle for one client process, if it has
    /// one.
    ///
    /// # Errors
    /// A `ConfigError` if the throttle constants were made invalid.
    ///
    /// ```
    /// let clients = stormguard_sim::Scenario::ThrottleAndAdaptive.clients();
    /// assert!(clients.adaptive_throttle()?.is_some());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn adaptive_throttle(&self) -> Result<Option<AdaptiveThrottle>, ConfigError> {
        if self.adaptive {
            AdaptiveThrottle::builder()
                .k(ADAPTIVE_K)
                .window(ADAPTIVE_WINDOW)
                .max_reject(ADAPTIVE_MAX_REJECT)
                .build()
                .map(Some)
        } else {
            Ok(None)
        }
    }
}
