//! The HTTP-date (RFC 9110 §5.6.7) and the calendar arithmetic behind it.
//!
//! ```text
//! HTTP-date    = IMF-fixdate / obs-date
//! IMF-fixdate  = day-name "," SP day SP month SP year SP time-of-day SP "GMT"
//! rfc850-date  = day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP "GMT"
//! asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
//! ```
//!
//! A recipient must accept all three forms. Dates are proleptic Gregorian in
//! UTC, so the arithmetic is exact for any 4-digit year and never reads a
//! clock: the one thing that depends on "now", the century of an RFC 850
//! two-digit year, takes `now` as a parameter.

/// Why a value is not an HTTP-date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpDateError {
    /// The value matches none of the three forms: an unknown day or month
    /// name, wrong case or spacing, a missing field, or a zone other than
    /// `GMT`.
    InvalidSyntax,
    /// The value has the shape of an HTTP-date but a field is out of range.
    InvalidDate,
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

/// Parses an HTTP-date in any of its three forms into seconds since the Unix
/// epoch (negative before 1970).
///
/// `now_unix_secs` picks the century of an RFC 850 two-digit year: the latest
/// year with those digits that does not put the date more than 50 years after
/// `now` (§5.6.7). The weekday is parsed but not checked against the date:
/// the grammar does not tie them together, and nothing is gained by refusing.
/// A leap second (`:60`) counts as the next minute's `:00`.
///
/// The result is an `i128` because the RFC 850 year is chosen relative to
/// `now`, and any `u64` `now` must work without overflow.
pub(crate) fn parse_http_date(value: &[u8], now_unix_secs: u64) -> Result<i128, HttpDateError> {
    let mut c = Cursor(value);
    // The long names start with the short ones, so they are tried first.
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

/// The unparsed rest of the input; every step consumes only on success.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn tag(&mut self, tag: &[u8]) -> Result<(), HttpDateError> {
        let rest = self
            .0
            .strip_prefix(tag)
            .ok_or(HttpDateError::InvalidSyntax)?;
        self.0 = rest;
        Ok(())
    }

    /// The 1-based position of the name in `names` that the input starts with.
    fn name(&mut self, names: &[&[u8]]) -> Result<u32, HttpDateError> {
        let mut position = 0;
        for name in names {
            position += 1;
            if self.tag(name).is_ok() {
                return Ok(position);
            }
        }
        Err(HttpDateError::InvalidSyntax)
    }

    fn digits(&mut self, count: usize) -> Result<u32, HttpDateError> {
        let (digits, rest) = self
            .0
            .split_at_checked(count)
            .ok_or(HttpDateError::InvalidSyntax)?;
        let value = digits.iter().try_fold(0u32, |acc, &b| match b {
            // At most 4 digits are ever asked for, so this cannot overflow.
            b'0'..=b'9' => Ok(acc * 10 + u32::from(b - b'0')),
            _ => Err(HttpDateError::InvalidSyntax),
        })?;
        self.0 = rest;
        Ok(value)
    }

    fn time_of_day(&mut self) -> Result<(u32, u32, u32), HttpDateError> {
        let hour = self.digits(2)?;
        self.tag(b":")?;
        let minute = self.digits(2)?;
        self.tag(b":")?;
        let second = self.digits(2)?;
        Ok((hour, minute, second))
    }

    fn end(&self) -> Result<(), HttpDateError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(HttpDateError::InvalidSyntax)
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
    /// Seconds since the Unix epoch, once every field is checked.
    fn unix_secs(&self) -> Result<i128, HttpDateError> {
        let valid = (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            // 60 is a leap second; it simply counts as the next minute's 00.
            && self.second <= 60;
        if !valid {
            return Err(HttpDateError::InvalidDate);
        }
        let secs_of_day = self.hour * 3600 + self.minute * 60 + self.second;
        Ok(
            i128::from(days_from_civil(self.year, self.month, self.day)) * 86_400
                + i128::from(secs_of_day),
        )
    }
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
    use std::string::String;

    /// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example.
    const RFC_EXAMPLE: i128 = 784_111_777;
    const DAY: i128 = 86_400;

    fn parse(date: &str, now: u64) -> Result<i128, HttpDateError> {
        parse_http_date(date.as_bytes(), now)
    }

    /// Seconds since the epoch of a date whose year does not depend on now.
    fn at(date: &str) -> i128 {
        parse(date, 0).unwrap()
    }

    fn imf_fixdate(ts: u64) -> String {
        let day_secs = 86_400;
        let (year, month, day) = civil_from_days((ts / day_secs) as i64);
        let weekday = ((ts / day_secs + 3) % 7) as usize; // 1970-01-01 was a Thursday
        let sod = ts % day_secs;
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
        let now = RFC_EXAMPLE as u64 - 100;
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
        ] {
            assert_eq!(parse(date, now), Ok(RFC_EXAMPLE), "{date}");
        }
        assert_eq!(at("Thu, 01 Jan 1970 00:00:01 GMT"), 1);
        assert_eq!(at("Fri, 31 Dec 9999 23:59:59 GMT"), 253_402_300_799);
        assert_eq!(at("Tue Nov 16 08:49:37 1994"), RFC_EXAMPLE + 10 * DAY);
        assert_eq!(at("Wed, 31 Dec 1969 23:59:59 GMT"), -1);
    }

    #[test]
    fn rejects_what_the_grammar_does_not_allow() {
        use HttpDateError::*;
        for (value, error) in [
            ("", InvalidSyntax),
            ("120", InvalidSyntax),
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
            assert_eq!(parse(value, 0), Err(error), "{value:?}");
        }
    }

    #[test]
    fn lenient_where_the_grammar_is() {
        // A weekday that does not match the date is still a valid HTTP-date.
        assert_eq!(at("Mon, 06 Nov 1994 08:49:37 GMT"), RFC_EXAMPLE);
        // A leap second counts as the next minute.
        assert_eq!(at("Sun, 06 Nov 1994 08:49:60 GMT"), RFC_EXAMPLE + 23);
        // Year 0000 is a valid 4DIGIT year, just long past.
        assert_eq!(at("Sat, 01 Jan 0000 00:00:00 GMT"), -719_528 * DAY);
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
            assert_eq!(parse(date, 0), Err(HttpDateError::InvalidDate), "{date}");
        }
    }

    #[test]
    fn rfc850_fifty_year_rule() {
        // now = Sun, 06 Nov 1994 08:49:37 GMT; the limit is 06 Nov 2044 08:49:37.
        let now = RFC_EXAMPLE as u64;
        assert_eq!(
            parse("Monday, 01-Jan-35 00:00:00 GMT", now),
            Ok(at("Mon, 01 Jan 2035 00:00:00 GMT"))
        );
        assert_eq!(
            parse("Sunday, 06-Nov-44 08:49:37 GMT", now),
            Ok(at("Sun, 06 Nov 2044 08:49:37 GMT"))
        );
        // One second past the limit: the most recent past year ending in 44.
        assert_eq!(
            parse("Sunday, 06-Nov-44 08:49:38 GMT", now),
            Ok(at("Mon, 06 Nov 1944 08:49:38 GMT"))
        );
        assert_eq!(
            parse("Friday, 01-Jan-95 00:00:00 GMT", now),
            Ok(at("Sun, 01 Jan 1995 00:00:00 GMT"))
        );
        // 29 Feb in a year ending in 00: leap in 2000, not in 1900 or 2100.
        assert_eq!(
            parse("Tuesday, 29-Feb-00 00:00:00 GMT", now),
            Ok(at("Tue, 29 Feb 2000 00:00:00 GMT"))
        );
        let now_2080 = at("Mon, 01 Jan 2080 00:00:00 GMT") as u64;
        assert_eq!(
            parse("Monday, 29-Feb-00 00:00:00 GMT", now_2080),
            Err(HttpDateError::InvalidDate)
        );
        // Huge `now`: the chosen year is far beyond 9999, without overflow.
        let huge = i128::from(u64::MAX);
        let date = parse("Monday, 01-Jan-00 00:00:00 GMT", u64::MAX).unwrap();
        assert!((huge - 50 * 366 * DAY..=huge + 50 * 366 * DAY).contains(&date));
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

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), now: u64) {
            let _ = parse_http_date(&bytes, now);
        }

        #[test]
        fn never_panics_on_date_shapes(
            name in "(Sun|Sunday|Mon)",
            sep in "(, | )",
            rest in "[0-9A-Za-z :-]{0,30}",
            now: u64,
        ) {
            let _ = parse(&format!("{name}{sep}{rest}"), now);
        }

        #[test]
        fn imf_fixdate_round_trips(ts in 0u64..=253_402_300_799, now: u64) {
            prop_assert_eq!(parse(&imf_fixdate(ts), now), Ok(i128::from(ts)));
        }

        #[test]
        fn other_forms_agree_with_imf_fixdate(
            ts in 0u64..=253_402_300_799,
            back in 0u64..=49 * 365 * 86_400,
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
            let expected = parse(&imf, now);
            prop_assert_eq!(parse(&rfc850, now), expected, "{}", rfc850);
            prop_assert_eq!(parse(&asctime, now), expected, "{}", asctime);
        }
    }
}
