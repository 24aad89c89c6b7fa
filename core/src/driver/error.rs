//! How a retried call that gave up reports it.

use core::fmt;

use crate::breaker::Open;
use crate::decision::{Decision, GiveUp};
use crate::failure::Failure;

/// How the last attempt of a call ended.
///
/// ```
/// use stormguard::driver::LastAttempt;
/// assert_eq!(LastAttempt::Failed("refused").into_error(), Some("refused"));
/// assert_eq!(LastAttempt::<&str>::TimedOut.to_string(), "the attempt timed out");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LastAttempt<E> {
    /// The operation returned this error.
    Failed(E),
    /// The attempt did not finish within the per-attempt timeout or before
    /// the deadline, and was dropped (cancelled).
    TimedOut,
    /// The circuit breaker refused the first attempt: nothing was sent.
    Refused(Open),
}

impl<E> LastAttempt<E> {
    /// The operation's error, if it returned one.
    ///
    /// ```
    /// use stormguard::driver::LastAttempt;
    /// assert_eq!(LastAttempt::<u8>::TimedOut.error(), None);
    /// ```
    pub const fn error(&self) -> Option<&E> {
        match self {
            LastAttempt::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The operation's error, by value.
    ///
    /// ```
    /// use stormguard::driver::LastAttempt;
    /// assert_eq!(LastAttempt::Failed(7).into_error(), Some(7));
    /// ```
    pub fn into_error(self) -> Option<E> {
        match self {
            LastAttempt::Failed(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for LastAttempt<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastAttempt::Failed(e) => e.fmt(f),
            LastAttempt::TimedOut => f.write_str("the attempt timed out"),
            LastAttempt::Refused(open) => open.fmt(f),
        }
    }
}

/// A retried call that gave up: why, after how many attempts, and how its
/// last attempt ended.
///
/// ```
/// use stormguard::driver::{LastAttempt, RetryError};
/// use stormguard::GiveUp;
/// let err = RetryError::new(GiveUp::AttemptsExhausted, 3, LastAttempt::Failed("503"));
/// assert_eq!(err.to_string(), "gave up after 3 attempts (attempts exhausted): 503");
/// assert_eq!(err.into_error(), Some("503"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryError<E> {
    reason: GiveUp,
    attempts: u32,
    last: LastAttempt<E>,
}

impl<E> RetryError<E> {
    /// An error with these parts (for tests and for wrappers).
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::DeadlineExceeded, 2, LastAttempt::<()>::TimedOut);
    /// assert_eq!(e.attempts(), 2);
    /// ```
    pub const fn new(reason: GiveUp, attempts: u32, last: LastAttempt<E>) -> Self {
        RetryError {
            reason,
            attempts,
            last,
        }
    }

    /// Why the call gave up.
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// use stormguard::GiveUp;
    /// assert_eq!(RetryError::new(GiveUp::NotRetryable, 1, LastAttempt::Failed(())).reason(), GiveUp::NotRetryable);
    /// ```
    pub const fn reason(&self) -> GiveUp {
        self.reason
    }

    /// The attempts made (0 when the breaker refused the first one).
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// assert_eq!(RetryError::new(stormguard::GiveUp::NotRetryable, 1, LastAttempt::Failed(())).attempts(), 1);
    /// ```
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How the last attempt ended.
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::DeadlineExceeded, 2, LastAttempt::<()>::TimedOut);
    /// assert_eq!(e.last(), &LastAttempt::TimedOut);
    /// ```
    pub const fn last(&self) -> &LastAttempt<E> {
        &self.last
    }

    /// The last attempt's error, if the operation returned one.
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::DeadlineExceeded, 2, LastAttempt::<()>::TimedOut);
    /// assert_eq!(e.into_error(), None);
    /// ```
    pub fn into_error(self) -> Option<E> {
        self.last.into_error()
    }

    /// The failure to report to a layer above that also retries: marked
    /// already retried, so that layer does not retry it again ("retry at one
    /// layer", see [`GiveUp::into_failure`]).
    ///
    /// ```
    /// use stormguard::driver::{LastAttempt, RetryError};
    /// let e = RetryError::new(stormguard::GiveUp::AttemptsExhausted, 3, LastAttempt::Failed(()));
    /// assert!(e.to_failure().is_already_retried());
    /// ```
    pub const fn to_failure(&self) -> Failure {
        self.reason.into_failure()
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {} attempt{plural} ({}): {}",
            self.attempts, self.reason, self.last
        )
    }
}

impl<E: core::error::Error + 'static> core::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match &self.last {
            LastAttempt::Failed(e) => Some(e),
            LastAttempt::Refused(open) => Some(open),
            LastAttempt::TimedOut => None,
        }
    }
}

/// The error of a call that gave up with `decision`: its last failed
/// attempt if there was one, else what stopped the attempt it was about to
/// begin — the breaker's refusal, or the deadline.
pub(crate) fn retry_error<E>(
    decision: Decision,
    attempts: u32,
    last: Option<LastAttempt<E>>,
    refusal: Option<Open>,
) -> RetryError<E> {
    let reason = match decision {
        Decision::GiveUp(reason) => reason,
        // Not a give-up: never passed here; reported as what it would be.
        Decision::Retry { .. } => GiveUp::DeadlineExceeded,
    };
    let last = last.unwrap_or(match refusal {
        Some(open) => LastAttempt::Refused(open),
        None => LastAttempt::TimedOut,
    });
    RetryError::new(reason, attempts, last)
}
