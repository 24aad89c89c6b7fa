//! The one error type of every builder in the crate.

use core::fmt;

/// An invalid configuration value, naming the field it came from.
///
/// Every builder in stormguard (`Backoff`, `RetryPolicy`, and later the
/// budgets and the breaker) validates each value and returns this error
/// instead of panicking or silently clamping. Its `Display` is the message
/// the Python bindings raise as `ValueError`.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Backoff, ConfigErrorKind};
///
/// let err = Backoff::exponential(Duration::from_millis(100), f64::NAN)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field(), "backoff.factor");
/// assert_eq!(err.kind(), ConfigErrorKind::NotFinite);
/// assert_eq!(err.to_string(), "invalid backoff.factor: must be a finite number");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    kind: ConfigErrorKind,
}

/// What is wrong with a configuration value.
///
/// ```
/// use stormguard::{ConfigError, ConfigErrorKind};
/// let e = ConfigError::new("max_attempts", ConfigErrorKind::Zero);
/// assert_eq!(e.to_string(), "invalid max_attempts: must not be zero");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The value must not be zero.
    Zero,
    /// The value is NaN or infinite.
    NotFinite,
    /// The value is outside the allowed range; the text says what is allowed
    /// (for example `"at least 1"` or `"at least backoff.base"`).
    OutOfRange(&'static str),
}

impl ConfigError {
    /// An error for `field`.
    ///
    /// ```
    /// use stormguard::{ConfigError, ConfigErrorKind};
    /// let e = ConfigError::new("ttl", ConfigErrorKind::OutOfRange("between 1 s and 60 s"));
    /// assert_eq!(e.to_string(), "invalid ttl: must be between 1 s and 60 s");
    /// ```
    pub const fn new(field: &'static str, kind: ConfigErrorKind) -> Self {
        ConfigError { field, kind }
    }

    /// The field's name, dotted for nested builders (`"backoff.factor"`).
    ///
    /// ```
    /// # use stormguard::{ConfigError, ConfigErrorKind};
    /// assert_eq!(ConfigError::new("x", ConfigErrorKind::Zero).field(), "x");
    /// ```
    pub const fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    ///
    /// ```
    /// # use stormguard::{ConfigError, ConfigErrorKind};
    /// assert_eq!(ConfigError::new("x", ConfigErrorKind::Zero).kind(), ConfigErrorKind::Zero);
    /// ```
    pub const fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.kind)
    }
}

impl fmt::Display for ConfigErrorKind {
    /// What the value must be (`"must not be zero"`).
    ///
    /// ```
    /// use stormguard::ConfigErrorKind;
    /// assert_eq!(ConfigErrorKind::OutOfRange("at least 1").to_string(), "must be at least 1");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigErrorKind::Zero => f.write_str("must not be zero"),
            ConfigErrorKind::NotFinite => f.write_str("must be a finite number"),
            ConfigErrorKind::OutOfRange(expected) => write!(f, "must be {expected}"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Fails the build when a preset's constant settings are invalid.
///
/// Only ever evaluated in a `const` item (see `preset!`), where a panic is a
/// compile-time error that names the field; it never runs in a program.
// Rust 1.88 (the MSRV) does not count a use inside a `const _` item as a
// use, and would call this dead code.
#[allow(dead_code)]
pub(crate) const fn expect_valid(result: Result<(), ConfigError>) {
    if let Err(error) = result {
        panic!("{}", error.field());
    }
}

/// A preset: `Type::new_unchecked(args)` for constant `args` that
/// `Type::validate(args)` accepts when the crate compiles.
///
/// The check runs in a `const` item, so invalid numbers fail the build (even
/// `cargo check`), and the arguments are written once, so the checked and
/// the built values cannot drift apart. What is left at run time is only the
/// construction, which cannot fail: a preset never panics.
macro_rules! preset {
    ($type:ident($($arg:expr),* $(,)?)) => {{
        const _: () = $crate::config::expect_valid($type::validate($($arg),*));
        $type::new_unchecked($($arg),*)
    }};
}
pub(crate) use preset;

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn messages_name_the_field_and_the_rule() {
        let cases = [
            (
                ConfigErrorKind::Zero,
                "invalid backoff.base: must not be zero",
            ),
            (
                ConfigErrorKind::NotFinite,
                "invalid backoff.base: must be a finite number",
            ),
            (
                ConfigErrorKind::OutOfRange("at least 1"),
                "invalid backoff.base: must be at least 1",
            ),
        ];
        for (kind, message) in cases {
            let error = ConfigError::new("backoff.base", kind);
            assert_eq!(error.to_string(), message);
            assert_eq!(error.field(), "backoff.base");
            assert_eq!(error.kind(), kind);
        }
    }
}
