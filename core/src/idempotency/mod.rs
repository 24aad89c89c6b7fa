//! Idempotency: when replaying a request is safe.
//!
//! A retry replays a request. If the first attempt may have run
//! ([`Replay::Unknown`]) and the method is not idempotent, the replay may do
//! the work twice — a retried `charge()` bills twice. The client-side gate,
//! [`Idempotency`], refuses such replays; a method becomes safe to retry by
//! carrying an idempotency key that the server deduplicates on.
//!
//! Both halves live here:
//!
//! | half | type | what it does |
//! |---|---|---|
//! | client | [`Idempotency`] | the gate: which failures [`Retry`](crate::Retry) may replay |
//! | both | [`fingerprint`] | a stable 64-bit hash of a payload: what the table compares to answer 422 |
//! | client | [`IdempotencyKey`] | a random key, made once per logical call and sent with every attempt |
//! | server | [`IdempotencyTable`] | runs each key's request once, replays its response to retries (`no_std`, fixed capacity) |
//! | server | `SyncIdempotencyTable` | the same table behind a `Mutex`, for threads (`std`) |
//!
//! # A keyed `charge`, end to end
//!
//! ```
//! use stormguard::{Begin, IdempotencyKey, IdempotencyTable, Instant, Random};
//!
//! // The server: at most 16 keys remembered, for 24 hours each.
//! let mut table: IdempotencyTable<IdempotencyKey, u64, 16> = IdempotencyTable::new();
//! let mut balance = 100_u64;
//! let mut charge = |key: IdempotencyKey, amount: u64, now: Instant| -> Option<u64> {
//!     match table.begin(key, amount, now) {
//!         Begin::Execute(ticket) => {
//!             balance -= amount; // the side effect
//!             let receipt = balance;
//!             table.complete(ticket, receipt, now).ok()?;
//!             Some(receipt)
//!         }
//!         Begin::Replay(receipt) => Some(*receipt),
//!         _ => None, // 409, 422 or 503
//!     }
//! };
//!
//! // The client: one key per logical call, reused by every retry.
//! let key = IdempotencyKey::from_rng(&mut Random::with_seed(1));
//! let first = charge(key, 30, Instant::ZERO); // its response is lost…
//! let retry = charge(key, 30, Instant::from_secs(1)); // …so the client retries
//! assert_eq!(first, retry);
//! assert_eq!(retry, Some(70)); // billed once
//! ```

mod fingerprint;
mod key;
#[cfg(feature = "std")]
mod sync_table;
mod table;

pub use fingerprint::fingerprint;
pub use key::{IdempotencyKey, KeyParseError};
#[cfg(feature = "std")]
pub use sync_table::SyncIdempotencyTable;
pub use table::{Begin, IdempotencyTable, StaleTicket, Ticket};

use crate::failure::Replay;

/// Whether replaying a method's request is safe.
///
/// RFC 9110 §9.2.2: a client may retry a request automatically only if the
/// method is idempotent, or the request is known to be idempotent (it carries
/// a key the server deduplicates on), or it is known not to have been
/// applied. [`Retry`](crate::Retry) enforces exactly that: an
/// [`Unknown`](Replay::Unknown) replay of a [`NonIdempotent`](Idempotency::NonIdempotent)
/// method gives up with [`GiveUp::UnsafeToReplay`](crate::GiveUp::UnsafeToReplay).
///
/// ```
/// use stormguard::{Idempotency, Replay};
/// assert!(Idempotency::Idempotent.allows_replay(Replay::Unknown));
/// assert!(Idempotency::Keyed.allows_replay(Replay::Unknown));
/// assert!(!Idempotency::NonIdempotent.allows_replay(Replay::Unknown));
/// assert!(Idempotency::NonIdempotent.allows_replay(Replay::NotSent));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// Running it twice has the effect of running it once (GET, PUT, DELETE,
    /// a read, `greet`). The default, as in every retry library: declare
    /// the methods that are not.
    #[default]
    Idempotent,
    /// Running it twice does the work twice (POST, `charge`): replayed only
    /// when the failed attempt certainly did not run.
    NonIdempotent,
    /// Not idempotent by nature, but every attempt carries the same
    /// idempotency key and the server deduplicates on it.
    Keyed,
}

impl Idempotency {
    /// Whether a failure with this replay safety may be retried.
    ///
    /// ```
    /// use stormguard::{Idempotency, Replay};
    /// assert!(Idempotency::NonIdempotent.allows_replay(Replay::Rejected));
    /// ```
    pub const fn allows_replay(self, replay: Replay) -> bool {
        match self {
            Idempotency::Idempotent | Idempotency::Keyed => true,
            Idempotency::NonIdempotent => replay.is_safe_for_any_method(),
        }
    }
}
