//! The HTTP `Retry-After` field (RFC 9110 §10.2.3).
//!
//! ```text
//! Retry-After   = HTTP-date / delay-seconds
//! delay-seconds = 1*DIGIT
//! ```
//!
//! The HTTP-date forms (§5.6.7) are parsed by the sibling module `http_date`.

use core::fmt;
use core::time::Duration;

use super::http_date::{parse_http_date, HttpDateError};

/// Why a `Retry-After` value was not understood.
///
/// The value is a hint, so callers usually ignore it on error (as
/// [`failure_for_response`](crate::classify::http::failure_for_response)
/// does); the variants exist for logging and metrics.
///
/// ```
/// use stormguard::classify::http::{parse_retry_after, RetryAfterError};
/// assert_eq!(parse_retry_after(" ", 0), Err(RetryAfterError::Empty));
/// assert_eq!(parse_retry_after("soon", 0), Err(RetryAfterError::InvalidSyntax));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryAfterError {
    /// The value is empty or only whitespace.
    Empty,
    /// The value matches neither `delay-seconds` nor any of the three
    /// HTTP-date forms: a sign, a fraction, a unit, an unknown day or month
    /// name, wrong case or spacing, or a zone other than `GMT`.
    InvalidSyntax,
    /// The value has the shape of an HTTP-date but a field is out of range:
    /// a day the month does not have (31 Feb, 29 Feb of a common year), an
    /// hour above 23, a minute above 59 or a second above 60.
    InvalidDate,
}

impl fmt::Display for RetryAfterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryAfterError::Empty => "empty Retry-After value",
            RetryAfterError::InvalidSyntax => {
                "Retry-After value is neither delay-seconds nor an HTTP-date"
            }
            RetryAfterError::InvalidDate => "Retry-After HTTP-date has a field out of range",
        })
    }
}

impl core::error::Error for RetryAfterError {}

/// Parses a `Retry-After` value into the delay it asks for.
///
/// Follows RFC 9110 §10.2.3: the value is either `delay-seconds` (a run of
/// ASCII digits, no sign or fraction) or an HTTP-date in any of the three
/// forms a recipient must accept (§5.6.7): IMF-fixdate, the obsolete RFC 850
/// form and asctime. Optional whitespace around the value is trimmed, as for
/// any field value (§5.5).
///
/// `now_unix_secs` is the caller's current time in seconds since the Unix
/// epoch; it turns a date into a delay, and picks the century of an RFC 850
/// two-digit year (a date that would be more than 50 years in the future
/// means the latest past year with those digits). A date at or before `now`
/// gives [`Duration::ZERO`].
///
/// Huge `delay-seconds` saturate at `u64::MAX` seconds instead of failing:
/// the number is still a valid "wait very long", and the policy's
/// `max_server_delay` bounds it.
///
/// ```
/// use core::time::Duration;
/// use stormguard::classify::http::parse_retry_after;
///
/// assert_eq!(parse_retry_after("120", 0), Ok(Duration::from_secs(120)));
/// // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
/// let now = 784_111_777 - 30;
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after(b"Sunday, 06-Nov-94 08:49:37 GMT", now), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), Ok(Duration::from_secs(30)));
/// assert!(parse_retry_after("1.5", 0).is_err());
/// ```
pub fn parse_retry_after(
    value: impl AsRef<[u8]>,
    now_unix_secs: u64,
) -> Result<Duration, RetryAfterError> {
    let value = trim_ows(value.as_ref());
    match value.first() {
        None => Err(RetryAfterError::Empty),
        // An HTTP-date always starts with a day name, so a digit decides.
        Some(b) if b.is_ascii_digit() => delay_seconds(value).map(Duration::from_secs),
        Some(_) => {
            let date = parse_http_date(value, now_unix_secs).map_err(|error| match error {
                HttpDateError::InvalidSyntax => RetryAfterError::InvalidSyntax,
                HttpDateError::InvalidDate => RetryAfterError::InvalidDate,
            })?;
            let ahead = date - i128::from(now_unix_secs);
            Ok(if ahead <= 0 {
                Duration::ZERO
            } else {
                Duration::from_secs(u64::try_from(ahead).unwrap_or(u64::MAX))
            })
        }
    }
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

fn delay_seconds(digits: &[u8]) -> Result<u64, RetryAfterError> {
    digits.iter().try_fold(0u64, |acc, &b| match b {
        b'0'..=b'9' => Ok(acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))),
        _ => Err(RetryAfterError::InvalidSyntax),
    })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;

    /// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example.
    const RFC_EXAMPLE: u64 = 784_111_777;

    fn secs(s: u64) -> Result<Duration, RetryAfterError> {
        Ok(Duration::from_secs(s))
    }

    #[test]
    fn every_date_form_becomes_a_delay() {
        let now = RFC_EXAMPLE - 100;
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            " \tSun, 06 Nov 1994 08:49:37 GMT\t ",
        ] {
            assert_eq!(parse_retry_after(date, now), secs(100), "{date:?}");
        }
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0),
            secs(253_402_300_799)
        );
    }

    #[test]
    fn delay_seconds_forms() {
        assert_eq!(parse_retry_after("0", 0), secs(0));
        assert_eq!(parse_retry_after("120", 0), secs(120));
        assert_eq!(parse_retry_after(" \t 120 \t", 0), secs(120));
        assert_eq!(parse_retry_after("007", u64::MAX), secs(7));
        assert_eq!(parse_retry_after("18446744073709551615", 0), secs(u64::MAX));
        assert_eq!(parse_retry_after("18446744073709551616", 0), secs(u64::MAX));
        assert_eq!(parse_retry_after("9".repeat(1000), 0), secs(u64::MAX));
    }

    #[test]
    fn rejects_garbage() {
        use RetryAfterError::*;
        for (value, error) in [
            ("", Empty),
            ("  \t ", Empty),
            ("-1", InvalidSyntax),
            ("+5", InvalidSyntax),
            ("1.5", InvalidSyntax),
            ("12a", InvalidSyntax),
            ("12 s", InvalidSyntax),
            ("1 2", InvalidSyntax),
            ("120\r\n", InvalidSyntax),
            // The HTTP-date parser's two errors, passed through.
            ("Sun, 06 Nov 1994 08:49:37 UTC", InvalidSyntax),
            ("Sunday, 06 Nov 1994 08:49:37 GMT", InvalidSyntax),
            ("Sun, 31 Feb 1994 08:49:37 GMT", InvalidDate),
            ("Sun Nov  0 08:49:37 1994", InvalidDate),
        ] {
            assert_eq!(parse_retry_after(value, 0), Err(error), "{value:?}");
        }
    }

    #[test]
    fn past_dates_mean_now() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE), secs(0));
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE + 1), secs(0));
        assert_eq!(parse_retry_after(date, u64::MAX), secs(0));
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE - 1), secs(1));
        // Year 0000 is a valid 4DIGIT year, just long past.
        assert_eq!(
            parse_retry_after("Sat, 01 Jan 0000 00:00:00 GMT", 0),
            secs(0)
        );
    }

    #[test]
    fn rfc850_years_are_read_relative_to_now() {
        // now = Sun, 06 Nov 1994 08:49:37 GMT: "44" is 2044 up to 50 years
        // ahead, and 1944 one second past that.
        let now = RFC_EXAMPLE;
        let fifty_years = 18_263 * 86_400;
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-44 08:49:37 GMT", now),
            secs(fifty_years)
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-44 08:49:38 GMT", now),
            secs(0)
        );
        // Huge `now`: the chosen year is far beyond 9999, without overflow.
        let ahead = parse_retry_after("Monday, 01-Jan-00 00:00:00 GMT", u64::MAX).unwrap();
        assert!(ahead <= Duration::from_secs(50 * 366 * 86_400));
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            RetryAfterError::InvalidDate.to_string(),
            "Retry-After HTTP-date has a field out of range"
        );
        let error: &dyn core::error::Error = &RetryAfterError::Empty;
        assert_eq!(error.to_string(), "empty Retry-After value");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), now: u64) {
            let _ = parse_retry_after(&bytes, now);
        }

        #[test]
        fn digit_strings_parse_to_their_value(digits in "[0-9]{1,40}", now: u64) {
            let significant = digits.trim_start_matches('0');
            let expected = match significant.len() {
                0 => 0,
                1..=20 => significant.parse::<u128>().unwrap().min(u128::from(u64::MAX)) as u64,
                _ => u64::MAX,
            };
            prop_assert_eq!(parse_retry_after(&digits, now), secs(expected));
        }
    }
}
