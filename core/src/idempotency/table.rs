//! The server half of a keyed method: a fixed-capacity table that runs each
//! keyed request once and replays its stored response to every retry.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::time::Duration;

use hash32::{BuildHasherDefault, FnvHasher};
use heapless::index_map::IndexMap;

use crate::config::{ConfigError, ConfigErrorKind};
use crate::time::{duration_to_nanos, Instant};

/// Stripe keeps keys for at least 24 hours.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Longer than any request a client is still waiting on.
pub(crate) const DEFAULT_IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);

/// The end of a list, and a slot that is not on one.
const NIL: u32 = u32::MAX;

/// A fixed-capacity idempotency table: from a request's key to "in flight"
/// or to its stored response, so a retried request runs once.
///
/// A client that never learns whether its `charge` ran (the response was
/// lost) can only retry; the server makes that retry harmless by
/// remembering each key it has seen and answering a repeat with the
/// response it stored the first time. This is that memory, sized at compile
/// time: up to `N` entries, no allocation, usable in a `static` on
/// firmware. The semantics follow Stripe's idempotent requests and the IETF
/// draft "The Idempotency-Key HTTP Header Field":
///
/// | [`begin`](Self::begin) answers | when | the server replies |
/// |---|---|---|
/// | [`Begin::Execute`]`(ticket)` | the key is new (or its entry has expired) | run the request, then [`complete`](Self::complete) or [`abort`](Self::abort) |
/// | [`Begin::Replay`]`(&response)` | the key's request completed | the stored response, again |
/// | [`Begin::InProgress`] | the key's request is still running | `409 Conflict` |
/// | [`Begin::Mismatch`] | the key was used with another payload (fingerprint) | `422 Unprocessable Content` |
/// | [`Begin::Full`] | every entry is live and none is this key's | `503 Service Unavailable` |
///
/// # Rules
///
/// - **Completed** entries expire `ttl` after [`complete`](Self::complete)
///   (default 24 h, as Stripe): the client has the whole TTL to retry. A
///   key used after its entry expired is a new request (Stripe: "reuse after
///   pruning = a new request").
/// - **In-flight** entries hold a lease of `in_flight_timeout` from
///   [`begin`](Self::begin) (default 60 s). A worker that crashed must not
///   lock its key forever: once the lease has run out the entry counts as
///   gone, so the next `begin` with that key gets `Execute` again (a
///   *takeover*), and the old [`Ticket`] is fenced — its `complete` or
///   `abort` returns [`StaleTicket`] and changes no entry. The fence holds
///   even when nobody has taken over yet: a worker that outlived its lease
///   has lost its key. Choose a lease longer than the slowest request, since
///   a takeover runs the request again.
/// - **Responses of failures are stored too.** Stripe stores the result of
///   any request that began executing, 500s included; call
///   [`abort`](Self::abort) only when the work failed *before any side
///   effect*, so that a retry may run it again.
/// - **Capacity:** a new key takes a free entry or reclaims an expired one;
///   when every entry is live, `begin` answers [`Begin::Full`] and evicts
///   nothing — no stored response is lost while its client may still
///   retry, and no running request loses its key.
/// - **Time** is the caller's `now` ([`Instant`]). The table remembers the
///   latest `now` it was given and never lets its clock run backwards: an
///   earlier `now` counts as that latest instant, so a clock that steps back
///   neither panics nor brings an expired entry back to life.
/// - **Answers depend only on the calls made and the times given**, never
///   on where an entry happens to be stored; the property tests check every
///   answer against a `HashMap` model of these rules.
///
/// A worker that crashes after its side effect and before `complete` leaves
/// a request that ran without a stored response; after the lease a retry
/// runs it again. Only storing the response in the same transaction as the
/// side effect closes that window — this table is the in-memory half.
///
/// # Keys, fingerprints and tickets
///
/// `K` is whatever identifies a request: an
/// [`IdempotencyKey`](crate::IdempotencyKey), or better `(account, key)`,
/// since keys are unique but not secret. The fingerprint is a `u64` the
/// caller computes from the request's payload (a hash of its canonical
/// form): the same key with another fingerprint is a client bug, answered
/// with [`Begin::Mismatch`]. A [`Ticket`] belongs to the table that issued
/// it.
///
/// # Cost: constant time
///
/// `begin`, `complete` and `abort` never allocate, never panic and cost the
/// same at any `N`: one hash of the key and a short probe in a
/// [`heapless::index_map::IndexMap`] for `begin`, a direct index for
/// `complete` and `abort`. Expired entries are reclaimed without a scan:
/// in-flight entries sit on one list in the order their leases run out,
/// completed ones on another in the order they expire (each list is in
/// expiry order because the table's clock never runs backwards and each
/// list adds the same duration to it), so the entry to reclaim is always at
/// the head of one of them. `begin` reclaims at most one entry;
/// [`purge_expired`](Self::purge_expired) and
/// [`live_entries`](Self::live_entries) cost one step per expired entry.
///
/// The index is two `IndexMap`s of `N` probe slots each, a key's map chosen
/// by one bit of its hash: `N` entries in `2N` probe slots keep the
/// robin-hood probe sequences short even when the table is full (one map
/// of `N` slots holding `N` keys degrades to long probe runs).
///
/// # Type parameters and bounds
///
/// - `N`, the most entries the table holds, is a power of two from 2 to
///   65 536 (`IndexMap`'s rule); a table holding fewer live entries than
///   that takes a run-time [`with_limit`](Self::with_limit). Any other `N`
///   fails to compile.
/// - `K: Hash + Eq` for [`begin`](Self::begin).
/// - `S` is the [`Hasher`] that hashes keys, built with `Default` for each
///   key: FNV-1a (`hash32::FnvHasher`, `heapless`'s default) unless you
///   choose another. With keys a client chooses and a hasher without a
///   secret seed, a client can make keys collide on purpose, and a run of
///   colliding keys costs a scan of that run; a hosted server facing
///   untrusted clients can pass a hasher whose `Default` draws a per-process
///   secret key.
///
/// These bounds are new in 0.2 (the table was a linear scan over any `N`
/// and any `K: Eq` in 0.1): a table of 3 entries is now
/// `IdempotencyTable<K, R, 4>` with `.with_limit(3)`.
///
/// Memory: `size_of::<IdempotencyTable<K, R, N>>()` is about
/// `N × (2 × size_of::<(u16, K, u32, u32)>() + 8 + size_of::<(Option<R>, [u64; 3], [u32; 3], u8)>())`
/// bytes plus 96, up to field order and padding: each entry has a
/// place in both maps (a 16-bit hash, the key, its 32-bit hash and its slot
/// number), two 32-bit probe slots, and a slot holding the response, the
/// fingerprint, the generation, its expiry and its list links. On a 64-bit
/// target, with [`IdempotencyKey`](crate::IdempotencyKey) keys and `u64`
/// responses, that is 120 bytes an entry, and the table adds 96 bytes: 1024
/// entries take 120 KiB + 96 bytes.
///
/// # Example
/// ```
/// use core::time::Duration;
/// use stormguard::{Begin, IdempotencyKey, IdempotencyTable, Instant};
///
/// let mut table: IdempotencyTable<IdempotencyKey, u64, 1024> = IdempotencyTable::new();
/// assert_eq!(core::mem::size_of_val(&table), 1024 * 120 + 96);
///
/// let key = IdempotencyKey::from_u128(7);
/// let fingerprint = 0xc4a2_6e; // a hash of ("alice", 30)
/// let now = Instant::from_secs(100);
/// let Begin::Execute(ticket) = table.begin(key, fingerprint, now) else { unreachable!() };
/// let receipt = 1; // …charge alice 30…
/// table.complete(ticket, receipt, now + Duration::from_millis(20))?;
///
/// // The response was lost; the client retries with the same key:
/// let later = now + Duration::from_secs(1);
/// assert_eq!(table.begin(key, fingerprint, later), Begin::Replay(&1));
/// assert_eq!(table.begin(key, 0xbad, later), Begin::Mismatch);
/// # Ok::<(), stormguard::StaleTicket<u64>>(())
/// ```
pub struct IdempotencyTable<K, R, const N: usize, S = FnvHasher> {
    /// From key to slot: two maps, a key's chosen by bit 16 of its hash.
    index: [IndexMap<Stored<K>, (), BuildHasherDefault<Passthrough>, N>; 2],
    slots: [Slot<R>; N],
    /// In-flight entries, earliest lease end first.
    in_flight: List,
    /// Completed entries, earliest expiry first.
    completed: List,
    /// Released slots, linked through `next`.
    free: u32,
    /// Slots `fresh..N` have never been used.
    fresh: usize,
    /// Entries held (live, or expired and not yet reclaimed): at most `limit`.
    len: usize,
    ttl_nanos: u64,
    in_flight_timeout_nanos: u64,
    /// The latest `now` seen: the table's clock never runs backwards.
    latest: Instant,
    /// The generation the next `Execute` gets.
    next_generation: u64,
    /// At most this many entries (≤ N): a capacity chosen at run time.
    limit: usize,
    hasher: PhantomData<fn() -> S>,
}

/// One entry's state, at a stable place: tickets and lists name slots.
#[derive(Debug)]
struct Slot<R> {
    /// `None` unless completed.
    response: Option<R>,
    fingerprint: u64,
    generation: u64,
    /// In flight: when the lease runs out. Completed: when the entry
    /// expires. Either way the entry counts as gone from this instant on.
    until: Instant,
    /// The key's hash, to find its place in the index again.
    hash: u32,
    prev: u32,
    /// The next slot on this slot's list (or on the free list).
    next: u32,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    InFlight,
    Completed,
}

impl<R> Slot<R> {
    const FREE: Self = Slot {
        response: None,
        fingerprint: 0,
        generation: 0,
        until: Instant::ZERO,
        hash: 0,
        prev: NIL,
        next: NIL,
        state: State::Free,
    };

    fn is_live(&self, now: Instant) -> bool {
        self.state != State::Free && now < self.until
    }

    fn is_held_by(&self, ticket: &Ticket, now: Instant) -> bool {
        self.state == State::InFlight && self.generation == ticket.generation && now < self.until
    }
}

/// A doubly linked list of slots, in expiry order.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// Which list an entry is on.
#[derive(Clone, Copy)]
enum Which {
    InFlight,
    Completed,
}

/// A key as the index stores it: with its hash (so the index never hashes
/// the key again) and its slot.
#[derive(Debug)]
struct Stored<K> {
    id: SlotId,
    key: K,
}

/// A stored key's hash and slot: how the table finds an entry in the index
/// again without a copy of its key. Two entries of the index have the same
/// key exactly when they have the same slot, so comparing `SlotId`s agrees
/// with comparing keys there, as `Borrow` requires.
#[derive(Clone, Copy, Debug)]
struct SlotId {
    hash: u32,
    slot: u32,
}

impl Hash for SlotId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.hash);
    }
}

impl PartialEq for SlotId {
    fn eq(&self, other: &Self) -> bool {
        self.slot == other.slot
    }
}

impl Eq for SlotId {}

impl<K> Hash for Stored<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<K: PartialEq> PartialEq for Stored<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<K: Eq> Eq for Stored<K> {}

impl<K> Borrow<SlotId> for Stored<K> {
    fn borrow(&self) -> &SlotId {
        &self.id
    }
}

/// The index's hasher: hands on the 32-bit hash a [`Stored`] key writes.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u32` is ever called; fold anything else in anyway.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

/// Checks a table's timeouts: neither may be zero.
pub(crate) const fn validate_timeouts(
    ttl: Duration,
    in_flight_timeout: Duration,
) -> Result<(), ConfigError> {
    if ttl.is_zero() {
        return Err(ConfigError::new("ttl", ConfigErrorKind::Zero));
    }
    if in_flight_timeout.is_zero() {
        return Err(ConfigError::new("in_flight_timeout", ConfigErrorKind::Zero));
    }
    Ok(())
}

impl<K, R, const N: usize, S> IdempotencyTable<K, R, N, S> {
    /// An empty table with the defaults: completed entries kept 24 hours (as
    /// Stripe), in-flight leases of 60 seconds.
    ///
    /// `const`, so a table can be a `static` (behind a lock of the caller's
    /// choice, or `SyncIdempotencyTable` with `std`). `N` must be a power of
    /// two from 2 to 65 536, or this fails to compile.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::IdempotencyTable;
    /// let table: IdempotencyTable<u128, u64, 8> = IdempotencyTable::new();
    /// assert_eq!(table.ttl(), Duration::from_secs(86_400));
    /// assert_eq!(table.in_flight_timeout(), Duration::from_secs(60));
    /// ```
    ///
    /// ```compile_fail
    /// // 3 is not a power of two: take 4 with a limit of 3.
    /// let table: stormguard::IdempotencyTable<u8, u8, 3> = stormguard::IdempotencyTable::new();
    /// ```
    pub const fn new() -> Self {
        const {
            assert!(
                N >= 2 && N <= 65_536 && N.is_power_of_two(),
                "an IdempotencyTable's N must be a power of two from 2 to 65536"
            );
        }
        IdempotencyTable {
            index: [IndexMap::new(), IndexMap::new()],
            slots: [const { Slot::FREE }; N],
            in_flight: List::EMPTY,
            completed: List::EMPTY,
            free: NIL,
            fresh: 0,
            len: 0,
            ttl_nanos: duration_to_nanos(DEFAULT_TTL),
            in_flight_timeout_nanos: duration_to_nanos(DEFAULT_IN_FLIGHT_TIMEOUT),
            latest: Instant::ZERO,
            next_generation: 0,
            limit: N,
            hasher: PhantomData,
        }
    }

    /// The same table holding at most `limit` live entries (1..=N): a
    /// capacity chosen at run time, below the memory reserved by `N`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `capacity` when `limit` is zero or above N.
    ///
    /// ```
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u8, u8, 8>::new().with_limit(1)?;
    /// assert!(matches!(table.begin(1, 0, Instant::ZERO), Begin::Execute(_)));
    /// assert_eq!(table.begin(2, 0, Instant::ZERO), Begin::Full);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn with_limit(mut self, limit: usize) -> Result<Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::new("capacity", ConfigErrorKind::Zero));
        }
        if limit > N {
            return Err(ConfigError::new(
                "capacity",
                ConfigErrorKind::OutOfRange("at most the table's reserved size N"),
            ));
        }
        self.limit = limit;
        Ok(self)
    }

    /// An empty table keeping completed entries for `ttl`, with the default
    /// in-flight lease (60 s).
    ///
    /// # Errors
    /// A [`ConfigError`] naming `ttl` when it is zero (a table that forgets
    /// every response at once deduplicates nothing).
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{ConfigErrorKind, IdempotencyTable};
    /// let table = IdempotencyTable::<u128, u64, 8>::with_ttl(Duration::from_secs(3600))?;
    /// assert_eq!(table.ttl(), Duration::from_secs(3600));
    /// let err = IdempotencyTable::<u128, u64, 8>::with_ttl(Duration::ZERO).unwrap_err();
    /// assert_eq!((err.field(), err.kind()), ("ttl", ConfigErrorKind::Zero));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn with_ttl(ttl: Duration) -> Result<Self, ConfigError> {
        IdempotencyTable::with_timeouts(ttl, DEFAULT_IN_FLIGHT_TIMEOUT)
    }

    /// An empty table keeping completed entries for `ttl` and leasing each
    /// running request its key for `in_flight_timeout`.
    ///
    /// Durations beyond 584 years saturate; a lease that long never runs
    /// out (a crashed worker's key stays locked until the caller restarts
    /// the table).
    ///
    /// # Errors
    /// A [`ConfigError`] naming `ttl` or `in_flight_timeout` when it is zero.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::IdempotencyTable;
    /// let table = IdempotencyTable::<u128, u64, 8>::with_timeouts(
    ///     Duration::from_secs(3600),
    ///     Duration::from_secs(5),
    /// )?;
    /// assert_eq!(table.in_flight_timeout(), Duration::from_secs(5));
    /// let err = IdempotencyTable::<u128, u64, 8>::with_timeouts(Duration::from_secs(1), Duration::ZERO)
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid in_flight_timeout: must not be zero");
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn with_timeouts(
        ttl: Duration,
        in_flight_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        match validate_timeouts(ttl, in_flight_timeout) {
            Ok(()) => Ok(IdempotencyTable::with_valid_timeouts(
                ttl,
                in_flight_timeout,
            )),
            Err(err) => Err(err),
        }
    }

    /// An empty table with timeouts already checked by [`validate_timeouts`].
    pub(crate) const fn with_valid_timeouts(ttl: Duration, in_flight_timeout: Duration) -> Self {
        let mut table = IdempotencyTable::new();
        table.ttl_nanos = duration_to_nanos(ttl);
        table.in_flight_timeout_nanos = duration_to_nanos(in_flight_timeout);
        table
    }

    /// How long a completed entry is kept.
    ///
    /// ```
    /// # use stormguard::IdempotencyTable;
    /// assert_eq!(IdempotencyTable::<u8, u8, 2>::new().ttl().as_secs(), 86_400);
    /// ```
    pub const fn ttl(&self) -> Duration {
        Duration::from_nanos(self.ttl_nanos)
    }

    /// How long a running request holds its key before another request
    /// may take it over.
    ///
    /// ```
    /// # use stormguard::IdempotencyTable;
    /// assert_eq!(IdempotencyTable::<u8, u8, 2>::new().in_flight_timeout().as_secs(), 60);
    /// ```
    pub const fn in_flight_timeout(&self) -> Duration {
        Duration::from_nanos(self.in_flight_timeout_nanos)
    }

    /// The most live entries the table holds: `N`, or the limit set with
    /// [`with_limit`](IdempotencyTable::with_limit).
    ///
    /// ```
    /// # use stormguard::IdempotencyTable;
    /// assert_eq!(IdempotencyTable::<u8, u8, 16>::new().capacity(), 16);
    /// assert_eq!(IdempotencyTable::<u8, u8, 16>::new().with_limit(3)?.capacity(), 3);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub const fn capacity(&self) -> usize {
        self.limit
    }

    /// The number of live entries (in flight or completed, not expired) at
    /// `now` — or at the latest `now` the table has seen, if that is later.
    ///
    /// Costs one step per expired entry not yet reclaimed.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u8, u8, 4>::with_ttl(Duration::from_secs(1))?;
    /// let t0 = Instant::ZERO;
    /// if let Begin::Execute(ticket) = table.begin(1, 0, t0) {
    ///     table.complete(ticket, 42, t0).ok();
    /// }
    /// assert_eq!(table.live_entries(t0), 1);
    /// assert_eq!(table.live_entries(t0 + Duration::from_secs(1)), 0);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn live_entries(&self, now: Instant) -> usize {
        let now = now.max(self.latest);
        let expired =
            self.count_expired(self.in_flight, now) + self.count_expired(self.completed, now);
        self.len.saturating_sub(expired)
    }

    /// Reports that the request holding `ticket` finished at `now`, and
    /// stores its `response` for every retry of the key for the next `ttl`.
    ///
    /// Call it with the response the client would have got — an error
    /// included, once the work has begun to have effects — before sending
    /// it: a client whose response is then lost gets the same one from its
    /// retry ([`Begin::Replay`]).
    ///
    /// # Errors
    /// [`StaleTicket`] when the ticket's lease has run out (by `now` or the
    /// latest instant the table has seen): the key may already belong to a
    /// takeover. The response is handed back in the error and no entry
    /// changes — a late worker cannot overwrite another request's entry.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u8, &str, 4>::with_timeouts(
    ///     Duration::from_secs(60),
    ///     Duration::from_secs(1),
    /// )?;
    /// let Begin::Execute(slow) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
    /// // The lease runs out; a retry takes the key over.
    /// let Begin::Execute(retry) = table.begin(1, 0, Instant::from_secs(2)) else { unreachable!() };
    /// let stale = table.complete(slow, "late", Instant::from_millis(2_500)).unwrap_err();
    /// assert_eq!(stale.into_response(), "late");
    /// assert_eq!(table.complete(retry, "fresh", Instant::from_millis(2_500)), Ok(()));
    /// assert_eq!(table.begin(1, 0, Instant::from_secs(4)), Begin::Replay(&"fresh"));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn complete(
        &mut self,
        ticket: Ticket,
        response: R,
        now: Instant,
    ) -> Result<(), StaleTicket<R>> {
        let now = self.advance(now);
        let expires = now.saturating_add(Duration::from_nanos(self.ttl_nanos));
        let Some(slot) = self.held(&ticket, now) else {
            return Err(StaleTicket { response });
        };
        self.unlink(slot, Which::InFlight);
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            entry.response = Some(response);
            entry.until = expires;
            entry.state = State::Completed;
        }
        self.push_back(slot, Which::Completed);
        Ok(())
    }

    /// The table's clock: `now`, or the latest instant seen if that is later.
    fn advance(&mut self, now: Instant) -> Instant {
        if now > self.latest {
            self.latest = now;
        }
        self.latest
    }

    /// The slot `ticket` holds at `now`, if its lease has not run out.
    fn held(&self, ticket: &Ticket, now: Instant) -> Option<u32> {
        let slot = u32::try_from(ticket.slot).ok()?;
        self.slots
            .get(ticket.slot)
            .filter(|entry| entry.is_held_by(ticket, now))
            .map(|_| slot)
    }

    fn list(&mut self, which: Which) -> &mut List {
        match which {
            Which::InFlight => &mut self.in_flight,
            Which::Completed => &mut self.completed,
        }
    }

    fn push_back(&mut self, slot: u32, which: Which) {
        let tail = self.list(which).tail;
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            entry.prev = tail;
            entry.next = NIL;
        }
        match self.slots.get_mut(tail as usize) {
            Some(last) => last.next = slot,
            None => self.list(which).head = slot,
        }
        self.list(which).tail = slot;
    }

    /// Takes `slot` off list `which`. Taking off the head leaves the new
    /// head's `prev` as it was (a head's `prev` is never read: nothing is
    /// ever put before it), so reclaiming the oldest entry touches no other
    /// slot.
    fn unlink(&mut self, slot: u32, which: Which) {
        let (prev, next) = match self.slots.get_mut(slot as usize) {
            Some(entry) => {
                let links = (entry.prev, entry.next);
                entry.prev = NIL;
                entry.next = NIL;
                links
            }
            None => return,
        };
        let List { head, tail } = *self.list(which);
        let (is_head, is_tail) = (head == slot, tail == slot);
        if is_head {
            self.list(which).head = next;
        } else if let Some(before) = self.slots.get_mut(prev as usize) {
            before.next = next;
        }
        if is_tail {
            self.list(which).tail = if is_head { NIL } else { prev };
        } else if !is_head {
            if let Some(after) = self.slots.get_mut(next as usize) {
                after.prev = prev;
            }
        }
    }

    /// How many entries at the head of `list` have expired by `now`.
    fn count_expired(&self, list: List, now: Instant) -> usize {
        let mut count = 0;
        let mut at = list.head;
        while let Some(entry) = self.slots.get(at as usize) {
            if entry.is_live(now) {
                break;
            }
            count += 1;
            at = entry.next;
        }
        count
    }

    /// A slot for a new entry: a released one, or one never used.
    fn allocate(&mut self) -> Option<u32> {
        if let Some(entry) = self.slots.get(self.free as usize) {
            let slot = self.free;
            self.free = entry.next;
            return Some(slot);
        }
        if self.fresh < N {
            let slot = u32::try_from(self.fresh).ok()?;
            self.fresh += 1;
            return Some(slot);
        }
        None
    }

    /// Marks `slot` in flight for a new execution and returns its ticket.
    fn start(&mut self, slot: u32, hash: u32, fingerprint: u64, now: Instant) -> Ticket {
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let until = now.saturating_add(Duration::from_nanos(self.in_flight_timeout_nanos));
        let old = self.slots.get_mut(slot as usize).and_then(|entry| {
            entry.fingerprint = fingerprint;
            entry.generation = generation;
            entry.until = until;
            entry.hash = hash;
            entry.state = State::InFlight;
            entry.response.take()
        });
        self.push_back(slot, Which::InFlight);
        drop(old);
        Ticket {
            slot: slot as usize,
            generation,
        }
    }
}

impl<K: Hash + Eq, R, const N: usize, S> IdempotencyTable<K, R, N, S> {
    /// Releases the key held by `ticket`: the request failed before any
    /// side effect, so the next `begin` with the key may run it afresh.
    ///
    /// Stripe saves no result for a request that failed validation or never
    /// started executing; this is that case. Once the work may have had an
    /// effect, [`complete`](Self::complete) with the error response instead.
    ///
    /// # Errors
    /// [`StaleTicket`] when the ticket's lease has run out by the latest
    /// instant the table has seen; no entry changes.
    ///
    /// ```
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u8, u8, 4>::new();
    /// let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
    /// assert_eq!(table.begin(1, 0, Instant::ZERO), Begin::InProgress);
    /// table.abort(ticket)?;
    /// assert!(matches!(table.begin(1, 0, Instant::ZERO), Begin::Execute(_)));
    /// # Ok::<(), stormguard::StaleTicket>(())
    /// ```
    pub fn abort(&mut self, ticket: Ticket) -> Result<(), StaleTicket> {
        let now = self.latest;
        let Some(slot) = self.held(&ticket, now) else {
            return Err(StaleTicket { response: () });
        };
        self.remove(slot, Which::InFlight);
        Ok(())
    }

    /// Drops every expired entry (and its stored response) now, rather than
    /// when its place is next needed; returns how many were dropped.
    ///
    /// Changes no answer — an expired entry already counts as gone — but
    /// frees what a response owns (a body on the heap, with `std`) early.
    /// Costs one step per expired entry, however large the table.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u8, u8, 4>::with_ttl(Duration::from_secs(1))?;
    /// if let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) {
    ///     table.complete(ticket, 42, Instant::ZERO).ok();
    /// }
    /// assert_eq!(table.purge_expired(Instant::from_millis(999)), 0);
    /// assert_eq!(table.purge_expired(Instant::from_secs(1)), 1);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let now = self.advance(now);
        let mut purged = 0;
        while self.reclaim_one(now) {
            purged += 1;
        }
        purged
    }

    /// Removes the entry in `slot` (on list `which`) from the index and
    /// the list, and frees its slot; drops its response last, so that a
    /// panicking `R::drop` leaves the table consistent.
    fn remove(&mut self, slot: u32, which: Which) {
        self.unlink(slot, which);
        let free = self.free;
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let id = SlotId {
            hash: entry.hash,
            slot,
        };
        entry.state = State::Free;
        entry.next = free;
        let response = entry.response.take();
        if let Some(map) = self.index.get_mut(shard(id.hash)) {
            map.swap_remove(&id);
        }
        self.free = slot;
        self.len = self.len.saturating_sub(1);
        drop(response);
    }

    /// Reclaims the expired entry at the head of either list, if there is
    /// one; says whether it did.
    fn reclaim_one(&mut self, now: Instant) -> bool {
        let expired = |table: &Self, list: List| {
            table
                .slots
                .get(list.head as usize)
                .filter(|entry| !entry.is_live(now))
                .map(|_| list.head)
        };
        if let Some(slot) = expired(self, self.in_flight) {
            self.remove(slot, Which::InFlight);
            true
        } else if let Some(slot) = expired(self, self.completed) {
            self.remove(slot, Which::Completed);
            true
        } else {
            false
        }
    }
}

impl<K: Hash + Eq, R, const N: usize, S: Hasher + Default> IdempotencyTable<K, R, N, S> {
    /// Looks up a request's `key` at `now` and says what to do with it.
    ///
    /// Call it before doing any work for a keyed request, then act on the
    /// answer (see the table on [`IdempotencyTable`]). Only
    /// [`Begin::Execute`] changes the table: the key is then in flight,
    /// held by the returned [`Ticket`], until
    /// [`complete`](Self::complete), [`abort`](Self::abort) or the end of
    /// its lease. A `fingerprint` differing from the one stored with a live
    /// entry answers [`Begin::Mismatch`], whatever the entry's state.
    ///
    /// ```
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u32, u8, 2>::new().with_limit(1)?;
    /// let now = Instant::ZERO;
    /// let Begin::Execute(ticket) = table.begin(10, 0xf00d, now) else { unreachable!() };
    /// assert_eq!(table.begin(10, 0xf00d, now), Begin::InProgress); // 409
    /// assert_eq!(table.begin(10, 0xbeef, now), Begin::Mismatch); // 422
    /// assert_eq!(table.begin(11, 0xf00d, now), Begin::Full); // 503: one entry, in use
    /// table.complete(ticket, 200, now).ok();
    /// assert_eq!(table.begin(10, 0xf00d, now), Begin::Replay(&200));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn begin(&mut self, key: K, fingerprint: u64, now: Instant) -> Begin<&R> {
        let now = self.advance(now);
        let hash = hash_key::<K, S>(&key);
        let mut stored = Stored {
            id: SlotId { hash, slot: NIL },
            key,
        };
        let shard = shard(hash);
        let found = self.index.get(shard).and_then(|map| {
            map.get_index_of(&stored)
                .and_then(|i| map.get_index(i))
                .map(|(stored, ())| stored.id.slot)
        });
        if let Some(slot) = found {
            let Some(entry) = self.slots.get(slot as usize) else {
                return Begin::Full;
            };
            if entry.is_live(now) {
                return if entry.fingerprint != fingerprint {
                    Begin::Mismatch
                } else {
                    match self
                        .slots
                        .get(slot as usize)
                        .and_then(|e| e.response.as_ref())
                    {
                        Some(response) => Begin::Replay(response),
                        None => Begin::InProgress,
                    }
                };
            }
            // The key's own entry has expired: the key is new again, and
            // reuses its place (no other entry's room is taken) — unless a
            // limit set after use left more entries than it allows.
            let which = match entry.state {
                State::Completed => Which::Completed,
                _ => Which::InFlight,
            };
            if self.len <= self.limit {
                self.unlink(slot, which);
                return Begin::Execute(self.start(slot, hash, fingerprint, now));
            }
            self.remove(slot, which);
        }
        while self.len >= self.limit {
            if !self.reclaim_one(now) {
                return Begin::Full;
            }
        }
        let Some(slot) = self.allocate() else {
            return Begin::Full;
        };
        stored.id.slot = slot;
        let inserted = self
            .index
            .get_mut(shard)
            .is_some_and(|map| map.insert(stored, ()).is_ok());
        if !inserted {
            // Unreachable: a map of N places never holds more than the
            // table's `len` < N keys. Give the slot back.
            if let Some(entry) = self.slots.get_mut(slot as usize) {
                entry.next = self.free;
            }
            self.free = slot;
            return Begin::Full;
        }
        self.len += 1;
        Begin::Execute(self.start(slot, hash, fingerprint, now))
    }
}

/// The 32-bit hash of a key under `S`: the index's place comes from its low
/// 16 bits, its map from bit 16.
fn hash_key<K: Hash, S: Hasher + Default>(key: &K) -> u32 {
    let mut hasher = S::default();
    key.hash(&mut hasher);
    let full = hasher.finish();
    (full ^ (full >> 32)) as u32
}

/// Which of the two maps holds keys of this hash.
const fn shard(hash: u32) -> usize {
    ((hash >> 16) & 1) as usize
}

impl<K, R, const N: usize, S> fmt::Debug for IdempotencyTable<K, R, N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyTable")
            .field("capacity", &self.limit)
            .field("entries", &self.len)
            .field("ttl", &self.ttl())
            .field("in_flight_timeout", &self.in_flight_timeout())
            .field("latest", &self.latest)
            .finish_non_exhaustive()
    }
}

impl<K, R, const N: usize, S> Default for IdempotencyTable<K, R, N, S> {
    /// Same as [`IdempotencyTable::new`].
    fn default() -> Self {
        IdempotencyTable::new()
    }
}

/// What [`IdempotencyTable::begin`] says to do with a keyed request.
///
/// Every answer but `Execute` is a refusal to run the request; each maps to
/// the HTTP status the IETF draft "The Idempotency-Key HTTP Header Field"
/// gives it ([`refusal_status`](Self::refusal_status)). `T` is `&R` from
/// [`IdempotencyTable`] and an owned `R` from `SyncIdempotencyTable`
/// (`std`), which cannot lend out of its lock.
///
/// ```
/// use stormguard::{Begin, IdempotencyTable, Instant};
/// let mut table = IdempotencyTable::<u8, String, 2>::new();
/// let answer = match table.begin(1, 0, Instant::ZERO) {
///     Begin::Execute(ticket) => {
///         let response = String::from("charged");
///         table.complete(ticket, response.clone(), Instant::ZERO).ok();
///         response
///     }
///     Begin::Replay(stored) => stored.clone(),
///     refused => format!("HTTP {:?}", refused.refusal_status()),
/// };
/// assert_eq!(answer, "charged");
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "an `Execute` ticket must be completed or aborted, and a refusal answered"]
#[non_exhaustive]
pub enum Begin<T> {
    /// Run the request, then hand the ticket back to
    /// [`complete`](IdempotencyTable::complete) or
    /// [`abort`](IdempotencyTable::abort).
    Execute(Ticket),
    /// The request already completed: answer with its stored response.
    Replay(T),
    /// The request is running elsewhere: answer `409 Conflict` (the client
    /// retries later and then gets the replay).
    InProgress,
    /// The key was used with another payload: answer `422 Unprocessable
    /// Content` (a client bug; retrying cannot help).
    Mismatch,
    /// No room for a new key: answer `503 Service Unavailable` (nothing a
    /// client may still need was evicted to make room).
    Full,
}

impl<T> Begin<T> {
    /// The HTTP status for a refusal (409, 422 or 503), or `None` for
    /// `Execute` and `Replay`, whose status is the request's own.
    ///
    /// ```
    /// use stormguard::Begin;
    /// assert_eq!(Begin::<()>::InProgress.refusal_status(), Some(409));
    /// assert_eq!(Begin::<()>::Mismatch.refusal_status(), Some(422));
    /// assert_eq!(Begin::<()>::Full.refusal_status(), Some(503));
    /// assert_eq!(Begin::Replay(()).refusal_status(), None);
    /// ```
    pub const fn refusal_status(&self) -> Option<u16> {
        match self {
            Begin::Execute(_) | Begin::Replay(_) => None,
            Begin::InProgress => Some(409),
            Begin::Mismatch => Some(422),
            Begin::Full => Some(503),
        }
    }

    /// The same answer with `f` applied to a replayed response.
    ///
    /// ```
    /// use stormguard::Begin;
    /// assert_eq!(Begin::Replay(2).map_replay(|r| r * 10), Begin::Replay(20));
    /// assert_eq!(Begin::<u8>::Full.map_replay(|r| r * 10), Begin::Full);
    /// ```
    pub fn map_replay<U>(self, f: impl FnOnce(T) -> U) -> Begin<U> {
        match self {
            Begin::Execute(ticket) => Begin::Execute(ticket),
            Begin::Replay(response) => Begin::Replay(f(response)),
            Begin::InProgress => Begin::InProgress,
            Begin::Mismatch => Begin::Mismatch,
            Begin::Full => Begin::Full,
        }
    }
}

impl<R: Clone> Begin<&R> {
    /// The same answer owning a clone of the replayed response.
    ///
    /// ```
    /// use stormguard::Begin;
    /// let stored = String::from("receipt");
    /// assert_eq!(Begin::Replay(&stored).cloned(), Begin::Replay(stored.clone()));
    /// ```
    pub fn cloned(self) -> Begin<R> {
        self.map_replay(R::clone)
    }
}

/// The right to finish one execution of a keyed request, given by
/// [`Begin::Execute`].
///
/// A ticket is single-use (neither `Clone` nor `Copy`): it is consumed by
/// [`complete`](IdempotencyTable::complete) or
/// [`abort`](IdempotencyTable::abort). It names its entry by slot and
/// generation, so a ticket whose lease ran out — its key taken over, its
/// slot perhaps reused by another key — is refused with [`StaleTicket`]
/// instead of overwriting someone else's entry. Dropping a ticket unused
/// leaves the key in progress until its lease runs out.
///
/// ```
/// use stormguard::{Begin, IdempotencyTable, Instant};
/// let mut table = IdempotencyTable::<u8, u8, 2>::new();
/// let Begin::Execute(first) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
/// let Begin::Execute(second) = table.begin(2, 0, Instant::ZERO) else { unreachable!() };
/// assert!(second.fencing_token() > first.fencing_token());
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a ticket must be completed or aborted, or its key stays in progress until the lease runs out"]
pub struct Ticket {
    slot: usize,
    generation: u64,
}

impl Ticket {
    /// A number that grows with every `Execute` the table grants: a
    /// fencing token.
    ///
    /// When the side effect goes to a store that can compare numbers, send
    /// the token along and let the store refuse a write carrying a smaller
    /// token than one it has seen — that fences a worker whose lease ran
    /// out even at the store.
    ///
    /// ```
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u8, u8, 2>::new();
    /// let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
    /// assert_eq!(ticket.fencing_token(), 0);
    /// ```
    pub const fn fencing_token(&self) -> u64 {
        self.generation
    }
}

/// A [`Ticket`] whose lease ran out: its `complete` or `abort` changed
/// nothing.
///
/// The key may already belong to another execution (a takeover after the
/// lease), so a late worker must not write over it. `complete` hands its
/// response back inside the error (like `heapless::Vec::push` hands back an
/// item that did not fit), so the worker can still answer its own client.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Begin, IdempotencyTable, Instant};
/// let mut table = IdempotencyTable::<u8, u8, 2>::with_timeouts(
///     Duration::from_secs(60),
///     Duration::from_secs(1),
/// )?;
/// let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
/// let err = table.complete(ticket, 7, Instant::from_secs(1)).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "stale idempotency ticket: its lease ran out, the key may belong to another execution",
/// );
/// assert_eq!(err.into_response(), 7);
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StaleTicket<R = ()> {
    response: R,
}

impl<R> StaleTicket<R> {
    /// The response that was not stored.
    ///
    /// ```
    /// use stormguard::{Begin, IdempotencyTable, Instant};
    /// let mut table = IdempotencyTable::<u8, u8, 2>::with_timeouts(
    ///     core::time::Duration::from_secs(1),
    ///     core::time::Duration::from_secs(1),
    /// )?;
    /// let Begin::Execute(ticket) = table.begin(1, 0, Instant::ZERO) else { unreachable!() };
    /// let _ = table.begin(2, 0, Instant::from_secs(5)); // the clock moves on
    /// assert_eq!(table.complete(ticket, 9, Instant::ZERO).map_err(|e| e.into_response()), Err(9));
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn into_response(self) -> R {
        self.response
    }
}

impl<R> fmt::Display for StaleTicket<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "stale idempotency ticket: its lease ran out, the key may belong to another execution",
        )
    }
}

impl<R: fmt::Debug> core::error::Error for StaleTicket<R> {}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn table<const N: usize>() -> IdempotencyTable<u32, u32, N> {
        match IdempotencyTable::with_timeouts(10 * SEC, 2 * SEC) {
            Ok(table) => table,
            Err(err) => panic!("{err}"),
        }
    }

    fn execute<T>(answer: Begin<T>) -> Ticket {
        match answer {
            Begin::Execute(ticket) => ticket,
            _ => panic!("expected Execute"),
        }
    }

    #[test]
    fn a_reused_slot_fences_the_old_ticket_by_generation() {
        let mut t = table::<2>().with_limit(1).unwrap();
        let old = execute(t.begin(1, 0, Instant::ZERO));
        // Key 2 reclaims the only entry once key 1's lease has run out.
        let new = execute(t.begin(2, 0, Instant::from_secs(2)));
        assert_eq!(old.slot, new.slot);
        assert_ne!(old.generation, new.generation);
        assert_eq!(t.abort(old), Err(StaleTicket { response: () }));
        assert_eq!(t.begin(2, 0, Instant::from_secs(2)), Begin::InProgress);
        assert_eq!(t.complete(new, 5, Instant::from_secs(3)), Ok(()));
        assert_eq!(t.begin(2, 0, Instant::from_secs(3)), Begin::Replay(&5));
    }

    #[test]
    fn a_ticket_from_another_table_is_refused() {
        let mut a = table::<2>();
        let mut b = table::<2>();
        let _ = execute(a.begin(1, 0, Instant::ZERO));
        let from_a = execute(a.begin(2, 0, Instant::ZERO));
        let _ = execute(b.begin(1, 0, Instant::ZERO));
        assert!(b.abort(from_a).is_err());
        assert_eq!(b.live_entries(Instant::ZERO), 1);
    }

    #[test]
    fn generations_wrap_without_panicking() {
        let mut t = table::<2>();
        t.next_generation = u64::MAX;
        let last = execute(t.begin(1, 0, Instant::ZERO));
        let first = execute(t.begin(2, 0, Instant::ZERO));
        assert_eq!((last.fencing_token(), first.fencing_token()), (u64::MAX, 0));
        assert_eq!(t.complete(last, 1, Instant::ZERO), Ok(()));
        assert_eq!(t.complete(first, 2, Instant::ZERO), Ok(()));
    }

    #[test]
    fn extreme_instants_and_durations_saturate() {
        let mut t =
            match IdempotencyTable::<u32, u32, 2>::with_timeouts(Duration::MAX, Duration::MAX) {
                Ok(table) => table,
                Err(err) => panic!("{err}"),
            };
        let ticket = execute(t.begin(1, 0, Instant::from_nanos(u64::MAX - 1)));
        assert_eq!(
            t.complete(ticket, 3, Instant::from_nanos(u64::MAX - 1)),
            Ok(())
        );
        assert_eq!(t.begin(1, 0, Instant::ZERO), Begin::Replay(&3));
        // At Instant::MAX every entry has expired; nothing overflows.
        assert!(matches!(t.begin(1, 0, Instant::MAX), Begin::Execute(_)));
    }

    #[test]
    fn a_ticket_naming_no_slot_is_refused() {
        let mut t = table::<2>();
        let forged = Ticket {
            slot: usize::MAX,
            generation: 0,
        };
        assert_eq!(t.abort(forged), Err(StaleTicket { response: () }));
        let forged = Ticket {
            slot: 1,
            generation: 0,
        };
        assert_eq!(
            t.complete(forged, 1, Instant::ZERO),
            Err(StaleTicket { response: 1 })
        );
    }

    /// The lists stay in expiry order, linked both ways, and the index,
    /// the lists and `len` agree, through a long random run with reuse of
    /// expired keys, reclaims, aborts and a limit below N.
    #[test]
    fn lists_index_and_len_stay_consistent() {
        let mut t = table::<8>().with_limit(6).unwrap();
        let mut rng = crate::Random::with_seed(11);
        let mut tickets = std::vec::Vec::new();
        let mut now = Instant::ZERO;
        for _ in 0..20_000 {
            match rng.u64(0..=9) {
                0..=4 => {
                    let key = rng.u64(0..=11) as u32;
                    if let Begin::Execute(ticket) = t.begin(key, 0, now) {
                        tickets.push(ticket);
                    }
                }
                5 | 6 if !tickets.is_empty() => {
                    let i = rng.u64(0..=tickets.len() as u64 - 1) as usize;
                    let _ = t.complete(tickets.swap_remove(i), 7, now);
                }
                7 if !tickets.is_empty() => {
                    let i = rng.u64(0..=tickets.len() as u64 - 1) as usize;
                    let _ = t.abort(tickets.swap_remove(i));
                }
                8 => now = now.saturating_add(Duration::from_millis(rng.u64(0..=700))),
                _ => {
                    let _ = t.purge_expired(now);
                }
            }
            check(&t);
        }
    }

    fn check<const N: usize>(t: &IdempotencyTable<u32, u32, N>) {
        let mut on_lists = 0;
        for (list, state) in [
            (t.in_flight, State::InFlight),
            (t.completed, State::Completed),
        ] {
            let mut prev = NIL;
            let mut at = list.head;
            let mut until = Instant::ZERO;
            while at != NIL {
                let entry = &t.slots[at as usize];
                assert_eq!(entry.state, state);
                if at != list.head {
                    assert_eq!(entry.prev, prev, "a head's prev is never read");
                }
                assert!(entry.until >= until, "a list out of expiry order");
                until = entry.until;
                on_lists += 1;
                prev = at;
                at = entry.next;
            }
            assert_eq!(list.tail, prev);
        }
        let indexed = t.index[0].len() + t.index[1].len();
        assert_eq!(on_lists, t.len);
        assert_eq!(indexed, t.len);
        assert!(t.len <= t.limit);
        for map in &t.index {
            for (stored, ()) in map {
                assert_ne!(t.slots[stored.id.slot as usize].state, State::Free);
                assert_eq!(t.slots[stored.id.slot as usize].hash, stored.id.hash);
            }
        }
    }
}
