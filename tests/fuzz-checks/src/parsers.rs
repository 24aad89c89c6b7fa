//! The parsers of server-controlled text, each against a second
//! implementation written from the standard.
//!
//! The references below are written differently from the core on purpose
//! (fixed layouts instead of a cursor, a year-0 ordinal instead of Hinnant's
//! eras), so a shared mistake is unlikely.

use core::time::Duration;

use arbitrary::Unstructured;
use stormguard::classify::grpc::{parse_pushback, pushback_hint, PushbackError};
use stormguard::classify::http::{failure_for_response, parse_retry_after, RetryAfterError};
use stormguard::{IdempotencyKey, KeyParseError, RetryAfter};

/// Clocks every text is parsed at: the epoch, RFC 9110's example date, a
/// recent date, the last second of year 9999, and the end of `u64`.
const NOWS: [u64; 5] = [0, 784_111_777, 1_780_000_000, 253_402_300_799, u64::MAX];

/// `Retry-After` (RFC 9110 §10.2.3): `parse_retry_after` equals the
/// reference at five clocks, and `failure_for_response` carries what it
/// parsed (or nothing, for a value that does not parse).
///
/// ```
/// stormguard_fuzz_checks::check_retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn check_retry_after(data: &[u8]) {
    for now in NOWS {
        let parsed = parse_retry_after(data, now);
        assert_eq!(
            parsed,
            reference_retry_after(data, now),
            "Retry-After {:?} at {now}",
            String::from_utf8_lossy(data)
        );
        let failure = failure_for_response(503, Some(data), now).expect("503 is a failure");
        match (parsed, failure.retry_after()) {
            (Ok(delay), Some(RetryAfter::Delay(carried))) => {
                // A `Failure` holds whole nanoseconds, saturating near 584 years.
                assert!(carried <= delay);
                if delay.as_nanos() < u128::from(u64::MAX - 2) {
                    assert_eq!(carried, delay);
                }
            }
            (Err(_), None) => {}
            (parsed, carried) => panic!("parsed {parsed:?} but the failure carries {carried:?}"),
        }
    }
}

/// The HTTP-date (RFC 9110 §5.6.7) in its three forms: the input as text
/// (against the reference, at five clocks), then the input as the fields of
/// a date — written in one of the three forms, perhaps with one byte
/// changed, and parsed at an arbitrary clock — whose value, when no byte
/// changed and every field is in range, must be exactly the date's.
///
/// ```
/// stormguard_fuzz_checks::check_http_date(b"Sun Nov  6 08:49:37 1994");
/// ```
pub fn check_http_date(data: &[u8]) {
    for now in NOWS {
        assert_eq!(
            parse_retry_after(data, now),
            reference_retry_after(data, now),
            "HTTP-date {:?} at {now}",
            String::from_utf8_lossy(data)
        );
    }
    let mut u = Unstructured::new(data);
    let Ok(date) = u.arbitrary::<DateFields>() else {
        return;
    };
    let now = match u.int_in_range(0..=5u8).unwrap_or(0) {
        i @ 0..=4 => NOWS[usize::from(i)],
        _ => u.arbitrary().unwrap_or(0),
    };
    let mut text = date.write();
    let changed = match u.arbitrary::<Option<(u8, u8)>>() {
        Ok(Some((at, byte))) if !text.is_empty() => {
            let at = usize::from(at) % text.len();
            text[at] = byte;
            true
        }
        _ => false,
    };
    let parsed = parse_retry_after(&text, now);
    assert_eq!(
        parsed,
        reference_retry_after(&text, now),
        "HTTP-date {:?} at {now}",
        String::from_utf8_lossy(&text)
    );
    if changed || date.form == Form::Rfc850 {
        return; // the RFC 850 year depends on now: the reference covers it
    }
    let year = i64::from(date.year % 10_000);
    let (month, day) = (u32::from(date.month % 12) + 1, u32::from(date.day % 100));
    let (hour, minute, second) = (
        u32::from(date.hour % 100),
        u32::from(date.minute % 100),
        u32::from(date.second % 100),
    );
    let in_range =
        day >= 1 && day <= days_in_month(year, month) && hour <= 23 && minute <= 59 && second <= 60;
    if in_range {
        let secs = (ordinal(year, month, day) - ordinal(1970, 1, 1)) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second);
        let ahead = i128::from(secs) - i128::from(now);
        let expected = Duration::from_secs(u64::try_from(ahead.max(0)).unwrap_or(u64::MAX));
        assert_eq!(parsed, Ok(expected), "{:?}", String::from_utf8_lossy(&text));
    } else {
        assert!(parsed.is_err(), "{:?}", String::from_utf8_lossy(&text));
    }
}

/// `grpc-retry-pushback-ms` (gRPC A6): `parse_pushback` equals the
/// reference, and `pushback_hint` over the values the input holds
/// (separated by commas) is `None` for none, the value's delay or `Stop`
/// for one, and `Stop` for several.
///
/// ```
/// stormguard_fuzz_checks::check_grpc_pushback(b"-1");
/// ```
pub fn check_grpc_pushback(data: &[u8]) {
    let parsed = parse_pushback(data);
    assert_eq!(
        parsed,
        reference_pushback(data),
        "{:?}",
        String::from_utf8_lossy(data)
    );
    if let Ok(delay) = parsed {
        assert!(delay <= Duration::from_millis(i32::MAX as u64));
    }
    let values: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|b| *b == b',').collect()
    };
    let expected = match values.as_slice() {
        [] => None,
        [one] => Some(match reference_pushback(one) {
            Ok(delay) => RetryAfter::Delay(delay),
            Err(_) => RetryAfter::Stop,
        }),
        _ => Some(RetryAfter::Stop),
    };
    let hint = pushback_hint(&values);
    assert_eq!(hint, expected);
    if let Some(hint) = hint {
        // Every pushback fits in a failure exactly.
        assert_eq!(
            stormguard::Failure::transient()
                .with_retry_after(hint)
                .retry_after(),
            Some(hint)
        );
    }
}

/// `IdempotencyKey::parse` (RFC 9562's 8-4-4-4-12 text, any case) equals
/// the reference; a parsed key prints as the input in lower case and parses
/// back to itself; the key of the input's first 16 bytes round-trips too.
///
/// ```
/// stormguard_fuzz_checks::check_idempotency_key(b"1c5a07f2-9b3e-4d21-8f00-0123456789ab");
/// ```
pub fn check_idempotency_key(data: &[u8]) {
    let parsed = IdempotencyKey::parse(data);
    assert_eq!(parsed, reference_key(data));
    if let Ok(text) = core::str::from_utf8(data) {
        assert_eq!(text.parse::<IdempotencyKey>(), parsed);
    }
    match parsed {
        Ok(key) => {
            let ascii = key.to_ascii();
            assert_eq!(ascii.as_slice(), data.to_ascii_lowercase().as_slice());
            assert_eq!(IdempotencyKey::parse(&ascii), Ok(key));
            assert_eq!(key.to_string().as_bytes(), ascii.as_slice());
            assert_eq!(IdempotencyKey::from_u128(key.as_u128()), key);
            let version = (ascii[14] as char).to_digit(16).expect("a hex digit");
            assert_eq!(u32::from(key.version()), version);
        }
        Err(error) => assert!(error.to_string().starts_with("invalid idempotency key: ")),
    }
    let mut bytes = [0u8; 16];
    for (slot, byte) in bytes.iter_mut().zip(data) {
        *slot = *byte;
    }
    let key = IdempotencyKey::from_bytes(bytes);
    assert_eq!(key.to_bytes(), bytes);
    assert_eq!(IdempotencyKey::parse(&key.to_ascii()), Ok(key));
}

/// The fields of an HTTP-date, each a little wider than its range so that
/// out-of-range values are written too.
#[derive(arbitrary::Arbitrary, Debug)]
struct DateFields {
    form: Form,
    weekday: u8,
    day: u8,
    month: u8,
    year: u16,
    hour: u8,
    minute: u8,
    second: u8,
}

#[derive(arbitrary::Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    ImfFixdate,
    Rfc850,
    Asctime,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl DateFields {
    fn write(&self) -> Vec<u8> {
        let weekday = usize::from(self.weekday % 7);
        let month = MONTHS[usize::from(self.month % 12)];
        let (day, hour, minute, second) = (
            self.day % 100,
            self.hour % 100,
            self.minute % 100,
            self.second % 100,
        );
        let time = format!("{hour:02}:{minute:02}:{second:02}");
        match self.form {
            Form::ImfFixdate => format!(
                "{}, {day:02} {month} {:04} {time} GMT",
                DAYS[weekday],
                self.year % 10_000
            ),
            Form::Rfc850 => format!(
                "{}, {day:02}-{month}-{:02} {time} GMT",
                LONG_DAYS[weekday],
                self.year % 100
            ),
            Form::Asctime => format!(
                "{} {month} {day:>2} {time} {:04}",
                DAYS[weekday],
                self.year % 10_000
            ),
        }
        .into_bytes()
    }
}

/// RFC 9110 §10.2.3, written from the grammar: optional whitespace,
/// then `delay-seconds` (saturating) or an HTTP-date.
fn reference_retry_after(value: &[u8], now: u64) -> Result<Duration, RetryAfterError> {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let Some(start) = start else {
        return Err(RetryAfterError::Empty);
    };
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(value.len(), |i| i + 1);
    let value = &value[start..end];
    if value[0].is_ascii_digit() {
        if !value.iter().all(u8::is_ascii_digit) {
            return Err(RetryAfterError::InvalidSyntax);
        }
        let mut secs: u128 = 0;
        for digit in value {
            secs = (secs * 10 + u128::from(digit - b'0')).min(u128::from(u64::MAX));
        }
        return Ok(Duration::from_secs(secs as u64));
    }
    let date = reference_http_date(value, now)?;
    let ahead = date - i128::from(now);
    Ok(Duration::from_secs(
        u64::try_from(ahead.max(0)).unwrap_or(u64::MAX),
    ))
}

/// RFC 9110 §5.6.7: the three layouts, position by position; the seconds
/// since the epoch of the date.
fn reference_http_date(value: &[u8], now: u64) -> Result<i128, RetryAfterError> {
    use RetryAfterError::{InvalidDate, InvalidSyntax};
    let text = core::str::from_utf8(value).map_err(|_| InvalidSyntax)?;
    // Every layout is ASCII; checking it first also keeps the fixed-position
    // slices below on character boundaries (a multi-byte character in the
    // middle made this reference panic: found by the fuzzer, replayed from
    // fuzz/corpus/http_date/non-ascii-in-rfc850-time).
    if !text.is_ascii() {
        return Err(InvalidSyntax);
    }
    let digits = |s: &str| -> Result<u32, RetryAfterError> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| InvalidSyntax)
        } else {
            Err(InvalidSyntax)
        }
    };
    let month_of = |s: &str| -> Result<u32, RetryAfterError> {
        MONTHS
            .iter()
            .position(|m| *m == s)
            .map(|i| i as u32 + 1)
            .ok_or(InvalidSyntax)
    };
    // "hh:mm:ss"
    let time_of = |s: &str| -> Result<(u32, u32, u32), RetryAfterError> {
        let b = s.as_bytes();
        if b.len() != 8 || b[2] != b':' || b[5] != b':' {
            return Err(InvalidSyntax);
        }
        Ok((digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?))
    };
    let slice = |from: usize, to: usize| text.get(from..to).ok_or(InvalidSyntax);
    let (year, month, day, (hour, minute, second), two_digit_year) =
        if let Some(long) = LONG_DAYS.iter().find(|d| text.starts_with(*d)) {
            // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
            let rest = &text[long.len()..];
            let b = rest.as_bytes();
            if b.len() != 24
                || &rest[0..2] != ", "
                || b[4] != b'-'
                || b[8] != b'-'
                || b[11] != b' '
                || &rest[20..24] != " GMT"
            {
                return Err(InvalidSyntax);
            }
            let day = digits(&rest[2..4])?;
            let month = month_of(&rest[5..8])?;
            let yy = digits(&rest[9..11])?;
            (i64::from(yy), month, day, time_of(&rest[12..20])?, true)
        } else if DAYS.iter().any(|d| text.starts_with(*d)) {
            if text.get(3..5) == Some(", ") {
                // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
                let b = text.as_bytes();
                if b.len() != 29 || b[7] != b' ' || b[11] != b' ' || b[16] != b' ' {
                    return Err(InvalidSyntax);
                }
                if slice(25, 29)? != " GMT" {
                    return Err(InvalidSyntax);
                }
                (
                    i64::from(digits(slice(12, 16)?)?),
                    month_of(slice(8, 11)?)?,
                    digits(slice(5, 7)?)?,
                    time_of(slice(17, 25)?)?,
                    false,
                )
            } else {
                // asctime-date: "Sun Nov  6 08:49:37 1994"
                let b = text.as_bytes();
                if b.len() != 24 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' || b[19] != b' ' {
                    return Err(InvalidSyntax);
                }
                let day = match (b[8], b[9]) {
                    (b' ', _) => digits(slice(9, 10)?)?,
                    _ => digits(slice(8, 10)?)?,
                };
                (
                    i64::from(digits(slice(20, 24)?)?),
                    month_of(slice(4, 7)?)?,
                    day,
                    time_of(slice(11, 19)?)?,
                    false,
                )
            }
        } else {
            return Err(InvalidSyntax);
        };
    let year = if two_digit_year {
        // The latest year ending in these digits that is not more than 50
        // years after now (by the calendar, to the second).
        let (now_year, now_month, now_day) = civil(now / 86_400);
        let now_secs = now % 86_400;
        let limit = now_year + 50;
        let mut candidate = limit - (limit - year).rem_euclid(100);
        let later = (month, day, hour, minute, second)
            > (
                now_month,
                now_day,
                (now_secs / 3600) as u32,
                (now_secs / 60 % 60) as u32,
                (now_secs % 60) as u32,
            );
        if candidate == limit && later {
            candidate -= 100;
        }
        candidate
    } else {
        year
    };
    if !(1..=days_in_month(year, month)).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err(InvalidDate);
    }
    let days = i128::from(ordinal(year, month, day) - ordinal(1970, 1, 1));
    Ok(days * 86_400 + i128::from(hour * 3600 + minute * 60 + second))
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if month == 2 && is_leap(year) {
        29
    } else {
        DAYS[(month - 1) as usize]
    }
}

/// Days from 1 January of year 0 to 1 January of `year` (`year` ≥ 0):
/// year 0 is a leap year in the proleptic Gregorian calendar.
fn days_before_year(year: i64) -> i64 {
    if year == 0 {
        return 0;
    }
    let y = year - 1;
    365 * year + y / 4 - y / 100 + y / 400 + 1
}

/// Days from 1 January of year 0 to the date.
fn ordinal(year: i64, month: u32, day: u32) -> i64 {
    let before_month: i64 = (1..month).map(|m| i64::from(days_in_month(year, m))).sum();
    days_before_year(year) + before_month + i64::from(day) - 1
}

/// The date `days` days after 1 January 1970.
fn civil(days: u64) -> (i64, u32, u32) {
    let target = days as i64 + ordinal(1970, 1, 1);
    let mut year = target * 400 / 146_097;
    while days_before_year(year) > target {
        year -= 1;
    }
    while days_before_year(year + 1) <= target {
        year += 1;
    }
    let mut left = target - days_before_year(year);
    let mut month = 1;
    while left >= i64::from(days_in_month(year, month)) {
        left -= i64::from(days_in_month(year, month));
        month += 1;
    }
    (year, month, left as u32 + 1)
}

/// gRPC A6: an ASCII decimal int32, an optional `-` and nothing else.
fn reference_pushback(value: &[u8]) -> Result<Duration, PushbackError> {
    let (negative, digits) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(PushbackError::Malformed);
    }
    let mut magnitude: u64 = 0;
    for digit in digits {
        magnitude = (magnitude * 10 + u64::from(digit - b'0')).min(1 << 40);
    }
    match (negative, magnitude) {
        (_, 0) => Ok(Duration::ZERO),
        (false, ms) if ms <= i32::MAX as u64 => Ok(Duration::from_millis(ms)),
        (true, ms) if ms <= 1 << 31 => Err(PushbackError::Negative),
        _ => Err(PushbackError::Malformed),
    }
}

/// RFC 9562 §4: 36 characters, hyphens at 8, 13, 18 and 23, hex digits in
/// either case elsewhere; the first wrong byte is the error.
fn reference_key(text: &[u8]) -> Result<IdempotencyKey, KeyParseError> {
    if text.len() != 36 {
        return Err(KeyParseError::Length { found: text.len() });
    }
    let mut hex = String::new();
    for (at, byte) in text.iter().enumerate() {
        if [8, 13, 18, 23].contains(&at) {
            if *byte != b'-' {
                return Err(KeyParseError::Hyphen { at });
            }
        } else if byte.is_ascii_hexdigit() {
            hex.push(char::from(*byte));
        } else {
            return Err(KeyParseError::NotHex { at });
        }
    }
    let bits = u128::from_str_radix(&hex, 16).expect("32 hex digits");
    Ok(IdempotencyKey::from_u128(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_references_agree_with_the_rfc_examples() {
        let now = 784_111_777 - 30;
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                reference_retry_after(date.as_bytes(), now),
                Ok(Duration::from_secs(30)),
                "{date}"
            );
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(784_111_777 / 86_400), (1994, 11, 6));
        assert_eq!(civil(253_402_300_799 / 86_400), (9999, 12, 31));
        assert_eq!(
            reference_pushback(b"2147483648"),
            Err(PushbackError::Malformed)
        );
    }
}
