//! What the Python Redis store (`stormguard/redis.py`) takes from Rust so
//! that both languages share one source of truth: the Lua scripts and the
//! key layout of `stormguard-redis`.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use stormguard_redis::{keys, scripts};

/// The store's Lua scripts by name (`begin`, `complete`, `abort`,
/// `inspect`): the files of `adapters/redis/scripts/`, compiled in.
#[pyfunction]
pub(crate) fn redis_scripts() -> BTreeMap<&'static str, &'static str> {
    scripts::ALL.into_iter().collect()
}

/// The Redis key of `key`'s entry under `prefix`: `<prefix>{<key>}`, with
/// `%`, `{` and `}` in the key escaped. `ValueError` names the field at
/// fault.
#[pyfunction]
pub(crate) fn redis_entry_key(prefix: &str, key: &str) -> PyResult<String> {
    keys::entry_key(prefix, key).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The fence counter's key, in the entry's hash slot.
#[pyfunction]
pub(crate) fn redis_fence_key(entry: &str) -> String {
    keys::fence_key(entry)
}

/// `ValueError` unless `prefix` is a valid key prefix (no braces, at most
/// 128 bytes).
#[pyfunction]
pub(crate) fn redis_check_prefix(prefix: &str) -> PyResult<()> {
    keys::check_prefix(prefix).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// `ValueError` unless `fingerprint` is at most 1024 bytes.
#[pyfunction]
pub(crate) fn redis_check_fingerprint(fingerprint: &[u8]) -> PyResult<()> {
    keys::check_fingerprint(fingerprint).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The Redis Cluster hash slot of a Redis key.
#[pyfunction]
pub(crate) fn redis_hash_slot(key: &str) -> u16 {
    keys::hash_slot(key)
}
