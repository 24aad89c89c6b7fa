//! The example programs' command lines: every argument that is not
//! understood — an unknown flag, a missing or empty value, a value that is
//! not a number or out of its range, text that is not UTF-8 — is a message
//! naming the problem, and the program exits with status 2; never a panic.
//!
//! ```
//! use std::ffi::OsString;
//! use stormguard_examples::cli::Args;
//!
//! let mut args = Args::new(["--seed=7"].map(OsString::from));
//! let flag = args.next_flag()?.expect("a flag");
//! assert_eq!(flag.name(), "--seed");
//! assert_eq!(args.number(&flag, 0..=u64::MAX)?, 7);
//! assert!(args.next_flag()?.is_none());
//! # Ok::<(), String>(())
//! ```

use std::ffi::OsString;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::process::ExitCode;
use std::str::FromStr;

/// One flag of the command line: `--name`, or `--name=value` with its value
/// inline.
///
/// ```
/// use std::ffi::OsString;
/// let mut args = stormguard_examples::cli::Args::new([OsString::from("--help")]);
/// assert_eq!(args.next_flag()?.unwrap().name(), "--help");
/// # Ok::<(), String>(())
/// ```
#[derive(Debug)]
pub struct Flag {
    name: String,
    inline: Option<OsString>,
}

impl Flag {
    /// The flag as written, without an inline value.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// let mut args = stormguard_examples::cli::Args::new([OsString::from("--load=0.5")]);
    /// assert_eq!(args.next_flag()?.unwrap().name(), "--load");
    /// # Ok::<(), String>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An error unless the flag came without a value (`--json`, not
    /// `--json=yes`).
    ///
    /// # Errors
    /// `"--json takes no value"`.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// let mut args = stormguard_examples::cli::Args::new([OsString::from("--json=yes")]);
    /// assert!(args.next_flag()?.unwrap().without_value().is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn without_value(&self) -> Result<(), String> {
        match self.inline {
            None => Ok(()),
            Some(_) => Err(format!("{} takes no value", self.name)),
        }
    }

    /// The error for a flag the program does not know.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// let mut args = stormguard_examples::cli::Args::new([OsString::from("--bogus")]);
    /// let flag = args.next_flag()?.unwrap();
    /// assert_eq!(flag.unknown(), "unknown argument \"--bogus\"");
    /// # Ok::<(), String>(())
    /// ```
    pub fn unknown(&self) -> String {
        match &self.inline {
            None => format!("unknown argument {:?}", self.name),
            Some(value) => format!("unknown argument {:?}={value:?}", self.name),
        }
    }
}

/// The arguments after the program's name, read flag by flag.
///
/// ```
/// use std::ffi::OsString;
/// use stormguard_examples::cli::Args;
///
/// let mut args = Args::new(["--clients", "0"].map(OsString::from));
/// let flag = args.next_flag()?.unwrap();
/// assert_eq!(
///     args.number(&flag, 1..=2000u32).unwrap_err(),
///     "--clients takes a number from 1 to 2000, not \"0\"",
/// );
/// # Ok::<(), String>(())
/// ```
pub struct Args<I> {
    args: I,
}

impl<I: Iterator<Item = OsString>> Args<I> {
    /// The arguments to read (`std::env::args_os().skip(1)` in a program).
    ///
    /// ```
    /// let args = stormguard_examples::cli::Args::new(std::iter::empty());
    /// # let _ = args;
    /// ```
    pub fn new(args: impl IntoIterator<IntoIter = I>) -> Self {
        Args {
            args: args.into_iter(),
        }
    }

    /// The next flag, or `None` after the last argument.
    ///
    /// # Errors
    /// An argument that is not UTF-8 or not a flag (`seed`, `-x`).
    ///
    /// ```
    /// use std::ffi::OsString;
    /// let mut args = stormguard_examples::cli::Args::new([OsString::from("seed")]);
    /// assert_eq!(args.next_flag().unwrap_err(), "unknown argument \"seed\"");
    /// ```
    pub fn next_flag(&mut self) -> Result<Option<Flag>, String> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        let Some(text) = arg.to_str() else {
            return Err(format!("unknown argument {arg:?} (not UTF-8)"));
        };
        if text == "-h" {
            return Ok(Some(Flag {
                name: text.to_owned(),
                inline: None,
            }));
        }
        if !text.starts_with("--") || text.len() == 2 {
            return Err(format!("unknown argument {text:?}"));
        }
        Ok(Some(match text.split_once('=') {
            Some((name, value)) => Flag {
                name: name.to_owned(),
                inline: Some(OsString::from(value)),
            },
            None => Flag {
                name: text.to_owned(),
                inline: None,
            },
        }))
    }

    /// The flag's value: written inline (`--seed=7`) or as the next
    /// argument (`--seed 7`).
    ///
    /// # Errors
    /// The value is missing, empty or not UTF-8.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// let mut args = stormguard_examples::cli::Args::new([OsString::from("--seed")]);
    /// let flag = args.next_flag()?.unwrap();
    /// assert_eq!(args.value(&flag).unwrap_err(), "--seed needs a value");
    /// # Ok::<(), String>(())
    /// ```
    pub fn value(&mut self, flag: &Flag) -> Result<String, String> {
        let value = match &flag.inline {
            Some(value) => Some(value.clone()),
            None => self.args.next(),
        };
        match value {
            Some(value) if !value.is_empty() => value
                .into_string()
                .map_err(|value| format!("{} takes text, not {value:?} (not UTF-8)", flag.name)),
            _ => Err(format!("{} needs a value", flag.name)),
        }
    }

    /// The flag's value as a number within `range` (NaN is never within a
    /// range).
    ///
    /// # Errors
    /// What [`value`](Self::value) refuses, a value that is not a number,
    /// and a number outside `range`, saying which range.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// let mut args = stormguard_examples::cli::Args::new(["--load", "NaN"].map(OsString::from));
    /// let flag = args.next_flag()?.unwrap();
    /// assert!(args.number(&flag, 0.1..=1.0f64).is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn number<T>(&mut self, flag: &Flag, range: RangeInclusive<T>) -> Result<T, String>
    where
        T: FromStr + PartialOrd + Display,
    {
        let text = self.value(flag)?;
        match text.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(format!(
                "{} takes a number from {} to {}, not {text:?}",
                flag.name,
                range.start(),
                range.end()
            )),
        }
    }
}

/// Reports a command-line error the way every example program does: the
/// program's name and the message on stderr, then the usage; exit status 2.
///
/// ```no_run
/// let status = stormguard_examples::cli::usage_error("manual", "unknown argument", "usage: manual");
/// # let _ = status;
/// ```
pub fn usage_error(program: &str, message: &str, usage: &str) -> ExitCode {
    eprintln!("{program}: {message}\n\n{usage}");
    ExitCode::from(2)
}

/// The command line of a program whose only option is `--seed N`: the seed
/// (`default` without the flag), or `None` when help was asked for.
///
/// # Errors
/// Any argument other than `--seed N`, `-h` or `--help`; a seed that is not
/// a whole number from 0 to 2⁶⁴ − 1.
///
/// ```
/// use std::ffi::OsString;
/// use stormguard_examples::cli::seed_only;
/// assert_eq!(seed_only(["--seed", "3"].map(OsString::from), 7), Ok(Some(3)));
/// assert_eq!(seed_only([OsString::from("-h")], 7), Ok(None));
/// assert!(seed_only(["--seed", "-1"].map(OsString::from), 7).is_err());
/// ```
pub fn seed_only(
    args: impl IntoIterator<Item = OsString>,
    default: u64,
) -> Result<Option<u64>, String> {
    let mut args = Args::new(args);
    let mut seed = default;
    while let Some(flag) = args.next_flag()? {
        match flag.name() {
            "-h" | "--help" => {
                flag.without_value()?;
                return Ok(None);
            }
            "--seed" => seed = args.number(&flag, 0..=u64::MAX)?,
            _ => return Err(flag.unknown()),
        }
    }
    Ok(Some(seed))
}
