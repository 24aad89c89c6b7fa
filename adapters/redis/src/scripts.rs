//! The Lua scripts, one per transition: the single source of truth for
//! every client of the store.
//!
//! Each script is one file under `adapters/redis/scripts/`, compiled into
//! this crate with `include_str!`; the Python store reads the same text from
//! the stormguard wheel (which embeds these constants), so Rust and Python
//! servers sharing one Redis run byte-for-byte the same transitions. Each
//! starts with a `#!lua` line (Redis 7.0 or later, or Valkey): Redis then
//! refuses a write script before it runs when memory is full, instead of
//! stopping it half-way.
//!
//! | script | keys | arguments | replies |
//! |---|---|---|---|
//! | [`BEGIN`] | entry, fence counter | fingerprint, owner token, lease ms, fence TTL ms | `{'execute', generation}`, `{'replay', response}`, `{'in_progress', lease_left_ms}`, `{'mismatch'}` |
//! | [`COMPLETE`] | entry | owner token, response, TTL ms | `'ok'`, `'stale'` |
//! | [`ABORT`] | entry | owner token | `'ok'`, `'stale'` |
//! | [`INSPECT`] | entry | — | nil, or `{state, fingerprint, owner, generation, expires_in_ms}` |
//!
//! ```
//! use stormguard_redis::scripts;
//! assert!(scripts::BEGIN.starts_with("#!lua"));
//! assert_eq!(scripts::ALL.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
//!            ["begin", "complete", "abort", "inspect"]);
//! ```

/// `begin(key, fingerprint, owner)`: look the key up, and claim it if it is
/// free (see the module's table).
///
/// ```
/// assert!(stormguard_redis::scripts::BEGIN.contains("'execute'"));
/// ```
pub const BEGIN: &str = include_str!("../scripts/begin.lua");

/// `complete(ticket, response)`: store the response if the ticket still
/// holds the key's lease.
///
/// ```
/// assert!(stormguard_redis::scripts::COMPLETE.contains("'stale'"));
/// ```
pub const COMPLETE: &str = include_str!("../scripts/complete.lua");

/// `abort(ticket)`: release the key if the ticket still holds its lease.
///
/// ```
/// assert!(stormguard_redis::scripts::ABORT.contains("DEL"));
/// ```
pub const ABORT: &str = include_str!("../scripts/abort.lua");

/// `inspect(key)`: read an entry without changing it (a `no-writes`
/// script, allowed on replicas).
///
/// ```
/// assert!(stormguard_redis::scripts::INSPECT.starts_with("#!lua flags=no-writes"));
/// ```
pub const INSPECT: &str = include_str!("../scripts/inspect.lua");

/// Every script with its name, in the order of the module's table.
///
/// ```
/// for (name, text) in stormguard_redis::scripts::ALL {
///     assert!(text.contains(name), "{name}");
/// }
/// ```
pub const ALL: [(&str, &str); 4] = [
    ("begin", BEGIN),
    ("complete", COMPLETE),
    ("abort", ABORT),
    ("inspect", INSPECT),
];
