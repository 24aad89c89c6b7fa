//! Ready-made classifiers: from a protocol's answer to a [`Failure`].
//!
//! The retry state machine never looks at errors; it needs three facts about
//! each failed attempt — its [`FailureClass`], whether it may have run
//! ([`Replay`]) and what the server said about retrying ([`RetryAfter`]).
//! Getting those facts wrong is how retries turn into storms: retrying a 400
//! wastes an attempt, replaying a non-idempotent request that already ran
//! corrupts data, and ignoring a server's "not before" hint hammers it when
//! it is least able to cope. This module does the reduction once, carefully,
//! for the two protocols most callers speak:
//!
//! - [`http`]: status codes and methods (RFC 9110 §15, §9.2.2; RFC 6585 for
//!   429) and the `Retry-After` field (RFC 9110 §10.2.3, with all three
//!   HTTP-date forms of §5.6.7).
//! - [`grpc`]: status codes, the configurable retryable set
//!   (`retryableStatusCodes`) and the `grpc-retry-pushback-ms` trailer, as
//!   gRPC proposal A6 specifies them.
//!
//! Every function here is a pure function of its input: no clock is read
//! (`now` is a parameter), nothing allocates, and no input — however hostile —
//! panics.
//!
//! ```
//! use stormguard::classify::{grpc, http};
//! use stormguard::FailureClass;
//!
//! let f = http::failure_for_response(503, Some(b"120".as_slice()), 0).unwrap();
//! assert_eq!(f.class(), FailureClass::Overloaded);
//!
//! let retryable = grpc::CodeSet::default();
//! assert_eq!(retryable.classify(grpc::Code::Unavailable), Some(FailureClass::Transient));
//! ```
//!
//! [`Failure`]: crate::Failure
//! [`FailureClass`]: crate::FailureClass
//! [`Replay`]: crate::Replay
//! [`RetryAfter`]: crate::RetryAfter

pub mod grpc;
pub mod http;
mod http_date;
mod retry_after;

pub use retry_after::{parse_retry_after, RetryAfterError};
