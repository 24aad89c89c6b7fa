//! Idempotency: when replaying a request is safe.
//!
//! A retry replays a request. If the first attempt may have run
//! ([`Replay::Unknown`]) and the method is not idempotent, the replay may do
//! the work twice — a retried `charge()` bills twice. The client-side gate,
//! [`Idempotency`], refuses such replays; a method becomes safe to retry by
//! carrying an idempotency key that the server deduplicates on.

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
