//! Shared helpers for stormguard's cross-crate scenario tests, and the
//! root README's Rust examples, compiled and run as doc tests.

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
