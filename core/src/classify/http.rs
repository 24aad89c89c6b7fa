//! HTTP: status codes, methods and `Retry-After` (RFC 9110, RFC 6585).
//!
//! | status | class | replay |
//! |---|---|---|
//! | 100–399 | not a failure | |
//! | 408 | [`Timeout`](FailureClass::Timeout) | [`Rejected`](Replay::Rejected) |
//! | 429 | [`Overloaded`](FailureClass::Overloaded) | [`Rejected`](Replay::Rejected) |
//! | 500, 502, other 5xx | [`Transient`](FailureClass::Transient) | [`Unknown`](Replay::Unknown) |
//! | 503 | [`Overloaded`](FailureClass::Overloaded) | [`Unknown`](Replay::Unknown) |
//! | 504 | [`Timeout`](FailureClass::Timeout) | [`Unknown`](Replay::Unknown) |
//! | 400, 401, 403, 404, 405, 422, other 4xx | [`Permanent`](FailureClass::Permanent) | [`Unknown`](Replay::Unknown) |
//! | not in 100–599 | [`Permanent`](FailureClass::Permanent) | [`Unknown`](Replay::Unknown) |

use crate::failure::{Failure, FailureClass, Replay, RetryAfter};

pub use super::retry_after::{parse_retry_after, RetryAfterError};

/// The failure class of a response status, or `None` if it is not a failure.
///
/// RFC 9110 §15 asks a client to treat an unknown code like the `x00` of its
/// class, so an unlisted 5xx is [`Transient`](FailureClass::Transient) like
/// 500 and an unlisted 4xx is [`Permanent`](FailureClass::Permanent) like 400.
/// 408 and 504 are timeouts, 429 (RFC 6585 §4) and 503 are the server
/// shedding load. A number outside 100–599 is not a valid status (§15): the
/// peer is broken, and asking it again will not fix it, so it is permanent.
///
/// ```
/// use stormguard::classify::http::class_of;
/// use stormguard::FailureClass;
///
/// assert_eq!(class_of(200), None);
/// assert_eq!(class_of(429), Some(FailureClass::Overloaded));
/// assert_eq!(class_of(504), Some(FailureClass::Timeout));
/// assert_eq!(class_of(404), Some(FailureClass::Permanent));
/// ```
pub const fn class_of(status: u16) -> Option<FailureClass> {
    match status {
        100..=399 => None,
        408 | 504 => Some(FailureClass::Timeout),
        429 | 503 => Some(FailureClass::Overloaded),
        500..=599 => Some(FailureClass::Transient),
        // 400, 401, 403, 404, 405, 422, the rest of 4xx, and non-statuses.
        _ => Some(FailureClass::Permanent),
    }
}

/// Whether a request that got this status may have been processed.
///
/// Only 408 (RFC 9110 §15.5.9: the server did not receive the whole request)
/// and 429 (RFC 6585 §4: refused by rate limiting) say the request was not
/// acted on, so they are [`Replay::Rejected`] and may be replayed whatever
/// the method. Everything else is [`Replay::Unknown`] — conservatively, even
/// 503: it may come from a proxy or gateway after the origin already ran the
/// request, and the client cannot tell which.
///
/// ```
/// use stormguard::classify::http::replay_of;
/// use stormguard::Replay;
///
/// assert_eq!(replay_of(429), Replay::Rejected);
/// assert_eq!(replay_of(503), Replay::Unknown);
/// ```
pub const fn replay_of(status: u16) -> Replay {
    match status {
        408 | 429 => Replay::Rejected,
        _ => Replay::Unknown,
    }
}

/// The [`Failure`] for a response status, or `None` if it is not a failure.
///
/// Combines [`class_of`] and [`replay_of`]; use [`failure_for_response`] to
/// honour a `Retry-After` field as well.
///
/// ```
/// use stormguard::classify::http::failure_for_status;
/// use stormguard::{FailureClass, Replay};
///
/// let f = failure_for_status(408).unwrap();
/// assert_eq!((f.class(), f.replay()), (FailureClass::Timeout, Replay::Rejected));
/// assert!(failure_for_status(204).is_none());
/// ```
pub const fn failure_for_status(status: u16) -> Option<Failure> {
    match class_of(status) {
        Some(class) => Some(Failure::new(class, replay_of(status))),
        None => None,
    }
}

/// The [`Failure`] for a response, with its `Retry-After` value if it has one.
///
/// As [`failure_for_status`], plus a [`RetryAfter::Delay`] when `retry_after`
/// parses (see [`parse_retry_after`]; `now_unix_secs` is the caller's
/// wall-clock time, needed only for HTTP-dates). A value that does not parse
/// is ignored, as if absent, rather than read as "stop": RFC 9110 gives an
/// invalid value no meaning, and stopping on garbage would let one broken
/// proxy disable retries altogether. The policy's `max_server_delay` bounds a
/// value that parses but is absurd.
///
/// ```
/// use core::time::Duration;
/// use stormguard::classify::http::failure_for_response;
/// use stormguard::RetryAfter;
///
/// let f = failure_for_response(503, Some(b"3".as_slice()), 0).unwrap();
/// assert_eq!(f.retry_after(), Some(RetryAfter::Delay(Duration::from_secs(3))));
///
/// let f = failure_for_response(503, Some(b"soon".as_slice()), 0).unwrap();
/// assert_eq!(f.retry_after(), None);
/// ```
pub fn failure_for_response(
    status: u16,
    retry_after: Option<&[u8]>,
    now_unix_secs: u64,
) -> Option<Failure> {
    let failure = failure_for_status(status)?;
    Some(
        match retry_after.map(|v| parse_retry_after(v, now_unix_secs)) {
            Some(Ok(delay)) => failure.with_retry_after(RetryAfter::Delay(delay)),
            _ => failure,
        },
    )
}

/// Whether a request method is idempotent (RFC 9110 §9.2.2).
///
/// GET, HEAD, OPTIONS, TRACE, PUT and DELETE: repeating them has the same
/// effect on the server as sending them once, so a client may retry them
/// automatically even when the first attempt may have run. Method names are
/// case-sensitive (§9.1), so only the exact upper-case names match; `get` is
/// a different, unknown method.
///
/// ```
/// use stormguard::classify::http::is_idempotent_method;
///
/// assert!(is_idempotent_method(b"PUT"));
/// assert!(!is_idempotent_method(b"POST"));
/// assert!(!is_idempotent_method(b"get"));
/// ```
pub fn is_idempotent_method(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    use proptest::prelude::*;

    #[test]
    fn status_table() {
        use FailureClass::*;
        for (status, class, replay) in [
            (408, Timeout, Replay::Rejected),
            (429, Overloaded, Replay::Rejected),
            (500, Transient, Replay::Unknown),
            (501, Transient, Replay::Unknown),
            (502, Transient, Replay::Unknown),
            (503, Overloaded, Replay::Unknown),
            (504, Timeout, Replay::Unknown),
            (599, Transient, Replay::Unknown),
            (400, Permanent, Replay::Unknown),
            (401, Permanent, Replay::Unknown),
            (403, Permanent, Replay::Unknown),
            (404, Permanent, Replay::Unknown),
            (405, Permanent, Replay::Unknown),
            (409, Permanent, Replay::Unknown),
            (422, Permanent, Replay::Unknown),
            (499, Permanent, Replay::Unknown),
            (0, Permanent, Replay::Unknown),
            (99, Permanent, Replay::Unknown),
            (600, Permanent, Replay::Unknown),
            (u16::MAX, Permanent, Replay::Unknown),
        ] {
            assert_eq!(class_of(status), Some(class), "{status}");
            assert_eq!(replay_of(status), replay, "{status}");
            assert_eq!(
                failure_for_status(status),
                Some(Failure::new(class, replay)),
                "{status}"
            );
        }
        for status in [100, 101, 200, 204, 304, 399] {
            assert_eq!(class_of(status), None, "{status}");
            assert_eq!(failure_for_status(status), None, "{status}");
        }
    }

    #[test]
    fn usable_in_const() {
        const F: Option<Failure> = failure_for_status(429);
        assert_eq!(F, Some(Failure::overloaded().with_replay(Replay::Rejected)));
    }

    #[test]
    fn response_with_retry_after() {
        let delay = |s| Some(RetryAfter::Delay(Duration::from_secs(s)));
        let hint = |status, value: &[u8], now| {
            failure_for_response(status, Some(value), now).map(|f| f.retry_after())
        };
        assert_eq!(hint(429, b"120", 0), Some(delay(120)));
        assert_eq!(hint(503, b" 7 ", 0), Some(delay(7)));
        assert_eq!(
            hint(503, b"Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 - 5),
            Some(delay(5))
        );
        assert_eq!(hint(503, b"-1", 0), Some(None));
        assert_eq!(hint(503, b"", 0), Some(None));
        assert_eq!(hint(200, b"120", 0), None);
        assert_eq!(hint(301, b"120", 0), None);
        assert_eq!(failure_for_response(503, None, 0), failure_for_status(503));
        let f = failure_for_response(429, Some(b"1"), 0).unwrap();
        assert_eq!(f.replay(), Replay::Rejected);
    }

    #[test]
    fn idempotent_methods() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(is_idempotent_method(m.as_bytes()), "{m}");
        }
        for m in [
            "POST", "PATCH", "CONNECT", "get", "Put", "delete", "", "GET ", " GET", "GETS",
        ] {
            assert!(!is_idempotent_method(m.as_bytes()), "{m}");
        }
    }

    proptest! {
        #[test]
        fn every_status_is_classified(status: u16) {
            let class = class_of(status);
            prop_assert_eq!(class.is_none(), (100..=399).contains(&status));
            prop_assert_eq!(failure_for_status(status).map(|f| f.class()), class);
        }

        #[test]
        fn response_never_panics(
            status: u16,
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            now: u64,
        ) {
            let f = failure_for_response(status, value.as_deref(), now);
            prop_assert_eq!(f.map(|f| f.class()), class_of(status));
        }
    }
}
