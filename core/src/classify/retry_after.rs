//! The HTTP `Retry-After` field (RFC 9110 §10.2.3).
//!
//! ```text
//! Retry-After  = HTTP-date / delay-seconds
//! delay-seconds = 1*DIGIT
//! HTTP-date    = IMF-fixdate / obs-date                 ; §5.6.7
//! IMF-fixdate  = day-name "," SP day SP month SP year SP time-of-day SP "GMT"
//! rfc850-date  = day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP "GMT"
//! asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
//! ```

use core::fmt;
use core::time::Duration;

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
            let ahead = http_date(value, now_unix_secs)? - i128::from(now_unix_secs);
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

// Names are case-sensitive: the grammar writes them as %s"…" (RFC 9110 §5.6.7).
const DAY_NAMES: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const DAY_NAMES_LONG: [&[u8]; 7] = [
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
    b"Sunday",
];
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The unparsed rest of the input; every step consumes only on success.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn tag(&mut self, tag: &[u8]) -> Result<(), RetryAfterError> {
        let rest = self
            .0
            .strip_prefix(tag)
            .ok_or(RetryAfterError::InvalidSyntax)?;
        self.0 = rest;
        Ok(())
    }

    /// The 1-based position of the name in `names` that the input starts with.
    fn name(&mut self, names: &[&[u8]]) -> Result<u32, RetryAfterError> {
        let mut position = 0;
        for name in names {
            position += 1;
            if self.tag(name).is_ok() {
                return Ok(position);
            }
        }
        Err(RetryAfterError::InvalidSyntax)
    }

    fn digits(&mut self, count: usize) -> Result<u32, RetryAfterError> {
        let (digits, rest) = self
            .0
            .split_at_checked(count)
            .ok_or(RetryAfterError::InvalidSyntax)?;
        let value = digits.iter().try_fold(0u32, |acc, &b| match b {
            // At most 4 digits are ever asked for, so this cannot overflow.
            b'0'..=b'9' => Ok(acc * 10 + u32::from(b - b'0')),
            _ => Err(RetryAfterError::InvalidSyntax),
        })?;
        self.0 = rest;
        Ok(value)
    }

    fn time_of_day(&mut self) -> Result<(u32, u32, u32), RetryAfterError> {
        let hour = self.digits(2)?;
        self.tag(b":")?;
        let minute = self.digits(2)?;
        self.tag(b":")?;
        let second = self.digits(2)?;
        Ok((hour, minute, second))
    }

    fn end(&self) -> Result<(), RetryAfterError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(RetryAfterError::InvalidSyntax)
        }
    }
}

/// A civil date and time in UTC, as parsed: fields are not yet range-checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DateTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl DateTime {
    /// Seconds since the Unix epoch. i128 because an RFC 850 year is chosen
    /// relative to `now`, and any `u64` `now` must work.
    fn unix_secs(&self) -> Result<i128, RetryAfterError> {
        let valid = (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            // 60 is a leap second; it simply counts as the next minute's 00.
            && self.second <= 60;
        if !valid {
            return Err(RetryAfterError::InvalidDate);
        }
        let secs_of_day = self.hour * 3600 + self.minute * 60 + self.second;
        Ok(
            i128::from(days_from_civil(self.year, self.month, self.day)) * 86_400
                + i128::from(secs_of_day),
        )
    }
}

/// Parses an HTTP-date into seconds since the Unix epoch.
fn http_date(value: &[u8], now_unix_secs: u64) -> Result<i128, RetryAfterError> {
    let mut c = Cursor(value);
    // The long names start with the short ones, so they are tried first.
    // The weekday is parsed but not checked against the date: the grammar
    // does not tie them together and nothing is gained by refusing.
    let date = if c.name(&DAY_NAMES_LONG).is_ok() {
        c.tag(b", ")?;
        let day = c.digits(2)?;
        c.tag(b"-")?;
        let month = c.name(&MONTHS)?;
        c.tag(b"-")?;
        let yy = c.digits(2)?;
        c.tag(b" ")?;
        let (hour, minute, second) = c.time_of_day()?;
        c.tag(b" GMT")?;
        let mut date = DateTime {
            year: 0,
            month,
            day,
            hour,
            minute,
            second,
        };
        date.year = rfc850_year(yy, &date, now_unix_secs);
        date
    } else {
        c.name(&DAY_NAMES)?;
        if c.tag(b", ").is_ok() {
            let day = c.digits(2)?;
            c.tag(b" ")?;
            let month = c.name(&MONTHS)?;
            c.tag(b" ")?;
            let year = c.digits(4)?;
            c.tag(b" ")?;
            let (hour, minute, second) = c.time_of_day()?;
            c.tag(b" GMT")?;
            DateTime {
                year: i64::from(year),
                month,
                day,
                hour,
                minute,
                second,
            }
        } else {
            c.tag(b" ")?;
            let month = c.name(&MONTHS)?;
            c.tag(b" ")?;
            let day = if c.tag(b" ").is_ok() {
                c.digits(1)?
            } else {
                c.digits(2)?
            };
            c.tag(b" ")?;
            let (hour, minute, second) = c.time_of_day()?;
            c.tag(b" ")?;
            let year = c.digits(4)?;
            DateTime {
                year: i64::from(year),
                month,
                day,
                hour,
                minute,
                second,
            }
        }
    };
    c.end()?;
    date.unix_secs()
}

/// The full year of an RFC 850 date: the latest year ending in `yy` that does
/// not put the date more than 50 years after now (RFC 9110 §5.6.7).
fn rfc850_year(yy: u32, date: &DateTime, now_unix_secs: u64) -> i64 {
    // u64::MAX / 86_400 < 2^48: lossless.
    let (now_year, now_month, now_day) = civil_from_days((now_unix_secs / 86_400) as i64);
    let now_secs = (now_unix_secs % 86_400) as u32;
    let limit = now_year + 50;
    let mut year = limit - (limit - i64::from(yy)).rem_euclid(100);
    let later_in_year = (date.month, date.day, date.hour, date.minute, date.second)
        > (
            now_month,
            now_day,
            now_secs / 3600,
            now_secs / 60 % 60,
            now_secs % 60,
        );
    if year == limit && later_in_year {
        year -= 100;
    }
    year
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`): counting from 1 March makes the leap day the last day
/// of the "year", and 400-year eras make the arithmetic exact for any year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both are small and non-negative by construction.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::format;
    use std::string::{String, ToString};

    /// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example.
    const RFC_EXAMPLE: u64 = 784_111_777;
    const DAY: u64 = 86_400;

    fn secs(s: u64) -> Result<Duration, RetryAfterError> {
        Ok(Duration::from_secs(s))
    }

    /// Seconds since the epoch of a date, via the parser itself (now = 0).
    fn at(date: &str) -> u64 {
        parse_retry_after(date, 0).unwrap().as_secs()
    }

    fn imf_fixdate(ts: u64) -> String {
        let (year, month, day) = civil_from_days((ts / DAY) as i64);
        let weekday = ((ts / DAY + 3) % 7) as usize; // 1970-01-01 was a Thursday
        let sod = ts % DAY;
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            std::str::from_utf8(DAY_NAMES[weekday]).unwrap(),
            day,
            std::str::from_utf8(MONTHS[month as usize - 1]).unwrap(),
            year,
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }

    #[test]
    fn rfc_examples_agree() {
        let now = RFC_EXAMPLE - 100;
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
        ] {
            assert_eq!(parse_retry_after(date, now), secs(100), "{date}");
        }
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), RFC_EXAMPLE);
        assert_eq!(at("Thu, 01 Jan 1970 00:00:01 GMT"), 1);
        assert_eq!(at("Fri, 31 Dec 9999 23:59:59 GMT"), 253_402_300_799);
        assert_eq!(at("Tue Nov 16 08:49:37 1994"), RFC_EXAMPLE + 10 * DAY);
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
            ("Sun, 06 Nov 1994 08:49:37 UTC", InvalidSyntax),
            ("Sun, 06 Nov 1994 08:49:37 gmt", InvalidSyntax),
            ("Sun, 06 Nov 1994 08:49:37", InvalidSyntax),
            ("Sun, 06 Nov 1994 08:49:37 GMT x", InvalidSyntax),
            ("Sun, 06 nov 1994 08:49:37 GMT", InvalidSyntax),
            ("Sun, 06 NOV 1994 08:49:37 GMT", InvalidSyntax),
            ("sun, 06 Nov 1994 08:49:37 GMT", InvalidSyntax),
            ("Sum, 06 Nov 1994 08:49:37 GMT", InvalidSyntax),
            ("Sun, 6 Nov 1994 08:49:37 GMT", InvalidSyntax),
            ("Sun,  06 Nov 1994 08:49:37 GMT", InvalidSyntax),
            ("Sun, 06 Nov 94 08:49:37 GMT", InvalidSyntax),
            ("Sun, 06 Nov 1994 8:49:37 GMT", InvalidSyntax),
            ("Sun, 06 Nov 1994 08:49 GMT", InvalidSyntax),
            ("Sun, 06 Nov 1994 08:49:37 +0000", InvalidSyntax),
            ("Sun, 06-Nov-94 08:49:37 GMT", InvalidSyntax),
            ("Sunday, 06 Nov 1994 08:49:37 GMT", InvalidSyntax),
            ("Sunday, 06-Nov-1994 08:49:37 GMT", InvalidSyntax),
            ("Sun Nov 6 08:49:37 1994", InvalidSyntax),
            ("Sun Nov  6 08:49:37 1994 GMT", InvalidSyntax),
            ("Sun Nov  6 08:49:37 94", InvalidSyntax),
            ("Sun, 31 Feb 1994 08:49:37 GMT", InvalidDate),
            ("Sun, 00 Nov 1994 08:49:37 GMT", InvalidDate),
            ("Sun, 31 Nov 1994 08:49:37 GMT", InvalidDate),
            ("Sun, 06 Nov 1994 24:00:00 GMT", InvalidDate),
            ("Sun, 06 Nov 1994 08:60:00 GMT", InvalidDate),
            ("Sun, 06 Nov 1994 08:49:61 GMT", InvalidDate),
            ("Sunday, 32-Nov-94 08:49:37 GMT", InvalidDate),
            ("Sun Nov  0 08:49:37 1994", InvalidDate),
        ] {
            assert_eq!(parse_retry_after(value, 0), Err(error), "{value:?}");
        }
    }

    #[test]
    fn lenient_where_the_grammar_is() {
        // A weekday that does not match the date is still a valid HTTP-date.
        assert_eq!(at("Mon, 06 Nov 1994 08:49:37 GMT"), RFC_EXAMPLE);
        // A leap second counts as the next minute.
        assert_eq!(at("Sun, 06 Nov 1994 08:49:60 GMT"), RFC_EXAMPLE + 23);
        // Year 0000 is a valid 4DIGIT year, just long past.
        assert_eq!(
            parse_retry_after("Sat, 01 Jan 0000 00:00:00 GMT", 0),
            secs(0)
        );
    }

    #[test]
    fn past_dates_mean_now() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE), secs(0));
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE + 1), secs(0));
        assert_eq!(parse_retry_after(date, u64::MAX), secs(0));
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE - 1), secs(1));
    }

    #[test]
    fn leap_years() {
        assert_eq!(
            at("Tue, 29 Feb 2000 00:00:00 GMT"),
            at("Tue, 28 Feb 2000 00:00:00 GMT") + DAY
        );
        assert_eq!(
            at("Thu, 29 Feb 2024 12:00:00 GMT"),
            at("Fri, 01 Mar 2024 12:00:00 GMT") - DAY
        );
        for date in [
            "Thu, 29 Feb 1900 00:00:00 GMT",
            "Wed, 29 Feb 2023 00:00:00 GMT",
            "Mon, 29 Feb 2100 00:00:00 GMT",
        ] {
            assert_eq!(
                parse_retry_after(date, 0),
                Err(RetryAfterError::InvalidDate),
                "{date}"
            );
        }
    }

    #[test]
    fn rfc850_fifty_year_rule() {
        // now = Sun, 06 Nov 1994 08:49:37 GMT; the limit is 06 Nov 2044 08:49:37.
        let now = RFC_EXAMPLE;
        let future = |d: &str| parse_retry_after(d, now).unwrap().as_secs() + now;
        assert_eq!(
            future("Monday, 01-Jan-35 00:00:00 GMT"),
            at("Mon, 01 Jan 2035 00:00:00 GMT")
        );
        assert_eq!(
            future("Sunday, 06-Nov-44 08:49:37 GMT"),
            at("Sun, 06 Nov 2044 08:49:37 GMT")
        );
        // One second past the limit: the most recent past year ending in 44.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-44 08:49:38 GMT", now),
            secs(0)
        );
        assert_eq!(
            parse_retry_after("Friday, 01-Jan-95 00:00:00 GMT", now),
            secs(at("Sun, 01 Jan 1995 00:00:00 GMT") - now)
        );
        // 29 Feb in a year ending in 00: leap in 2000, not in 1900 or 2100.
        let in_2000 = at("Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            parse_retry_after("Tuesday, 29-Feb-00 00:00:00 GMT", now),
            secs(in_2000 - now)
        );
        let now_2080 = at("Mon, 01 Jan 2080 00:00:00 GMT");
        assert_eq!(
            parse_retry_after("Monday, 29-Feb-00 00:00:00 GMT", now_2080),
            Err(RetryAfterError::InvalidDate)
        );
        // Huge `now`: the chosen year is far beyond 9999, without overflow.
        let ahead = parse_retry_after("Monday, 01-Jan-00 00:00:00 GMT", u64::MAX).unwrap();
        assert!(ahead <= Duration::from_secs(50 * 366 * DAY));
    }

    #[test]
    fn civil_conversions_match_a_day_count() {
        let mut days = 0;
        for year in 1970..2500 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(year, month, day), days);
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
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
        fn never_panics_on_date_shapes(
            name in "(Sun|Sunday|Mon)",
            sep in "(, | )",
            rest in "[0-9A-Za-z :-]{0,30}",
            now: u64,
        ) {
            let _ = parse_retry_after(format!("{name}{sep}{rest}"), now);
        }

        #[test]
        fn imf_fixdate_round_trips(ts in 0u64..=253_402_300_799, now: u64) {
            let parsed = parse_retry_after(imf_fixdate(ts), now);
            prop_assert_eq!(parsed, secs(ts.saturating_sub(now)));
        }

        #[test]
        fn other_forms_agree_with_imf_fixdate(
            ts in 0u64..=253_402_300_799,
            back in 0u64..=49 * 365 * DAY,
        ) {
            let now = ts.saturating_sub(back);
            let imf = imf_fixdate(ts);
            // "Sun, 06 Nov 1994 08:49:37 GMT" → the other two layouts.
            let (name, day, month, year, time) =
                (&imf[0..3], &imf[5..7], &imf[8..11], &imf[12..16], &imf[17..25]);
            let long = std::str::from_utf8(DAY_NAMES_LONG[DAY_NAMES
                .iter()
                .position(|n| *n == name.as_bytes())
                .unwrap()])
            .unwrap();
            let rfc850 = format!("{long}, {day}-{month}-{} {time} GMT", &year[2..]);
            let asctime_day = day.trim_start_matches('0');
            let asctime = format!("{name} {month} {asctime_day:>2} {time} {year}");
            let expected = parse_retry_after(&imf, now);
            prop_assert_eq!(parse_retry_after(&rfc850, now), expected, "{}", rfc850);
            prop_assert_eq!(parse_retry_after(&asctime, now), expected, "{}", asctime);
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
