//! What a call does after an attempt: [`Decision`], and [`GiveUp`] — why it
//! stopped.
//!
//! This module depends only on [`crate::failure`]: the policy, the metrics
//! and the state machines all build on it, never the other way round.

use core::fmt;
use core::time::Duration;

use crate::failure::{Failure, FailureClass, Replay, RetryAfter};

/// What to do after a failed attempt.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Decision, GiveUp};
/// let d = Decision::Retry { after: Duration::from_millis(5) };
/// assert_eq!(d.retry_after(), Some(Duration::from_millis(5)));
/// assert_eq!(Decision::GiveUp(GiveUp::AttemptsExhausted).retry_after(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a decision says whether to retry; ignoring it retries blindly"]
pub enum Decision {
    /// Start the next attempt `after` from the `now` passed in. Starting
    /// earlier ignores the backoff (and a server's hint); starting much later
    /// is harmless for this call but may run past its deadline.
    Retry {
        /// How long to wait before the next attempt.
        after: Duration,
    },
    /// Stop, and report the last failure; the reason says why.
    GiveUp(GiveUp),
}

impl Decision {
    /// The wait before the next attempt, or `None` when giving up.
    ///
    /// ```
    /// use stormguard::{Decision, GiveUp};
    /// assert!(Decision::GiveUp(GiveUp::NotRetryable).retry_after().is_none());
    /// ```
    pub const fn retry_after(self) -> Option<Duration> {
        match self {
            Decision::Retry { after } => Some(after),
            Decision::GiveUp(_) => None,
        }
    }
}

/// Why a call gave up.
///
/// Every refusal is data, never silence: a caller (or the layer above) can
/// tell "the server is down" from "we are out of budget" from "retrying this
/// would bill twice".
///
/// ```
/// use stormguard::GiveUp;
/// assert_eq!(GiveUp::UnsafeToReplay.to_string(), "unsafe to replay");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// The failure's class cannot be helped by retrying (or a lower layer
    /// already retried it).
    NotRetryable,
    /// The overall attempt limit, or the limit for the failure's class, is
    /// reached.
    AttemptsExhausted,
    /// The shared retry budget refused.
    BudgetExhausted,
    /// The next attempt could not start before the overall deadline: giving
    /// up now rather than sleeping uselessly into it.
    DeadlineExceeded,
    /// The first attempt may have run and the method is not idempotent.
    UnsafeToReplay,
    /// The server said not to retry (`RetryAfter::Stop`).
    ServerSaidStop,
    /// The circuit breaker is open.
    CircuitOpen,
    /// The adaptive client throttle rejected the attempt locally: the
    /// backend has been refusing more than it accepts.
    ClientThrottled,
}

impl GiveUp {
    /// Every reason, in declaration order (a slice: a new reason in a later
    /// version lengthens it without breaking code that iterates it).
    ///
    /// ```
    /// use stormguard::GiveUp;
    /// assert_eq!(GiveUp::ALL.len(), 8);
    /// assert!(GiveUp::ALL.iter().enumerate().all(|(i, r)| r.index() == i));
    /// ```
    pub const ALL: &'static [GiveUp] = &[
        GiveUp::NotRetryable,
        GiveUp::AttemptsExhausted,
        GiveUp::BudgetExhausted,
        GiveUp::DeadlineExceeded,
        GiveUp::UnsafeToReplay,
        GiveUp::ServerSaidStop,
        GiveUp::CircuitOpen,
        GiveUp::ClientThrottled,
    ];

    /// A dense index (`0..GiveUp::ALL.len()`), for per-reason tables.
    ///
    /// ```
    /// assert_eq!(stormguard::GiveUp::CircuitOpen.index(), 6);
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The reason in lower-case words (`"attempts exhausted"`, …), the text
    /// the Python bindings put in their exception note.
    ///
    /// ```
    /// assert_eq!(stormguard::GiveUp::DeadlineExceeded.as_str(), "deadline exceeded");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUp::NotRetryable => "not retryable",
            GiveUp::AttemptsExhausted => "attempts exhausted",
            GiveUp::BudgetExhausted => "budget exhausted",
            GiveUp::DeadlineExceeded => "deadline exceeded",
            GiveUp::UnsafeToReplay => "unsafe to replay",
            GiveUp::ServerSaidStop => "server said stop",
            GiveUp::CircuitOpen => "circuit open",
            GiveUp::ClientThrottled => "client throttled",
        }
    }

    /// The failure to report to the layer above, marked as already retried
    /// ("retry at one layer").
    ///
    /// When layers nest — a gateway calls a service that calls a data layer —
    /// and each retries 3 times, one failing request costs 3³ = 27 calls at
    /// the bottom. If every layer reports its give-up this way, the upper
    /// layers' [`Retry`](crate::Retry) refuse it as [`GiveUp::NotRetryable`] and the bottom
    /// sees 3 calls. The class says what happened below (a timeout for
    /// `DeadlineExceeded`, overload for budget, breaker and server stops).
    ///
    /// ```
    /// use stormguard::{Decision, GiveUp, Instant, NoBudget, Retry, RetryPolicy};
    ///
    /// let policy = RetryPolicy::default();
    /// let below = GiveUp::AttemptsExhausted.into_failure();
    /// let mut upper = Retry::with_seed(&policy, Instant::ZERO, 1);
    /// assert_eq!(
    ///     upper.on_failure(&below, Instant::ZERO, &NoBudget),
    ///     Decision::GiveUp(GiveUp::NotRetryable),
    /// );
    /// ```
    pub const fn into_failure(self) -> Failure {
        let class = match self {
            GiveUp::NotRetryable | GiveUp::UnsafeToReplay => FailureClass::Permanent,
            GiveUp::AttemptsExhausted => FailureClass::Transient,
            GiveUp::DeadlineExceeded => FailureClass::Timeout,
            GiveUp::BudgetExhausted
            | GiveUp::ServerSaidStop
            | GiveUp::CircuitOpen
            | GiveUp::ClientThrottled => FailureClass::Overloaded,
        };
        let failure = Failure::new(class, Replay::Unknown).already_retried();
        match self {
            GiveUp::ServerSaidStop => failure.with_retry_after(RetryAfter::Stop),
            _ => failure,
        }
    }
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn a_decision_s_wait() {
        let after = Duration::from_millis(250);
        assert_eq!(Decision::Retry { after }.retry_after(), Some(after));
        assert_eq!(Decision::GiveUp(GiveUp::CircuitOpen).retry_after(), None);
    }

    #[test]
    fn every_reason_has_its_index_name_and_failure() {
        let expected = [
            ("not retryable", FailureClass::Permanent),
            ("attempts exhausted", FailureClass::Transient),
            ("budget exhausted", FailureClass::Overloaded),
            ("deadline exceeded", FailureClass::Timeout),
            ("unsafe to replay", FailureClass::Permanent),
            ("server said stop", FailureClass::Overloaded),
            ("circuit open", FailureClass::Overloaded),
            ("client throttled", FailureClass::Overloaded),
        ];
        assert_eq!(GiveUp::ALL.len(), expected.len());
        for (i, (reason, (name, class))) in GiveUp::ALL.iter().zip(expected).enumerate() {
            assert_eq!(reason.index(), i);
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.to_string(), name);
            let failure = reason.into_failure();
            assert_eq!(failure.class(), class, "{reason}");
            assert!(failure.is_already_retried());
            let stop = matches!(failure.retry_after(), Some(RetryAfter::Stop));
            assert_eq!(stop, *reason == GiveUp::ServerSaidStop, "{reason}");
        }
    }
}
