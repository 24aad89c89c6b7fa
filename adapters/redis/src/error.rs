//! What can go wrong talking to the store, each with the HTTP status a
//! server answers it with.

use std::fmt;

use crate::keys::KeyError;

/// A store operation that did not get an answer from its script.
///
/// | variant | when | status |
/// |---|---|---|
/// | [`Unavailable`](Error::Unavailable) | Redis unreachable, too slow, or out of memory, after every retry | 503 |
/// | [`Stale`](Error::Stale) | `complete` or `abort` with a ticket whose lease ran out | 409 |
/// | [`Invalid`](Error::Invalid) | an empty or over-long key, an over-long fingerprint | 400 |
/// | [`Unexpected`](Error::Unexpected) | Redis answered what no script answers (a foreign value at the key, a script error) | 500 |
///
/// ```
/// use stormguard_redis::{keys::KeyError, Error};
/// let err = Error::Invalid(KeyError::EmptyKey);
/// assert_eq!(err.status(), 400);
/// assert_eq!(err.to_string(), "invalid key: must not be empty");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Redis could not be reached, or did not answer within the attempt
    /// timeout, on every attempt the retry policy allowed (or refused the
    /// write for want of memory). Nothing is known to have changed — and a
    /// `begin` that may have reached Redis holds its key only until its
    /// lease ends — so the server answers `503 Service Unavailable` and runs
    /// nothing.
    Unavailable(Unavailable),
    /// The ticket's lease ran out: the key expired or belongs to another
    /// execution now, and nothing was written.
    Stale,
    /// A key or fingerprint that cannot be stored.
    Invalid(KeyError),
    /// A reply no script gives: another program's value at the key, or a
    /// script error.
    Unexpected {
        /// The operation: `begin`, `complete`, `abort` or `inspect`.
        operation: &'static str,
        /// What Redis said.
        detail: String,
    },
}

impl Error {
    /// The HTTP status a server answers this error with: 503, 409, 400 or
    /// 500.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::Error::Stale.status(), 409);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            Error::Unavailable(_) => 503,
            Error::Stale => 409,
            Error::Invalid(_) => 400,
            Error::Unexpected { .. } => 500,
        }
    }

    /// Whether this is [`Error::Unavailable`].
    ///
    /// ```
    /// assert!(!stormguard_redis::Error::Stale.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(unavailable) => unavailable.fmt(f),
            Error::Stale => f.write_str(
                "stale idempotency ticket: its lease ran out, the key may belong to another execution",
            ),
            Error::Invalid(err) => err.fmt(f),
            Error::Unexpected { operation, detail } => {
                write!(f, "unexpected reply from Redis to {operation}: {detail}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Unavailable(unavailable) => Some(unavailable),
            Error::Invalid(err) => Some(err),
            _ => None,
        }
    }
}

impl From<KeyError> for Error {
    fn from(err: KeyError) -> Self {
        Error::Invalid(err)
    }
}

/// Why Redis was unavailable: the operation, how many attempts were made,
/// and the last attempt's error (none when it timed out).
///
/// ```
/// use stormguard_redis::Unavailable;
/// let err = Unavailable::new("begin", 3, None);
/// assert_eq!(err.to_string(), "Redis unavailable for begin after 3 attempts: the last attempt timed out");
/// assert_eq!((err.operation(), err.attempts()), ("begin", 3));
/// ```
#[derive(Debug)]
pub struct Unavailable {
    operation: &'static str,
    attempts: u32,
    source: Option<redis::RedisError>,
}

impl Unavailable {
    /// Redis was unavailable for `operation` after `attempts` attempts, the
    /// last failing with `source` (`None`: it timed out).
    ///
    /// ```
    /// let err = stormguard_redis::Unavailable::new("complete", 1, None);
    /// assert!(err.source_error().is_none());
    /// ```
    pub fn new(operation: &'static str, attempts: u32, source: Option<redis::RedisError>) -> Self {
        Unavailable {
            operation,
            attempts,
            source,
        }
    }

    /// The operation: `begin`, `complete`, `abort` or `inspect`.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::Unavailable::new("abort", 1, None).operation(), "abort");
    /// ```
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// How many attempts were made.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::Unavailable::new("abort", 2, None).attempts(), 2);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The last attempt's error, if it was not a timeout.
    ///
    /// ```
    /// assert!(stormguard_redis::Unavailable::new("begin", 1, None).source_error().is_none());
    /// ```
    pub fn source_error(&self) -> Option<&redis::RedisError> {
        self.source.as_ref()
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redis unavailable for {} after {} attempt{}: ",
            self.operation,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" }
        )?;
        match &self.source {
            Some(err) => err.fmt(f),
            None => f.write_str("the last attempt timed out"),
        }
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}
