//! Shared helpers for stormguard's cross-crate scenario tests.
