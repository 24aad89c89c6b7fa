//! How a caller describes a failed attempt.
//!
//! stormguard does not look at errors; the caller (or a ready-made classifier
//! in [`crate::classify`]) reduces each failure to three facts: what kind of
//! failure it was ([`FailureClass`]), whether the request may have been
//! processed ([`Replay`]), and what the server said about retrying
//! ([`RetryAfter`]).

use core::fmt;
use core::time::Duration;

/// What kind of failure an attempt ended with.
///
/// The class decides whether a retry can help at all, and lets a policy set
/// a separate attempt limit per class (for example 5 attempts for timeouts
/// but 3 for overload).
///
/// ```
/// use stormguard::FailureClass;
/// assert!(FailureClass::Timeout.is_retryable());
/// assert!(!FailureClass::Permanent.is_retryable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// A failure that is likely to go away by itself: a reset connection, a
    /// 502, gRPC `UNAVAILABLE`.
    Transient,
    /// The attempt ran out of time (a client-side timeout, HTTP 408/504,
    /// gRPC `DEADLINE_EXCEEDED`).
    Timeout,
    /// The server is shedding load: HTTP 429/503, gRPC `RESOURCE_EXHAUSTED`.
    /// Retrying adds load exactly when the server can least afford it, so
    /// budgets matter most here.
    Overloaded,
    /// Retrying cannot help: a bad request, a missing resource, a refused
    /// credential.
    Permanent,
}

impl FailureClass {
    /// Every class, in declaration order.
    ///
    /// ```
    /// assert_eq!(stormguard::FailureClass::ALL.len(), 4);
    /// ```
    pub const ALL: [FailureClass; 4] = [
        FailureClass::Transient,
        FailureClass::Timeout,
        FailureClass::Overloaded,
        FailureClass::Permanent,
    ];

    /// Whether a retry of this class can ever help.
    ///
    /// ```
    /// assert!(stormguard::FailureClass::Overloaded.is_retryable());
    /// ```
    pub const fn is_retryable(self) -> bool {
        !matches!(self, FailureClass::Permanent)
    }

    /// A dense index (0..4), for per-class tables.
    ///
    /// ```
    /// assert_eq!(stormguard::FailureClass::Permanent.index(), 3);
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The class's name in lower case (`"transient"`, `"timeout"`, …).
    ///
    /// ```
    /// assert_eq!(stormguard::FailureClass::Timeout.as_str(), "timeout");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Timeout => "timeout",
            FailureClass::Overloaded => "overloaded",
            FailureClass::Permanent => "permanent",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the failed request may have been processed by the server.
///
/// This is the fact that decides whether replaying a non-idempotent request
/// is safe (RFC 9110 §9.2.2: a client may retry a non-idempotent request
/// automatically only if it knows the request was not applied).
///
/// ```
/// use stormguard::Replay;
/// assert!(Replay::NotSent.is_safe_for_any_method());
/// assert!(!Replay::Unknown.is_safe_for_any_method());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Replay {
    /// The request never left the client (connect refused, DNS failure,
    /// a local queue that was full).
    NotSent,
    /// The server answered that it did nothing (HTTP 429, a gRPC
    /// `REFUSED_STREAM`, a `GOAWAY` below the stream's id).
    Rejected,
    /// The request may have run: a timeout, a connection reset after sending,
    /// a 500. Only idempotent or keyed methods may be replayed.
    Unknown,
}

impl Replay {
    /// True when replaying the request is safe whatever the method.
    ///
    /// ```
    /// assert!(stormguard::Replay::Rejected.is_safe_for_any_method());
    /// ```
    pub const fn is_safe_for_any_method(self) -> bool {
        !matches!(self, Replay::Unknown)
    }
}

/// What a server said about retrying: an HTTP `Retry-After` or a gRPC
/// `grpc-retry-pushback-ms`.
///
/// A [`RetryAfter::Delay`] replaces the computed backoff (capped by the
/// policy's `max_server_delay`) and restarts the exponential sequence, as in
/// gRPC proposal A6; it still counts as an attempt and still needs the budget
/// and the deadline to allow it. [`RetryAfter::Stop`] ends the call with
/// [`GiveUp::ServerSaidStop`](crate::GiveUp::ServerSaidStop).
///
/// ```
/// use core::time::Duration;
/// use stormguard::RetryAfter;
/// let hint = RetryAfter::Delay(Duration::from_secs(2));
/// assert_ne!(hint, RetryAfter::Stop);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryAfter {
    /// Retry after (about) this long.
    Delay(Duration),
    /// Do not retry this call.
    Stop,
}

/// A failed attempt, as the caller describes it.
///
/// Built with [`Failure::new`] or one of the per-class shortcuts, refined
/// with `with_*` methods. It is `Copy` and 16 bytes long: the server's
/// delay is held as whole nanoseconds, saturating at about 584 years (far
/// beyond any policy's `max_server_delay`, which caps it anyway).
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Failure, FailureClass, Replay, RetryAfter};
///
/// let f = Failure::overloaded()
///     .with_replay(Replay::Rejected)
///     .with_retry_after(RetryAfter::Delay(Duration::from_secs(1)));
/// assert_eq!(f.class(), FailureClass::Overloaded);
/// assert_eq!(f.replay(), Replay::Rejected);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Failure {
    /// [`NO_HINT`], [`STOP`], or a delay in nanoseconds (at most
    /// [`MAX_DELAY_NANOS`]).
    hint: u64,
    class: FailureClass,
    replay: Replay,
    already_retried: bool,
}

const NO_HINT: u64 = u64::MAX;
const STOP: u64 = u64::MAX - 1;
const MAX_DELAY_NANOS: u64 = u64::MAX - 2;

impl Failure {
    /// A failure of `class` with the given replay safety and no server hint.
    ///
    /// ```
    /// use stormguard::{Failure, FailureClass, Replay};
    /// let f = Failure::new(FailureClass::Transient, Replay::NotSent);
    /// assert!(f.retry_after().is_none());
    /// ```
    pub const fn new(class: FailureClass, replay: Replay) -> Self {
        Failure {
            hint: NO_HINT,
            class,
            replay,
            already_retried: false,
        }
    }

    /// A [`FailureClass::Transient`] failure that may have run
    /// ([`Replay::Unknown`]).
    ///
    /// ```
    /// assert_eq!(stormguard::Failure::transient().replay(), stormguard::Replay::Unknown);
    /// ```
    pub const fn transient() -> Self {
        Failure::new(FailureClass::Transient, Replay::Unknown)
    }

    /// A [`FailureClass::Timeout`] failure that may have run.
    ///
    /// ```
    /// assert_eq!(stormguard::Failure::timeout().class(), stormguard::FailureClass::Timeout);
    /// ```
    pub const fn timeout() -> Self {
        Failure::new(FailureClass::Timeout, Replay::Unknown)
    }

    /// A [`FailureClass::Overloaded`] failure that may have run.
    ///
    /// ```
    /// assert_eq!(stormguard::Failure::overloaded().class(), stormguard::FailureClass::Overloaded);
    /// ```
    pub const fn overloaded() -> Self {
        Failure::new(FailureClass::Overloaded, Replay::Unknown)
    }

    /// A [`FailureClass::Permanent`] failure.
    ///
    /// ```
    /// assert!(!stormguard::Failure::permanent().class().is_retryable());
    /// ```
    pub const fn permanent() -> Self {
        Failure::new(FailureClass::Permanent, Replay::Unknown)
    }

    /// The same failure with another replay safety.
    ///
    /// ```
    /// use stormguard::{Failure, Replay};
    /// assert_eq!(Failure::transient().with_replay(Replay::NotSent).replay(), Replay::NotSent);
    /// ```
    #[must_use = "this returns a changed copy of the failure; the original is unchanged"]
    pub const fn with_replay(mut self, replay: Replay) -> Self {
        self.replay = replay;
        self
    }

    /// The same failure carrying a server hint.
    ///
    /// ```
    /// use stormguard::{Failure, RetryAfter};
    /// let f = Failure::overloaded().with_retry_after(RetryAfter::Stop);
    /// assert_eq!(f.retry_after(), Some(RetryAfter::Stop));
    /// ```
    #[must_use = "this returns a changed copy of the failure; the original is unchanged"]
    pub const fn with_retry_after(mut self, hint: RetryAfter) -> Self {
        self.hint = match hint {
            RetryAfter::Stop => STOP,
            RetryAfter::Delay(delay) => {
                let secs = delay.as_secs();
                let nanos = delay.subsec_nanos() as u64;
                match secs.checked_mul(1_000_000_000) {
                    Some(n) if n <= MAX_DELAY_NANOS - nanos => n + nanos,
                    _ => MAX_DELAY_NANOS,
                }
            }
        };
        self
    }

    /// The same failure, marked as already retried by a lower layer
    /// ("retry at one layer"): an upper layer's [`Retry`](crate::Retry)
    /// gives up on it at once with
    /// [`GiveUp::NotRetryable`](crate::GiveUp::NotRetryable).
    ///
    /// Usually obtained from [`GiveUp::into_failure`](crate::GiveUp::into_failure).
    ///
    /// ```
    /// let f = stormguard::Failure::transient().already_retried();
    /// assert!(f.is_already_retried());
    /// ```
    #[must_use = "this returns a changed copy of the failure; the original is unchanged"]
    pub const fn already_retried(mut self) -> Self {
        self.already_retried = true;
        self
    }

    /// The failure's class.
    ///
    /// ```
    /// assert_eq!(stormguard::Failure::timeout().class().as_str(), "timeout");
    /// ```
    pub const fn class(&self) -> FailureClass {
        self.class
    }

    /// Whether the request may have been processed.
    ///
    /// ```
    /// assert_eq!(stormguard::Failure::timeout().replay(), stormguard::Replay::Unknown);
    /// ```
    pub const fn replay(&self) -> Replay {
        self.replay
    }

    /// The server's hint, if any.
    ///
    /// ```
    /// assert_eq!(stormguard::Failure::timeout().retry_after(), None);
    /// ```
    pub const fn retry_after(&self) -> Option<RetryAfter> {
        match self.hint {
            NO_HINT => None,
            STOP => Some(RetryAfter::Stop),
            nanos => Some(RetryAfter::Delay(Duration::from_nanos(nanos))),
        }
    }

    /// Whether a lower layer already retried this failure.
    ///
    /// ```
    /// assert!(!stormguard::Failure::timeout().is_already_retried());
    /// ```
    pub const fn is_already_retried(&self) -> bool {
        self.already_retried
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("class", &self.class)
            .field("replay", &self.replay)
            .field("retry_after", &self.retry_after())
            .field("already_retried", &self.already_retried)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::format;

    #[test]
    fn the_longest_hint_is_kept_and_longer_ones_are_capped_to_it() {
        let longest = Duration::from_nanos(u64::MAX - 2);
        let kept = Failure::transient().with_retry_after(RetryAfter::Delay(longest));
        assert_eq!(kept.retry_after(), Some(RetryAfter::Delay(longest)));
        for longer in [Duration::from_nanos(u64::MAX), Duration::MAX] {
            let capped = Failure::transient().with_retry_after(RetryAfter::Delay(longer));
            assert_eq!(capped.retry_after(), Some(RetryAfter::Delay(longest)));
        }
    }

    #[test]
    fn every_class_has_its_index_and_name() {
        let classes = [
            (FailureClass::Transient, "transient"),
            (FailureClass::Timeout, "timeout"),
            (FailureClass::Overloaded, "overloaded"),
            (FailureClass::Permanent, "permanent"),
        ];
        for (i, (class, name)) in classes.into_iter().enumerate() {
            assert_eq!(class.index(), i);
            assert_eq!(class.as_str(), name);
            assert_eq!(format!("{class}"), name);
        }
    }

    #[test]
    fn server_hints_round_trip() {
        let f = Failure::overloaded();
        assert_eq!(f.retry_after(), None);
        assert_eq!(
            f.with_retry_after(RetryAfter::Stop).retry_after(),
            Some(RetryAfter::Stop)
        );
        for delay in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1500),
            Duration::from_secs(86_400 * 365),
        ] {
            let hint = RetryAfter::Delay(delay);
            assert_eq!(f.with_retry_after(hint).retry_after(), Some(hint));
        }
    }

    #[test]
    fn a_delay_beyond_u64_nanoseconds_saturates_and_is_never_stop() {
        let max = Duration::from_nanos(MAX_DELAY_NANOS);
        for huge in [max + Duration::from_nanos(1), Duration::MAX] {
            let f = Failure::transient().with_retry_after(RetryAfter::Delay(huge));
            assert_eq!(f.retry_after(), Some(RetryAfter::Delay(max)));
        }
    }

    #[test]
    fn debug_shows_the_hint_not_its_encoding() {
        let f = Failure::timeout().with_retry_after(RetryAfter::Stop);
        let text = format!("{f:?}");
        assert!(text.contains("retry_after: Some(Stop)"), "{text}");
    }
}
