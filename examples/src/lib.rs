//! Runnable programs showing stormguard at work, and the library behind the
//! headline one: the brownout simulator (`src/bin/brownout.rs`), whose
//! scenarios and studies the tests in `tests/tests/brownout.rs` run on a
//! small configuration.

pub mod brownout;
pub mod cli;
pub mod loopback;
