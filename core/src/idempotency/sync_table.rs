//! The idempotency table for servers with many threads.

use core::hash::{Hash, Hasher};
use core::time::Duration;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::config::ConfigError;
use hash32::FnvHasher;

use crate::idempotency::table::{
    validate_timeouts, Begin, IdempotencyTable, StaleTicket, Ticket, DEFAULT_IN_FLIGHT_TIMEOUT,
};
use crate::time::Instant;

/// An [`IdempotencyTable`] behind a [`Mutex`], shared by `&self` across
/// threads: the same answers, for a server whose handlers run in parallel.
///
/// Every method takes the lock for one table operation — constant time,
/// whatever `N` — and never while the request runs: `begin` marks the key
/// in flight and returns, the work happens outside the lock, and
/// `complete` or `abort` takes the lock again. Two threads racing with the
/// same key therefore get one `Execute` and one `InProgress`, exactly as if
/// they had called the plain table one after the other.
///
/// [`begin`](Self::begin) returns a *clone* of a replayed response
/// (`R: Clone`), since a reference cannot outlive the lock; wrap a large
/// response in an `Arc` to make that clone cheap, or use
/// [`with_table`](Self::with_table).
///
/// A thread that panicked while holding the lock (a panicking `K::eq`,
/// `K::hash`, `R::clone` or `R::drop`) does not disable the table: the
/// table's entries are never left half-written, so the lock's poison is
/// ignored.
///
/// The bounds are the table's: `N` a power of two from 2 to 65 536,
/// `K: Hash + Eq`, and a key hasher `S` (FNV-1a by default).
///
/// Only with the `std` feature. `new` is `const`, so a large table can be
/// a `static` rather than a stack value.
///
/// ```
/// use stormguard::{Begin, IdempotencyKey, Instant, SyncIdempotencyTable};
///
/// static TABLE: SyncIdempotencyTable<IdempotencyKey, u64, 64> = SyncIdempotencyTable::new();
///
/// let key = IdempotencyKey::new();
/// let answers: Vec<Begin<u64>> = std::thread::scope(|s| {
///     let handles: Vec<_> = (0..4)
///         .map(|_| s.spawn(|| TABLE.begin(key, 0xfeed, Instant::ZERO)))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// let executes = answers.iter().filter(|a| matches!(a, Begin::Execute(_))).count();
/// assert_eq!(executes, 1); // the other three were told 409
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub struct SyncIdempotencyTable<K, R, const N: usize, S = FnvHasher> {
    table: Mutex<IdempotencyTable<K, R, N, S>>,
}

impl<K, R, const N: usize, S> SyncIdempotencyTable<K, R, N, S> {
    /// An empty table with [`IdempotencyTable::new`]'s defaults (24 h TTL,
    /// 60 s in-flight lease).
    ///
    /// ```
    /// use stormguard::SyncIdempotencyTable;
    /// let table: SyncIdempotencyTable<u128, u64, 8> = SyncIdempotencyTable::new();
    /// assert_eq!(table.live_entries(stormguard::Instant::ZERO), 0);
    /// ```
    pub const fn new() -> Self {
        SyncIdempotencyTable::from_table(IdempotencyTable::new())
    }

    /// An empty table keeping completed entries for `ttl`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `ttl` when it is zero.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::SyncIdempotencyTable;
    /// let err = SyncIdempotencyTable::<u128, u64, 8>::with_ttl(Duration::ZERO).unwrap_err();
    /// assert_eq!(err.field(), "ttl");
    /// ```
    pub const fn with_ttl(ttl: Duration) -> Result<Self, ConfigError> {
        SyncIdempotencyTable::with_timeouts(ttl, DEFAULT_IN_FLIGHT_TIMEOUT)
    }

    /// An empty table keeping completed entries for `ttl` and leasing
    /// running requests their keys for `in_flight_timeout`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `ttl` or `in_flight_timeout` when it is
    /// zero.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::SyncIdempotencyTable;
    /// let table = SyncIdempotencyTable::<u128, u64, 8>::with_timeouts(
    ///     Duration::from_secs(3600),
    ///     Duration::from_secs(30),
    /// )?;
    /// assert_eq!(table.with_table(|t| t.in_flight_timeout()), Duration::from_secs(30));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn with_timeouts(
        ttl: Duration,
        in_flight_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        match validate_timeouts(ttl, in_flight_timeout) {
            Ok(()) => Ok(SyncIdempotencyTable::from_table(
                IdempotencyTable::with_valid_timeouts(ttl, in_flight_timeout),
            )),
            Err(err) => Err(err),
        }
    }

    /// Shares an existing table.
    ///
    /// ```
    /// use stormguard::{IdempotencyTable, SyncIdempotencyTable};
    /// let table = SyncIdempotencyTable::from_table(IdempotencyTable::<u8, u8, 4>::new());
    /// assert_eq!(table.with_table(|t| t.capacity()), 4);
    /// ```
    pub const fn from_table(table: IdempotencyTable<K, R, N, S>) -> Self {
        SyncIdempotencyTable {
            table: Mutex::new(table),
        }
    }

    /// The table back, once no thread shares it.
    ///
    /// ```
    /// use stormguard::SyncIdempotencyTable;
    /// let table = SyncIdempotencyTable::<u8, u8, 4>::new().into_inner();
    /// assert_eq!(table.capacity(), 4);
    /// ```
    pub fn into_inner(self) -> IdempotencyTable<K, R, N, S> {
        self.table
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the table under the lock: several operations at once,
    /// or a look at a stored response without cloning it.
    ///
    /// Keep `f` short — every other thread's `begin` waits for it — and
    /// never do a request's work inside it.
    ///
    /// ```
    /// use stormguard::{Begin, Instant, SyncIdempotencyTable};
    /// let table = SyncIdempotencyTable::<u8, String, 4>::new();
    /// if let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) {
    ///     table.complete(ticket, "a long body".to_string(), Instant::ZERO).ok();
    /// }
    /// let len = table.with_table(|t| match t.begin(1, 0, Instant::ZERO) {
    ///     Begin::Replay(body) => body.len(),
    ///     _ => 0,
    /// });
    /// assert_eq!(len, 11);
    /// ```
    pub fn with_table<T>(&self, f: impl FnOnce(&mut IdempotencyTable<K, R, N, S>) -> T) -> T {
        f(&mut self.lock())
    }

    /// [`IdempotencyTable::complete`], under the lock.
    ///
    /// # Errors
    /// [`StaleTicket`], holding `response`, when the ticket's lease has run
    /// out; no entry changes.
    ///
    /// ```
    /// use stormguard::{Begin, Instant, SyncIdempotencyTable};
    /// let table = SyncIdempotencyTable::<u8, u8, 4>::new();
    /// let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
    /// table.complete(ticket, 200, Instant::ZERO)?;
    /// assert_eq!(table.begin(1, 0, Instant::ZERO), Begin::Replay(200));
    /// # Ok::<(), stormguard::StaleTicket<u8>>(())
    /// ```
    pub fn complete(
        &self,
        ticket: Ticket,
        response: R,
        now: Instant,
    ) -> Result<(), StaleTicket<R>> {
        self.lock().complete(ticket, response, now)
    }

    /// [`IdempotencyTable::live_entries`], under the lock.
    ///
    /// ```
    /// use stormguard::{Instant, SyncIdempotencyTable};
    /// let table = SyncIdempotencyTable::<u8, u8, 4>::new();
    /// let _ = table.begin(1, 0, Instant::ZERO);
    /// assert_eq!(table.live_entries(Instant::ZERO), 1);
    /// ```
    pub fn live_entries(&self, now: Instant) -> usize {
        self.lock().live_entries(now)
    }

    fn lock(&self) -> MutexGuard<'_, IdempotencyTable<K, R, N, S>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Hash + Eq, R, const N: usize, S> SyncIdempotencyTable<K, R, N, S> {
    /// [`IdempotencyTable::abort`], under the lock.
    ///
    /// # Errors
    /// [`StaleTicket`] when the ticket's lease has run out; no entry changes.
    ///
    /// ```
    /// use stormguard::{Begin, Instant, SyncIdempotencyTable};
    /// let table = SyncIdempotencyTable::<u8, u8, 4>::new();
    /// let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
    /// table.abort(ticket)?;
    /// assert!(matches!(table.begin(1, 0, Instant::ZERO), Begin::Execute(_)));
    /// # Ok::<(), stormguard::StaleTicket>(())
    /// ```
    pub fn abort(&self, ticket: Ticket) -> Result<(), StaleTicket> {
        self.lock().abort(ticket)
    }

    /// [`IdempotencyTable::purge_expired`], under the lock.
    ///
    /// ```
    /// use stormguard::{Instant, SyncIdempotencyTable};
    /// let table = SyncIdempotencyTable::<u8, u8, 4>::new();
    /// let _ = table.begin(1, 0, Instant::ZERO); // in flight, never completed
    /// assert_eq!(table.purge_expired(Instant::from_secs(60)), 1); // its lease ran out
    /// ```
    pub fn purge_expired(&self, now: Instant) -> usize {
        self.lock().purge_expired(now)
    }
}

impl<K: Hash + Eq, R: Clone, const N: usize, S: Hasher + Default> SyncIdempotencyTable<K, R, N, S> {
    /// [`IdempotencyTable::begin`], under the lock, with a replayed
    /// response cloned out of it.
    ///
    /// ```
    /// use stormguard::{Begin, Instant, SyncIdempotencyTable};
    /// let table = SyncIdempotencyTable::<u32, u8, 4>::new();
    /// assert!(matches!(table.begin(10, 1, Instant::ZERO), Begin::Execute(_)));
    /// assert_eq!(table.begin(10, 1, Instant::ZERO), Begin::InProgress);
    /// assert_eq!(table.begin(10, 2, Instant::ZERO), Begin::Mismatch);
    /// ```
    pub fn begin(&self, key: K, fingerprint: u64, now: Instant) -> Begin<R> {
        self.lock().begin(key, fingerprint, now).cloned()
    }
}

impl<K, R, const N: usize, S> core::fmt::Debug for SyncIdempotencyTable<K, R, N, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SyncIdempotencyTable")
            .field("table", &*self.lock())
            .finish()
    }
}

impl<K, R, const N: usize, S> Default for SyncIdempotencyTable<K, R, N, S> {
    /// Same as [`SyncIdempotencyTable::new`].
    fn default() -> Self {
        SyncIdempotencyTable::new()
    }
}
