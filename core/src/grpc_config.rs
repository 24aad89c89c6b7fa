//! gRPC service configs: the retry, hedging and throttling policies of a
//! JSON service config (gRPC proposal A6), as stormguard's types.
//!
//! A gRPC service config names, per method, how its calls are retried or
//! hedged, and per server how much retrying the client may do:
//!
//! ```json
//! { "methodConfig": [{
//!     "name": [{ "service": "pkg.Svc", "method": "Get" }],
//!     "timeout": "1.5s",
//!     "retryPolicy": { "maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
//!                      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"] } }],
//!   "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 } }
//! ```
//!
//! [`ServiceConfig::from_json`] reads one and validates it as grpc-go does
//! (with A6's rules for hedging, which grpc-go lacks): `maxAttempts` two or
//! more, values above the client's cap (5, [configurable](ServiceConfig::from_json_capped))
//! treated as the cap; backoffs greater than zero, written as proto3 JSON
//! durations (`"0.1s"`); `backoffMultiplier` greater than zero;
//! `retryableStatusCodes` non-empty, codes as names in any case or as
//! numbers; `maxTokens` in (0, 1000]; `tokenRatio` greater than zero, kept to
//! three decimals; at most one of `retryPolicy` and `hedgingPolicy` per method
//! config; no method named twice. The JSON itself is read strictly: a
//! duplicate key anywhere is an error, nesting is limited to 128 levels, and
//! a value of the wrong type or out of range is an error — never a panic,
//! never a silent default. Every error names the JSON path of the value
//! ([`ServiceConfigError::path`]). Fields stormguard does not use
//! (`loadBalancingConfig`, `maxRequestMessageBytes`…) are ignored, as gRPC
//! clients ignore them, so a config written for any gRPC client loads.
//!
//! [`ServiceConfig::method`] then finds a method's [`MethodConfig`] with
//! gRPC's precedence (the exact method, else its service, else the default
//! config with an empty name), whose policy drives a [`Call`](crate::Call)
//! or the async driver like any other:
//!
//! ```
//! use stormguard::classify::grpc::Code;
//! use stormguard::grpc_config::{MethodPolicy, ServiceConfig};
//!
//! let config = ServiceConfig::from_json(r#"{
//!   "methodConfig": [{
//!     "name": [{ "service": "helloworld.Greeter" }],
//!     "timeout": "2s",
//!     "retryPolicy": {
//!       "maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
//!       "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]
//!     }
//!   }],
//!   "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 }
//! }"#)?;
//!
//! let method = config.method("helloworld.Greeter", "SayHello").expect("configured");
//! let Some(MethodPolicy::Retry { policy, retryable }) = method.policy() else { panic!() };
//! assert_eq!(policy.max_attempts(), 4);
//! assert_eq!(policy.deadline(), Some(core::time::Duration::from_secs(2)));
//! assert!(retryable.contains(Code::Unavailable));
//! let throttle = config.throttle().expect("retryThrottling is set");
//! assert!(throttle.allows_retry());
//! # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
//! ```

use core::cell::Cell;
use core::fmt;
use core::time::Duration;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::borrow::ToOwned;
use std::collections::{HashMap, HashSet};
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::budget::Throttle;
use crate::classify::grpc::{Code, CodeSet};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::failure::Failure;
use crate::hedging::{HedgingPolicy, MAX_HEDGED_ATTEMPTS};
use crate::policy::{RetryPolicy, GRPC_MAX_ATTEMPTS_CAP};

/// A parsed and validated gRPC service config.
///
/// ```
/// use stormguard::grpc_config::ServiceConfig;
///
/// let config = ServiceConfig::from_json(r#"{"methodConfig": [{
///     "name": [{}],
///     "hedgingPolicy": { "maxAttempts": 3, "hedgingDelay": "0.05s" }
/// }]}"#)?;
/// // The config with an empty name is every method's default.
/// let hedging = config.method("any.Service", "Any").unwrap().hedging_policy().unwrap();
/// assert_eq!(hedging.max_attempts(), 3);
/// assert!(config.throttle().is_none());
/// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    configs: Vec<MethodConfig>,
    /// `(service, method)` → index into `configs`; `method` is empty for a
    /// whole service, both are empty for the default.
    names: HashMap<(String, String), usize>,
    throttling: Option<RetryThrottling>,
}

/// The settings of one `methodConfig` entry.
///
/// ```
/// use core::time::Duration;
/// use stormguard::classify::grpc::Code;
/// use stormguard::grpc_config::ServiceConfig;
/// use stormguard::FailureClass;
///
/// let config = ServiceConfig::from_json(r#"{"methodConfig": [{
///     "name": [{ "service": "pkg.Svc", "method": "Put" }],
///     "waitForReady": true, "timeout": "0.25s"
/// }]}"#)?;
/// let method = config.method("pkg.Svc", "Put").unwrap();
/// assert_eq!(method.timeout(), Some(Duration::from_millis(250)));
/// assert_eq!(method.wait_for_ready(), Some(true));
/// assert!(method.policy().is_none());
/// // Without a policy nothing is retried.
/// assert_eq!(method.failure_for(Code::Unavailable).unwrap().class(), FailureClass::Permanent);
/// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodConfig {
    timeout: Option<Duration>,
    wait_for_ready: Option<bool>,
    policy: Option<MethodPolicy>,
}

/// A method's retry or hedging policy.
///
/// The method's `timeout` is already the policy's deadline: in gRPC the
/// deadline covers every attempt of a call.
///
/// ```
/// use stormguard::grpc_config::{MethodPolicy, ServiceConfig};
///
/// let config = ServiceConfig::from_json(r#"{"methodConfig": [{
///     "name": [{ "service": "pkg.Svc" }],
///     "hedgingPolicy": { "maxAttempts": 4, "nonFatalStatusCodes": ["UNAVAILABLE", 10] }
/// }]}"#)?;
/// match config.method("pkg.Svc", "Get").unwrap().policy() {
///     Some(MethodPolicy::Hedging { policy, non_fatal }) => {
///         assert_eq!(policy.max_attempts(), 4);
///         assert!(policy.hedging_delay().is_zero()); // unset: all copies at once
///         assert!(non_fatal.contains(stormguard::classify::grpc::Code::Aborted));
///     }
///     _ => unreachable!(),
/// }
/// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum MethodPolicy {
    /// `retryPolicy`: retry after a backoff while the code is retryable.
    Retry {
        /// The policy, in [`DecisionOrder::Grpc`](crate::DecisionOrder::Grpc)
        /// with A6's jitter.
        policy: RetryPolicy,
        /// `retryableStatusCodes`.
        retryable: CodeSet,
    },
    /// `hedgingPolicy`: send copies `hedgingDelay` apart, first success wins.
    Hedging {
        /// The policy.
        policy: HedgingPolicy,
        /// `nonFatalStatusCodes`: a copy failing with one of them lets the
        /// others go on (and sends the next at once); any other code ends
        /// the call.
        non_fatal: CodeSet,
    },
}

/// `retryThrottling`: the settings of a [`Throttle`] shared by every call
/// to one server.
///
/// ```
/// use stormguard::grpc_config::ServiceConfig;
/// let config = ServiceConfig::from_json(
///     r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.5466}}"#,
/// )?;
/// let throttling = config.retry_throttling().unwrap();
/// assert_eq!(throttling.max_tokens(), 10);
/// assert_eq!(throttling.token_ratio_milli(), 546); // three decimals kept
/// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryThrottling {
    max_tokens: u32,
    ratio_milli: u32,
}

impl RetryThrottling {
    /// `maxTokens`.
    ///
    /// ```
    /// # use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"retryThrottling": {"maxTokens": 3, "tokenRatio": 1}}"#)?;
    /// assert_eq!(c.retry_throttling().unwrap().max_tokens(), 3);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn max_tokens(&self) -> u32 {
        self.max_tokens
    }

    /// `tokenRatio` in thousandths (decimals beyond three are dropped, as
    /// A6 allows and grpc-java does).
    ///
    /// ```
    /// # use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"retryThrottling": {"maxTokens": 3, "tokenRatio": 0.1}}"#)?;
    /// assert_eq!(c.retry_throttling().unwrap().token_ratio_milli(), 100);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn token_ratio_milli(&self) -> u32 {
        self.ratio_milli
    }

    /// A new, full [`Throttle`] with these settings. Share one per server
    /// (a `static`, or an `Arc`) between every call to it.
    ///
    /// ```
    /// # use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"retryThrottling": {"maxTokens": 3, "tokenRatio": 1}}"#)?;
    /// assert_eq!(c.retry_throttling().unwrap().throttle().tokens_milli(), 3_000);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub fn throttle(&self) -> Throttle {
        Throttle::from_milli(self.max_tokens, self.ratio_milli)
    }
}

/// An invalid service config: where, and what is wrong.
///
/// ```
/// use stormguard::grpc_config::{ServiceConfig, ServiceConfigErrorKind};
/// use stormguard::ConfigErrorKind;
///
/// let err = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}],
///     "retryPolicy": {"maxAttempts": 1, "initialBackoff": "1s", "maxBackoff": "1s",
///                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#)
///     .unwrap_err();
/// assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxAttempts");
/// assert_eq!(err.kind(), &ServiceConfigErrorKind::Invalid(ConfigErrorKind::OutOfRange("greater than 1")));
/// assert_eq!(
///     err.to_string(),
///     "invalid gRPC service config at methodConfig[0].retryPolicy.maxAttempts: must be greater than 1",
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfigError {
    path: String,
    kind: ServiceConfigErrorKind,
}

/// What is wrong with a service config.
///
/// ```
/// use stormguard::grpc_config::{ServiceConfig, ServiceConfigErrorKind};
/// let err = ServiceConfig::from_json(r#"{"retryThrottling": {"maxTokens": 1, "maxTokens": 2}}"#)
///     .unwrap_err();
/// assert_eq!(err.kind(), &ServiceConfigErrorKind::DuplicateKey("maxTokens".into()));
/// assert_eq!(err.path(), "retryThrottling");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceConfigErrorKind {
    /// The text is not JSON (or nests deeper than 128 levels); the message
    /// says what and where (line and column).
    Syntax(String),
    /// An object has this key twice.
    DuplicateKey(String),
    /// The value has the wrong JSON type.
    WrongType {
        /// What the field must be (`"a string"`).
        expected: &'static str,
        /// What it is (`"a number"`).
        found: &'static str,
    },
    /// A required field is absent.
    Missing,
    /// The value is out of range (the same kinds as every builder's
    /// [`ConfigError`]).
    Invalid(ConfigErrorKind),
    /// A duration that is not proto3 JSON (`"1.5s"`: an optional `-`,
    /// seconds, at most nine decimals, then `s`), or beyond its range.
    Duration,
    /// Neither a gRPC status code's name nor its number.
    UnknownCode,
    /// This method (or service, or the default) is named by two method
    /// configs.
    DuplicateName,
    /// A `method` without a `service`.
    MethodWithoutService,
    /// A method config with both `retryPolicy` and `hedgingPolicy`.
    BothPolicies,
}

impl ServiceConfigError {
    fn new(path: impl Into<String>, kind: ServiceConfigErrorKind) -> Self {
        ServiceConfigError {
            path: path.into(),
            kind,
        }
    }

    /// The JSON path of the offending value (`methodConfig[0].timeout`);
    /// empty for the document itself.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let err = ServiceConfig::from_json(r#"{"methodConfig": [{"timeout": 5}]}"#).unwrap_err();
    /// assert_eq!(err.path(), "methodConfig[0].timeout");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    ///
    /// ```
    /// use stormguard::grpc_config::{ServiceConfig, ServiceConfigErrorKind};
    /// let err = ServiceConfig::from_json("[").unwrap_err();
    /// assert!(matches!(err.kind(), ServiceConfigErrorKind::Syntax(_)));
    /// ```
    pub fn kind(&self) -> &ServiceConfigErrorKind {
        &self.kind
    }
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid gRPC service config")?;
        if !self.path.is_empty() {
            write!(f, " at {}", self.path)?;
        }
        f.write_str(": ")?;
        match &self.kind {
            ServiceConfigErrorKind::Syntax(message) => write!(f, "not JSON: {message}"),
            ServiceConfigErrorKind::DuplicateKey(key) => write!(f, "duplicate key {key:?}"),
            ServiceConfigErrorKind::WrongType { expected, found } => {
                write!(f, "must be {expected}, not {found}")
            }
            ServiceConfigErrorKind::Missing => f.write_str("required"),
            ServiceConfigErrorKind::Invalid(kind) => write!(f, "{kind}"),
            ServiceConfigErrorKind::Duration => f.write_str(
                "must be a proto3 JSON duration: seconds with at most nine decimals and an `s` (\"0.1s\")",
            ),
            ServiceConfigErrorKind::UnknownCode => {
                f.write_str("must be a gRPC status code: a name (\"UNAVAILABLE\") or 0 to 16")
            }
            ServiceConfigErrorKind::DuplicateName => {
                f.write_str("names a method another method config names")
            }
            ServiceConfigErrorKind::MethodWithoutService => {
                f.write_str("a method needs a service")
            }
            ServiceConfigErrorKind::BothPolicies => {
                f.write_str("has both retryPolicy and hedgingPolicy; at most one is allowed")
            }
        }
    }
}

impl std::error::Error for ServiceConfigError {}

impl ServiceConfig {
    /// Reads and validates a service config, capping `maxAttempts` at 5.
    ///
    /// # Errors
    /// A [`ServiceConfigError`] naming the path of the first invalid value.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "s"}],
    ///     "retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s", "maxBackoff": "1s",
    ///                     "backoffMultiplier": 2, "retryableStatusCodes": ["unavailable"]}}]}"#)?;
    /// assert_eq!(config.method("s", "m").unwrap().retry_policy().unwrap().max_attempts(), 5);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub fn from_json(text: &str) -> Result<ServiceConfig, ServiceConfigError> {
        ServiceConfig::from_json_capped(text, GRPC_MAX_ATTEMPTS_CAP)
    }

    /// Reads and validates a service config with the client's own cap on
    /// `maxAttempts` (A6 lets a client change the default of 5). Hedged
    /// calls stay capped at [`MAX_HEDGED_ATTEMPTS`]: their copies run at
    /// once, held without allocating.
    ///
    /// # Errors
    /// A [`ServiceConfigError`]; a `max_attempts_cap` below 2 is one at the
    /// path `max_attempts_cap`.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let json = r#"{"methodConfig": [{"name": [{"service": "s"}],
    ///     "retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s", "maxBackoff": "1s",
    ///                     "backoffMultiplier": 2, "retryableStatusCodes": [14]}}]}"#;
    /// let config = ServiceConfig::from_json_capped(json, 7)?;
    /// assert_eq!(config.method("s", "m").unwrap().retry_policy().unwrap().max_attempts(), 7);
    /// assert_eq!(ServiceConfig::from_json_capped(json, 1).unwrap_err().path(), "max_attempts_cap");
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub fn from_json_capped(
        text: &str,
        max_attempts_cap: u32,
    ) -> Result<ServiceConfig, ServiceConfigError> {
        if max_attempts_cap < 2 {
            return Err(ServiceConfigError::new(
                "max_attempts_cap",
                ServiceConfigErrorKind::Invalid(ConfigErrorKind::OutOfRange("at least 2")),
            ));
        }
        let document = parse(text)?;
        Reader {
            cap: max_attempts_cap,
        }
        .service_config(&document)
    }

    /// The config of `service`/`method` (`"helloworld.Greeter"`,
    /// `"SayHello"`), with gRPC's precedence: the config naming this exact
    /// method, else the one naming its whole service, else the default (an
    /// empty name); `None` when none applies.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(r#"{"methodConfig": [
    ///     {"name": [{"service": "s", "method": "slow"}], "timeout": "9s"},
    ///     {"name": [{"service": "s"}], "timeout": "1s"}
    /// ]}"#)?;
    /// assert_eq!(config.method("s", "slow").unwrap().timeout().unwrap().as_secs(), 9);
    /// assert_eq!(config.method("s", "fast").unwrap().timeout().unwrap().as_secs(), 1);
    /// assert!(config.method("other", "fast").is_none());
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub fn method(&self, service: &str, method: &str) -> Option<&MethodConfig> {
        let lookup = |service: &str, method: &str| {
            self.names
                .get(&(service.to_owned(), method.to_owned()))
                .and_then(|index| self.configs.get(*index))
        };
        (if method.is_empty() {
            None
        } else {
            lookup(service, method)
        })
        .or_else(|| lookup(service, ""))
        .or_else(|| lookup("", ""))
    }

    /// The method configs, in the order of the document.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}]}]}"#)?;
    /// assert_eq!(config.method_configs().len(), 1);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub fn method_configs(&self) -> &[MethodConfig] {
        &self.configs
    }

    /// `retryThrottling`, if the config sets it.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// assert!(ServiceConfig::from_json("{}")?.retry_throttling().is_none());
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub fn retry_throttling(&self) -> Option<RetryThrottling> {
        self.throttling
    }

    /// A new, full [`Throttle`] from `retryThrottling`, if the config sets
    /// it: share it between every call to the server.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#)?;
    /// assert_eq!(c.throttle().unwrap().max_tokens_milli(), 10_000);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub fn throttle(&self) -> Option<Throttle> {
        self.throttling.as_ref().map(RetryThrottling::throttle)
    }
}

impl MethodConfig {
    /// `timeout`: the deadline of a whole call, every attempt included.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}], "timeout": "1.000000001s"}]}"#)?;
    /// assert_eq!(c.method("a", "b").unwrap().timeout().unwrap().subsec_nanos(), 1);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// `waitForReady`, if set.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}]}]}"#)?;
    /// assert_eq!(c.method("a", "b").unwrap().wait_for_ready(), None);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn wait_for_ready(&self) -> Option<bool> {
        self.wait_for_ready
    }

    /// The retry or hedging policy, if the config has one.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}]}]}"#)?;
    /// assert!(c.method("a", "b").unwrap().policy().is_none());
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn policy(&self) -> Option<&MethodPolicy> {
        self.policy.as_ref()
    }

    /// The retry policy, if the method has `retryPolicy`.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}],
    ///     "hedgingPolicy": {"maxAttempts": 2}}]}"#)?;
    /// assert!(c.method("a", "b").unwrap().retry_policy().is_none());
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn retry_policy(&self) -> Option<&RetryPolicy> {
        match &self.policy {
            Some(MethodPolicy::Retry { policy, .. }) => Some(policy),
            _ => None,
        }
    }

    /// The hedging policy, if the method has `hedgingPolicy`.
    ///
    /// ```
    /// use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}],
    ///     "hedgingPolicy": {"maxAttempts": 2}}]}"#)?;
    /// assert_eq!(c.method("a", "b").unwrap().hedging_policy().unwrap().max_attempts(), 2);
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn hedging_policy(&self) -> Option<&HedgingPolicy> {
        match &self.policy {
            Some(MethodPolicy::Hedging { policy, .. }) => Some(policy),
            _ => None,
        }
    }

    /// The codes that do not end the call: `retryableStatusCodes` of a retry
    /// policy, `nonFatalStatusCodes` of a hedging policy, none without a
    /// policy.
    ///
    /// ```
    /// use stormguard::classify::grpc::{Code, CodeSet};
    /// use stormguard::grpc_config::ServiceConfig;
    /// let c = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}],
    ///     "hedgingPolicy": {"maxAttempts": 2, "nonFatalStatusCodes": ["ABORTED"]}}]}"#)?;
    /// assert_eq!(c.method("a", "b").unwrap().codes(), CodeSet::EMPTY.with(Code::Aborted));
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn codes(&self) -> CodeSet {
        match &self.policy {
            Some(MethodPolicy::Retry { retryable, .. }) => *retryable,
            Some(MethodPolicy::Hedging { non_fatal, .. }) => *non_fatal,
            None => CodeSet::EMPTY,
        }
    }

    /// The [`Failure`] to report for a call that ended with `code` (`None`
    /// for `OK`): retryable (or non-fatal) for the method's codes,
    /// permanent for the others. See [`CodeSet::failure_for`].
    ///
    /// ```
    /// use stormguard::classify::grpc::Code;
    /// use stormguard::grpc_config::ServiceConfig;
    /// use stormguard::FailureClass;
    /// let c = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}],
    ///     "retryPolicy": {"maxAttempts": 3, "initialBackoff": "1s", "maxBackoff": "2s",
    ///                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#)?;
    /// let method = c.method("a", "b").unwrap();
    /// assert!(method.failure_for(Code::Unavailable).unwrap().class().is_retryable());
    /// assert_eq!(method.failure_for(Code::Internal).unwrap().class(), FailureClass::Permanent);
    /// assert!(method.failure_for(Code::Ok).is_none());
    /// # Ok::<(), stormguard::grpc_config::ServiceConfigError>(())
    /// ```
    pub const fn failure_for(&self, code: Code) -> Option<Failure> {
        self.codes().failure_for(code)
    }
}

// ---------------------------------------------------------------------------
// Strict JSON: a tree that remembers key order and refuses duplicate keys.

/// A JSON value. Objects keep their keys in order; a duplicate key is
/// refused while parsing.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Unsigned(_) | Json::Signed(_) | Json::Float(_) => "a number",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The value of `key`, whose spelling may differ in ASCII case (grpc-go's
    /// JSON decoding matches fields so, and its own examples write
    /// `"MaxAttempts"`). Two spellings of one key are ambiguous (grpc-go
    /// would silently take the last): `Err` with the second spelling.
    fn get(&self, key: &str) -> Result<Option<&Json>, &str> {
        let Json::Object(entries) = self else {
            return Ok(None);
        };
        let mut matches = entries.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key));
        match (matches.next(), matches.next()) {
            (Some(_), Some((second, _))) => Err(second),
            (found, _) => Ok(found.map(|(_, value)| value)),
        }
    }
}

/// One step of the path to the value being parsed.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

/// Parses one value; on a duplicate key, records where in `duplicate`.
#[derive(Clone, Copy)]
struct Seed<'a> {
    parent: Option<&'a Seed<'a>>,
    step: Step<'a>,
    duplicate: &'a Cell<Option<ServiceConfigError>>,
}

impl Seed<'_> {
    fn path(&self) -> String {
        let mut steps = Vec::new();
        let mut seed = Some(self);
        while let Some(s) = seed {
            steps.push(s.step);
            seed = s.parent;
        }
        let mut path = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Root => {}
                Step::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Step::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        path
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Unsigned(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Signed(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Seed {
                parent: Some(&self),
                step: Step::Index(items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Json::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                self.duplicate.set(Some(ServiceConfigError::new(
                    self.path(),
                    ServiceConfigErrorKind::DuplicateKey(key.clone()),
                )));
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(Seed {
                parent: Some(&self),
                step: Step::Key(&key),
                duplicate: self.duplicate,
            })?;
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

/// Parses `text` as one strict JSON document.
fn parse(text: &str) -> Result<Json, ServiceConfigError> {
    let duplicate = Cell::new(None);
    let seed = Seed {
        parent: None,
        step: Step::Root,
        duplicate: &duplicate,
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = seed
        .deserialize(&mut deserializer)
        .and_then(|json| deserializer.end().map(|()| json));
    parsed.map_err(|error| match duplicate.take() {
        Some(duplicate) => duplicate,
        None => ServiceConfigError::new("", ServiceConfigErrorKind::Syntax(error.to_string())),
    })
}

// ---------------------------------------------------------------------------
// From the JSON tree to validated policies.

struct Reader {
    cap: u32,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn wrong_type(path: &str, expected: &'static str, found: &Json) -> ServiceConfigError {
    ServiceConfigError::new(
        path,
        ServiceConfigErrorKind::WrongType {
            expected,
            found: found.type_name(),
        },
    )
}

fn invalid(path: &str, kind: ConfigErrorKind) -> ServiceConfigError {
    ServiceConfigError::new(path, ServiceConfigErrorKind::Invalid(kind))
}

/// An object's field: `None` when absent (or `null`, which proto3 JSON reads
/// as absent).
fn field<'j>(
    object: &'j Json,
    path: &str,
    key: &str,
) -> Result<Option<(&'j Json, String)>, ServiceConfigError> {
    match object.get(key) {
        _ if !matches!(object, Json::Object(_)) => Err(wrong_type(path, "an object", object)),
        Ok(None | Some(Json::Null)) => Ok(None),
        Ok(Some(value)) => Ok(Some((value, join(path, key)))),
        Err(second) => Err(ServiceConfigError::new(
            path,
            ServiceConfigErrorKind::DuplicateKey(second.to_owned()),
        )),
    }
}

fn required<'j>(
    object: &'j Json,
    path: &str,
    key: &str,
) -> Result<(&'j Json, String), ServiceConfigError> {
    field(object, path, key)?
        .ok_or_else(|| ServiceConfigError::new(join(path, key), ServiceConfigErrorKind::Missing))
}

fn as_object<'j>(value: &'j Json, path: &str) -> Result<&'j Json, ServiceConfigError> {
    match value {
        Json::Object(_) => Ok(value),
        _ => Err(wrong_type(path, "an object", value)),
    }
}

fn as_array<'j>(value: &'j Json, path: &str) -> Result<&'j [Json], ServiceConfigError> {
    match value {
        Json::Array(items) => Ok(items),
        _ => Err(wrong_type(path, "an array", value)),
    }
}

fn as_str<'j>(value: &'j Json, path: &str) -> Result<&'j str, ServiceConfigError> {
    match value {
        Json::Str(text) => Ok(text),
        _ => Err(wrong_type(path, "a string", value)),
    }
}

fn as_bool(value: &Json, path: &str) -> Result<bool, ServiceConfigError> {
    match value {
        Json::Bool(flag) => Ok(*flag),
        _ => Err(wrong_type(path, "a boolean", value)),
    }
}

/// A non-negative integer (a JSON number without a fraction; `3.0` is
/// accepted as proto3 JSON accepts it).
fn as_count(value: &Json, path: &str) -> Result<u64, ServiceConfigError> {
    match *value {
        Json::Unsigned(n) => Ok(n),
        Json::Signed(_) => Err(invalid(path, ConfigErrorKind::OutOfRange("at least 0"))),
        Json::Float(x) if x.fract() == 0.0 && x >= 0.0 && x < u64::MAX as f64 => Ok(x as u64),
        Json::Float(x) if x.fract() == 0.0 && x >= 0.0 => Err(invalid(
            path,
            ConfigErrorKind::OutOfRange("an integer below 2^64"),
        )),
        Json::Float(x) if x < 0.0 => Err(invalid(path, ConfigErrorKind::OutOfRange("at least 0"))),
        Json::Float(_) => Err(invalid(path, ConfigErrorKind::OutOfRange("a whole number"))),
        _ => Err(wrong_type(path, "an integer", value)),
    }
}

fn as_number(value: &Json, path: &str) -> Result<f64, ServiceConfigError> {
    match *value {
        Json::Unsigned(n) => Ok(n as f64),
        Json::Signed(n) => Ok(n as f64),
        Json::Float(x) => Ok(x),
        _ => Err(wrong_type(path, "a number", value)),
    }
}

/// The largest seconds value of a proto3 `Duration` (10,000 years).
const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

/// A proto3 JSON duration (`"1.5s"`, `"-0.1s"`), as a sign and a magnitude.
///
/// As grpc-go reads them: an optional `-`, then seconds and a fraction of at
/// most nine digits, either of which may be left out but not both (`".01s"`,
/// `"1.s"`), then `s`. Seconds are capped at proto3's 315,576,000,000.
fn parse_duration(text: &str) -> Option<(bool, Duration)> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let text = text.strip_suffix('s')?;
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (seconds.is_empty() && fraction.is_empty())
        || !digits(seconds)
        || !digits(fraction)
        || fraction.len() > 9
    {
        return None;
    }
    let seconds: u64 = if seconds.is_empty() {
        0
    } else {
        seconds.parse().ok()?
    };
    if seconds > MAX_DURATION_SECONDS {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let value: u32 = fraction.parse().ok()?;
        value * 10u32.pow(9 - fraction.len() as u32)
    };
    Some((negative, Duration::new(seconds, nanos)))
}

/// A duration that must be greater than zero (or at least zero).
fn as_duration(value: &Json, path: &str, allow_zero: bool) -> Result<Duration, ServiceConfigError> {
    let text = as_str(value, path)?;
    let (negative, duration) = parse_duration(text)
        .ok_or_else(|| ServiceConfigError::new(path, ServiceConfigErrorKind::Duration))?;
    if negative && !duration.is_zero() {
        return Err(invalid(
            path,
            ConfigErrorKind::OutOfRange(if allow_zero {
                "at least 0"
            } else {
                "greater than 0"
            }),
        ));
    }
    if duration.is_zero() && !allow_zero {
        return Err(invalid(path, ConfigErrorKind::Zero));
    }
    Ok(duration)
}

fn as_code(value: &Json, path: &str) -> Result<Code, ServiceConfigError> {
    let unknown = || ServiceConfigError::new(path, ServiceConfigErrorKind::UnknownCode);
    match value {
        Json::Str(name) => name.parse().map_err(|_| unknown()),
        Json::Unsigned(n) => i32::try_from(*n)
            .ok()
            .and_then(|n| Code::try_from(n).ok())
            .ok_or_else(unknown),
        Json::Signed(_) | Json::Float(_) => Err(unknown()),
        _ => Err(wrong_type(path, "a status code name or number", value)),
    }
}

fn as_codes(value: &Json, path: &str) -> Result<CodeSet, ServiceConfigError> {
    as_array(value, path)?
        .iter()
        .enumerate()
        .try_fold(CodeSet::EMPTY, |set, (index, code)| {
            Ok(set.with(as_code(code, &format!("{path}[{index}]"))?))
        })
}

/// Attaches a builder's error to the JSON path of the field it names.
fn at_field(object_path: &str, error: ConfigError) -> ServiceConfigError {
    invalid(&join(object_path, error.field()), error.kind())
}

impl Reader {
    fn service_config(&self, document: &Json) -> Result<ServiceConfig, ServiceConfigError> {
        let document = as_object(document, "")?;
        let mut config = ServiceConfig {
            configs: Vec::new(),
            names: HashMap::new(),
            throttling: None,
        };
        if let Some((list, path)) = field(document, "", "methodConfig")? {
            for (index, entry) in as_array(list, &path)?.iter().enumerate() {
                let entry_path = format!("{path}[{index}]");
                let method = self.method_config(entry, &entry_path)?;
                let slot = config.configs.len();
                config.configs.push(method);
                if let Some((names, names_path)) = field(entry, &entry_path, "name")? {
                    for (i, name) in as_array(names, &names_path)?.iter().enumerate() {
                        let name_path = format!("{names_path}[{i}]");
                        let key = name_key(name, &name_path)?;
                        if config.names.insert(key, slot).is_some() {
                            return Err(ServiceConfigError::new(
                                name_path,
                                ServiceConfigErrorKind::DuplicateName,
                            ));
                        }
                    }
                }
            }
        }
        if let Some((throttling, path)) = field(document, "", "retryThrottling")? {
            config.throttling = Some(retry_throttling(throttling, &path)?);
        }
        Ok(config)
    }

    fn method_config(&self, entry: &Json, path: &str) -> Result<MethodConfig, ServiceConfigError> {
        let entry = as_object(entry, path)?;
        let timeout = field(entry, path, "timeout")?
            .map(|(value, path)| as_duration(value, &path, false))
            .transpose()?;
        let wait_for_ready = field(entry, path, "waitForReady")?
            .map(|(value, path)| as_bool(value, &path))
            .transpose()?;
        let retry = field(entry, path, "retryPolicy")?;
        let hedging = field(entry, path, "hedgingPolicy")?;
        let policy = match (retry, hedging) {
            (Some(_), Some((_, hedging_path))) => {
                return Err(ServiceConfigError::new(
                    hedging_path,
                    ServiceConfigErrorKind::BothPolicies,
                ))
            }
            (Some((retry, retry_path)), None) => {
                Some(self.retry_policy(retry, &retry_path, timeout)?)
            }
            (None, Some((hedging, hedging_path))) => {
                Some(self.hedging_policy(hedging, &hedging_path, timeout)?)
            }
            (None, None) => None,
        };
        Ok(MethodConfig {
            timeout,
            wait_for_ready,
            policy,
        })
    }

    fn max_attempts(&self, policy: &Json, path: &str) -> Result<u32, ServiceConfigError> {
        let (value, path) = required(policy, path, "maxAttempts")?;
        let attempts = as_count(value, &path)?;
        if attempts < 2 {
            return Err(invalid(
                &path,
                ConfigErrorKind::OutOfRange("greater than 1"),
            ));
        }
        // Above the cap is the cap (A6: "treated as 5", not an error).
        Ok(u32::try_from(attempts).unwrap_or(u32::MAX).min(self.cap))
    }

    fn retry_policy(
        &self,
        policy: &Json,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<MethodPolicy, ServiceConfigError> {
        let policy = as_object(policy, path)?;
        let max_attempts = self.max_attempts(policy, path)?;
        let (value, initial_path) = required(policy, path, "initialBackoff")?;
        let initial = as_duration(value, &initial_path, false)?;
        let (value, max_path) = required(policy, path, "maxBackoff")?;
        let max = as_duration(value, &max_path, false)?;
        let (value, multiplier_path) = required(policy, path, "backoffMultiplier")?;
        let multiplier = as_number(value, &multiplier_path)?;
        let (value, codes_path) = required(policy, path, "retryableStatusCodes")?;
        let retryable = as_codes(value, &codes_path)?;
        if retryable.is_empty() {
            return Err(invalid(
                &codes_path,
                ConfigErrorKind::OutOfRange("non-empty"),
            ));
        }
        let mut builder =
            RetryPolicy::grpc_builder(max_attempts, initial, max, multiplier, self.cap)
                .map_err(|error| at_field(path, error))?;
        if let Some(timeout) = timeout {
            builder = builder.deadline(timeout);
        }
        let policy = builder.build().map_err(|error| at_field(path, error))?;
        Ok(MethodPolicy::Retry { policy, retryable })
    }

    fn hedging_policy(
        &self,
        policy: &Json,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<MethodPolicy, ServiceConfigError> {
        let policy = as_object(policy, path)?;
        let max_attempts = self.max_attempts(policy, path)?;
        let delay = field(policy, path, "hedgingDelay")?
            .map(|(value, path)| as_duration(value, &path, true))
            .transpose()?
            .unwrap_or(Duration::ZERO);
        let non_fatal = field(policy, path, "nonFatalStatusCodes")?
            .map(|(value, path)| as_codes(value, &path))
            .transpose()?
            .unwrap_or(CodeSet::EMPTY);
        let mut builder = HedgingPolicy::builder()
            .attempts_cap(self.cap.min(MAX_HEDGED_ATTEMPTS))
            .max_attempts(max_attempts)
            .hedging_delay(delay);
        if let Some(timeout) = timeout {
            builder = builder.deadline(timeout);
        }
        let policy = builder.build().map_err(|error| at_field(path, error))?;
        Ok(MethodPolicy::Hedging { policy, non_fatal })
    }
}

/// The `(service, method)` key of one `name` entry.
fn name_key(name: &Json, path: &str) -> Result<(String, String), ServiceConfigError> {
    let name = as_object(name, path)?;
    let service = field(name, path, "service")?
        .map(|(value, path)| as_str(value, &path).map(ToOwned::to_owned))
        .transpose()?
        .unwrap_or_default();
    let method = field(name, path, "method")?
        .map(|(value, path)| as_str(value, &path).map(ToOwned::to_owned))
        .transpose()?
        .unwrap_or_default();
    if service.is_empty() && !method.is_empty() {
        return Err(ServiceConfigError::new(
            join(path, "method"),
            ServiceConfigErrorKind::MethodWithoutService,
        ));
    }
    Ok((service, method))
}

fn retry_throttling(value: &Json, path: &str) -> Result<RetryThrottling, ServiceConfigError> {
    let value = as_object(value, path)?;
    let (tokens, tokens_path) = required(value, path, "maxTokens")?;
    let max_tokens = as_count(tokens, &tokens_path)?;
    let (ratio, ratio_path) = required(value, path, "tokenRatio")?;
    let ratio = as_number(ratio, &ratio_path)?;
    if ratio <= 0.0 {
        return Err(invalid(
            &ratio_path,
            ConfigErrorKind::OutOfRange("greater than 0"),
        ));
    }
    let throttle =
        Throttle::new(u32::try_from(max_tokens).unwrap_or(u32::MAX), ratio).map_err(|error| {
            let path = match error.field() {
                "max_tokens" => &tokens_path,
                _ => &ratio_path,
            };
            invalid(path, error.kind())
        })?;
    Ok(RetryThrottling {
        max_tokens: throttle.max_tokens_milli() / 1000,
        ratio_milli: throttle.token_ratio_milli(),
    })
}
