#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
//! stormguard (skeleton; crate docs come with the state machine)

#[cfg(feature = "std")]
extern crate std;

pub mod failure;
pub mod time;

pub use failure::{Failure, FailureClass, Replay, RetryAfter};
pub use time::Instant;
