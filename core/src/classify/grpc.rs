//! gRPC: status codes, the retryable set and server pushback (proposal A6).
//!
//! A6 lets the service config name which status codes are retryable
//! (`retryableStatusCodes`); everything else ends the call. [`CodeSet`] is
//! that list, [`CodeSet::classify`] turns a code into a [`FailureClass`], and
//! [`pushback_hint`] reads the `grpc-retry-pushback-ms` trailer.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::failure::{Failure, FailureClass, Replay, RetryAfter};

/// A gRPC status code (the 17 codes of `grpc/status.proto`).
///
/// The discriminant is the code's wire value, so `code as i32` is what a
/// `grpc-status` trailer carries.
///
/// ```
/// use stormguard::classify::grpc::Code;
///
/// assert_eq!(Code::try_from(14), Ok(Code::Unavailable));
/// assert_eq!(Code::Unavailable as i32, 14);
/// assert_eq!("unavailable".parse(), Ok(Code::Unavailable));
/// assert_eq!(Code::Unavailable.to_string(), "UNAVAILABLE");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Code {
    /// Not an error.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, for example a status from another address space.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// A requested entity was not found.
    NotFound = 5,
    /// The entity the client tried to create already exists.
    AlreadyExists = 6,
    /// The caller may not execute the operation.
    PermissionDenied = 7,
    /// A resource has been exhausted: a quota, or the server's capacity.
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, typically by a concurrency conflict.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or supported.
    Unimplemented = 12,
    /// An internal invariant was broken.
    Internal = 13,
    /// The service is currently unavailable; usually transient.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request does not have valid authentication credentials.
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in wire order.
    ///
    /// ```
    /// use stormguard::classify::grpc::Code;
    /// assert!(Code::ALL.iter().enumerate().all(|(i, c)| *c as usize == i));
    /// ```
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The canonical upper-case name (`"DEADLINE_EXCEEDED"`).
    ///
    /// ```
    /// use stormguard::classify::grpc::Code;
    /// assert_eq!(Code::DeadlineExceeded.as_str(), "DEADLINE_EXCEEDED");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<i32> for Code {
    type Error = UnknownCode;

    /// The code with this wire value (the `grpc-status` trailer's number).
    ///
    /// gRPC itself maps an unknown value to `UNKNOWN`; an error leaves that
    /// choice to the caller (`.unwrap_or(Code::Unknown)`).
    ///
    /// # Errors
    /// [`UnknownCode`] for a value outside 0–16.
    ///
    /// ```
    /// use stormguard::classify::grpc::Code;
    /// assert_eq!(Code::try_from(4), Ok(Code::DeadlineExceeded));
    /// assert!(Code::try_from(17).is_err());
    /// assert_eq!(Code::try_from(-1).unwrap_or(Code::Unknown), Code::Unknown);
    /// ```
    fn try_from(value: i32) -> Result<Code, UnknownCode> {
        usize::try_from(value)
            .ok()
            .and_then(|index| Code::ALL.get(index).copied())
            .ok_or(UnknownCode { by_name: false })
    }
}

impl FromStr for Code {
    type Err = UnknownCode;

    /// The code with this name (`"UNAVAILABLE"`), ignoring ASCII case.
    ///
    /// A6's `retryableStatusCodes` names codes in a JSON service config, and
    /// implementations accept any case (`"UNAVAILABLE"`, `"unavailable"`).
    ///
    /// # Errors
    /// [`UnknownCode`] for a name that is none of the 17 (the number, or a
    /// name with spaces or hyphens for underscores, is not a name).
    ///
    /// ```
    /// use stormguard::classify::grpc::Code;
    /// assert_eq!("resource_exhausted".parse(), Ok(Code::ResourceExhausted));
    /// assert!("RESOURCE EXHAUSTED".parse::<Code>().is_err());
    /// ```
    fn from_str(name: &str) -> Result<Code, UnknownCode> {
        Code::ALL
            .into_iter()
            .find(|code| code.as_str().eq_ignore_ascii_case(name))
            .ok_or(UnknownCode { by_name: true })
    }
}

/// A number or a name that is not one of the 17 gRPC status codes: the
/// error of `Code::try_from(i32)` and of `str::parse::<Code>()`.
///
/// The status codes are fixed by `grpc/status.proto`, so an unknown one is
/// either a peer speaking something other than gRPC or a typo in a
/// configuration; its `Display` says which conversion failed.
///
/// ```
/// use stormguard::classify::grpc::{Code, UnknownCode};
///
/// let err: UnknownCode = Code::try_from(99).unwrap_err();
/// assert_eq!(err.to_string(), "not a gRPC status code: the values are 0 to 16");
/// let err = "UNAVAILABLE_".parse::<Code>().unwrap_err();
/// assert_eq!(err.to_string(), "not the name of a gRPC status code");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownCode {
    by_name: bool,
}

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.by_name {
            "not the name of a gRPC status code"
        } else {
            "not a gRPC status code: the values are 0 to 16"
        })
    }
}

impl core::error::Error for UnknownCode {}

/// A set of status codes: the retryable codes of a policy.
///
/// This is A6's `retryableStatusCodes`: a failed attempt is retried only if
/// its code is in the set. The default is `{UNAVAILABLE}`, the one code gRPC
/// treats as safe to retry everywhere. A bitset, so it is `Copy` and can be
/// built in a `const` or `static`.
///
/// ```
/// use stormguard::classify::grpc::{Code, CodeSet};
///
/// const RETRYABLE: CodeSet = CodeSet::EMPTY
///     .with(Code::Unavailable)
///     .with(Code::ResourceExhausted);
/// assert!(RETRYABLE.contains(Code::ResourceExhausted));
/// assert!(!RETRYABLE.contains(Code::Internal));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeSet {
    bits: u32,
}

impl CodeSet {
    /// The empty set: nothing is retryable.
    ///
    /// ```
    /// assert!(stormguard::classify::grpc::CodeSet::EMPTY.is_empty());
    /// ```
    pub const EMPTY: CodeSet = CodeSet { bits: 0 };

    /// The set with `code` added.
    ///
    /// ```
    /// use stormguard::classify::grpc::{Code, CodeSet};
    /// assert!(CodeSet::EMPTY.with(Code::Aborted).contains(Code::Aborted));
    /// ```
    #[must_use = "this returns a changed copy of the set; the original is unchanged"]
    pub const fn with(self, code: Code) -> Self {
        CodeSet {
            bits: self.bits | code.bit(),
        }
    }

    /// The set with `code` removed.
    ///
    /// ```
    /// use stormguard::classify::grpc::{Code, CodeSet};
    /// assert!(CodeSet::default().without(Code::Unavailable).is_empty());
    /// ```
    #[must_use = "this returns a changed copy of the set; the original is unchanged"]
    pub const fn without(self, code: Code) -> Self {
        CodeSet {
            bits: self.bits & !code.bit(),
        }
    }

    /// Whether `code` is in the set.
    ///
    /// ```
    /// use stormguard::classify::grpc::{Code, CodeSet};
    /// assert!(CodeSet::default().contains(Code::Unavailable));
    /// ```
    pub const fn contains(self, code: Code) -> bool {
        self.bits & code.bit() != 0
    }

    /// Whether the set is empty.
    ///
    /// A6 rejects a retry policy whose `retryableStatusCodes` is empty; a
    /// config loader can check it here.
    ///
    /// ```
    /// use stormguard::classify::grpc::CodeSet;
    /// assert!(!CodeSet::default().is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// The failure class of a call that ended with `code`, or `None` for `OK`.
    ///
    /// A code in the set is retryable: `DEADLINE_EXCEEDED` as a
    /// [`Timeout`](FailureClass::Timeout), `RESOURCE_EXHAUSTED` as
    /// [`Overloaded`](FailureClass::Overloaded) (so budgets and per-class
    /// limits see the server shedding load), any other as
    /// [`Transient`](FailureClass::Transient). A code not in the set is
    /// [`Permanent`](FailureClass::Permanent): A6 never retries it.
    ///
    /// ```
    /// use stormguard::classify::grpc::{Code, CodeSet};
    /// use stormguard::FailureClass;
    ///
    /// let set = CodeSet::default().with(Code::DeadlineExceeded);
    /// assert_eq!(set.classify(Code::Ok), None);
    /// assert_eq!(set.classify(Code::DeadlineExceeded), Some(FailureClass::Timeout));
    /// assert_eq!(set.classify(Code::NotFound), Some(FailureClass::Permanent));
    /// ```
    pub const fn classify(self, code: Code) -> Option<FailureClass> {
        Some(match code {
            Code::Ok => return None,
            _ if !self.contains(code) => FailureClass::Permanent,
            Code::DeadlineExceeded => FailureClass::Timeout,
            Code::ResourceExhausted => FailureClass::Overloaded,
            _ => FailureClass::Transient,
        })
    }

    /// The [`Failure`] for a call that ended with `code`, or `None` for `OK`.
    ///
    /// The replay safety is [`Replay::Unknown`]: a status comes from the
    /// server, so the call may have run. (A stream refused before the
    /// application saw it is A6's "transparent retry", which the transport
    /// reports as [`Replay::Rejected`] itself.) Attach the pushback with
    /// [`Failure::with_retry_after`] and [`pushback_hint`].
    ///
    /// ```
    /// use stormguard::classify::grpc::{pushback_hint, Code, CodeSet};
    ///
    /// let f = CodeSet::default().failure_for(Code::Unavailable).unwrap();
    /// let f = match pushback_hint(&[b"250".as_slice()]) {
    ///     Some(hint) => f.with_retry_after(hint),
    ///     None => f,
    /// };
    /// assert!(f.retry_after().is_some());
    /// ```
    pub const fn failure_for(self, code: Code) -> Option<Failure> {
        match self.classify(code) {
            Some(class) => Some(Failure::new(class, Replay::Unknown)),
            None => None,
        }
    }
}

impl Default for CodeSet {
    /// `{UNAVAILABLE}`.
    fn default() -> Self {
        CodeSet::EMPTY.with(Code::Unavailable)
    }
}

impl fmt::Debug for CodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(Code::ALL.iter().filter(|code| self.contains(**code)))
            .finish()
    }
}

/// Why a `grpc-retry-pushback-ms` value was refused.
///
/// Either way A6 reads it as "do not retry"; the variants exist for logging.
///
/// ```
/// use stormguard::classify::grpc::{parse_pushback, PushbackError};
/// assert_eq!(parse_pushback("-1"), Err(PushbackError::Negative));
/// assert_eq!(parse_pushback("1s"), Err(PushbackError::Malformed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PushbackError {
    /// The value is not an ASCII decimal int32: empty, whitespace, a `+`, a
    /// fraction or exponent, or out of the int32 range.
    Malformed,
    /// The value is a negative int32: the server asks not to retry.
    Negative,
}

impl fmt::Display for PushbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushbackError::Malformed => "grpc-retry-pushback-ms is not a decimal int32",
            PushbackError::Negative => "grpc-retry-pushback-ms is negative",
        })
    }
}

impl core::error::Error for PushbackError {}

/// Parses one `grpc-retry-pushback-ms` value into a delay.
///
/// A6: the value is an int32 in ASCII decimal; a non-negative value is the
/// exact delay in milliseconds before the next attempt. The syntax is strict:
/// an optional leading `-` and at least one digit, nothing else (no `+`, no
/// whitespace), and the number must fit in an int32. `"-0"` is zero, so it
/// is a delay of zero, not a refusal.
///
/// ```
/// use core::time::Duration;
/// use stormguard::classify::grpc::{parse_pushback, PushbackError};
///
/// assert_eq!(parse_pushback("250"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_pushback(b"-5"), Err(PushbackError::Negative));
/// assert_eq!(parse_pushback("2147483648"), Err(PushbackError::Malformed));
/// ```
pub fn parse_pushback(value: impl AsRef<[u8]>) -> Result<Duration, PushbackError> {
    let value = value.as_ref();
    let (negative, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    if digits.is_empty() {
        return Err(PushbackError::Malformed);
    }
    // The magnitude of i32::MIN, 2^31, still fits in a u32.
    let magnitude = digits.iter().try_fold(0u32, |acc, &b| match b {
        b'0'..=b'9' => acc
            .checked_mul(10)
            .and_then(|acc| acc.checked_add(u32::from(b - b'0')))
            .ok_or(PushbackError::Malformed),
        _ => Err(PushbackError::Malformed),
    })?;
    match (negative, magnitude) {
        (_, 0) => Ok(Duration::ZERO),
        (false, ms) if ms <= i32::MAX as u32 => Ok(Duration::from_millis(u64::from(ms))),
        (true, ms) if ms <= 1 << 31 => Err(PushbackError::Negative),
        _ => Err(PushbackError::Malformed),
    }
}

/// The server's retry hint from all `grpc-retry-pushback-ms` values of a
/// response.
///
/// A6: no pushback leaves the decision to the policy (`None`); one valid,
/// non-negative value means "retry after exactly this long"
/// ([`RetryAfter::Delay`]); a negative or unparseable value means "do not
/// retry" ([`RetryAfter::Stop`]), and so does a repeated one (as in grpc-go:
/// there is no telling which of several values the server meant).
///
/// ```
/// use core::time::Duration;
/// use stormguard::classify::grpc::pushback_hint;
/// use stormguard::RetryAfter;
///
/// assert_eq!(pushback_hint(&[]), None);
/// assert_eq!(pushback_hint(&[b"100"]), Some(RetryAfter::Delay(Duration::from_millis(100))));
/// assert_eq!(pushback_hint(&[b"-1"]), Some(RetryAfter::Stop));
/// assert_eq!(pushback_hint(&[b"100", b"100"]), Some(RetryAfter::Stop));
/// ```
pub fn pushback_hint(values: &[&[u8]]) -> Option<RetryAfter> {
    match values {
        [] => None,
        [value] => Some(match parse_pushback(value) {
            Ok(delay) => RetryAfter::Delay(delay),
            Err(_) => RetryAfter::Stop,
        }),
        _ => Some(RetryAfter::Stop),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::format;
    use std::string::ToString;

    #[test]
    fn codes_round_trip() {
        for (i, code) in Code::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, i);
            assert_eq!(Code::try_from(i as i32), Ok(code));
            assert_eq!(code.as_str().parse(), Ok(code));
            assert_eq!(code.as_str().to_lowercase().parse(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        for value in [-1, 17, i32::MIN, i32::MAX] {
            assert_eq!(
                Code::try_from(value),
                Err(UnknownCode { by_name: false }),
                "{value}"
            );
        }
        assert_eq!("Unavailable".parse(), Ok(Code::Unavailable));
        assert_eq!("uNaVaIlAbLe".parse(), Ok(Code::Unavailable));
        for name in [
            "",
            "14",
            "UNAVAILABLE ",
            "DEADLINE-EXCEEDED",
            "CANCELED",
            "ÜNAVAILABLE",
        ] {
            assert_eq!(
                name.parse::<Code>(),
                Err(UnknownCode { by_name: true }),
                "{name:?}"
            );
        }
    }

    #[test]
    fn set_operations() {
        let set = CodeSet::EMPTY
            .with(Code::Aborted)
            .with(Code::Unauthenticated);
        assert!(set.contains(Code::Aborted) && set.contains(Code::Unauthenticated));
        assert!(!set.contains(Code::Ok) && !set.contains(Code::Unavailable));
        assert_eq!(set.with(Code::Aborted), set);
        assert_eq!(
            set.without(Code::Aborted),
            CodeSet::EMPTY.with(Code::Unauthenticated)
        );
        assert_eq!(set.without(Code::Internal), set);
        assert!(set
            .without(Code::Aborted)
            .without(Code::Unauthenticated)
            .is_empty());
        assert!(CodeSet::EMPTY.is_empty());
        assert_eq!(CodeSet::default(), CodeSet::EMPTY.with(Code::Unavailable));
        assert_eq!(format!("{set:?}"), "{Aborted, Unauthenticated}");
        let all = Code::ALL.into_iter().fold(CodeSet::EMPTY, CodeSet::with);
        assert!(Code::ALL.into_iter().all(|code| all.contains(code)));
    }

    #[test]
    fn classify_table() {
        use FailureClass::*;
        let all = Code::ALL.into_iter().fold(CodeSet::EMPTY, CodeSet::with);
        for code in Code::ALL {
            let expected = match code {
                Code::Ok => None,
                Code::DeadlineExceeded => Some(Timeout),
                Code::ResourceExhausted => Some(Overloaded),
                _ => Some(Transient),
            };
            assert_eq!(all.classify(code), expected, "{code}");
            let none_retryable = if code == Code::Ok {
                None
            } else {
                Some(Permanent)
            };
            assert_eq!(CodeSet::EMPTY.classify(code), none_retryable, "{code}");
            assert_eq!(
                all.failure_for(code),
                expected.map(|class| Failure::new(class, Replay::Unknown))
            );
        }
        let default = CodeSet::default();
        assert_eq!(default.classify(Code::Unavailable), Some(Transient));
        assert_eq!(default.classify(Code::DeadlineExceeded), Some(Permanent));
        assert_eq!(default.classify(Code::ResourceExhausted), Some(Permanent));
        assert_eq!(CodeSet::EMPTY.with(Code::Ok).classify(Code::Ok), None);
    }

    #[test]
    fn pushback_values() {
        use PushbackError::*;
        let ms = |n| Ok(Duration::from_millis(n));
        for (value, expected) in [
            ("0", ms(0)),
            ("-0", ms(0)),
            ("100", ms(100)),
            ("0100", ms(100)),
            ("2147483647", ms(2_147_483_647)),
            ("-1", Err(Negative)),
            ("-2147483648", Err(Negative)),
            ("-2147483649", Err(Malformed)),
            ("2147483648", Err(Malformed)),
            ("99999999999999999999", Err(Malformed)),
            ("", Err(Malformed)),
            ("-", Err(Malformed)),
            ("--1", Err(Malformed)),
            (" 5", Err(Malformed)),
            ("5 ", Err(Malformed)),
            ("+5", Err(Malformed)),
            ("1e3", Err(Malformed)),
            ("1.5", Err(Malformed)),
            ("0x10", Err(Malformed)),
            ("١", Err(Malformed)),
        ] {
            assert_eq!(parse_pushback(value), expected, "{value:?}");
        }
    }

    #[test]
    fn pushback_hints() {
        let delay = |n| Some(RetryAfter::Delay(Duration::from_millis(n)));
        assert_eq!(pushback_hint(&[]), None);
        assert_eq!(pushback_hint(&[b"0"]), delay(0));
        assert_eq!(pushback_hint(&[b"-0"]), delay(0));
        assert_eq!(pushback_hint(&[b"1500"]), delay(1500));
        assert_eq!(pushback_hint(&[b"-1"]), Some(RetryAfter::Stop));
        assert_eq!(pushback_hint(&[b"soon"]), Some(RetryAfter::Stop));
        assert_eq!(pushback_hint(&[b""]), Some(RetryAfter::Stop));
        assert_eq!(pushback_hint(&[b"1", b"1"]), Some(RetryAfter::Stop));
        assert_eq!(pushback_hint(&[b"1", b"2", b"3"]), Some(RetryAfter::Stop));
    }

    #[test]
    fn error_messages() {
        let error: &dyn core::error::Error = &PushbackError::Negative;
        assert_eq!(error.to_string(), "grpc-retry-pushback-ms is negative");
        let error: &dyn core::error::Error = &UnknownCode { by_name: true };
        assert_eq!(error.to_string(), "not the name of a gRPC status code");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_pushback(&bytes);
            let _ = pushback_hint(&[&bytes]);
        }

        #[test]
        fn every_i32_parses_back(value: i32) {
            let expected = match u64::try_from(value) {
                Ok(ms) => Ok(Duration::from_millis(ms)),
                Err(_) => Err(PushbackError::Negative),
            };
            prop_assert_eq!(parse_pushback(format!("{value}")), expected);
        }

        #[test]
        fn out_of_range_is_malformed(value in prop_oneof![
            i64::MIN..i64::from(i32::MIN),
            i64::from(i32::MAX) + 1..=i64::MAX,
        ]) {
            prop_assert_eq!(parse_pushback(format!("{value}")), Err(PushbackError::Malformed));
        }

        #[test]
        fn try_from_agrees_with_discriminants(value: i32) {
            let code = Code::try_from(value);
            prop_assert_eq!(code.is_ok(), (0..17).contains(&value));
            if let Ok(code) = code {
                prop_assert_eq!(code as i32, value);
            }
        }
    }
}
