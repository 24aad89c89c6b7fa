//! Shared helpers for stormguard's cross-crate scenario tests, and the
//! READMEs' Rust examples, compiled and run as doc tests.

/// The root README's examples, compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The core crate's README (its crates.io page), compiled and run here
/// rather than in the core: its async quick start runs on smol, which the
/// core does not depend on, not even for its tests.
#[doc = include_str!("../../core/README.md")]
#[cfg(doctest)]
pub struct CoreReadmeDoctests;
