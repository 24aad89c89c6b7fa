//! [stormguard]'s idempotency table for a fleet of servers, on Redis.
//!
//! A retried `POST /charge` carrying an `Idempotency-Key` is safe only if
//! the server that receives the retry knows about the first attempt — and
//! behind a load balancer the retry usually lands on another replica. This
//! crate keeps the table where every replica sees it: in the Redis the
//! fleet already runs. The verbs and answers are those of the in-process
//! [`stormguard::IdempotencyTable`]:
//!
//! | verb | answers |
//! |---|---|
//! | [`begin`](RedisStore::begin)`(key, fingerprint)` | [`Begin::Execute`]`(ticket)`, [`Begin::Replay`]`(response)`, [`Begin::InProgress`] (409), [`Begin::Mismatch`] (422) |
//! | [`complete`](RedisStore::complete)`(&ticket, response)` | `Ok`, [`Error::Stale`] |
//! | [`abort`](RedisStore::abort)`(&ticket)` | `Ok`, [`Error::Stale`] |
//!
//! and every verb may answer [`Error::Unavailable`] (503).
//!
//! # Guarantees
//!
//! - **Every transition is one atomic Lua script** ([`scripts`]): a lookup
//!   and a claim cannot interleave with another replica's.
//! - **An in-flight entry always has a lease.** Entries are written only by
//!   `SET … PX`, so Redis cannot hold one without an expiry: a crashed
//!   worker's key frees itself when its lease ends (the AWS Powertools bug
//!   of an in-progress record without expiry cannot happen).
//! - **Fencing.** A ticket acts only while the entry carries its owner
//!   token, i.e. while its lease lasts; a worker that outlived its lease gets
//!   [`Error::Stale`] and cannot overwrite the new owner's result.
//! - **Completed entries expire** after the configured TTL (24 h by
//!   default, as Stripe).
//! - **Redis Cluster.** A request's keys share a hash tag
//!   (`<prefix>{<key>}`, see [`keys`]), so each script runs on one node.
//! - **Nothing runs twice because of the store's own retries.** A reply
//!   that is lost (a timeout, a reset connection, a reconnect) is retried
//!   with the same owner token: a re-sent `begin` is recognised and returns
//!   the same ticket, not a second claim; a re-sent `complete` finds its own
//!   response stored. When Redis cannot be reached at all, `begin` answers
//!   [`Error::Unavailable`] and the request must not run: the work never
//!   runs without a claim.
//!
//! # Limits
//!
//! - **A lease that ends while the work still runs** lets a retry run the
//!   request again: choose a lease longer than the slowest request. The late
//!   worker is fenced (its `complete` is refused), but its side effect has
//!   happened; pass [`Ticket::fencing_token`] to a downstream store that can
//!   refuse stale tokens to fence the side effect too.
//! - **A worker that crashes after its side effect and before `complete`**
//!   leaves a request that ran without a stored response; after the lease a
//!   retry runs it again. Only a side effect committed in the same
//!   transaction as the response closes that window (Stripe's "atomic
//!   phases").
//! - **Redis must keep what it stores**: with `maxmemory`, use the
//!   `noeviction` policy (every entry has an expiry, so any `volatile-*` or
//!   `allkeys-*` policy may evict live entries); a Redis that loses its data
//!   (a restart without persistence, a failover to a replica that had not
//!   received the latest writes) forgets completed keys, and their retries
//!   run again.
//! - **Clocks:** leases and TTLs run on the Redis server's clock, the only
//!   clock the fleet shares; the client-side [`Ticket::lease_ends`] is a
//!   conservative estimate.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use stormguard_redis::{Begin, BlockingRedisStore, StoreConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = StoreConfig::builder()
//!     .prefix("payments:idem:")
//!     .lease(Duration::from_secs(30)) // longer than the slowest charge
//!     .build()?;
//! let store = BlockingRedisStore::open("redis://127.0.0.1:6379/", config)?;
//! let response = match store.begin("9c7e…", b"sha256(POST /charge {alice, 30})")? {
//!     Begin::Execute(ticket) => {
//!         let receipt = b"charged alice 30".to_vec(); // the side effect
//!         store.complete(&ticket, &receipt)?;
//!         receipt
//!     }
//!     Begin::Replay(receipt) => receipt, // the same answer, again
//!     refused => return Err(format!("HTTP {:?}", refused.refusal_status()).into()),
//! };
//! # Ok(()) }
//! ```
//!
//! The README has the same on smol, started against a Redis of the
//! example's own; [`testing::RedisServer`] starts one for tests.
//!
//! # Features
//!
//! - `client` (default): the store, on the `redis` crate with smol
//!   (`smol-comp`): no tokio runtime. Without it the crate is only
//!   [`scripts`] and [`keys`], which the Python binding embeds so that Python
//!   servers run the same scripts.
//! - `cluster`: Redis Cluster connections
//!   (`redis::cluster_async::ClusterConnection` as the store's `C`).
//!
//! Requires Redis 7.0 or later (or Valkey): the scripts declare themselves
//! with a `#!lua` line.
//!
//! [stormguard]: https://docs.rs/stormguard

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod keys;
pub mod scripts;

#[cfg(feature = "client")]
mod config;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
mod store;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod testing;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use config::{StoreConfig, StoreConfigBuilder};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use error::{Error, Unavailable};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use store::{Begin, BlockingRedisStore, Entry, EntryState, RedisStore, Ticket};

/// The README's example, compiled and run as a doc test.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
