//! The caller's hooks: how an error becomes a [`Failure`], and what to do
//! before each sleep.

use core::time::Duration;

use crate::driver::LastAttempt;
use crate::failure::Failure;

/// Turns an operation's error into the [`Failure`] the policy decides on.
///
/// Implemented by every `FnMut(&E) -> Failure` closure, by [`AnyError`]
/// (the default) and by [`RetryIf`] (a `bool` predicate).
///
/// ```
/// use stormguard::driver::Classify;
/// use stormguard::{Failure, FailureClass};
/// let mut by_status = |status: &u16| if *status >= 500 { Failure::transient() } else { Failure::permanent() };
/// assert_eq!(by_status.classify(&503).class(), FailureClass::Transient);
/// assert_eq!(by_status.classify(&404).class(), FailureClass::Permanent);
/// ```
pub trait Classify<E> {
    /// The failure `error` describes.
    fn classify(&mut self, error: &E) -> Failure;
}

impl<E, F: FnMut(&E) -> Failure> Classify<E> for F {
    fn classify(&mut self, error: &E) -> Failure {
        self(error)
    }
}

/// The default classification: every error is [`Failure::transient`] — a
/// retryable failure that may have run ([`Replay::Unknown`](crate::Replay)),
/// so a non-idempotent call is still never replayed.
///
/// ```
/// use stormguard::driver::{AnyError, Classify};
/// use stormguard::Failure;
/// assert_eq!(AnyError.classify(&"anything"), Failure::transient());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnyError;

impl<E> Classify<E> for AnyError {
    fn classify(&mut self, _: &E) -> Failure {
        Failure::transient()
    }
}

/// A `bool` predicate as a classifier (what `.retry_if(...)` builds):
/// `true` is [`Failure::transient`] — retried, unless it may have run and
/// the call is not idempotent — and `false` is [`Failure::permanent`].
///
/// ```
/// use stormguard::driver::{Classify, RetryIf};
/// use stormguard::FailureClass;
/// let mut only_503 = RetryIf(|status: &u16| *status == 503);
/// assert_eq!(only_503.classify(&503).class(), FailureClass::Transient);
/// assert_eq!(only_503.classify(&404).class(), FailureClass::Permanent);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryIf<F>(pub F);

impl<E, F: FnMut(&E) -> bool> Classify<E> for RetryIf<F> {
    fn classify(&mut self, error: &E) -> Failure {
        if (self.0)(error) {
            Failure::transient()
        } else {
            Failure::permanent()
        }
    }
}

/// Called before each sleep with the failed attempt and the wait: the hook
/// for logging.
///
/// Implemented by every `FnMut(&LastAttempt<E>, Duration)` closure, and by
/// [`NoNotify`], the default.
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::{LastAttempt, Notify};
/// let mut log = Vec::new();
/// let mut hook = |last: &LastAttempt<&str>, after: Duration| log.push(format!("{last}; retrying in {after:?}"));
/// hook.notify(&LastAttempt::Failed("503"), Duration::from_millis(20));
/// assert_eq!(log, ["503; retrying in 20ms"]);
/// ```
pub trait Notify<E> {
    /// An attempt failed with `last`; the next starts after `after`.
    fn notify(&mut self, last: &LastAttempt<E>, after: Duration);
}

impl<E, F: FnMut(&LastAttempt<E>, Duration)> Notify<E> for F {
    fn notify(&mut self, last: &LastAttempt<E>, after: Duration) {
        self(last, after)
    }
}

/// The default hook: does nothing.
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::{LastAttempt, NoNotify, Notify};
/// NoNotify.notify(&LastAttempt::<()>::TimedOut, Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoNotify;

impl<E> Notify<E> for NoNotify {
    fn notify(&mut self, _: &LastAttempt<E>, _: Duration) {}
}
